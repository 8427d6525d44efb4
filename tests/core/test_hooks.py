"""pluggy hooks, seen through a real plugin registered with ``shekel.plugins.plugin_manager()``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import shekel
from shekel import Budget, BudgetExceededError, CallRecord, budget
from shekel.plugins import ModelPrice, hookimpl, plugin_manager


class Recorder:
    """Implements every observing hook and remembers what it saw."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def shekel_budget_entered(self, budget: Budget) -> None:
        self.events.append(("entered", budget.full_name))

    @hookimpl
    def shekel_budget_exited(self, budget: Budget, error: BaseException | None) -> None:
        self.events.append(("exited", budget.full_name, type(error).__name__ if error else None))

    @hookimpl
    def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
        self.events.append(("spend", budget.full_name, call))

    @hookimpl
    def shekel_warning_crossed(self, budget: Budget, axis: str, spent: float, limit: float) -> None:
        self.events.append(("warning", budget.full_name, axis, spent, limit))

    @hookimpl
    def shekel_fallback_activated(
        self, budget: Budget, spent: float, limit: float, fallback_model: str
    ) -> None:
        self.events.append(("fallback", budget.full_name, spent, limit, fallback_model))

    @hookimpl
    def shekel_limit_exceeded(self, budget: Budget, error: BaseException) -> None:
        self.events.append(("exceeded", budget.full_name, error))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    plugin = Recorder()
    plugin_manager().register(plugin)
    yield plugin
    plugin_manager().unregister(plugin)


@pytest.fixture
def plugins() -> Iterator[list[object]]:
    registered: list[object] = []
    yield registered
    for plugin in registered:
        plugin_manager().unregister(plugin)


def test_plugin_manager_is_a_singleton_with_the_shekel_project_name() -> None:
    assert plugin_manager() is plugin_manager()
    assert plugin_manager().project_name == "shekel"
    assert shekel.plugins.hookimpl.project_name == "shekel"


def test_entered_and_exited_in_order(recorder: Recorder) -> None:
    with budget(max_usd=1, name="outer"), budget(max_usd=1, name="inner"):
        pass
    assert recorder.events == [
        ("entered", "outer"),
        ("entered", "outer.inner"),
        ("exited", "outer.inner", None),
        ("exited", "outer", None),
    ]


def test_exited_receives_the_error_leaving_the_block(recorder: Recorder) -> None:
    with pytest.raises(KeyError), budget(max_usd=1, name="b"):
        raise KeyError("x")
    assert recorder.of("exited") == [("exited", "b", "KeyError")]


def test_async_blocks_fire_the_same_hooks(recorder: Recorder) -> None:
    import asyncio

    async def main() -> None:
        async with budget(max_usd=1, name="a"):
            pass

    asyncio.run(main())
    assert recorder.events == [("entered", "a"), ("exited", "a", None)]


def test_spend_recorded_carries_the_call_and_the_budget_path(recorder: Recorder) -> None:
    with budget(max_usd=10, name="root"), budget(max_usd=5, name="leaf") as leaf:
        leaf.record(usd=0.5, model="gpt-4o-mini", input_tokens=100, output_tokens=20)
    (spend,) = recorder.of("spend")
    _, path, call = spend
    assert path == "root.leaf"
    assert isinstance(call, CallRecord)
    assert call.budget_path == "root.leaf"
    assert call.model == "gpt-4o-mini"
    assert call.input_tokens == 100
    assert call.output_tokens == 20
    assert call.cost_usd == 0.5


def test_spend_recorded_fires_for_commits_and_tool_calls(recorder: Recorder) -> None:
    b = budget(max_usd=1, name="b")
    with b.reserve(usd=0.1) as r:
        r.commit(usd=0.05)
    b.tool_call("search", usd=0.01).commit()
    calls = [e[2] for e in recorder.of("spend")]
    assert [c.cost_usd for c in calls] == [0.05, 0.01]
    assert calls[1].tool_name == "search"


def test_spend_recorded_fires_before_the_limit_error(recorder: Recorder) -> None:
    b = budget(max_usd=0.1, name="b")
    with pytest.raises(BudgetExceededError) as info:
        b.record(usd=0.2)
    assert recorder.kinds() == ["spend", "exceeded"]
    _, name, error = recorder.of("exceeded")[0]
    assert name == "b"
    assert error is info.value


def test_limit_exceeded_names_the_ancestor_that_was_hit(recorder: Recorder) -> None:
    with (
        budget(max_usd=1.0, name="parent"),
        budget(name="child") as child,
        pytest.raises(BudgetExceededError) as info,
    ):
        child.record(usd=1.5)
    (event,) = recorder.of("exceeded")
    assert event[1] == "parent"
    assert event[2] is info.value


def test_limit_exceeded_for_a_refused_reservation(recorder: Recorder) -> None:
    b = budget(max_usd=0.1, name="b")
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(usd=0.2)
    assert recorder.kinds() == ["exceeded"]
    assert recorder.events[0][2] is info.value
    assert info.value.sent is False


def test_warning_crossed_once(recorder: Recorder) -> None:
    seen: list[tuple[float, float]] = []
    b = budget(max_usd=10, name="b", warn_at=0.8, on_warn=lambda s, lim: seen.append((s, lim)))
    b.record(usd=7.0)
    assert recorder.of("warning") == []
    b.record(usd=2.0)
    b.record(usd=0.5)
    assert recorder.of("warning") == [("warning", "b", "usd", 9.0, 10.0)]
    assert seen == [(9.0, 10.0)]


def test_fallback_activated_once(recorder: Recorder) -> None:
    b = budget(max_usd=5, name="b", fallback={"at_pct": 0.8, "model": "gpt-4o-mini"})
    b.record(usd=3.0)
    b.record(usd=1.5)
    b.record(usd=0.1)
    assert recorder.of("fallback") == [("fallback", "b", 4.5, 5.0, "gpt-4o-mini")]


def test_unregistered_plugin_sees_nothing() -> None:
    plugin = Recorder()
    plugin_manager().register(plugin)
    with budget(max_usd=1, name="b") as b:
        b.record(usd=0.1)
    assert plugin.kinds() == ["entered", "spend", "exited"]
    plugin_manager().unregister(plugin)
    with budget(max_usd=1, name="b") as b:
        b.record(usd=0.1)
    assert plugin.kinds() == ["entered", "spend", "exited"]


def test_a_plugin_implementing_only_some_hooks(plugins: list[object]) -> None:
    entered: list[str] = []

    class OnlyEntered:
        @hookimpl
        def shekel_budget_entered(self, budget: Budget) -> None:
            entered.append(budget.full_name)

    plugin = OnlyEntered()
    plugin_manager().register(plugin)
    plugins.append(plugin)
    with budget(max_usd=1, name="x") as b:
        b.record(usd=0.5)
    assert entered == ["x"]


def test_plugins_hear_a_call_newest_first_each_with_the_arguments_it_names(
    plugins: list[object],
) -> None:
    """shekel calls plain implementations itself (pluggy's dispatch costs more than a recorded
    call): in pluggy's order, each given only the arguments it declares."""
    heard: list[tuple[str, object]] = []

    class First:
        @hookimpl
        def shekel_spend_recorded(self, call: CallRecord) -> None:
            heard.append(("first", call.cost_usd))

    class Second:
        @hookimpl
        def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
            heard.append(("second", budget.full_name))

    for plugin in (First(), Second()):
        plugin_manager().register(plugin)
        plugins.append(plugin)
    with budget(max_usd=1, name="b") as b:
        b.record(usd=0.25)
    assert heard == [("second", "b"), ("first", 0.25)]


def test_a_wrapper_sees_the_call_and_the_plugins_it_wraps(plugins: list[object]) -> None:
    heard: list[str] = []

    class Plain:
        @hookimpl
        def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
            heard.append("plain")

    class Wrapping:
        @hookimpl(wrapper=True)
        def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> Iterator[None]:
            heard.append("before")
            result = yield
            heard.append("after")
            return result

    for plugin in (Plain(), Wrapping()):
        plugin_manager().register(plugin)
        plugins.append(plugin)
    with budget(max_usd=1, name="b") as b:
        b.record(usd=0.25)
    assert heard == ["before", "plain", "after"]


def test_a_plugin_error_reaches_the_caller_after_the_spend_is_recorded(
    plugins: list[object],
) -> None:
    class Failing:
        @hookimpl
        def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
            raise LookupError("plugin broke")

    plugin = Failing()
    plugin_manager().register(plugin)
    plugins.append(plugin)
    with budget(max_usd=1, name="b") as b:
        with pytest.raises(LookupError, match="plugin broke"):
            b.record(usd=0.25)
    assert b.spent == 0.25


# -- shekel_model_price --------------------------------------------------------------------


def private_model() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


def test_a_plugin_prices_a_private_model(plugins: list[object]) -> None:
    model = private_model()
    asked: list[tuple[str, str | None]] = []

    class AcmePrices:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> ModelPrice | None:
            asked.append((model, provider))
            if model.startswith("acme-"):
                return ModelPrice(input=Decimal("1.00"), output=Decimal("4.00"))
            return None

    plugin = AcmePrices()
    plugin_manager().register(plugin)
    plugins.append(plugin)
    b = budget(max_usd=1, name="b", unknown_models="error")
    with b:
        for _ in range(3):
            b.record(model=model, input_tokens=100_000, output_tokens=10_000, provider="acme")
    # 100k x $1/M + 10k x $4/M = $0.14 a call
    assert b.spent == 0.42
    assert b.summary_data()["incomplete"] is False
    assert asked == [(model, "acme")]  # asked once, then cached


def test_the_newest_pricing_plugin_that_answers_sets_the_price(plugins: list[object]) -> None:
    model = private_model()

    class Cheap:
        @hookimpl
        def shekel_model_price(self, model: str) -> ModelPrice | None:
            return ModelPrice(input=Decimal("1.00"), output=Decimal("1.00"))

    class Silent:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> ModelPrice | None:
            return None

    class Dear:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> ModelPrice | None:
            return ModelPrice(input=Decimal("3.00"), output=Decimal("3.00"))

    for plugin in (Cheap(), Dear(), Silent()):
        plugin_manager().register(plugin)
        plugins.append(plugin)
    with budget(max_usd=1, name="b") as b:
        b.record(model=model, input_tokens=100_000, output_tokens=0, provider="acme")
    assert b.spent == 0.3  # Silent (newest) passes, Dear answers before Cheap


def test_a_plugin_may_answer_with_floats_or_a_dict(plugins: list[object]) -> None:
    float_model, dict_model = private_model(), private_model()

    class Loose:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> Any:
            if model == float_model:
                return ModelPrice(input=0.5, output=1.5)  # type: ignore[arg-type]
            if model == dict_model:
                return {"input": 2.0, "output": 3.0, "cached_input": 0.2}
            return None

    plugin = Loose()
    plugin_manager().register(plugin)
    plugins.append(plugin)
    b = budget(name="b")
    b.record(model=float_model, input_tokens=1_000_000, output_tokens=1_000_000)
    assert b.spent == 2.0
    c = budget(name="c")
    c.record(model=dict_model, input_tokens=1_000_000, cached_input_tokens=500_000)
    assert c.spent == 1.1


def test_budget_prices_accept_model_price_objects() -> None:
    b = budget(name="b", prices={"m1": ModelPrice(input=0.5, output=1.5)})  # type: ignore[arg-type]
    b.record(model="m1", input_tokens=1_000_000, output_tokens=1_000_000)
    assert b.spent == 2.0


def test_unregistering_the_pricing_plugin_forgets_its_prices(plugins: list[object]) -> None:
    model = private_model()

    class Pricer:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> ModelPrice | None:
            return ModelPrice(Decimal(1), Decimal(1)) if model.startswith("acme-") else None

    plugin = Pricer()
    plugin_manager().register(plugin)
    b = budget(name="b", unknown_models="error")
    b.record(model=model, input_tokens=1_000_000)
    assert b.spent == 1.0
    plugin_manager().unregister(plugin)
    with pytest.raises(shekel.UnknownModelError):
        b.record(model=model, input_tokens=1_000_000)
    assert b.spent == 1.0


# -- registration hooks and entry points ---------------------------------------------------


def test_shekel_install_reaches_a_plugin_registered_late(plugins: list[object]) -> None:
    installed: list[str] = []

    class Installer:
        @hookimpl
        def shekel_install(self) -> None:
            installed.append("installed")

    with budget(max_usd=1, name="first"):  # the first budget triggers installation
        pass
    plugin = Installer()
    plugin_manager().register(plugin)
    plugins.append(plugin)
    assert installed == ["installed"]  # historic: replayed at registration
    with budget(max_usd=1, name="second"):
        pass
    assert installed == ["installed"]  # once per process, not per budget


def test_entry_point_plugins_are_loaded() -> None:
    names = {dist.project_name for _, dist in plugin_manager().list_plugin_distinfo()}
    assert "shekel" in names
