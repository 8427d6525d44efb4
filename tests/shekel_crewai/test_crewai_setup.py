"""Setting up: bad arguments get errors that say what to write instead, names that matched
nothing are reported; the package installs itself through shekel's entry point without
importing crewai, can be taken back, and with an unsupported crewai installs nothing
automatic while ``crew_budget`` still runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from crewai import Crew
from crewai.agent.core import Agent
from crewai.hooks import HookAborted
from crews import ANALYST, WRITER, ScriptedLLM, child, openai_llm
from crews import two_agent_crew as make_crew

import shekel
from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel.integration import UnmatchedNameWarning
from shekel.testing import FakeProvider
from shekel_crewai import AgentBudgetExceededError, crew_budget
from shekel_crewai._plugin import INTEGRATION


@pytest.fixture
def crew() -> Crew:
    return make_crew(ScriptedLLM(model="scripted-1"))


def test_the_crew_comes_first() -> None:
    with pytest.raises(BudgetConfigError, match=r"takes the crewai.Crew .* got float"):
        crew_budget(5.0)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (True, r"agents\['Content Writer'\] must be a USD limit .*; got True"),
        ([1.0], r"agents\['Content Writer'\] must be a USD limit .*; got \[1.0\]"),
        ({"max_usdd": 1.0}, r"agents\['Content Writer'\]: .*did you mean 'max_usd'"),
        (-1.0, r"agents\['Content Writer'\]: .*max_usd"),
        ("2.5", r"agents\['Content Writer'\] must be a USD limit .*; got '2.5'"),
        ({"max_llm_calls": 0}, r"agents\['Content Writer'\]: .*max_llm_calls"),
        ({"name": "w"}, r"agents\['Content Writer'\] may not set 'name'"),
    ],
)
def test_bad_limits_name_the_agent(crew: Crew, limits: Any, expected: str) -> None:
    with pytest.raises(BudgetConfigError, match=expected):
        crew_budget(crew, agents={WRITER: limits})


def test_limits_come_as_a_mapping(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match=r"^agents must map CrewAI agent roles .*got list"):
        crew_budget(crew, agents=[ANALYST])  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match=r"^tasks keys are CrewAI task names .*; got 1"):
        crew_budget(crew, tasks={1: 1.0})  # type: ignore[dict-item]


def test_the_crews_own_options_are_checked_like_any_budget(crew: Crew) -> None:
    with pytest.raises(BudgetConfigError, match="did you mean 'max_tokens'"):
        crew_budget(crew, max_tokenz=10)
    with pytest.raises(BudgetConfigError, match=r"crew_budget\(name=None\) .* name it"):
        crew_budget(crew, max_usd=1.0, name=None)


def test_every_form_of_limit_is_accepted(fake: FakeProvider) -> None:
    crew = crew_budget(
        make_crew(openai_llm(fake)),
        max_usd=10,
        agents={ANALYST: Decimal("2.5"), WRITER: None},
        tasks={"research": {"max_usd": 1, "max_tool_calls": 3}, "write": 0.5},
    )
    with budget(name="app") as app:
        crew.kickoff()
    assert child(app, "crew").config.max_usd == 10
    assert child(app, "crew", ANALYST).config.max_usd == 2.5
    assert child(app, "crew", WRITER).config.max_usd is None
    assert child(app, "crew", ANALYST, "research").snapshot().tool_calls_remaining == 3
    assert child(app, "crew", WRITER, "write").config.max_usd == 0.5


def test_a_role_or_task_name_that_matched_nothing_is_named_when_the_budget_ends(
    crew: Crew,
) -> None:
    crew_budget(crew, agents={"Research Analist": 1.0}, tasks={"Write": 0.5}, name=None)
    with warnings.catch_warnings(record=True) as caught, budget(name="app") as app:
        warnings.simplefilter("always")
        crew.kickoff()
        assert not unmatched(caught)  # not before the budget ends: a later kickoff may match
    assert unmatched(caught) == [
        "agents['Research Analist'] matched no CrewAI agent roles under budget 'app', so its "
        "limits applied to nothing; did you mean 'Research Analyst'?",
        "tasks['Write'] matched no CrewAI task names under budget 'app', so its limits "
        "applied to nothing; did you mean 'write'?",
    ]
    assert [c.config.max_usd for c in app.children] == [None, None]


def unmatched(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if w.category is UnmatchedNameWarning]


def test_the_error_is_a_budget_error_crewai_lets_through(fake: FakeProvider) -> None:
    with budget(max_llm_calls=1, name="direct"), pytest.raises(HookAborted) as caught:
        openai_llm(fake).call("hello")
        openai_llm(fake).call("again")
    error = caught.value
    assert isinstance(error, AgentBudgetExceededError)
    assert isinstance(error, BudgetExceededError)
    assert (error.budget_name, error.axis, error.sent) == ("direct", "llm_calls", False)
    assert (error.reason, error.source) == (str(error), "shekel")
    assert len(fake.requests) == 1


def test_uninstall_takes_back_everything_and_install_puts_it_back(fake: FakeProvider) -> None:
    assert INTEGRATION.installed
    INTEGRATION.uninstall()
    try:
        assert getattr(Agent.execute_task, "__shekel_original__", None) is None
        assert getattr(Crew.kickoff, "__shekel_original__", None) is None
        with budget(name="app") as app:
            make_crew(openai_llm(fake)).kickoff()
        assert (app.children, app.snapshot().llm_calls_used) == ([], 2)
    finally:
        INTEGRATION.install()
    assert getattr(Agent.execute_task, "__shekel_original__", None) is not None


def _run(script: str, **env: str) -> str:
    """Run ``script`` in a fresh interpreter, with the tests' helpers importable."""
    here = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (env.pop("PYTHONPATH", ""), here) if p)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_shekel_loads_the_plugin_without_crewai_and_installs_when_crewai_is_imported() -> None:
    """A budget entered before crewai is imported still gets CrewAI patched when it is."""
    out = _run(
        """
        import sys
        import shekel, shekel_crewai
        names = [name for name, _ in shekel.plugins.plugin_manager().list_name_plugin()]
        assert "crewai" in names, names
        with shekel.budget(name="early"):
            pass
        assert "crewai" not in sys.modules, "crewai imported before the application did"
        from crewai import Crew
        from crewai.agent.core import Agent
        assert getattr(Agent.execute_task, "__shekel_original__", None) is not None
        assert getattr(Crew.kickoff, "__shekel_original__", None) is not None
        print("ok")
        """
    )
    assert out.strip() == "ok"
    assert shekel.current_budget() is None


def test_with_an_unsupported_crewai_only_crew_budget_runs(tmp_path: Path) -> None:
    """One warning; agents of crews nobody wrapped get no budgets of their own, and are not
    stopped by the package; a crew wrapped with ``crew_budget`` is budgeted as usual."""
    dist = tmp_path / "crewai-1.14.0.dist-info"  # what importlib.metadata reads first
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crewai\nVersion: 1.14.0\n")
    out = _run(
        """
        import warnings
        from crews import FINAL, two_agent_crew, openai_llm
        from shekel import budget
        from shekel.testing import FakeProvider
        from shekel_crewai import UnsupportedCrewAIWarning, crew_budget

        with warnings.catch_warnings(record=True) as caught, FakeProvider() as fake:
            warnings.simplefilter("always")
            fake.default_text = FINAL
            with budget(name="plain", max_llm_calls=1) as plain:
                try:
                    two_agent_crew(openai_llm(fake)).kickoff()
                except Exception as error:
                    print(">> plain stopped by", type(error).__name__)
            wrapped = crew_budget(two_agent_crew(openai_llm(fake)))
            with budget(name="app") as app:
                wrapped.kickoff()
                two_agent_crew(openai_llm(fake)).kickoff()
        for w in caught:
            if issubclass(w.category, UnsupportedCrewAIWarning):
                print(">> warned:", w.message)
        print(">> plain:", [c.name for c in plain.children])
        crew_calls = app.find_child("crew").snapshot().llm_calls_used
        print(">> app:", [c.full_name for c in app.children], crew_calls)
        """,
        PYTHONPATH=str(tmp_path),
    )
    lines = [line[3:] for line in out.splitlines() if line.startswith(">> ")]
    assert lines[0] == "plain stopped by BudgetExceededError"  # the interception's own refusal
    assert lines[1] == (
        "warned: shekel-crewai: crewai 1.14.0 is installed; shekel-crewai supports crewai >= "
        "1.15.19, < 2. Its automatic hooks are not installed; what you wrap or pass explicitly "
        "still runs, untested with this release. Install a supported CrewAI release, or a "
        "shekel-crewai release made for yours"
    )
    assert lines[2:] == ["plain: []", "app: ['app.crew'] 2"]


def test_the_error_imported_after_a_budget_and_before_crewai_is_whole() -> None:
    """In a fresh process, as under ``shekel run``: a budget entered first, then shekel-crewai's
    error imported before any CrewAI. CrewAI's import installs the integration, which needs the
    error module: it used to meet it half-imported and fail with an ImportError."""
    script = textwrap.dedent(
        """
        from shekel import budget

        with budget(max_usd=1, name="first"):
            pass
        from shekel_crewai import AgentBudgetExceededError

        print(AgentBudgetExceededError.__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "AgentBudgetExceededError"
