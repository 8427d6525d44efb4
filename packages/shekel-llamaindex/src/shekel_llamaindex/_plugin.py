"""shekel's entry point for LlamaIndex (``[project.entry-points.shekel] llamaindex``).

Loading it imports neither LlamaIndex nor anything heavy: ``shekel_install`` checks the
installed version and installs into LlamaIndex when ``llama_index.core`` is imported (at once
if it already is).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from shekel import Budget, CallRoute, hookimpl

from . import package
from ._errors import ShekelLlamaIndexWarning
from ._imports import when_imported

_route: list[Callable[[Budget | None], Budget | None]] = []


def _install_into_llamaindex() -> None:
    from . import _install, _spans

    _install.install()
    if not _route:
        _route.append(_spans.payer_for_request)


@hookimpl
def shekel_install() -> None:
    reason = package.unsupported_reason()
    if reason is not None:
        warnings.warn(
            f"shekel-llamaindex is not active: {reason}. Install a supported llama-index-core "
            "or uninstall shekel-llamaindex",
            ShekelLlamaIndexWarning,
            stacklevel=2,
        )
        return
    when_imported("llama_index.core", _install_into_llamaindex)


@hookimpl
def shekel_route_call(active: Budget | None) -> CallRoute | None:
    if not _route:
        return None
    payer = _route[0](active)
    return None if payer is None else CallRoute(payer)
