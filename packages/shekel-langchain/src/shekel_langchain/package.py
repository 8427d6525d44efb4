"""The langchain-core releases this package supports, checked before anything is installed."""

from __future__ import annotations

import functools
import warnings

from ._errors import UnsupportedVersionWarning

_instruments = ("langchain-core >= 1.0, < 2",)


@functools.cache
def unsupported_reason() -> str | None:
    """Why the installed langchain-core cannot be used, or ``None`` when it can."""
    from importlib.metadata import PackageNotFoundError, version  # only where LangChain runs

    from packaging.requirements import Requirement

    for spec in _instruments:
        requirement = Requirement(spec)
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            return f"{requirement.name} is not installed (shekel-langchain needs {spec})"
        if not requirement.specifier.contains(found, prereleases=True):
            return (
                f"{requirement.name} {found} is outside the range shekel-langchain supports "
                f"({spec}); install a supported release, or a shekel-langchain made for it"
            )
    return None


def supported() -> bool:
    """True when the installed langchain-core is within :data:`_instruments`."""
    return unsupported_reason() is None


@functools.cache
def check_supported() -> bool:
    """:func:`supported`, warning once per process (``UnsupportedVersionWarning``) if not."""
    reason = unsupported_reason()
    if reason is None:
        return True
    warnings.warn(
        f"{reason}. shekel-langchain registered nothing with LangChain: runs are followed "
        "only by a ShekelCallbackHandler passed in callbacks.",
        UnsupportedVersionWarning,
        stacklevel=2,
    )
    return False
