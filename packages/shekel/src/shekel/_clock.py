"""The wall clock that budget windows and time-dependent prices read: which period is
current, when it ends, and which of a model's prices applies (off-peak hours, dated changes).

Tests move it with :func:`shekel.testing.use_clock` instead of patching ``time`` inside
shekel's modules. Leases, retries and store expiry keep their own (real) clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

CLOCK: Final[list[Callable[[], float]]] = [time.time]
"""The function that tells the time (POSIX seconds); one element, replaced in place."""


def now() -> float:
    return CLOCK[0]()
