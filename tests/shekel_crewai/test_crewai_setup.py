"""Setting up: bad arguments get errors that say what to write instead; the supported crewai
range; the package installs itself through shekel's entry point without importing crewai."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from typing import Any

import pytest
from crewai import Agent, Crew, Process, Task
from crewai.hooks import HookAborted
from crews import ANALYST, WRITER, ScriptedLLM
from crews import two_agent_crew as make_crew

import shekel
from shekel import BudgetConfigError, BudgetExceededError
from shekel_crewai import AgentBudgetExceededError, CrewBudget, crew_budget, supported
from shekel_crewai._install import unsupported_message


@pytest.fixture
def crew() -> Crew:
    return make_crew(ScriptedLLM(model="scripted-1"))


def test_the_crew_comes_first(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match=r"takes the crewai.Crew .* got float"):
        crew_budget(5.0)  # type: ignore[arg-type]


def test_an_unknown_role_is_refused_with_the_known_ones(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError) as caught:
        crew_budget(crew, agents={"Research Analist": 1.0})
    message = str(caught.value)
    assert "no agent of this crew has the role 'Research Analist'" in message
    assert "did you mean 'Research Analyst'?" in message
    assert "Known: 'Research Analyst', 'Content Writer'" in message


def test_an_unknown_task_is_refused_and_unnamed_tasks_are_explained(crew: Crew) -> None:
    crew.tasks.append(Task(description="anonymous", expected_output="o", agent=crew.agents[0]))
    with pytest.raises(BudgetConfigError) as caught:
        crew_budget(crew, tasks={"Write": 1.0})
    message = str(caught.value)
    assert "no task of this crew is named 'Write'" in message
    assert "Known: 'research', 'write'" in message
    assert "Tasks without name= cannot have a budget of their own" in message


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (True, r"agents\['Content Writer'\] is True: give a USD amount"),
        ([1.0], r"agents\['Content Writer'\] is a list: give a USD amount"),
        ({"max_usdd": 1.0}, r"agents\['Content Writer'\]: .*did you mean 'max_usd'"),
        (-1.0, r"agents\['Content Writer'\]: .*max_usd"),
        ("2.5", r"agents\['Content Writer'\] is a str: give a USD amount"),
        ({"max_llm_calls": 0}, r"agents\['Content Writer'\]: .*max_llm_calls"),
        ({"name": "w"}, r"agents\['Content Writer'\] may not set 'name'"),
    ],
)
def test_bad_limits_name_the_agent(crew: Crew, limits: Any, expected: str) -> None:
    with pytest.raises(BudgetConfigError, match=expected):
        crew_budget(crew, agents={WRITER: limits})


def test_limits_come_as_a_mapping(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match=r"agents=\.\.\.\) takes a mapping.*got list"):
        crew_budget(crew, agents=[ANALYST])  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match=r"agents=\.\.\.\) keys are strings, got 1"):
        crew_budget(crew, agents={1: 1.0})  # type: ignore[dict-item]


def test_the_crew_options_are_checked_like_any_budget(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match="did you mean 'max_tokens'"):
        crew_budget(crew, max_tokenz=10)
    with pytest.raises(BudgetConfigError, match="needs a name"):
        crew_budget(crew, name="")


def test_every_form_of_limit_is_accepted(crew: Crew) -> None:
    spend = crew_budget(
        crew,
        max_usd=10,
        agents={ANALYST: Decimal("2.5"), WRITER: None},
        tasks={"research": {"max_usd": 1, "max_tool_calls": 3}, "write": 0.5},
    )
    assert isinstance(spend, CrewBudget)
    assert spend.agent_options == {ANALYST: {"max_usd": Decimal("2.5")}, WRITER: {}}
    assert spend.agent(ANALYST).max_usd == 2.5
    assert spend.task("research").full_name == "crew.Research Analyst.research"
    assert spend.agent(ANALYST).parent is spend


def test_a_task_without_a_budget_says_how_to_give_it_one(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match=r"tasks=\{'write': <USD or budget options>\}"):
        crew_budget(crew).task("write")


def test_a_hierarchical_crews_own_manager_can_be_capped() -> None:
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=ScriptedLLM(model="m"))
    crew = Crew(
        agents=[analyst],
        tasks=[Task(description="d", expected_output="o")],
        process=Process.hierarchical,
        manager_llm=ScriptedLLM(model="m"),
    )
    spend = crew_budget(crew, agents={"Crew Manager": 1.0})
    assert spend.agent_options == {"Crew Manager": {"max_usd": 1.0}}


def test_the_error_is_a_budget_error_crewai_lets_through() -> None:
    error = AgentBudgetExceededError(
        2, 2, agent_role=WRITER, task_name="write", axis="llm_calls", budget_name="crew.w"
    )
    assert isinstance(error, BudgetExceededError)
    assert isinstance(error, HookAborted)
    assert isinstance(error, RuntimeError)
    assert error.reason == str(error)
    assert error.source == "shekel"
    assert str(error).startswith(
        "budget 'crew.w' has no room left for this call under its LLM calls limit (2 LLM calls "
        "used of 2 LLM calls); the request was not sent; agent 'Content Writer' (task 'write') "
        "stopped before its next LLM call. Raise the limit"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.15.19", True), ("1.15.30", True), ("1.99.0", True), ("1.15.18", False), ("2.0.0", False)],
)
def test_the_supported_range(version: str, expected: bool) -> None:
    assert supported(version) is expected


def test_the_installed_crewai_is_supported_and_an_unsupported_one_is_explained() -> None:
    assert supported()
    message = unsupported_message("1.14.7")
    assert "supports crewai >= 1.15.19, < 2 but crewai 1.14.7 is installed" in message


def test_shekel_loads_the_plugin_without_crewai_and_patches_crewai_when_it_is_imported() -> None:
    """A fresh interpreter: the entry point plugin is light; a budget entered before crewai
    is imported still gets CrewAI patched the moment it is."""
    script = textwrap.dedent(
        """
        import sys
        import shekel, shekel_crewai
        names = [name for name, _ in shekel.plugin_manager().list_name_plugin()]
        assert "crewai" in names, names
        with shekel.budget(name="early"):
            pass
        assert "crewai" not in sys.modules, "crewai imported before the application did"
        from crewai.agent.core import Agent
        assert getattr(Agent.execute_task, "__shekel_original__", None) is not None
        assert getattr(Agent.aexecute_task, "__shekel_original__", None) is not None
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert shekel.current_budget() is None


def test_reading_an_unknown_agent_or_task_is_refused(crew: Crew) -> None:
    spend = crew_budget(crew)
    with pytest.raises(BudgetConfigError, match=r"^agent\(\): no agent of this crew has the role"):
        spend.agent("Writer")
    with pytest.raises(BudgetConfigError, match=r"^task\(\): no task of this crew is named 'x'"):
        spend.task("x")
