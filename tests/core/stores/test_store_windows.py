"""Budgets per time window: the periods of every kind of window (driven with explicit times:
clock windows, calendar days across the changes of clocks, month ends, weeks, 30 days), and
budgets in a store crossing from one period to the next on a clock the test moves, with several
windows checked together and the refusing window named with the time until it frees up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openai
import pytest

from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel._ledger import Caps
from shekel._stores import open_store
from shekel._windows import parse_window, parse_zone
from shekel.testing import FakeProvider, use_clock

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def at(zone: str, *parts: int, fold: int = 0) -> float:
    """The POSIX time of a local wall-clock time in ``zone``."""
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).timestamp()  # type: ignore[misc]


def period(spec: str, zone: str, now: float) -> tuple[str, float]:
    found = parse_window(spec, Caps(), parse_zone(zone)).period(now)
    return found.label, found.ends_at


# -- periods -----------------------------------------------------------------------------------


def test_clock_windows_start_on_the_clock() -> None:
    now = at("UTC", 2026, 3, 4, 10, 7, 30)
    assert period("15m", "UTC", now) == ("2026-03-04T10:00", at("UTC", 2026, 3, 4, 10, 15))
    assert period("1h", "UTC", now) == ("2026-03-04T10:00", at("UTC", 2026, 3, 4, 11))
    assert period("6h", "UTC", now) == ("2026-03-04T06:00", at("UTC", 2026, 3, 4, 12))
    # a zone three quarters of an hour off UTC: quarters start on its own clock
    label, ends = period("15m", "Asia/Kathmandu", at("Asia/Kathmandu", 2026, 1, 1, 5, 52))
    assert (label, ends) == ("2026-01-01T05:45", at("Asia/Kathmandu", 2026, 1, 1, 6))


def test_the_hour_repeated_when_clocks_go_back_is_two_hours() -> None:
    # Paris, 25 October 2026: at 03:00 summer time the clocks go back to 02:00
    first = at(PARIS, 2026, 10, 25, 2, 30, fold=0)
    second = at(PARIS, 2026, 10, 25, 2, 30, fold=1)
    assert second - first == 3600
    assert period("1h", PARIS, first) == ("2026-10-25T02:00", first + 1800)
    assert period("1h", PARIS, second) == ("2026-10-25T02:00+01:00", second + 1800)  # its own
    # the day itself has 25 hours
    label, ends = period("1d", PARIS, first)
    assert label == "2026-10-25T00:00"
    assert ends - at(PARIS, 2026, 10, 25, 0, 0) == 25 * 3600


def test_the_day_clocks_go_forward_has_23_hours() -> None:
    # Paris, 29 March 2026: at 02:00 winter time the clocks go forward to 03:00
    label, ends = period("1d", PARIS, at(PARIS, 2026, 3, 29, 12, 0))
    assert label == "2026-03-29T00:00"
    assert ends - at(PARIS, 2026, 3, 29, 0, 0) == 23 * 3600
    before = at(PARIS, 2026, 3, 29, 1, 59)
    assert period("1h", PARIS, before) == ("2026-03-29T01:00", before + 60)
    assert period("1h", PARIS, before + 60)[0] == "2026-03-29T03:00"


@pytest.mark.parametrize(
    ("zone", "now", "label", "ends"),
    [
        ("UTC", (2026, 1, 31, 23, 59), "2026-01-01T00:00", (2026, 2, 1)),
        ("UTC", (2028, 2, 29, 12, 0), "2028-02-01T00:00", (2028, 3, 1)),  # a leap year
        ("UTC", (2026, 2, 28, 12, 0), "2026-02-01T00:00", (2026, 3, 1)),
        ("UTC", (2026, 12, 31, 23, 0), "2026-12-01T00:00", (2027, 1, 1)),
        (NEW_YORK, (2026, 3, 31, 23, 30), "2026-03-01T00:00", (2026, 4, 1)),  # EST -> EDT
        (NEW_YORK, (2026, 11, 1, 0, 30), "2026-11-01T00:00", (2026, 12, 1)),
    ],
)
def test_months_end_at_local_midnight_on_the_first(
    zone: str, now: tuple[int, ...], label: str, ends: tuple[int, ...]
) -> None:
    assert period("month", zone, at(zone, *now)) == (label, at(zone, *ends))


def test_weeks_start_on_monday_and_30_days_count_from_a_monday() -> None:
    sunday = at(NEW_YORK, 2026, 3, 8, 23, 0)  # the clocks went forward that morning
    assert period("7d", NEW_YORK, sunday) == ("2026-03-02T00:00", at(NEW_YORK, 2026, 3, 9))
    assert period("1w", NEW_YORK, sunday) == period("7d", NEW_YORK, sunday)
    label, ends = period("30d", "UTC", at("UTC", 2026, 3, 4))
    start = datetime.fromisoformat(label).replace(tzinfo=UTC)
    assert (start - datetime(1970, 1, 5, tzinfo=UTC)).days % 30 == 0
    assert ends - start.timestamp() == 30 * 86400
    assert start.timestamp() <= at("UTC", 2026, 3, 4) < ends


def test_bad_windows_and_zones_say_what_to_write() -> None:
    with pytest.raises(BudgetConfigError, match='"15m", "1h", "1d"'):
        budget(max_usd=1, window="daily")
    with pytest.raises(BudgetConfigError, match="IANA"):
        budget(max_usd=1, window="1d", timezone="Mars/Olympus")


# -- budgets in a store, on a clock the test moves ----------------------------------------------


class Clock:
    """The time budget windows read (``use_clock``): what the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    # in the future: a store forgets a period's account a window after it ended
    found = Clock(at(PARIS, 2099, 6, 13, 23, 58, 30))
    with use_clock(found.time):
        yield found


def test_a_window_rolls_over_to_a_fresh_period_in_the_store(store: str, clock: Clock) -> None:
    b = budget(name="hourly", max_usd=1, window="1h", timezone=PARIS, store=store)
    b.record(usd=0.75)
    with pytest.raises(BudgetExceededError) as caught:
        b.reserve(usd=0.5)
    assert caught.value.window == "1h"
    assert caught.value.retry_after == 90  # 23:58:30 -> midnight
    clock.now += 90
    with b.reserve(usd=0.5) as held:  # a new hour, a new account
        held.commit(usd=0.5)
    assert b.spent == 0.5
    keys = sorted(a["key"] for a in open_store(store).accounts("hourly"))
    assert keys == ["hourly@1h/2099-06-13T23:00", "hourly@1h/2099-06-14T00:00"]
    spent = {a["key"]: a["used"][0] for a in open_store(store).accounts("hourly")}
    assert spent == {keys[0]: 750_000_000, keys[1]: 500_000_000}


def test_a_minute_and_a_day_are_checked_together(store: str, clock: Clock) -> None:
    b = budget(name="user_1", windows={"1m": 1.0, "1d": 3.0}, timezone=PARIS, store=store)
    assert b.limit == 3.0  # the longest window's limit is the one shown
    b.record(usd=0.9)
    with pytest.raises(BudgetExceededError) as minute:
        b.reserve(usd=0.2)
    assert (minute.value.window, minute.value.retry_after) == ("1m", 30)  # 23:58:30 -> 23:59
    clock.now += 60  # 23:59:30
    b.record(usd=0.9)
    clock.now += 60  # 00:00:30: a new minute and a new day
    b.record(usd=0.9)
    for _ in range(2):
        clock.now += 60
        b.record(usd=0.95)
    clock.now += 60  # 00:03:30, $2.80 spent today
    with pytest.raises(BudgetExceededError) as day:
        b.reserve(usd=0.25)  # this minute has room, the day has not
    assert day.value.window == "1d"
    assert day.value.retry_after == at(PARIS, 2099, 6, 15) - clock.now
    assert day.value.budget_name == "user_1"
    assert b.spent == pytest.approx(2.8)  # the day's spend: the day before is its own period
    b.check(usd=0.2, llm_calls=0)  # exactly to the day's limit
    with pytest.raises(BudgetExceededError):
        b.check(usd=0.21, llm_calls=0)


def test_the_window_named_is_the_one_that_frees_up_last(store: str, clock: Clock) -> None:
    b = budget(name="multi", windows={"30s": 0.05, "1h": 0.05}, timezone=PARIS, store=store)
    with pytest.raises(BudgetExceededError) as over:
        b.record(usd=0.06)  # over both windows
    assert (over.value.window, over.value.retry_after) == ("1h", 90)  # 23:58:30 -> midnight
    with pytest.raises(BudgetExceededError) as refused:
        b.check()
    assert (refused.value.window, refused.value.retry_after) == ("1h", 90)
    clock.now += 30  # a new 30-second period: the hour still refuses
    with pytest.raises(BudgetExceededError) as still:
        b.check()
    assert (still.value.window, still.value.retry_after) == ("1h", 60)
    clock.now += 60
    b.check()  # waiting what it said was enough
    b.record(usd=0.01)


def test_a_daily_budget_per_user_through_the_sdk(store: str, clock: Clock) -> None:
    with FakeProvider() as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
        cap = 0.00001  # a call costs $0.0000036: two calls and a bit
        with budget(name="user_7", max_usd=cap, window="1d", store=store) as b:
            errors: list[BudgetExceededError] = []
            for _ in range(4):
                try:
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                    )
                except BudgetExceededError as error:
                    errors.append(error)
            # the third call crossed the cap (recorded, then raised); the fourth was refused
            assert (b.snapshot().llm_calls_used, [e.sent for e in errors]) == (3, [True, False])
            midnight = at("UTC", 2099, 6, 14)
            for error in errors:
                assert (error.window, error.retry_after) == ("1d", midnight - clock.now)
            clock.now = at("UTC", 2099, 6, 14, 0, 0, 1)
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert b.snapshot().llm_calls_used == 1
        assert len(fake.requests) == 4
        client.close()


@pytest.fixture
def default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("SHEKEL_STORE", url)
    return url


def test_a_windowed_budget_without_a_store_uses_the_default_store(
    default_store: str, clock: Clock
) -> None:
    budget(name="env", max_usd=1, window="1d").record(usd=0.25)
    assert budget(name="env", max_usd=1, window="1d").spent == 0.25
    used = {a["key"]: a["used"][0] for a in open_store(default_store).accounts()}
    assert used == {"env@1d/2099-06-13T00:00": 250_000_000}
