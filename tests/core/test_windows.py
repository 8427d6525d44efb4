"""Limits per time window: calendar-aligned periods in a time zone, several windows checked
together, a new period starting from zero, and ``retry_after`` on a refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel._ledger import Caps
from shekel._windows import Window, parse_window, parse_zone
from shekel.testing import use_clock

UTC = UTC
PARIS = ZoneInfo("Europe/Paris")


def at(zone: object, *fields: int) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()  # type: ignore[arg-type]


def window(spec: str, zone: object = UTC) -> Window:
    return parse_window(spec, Caps(), zone)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "moment", "label", "ends"),
    [
        ("1d", (2026, 11, 30, 17, 45), "2026-11-30T00:00", (2026, 12, 1)),
        ("1h", (2026, 11, 30, 17, 45), "2026-11-30T17:00", (2026, 11, 30, 18)),
        ("15m", (2026, 11, 30, 17, 45, 10), "2026-11-30T17:45", (2026, 11, 30, 18)),
        ("30s", (2026, 11, 30, 17, 45, 10), "2026-11-30T17:45:00", (2026, 11, 30, 17, 45, 30)),
        ("1w", (2026, 12, 3, 9), "2026-11-30T00:00", (2026, 12, 7)),  # Monday to Monday
        ("7d", (2026, 12, 3, 9), "2026-11-30T00:00", (2026, 12, 7)),
        ("month", (2026, 12, 31, 23, 59), "2026-12-01T00:00", (2027, 1, 1)),
        ("month", (2028, 2, 29, 12), "2028-02-01T00:00", (2028, 3, 1)),
    ],
)
def test_periods_are_calendar_aligned(
    spec: str, moment: tuple[int, ...], label: str, ends: tuple[int, ...]
) -> None:
    period = window(spec).period(at(UTC, *moment))
    assert period.label == label
    assert period.ends_at == at(UTC, *ends)


def test_days_start_at_midnight_in_the_time_zone_even_when_the_clocks_change() -> None:
    day = window("1d", PARIS)
    # 29 March 2026 has 23 hours in Paris (summer time starts at 2:00).
    spring = day.period(at(PARIS, 2026, 3, 29, 12))
    assert spring.label == "2026-03-29T00:00"
    assert spring.ends_at - at(PARIS, 2026, 3, 29) == 23 * 3600
    # 25 October 2026 has 25 hours.
    autumn = day.period(at(PARIS, 2026, 10, 25, 12))
    assert autumn.ends_at - at(PARIS, 2026, 10, 25) == 25 * 3600
    # 23:30 UTC on 30 November is already 1 December in Paris.
    late = day.period(at(UTC, 2026, 11, 30, 23, 30))
    assert late.label == "2026-12-01T00:00"


def test_a_month_ends_at_the_first_of_the_next_one_in_the_time_zone() -> None:
    month = window("month", PARIS)
    period = month.period(at(UTC, 2026, 11, 30, 23, 30))  # 00:30 on 1 December in Paris
    assert period.label == "2026-12-01T00:00"
    assert period.ends_at == at(PARIS, 2027, 1, 1)


@pytest.mark.parametrize("spec", ["1x", "0d", "d", "1.5h", "", 5, "monthly", "-1d"])
def test_bad_windows_say_what_is_accepted(spec: object) -> None:
    with pytest.raises(BudgetConfigError, match="window must be"):
        budget(max_usd=1, window=spec)  # type: ignore[arg-type]


def test_bad_time_zones_and_combinations_are_refused() -> None:
    with pytest.raises(BudgetConfigError, match="not a known IANA time zone"):
        parse_zone("Mars/Olympus")
    with pytest.raises(BudgetConfigError, match="timezone needs window"):
        budget(max_usd=1, timezone="UTC")
    with pytest.raises(BudgetConfigError, match="not both"):
        budget(max_usd=1, window="1d", windows={"1h": 1})
    with pytest.raises(BudgetConfigError, match="put every limit in it"):
        budget(max_usd=1, windows={"1h": 1})
    with pytest.raises(BudgetConfigError, match=r"windows\['1h'\] takes"):
        budget(windows={"1h": {"max_dollars": 1}})
    with pytest.raises(BudgetConfigError, match="windows must be a dict"):
        budget(windows={})


def test_a_new_period_starts_from_zero() -> None:
    b = budget(name="rate", max_usd=1, window="2s")
    ends = b.snapshot().period_ends_at
    assert ends is not None
    if ends - time.time() < 0.5:  # too close to the edge: start with a fresh period
        time.sleep(ends - time.time() + 0.05)
    b.record(usd=1)
    with pytest.raises(BudgetExceededError) as caught:
        b.check()
    assert caught.value.window == "2s"
    retry = caught.value.retry_after
    assert retry is not None
    assert 0 < retry <= 2
    time.sleep(retry + 0.05)
    b.check()  # the next period has room again
    assert b.spent == 0
    b.record(usd=0.5)
    assert b.spent == 0.5


def test_several_windows_are_checked_together() -> None:
    user = budget(name="user", windows={"1h": 0.10, "1d": {"max_usd": 1.0, "max_llm_calls": 5}})
    assert user.limit == 1.0  # the longest window is the one it reports
    for _ in range(3):
        user.record(usd=0.03)
    with pytest.raises(BudgetExceededError) as hourly:
        user.record(usd=0.03)  # $0.12 this hour: over $0.10
    assert (hourly.value.window, hourly.value.axis) == ("1h", "usd")
    assert hourly.value.retry_after is not None
    assert 0 < hourly.value.retry_after <= 3600
    assert user.spent == pytest.approx(0.12)
    with pytest.raises(BudgetExceededError) as refused:
        user.check()
    assert refused.value.sent is False


@pytest.fixture
def now() -> Iterator[list[float]]:
    """The time budget windows read: ``now[0]``, which the test moves."""
    moment = [at(UTC, 2099, 6, 13, 23, 58, 30)]
    with use_clock(lambda: moment[0]):
        yield moment


def test_the_refusal_names_the_window_that_frees_up_last(now: list[float]) -> None:
    b = budget(name="multi", windows={"30s": 0.05, "1h": 0.10})
    with pytest.raises(BudgetExceededError) as over:
        b.record(usd=0.06)  # over the 30 seconds' $0.05; $0.06 of the hour's $0.10
    assert (over.value.window, over.value.retry_after) == ("30s", 30)
    with pytest.raises(BudgetExceededError) as refused:
        b.check(usd=0.05, llm_calls=0)  # the hour has no room for it either
    assert (refused.value.window, refused.value.retry_after) == ("1h", 90)  # at midnight
    assert (refused.value.spent, refused.value.limit) == (0.06, 0.10)
    with pytest.raises(BudgetExceededError) as small:
        b.check(usd=0.01, llm_calls=0)  # the hour has room for this one
    assert (small.value.window, small.value.retry_after) == ("30s", 30)
    with pytest.raises(BudgetExceededError) as both:
        b.record(usd=0.05)  # over both windows now
    assert (both.value.window, both.value.retry_after) == ("1h", 90)
    with pytest.raises(BudgetExceededError) as refused:
        b.check()
    assert (refused.value.window, refused.value.retry_after) == ("1h", 90)
    now[0] += 30  # a new 30-second period: the hour still refuses
    with pytest.raises(BudgetExceededError) as still:
        b.check()
    assert (still.value.window, still.value.retry_after) == ("1h", 60)
    now[0] += 60
    b.check()  # waiting what it said was enough


def test_a_lifetime_limit_refusing_too_is_named_without_a_retry_after(now: list[float]) -> None:
    with budget(max_usd=1.0, name="app") as app:
        with budget(name="user", windows={"30s": 0.05, "1h": 0.5}) as user:
            user.record(usd=0.04)
        app.record(usd=0.96)
        with pytest.raises(BudgetExceededError) as caught:
            user.check(usd=0.02)  # waiting for the 30 seconds to pass would not help
    assert (caught.value.budget_name, caught.value.window) == ("app", None)
    assert caught.value.retry_after is None


def test_the_daily_call_cap_of_several_windows() -> None:
    user = budget(name="user", windows={"1h": 10.0, "1d": {"max_llm_calls": 2}})
    user.record(usd=0.01)
    user.record(usd=0.01)
    with pytest.raises(BudgetExceededError) as caught:
        user.check()
    assert (caught.value.window, caught.value.axis) == ("1d", "llm_calls")


def test_a_windowed_child_under_a_lifetime_parent() -> None:
    with (
        budget(max_usd=10, name="app") as app,
        budget(max_usd=1, name="daily", window="1d") as daily,
    ):
        daily.record(usd=0.75)
        assert (daily.spent, app.spent) == (0.75, 0.75)
        with pytest.raises(BudgetExceededError) as caught:
            daily.record(usd=0.5)
        assert caught.value.budget_name == "app.daily"
        assert caught.value.window == "1d"
    assert app.spent == 1.25


def test_seed_000s_per_user_daily_limit_is_one_line(tmp_path: object) -> None:
    """The seed's UserBudgetManager (a dict of budgets, rebuilt each new day) becomes one line
    per request: the store keeps the day's spend, whichever object or process asks."""
    store = f"sqlite:///{tmp_path}/spend.db"

    def handle_request(user_id: str, cost: float) -> None:
        with budget(name=f"user_{user_id}", max_usd=5.00, window="1d", store=store) as b:
            b.record(usd=cost)

    handle_request("123", 3.00)
    handle_request("456", 1.00)
    with pytest.raises(BudgetExceededError) as caught:
        handle_request("123", 2.50)  # accumulates with the first request: $5.50 today
    assert caught.value.budget_name == "user_123"
    assert budget(name="user_456", max_usd=5.00, window="1d", store=store).spent == 1.00
