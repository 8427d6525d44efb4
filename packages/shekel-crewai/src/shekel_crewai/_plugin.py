"""shekel's hooks for CrewAI, registered through the ``shekel`` entry point.

Loaded into every process that uses shekel where this package is installed, so it imports no
crewai (about five seconds): CrewAI is patched when a budget is first entered if crewai is
imported by then, else the moment its import finishes.
"""

from __future__ import annotations

import shekel

from . import _install, _runs


@shekel.plugins.hookimpl
def shekel_install() -> None:
    _install.install_when_imported()


@shekel.plugins.hookimpl
def shekel_limit_exceeded(budget: shekel.Budget, error: BaseException) -> None:
    _runs.note_stop(budget, error)
