"""The LlamaIndex versions this package supports, checked before anything is installed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

_instruments = ("llama-index-core >= 0.14.5, < 0.15",)


def unsupported_reason() -> str | None:
    """``None`` when every instrumented distribution is installed within its supported range,
    else a sentence saying which one is not."""
    for text in _instruments:
        requirement = Requirement(text)
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            return f"{requirement.name} is not installed"
        if not requirement.specifier.contains(found, prereleases=True):
            return (
                f"{requirement.name} {found} is installed; shekel-llamaindex supports "
                f"{requirement.specifier}"
            )
    return None


def supported() -> bool:
    """True when the installed LlamaIndex is one this package supports."""
    return unsupported_reason() is None
