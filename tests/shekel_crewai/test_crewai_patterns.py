"""Agents run outside a crew's kickoff: seed 004's "CrewAI Per-Agent Budgets" (each agent's
execute_task inside a budget of the caller's own) and delegation to a coworker."""

from __future__ import annotations

import pytest
from crewai import Agent, Crew, Process, Task
from crews import ANALYST, PRICES, WRITER, ScriptedLLM, child, cost, openai_llm, requests_by_role

from shekel import budget
from shekel.testing import FakeProvider
from shekel_crewai import AgentBudgetExceededError, crew_budget


def test_seed_per_agent_budgets(fake: FakeProvider) -> None:
    """The seed's pattern, as written there (plus the LLM and backstory CrewAI requires)."""
    llm = openai_llm(fake)
    with budget(max_usd=15.00, name="crew", prices=PRICES) as crew_spend:
        # Researcher agent
        with budget(max_usd=5.00, name="researcher"):
            researcher = Agent(
                role="Research Analyst",
                goal="Find relevant information",
                backstory="b",
                llm=llm,
            )
            research_task = Task(description="Research", expected_output="notes")
            researcher.execute_task(research_task)

        # Writer agent
        with budget(max_usd=8.00, name="writer"):
            writer = Agent(
                role="Content Writer", goal="Write comprehensive report", backstory="b", llm=llm
            )
            writing_task = Task(description="Write", expected_output="report")
            writer.execute_task(writing_task)

    tree = crew_spend.tree()
    assert [line.split(":")[0].strip() for line in tree.splitlines()] == [
        "crew",
        "researcher",
        "writer",
    ]
    researcher_spend, writer_spend = crew_spend.children
    assert requests_by_role(fake) == {ANALYST: 1, WRITER: 1}
    assert (researcher_spend.snapshot().llm_calls_used, writer_spend.snapshot().llm_calls_used) == (
        1,
        1,
    )
    assert researcher_spend.spent == pytest.approx(cost(1), abs=1e-12)
    assert crew_spend.spent == pytest.approx(cost(2), abs=1e-12)


def test_seed_pattern_caps_stop_the_agent(fake: FakeProvider) -> None:
    researcher = Agent(role=ANALYST, goal="g", backstory="b", llm=openai_llm(fake))
    with budget(max_usd=15.0, name="crew"), budget(max_llm_calls=1, name="researcher"):
        researcher.execute_task(Task(description="one", expected_output="o"))
        with pytest.raises(AgentBudgetExceededError) as caught:
            researcher.execute_task(Task(description="two", expected_output="o"))
    assert caught.value.budget_name == "crew.researcher"
    assert caught.value.agent_role == ANALYST
    assert len(fake.requests) == 1


def test_an_agent_of_a_wrapped_crew_run_by_hand_pays_like_any_agent(fake: FakeProvider) -> None:
    """The crew's limits apply when the crew runs; run by hand, its agent charges the budget
    active there, as an agent of no crew does."""
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=openai_llm(fake))
    task = Task(name="research", description="r", expected_output="o", agent=analyst)
    crew_budget(Crew(agents=[analyst], tasks=[task]), agents={ANALYST: 1.0})
    with budget(name="app", prices=PRICES) as app:
        analyst.execute_task(task)
    assert app.children == []
    assert app.snapshot().llm_calls_used == 1


def test_delegated_work_is_charged_under_the_delegating_agent() -> None:
    delegate = (
        "Thought: the writer should do this\nAction: Delegate work to coworker\n"
        'Action Input: {"task": "Write the summary", "context": "facts", '
        '"coworker": "Content Writer"}'
    )
    analyst_llm = ScriptedLLM(model="scripted-1", script=[delegate])
    writer_llm = ScriptedLLM(model="scripted-1")
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=analyst_llm, allow_delegation=True)
    writer = Agent(role=WRITER, goal="g", backstory="b", llm=writer_llm)
    task = Task(name="research", description="r", expected_output="o", agent=analyst)
    crew = Crew(agents=[analyst, writer], tasks=[task])
    crew_budget(crew, agents={ANALYST: 1.0, WRITER: {"max_llm_calls": 3}}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert (analyst_llm.calls, writer_llm.calls) == (2, 1)
    nested = child(spend, ANALYST).children
    assert [b.full_name for b in nested] == ["crew.Research Analyst.Content Writer"]
    assert nested[0].snapshot().llm_calls_used == 1
    assert nested[0].snapshot().llm_calls_remaining == 2  # its own max_llm_calls=3
    assert child(spend, ANALYST).snapshot().llm_calls_used == 3
    assert [c.name for c in spend.children] == [ANALYST]


def test_a_hierarchical_crews_manager_pays_for_the_work_it_delegates() -> None:
    delegate = (
        "Thought: the analyst should do this\nAction: Delegate work to coworker\n"
        'Action Input: {"task": "Research", "context": "c", "coworker": "Research Analyst"}'
    )
    manager_llm = ScriptedLLM(model="scripted-1", script=[delegate])
    analyst_llm = ScriptedLLM(model="scripted-1")
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=analyst_llm)
    task = Task(name="research", description="r", expected_output="o")
    crew = Crew(
        agents=[analyst], tasks=[task], process=Process.hierarchical, manager_llm=manager_llm
    )
    limits = {"Crew Manager": {"max_llm_calls": 3}}
    crew_budget(crew, agents=limits, tasks={"research": 1.0}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert (manager_llm.calls, analyst_llm.calls) == (2, 1)
    manager = child(spend, "Crew Manager")
    assert [c.full_name for c in spend.children] == ["crew.Crew Manager"]
    assert manager.snapshot().llm_calls_remaining == 0  # its 2 calls and the analyst's
    assert [c.full_name for c in manager.children] == ["crew.Crew Manager.research"]
    assert manager.children[0].children[0].full_name == (
        "crew.Crew Manager.research.Research Analyst"
    )
    assert child(manager, "research").snapshot().llm_calls_used == 3


def test_kickoff_for_each_charges_the_same_agent_budgets(fake: FakeProvider) -> None:
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=openai_llm(fake))
    task = Task(name="research", description="Research {topic}", expected_output="o", agent=analyst)
    crew = Crew(agents=[analyst], tasks=[task])
    crew_budget(crew, agents={ANALYST: {"max_llm_calls": 5}}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff_for_each(inputs=[{"topic": "a"}, {"topic": "b"}])
    assert len(fake.requests) == 2
    assert [c.full_name for c in spend.children] == ["crew.Research Analyst"]
    assert child(spend, ANALYST).snapshot().llm_calls_used == 2
