"""Time windows: a budget whose limits apply per hour, day, week or month, and start over.

A window is a fixed, calendar-aligned period in a time zone (UTC unless told otherwise):
``"10s"``, ``"15m"`` and ``"1h"`` start on the clock, ``"1d"`` at midnight, ``"1w"`` / ``"7d"`` on
Monday at midnight, ``"30d"`` every 30 days counted from Monday 5 January 1970, ``"month"`` on
the first of the month. Each period is its own account (``<key>@<window>/<start>`` in a store),
so a new period starts from zero and an old one is simply no longer used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from ._errors import BudgetConfigError
from ._ledger import Caps

_SPEC: Final = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MONDAY: Final = datetime(1970, 1, 5)  # periods of whole days and weeks count from here
EXAMPLES: Final = '"30s", "15m", "1h", "1d", "7d", "30d" or "month"'


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a window: its label (the local start, as in store keys) and its end."""

    label: str
    ends_at: float  # a POSIX timestamp


@dataclass(frozen=True, slots=True)
class Window:
    """A budget's limits repeating over fixed periods."""

    spec: str
    seconds: int | None  # None for calendar months
    caps: Caps
    zone: tzinfo

    def period(self, now: float) -> Period:
        """The period ``now`` (a POSIX timestamp) falls in."""
        local = datetime.fromtimestamp(now, self.zone).replace(tzinfo=None)
        if self.seconds is None:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            end = (start + timedelta(days=32)).replace(day=1)
        else:
            since = local - _MONDAY
            elapsed = since.days * 86400 + since.seconds
            start = _MONDAY + timedelta(seconds=elapsed - elapsed % self.seconds)
            end = start + timedelta(seconds=self.seconds)
        label = start.isoformat(
            timespec="seconds" if self.seconds and self.seconds % 60 else "minutes"
        )
        return Period(label, _timestamp(end, self.zone))

    @property
    def length(self) -> float:
        """Nominal length in seconds (a month counts as 31 days), for ordering and expiry."""
        return float(self.seconds if self.seconds is not None else 31 * 86400)


def _timestamp(local: datetime, zone: tzinfo) -> float:
    return local.replace(tzinfo=zone).timestamp()


def parse_window(spec: object, caps: Caps, zone: tzinfo, param: str = "window") -> Window:
    if spec == "month":
        return Window("month", None, caps, zone)
    found = _SPEC.match(spec) if isinstance(spec, str) else None
    if found is None:
        raise BudgetConfigError(f"{param} must be {EXAMPLES}, got {spec!r}")
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return Window(spec, seconds, caps, zone)  # type: ignore[arg-type]


def parse_zone(name: object) -> tzinfo:
    if name is None or name == "UTC":
        return UTC
    if not isinstance(name, str) or not name:
        raise BudgetConfigError(f"timezone must be an IANA name like 'Europe/Paris', got {name!r}")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BudgetConfigError(
            f"timezone {name!r} is not a known IANA time zone (e.g. 'UTC', 'Europe/Paris', "
            "'America/New_York'); on Windows, install the tzdata package"
        ) from None
