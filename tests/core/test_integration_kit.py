"""The kit integrations are built from (``shekel.integration``): decided once, here, for all."""

from __future__ import annotations

import subprocess
import sys
import warnings
from decimal import Decimal

import pytest

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    UnknownModelError,
    budget,
    current_budget,
)
from shekel.integration import (
    Integration,
    NameWatch,
    OutsideBudgetWarning,
    UnmatchedNameWarning,
    UnsupportedFrameworkWarning,
    child_of,
    framework_error,
    parse_limits,
    refuses_unknown_models,
    route_calls,
    stop_routing,
)
from shekel.plugins import CallRoute


class StepStopped(BudgetExceededError):
    """A framework's own error."""


def test_limits_take_a_number_a_decimal_a_string_a_dict_or_none() -> None:
    parsed = parse_limits(
        {"a": 0.5, "b": Decimal("0.25"), "d": {"max_llm_calls": 3}, "e": None},
        param="nodes",
        steps="LangGraph node names",
    )
    assert {name: dict(p.options) for name, p in parsed.items()} == {
        "a": {"max_usd": 0.5},
        "b": {"max_usd": Decimal("0.25")},
        "d": {"max_llm_calls": 3},
        "e": {},
    }
    assert parse_limits({"crew.lead": 1}, param="agents", steps="roles")[
        "crew.lead"
    ].budget_name == ("crew%2Elead")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([1], r"nodes must map LangGraph node names to limits"),
        ({"": 1}, r"nodes keys are LangGraph node names"),
        ({"a": -1}, r"nodes\['a'\]: max_usd must be"),
        ({"a": True}, r"nodes\['a'\] must be a USD limit"),
        ({"a": "1"}, r"nodes\['a'\] must be a USD limit"),
        ({"a": {"name": "x"}}, r"nodes\['a'\] may not set 'name'"),
        ({"a": {"max_usdd": 1}}, r"nodes\['a'\]: .*did you mean 'max_usd'"),
    ],
)
def test_bad_limits_name_the_entry_to_fix(limits: object, message: str) -> None:
    with pytest.raises(BudgetConfigError, match=message):
        parse_limits(limits, param="nodes", steps="LangGraph node names")  # type: ignore[arg-type]


def test_child_of_creates_once_and_then_finds_the_child_as_it_is() -> None:
    with budget(max_usd=1) as root:  # unnamed: children still work
        first = child_of(root, "step", {"max_usd": 0.5})
        first.set_limits(max_usd=0.75)
        again = child_of(root, "step", {"max_usd": 0.1})  # options only at creation
    assert again is first
    assert again.config.max_usd == 0.75
    assert first.full_name == "budget.step"


def test_framework_levels_do_not_count_against_the_depth_of_hand_written_budgets() -> None:
    with budget(max_usd=1, name="run") as run, budget(name="app") as app:
        graph = child_of(app, "graph")
        node = child_of(graph, "node")
        sub = child_of(node, "subgraph")
        with graph, node, sub, budget(name="l2"), budget(name="l3"), budget(name="l4") as deepest:
            assert deepest._node.depth == 7
            with pytest.raises(BudgetConfigError, match="at most 5 levels"), budget(name="l5"):
                pass
    assert run._node.depth == 0


def test_a_mapped_name_that_matched_nothing_is_named_when_its_budget_ends() -> None:
    limits = parse_limits({"sumarize": 1, "plan": 1}, param="budgets", steps="run names")
    watch = NameWatch(limits, param="budgets", steps="LangChain run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with budget(max_usd=1, name="app") as app:
            watch.matched(app, "plan")
            watch.report_when_done(app, lambda: ["summarize", "plan"])
            assert caught == []  # not before the budget ends
    assert [w.category for w in caught] == [UnmatchedNameWarning]
    message = str(caught[0].message)
    assert "budgets['sumarize'] matched no LangChain run under budget 'app'" in message
    assert "did you mean 'summarize'?" in message


def test_when_two_routers_answer_the_deepest_step_pays() -> None:
    from shekel._plugins import plugin_manager

    # an integration installed in this process (shekel-langchain, once LangChain ran under a
    # budget) may route calls already: its router stays
    routing_before = plugin_manager().get_plugin("shekel-integration-routes") is not None
    with budget(max_usd=1, name="app") as app:
        shallow, deep = child_of(app, "chain"), child_of(child_of(app, "workflow"), "step")

        def first(active: object) -> CallRoute:
            return CallRoute(deep)

        def second(active: object) -> CallRoute:
            return CallRoute(shallow)

        route_calls(first)
        route_calls(second)
        try:
            answer = plugin_manager().hook.shekel_route_call(active=app)
        finally:
            stop_routing(first)
            stop_routing(second)
    assert answer.budget is deep
    routing_after = plugin_manager().get_plugin("shekel-integration-routes") is not None
    assert routing_after is routing_before  # with no router left, requests ask nothing


def test_a_framework_error_keeps_what_the_core_error_says() -> None:
    with budget(max_usd=1, max_llm_calls=1, name="app") as app:
        app.record(usd=0.1)
        with pytest.raises(BudgetExceededError) as caught:
            app.check()
    converted = framework_error(caught.value, StepStopped)
    assert isinstance(converted, StepStopped)
    assert (converted.sent, converted.budget_name, converted.axis) == (False, "app", "llm_calls")
    assert str(converted) == str(caught.value)


def test_an_unsupported_framework_warns_once_and_installs_nothing() -> None:
    installed: list[str] = []
    kit = Integration(
        "shekel-fake", "Fake", ["pluggy >= 999"], "json", lambda: installed.append("x")
    )
    with pytest.warns(UnsupportedFrameworkWarning, match=r"pluggy .* is installed; shekel-fake"):
        kit.install_when_imported()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kit.install_when_imported()
    assert installed == []
    assert not kit.installed


def test_a_supported_framework_is_installed_once_and_can_be_uninstalled() -> None:
    events: list[str] = []
    kit = Integration(
        "shekel-fake",
        "Fake",
        ["pluggy >= 1.0"],
        "json",
        lambda: events.append("install"),
        lambda: events.append("uninstall"),
    )
    kit.install_when_imported()
    kit.install_when_imported()
    kit.uninstall()
    assert events == ["install", "uninstall"]


def test_limits_outside_a_budget_warn_once() -> None:
    kit = Integration("shekel-fake", "Fake", [], "json", lambda: None)
    assert current_budget() is None
    with pytest.warns(OutsideBudgetWarning, match="ran outside any budget"):
        kit.warn_outside_budget("a handler with budgets=")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kit.warn_outside_budget("a handler with budgets=")


def test_installing_waits_for_the_framework_import_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from shekel.integration import when_imported\n"
        "when_imported('colorsys', lambda: print('installed', 'colorsys' in sys.modules))\n"
        "print('imported yet:', 'colorsys' in sys.modules)\n"
        "import colorsys\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.splitlines() == ["imported yet: False", "installed True"], done.stderr


def test_refuses_unknown_models_follows_strict_and_unknown_models_error_down_the_tree() -> None:
    with budget(max_usd=1, name="plain") as plain, budget(name="child") as child:
        assert (refuses_unknown_models(plain), refuses_unknown_models(child)) == (False, False)
    with budget(max_usd=1, name="refusing", unknown_models="error") as refusing:
        with budget(name="below") as below:
            assert refuses_unknown_models(refusing)
            assert refuses_unknown_models(below)
    with budget(max_usd=1, name="strict", strict=True) as strict:
        assert refuses_unknown_models(strict)
        with pytest.raises(UnknownModelError):
            strict.check(model="a-model-nobody-prices")
