"""The opentelemetry-api releases this package supports, checked before anything is reported."""

from __future__ import annotations

import functools
import warnings

_instruments = ("opentelemetry-api >= 1.30, < 2",)


class UnsupportedVersionWarning(UserWarning):
    """The installed opentelemetry-api is outside the range shekel-otel supports: nothing is
    reported."""


@functools.cache
def unsupported_reason() -> str | None:
    """Why the installed opentelemetry-api cannot be used, or ``None`` when it can."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    for spec in _instruments:
        requirement = Requirement(spec)
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            return f"{requirement.name} is not installed (shekel-otel needs {spec})"
        if not requirement.specifier.contains(found, prereleases=True):
            return (
                f"{requirement.name} {found} is outside the range shekel-otel supports ({spec}); "
                "install a supported release, or a shekel-otel made for it"
            )
    return None


def supported() -> bool:
    """True when the installed opentelemetry-api is within :data:`_instruments`."""
    return unsupported_reason() is None


@functools.cache
def check_supported() -> bool:
    """:func:`supported`, warning once per process (``UnsupportedVersionWarning``) if not."""
    reason = unsupported_reason()
    if reason is None:
        return True
    warnings.warn(
        f"{reason}. shekel-otel reports nothing.", UnsupportedVersionWarning, stacklevel=3
    )
    return False
