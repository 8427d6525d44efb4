"""The package's shape: what it installs (nothing), the LangGraph releases it supports, the
warnings it gives once, its public names."""

from __future__ import annotations

import subprocess
import sys
import warnings
from importlib.metadata import version
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from lg_support import CALL, State, ask

import shekel_langgraph
from shekel import budget
from shekel.integration import Integration, OutsideBudgetWarning, UnsupportedFrameworkWarning
from shekel.testing import FakeProvider
from shekel_langgraph import _node, budgeted_graph, budgeted_node


def test_a_process_entering_budgets_loads_nothing_of_langgraph() -> None:
    code = (
        "import sys, shekel\n"
        "with shekel.budget(max_usd=1, name='app'):\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('shekel_langgraph', 'langgraph'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_installed_langgraph_is_supported() -> None:
    assert _node.INTEGRATION.unsupported() is None
    assert version("langgraph").split(".")[0] == "1"


@pytest.fixture
def unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    outside = Integration(
        "shekel-langgraph", "LangGraph", ("langgraph < 1",), "langgraph", install=lambda: None
    )
    monkeypatch.setattr(_node, "INTEGRATION", outside)


@pytest.mark.usefixtures("unsupported")
def test_an_unsupported_langgraph_is_reported_once_and_the_wrappers_still_run(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = StateGraph(State)
        graph.add_node("draft", budgeted_node(max_llm_calls=1)(draft))
        graph.add_edge(START, "draft")
        app = budgeted_graph(graph.compile(), max_usd=1)
    [warning] = caught
    assert warning.category is UnsupportedFrameworkWarning
    assert f"langgraph {version('langgraph')} is installed" in str(warning.message)
    assert "supports langgraph < 1" in str(warning.message)
    with budget(max_usd=1, name="root") as root:
        app.invoke({})
    assert root.child("graph").child("draft").spent == pytest.approx(CALL)


def test_limits_outside_any_budget_warn_once_until_uninstalled(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_llm_calls=1)
    def draft(state: State) -> dict[str, Any]:
        return {"notes": ["ran"]}

    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert draft({}) == {"notes": ["ran"]}
            assert draft({}) == {"notes": ["ran"]}  # nothing to stop it: it runs
        assert [w.category for w in caught] == [OutsideBudgetWarning]
        assert "@budgeted_node 'draft' ran outside any budget" in str(caught[0].message)
        _node.INTEGRATION.uninstall()


def test_the_public_names() -> None:
    for name in shekel_langgraph.__all__:
        assert getattr(shekel_langgraph, name) is not None
    assert issubclass(shekel_langgraph.NodeBudgetExceededError, RuntimeError)
