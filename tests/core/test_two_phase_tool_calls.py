"""Two-phase tool calls (budget.tool_call): checked before the tool runs, released when it fails."""

from __future__ import annotations

import pytest

from shekel import (
    ToolBudgetExceededError,
    budget,
)


def test_a_tool_call_is_counted_before_it_runs_and_committed_after() -> None:
    b = budget(max_usd=1, max_tool_calls=2, tool_prices={"search": 0.05})
    with b.tool_call("search") as call:
        assert b.snapshot().tool_calls_remaining == 1  # held while the tool runs
        assert call.usd == 0.05
        call.commit(usd=0.01)
    with b.tool_call("search"):
        pass  # ends normally: recorded at its held price
    assert b.snapshot().tool_calls_used == 2
    assert b.spent == pytest.approx(0.06)
    with pytest.raises(ToolBudgetExceededError) as caught, b.tool_call("search"):
        pytest.fail("a third call must not run")
    assert caught.value.sent is False
    assert caught.value.tool_name == "search"
    assert [c.tool_name for c in b.history().calls] == ["search", "search"]


def test_a_failed_tool_is_released() -> None:
    b = budget(max_usd=1, max_tool_calls=1)
    with pytest.raises(ValueError, match="tool failed"), b.tool_call("scrape", usd=0.5):
        raise ValueError("tool failed")
    snap = b.snapshot()
    assert (snap.tool_calls_used, snap.tool_calls_remaining, snap.usd_reserved) == (0, 1, 0)
    assert b.spent == 0


def test_tool_calls_held_at_once_count_against_the_cap() -> None:
    b = budget(max_tool_calls=2)
    first, second = b.tool_call("a"), b.tool_call("b")
    with pytest.raises(ToolBudgetExceededError):
        b.tool_call("c")
    first.release()
    second.commit()
    b.tool_call("c").commit()
    assert b.snapshot().tool_calls_used == 2
