"""shekel's hooks for LangChain, loaded through the ``shekel`` entry point.

``shekel_install`` registers the zero-config handler with LangChain, once per process, before
the first budget becomes active (nothing, with a warning, on an unsupported langchain-core).

``shekel_route_call`` (which budget pays for a request) is implemented by
:class:`shekel_langchain._runs.Router`, registered the first time a handler follows a run: a
process that never runs LangChain under a budget pays nothing per SDK call.
"""

from __future__ import annotations

import shekel

from . import _zero_config


@shekel.plugins.hookimpl
def shekel_install() -> None:
    _zero_config.install()
