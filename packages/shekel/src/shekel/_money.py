"""Exact money: every amount inside shekel is an integer number of nano-dollars.

Floats only appear at the public edge (``Budget.spent`` and friends). Summing integers is
exact, so a million calls of $0.0001 add up to exactly $100.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from ._errors import BudgetConfigError

NANOS_PER_USD: Final = 1_000_000_000
_NANOS_F: Final = float(NANOS_PER_USD)
_NANOS_D: Final = Decimal(NANOS_PER_USD)
_NANO_PLACE: Final = Decimal("0.000000001")

MAX_USD: Final = 1_000_000_000
"""The largest amount (spend, limit or price) shekel accepts, in US dollars: far above any
real budget, and small enough that totals fit the 64-bit integers a store keeps."""
MAX_NANOS: Final = MAX_USD * NANOS_PER_USD

Nanos = int
"""An amount of US dollars, in units of 1e-9 USD."""


def usd_to_nanos(amount: float | int | Decimal | str, param: str | None = None) -> Nanos:
    """Convert a dollar amount to nano-dollars, rounding to the nearest nano-dollar.

    Floats are rounded after scaling, which is exact for any amount a person would type
    (up to about $9 million); ``Decimal`` and ``str`` are converted exactly. Amounts whose size
    is above ``MAX_USD`` (or not finite) raise ``BudgetConfigError``, whatever their type.
    """
    if type(amount) is float:
        scaled = amount * _NANOS_F
        nanos = round(scaled) if math.isfinite(scaled) else None
    elif type(amount) is int:
        nanos = amount * NANOS_PER_USD
    elif isinstance(amount, Decimal):
        nanos = int((amount * _NANOS_D).to_integral_value()) if amount.is_finite() else None
    elif isinstance(amount, str):
        nanos = usd_to_nanos(Decimal(amount), param)
    elif isinstance(amount, (int, float)):  # bool, numpy scalars and other number subclasses
        nanos = usd_to_nanos(float(amount), param)
    else:
        raise BudgetConfigError(
            f"{param or 'an amount'} must be a number of US dollars, got {type(amount).__name__}"
        )
    if nanos is None or not -MAX_NANOS <= nanos <= MAX_NANOS:
        raise BudgetConfigError(
            f"{param or 'an amount'} must be a finite number of US dollars no larger than "
            f"${MAX_USD:,}; {amount!r} is not an amount shekel can count"
        )
    return nanos


def nanos_to_usd(amount: Nanos) -> float:
    """Convert nano-dollars to a float number of dollars (for display and public properties)."""
    return amount / _NANOS_F


def nanos_to_decimal(amount: Nanos) -> Decimal:
    """Convert nano-dollars to an exact ``Decimal`` number of dollars."""
    return Decimal(amount) / _NANOS_D


def is_finite_number(value: object) -> bool:
    """True for real, finite numbers (bools excluded)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return False


def usd_text(amount: float | int | Decimal) -> str:
    """Dollars as people read them, never rounded into a lie: cents at least, and every digit
    that matters below them (amounts are exact to the nano-dollar), so ``$0.046`` of a ``$0.05``
    budget does not read as exhausted and ``$0.000015`` does not read as nothing."""
    value = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)
    value = value.quantize(_NANO_PLACE, rounding=ROUND_HALF_EVEN)  # floats carry binary noise
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.9f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def spend_to_nanos(usd: object, param: str = "usd") -> Nanos:
    """Validate an amount a user says was spent (finite, >= 0) and convert it."""
    if not is_finite_number(usd) or usd < 0:  # type: ignore[operator]
        raise BudgetConfigError(f"{param} must be a finite number of USD >= 0, got {usd!r}")
    return usd_to_nanos(usd, param)  # type: ignore[arg-type]
