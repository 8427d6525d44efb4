"""The surface framework integrations stand on: named children without ``with``, framework
names, activation outside ``with``, pre-call checks, two-phase tool calls, live limits and
framework-reported usage."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from shekel import (
    Budget,
    BudgetConfigError,
    BudgetExceededError,
    ToolBudgetExceededError,
    budget,
    budget_name,
    current_budget,
)
from shekel.integration import activate, deactivate

# -- parent.child(name) ----------------------------------------------------------------------


def test_child_is_created_once_and_attached_without_being_entered() -> None:
    root = budget(max_usd=10, name="root")
    child = root.child("research", max_usd=2)
    assert root.child("research") is child
    assert root.child("research", max_usd=2) is child
    assert root.children == [child]
    assert child.full_name == "root.research"
    assert child.parent is root
    assert not child.is_active
    with root, child:
        assert current_budget() is child


def test_a_child_made_by_with_is_found_by_child() -> None:
    with budget(max_usd=10, name="root") as root:
        with budget(max_usd=1, name="step") as step:
            pass
        assert root.child("step") is step


def test_a_child_asked_for_with_other_options_is_refused() -> None:
    root = budget(max_usd=10, name="root")
    root.child("research", max_usd=2, warn_at=0.5)
    with pytest.raises(BudgetConfigError, match="other max_usd") as caught:
        root.child("research", max_usd=3)
    assert "set_limits()" in str(caught.value)
    with pytest.raises(BudgetConfigError, match="warn_at"):
        root.child("research", warn_at=0.9)
    with pytest.raises(BudgetConfigError, match="did you mean 'max_usd'"):
        root.child("other", max_usdd=1)


def test_a_child_is_auto_capped_to_what_its_parent_has_left() -> None:
    with budget(max_usd=10, name="root") as root:
        root.record(usd=7)
    child = root.child("late", max_usd=5)
    assert child.limit == 3
    assert child.config.max_usd == 5


def test_spend_of_a_child_reaches_its_parent_without_entering_either() -> None:
    root = budget(max_usd=1, name="root")
    child = root.child("step")
    child.record(usd=0.25)
    assert (root.spent, root.spent_by_children) == (0.25, 0.25)
    with pytest.raises(BudgetExceededError) as caught:
        child.record(usd=1)
    assert caught.value.budget_name == "root"


def test_a_hundred_threads_creating_one_child_get_the_same_one() -> None:
    root = budget(max_usd=1000, name="root")
    start = threading.Barrier(100)
    seen: list[Budget] = []
    lock = threading.Lock()

    def work() -> None:
        start.wait()
        child = root.child("worker", max_usd=500)
        child.record(usd=0.5, tokens=1)
        with lock:
            seen.append(child)

    threads = [threading.Thread(target=work) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert root.children == [seen[0]]
    assert (seen[0].spent, seen[0].snapshot().tokens_used) == (50, 100)
    assert root.spent == 50


def test_a_hundred_tasks_creating_one_child_get_the_same_one() -> None:
    async def main() -> tuple[Budget, list[Budget]]:
        root = budget(max_usd=1000, name="root")

        async def work() -> Budget:
            await asyncio.sleep(0)
            child = root.child("worker")
            async with root, child:
                current = current_budget()
                assert current is child
                current.record(usd=0.5)
            return child

        return root, list(await asyncio.gather(*(work() for _ in range(100))))

    root, seen = asyncio.run(main())
    assert len({id(c) for c in seen}) == 1
    assert root.children == [seen[0]]
    assert seen[0].spent == 50


# -- framework names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Research Analyst", "Research Analyst"),
        ("crew.lead", "crew%2Elead"),
        ("crew_lead", "crew_lead"),
        ("100% sure", "100%25 sure"),
        ("line\nbreak", "line%0Abreak"),
        ("", "%"),
        ("  ", "%20%20"),
        ("日本.語", "日本%2E語"),
    ],
)
def test_budget_name_turns_any_framework_name_into_a_valid_one(text: str, name: str) -> None:
    assert budget_name(text) == name
    budget(name=budget_name(text))  # accepted as a budget name


def test_budget_name_never_makes_two_names_equal() -> None:
    texts = ["a.b", "a%2Eb", "a_b", "a b", "a%b", "a%25b", "", "%", " ", "%20", "\x00", "%00"]
    assert len({budget_name(t) for t in texts}) == len(texts)


# -- activation outside with -----------------------------------------------------------------


def test_activate_and_deactivate_like_a_with_block() -> None:
    root = budget(max_usd=1, name="root")
    activation = activate(root)
    assert current_budget() is root
    assert root.is_active
    deactivate(activation)
    deactivate(activation)  # twice: harmless
    assert current_budget() is None
    assert not root.is_active


def test_an_activation_ended_in_a_copied_context_leaves_nothing_active() -> None:
    """LangChain runs async end callbacks in a task over a copy of the caller's context."""

    async def main() -> tuple[object, object, bool]:
        parent = budget(max_usd=10, name="parent")
        async with parent:
            child = parent.child("step")
            activation = activate(child)
            assert current_budget() is child

            async def end_elsewhere() -> None:
                deactivate(activation)

            await asyncio.create_task(end_elsewhere(), context=contextvars.copy_context())
            inside = current_budget()
        return inside, current_budget(), child.is_active

    inside, after, still_active = asyncio.run(main())
    assert inside is not None
    assert inside.name == "parent"
    assert after is None
    assert still_active is False


def test_an_activation_ended_from_another_thread_leaves_nothing_active() -> None:
    root = budget(max_usd=1, name="root")
    activation = activate(root)
    ender = threading.Thread(target=deactivate, args=(activation,))
    ender.start()
    ender.join()
    assert current_budget() is None
    with budget(max_usd=1, name="next") as nxt:
        assert nxt.full_name == "next"  # not nested under the ended root


def test_the_old_activate_methods_warn_and_still_work() -> None:
    a, b = budget(name="a"), budget(name="b")
    with pytest.warns(DeprecationWarning, match=r"shekel\.integration\.activate\(budget\)"):
        activation = a.activate()
    assert current_budget() is a
    with (
        pytest.warns(DeprecationWarning, match="deactivate"),
        pytest.raises(BudgetConfigError, match="belongs to budget 'a'"),
    ):
        b.deactivate(activation)
    with pytest.warns(DeprecationWarning, match="deactivate"):
        a.deactivate(activation)
    assert current_budget() is None


# -- check -----------------------------------------------------------------------------------


def test_check_raises_what_the_interceptor_would_and_holds_nothing() -> None:
    b = budget(max_usd=1, max_llm_calls=2, name="b")
    b.check()
    b.record(usd=0.1)
    b.record(usd=0.1)
    with pytest.raises(BudgetExceededError) as caught:
        b.check()
    assert (caught.value.sent, caught.value.axis) == (False, "llm_calls")
    assert b.snapshot().llm_calls_used == 2
    snap = b.snapshot()
    assert (snap.usd_reserved, snap.tokens_reserved) == (0, 0)


def test_check_sees_an_exhausted_ancestor() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step")
    root.child("other").record(usd=1)
    with pytest.raises(BudgetExceededError) as caught:
        step.check()
    assert caught.value.budget_name == "root"
    step.check(llm_calls=0)  # nothing asked for: nothing to refuse


def test_check_of_amounts() -> None:
    b = budget(max_usd=1, max_tokens=100, max_tool_calls=1)
    b.check(usd=1, tokens=100, tool_calls=1)
    with pytest.raises(BudgetExceededError, match=r"limit of \$1\.00") as caught:
        b.check(usd=1.01)
    assert caught.value.axis == "usd"
    with pytest.raises(ToolBudgetExceededError):
        b.check(tool_calls=2, llm_calls=0)


# -- two-phase tool calls --------------------------------------------------------------------


def test_a_tool_call_is_counted_before_it_runs_and_committed_after() -> None:
    b = budget(max_usd=1, max_tool_calls=2, tool_prices={"search": 0.05})
    with b.tool_call("search") as call:
        assert b.snapshot().tool_calls_remaining == 1  # held while the tool runs
        assert call.usd == 0.05
        call.commit(usd=0.01)
    with b.tool_call("search"):
        pass  # ends normally: recorded at its held price
    assert b.snapshot().tool_calls_used == 2
    assert b.spent == pytest.approx(0.06)
    with pytest.raises(ToolBudgetExceededError) as caught, b.tool_call("search"):
        pytest.fail("a third call must not run")
    assert caught.value.sent is False
    assert caught.value.tool_name == "search"
    assert [c.tool_name for c in b.history().calls] == ["search", "search"]


def test_a_failed_tool_is_released() -> None:
    b = budget(max_usd=1, max_tool_calls=1)
    with pytest.raises(ValueError, match="tool failed"), b.tool_call("scrape", usd=0.5):
        raise ValueError("tool failed")
    snap = b.snapshot()
    assert (snap.tool_calls_used, snap.tool_calls_remaining, snap.usd_reserved) == (0, 1, 0)
    assert b.spent == 0


def test_tool_calls_held_at_once_count_against_the_cap() -> None:
    b = budget(max_tool_calls=2)
    first, second = b.tool_call("a"), b.tool_call("b")
    with pytest.raises(ToolBudgetExceededError):
        b.tool_call("c")
    first.release()
    second.commit()
    b.tool_call("c").commit()
    assert b.snapshot().tool_calls_used == 2


# -- live limits -----------------------------------------------------------------------------


def test_raising_a_limit_lets_an_exhausted_budget_go_on() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step", max_usd=1)
    step.record(usd=1)
    with pytest.raises(BudgetExceededError):
        step.check()
    root.set_limits(max_usd=3)
    step.set_limits(max_usd=2)
    step.check()
    assert (root.limit, step.limit, step.config.max_usd) == (3, 2, 2)
    step.record(usd=0.5)
    assert root.spent == 1.5


def test_a_childs_auto_cap_follows_its_parents_new_limit() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step", max_usd=5)
    assert step.limit == 1
    root.set_limits(max_usd=4)
    assert step.limit == 4
    root.set_limits(max_usd=None)
    assert step.limit == 5


def test_lowering_a_limit_below_the_spend_exhausts_the_budget() -> None:
    b = budget(max_usd=1, max_llm_calls=10)
    b.record(usd=0.5)
    b.set_limits(max_usd=0.25, max_llm_calls=None)
    with pytest.raises(BudgetExceededError):
        b.check()
    assert b.snapshot().llm_calls_remaining is None


def test_set_limits_validates_like_budget() -> None:
    b = budget(max_usd=1, fallback={"at_pct": 0.5, "model": "gpt-4o-mini"})
    with pytest.raises(BudgetConfigError, match="max_usd"):
        b.set_limits(max_usd=-1)
    with pytest.raises(BudgetConfigError, match="fallback"):
        b.set_limits(max_usd=None)
    assert b.limit == 1


def test_limits_change_atomically_with_concurrent_spend() -> None:
    b = budget(max_usd=1000)
    stop = threading.Event()

    def spend() -> None:
        while not stop.is_set():
            b.record(usd=0.001)

    workers = [threading.Thread(target=spend) for _ in range(4)]
    for w in workers:
        w.start()
    for limit in range(500, 1000, 10):
        b.set_limits(max_usd=limit)
    stop.set()
    for w in workers:
        w.join()
    assert b.limit == 990
    assert b.spent == pytest.approx(b.history().total_calls * 0.001)


# -- usage a framework reports ---------------------------------------------------------------


def test_a_report_with_a_call_id_is_idempotent() -> None:
    b = budget(max_usd=1)
    first = b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-1")
    again = b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-1")
    assert again is first
    assert b.snapshot().llm_calls_used == 1
    assert first.source == "manual"
    b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-2", source="x")
    assert b.snapshot().llm_calls_used == 2
    assert b.history().calls[-1].source == "x"


def test_one_call_id_reported_by_many_threads_at_once_counts_once() -> None:
    b = budget(max_usd=10)
    start = threading.Barrier(16)
    reports: list[object] = []

    def report(i: int) -> None:
        start.wait()
        for n in range(50):
            reports.append(b.record(usd=0.001, call_id=f"shared-{n}", source=f"framework-{i % 2}"))

    workers = [threading.Thread(target=report, args=(i,)) for i in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert b.snapshot().llm_calls_used == 50
    assert b.spent == pytest.approx(0.05)
    assert len({id(r) for r in reports}) == 50  # every report got the call as first recorded


def test_a_report_that_crosses_the_cap_is_remembered_too() -> None:
    b = budget(max_usd=0.0001)
    with pytest.raises(BudgetExceededError) as caught:
        b.record(usd=0.001, call_id="over")
    assert caught.value.call is not None
    assert b.record(usd=0.001, call_id="over") is caught.value.call
    assert b.spent == 0.001


def test_a_child_asked_for_again_after_set_limits_is_the_same_child() -> None:
    """Resuming a paused step asks for its budget with the options it was made with."""
    root = budget(max_usd=10, name="root")
    step = root.child("step", max_usd=1)
    step.set_limits(max_usd=3)
    assert root.child("step", max_usd=1) is step
    assert step.limit == 3
    with pytest.raises(BudgetConfigError, match="other max_usd"):
        root.child("step", max_usd=2)


def test_find_child_looks_up_without_creating() -> None:
    root = budget(max_usd=10, name="root")
    assert root.find_child("step") is None
    assert root.children == []
    step = root.child("step")
    assert root.find_child("step") is step


def test_a_child_of_an_unnamed_budget_by_name() -> None:
    with budget(max_usd=1) as root:
        step = root.child("retrieve", max_usd=0.5)
        step.record(usd=0.25)
    assert step.full_name == "budget.retrieve"
    assert root.spent == 0.25
    with (
        pytest.raises(BudgetConfigError, match="nested budgets need names"),
        budget(max_usd=1),
        budget(max_usd=1, name="x"),
    ):
        pass


def test_a_refusal_names_the_budget_whose_cap_refused() -> None:
    """An auto-capped child of an exhausted parent would only say "$0 of $0"."""
    root = budget(max_usd=1, name="root")
    root.child("other").record(usd=1)
    with pytest.raises(BudgetExceededError) as caught:
        root.child("step", max_usd=0.5).check()
    assert caught.value.budget_name == "root"
    assert caught.value.limit == 1


def test_reported_usage_can_be_an_estimate_with_cache_writes() -> None:
    b = budget(max_usd=10, prices={"m": {"input": 1.0, "output": 2.0, "cache_write": 1.25}})
    call = b.record(
        model="m", input_tokens=1000, cache_write_tokens=400, output_tokens=10, estimated=True
    )
    assert call.estimated is True
    assert call.cache_write_tokens == 400
    assert call.cost == round((600 * 1.0 + 400 * 1.25 + 10 * 2.0) * 1000)
    assert b.summary_data()["estimated_calls"] == 1
    with pytest.raises(BudgetConfigError, match="estimated"):
        b.record(usd=0.1, estimated="yes")  # type: ignore[arg-type]
