"""Budget members that moved keep working for code written against them, with a
DeprecationWarning that names the new spelling; names that never existed still raise
AttributeError."""

from __future__ import annotations

import re

import pytest

from shekel import budget


def test_each_moved_counter_warns_names_its_replacement_and_gives_the_same_value() -> None:
    with budget(max_usd=10, max_tokens=1_000, name="run", tool_prices={"search": 0.01}) as run:
        with budget(max_usd=2, name="step") as step:
            step.record(model="gpt-4o-mini", input_tokens=100, output_tokens=20)
            step.tool_call("search").commit()
        snap = run.snapshot()
        moved = {
            "calls_used": ("snapshot().llm_calls_used", snap.llm_calls_used),
            "tool_calls_used": ("snapshot().tool_calls_used", snap.tool_calls_used),
            "tokens_used": ("snapshot().tokens_used", snap.tokens_used),
            "max_usd": ("config.max_usd", 10.0),
        }
        for name, (instead, value) in moved.items():
            with pytest.warns(
                DeprecationWarning, match=rf"Budget\.{name} .*{re.escape(instead)}"
            ) as seen:
                assert getattr(run, name) == value
            assert seen[0].filename == __file__  # the warning points at the caller's line
        assert (snap.llm_calls_used, snap.tool_calls_used, snap.tokens_used) == (1, 1, 120)
        with pytest.warns(DeprecationWarning, match="depth"):
            assert step.depth == 1
        with pytest.warns(DeprecationWarning, match="active_child"):
            assert run.active_children == ()


def test_record_tool_call_is_tool_call_then_commit() -> None:
    with budget(max_tool_calls=1, tool_prices={"search": 0.25}) as b:
        with pytest.warns(DeprecationWarning, match=r"tool_call\(name, usd\)\.commit\(\)"):
            record = b.record_tool_call("search")
        assert record.cost_usd == 0.25
        assert b.snapshot().tool_calls_used == 1
        assert b.spent == 0.25


def test_period_ends_at_and_fallback_model_still_answer() -> None:
    with budget(windows={"1d": 5.0}, fallback={"at_pct": 0.5, "model": "cheap"}) as b:
        with pytest.warns(DeprecationWarning, match=r"snapshot\(\)\.period_ends_at"):
            ends = b.period_ends_at()
        assert ends == b.snapshot().period_ends_at is not None
        b.record(usd=3.0)
        with pytest.warns(DeprecationWarning, match="model_switched"):
            assert b.fallback_model() == "cheap"


def test_a_name_that_never_existed_is_an_attribute_error() -> None:
    b = budget(max_usd=1)
    with pytest.raises(AttributeError, match="'Budget' object has no attribute 'spnet'"):
        b.spnet  # noqa: B018
