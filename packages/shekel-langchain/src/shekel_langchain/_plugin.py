"""shekel's hook for LangChain, loaded through the ``shekel`` entry point (imports no LangChain)."""

from __future__ import annotations

import shekel

from ._zero_config import INTEGRATION


@shekel.hookimpl
def shekel_install() -> None:
    INTEGRATION.install_when_imported()
