"""Installing into CrewAI once per process: the agent wrappers, the hooks and the usage handler.

Nothing here imports crewai before the application has: if crewai is not imported when the
first budget is entered, an import hook installs everything the moment ``import crewai``
finishes. A crewai release outside the supported range is reported once with a warning, and
nothing is installed (shekel's HTTP interception still records every SDK call).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

from .package import _instruments, installed_version, supported

_lock = threading.RLock()
_state = {"installed": False, "warned": False}


class UnsupportedCrewAIWarning(UserWarning):
    """The installed crewai is outside the range shekel-crewai supports: nothing was installed."""


def install() -> bool:
    """Install into the imported crewai (idempotent). False when its version is unsupported."""
    with _lock:
        if _state["installed"]:
            return True
        if not supported():
            if not _state["warned"]:
                _state["warned"] = True
                warnings.warn(unsupported_message(installed_version()), UnsupportedCrewAIWarning, 2)
            return False
        from . import _agents, _hooks, _usage

        _agents.patch()
        _hooks.register()
        _usage.register()
        _state["installed"] = True
        return True


def installed() -> bool:
    return _state["installed"]


def unsupported_message(found: str | None) -> str:
    return (
        f"shekel-crewai supports {', '.join(_instruments)} but crewai {found or '(unknown)'} "
        "is installed: agents get no budgets of their own and are not stopped before their next "
        "LLM call (shekel still records every OpenAI and Anthropic SDK call). Install a "
        "supported crewai, or a shekel-crewai release made for yours"
    )


def install_when_imported() -> None:
    """Install now if crewai is imported, else as soon as it is."""
    with _lock:
        if _state["installed"]:
            return
        if "crewai" not in sys.modules:
            if _IMPORT_HOOK not in sys.meta_path:
                sys.meta_path.insert(0, _IMPORT_HOOK)
            return
    install()


class _InstallOnImport(importlib.abc.MetaPathFinder):
    """Installs into crewai right after ``crewai/__init__.py`` has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "crewai":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _InstallingLoader(spec.loader)
                return spec
        return None


class _InstallingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        with _lock:
            if _IMPORT_HOOK in sys.meta_path:
                sys.meta_path.remove(_IMPORT_HOOK)
        install()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_IMPORT_HOOK: Final = _InstallOnImport()
