"""shekel's entry point for LlamaIndex (``[project.entry-points.shekel] llamaindex``).

Loading it imports neither LlamaIndex nor anything heavy: ``shekel_install`` checks the
installed version and installs into LlamaIndex when ``llama_index.core`` is imported (at once
if it already is).

``shekel_route_call`` (which budget pays for a request) is implemented by
:class:`shekel_llamaindex._spans.Router`, registered at that moment: a process that never
imports LlamaIndex pays nothing per SDK call.
"""

from __future__ import annotations

import warnings

from shekel import hookimpl

from . import package
from ._errors import ShekelLlamaIndexWarning
from ._imports import when_imported


def _install_into_llamaindex() -> None:
    from . import _install, _spans

    _install.install()
    _spans.start_routing()


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
