"""The LangGraph versions this package supports, checked before anything is used."""

from __future__ import annotations

import threading
import warnings
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

_instruments = ("langgraph >= 1.0, < 2",)

_warned = threading.Event()


@cache
def supported() -> bool:
    """True if the installed LangGraph is in the supported range (``_instruments``)."""
    for spec in _instruments:
        requirement = Requirement(spec)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            return False
        if not requirement.specifier.contains(installed, prereleases=True):
            return False
    return True


def warn_if_unsupported() -> None:
    """Warn once per process when the installed LangGraph is outside the supported range."""
    if supported() or _warned.is_set():
        return
    _warned.set()
    try:
        installed = version("langgraph")
    except PackageNotFoundError:
        installed = "not installed"
    warnings.warn(
        f"shekel-langgraph supports {', '.join(_instruments)}; found langgraph {installed}. "
        "Node and graph budgets may not work with it: install a supported langgraph, or a "
        "shekel-langgraph release made for this one",
        UserWarning,
        stacklevel=3,
    )
