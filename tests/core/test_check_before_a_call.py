"""budget.check(): the refusal a call would get, before it is made, holding nothing."""

from __future__ import annotations

import pytest

from shekel import (
    BudgetExceededError,
    ToolBudgetExceededError,
    budget,
)


def test_check_raises_what_the_interceptor_would_and_holds_nothing() -> None:
    b = budget(max_usd=1, max_llm_calls=2, name="b")
    b.check()
    b.record(usd=0.1)
    b.record(usd=0.1)
    with pytest.raises(BudgetExceededError) as caught:
        b.check()
    assert (caught.value.sent, caught.value.axis) == (False, "llm_calls")
    assert b.snapshot().llm_calls_used == 2
    snap = b.snapshot()
    assert (snap.usd_reserved, snap.tokens_reserved) == (0, 0)


def test_check_sees_an_exhausted_ancestor() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step")
    root.child("other").record(usd=1)
    with pytest.raises(BudgetExceededError) as caught:
        step.check()
    assert caught.value.budget_name == "root"
    step.check(llm_calls=0)  # nothing asked for: nothing to refuse


def test_check_of_amounts() -> None:
    b = budget(max_usd=1, max_tokens=100, max_tool_calls=1)
    b.check(usd=1, tokens=100, tool_calls=1)
    with pytest.raises(BudgetExceededError, match=r"limit of \$1\.00") as caught:
        b.check(usd=1.01)
    assert caught.value.axis == "usd"
    with pytest.raises(ToolBudgetExceededError):
        b.check(tool_calls=2, llm_calls=0)


def test_a_refusal_names_the_budget_whose_cap_refused() -> None:
    """An auto-capped child of an exhausted parent would only say "$0 of $0"."""
    root = budget(max_usd=1, name="root")
    root.child("other").record(usd=1)
    with pytest.raises(BudgetExceededError) as caught:
        root.child("step", max_usd=0.5).check()
    assert caught.value.budget_name == "root"
    assert caught.value.limit == 1
