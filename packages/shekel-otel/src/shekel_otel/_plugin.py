"""shekel's hook for OpenTelemetry, loaded through the ``shekel`` entry point.

``shekel_install`` (once per process, before the first budget becomes active) starts the
zero-config reporting to the application's global providers. Everything else is registered
only when there is somewhere to report to (see ``_wiring``).
"""

from __future__ import annotations

import shekel

from . import _wiring


@shekel.plugins.hookimpl
def shekel_install() -> None:
    _wiring.start_zero_config()
