"""shekel's entry point (``[project.entry-points.shekel] llamaindex``): loading it imports no
LlamaIndex; the integration is installed once ``llama_index.core`` is imported."""

from __future__ import annotations

from types import ModuleType

from shekel import hookimpl
from shekel.integration import Integration

from .package import _instruments


def _hooks() -> ModuleType:
    from . import _install

    return _install


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
