"""shekel's entry point: loading it imports no LlamaIndex; the integration is installed once
``llama_index.core`` is imported."""

from shekel import hookimpl
from shekel.integration import Integration

from .package import _instruments


def _install() -> None:
    from ._install import install

    install()


def _uninstall() -> None:
    from ._install import uninstall

    uninstall()


INTEGRATION = Integration(
    "shekel-llamaindex", "LlamaIndex", _instruments, "llama_index.core", _install, _uninstall
)


@hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
