"""The integration contract as a test suite: every framework integration passes it, so that all of
them behave the same way (see ``shekel.integration``).

Subclass :class:`IntegrationContract` in the package's tests and implement its three drivers
with the real framework, against :attr:`IntegrationContract.fake` (a running
:class:`~shekel.testing.FakeProvider`)::

    from shekel.testing.integration_contract import IntegrationContract

    class TestLangChainContract(IntegrationContract):
        limits_param = "budgets"

        def run_steps(self, steps, limits=None): ...
        def run_tool(self, step, tool, *, fails=False, arguments=None, limits=None): ...
        def run_unreported(self, step, prompt): ...

A *step* is the framework's unit that gets a budget of its own (a LangChain run, a LangGraph
node, a CrewAI agent, a LlamaIndex span): the contract names them, the driver builds them. The
suite needs pytest and the ``openai`` SDK.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    ToolBudgetExceededError,
    UsageMissingWarning,
    budget,
    current_budget,
)
from shekel.integration import (
    Limits,
    OutsideBudgetWarning,
    UnmatchedNameWarning,
    forget_warnings,
)
from shekel.testing import FakeProvider

INPUT, OUTPUT = 100, 20
CALL_USD = INPUT * 0.15e-6 + OUTPUT * 0.6e-6  # gpt-4o-mini


class ToolFailed(Exception):
    """What a tool raises when the contract asks it to fail."""


class IntegrationContract:
    """What every framework integration must do. Implement the drivers below."""

    limits_param: ClassVar[str] = "budgets"
    """The name of the integration's argument that maps step names to limits."""

    fake: FakeProvider
    tool_runs: list[str]
    """The tools whose body ran, in order (the driver's tools append to it)."""

    @pytest.fixture(autouse=True)
    def _fake_provider(self) -> Iterator[FakeProvider]:
        self.tool_runs = []
        forget_warnings()  # the warnings given once per process: each test expects its own
        with FakeProvider() as fake:
            fake.set_usage(input_tokens=INPUT, output_tokens=OUTPUT)
            self.fake = fake
            yield fake

    # -- the drivers a package implements --------------------------------------------------

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        """Run the framework once, through the integration, with ``limits`` given as its
        :attr:`limits_param`: each step of ``steps``, in order, makes one chat completion of
        ``gpt-4o-mini`` through the ``openai`` SDK against :attr:`fake` (a name given twice is
        the same step run twice). Let the integration's errors propagate."""
        raise NotImplementedError

    def run_tool(
        self,
        step: str,
        tool: str,
        *,
        fails: bool = False,
        arguments: object = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        """Run the framework once: the step ``step`` calls the tool ``tool`` once, with
        ``arguments``. The tool's body appends ``tool`` to :attr:`tool_runs`, then raises
        :class:`ToolFailed` when ``fails``. Errors may propagate, or be handled as the framework
        handles a tool's errors (returned to the model as text...)."""
        raise NotImplementedError

    def run_unreported(self, step: str, prompt: str) -> None:
        """Run the framework once: the step ``step`` calls a model that never reaches the
        intercepted SDKs and reports no token usage, with ``prompt``."""
        raise NotImplementedError

    # -- attribution ---------------------------------------------------------------------------

    def test_each_step_pays_into_a_child_of_the_active_budget(self) -> None:
        with budget(max_usd=1, name="app") as app:
            self.run_steps(["alpha", "beta"])
            assert current_budget() is app  # nothing left active
        assert current_budget() is None
        for step in ("alpha", "beta"):
            child = app.find_child(step)
            assert child is not None, f"no child budget for step {step!r}"
            assert child.snapshot().llm_calls_used == 1
            assert child.spent == pytest.approx(CALL_USD)
        assert (
            app.snapshot().llm_calls_used == 2 == len(self.fake.requests)
        )  # each call counted once
        assert app.spent == pytest.approx(2 * CALL_USD)

    def test_a_step_that_runs_again_pays_into_the_same_child(self) -> None:
        with budget(max_usd=1, name="app") as app:
            self.run_steps(["alpha"])
            self.run_steps(["alpha"])
        child = app.find_child("alpha")
        assert child is not None
        assert child.snapshot().llm_calls_used == 2
        assert [c.name for c in app.children] == ["alpha"]

    def test_children_work_under_an_unnamed_budget(self) -> None:
        with budget(max_usd=1) as root:
            self.run_steps(["alpha"])
        child = root.find_child("alpha")
        assert child is not None
        assert child.full_name == "budget.alpha"
        assert child.snapshot().llm_calls_used == 1

    # -- limits --------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "limit",
        [0.5, Decimal("0.5"), {"max_usd": 0.5}, {"max_usd": 0.5, "max_llm_calls": 9}],
        ids=["float", "decimal", "dict", "dict-of-two"],
    )
    def test_limits_take_the_same_forms_everywhere(self, limit: Limits) -> None:
        with budget(max_usd=1, name="app") as app:
            self.run_steps(["alpha"], limits={"alpha": limit})
        child = app.find_child("alpha")
        assert child is not None
        assert child.config.caps.usd == 500_000_000  # $0.50 in nano-dollars, whatever the form

    @pytest.mark.parametrize("limit", [-1, 0, float("nan"), True, "1", [1], {"max_usd": -1}])
    def test_bad_limits_are_refused_when_given(self, limit: object) -> None:
        with (
            budget(max_usd=1, name="app"),
            pytest.raises(BudgetConfigError, match=rf"{self.limits_param}\['alpha'\]"),
        ):
            self.run_steps(["alpha"], limits={"alpha": limit})  # type: ignore[dict-item]
        assert self.fake.requests == []

    def test_a_step_over_its_limit_is_stopped_before_sending(self) -> None:
        with (
            budget(max_usd=1, name="app") as app,
            pytest.raises(BudgetExceededError) as caught,
        ):
            self.run_steps(["alpha", "alpha"], limits={"alpha": {"max_llm_calls": 1}})
        assert caught.value.sent is False
        assert caught.value.budget_name == "app.alpha"
        assert len(self.fake.requests) == 1
        assert app.snapshot().llm_calls_used == 1

    def test_a_refusal_names_the_budget_whose_own_cap_refused(self) -> None:
        with (
            budget(max_usd=1, max_llm_calls=1, name="app"),
            pytest.raises(BudgetExceededError) as caught,
        ):
            self.run_steps(["alpha", "beta"], limits={"beta": 0.5})
        assert caught.value.sent is False
        assert caught.value.budget_name == "app"
        assert len(self.fake.requests) == 1

    # -- tools ---------------------------------------------------------------------------------

    def test_a_tool_call_counts_against_its_step(self) -> None:
        with budget(max_usd=1, name="app") as app:
            self.run_tool("alpha", "search", arguments={"q": "x"})
        child = app.find_child("alpha")
        assert child is not None
        assert child.snapshot().tool_calls_used == 1
        assert app.snapshot().tool_calls_used == 1

    def test_a_tool_that_fails_is_released_and_not_counted(self) -> None:
        with budget(max_usd=1, name="app") as app:
            error = _raised(lambda: self.run_tool("alpha", "search", fails=True))
        assert error is None or _caused_by(error, ToolFailed) is not None, error
        assert self.tool_runs == ["search"]
        assert app.snapshot().tool_calls_used == 0
        assert app.snapshot().usd_reserved == 0

    def test_tool_calls_stop_at_max_tool_calls_before_the_tool_runs(self) -> None:
        limits = {"alpha": {"max_tool_calls": 1}}
        with budget(max_usd=1, name="app") as app:
            self.run_tool("alpha", "search", arguments=1, limits=limits)
            error = _raised(lambda: self.run_tool("alpha", "search", arguments=2, limits=limits))
        assert self.tool_runs == ["search"]  # the second never ran
        refusal = _caused_by(error, ToolBudgetExceededError)
        assert refusal is None or refusal.sent is False
        assert app.snapshot().tool_calls_used == 1

    def test_the_same_tool_call_repeated_is_stopped_by_loop_guard(self) -> None:
        with budget(max_usd=1, name="app", loop_guard=2) as app:
            self.run_tool("alpha", "search", arguments={"q": "same"})
            _raised(lambda: self.run_tool("alpha", "search", arguments={"q": "same"}))
        assert self.tool_runs == ["search"]
        assert app.snapshot().tool_calls_used == 1

    # -- usage nobody reported -----------------------------------------------------------------

    def test_usage_a_model_does_not_report_is_estimated_with_a_warning(self) -> None:
        with (
            budget(max_usd=1, name="app") as app,
            pytest.warns(UsageMissingWarning, match="estimate"),
        ):
            self.run_unreported("alpha", "x" * 400)
        assert app.snapshot().llm_calls_used == 1
        calls = list(app.find_child("alpha").history().calls)  # type: ignore[union-attr]
        assert len(calls) == 1
        assert calls[0].estimated is True
        assert calls[0].input_tokens == 100  # a token per four characters

    # -- mistakes are reported -----------------------------------------------------------------

    def test_limits_given_outside_any_budget_warn(self) -> None:
        with pytest.warns(OutsideBudgetWarning, match="outside any budget"):
            self.run_steps(["alpha"], limits={"alpha": 0.5})
        assert len(self.fake.requests) == 1  # nothing to stop it: it ran

    def test_a_mapped_name_that_matched_no_step_is_named(self) -> None:
        expected = r"'alhpa'.*did you mean 'alpha'"
        with pytest.warns(UnmatchedNameWarning, match=expected), budget(max_usd=1, name="app"):
            self.run_steps(["alpha"], limits={"alhpa": 0.5})
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnmatchedNameWarning)
            with budget(max_usd=1, name="app"):
                self.run_steps(["alpha"], limits={"alpha": 0.5})


def _raised(run: Callable[[], object]) -> BaseException | None:
    """What ``run()`` raised, or ``None``."""
    try:
        run()
    except Exception as error:
        return error
    return None


def _caused_by(error: BaseException | None, kind: type[Any]) -> Any:
    """``error`` or the first error in its chain of causes that is a ``kind``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
