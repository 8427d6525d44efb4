"""shekel's hook for CrewAI, loaded through the ``shekel`` entry point into every process that
uses shekel: it imports no crewai (seconds), and installs once ``crewai`` is imported."""

from __future__ import annotations

import shekel
from shekel.integration import Integration

from .package import _instruments


def _install() -> None:
    from ._patches import patch

    patch()


def _uninstall() -> None:
    from ._patches import unpatch

    unpatch()


INTEGRATION = Integration(
    "shekel-crewai", "CrewAI", _instruments, "crewai", install=_install, uninstall=_uninstall
)


@shekel.plugins.hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
