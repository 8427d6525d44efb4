"""Stopping: an agent whose budget (or an ancestor) has no room left is stopped before its next
LLM call with AgentBudgetExceededError, which CrewAI neither retries nor wraps, and which
ends the crew. Request counts come from the fake provider's log; tries from a CrewAI hook of
the test's own that runs before shekel's."""

from __future__ import annotations

import pytest
from crewai.hooks import HookAborted
from crews import (
    ANALYST,
    PRICES,
    WRITER,
    LLMCallCounter,
    child,
    cost,
    openai_llm,
    requests_by_role,
)
from crews import two_agent_crew as make_crew

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider
from shekel_crewai import AgentBudgetExceededError, crew_budget


def test_an_agent_cap_stops_that_agent_before_its_next_call_without_retry(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    crew = make_crew(openai_llm(fake), analyst_tasks=2)
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    spend = budget(max_usd=1.0, name="crew", prices=PRICES)
    with pytest.raises(AgentBudgetExceededError) as caught, spend:
        crew.kickoff()
    error = caught.value
    assert isinstance(error, BudgetExceededError)
    assert isinstance(error, HookAborted)
    assert (error.budget_name, error.axis, error.sent) == (
        "crew.Research Analyst",
        "llm_calls",
        False,
    )
    assert (error.agent_role, error.task_name) == (ANALYST, "research 2")
    assert str(error).startswith(
        "agent 'Research Analyst' (task 'research 2') was stopped: budget 'crew.Research "
        "Analyst' has no room left for this call under its limit of 1 LLM call"
    )
    assert requests_by_role(fake) == {ANALYST: 1}  # the writer's task never ran
    assert tries.tries == {ANALYST: 2}  # one sent, one refused: no CrewAI retry
    assert child(spend, ANALYST).snapshot().llm_calls_used == 1
    assert spend.spent == pytest.approx(cost(1), abs=1e-12)


def test_the_crew_cap_stops_the_crew(fake: FakeProvider, tries: LLMCallCounter) -> None:
    crew = crew_budget(make_crew(openai_llm(fake), analyst_tasks=2), max_llm_calls=2)
    with pytest.raises(AgentBudgetExceededError) as caught, budget(name="app", prices=PRICES):
        crew.kickoff()
    assert caught.value.budget_name == "app.crew"
    assert caught.value.agent_role == WRITER
    assert requests_by_role(fake) == {ANALYST: 2}
    assert tries.tries == {ANALYST: 2, WRITER: 1}


def test_the_call_that_crosses_a_usd_cap_ends_the_crew_without_retry(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    """Without strict mode the call that crosses the cap is sent and recorded; the SDK raises
    inside CrewAI's LLM call, which CrewAI would retry: the retry is refused at once."""
    crew = make_crew(openai_llm(fake), analyst_tasks=2)
    crew_budget(crew, agents={ANALYST: cost(1) * 1.5}, name=None)
    with pytest.raises(AgentBudgetExceededError) as caught:
        with budget(name="crew", prices=PRICES) as spend:
            crew.kickoff()
    error = caught.value
    assert (error.budget_name, error.axis, error.sent) == ("crew.Research Analyst", "usd", True)
    assert error.call is not None
    assert error.call.cost_usd == pytest.approx(cost(1), abs=1e-12)
    assert "exceeded its limit of $" in str(error)
    assert str(error).startswith("agent 'Research Analyst' (task 'research 2') was stopped: ")
    assert requests_by_role(fake) == {ANALYST: 2}
    assert tries.tries == {ANALYST: 2}
    assert child(spend, ANALYST).spent == pytest.approx(cost(2), abs=1e-12)


@pytest.mark.parametrize("max_retry_limit", [0, 2])
def test_a_cap_crossed_under_max_execution_time_is_not_a_runtime_error(
    fake: FakeProvider, tries: LLMCallCounter, max_retry_limit: int
) -> None:
    """CrewAI wraps errors of a timed task in RuntimeError("Task execution failed: ...")."""
    crew = make_crew(
        openai_llm(fake),
        analyst_tasks=2,
        agent_options={"max_execution_time": 30, "max_retry_limit": max_retry_limit},
    )
    crew_budget(crew, agents={ANALYST: cost(1) * 1.5}, name=None)
    with pytest.raises(AgentBudgetExceededError) as caught, budget(name="crew", prices=PRICES):
        crew.kickoff()
    assert caught.value.budget_name == "crew.Research Analyst"
    assert caught.value.sent is True
    assert requests_by_role(fake) == {ANALYST: 2}
    assert tries.tries == {ANALYST: 2}


def test_a_refusal_under_max_execution_time_is_not_a_runtime_error(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    crew = make_crew(openai_llm(fake), analyst_tasks=2, agent_options={"max_execution_time": 30})
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    with pytest.raises(AgentBudgetExceededError) as caught, budget(name="crew", prices=PRICES):
        crew.kickoff()
    assert (caught.value.budget_name, caught.value.sent) == ("crew.Research Analyst", False)
    assert requests_by_role(fake) == {ANALYST: 1}
    assert tries.tries == {ANALYST: 2}


def test_a_strict_refusal_inside_the_sdk_is_not_retried(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    """A strict budget with a little money left passes the check (there is room) but cannot
    hold the prompt: shekel refuses inside the SDK, where CrewAI sees a plain failure."""
    crew = make_crew(openai_llm(fake))
    with pytest.raises(AgentBudgetExceededError) as caught:
        with budget(max_usd=0.000001, name="crew", strict=True, prices=PRICES):
            crew.kickoff()
    assert (caught.value.budget_name, caught.value.sent) == ("crew", False)
    assert caught.value.agent_role == ANALYST
    assert fake.requests == []
    assert tries.tries == {ANALYST: 1}


def test_raising_the_limit_lets_the_crew_go_on(fake: FakeProvider) -> None:
    crew = make_crew(openai_llm(fake), analyst_tasks=2)
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        with pytest.raises(AgentBudgetExceededError):
            crew.kickoff()
        child(spend, ANALYST).set_limits(max_llm_calls=10)
        crew.kickoff()
    assert requests_by_role(fake) == {ANALYST: 3, WRITER: 1}
    assert child(spend, ANALYST).snapshot().llm_calls_used == 3


def test_a_plain_budget_stops_the_crew_the_same_way(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    crew = make_crew(openai_llm(fake), analyst_tasks=2)
    with pytest.raises(AgentBudgetExceededError) as caught, budget(max_llm_calls=1, name="b"):
        crew.kickoff()
    assert caught.value.budget_name == "b"
    assert len(fake.requests) == 1
    assert tries.tries == {ANALYST: 2}


def test_caught_around_kickoff_the_error_leaves_no_budget_active(fake: FakeProvider) -> None:
    crew = make_crew(openai_llm(fake), analyst_tasks=2)
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    with budget(name="crew") as spend:
        try:
            crew.kickoff()
        except BudgetExceededError as error:
            stopped = error
        assert spend.active_child is None
    assert isinstance(stopped, AgentBudgetExceededError)


def test_a_direct_llm_call_is_stopped_before_it_is_sent(fake: FakeProvider) -> None:
    """CrewAI's providers run the same hooks for calls made outside any agent."""
    llm = openai_llm(fake)
    with budget(max_llm_calls=1, name="direct") as direct:
        llm.call("one")
        with pytest.raises(AgentBudgetExceededError) as caught:
            llm.call("two")
    assert caught.value.agent_role is None
    assert str(caught.value).startswith(
        "CrewAI's LLM call was stopped: budget 'direct' has no room left for this call"
    )
    assert len(fake.requests) == 1
    assert direct.snapshot().llm_calls_used == 1
