"""Run a function once a module has finished importing, without importing it ourselves.

``import shekel`` must stay light, and so must loading this package's entry point: LlamaIndex
takes seconds to import. ``when_imported(name, fn)`` calls ``fn()`` at once if ``name`` is
already imported, else right after its import finishes (an import hook that stays out of the
way of every other import).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_lock = threading.Lock()
_waiting: dict[str, list[Callable[[], None]]] = {}


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback`` now if module ``name`` is imported, else when its import finishes."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _waiting.setdefault(name, []).append(callback)
            if _HOOK not in sys.meta_path:
                sys.meta_path.insert(0, _HOOK)
            return
    callback()


def _imported(name: str) -> None:
    with _lock:
        callbacks = _waiting.pop(name, [])
        if not _waiting and _HOOK in sys.meta_path:
            sys.meta_path.remove(_HOOK)
    for callback in callbacks:
        callback()


class _Loader(importlib.abc.Loader):
    """Loads a module with its own loader, then runs what waited for it. Everything else is
    the loader's own (``importlib.resources`` asks it for the package's files)."""

    def __init__(self, inner: importlib.abc.Loader, name: str) -> None:
        self.inner = inner
        self.name = name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _imported(self.name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules someone waits for through the other finders, and wraps the loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


_HOOK = _Finder()
