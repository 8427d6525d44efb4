"""The CrewAI releases this package supports, checked before anything is installed.

The floor is the first release whose agents let a hook's ``HookAborted`` through without
retrying the task or wrapping the error in ``RuntimeError`` (``max_execution_time``): the
budget stop depends on it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

_instruments = ("crewai >= 1.15.19, < 2",)


def installed_version() -> str | None:
    """The installed crewai version, or ``None`` when crewai is not installed."""
    try:
        return version("crewai")
    except PackageNotFoundError:
        return None


def supported(crewai_version: str | None = None) -> bool:
    """True when ``crewai_version`` (default: the installed one) is in the supported range."""
    found = installed_version() if crewai_version is None else crewai_version
    if found is None:
        return False
    try:
        parsed = Version(found)
    except InvalidVersion:
        return False
    return all(
        Requirement(spec).specifier.contains(parsed, prereleases=True) for spec in _instruments
    )
