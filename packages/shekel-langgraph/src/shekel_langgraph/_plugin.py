"""shekel's plugin hooks for LangGraph (registered through the ``shekel`` entry point).

Nothing has to be registered with LangGraph: calls made inside nodes already go through
shekel's HTTP interception, and per-node budgets come from ``@budgeted_node`` and
``budgeted_graph``, which activate a node's budget around the code they run. Installing only
reports, once, a LangGraph outside the supported range.
"""

from __future__ import annotations

import shekel

from .package import supported, warn_if_unsupported


@shekel.hookimpl
def shekel_install() -> None:
    if not supported():
        warn_if_unsupported()
