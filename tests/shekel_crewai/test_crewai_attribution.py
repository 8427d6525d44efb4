"""Who pays: every LLM call of an agent, sent by CrewAI's native providers through the real
SDKs to the fake provider, charged once to the agent's child of the budget the crew runs in."""

from __future__ import annotations

import pytest
from crewai import LLM
from crews import (
    ANALYST,
    PRICES,
    WRITER,
    child,
    cost,
    openai_llm,
    requests_by_role,
    two_agent_crew,
)

from shekel import budget, budget_name
from shekel.testing import FakeProvider
from shekel_crewai import crew_budget


def test_each_agent_pays_for_its_own_calls_once(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    with budget(max_usd=1.0, name="crew", prices=PRICES) as spend:
        crew.kickoff()
    sent = requests_by_role(fake)
    assert sent == {ANALYST: 2, WRITER: 1}
    analyst, writer = child(spend, ANALYST), child(spend, WRITER)
    assert (
        analyst.snapshot().llm_calls_used,
        writer.snapshot().llm_calls_used,
        spend.snapshot().llm_calls_used,
    ) == (2, 1, 3)
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
    with budget(name="crew", prices=PRICES) as spend:
        output = crew.kickoff()
    assert len(fake.requests) == 2
    assert spend.snapshot().llm_calls_used == 2
    assert spend.snapshot().tokens_used == 2 * (1000 + 100)
    assert (
        output.token_usage.total_tokens == 2 * spend.snapshot().tokens_used
    )  # CrewAI's double count


def test_the_tree_shows_the_breakdown(fake: FakeProvider) -> None:
    crew = crew_budget(
        two_agent_crew(openai_llm(fake)),
        max_usd=1.0,
        agents={ANALYST: 0.5},
        tasks={"write": 0.25},
        prices=PRICES,
    )
    with budget(name="app") as app:
        crew.kickoff()
    spend = app.find_child("crew")
    assert spend is not None
    lines = spend.tree().splitlines()
    cost = f"${spend.spent / 2:.4f}"  # two calls of one price, below a cent: four decimals
    assert lines[0].startswith(f"crew: ${spend.spent:.4f} / $1.00")
    assert lines[1].strip().startswith(f"Research Analyst: {cost} / $0.50")
    assert lines[2].strip().startswith("Content Writer: ")
    assert lines[3].strip().startswith(f"write: {cost} / $0.25")
    write = spend.find_child(WRITER).find_child("write")  # type: ignore[union-attr]
    assert write is not None
    assert write.snapshot().llm_calls_used == 1
    assert write.full_name == "app.crew.Content Writer.write"


def test_task_budgets_sit_under_the_agent_that_runs_them(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    crew_budget(crew, tasks={"research 2": {"max_llm_calls": 5}}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    analyst = spend.find_child(ANALYST)
    assert analyst is not None
    task = analyst.find_child("research 2")
    assert task is not None
    assert task.snapshot().llm_calls_used == 1
    assert task.spent == pytest.approx(cost(1), abs=1e-12)
    assert analyst.spent_direct == pytest.approx(cost(1), abs=1e-12)
    assert analyst.children == [task]


def test_one_child_per_role_across_tasks_and_kickoffs(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake), analyst_tasks=2)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
        crew.kickoff()
    assert [(c.name, c.snapshot().llm_calls_used) for c in spend.children] == [
        (ANALYST, 4),
        (WRITER, 2),
    ]
    assert len(fake.requests) == 6


def test_roles_that_are_not_budget_names_are_encoded(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    crew.agents[0].role = "Sr. Analyst 100%"
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert budget_name("Sr. Analyst 100%") == "Sr%2E Analyst 100%25"
    assert spend.children[0].full_name == "crew.Sr%2E Analyst 100%25"
    assert spend.children[0].snapshot().llm_calls_used == 1


def test_streamed_calls_are_counted_once(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake, stream=True))
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert [r.body.get("stream") for r in fake.requests] == [True, True]
    assert requests_by_role(fake) == {ANALYST: 1, WRITER: 1}
    assert [c.snapshot().llm_calls_used for c in spend.children] == [1, 1]
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
    with budget(name="crew", prices=prices) as spend:
        crew.kickoff()
    sent = requests_by_role(fake, "/v1/messages")
    assert sent == {ANALYST: 1, WRITER: 1}
    assert [c.snapshot().llm_calls_used for c in spend.children] == [1, 1]
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
    assert [c.snapshot().llm_calls_used for c in nightly.children] == [1, 1]


def test_agents_get_children_under_an_unnamed_budget_too(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    with budget(max_usd=1.0, prices=PRICES) as plain:
        crew.kickoff()
    assert [c.full_name for c in plain.children] == [
        "budget.Research Analyst",
        "budget.Content Writer",
    ]
    assert plain.snapshot().llm_calls_used == 2
    assert plain.spent_direct == 0


def test_outside_any_budget_nothing_is_counted_or_stopped(fake: FakeProvider) -> None:
    crew = two_agent_crew(openai_llm(fake))
    crew.kickoff()
    assert len(fake.requests) == 2


def test_a_budget_inside_a_nested_budget_nests_the_crew(fake: FakeProvider) -> None:
    crew = crew_budget(two_agent_crew(openai_llm(fake)), max_usd=1.0)
    with budget(max_usd=2.0, name="job", prices=PRICES) as job, budget(name="step"):
        crew.kickoff()
    assert [c.full_name for c in job.children[0].children[0].children] == [
        "job.step.crew.Research Analyst",
        "job.step.crew.Content Writer",
    ]
    assert job.spent == pytest.approx(cost(2), abs=1e-12)


def test_a_crew_wrapped_once_serves_every_budget_it_runs_under(fake: FakeProvider) -> None:
    """Wrapped when the application starts, the crew gets a budget of its own under each
    request's: a second user's kickoff is not stopped by the first user's spend."""
    crew = crew_budget(
        two_agent_crew(openai_llm(fake)), max_usd=0.5, agents={ANALYST: {"max_llm_calls": 1}}
    )
    for user in ("user_alice", "user_bob"):
        with budget(name=user, prices=PRICES) as spend:
            crew.kickoff()
        crew_spend = spend.find_child("crew")
        assert crew_spend is not None
        assert (crew_spend.full_name, crew_spend.config.max_usd) == (f"{user}.crew", 0.5)
        assert [(c.full_name, c.snapshot().llm_calls_used) for c in crew_spend.children] == [
            (f"{user}.crew.Research Analyst", 1),
            (f"{user}.crew.Content Writer", 1),
        ]
    assert len(fake.requests) == 4


def test_copies_of_a_wrapped_crew_keep_its_limits(fake: FakeProvider) -> None:
    """``kickoff_for_each`` runs a copy of the crew per input."""
    crew = crew_budget(two_agent_crew(openai_llm(fake)), agents={ANALYST: {"max_llm_calls": 5}})
    with budget(name="app", prices=PRICES) as app:
        crew.kickoff_for_each(inputs=[{"topic": "a"}, {"topic": "b"}])
    analyst = app.find_child("crew").find_child(ANALYST)  # type: ignore[union-attr]
    assert analyst is not None
    assert (analyst.snapshot().llm_calls_used, analyst.snapshot().llm_calls_remaining) == (2, 3)
