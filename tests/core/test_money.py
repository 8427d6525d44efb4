"""Exact money: amounts are integers inside, so sums never drift."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shekel import BudgetConfigError, BudgetPool, budget
from shekel._money import (
    NANOS_PER_USD,
    nanos_to_decimal,
    nanos_to_usd,
    spend_to_nanos,
    usd_text,
    usd_to_nanos,
)


@pytest.mark.slow
def test_a_million_records_of_a_hundredth_cent_make_exactly_100_dollars() -> None:
    # The premise: adding the float 0.0001 a million times does not give 100.
    assert sum([0.0001] * 1_000_000) != 100.0

    b = budget(max_usd=1_000, name="exact")
    with b:
        for _ in range(1_000_000):
            b.record(usd=0.0001)

    assert b.spent == 100.0
    snap = b.snapshot()
    assert snap.usd_used == 100.0
    assert snap.usd_remaining == 900.0
    assert b.snapshot().llm_calls_used == 1_000_000
    data = b.summary_data()
    assert data["total_spent"] == 100.0
    assert data["total_calls"] == 1_000_000
    assert data["by_model"]["(manual)"]["cost"] == 100.0
    assert data["by_model"]["(manual)"]["calls"] == 1_000_000
    assert "Total: $100.00 " in b.summary()


def test_pool_million_records_are_exact() -> None:
    pool = BudgetPool(usd_cap=1_000.0)
    for _ in range(1_000_000):
        pool.record(usd=0.0001)
    snap = pool.snapshot()
    assert snap.usd_used == 100.0
    assert snap.usd_remaining == 900.0


def test_tenth_plus_fifth_is_three_tenths() -> None:
    assert 0.1 + 0.2 != 0.3  # the float trap shekel must avoid
    b = budget(name="b")
    b.record(usd=0.1)
    b.record(usd=0.2)
    assert b.spent == 0.3
    assert b.snapshot().usd_used == 0.3


def test_parent_total_of_children_is_exact() -> None:
    with budget(max_usd=10, name="parent") as parent:
        for i in range(10):
            with budget(max_usd=1, name=f"c{i}") as c:
                c.record(usd=0.1)
    # ten floats of 0.1 summed naively give 0.9999999999999999
    assert sum([0.1] * 10) != 1.0
    assert parent.spent == 1.0
    assert parent.spent_by_children == 1.0
    assert parent.remaining == 9.0


def test_decimal_and_string_amounts_are_exact() -> None:
    b = budget(name="b")
    b.record(usd=Decimal("0.000000001"))
    b.record(usd=Decimal("1.5"))
    assert b.spent == 1.500000001


def test_usd_to_nanos_conversions() -> None:
    assert NANOS_PER_USD == 10**9
    assert usd_to_nanos(1) == 10**9
    assert usd_to_nanos(0.0001) == 100_000
    assert usd_to_nanos(0.1) == 100_000_000
    assert usd_to_nanos(Decimal("0.000000001")) == 1
    assert usd_to_nanos("2.5") == 2_500_000_000
    assert usd_to_nanos(9_000_000.123456789) == 9_000_000_123_456_789
    with pytest.raises(BudgetConfigError, match="must be a number of US dollars"):
        usd_to_nanos(None)  # type: ignore[arg-type]


def test_nanos_back_to_dollars() -> None:
    assert nanos_to_usd(100_000_000_000) == 100.0
    assert nanos_to_usd(300_000_000) == 0.3
    assert nanos_to_decimal(1) == Decimal("0.000000001")


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0, "$0.00"),
        (0.046, "$0.046"),  # not "$0.05": a $0.05 budget is not exhausted
        (0.0000315, "$0.0000315"),  # not "$0.00": something was spent
        (12.5, "$12.50"),
        (1234.56789, "$1,234.56789"),
        (0.1 + 0.2, "$0.30"),  # a float's binary noise below the nano-dollar is not shown
        (Decimal("0.000000001"), "$0.000000001"),
        (-0.5, "-$0.50"),
    ],
)
def test_amounts_are_shown_with_every_digit_that_matters(amount: float, shown: str) -> None:
    assert usd_text(amount) == shown


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "1", None, True])
def test_spend_must_be_a_finite_non_negative_number(bad: object) -> None:
    with pytest.raises(BudgetConfigError, match="usd"):
        spend_to_nanos(bad)


def test_public_figures_are_floats_and_json_serialisable() -> None:
    b = budget(max_usd=1, name="b")
    b.record(usd=Decimal("0.25"))
    assert type(b.spent) is float
    assert type(b.remaining) is float
    assert type(b.limit) is float
    json.dumps(b.summary_data())
