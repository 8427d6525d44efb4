"""``loop_guard=N`` stops the Nth identical call within a budget before it runs: the same tool
with the same arguments, or the same last message to the same model."""

from __future__ import annotations

import contextlib
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from shekel import BudgetConfigError, LoopGuardError, budget
from shekel.testing import FakeProvider

EXAMPLE = Path(__file__).parents[2] / "examples" / "runaway_agent.py"


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """What a test opens, closed when it ends (clients' sockets, before the next test)."""
    with contextlib.ExitStack() as stack:
        yield stack


def test_the_third_identical_tool_call_is_stopped_before_it_runs() -> None:
    with budget(max_usd=1, name="agent", loop_guard=3) as b:
        for _ in range(2):
            with b.tool_call("search", arguments={"q": "shekel"}):
                pass
        with b.tool_call("search", arguments={"q": "other"}):
            pass  # other arguments: another call
        with pytest.raises(LoopGuardError) as caught:
            b.tool_call("search", arguments={"q": "shekel"})
    error = caught.value
    assert error.sent is False
    assert error.count == 3
    assert error.budget_name == "agent"
    assert 'tool \'search\' with {"q": "shekel"}' in str(error)
    assert "3rd time" in str(error)
    assert b.snapshot().tool_calls_used == 3


def test_a_parents_guard_counts_the_calls_of_its_children() -> None:
    with budget(max_usd=1, name="app", loop_guard=2) as app:
        with budget(name="one") as one:
            one.tool_call("fetch", arguments=["a"]).commit()
        with budget(name="two") as two, pytest.raises(LoopGuardError) as caught:
            two.tool_call("fetch", arguments=["a"]).commit()
    assert caught.value.budget_name == "app"
    assert app.snapshot().tool_calls_used == 1


def test_reset_forgets_the_calls_seen() -> None:
    b = budget(max_usd=1, name="agent", loop_guard=2)
    with b:
        b.tool_call("search", arguments=1).commit()
    b.reset()
    with b:
        b.tool_call("search", arguments=1).commit()


@pytest.mark.parametrize("value", [0, 1, 2.5, "3", True])
def test_loop_guard_must_be_a_whole_number_of_at_least_two(value: object) -> None:
    with pytest.raises(BudgetConfigError, match="loop_guard"):
        budget(max_usd=1, loop_guard=value)  # type: ignore[arg-type]


def test_the_same_last_message_to_the_same_model_is_a_repeat(
    fake_llm: FakeProvider, closing: contextlib.ExitStack
) -> None:
    fake = fake_llm
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
    closing.callback(client.close)
    history = [{"role": "user", "content": "Write JSON."}]
    fix = {"role": "user", "content": "That is not valid JSON. Fix your answer."}
    with budget(max_usd=1, name="agent", loop_guard=3) as b:
        client.chat.completions.create(model="gpt-4o-mini", messages=history)
        for turn in range(2):
            history += [{"role": "assistant", "content": f"oops {turn}"}, fix]
            client.chat.completions.create(model="gpt-4o-mini", messages=history)
        history += [{"role": "assistant", "content": "oops again"}, fix]
        with pytest.raises(LoopGuardError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=history)
        client.chat.completions.create(model="gpt-4o", messages=history)  # another model
    assert "the same request to gpt-4o-mini" in str(caught.value)
    assert len(fake.requests) == 4  # the refused one was never sent, nor retried
    assert b.snapshot().llm_calls_used == 4


def test_the_runaway_agent_is_stopped_before_the_cap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE)])
    with budget(max_usd=0.05, name="run", loop_guard=3) as b, pytest.raises(LoopGuardError):
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert (
        b.snapshot().llm_calls_used == 3
    )  # the task, then "fix it" twice; the third "fix it" never went
    assert b.spent < 0.05
    assert "attempt 4" in capsys.readouterr().out
