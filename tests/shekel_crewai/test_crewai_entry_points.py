"""Every way a crew runs: kickoff, kickoff_async, akickoff (with ``with`` and ``async with``),
agents with max_execution_time, and async_execution tasks running side by side."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.hooks import InterceptionPoint, unregister_hook
from crewai.hooks.dispatch import get_global_hook_list
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

from shekel import Budget, budget
from shekel.testing import FakeProvider, Reply
from shekel_crewai import AgentBudgetExceededError, crew_budget


def _kickoff(crew: Crew, spend: Budget) -> Any:
    with spend:
        return crew.kickoff()


def _kickoff_async(crew: Crew, spend: Budget) -> Any:
    async def main() -> Any:
        async with spend:
            return await crew.kickoff_async()

    return asyncio.run(main())


def _akickoff(crew: Crew, spend: Budget) -> Any:
    async def main() -> Any:
        async with spend:
            return await crew.akickoff()

    return asyncio.run(main())


def _akickoff_entered_outside(crew: Crew, spend: Budget) -> Any:
    with spend:
        return asyncio.run(crew.akickoff())


RUNNERS: dict[str, Callable[[Crew, Budget], Any]] = {
    "kickoff": _kickoff,
    "kickoff_async": _kickoff_async,
    "akickoff": _akickoff,
    "akickoff_in_with": _akickoff_entered_outside,
}
TIMEOUTS = [None, 30]


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=["", "max_execution_time"])
@pytest.mark.parametrize("run", RUNNERS.values(), ids=RUNNERS.keys())
def test_each_agent_pays_for_its_calls(
    fake: FakeProvider, run: Callable[[Crew, Budget], Any], timeout: int | None
) -> None:
    crew = make_crew(
        openai_llm(fake), analyst_tasks=2, agent_options={"max_execution_time": timeout}
    )
    crew_budget(crew, tasks={"write": 0.5}, name=None)
    spend = budget(max_usd=1.0, name="crew", prices=PRICES)
    output = run(crew, spend)
    assert output.raw == "done"
    assert requests_by_role(fake) == {ANALYST: 2, WRITER: 1}
    assert child(spend, ANALYST).snapshot().llm_calls_used == 2
    assert child(spend, WRITER, "write").snapshot().llm_calls_used == 1
    assert spend.spent == pytest.approx(cost(3), abs=1e-12)
    assert spend.spent_direct == 0


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=["", "max_execution_time"])
@pytest.mark.parametrize("run", RUNNERS.values(), ids=RUNNERS.keys())
def test_an_agent_cap_stops_the_agent_without_retry(
    fake: FakeProvider,
    tries: LLMCallCounter,
    run: Callable[[Crew, Budget], Any],
    timeout: int | None,
) -> None:
    crew = make_crew(
        openai_llm(fake), analyst_tasks=2, agent_options={"max_execution_time": timeout}
    )
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    spend = budget(name="crew", prices=PRICES)
    with pytest.raises(AgentBudgetExceededError) as caught:
        run(crew, spend)
    assert (caught.value.budget_name, caught.value.sent) == ("crew.Research Analyst", False)
    assert requests_by_role(fake) == {ANALYST: 1}
    assert tries.tries == {ANALYST: 2}
    assert child(spend, ANALYST).snapshot().llm_calls_used == 1


# -- async_execution tasks side by side ---------------------------------------------------------


class Meeting:
    """A CrewAI before_llm_call hook that holds each LLM call until ``parties`` calls are in
    flight at once: it passes only if the calls really run side by side."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.met: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, context: Any) -> None:
        if len(self.met) >= self.barrier.parties:
            return
        try:
            self.barrier.wait()
            met = True
        except threading.BrokenBarrierError:
            met = False
        with self.lock:
            self.met.append(met)


def side_by_side_crew(fake: FakeProvider) -> Crew:
    """The analyst and the writer each get an async task (run at once), then the writer a
    last task that waits for both."""
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=openai_llm(fake))
    writer = Agent(role=WRITER, goal="g", backstory="b", llm=openai_llm(fake))
    research = Task(
        name="research", description="r", expected_output="o", agent=analyst, async_execution=True
    )
    outline = Task(
        name="outline", description="o", expected_output="o", agent=writer, async_execution=True
    )
    write = Task(
        name="write",
        description="w",
        expected_output="o",
        agent=writer,
        context=[research, outline],
    )
    return Crew(agents=[analyst, writer], tasks=[research, outline, write])


@pytest.fixture
def meeting() -> Any:
    hook = Meeting(2)
    get_global_hook_list(InterceptionPoint.PRE_MODEL_CALL).insert(0, hook)
    yield hook
    unregister_hook(InterceptionPoint.PRE_MODEL_CALL, hook)


@pytest.mark.parametrize("run", [_kickoff, _akickoff], ids=["kickoff", "akickoff"])
def test_async_tasks_side_by_side_pay_for_their_own_agents(
    fake: FakeProvider, meeting: Meeting, run: Callable[[Crew, Budget], Any]
) -> None:
    crew = side_by_side_crew(fake)
    crew_budget(crew, tasks={"research": None, "outline": None}, name=None)
    spend = budget(max_usd=1.0, name="crew", prices=PRICES)
    run(crew, spend)
    assert meeting.met == [True, True]
    assert requests_by_role(fake) == {ANALYST: 1, WRITER: 2}
    assert child(spend, ANALYST, "research").snapshot().llm_calls_used == 1
    assert child(spend, WRITER, "outline").snapshot().llm_calls_used == 1
    assert child(spend, WRITER).spent == pytest.approx(cost(2), abs=1e-12)
    assert child(spend, WRITER).spent_direct == pytest.approx(cost(1), abs=1e-12)
    assert spend.spent == pytest.approx(cost(3), abs=1e-12)
    assert spend.active_child is None


def test_a_capped_agent_in_a_side_task_stops_the_crew(
    fake: FakeProvider, tries: LLMCallCounter
) -> None:
    fake.enqueue(Reply(latency=0.2), Reply(latency=0.2))
    crew = side_by_side_crew(fake)
    crew.tasks[2].agent = crew.agents[0]  # the analyst also writes: its second call is refused
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 1}}, name=None)
    spend = budget(name="crew", prices=PRICES)
    with pytest.raises(AgentBudgetExceededError) as caught:
        _kickoff(crew, spend)
    assert (caught.value.budget_name, caught.value.task_name) == ("crew.Research Analyst", "write")
    assert requests_by_role(fake) == {ANALYST: 1, WRITER: 1}
    assert tries.tries == {ANALYST: 2, WRITER: 1}
