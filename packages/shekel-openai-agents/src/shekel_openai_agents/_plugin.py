"""shekel's hook, loaded through the ``shekel`` entry point into every process that uses
shekel: it imports no openai-agents, and installs once ``agents`` is imported."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from shekel.integration import Integration
from shekel.plugins import hookimpl

from .package import _instruments


def _hooks() -> Any:
    return import_module("shekel_openai_agents._install")


INTEGRATION = Integration(
    "shekel-openai-agents",
    "openai-agents",
    _instruments,
    "agents",
    install=lambda: _hooks().install(),
    uninstall=lambda: _hooks().uninstall(),
)


@hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
