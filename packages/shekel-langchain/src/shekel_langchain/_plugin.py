"""shekel's hook, loaded through the ``shekel`` entry point: imports no LangChain."""

from shekel.plugins import hookimpl

from ._zero_config import INTEGRATION


@hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
