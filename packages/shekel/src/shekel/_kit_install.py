"""Installing a framework integration: once, when the framework is imported, if its version is
one the integration supports (see ``shekel.integration``)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class UnsupportedFrameworkWarning(UserWarning):
    """The installed framework is outside the range an integration supports: its automatic
    hooks were not installed (its explicit wrappers still run, untested with that release)."""


class OutsideBudgetWarning(UserWarning):
    """An integration's limits were given outside any budget: they have nothing to apply to."""


class UnmatchedNameWarning(UserWarning):
    """A name mapped to limits never matched a step of the framework in the budget it was
    given for (a typo, or a step that did not run)."""


# -- running code when a module is imported ----------------------------------------------------

_lock = threading.Lock()
_waiting: dict[str, list[Callable[[], None]]] = {}


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback()`` now if module ``name`` is imported, else right after its import
    finishes, without importing it (a framework can take seconds to import; another thread may
    be importing it at this moment)."""
    with _lock:
        if name not in sys.modules:
            _waiting.setdefault(name, []).append(callback)
            if _FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _FINDER)
            return
    callback()


def _imported(name: str) -> None:
    with _lock:
        callbacks = _waiting.pop(name, [])
        if not _waiting and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
    for callback in callbacks:
        callback()


class _Loader(importlib.abc.Loader):
    """The module's own loader, then what waited for it; everything else is the loader's own
    (``importlib.resources`` asks it for the package's files)."""

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
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


_FINDER = _Finder()


# -- the integration ---------------------------------------------------------------------------


class Integration:
    """A framework integration's identity and life cycle, as its ``shekel_install`` hook uses it.

    ``package``: the distribution (``"shekel-langchain"``); ``framework``: what users call the
    framework (``"LangChain"``); ``instruments``: the supported range of each distribution it
    hooks into, as requirement strings (``("langchain-core >= 1.0, < 2",)``); ``module``: the
    module whose import triggers installing (``"langchain_core"``); ``install`` and
    ``uninstall``: what registers the integration with the framework and takes it back.
    """

    def __init__(
        self,
        package: str,
        framework: str,
        instruments: Sequence[str],
        module: str,
        install: Callable[[], None],
        uninstall: Callable[[], None] | None = None,
    ) -> None:
        self.package = package
        self.framework = framework
        self.instruments = tuple(instruments)
        self.module = module
        self._install = install
        self._uninstall = uninstall
        self._lock = threading.RLock()
        self._installed = False
        self._unsupported: str | bool | None = False  # False: not looked at yet

    def unsupported(self) -> str | None:
        """Why the installed framework is not one this integration supports, or ``None``."""
        if self._unsupported is False:
            self._unsupported = unsupported_reason(self.package, self.instruments)
        return self._unsupported  # type: ignore[return-value]

    def supported(self) -> bool:
        """True when every distribution is installed within its range; else warns once per
        process (``UnsupportedFrameworkWarning``) and returns False."""
        reason = self.unsupported()
        if reason is None:
            return True
        self.warn_once(
            "unsupported",
            f"{reason}. Its automatic hooks are not installed; what you wrap or pass explicitly "
            f"still runs, untested with this release. Install a supported {self.framework} "
            f"release, or a {self.package} release made for yours",
            UnsupportedFrameworkWarning,
        )
        return False

    def install_when_imported(self) -> None:
        """Install now if the framework is imported and supported, else once it is imported
        (the ``shekel_install`` hook calls this)."""
        when_imported(self.module, self.install)

    def install(self) -> None:
        with self._lock:
            if self._installed or not self.supported():
                return
            self._install()
            self._installed = True

    @property
    def installed(self) -> bool:
        return self._installed

    def uninstall(self) -> None:
        """Take back what :meth:`install` registered (for tests, and applications that embed
        a framework for a while), and forget the warnings given once, so that a test starting
        after ``uninstall()`` sees them as a new process would."""
        with self._lock:
            if self._installed and self._uninstall is not None:
                self._uninstall()
            self._installed = False
        for given in [w for w in _warned if w[0] == self.package]:
            _warned.discard(given)

    def warn_once(self, key: str, message: str, category: type[Warning]) -> None:
        """Warn ``message`` once per process for ``key``."""
        with self._lock:
            if (self.package, key) in _warned:
                return
            _warned.add((self.package, key))
        warnings.warn(f"{self.package}: {message}", category, stacklevel=3)

    def warn_outside_budget(self, what: str) -> None:
        """``what`` (a handler with limits, a wrapped graph...) ran outside any budget: its
        limits have nothing to apply to. Warned once per process."""
        self.warn_once(
            "outside",
            f"{what} ran outside any budget, so its limits have nothing to apply to and "
            "nothing was stopped; run it inside `with budget(...)` (or `shekel run`)",
            OutsideBudgetWarning,
        )


_warned: set[tuple[str, str]] = set()  # (package, key) of the warnings given once per process


def forget_warnings() -> None:
    """Give every once-per-process warning of every integration again (for tests, each of
    which expects its own warnings whatever ran before it)."""
    _warned.clear()


def unsupported_reason(package: str, instruments: Sequence[str]) -> str | None:
    """Why the installed distributions are not all within ``instruments``, or ``None``."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    for spec in instruments:
        requirement = Requirement(spec)
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            return f"{requirement.name} is not installed ({package} supports {spec})"
        if not requirement.specifier.contains(found, prereleases=True):
            return f"{requirement.name} {found} is installed; {package} supports {spec}"
    return None
