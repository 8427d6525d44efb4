"""shekel's entry point: loading it imports no LlamaIndex; the integration is installed once
``llama_index.core`` is imported."""

from importlib import import_module
from typing import Any

from shekel.integration import Integration
from shekel.plugins import hookimpl

from .package import _instruments


def _hooks() -> Any:
    return import_module("shekel_llamaindex._install")


INTEGRATION = Integration(
    "shekel-llamaindex",
    "LlamaIndex",
    _instruments,
    "llama_index.core",
    install=lambda: _hooks().install(),
    uninstall=lambda: _hooks().uninstall(),
)


@hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
