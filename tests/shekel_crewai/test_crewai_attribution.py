"""Who pays: every LLM call of an agent, sent by CrewAI's native providers through the real
SDKs to the fake provider, charged once to the agent's child of the crew budget."""

from __future__ import annotations

import pytest
from crewai import LLM
from crews import ANALYST, PRICES, WRITER, cost, openai_llm, requests_by_role, two_agent_crew

from shekel import budget, budget_name
from shekel.testing import FakeProvider
from shekel_crewai import CrewBudget, crew_budget


def test_each_agent_pays_for_its_own_calls_once(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    with crew_budget(crew, max_usd=1.0, prices=PRICES) as spend:
        crew.kickoff()
    sent = requests_by_role(fake)
    assert sent == {ANALYST: 2, WRITER: 1}
    analyst, writer = spend.agent(ANALYST), spend.agent(WRITER)
    assert (analyst.calls_used, writer.calls_used, spend.calls_used) == (2, 1, 3)
    assert analyst.spent == pytest.approx(cost(2), abs=1e-12)
    assert writer.spent == pytest.approx(cost(1), abs=1e-12)
    assert spend.spent == pytest.approx(cost(3), abs=1e-12)
    assert spend.spent_direct == 0
    assert [c.full_name for c in spend.children] == ["crew.Research Analyst", "crew.Content Writer"]
    assert {call.source for call in analyst.history().calls} == {"sdk"}


def test_one_llm_object_shared_by_both_agents_is_counted_once(fake: FakeProvider) -> None:
    """CrewAI's own usage_metrics counts a shared LLM once per agent; shekel counts calls."""
    llm = openai_llm(fake)
    crew = two_agent_crew(llm, llm)
    with crew_budget(crew, prices=PRICES) as spend:
        output = crew.kickoff()
    assert len(fake.requests) == 2
    assert spend.calls_used == 2
    assert spend.tokens_used == 2 * (1000 + 100)
    assert output.token_usage.total_tokens == 2 * spend.tokens_used  # CrewAI's double count


def test_the_tree_shows_the_breakdown(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    with crew_budget(
        crew, max_usd=1.0, agents={ANALYST: 0.5}, tasks={"write": 0.25}, prices=PRICES
    ) as spend:
        crew.kickoff()
    lines = spend.tree().splitlines()
    cost = f"${spend.spent / 2:.4f}"  # two calls of one price, below a cent: four decimals
    assert lines[0].startswith(f"crew: ${spend.spent:.4f} / $1.00")
    assert lines[1].strip().startswith(f"Research Analyst: {cost} / $0.50")
    assert lines[2].strip().startswith("Content Writer: ")
    assert lines[3].strip().startswith(f"write: {cost} / $0.25")
    assert spend.task("write").calls_used == 1
    assert spend.task("write").full_name == "crew.Content Writer.write"


def test_task_budgets_sit_under_the_agent_that_runs_them(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    with crew_budget(crew, tasks={"research 2": {"max_llm_calls": 5}}, prices=PRICES) as spend:
        crew.kickoff()
    task = spend.task("research 2")
    assert task.parent is spend.agent(ANALYST)
    assert task.calls_used == 1
    assert task.spent == pytest.approx(cost(1), abs=1e-12)
    assert spend.agent(ANALYST).spent_direct == pytest.approx(cost(1), abs=1e-12)
    assert spend.agent(ANALYST).children == [task]


def test_one_child_per_role_across_tasks_and_kickoffs(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    with crew_budget(crew, prices=PRICES) as spend:
        crew.kickoff()
        crew.kickoff()
    assert len(spend.children) == 2
    assert spend.agent(ANALYST).calls_used == 4
    assert spend.agent(WRITER).calls_used == 2
    assert len(fake.requests) == 6


def test_roles_that_are_not_budget_names_are_encoded(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    crew.agents[0].role = "Sr. Analyst 100%"
    with crew_budget(crew, prices=PRICES) as spend:
        crew.kickoff()
    assert budget_name("Sr. Analyst 100%") == "Sr%2E Analyst 100%25"
    assert spend.children[0].full_name == "crew.Sr%2E Analyst 100%25"
    assert spend.children[0].calls_used == 1


def test_streamed_calls_are_counted_once(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake, stream=True))
    with crew_budget(crew, prices=PRICES) as spend:
        crew.kickoff()
    assert [r.body.get("stream") for r in fake.requests] == [True, True]
    assert requests_by_role(fake) == {ANALYST: 1, WRITER: 1}
    assert (spend.agent(ANALYST).calls_used, spend.agent(WRITER).calls_used) == (1, 1)
    assert spend.spent == pytest.approx(cost(2), abs=1e-12)


def test_anthropic_provider_calls_are_counted_once(fake: FakeProvider) -> None:
    llm = LLM(
        model="anthropic/claude-haiku-4-5",
        base_url=fake.anthropic_base_url,
        api_key="test",
        max_tokens=1024,
    )
    crew = two_agent_crew(llm)
    prices = {"claude-haiku-4-5": {"input": 1.0, "output": 5.0}}
    with crew_budget(crew, prices=prices) as spend:
        crew.kickoff()
    sent = requests_by_role(fake, "/v1/messages")
    assert sent == {ANALYST: 1, WRITER: 1}
    assert (spend.agent(ANALYST).calls_used, spend.agent(WRITER).calls_used) == (1, 1)
    assert spend.spent == pytest.approx(2 * (1000 * 1.0 + 100 * 5.0) / 1e6, abs=1e-12)


# -- without crew_budget ------------------------------------------------------------------------


def test_any_named_budget_gives_the_agents_children(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    with budget(name="nightly", prices=PRICES) as nightly:
        crew.kickoff()
    assert [c.full_name for c in nightly.children] == [
        "nightly.Research Analyst",
        "nightly.Content Writer",
    ]
    assert [c.calls_used for c in nightly.children] == [1, 1]
    assert not isinstance(nightly, CrewBudget)


def test_an_unnamed_budget_pays_for_everything_itself(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    with budget(max_usd=1.0, prices=PRICES) as plain:
        crew.kickoff()
    assert plain.children == []
    assert plain.calls_used == 2
    assert plain.spent_direct == pytest.approx(cost(2), abs=1e-12)


def test_outside_any_budget_nothing_is_counted_or_stopped(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    crew.kickoff()
    assert len(fake.requests) == 2


def test_a_budget_inside_a_nested_budget_nests_the_crew(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    with budget(max_usd=2.0, name="job", prices=PRICES) as job:
        with crew_budget(crew, max_usd=1.0, name="crew") as spend:
            crew.kickoff()
    assert spend.agent(WRITER).full_name == "job.crew.Content Writer"
    assert job.spent == pytest.approx(cost(2), abs=1e-12)
