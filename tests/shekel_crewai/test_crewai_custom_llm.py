"""Custom BaseLLMs that never reach an SDK: recorded once per call from the usage CrewAI
reports (LLMCallCompletedEvent), on the agent's budget, before the agent's next call."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from crewai.events import crewai_event_bus
from crews import ANALYST, FINAL, PRICES, SCRIPTED_IN, SCRIPTED_OUT, WRITER, ScriptedLLM, cost
from crews import two_agent_crew as make_crew

from shekel import UsageMissingWarning, budget
from shekel_crewai import AgentBudgetExceededError, crew_budget

MODEL = "scripted-1"


@pytest.mark.parametrize("entry", ["kickoff", "akickoff"])
def test_each_call_is_recorded_once_on_its_agent(entry: str) -> None:
    analyst_llm, writer_llm = ScriptedLLM(model=MODEL), ScriptedLLM(model=MODEL)
    crew = make_crew(analyst_llm, writer_llm, analyst_tasks=2)
    with budget(max_usd=1.0, name="crew", prices=PRICES) as spend:
        if entry == "kickoff":
            crew.kickoff()
        else:
            asyncio.run(crew.akickoff())
        crewai_event_bus.flush()  # the event bus's late copy of each report has run too
    assert (analyst_llm.calls, writer_llm.calls) == (2, 1)
    analyst, writer = spend.children
    assert (analyst.name, writer.name) == (ANALYST, WRITER)
    assert (analyst.snapshot().llm_calls_used, writer.snapshot().llm_calls_used) == (2, 1)
    assert analyst.snapshot().tokens_used == 2 * (SCRIPTED_IN + SCRIPTED_OUT)
    assert analyst.spent == pytest.approx(cost(2, MODEL), abs=1e-12)
    assert spend.spent == pytest.approx(cost(3, MODEL), abs=1e-12)
    records = analyst.history().calls
    assert {r.source for r in records} == {"crewai"}
    assert len({r.call_id for r in records}) == 2


def test_a_call_is_on_the_agents_budget_before_the_llm_returns() -> None:
    """Recorded in the calling thread, not later by the event bus's workers: the agent's
    next call is checked against it."""
    analyst_llm = ScriptedLLM(model=MODEL)
    crew = make_crew(analyst_llm, ScriptedLLM(model=MODEL), analyst_tasks=3)
    with budget(name="crew", prices=PRICES):
        crew.kickoff()
    assert analyst_llm.counted == [1, 2, 3]


def test_a_custom_llm_repeating_one_response_id_loses_no_call() -> None:
    llm = ScriptedLLM(model=MODEL, response_id="resp-always-the-same")
    crew = make_crew(llm, analyst_tasks=2)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
        crewai_event_bus.flush()
    assert llm.calls == 3
    assert spend.snapshot().llm_calls_used == 3
    assert spend.spent == pytest.approx(cost(3, MODEL), abs=1e-12)


def test_a_custom_llm_agent_is_stopped_before_its_next_call() -> None:
    analyst_llm = ScriptedLLM(model=MODEL)
    crew = make_crew(analyst_llm, ScriptedLLM(model=MODEL), analyst_tasks=3)
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 2}}, name=None)
    spend = budget(name="crew", prices=PRICES)
    with pytest.raises(AgentBudgetExceededError) as caught, spend:
        crew.kickoff()
    assert caught.value.task_name == "research 3"
    assert analyst_llm.calls == 2
    assert spend.children[0].snapshot().llm_calls_used == 2


def test_a_custom_llm_call_crossing_a_usd_cap_is_recorded_and_stops_the_next() -> None:
    analyst_llm = ScriptedLLM(model=MODEL)
    crew = make_crew(analyst_llm, ScriptedLLM(model=MODEL), analyst_tasks=2)
    crew_budget(crew, agents={ANALYST: cost(1, MODEL) / 2}, name=None)
    spend = budget(name="crew", prices=PRICES)
    with pytest.raises(AgentBudgetExceededError) as caught, spend:
        crew.kickoff()
    assert (caught.value.sent, caught.value.axis) == (False, "usd")
    assert analyst_llm.calls == 1
    assert spend.children[0].spent == pytest.approx(cost(1, MODEL), abs=1e-12)


def test_a_direct_call_outside_any_agent_is_recorded_by_the_event_bus() -> None:
    llm = ScriptedLLM(model=MODEL)
    with budget(name="direct", prices=PRICES) as direct:
        llm.call("hello")
        crewai_event_bus.flush()
    assert direct.snapshot().llm_calls_used == 1
    assert direct.spent == pytest.approx(cost(1, MODEL), abs=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_report_without_usage_is_estimated_from_the_texts_with_a_warning() -> None:
    llm = ScriptedLLM(model="no-usage-model", usage=None, sends="x" * 400)
    crew = make_crew(llm)
    prices = {"no-usage-model": {"input": 1.0, "output": 1.0}}
    with (
        budget(name="crew", prices=prices) as spend,
        pytest.warns(UsageMissingWarning, match="'no-usage-model' ran without token usage"),
    ):
        crew.kickoff()
    calls = [call for child in spend.children for call in child.history().calls]
    final = len(FINAL) // 4  # a token per four characters of the reply
    assert [(c.source, c.estimated, c.input_tokens, c.output_tokens) for c in calls] == [
        ("crewai", True, 100, final)
    ] * 2
    assert spend.spent == pytest.approx(2 * (100 + final) / 1e6, abs=1e-12)


def test_a_custom_llm_that_reports_nothing_is_invisible() -> None:
    """A known limit: without an LLMCallCompletedEvent CrewAI reports nothing to count."""
    llm = ScriptedLLM(model=MODEL, emit=False)
    crew = make_crew(llm)
    with warnings.catch_warnings(), budget(name="crew", prices=PRICES) as spend:
        warnings.simplefilter("error", UsageMissingWarning)
        crew.kickoff()
    assert llm.calls == 2
    assert spend.snapshot().llm_calls_used == 0
    assert [c.name for c in spend.children] == [ANALYST, WRITER]
