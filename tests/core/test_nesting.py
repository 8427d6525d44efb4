"""Seed 004: nested budgets (propagation, auto-capping, locking, names, depth, async)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from shekel import BudgetExceededError, budget, current_budget


def test_quick_example() -> None:
    with budget(max_usd=10.00, name="workflow") as workflow:
        with budget(max_usd=2.00, name="research") as research:
            research.record(usd=1.25)
        with budget(max_usd=5.00, name="analysis") as analysis:
            analysis.record(usd=3.0)
        workflow.record(usd=0.5)  # the parent can spend directly too
    assert workflow.spent == 4.75
    assert workflow.spent_direct == 0.5
    assert workflow.spent_by_children == 4.25
    assert [c.name for c in workflow.children] == ["research", "analysis"]


def test_spend_propagates_to_the_parent() -> None:
    with budget(max_usd=10.00, name="parent") as parent:
        with budget(max_usd=2.00, name="child") as child:
            child.record(usd=1.50)
    assert parent.spent == 1.50
    assert parent.spent_by_children == 1.50
    assert parent.spent_direct == 0.00
    assert child.spent == 1.50
    assert child.spent_direct == 1.50


def test_spend_reaches_every_ancestor_when_it_is_recorded() -> None:
    with (
        budget(max_usd=10, name="a") as a,
        budget(max_usd=5, name="b") as b,
        budget(max_usd=2, name="c") as c,
    ):
        c.record(usd=0.25, tokens=10)
        # not at exit: right now
        assert a.spent == 0.25
        assert b.spent == 0.25
        assert a.snapshot().tokens_used == 10
        assert a.snapshot().llm_calls_used == 1
        assert a.remaining == 9.75
        c.record(usd=0.25)
        assert a.spent == 0.5
        assert b.spent_by_children == 0.5


def test_parent_cap_holds_while_the_child_is_running() -> None:
    with budget(max_usd=1.00, name="parent") as parent:
        parent.record(usd=0.25)
        with budget(max_usd=5.00, name="child") as child:
            child.record(usd=0.70)
            with pytest.raises(BudgetExceededError) as info:
                child.record(usd=0.10)
    # the child was auto-capped to $0.75, so the child's own cap is the one hit
    assert info.value.budget_name == "parent.child"
    assert parent.spent == 1.05


def test_ancestor_cap_is_reported_when_it_is_the_one_exceeded() -> None:
    with budget(max_usd=1.00, name="parent") as parent:
        sibling_branch = contextvars.copy_context()  # another branch of the workflow
        with budget(max_usd=0.8, name="child") as child:
            assert child.limit == 0.8
            sibling_branch.run(parent.record, usd=0.5)
            with pytest.raises(BudgetExceededError) as info:
                child.record(usd=0.6)  # within the child's $0.80, not the parent's $1.00
    assert info.value.budget_name == "parent"
    assert info.value.limit == 1.0
    assert info.value.spent == 1.1
    assert child.spent == 0.6


def test_auto_capping_to_the_parents_remaining() -> None:
    with budget(max_usd=10.00, name="parent") as parent:
        parent.record(usd=7.00)
        with budget(max_usd=5.00, name="child") as child:
            assert child.limit == 3.00
            assert child.config.max_usd == 5.00
            assert child.remaining == 3.00
            child.record(usd=1.0)
        assert parent.remaining == 2.0


def test_child_is_not_capped_when_the_parent_has_room() -> None:
    with budget(max_usd=10.00, name="parent"), budget(max_usd=5.00, name="child") as child:
        assert child.limit == 5.00


def test_child_under_a_track_only_parent_keeps_its_own_limit() -> None:
    with budget(name="parent") as parent:
        parent.record(usd=100.0)
        with budget(max_usd=5.00, name="child") as child:
            assert child.limit == 5.00


def test_auto_capping_is_recomputed_on_re_entry() -> None:
    with budget(max_usd=10.00, name="parent") as parent:
        child = budget(max_usd=5.00, name="child")
        with child:
            child.record(usd=1.0)
        assert child.limit == 5.0
        parent.record(usd=7.0)  # parent: 8 used, 2 left
        with child:
            # the child has used 1 and may use what the parent has left
            assert child.limit == 3.0
            assert child.remaining == 2.0


def test_auto_capping_applies_to_token_limits() -> None:
    with budget(max_tokens=1_000, name="parent") as parent:
        parent.record(tokens=900)
        with budget(max_tokens=500, name="child") as child:
            assert child.snapshot().tokens_limit == 100


def test_parent_cannot_spend_while_a_child_is_active() -> None:
    with budget(max_usd=10.00, name="parent") as parent:
        with budget(max_usd=2.00, name="child") as child:
            child.record(usd=0.5)
            with pytest.raises(RuntimeError, match="child"):
                parent.record(usd=1.0)
            with pytest.raises(RuntimeError):
                parent.reserve(usd=1.0)
            with pytest.raises(RuntimeError):
                parent.tool_call("search", usd=0.1).commit()
            assert parent.spent == 0.5
        parent.record(usd=1.0)  # child exited: allowed again
    assert parent.spent == 1.5
    assert parent.spent_direct == 1.0


def test_grandparent_is_locked_too() -> None:
    with (
        budget(max_usd=10, name="g") as g,
        budget(max_usd=5, name="p"),
        budget(max_usd=2, name="c"),
        pytest.raises(RuntimeError),
    ):
        g.record(usd=0.1)
    assert g.spent == 0.0


def test_names_are_required_when_nesting() -> None:
    with budget(max_usd=10), pytest.raises(ValueError, match="name"), budget(max_usd=5):
        pass
    with (
        budget(max_usd=10, name="parent"),
        pytest.raises(ValueError, match="name"),
        budget(max_usd=5),
    ):
        pass
    with (
        budget(max_usd=10),
        pytest.raises(ValueError, match="name"),
        budget(max_usd=5, name="child"),
    ):
        pass


def test_an_unnamed_budget_is_fine_on_its_own() -> None:
    b = budget(max_usd=10.00)
    with b:
        b.record(usd=2.0)
    with b:
        b.record(usd=2.0)
    assert b.spent == 4.0
    assert b.name is None


def test_full_name_is_the_dotted_path() -> None:
    with (
        budget(max_usd=20, name="pipeline") as root,
        budget(max_usd=10, name="processing") as proc,
        budget(max_usd=5, name="validation") as val,
    ):
        assert val.full_name == "pipeline.processing.validation"
        assert proc.full_name == "pipeline.processing"
        assert root.full_name == "pipeline"
        assert val.parent is proc
        assert proc.parent is root
        assert root.parent is None


def test_cost_attribution() -> None:
    with budget(max_usd=20.00, name="workflow") as w:
        with budget(max_usd=5.00, name="stage1") as s1:
            s1.record(usd=3.00)
        with budget(max_usd=8.00, name="stage2") as s2:
            s2.record(usd=6.00)
        w.record(usd=2.00)
    assert w.spent == 11.00
    assert w.spent_direct == 2.00
    assert w.spent_by_children == 9.00
    assert f"${w.spent:.2f}" == "$11.00"


def test_track_only_children() -> None:
    with budget(max_usd=20.00, name="workflow") as w:
        with budget(max_usd=None, name="exploration") as e:
            assert e.limit is None
            e.record(usd=4.0)
        with budget(max_usd=5.00, name="finalization") as f:
            f.record(usd=1.0)
    assert w.children[0].spent == 4.0
    assert w.spent == 5.0


def test_track_only_child_still_counts_against_the_parent_cap() -> None:
    with budget(max_usd=1.0, name="w") as w:
        with budget(name="free") as free, pytest.raises(BudgetExceededError) as info:
            free.record(usd=1.5)
        assert info.value.budget_name == "w"
    assert w.spent == 1.5


def test_children_parent_and_active_child() -> None:
    with budget(max_usd=10, name="parent") as parent:
        assert parent.active_child is None
        with budget(max_usd=1, name="a") as a:
            assert parent.active_child is a
        assert parent.active_child is None
        with budget(max_usd=1, name="b") as b:
            assert parent.active_child is b
    assert parent.children == [a, b]
    assert a.parent is parent
    assert parent.active_child is None


def test_depth_limit() -> None:
    with (
        budget(max_usd=100, name="L0") as l0,
        budget(max_usd=50, name="L1"),
        budget(max_usd=25, name="L2"),
        budget(max_usd=12, name="L3"),
        budget(max_usd=6, name="L4") as l4,
    ):
        l4.record(usd=1.0)
        assert l4._node.depth == 4
        assert l0._node.depth == 0
        deep = budget(max_usd=3, name="L5")
        with pytest.raises(ValueError, match="deep"), deep:
            pass
        assert deep.parent is None
        assert current_budget() is l4
    assert l0.spent == 1.0


def test_unique_sibling_names() -> None:
    with budget(max_usd=10, name="parent") as parent:
        with budget(max_usd=3, name="stage1") as first:
            first.record(usd=1.0)
        with pytest.raises(ValueError, match="stage1"), budget(max_usd=3, name="stage1"):
            pass
        assert current_budget() is parent
        with first:  # re-entering the same object is fine and accumulates
            first.record(usd=1.0)
    assert first.spent == 2.0
    assert parent.children == [first]


def test_same_name_under_different_parents_is_fine() -> None:
    with budget(max_usd=10, name="root"):
        with budget(max_usd=3, name="a"), budget(max_usd=1, name="x") as ax:
            ax.record(usd=0.1)
        with budget(max_usd=3, name="b"), budget(max_usd=1, name="x") as bx:
            bx.record(usd=0.2)
    assert ax.full_name == "root.a.x"
    assert bx.full_name == "root.b.x"


def test_a_child_belongs_to_one_parent() -> None:
    child = budget(max_usd=1, name="child")
    with budget(max_usd=10, name="one"), child:
        child.record(usd=0.1)
    with budget(max_usd=10, name="two") as two, pytest.raises(ValueError), child:
        pass
    assert two.spent == 0.0
    with pytest.raises(ValueError), child:  # not at the top level either
        pass


def test_a_budget_with_spend_of_its_own_cannot_become_a_child() -> None:
    # If it could, the parent's children would hold spend the parent never saw.
    session = budget(max_usd=5, name="session")
    with session:
        session.record(usd=1.0)
    with budget(max_usd=10, name="outer") as outer:
        with pytest.raises(ValueError, match="session"), session:
            pass
        assert outer.children == []
    assert session.parent is None
    assert outer.spent == outer.spent_direct + outer.spent_by_children
    # after a reset it is a fresh budget again and may be nested
    session.reset()
    with outer, session:
        session.record(usd=1.0)
    assert outer.spent == 1.0
    assert outer.spent_by_children == 1.0


def test_a_budget_cannot_be_nested_in_itself() -> None:
    b = budget(max_usd=1, name="b")
    with b, pytest.raises(ValueError), b:
        pass


def test_error_in_a_child_leaves_the_parent_active() -> None:
    with budget(max_usd=10, name="parent") as parent:
        with pytest.raises(KeyError), budget(max_usd=1, name="child") as child:
            child.record(usd=0.3)
            raise KeyError("boom")
        assert current_budget() is parent
        assert parent.active_child is None
        parent.record(usd=0.1)
    assert parent.spent == 0.4


def test_multi_agent_research_example() -> None:
    def research_agent(topic: str, budget_usd: float = 10.0) -> tuple[str, str]:
        with budget(max_usd=budget_usd, name="research_agent") as agent:
            with budget(max_usd=2.00, name="web_search") as s:
                s.record(usd=1.0)
            with budget(max_usd=5.00, name="analysis") as s:
                s.record(usd=2.5)
            with budget(max_usd=3.00, name="report") as s:
                s.record(usd=0.5)
        return f"report on {topic}", agent.tree()

    report, tree = research_agent("budgets")
    assert report == "report on budgets"
    assert tree.splitlines() == [
        "research_agent: $4.00 / $10.00 (direct: $0.00)",
        "  web_search: $1.00 / $2.00 (direct: $1.00)",
        "  analysis: $2.50 / $5.00 (direct: $2.50)",
        "  report: $0.50 / $3.00 (direct: $0.50)",
    ]


def test_langgraph_style_nodes_inside_one_workflow_budget() -> None:
    with budget(max_usd=20.00, name="langgraph_workflow") as main:

        def research_node(state: dict[str, object]) -> dict[str, object]:
            with budget(max_usd=5.00, name="research") as b:
                b.record(usd=1.5)
                return {"research": "facts"}

        def analysis_node(state: dict[str, object]) -> dict[str, object]:
            with budget(max_usd=10.00, name="analysis") as b:
                b.record(usd=4.0)
                return {"analysis": f"about {state['research']}"}

        state: dict[str, object] = {"query": "..."}
        state |= research_node(state)
        state |= analysis_node(state)
    assert state["analysis"] == "about facts"
    assert main.spent == 5.5
    assert [c.full_name for c in main.children] == [
        "langgraph_workflow.research",
        "langgraph_workflow.analysis",
    ]


def test_crewai_style_per_agent_budgets() -> None:
    with budget(max_usd=15.00, name="crew") as crew_budget:
        with budget(max_usd=5.00, name="researcher") as r:
            r.record(usd=4.0)
        with budget(max_usd=8.00, name="writer") as w:
            with pytest.raises(BudgetExceededError) as info:
                w.record(usd=9.0)
            assert info.value.budget_name == "crew.writer"
    assert crew_budget.spent == 13.0
    assert "writer: $9.00 / $8.00" in crew_budget.tree()


def test_check_auto_capping_best_practice() -> None:
    with budget(max_usd=10, name="parent") as parent:
        parent.record(usd=8.5)
        with budget(max_usd=5, name="child") as child:
            assert child.limit is not None
            assert child.limit < 5.00
            assert f"${child.limit:.2f}" == "$1.50"


def test_async_nesting_works_the_same() -> None:
    async def main() -> tuple[float, float, str]:
        async with budget(max_usd=10, name="parent") as parent:
            async with budget(max_usd=5, name="child") as child:
                await asyncio.sleep(0)
                child.record(usd=2.0)
                assert parent.spent == 2.0
                with pytest.raises(RuntimeError):
                    parent.record(usd=1.0)
            with pytest.raises(ValueError):
                async with budget(max_usd=5):
                    pass
        return parent.spent, parent.spent_by_children, child.full_name

    assert asyncio.run(main()) == (2.0, 2.0, "parent.child")


def test_async_depth_limit() -> None:
    async def main() -> None:
        async with (
            budget(max_usd=100, name="L0"),
            budget(max_usd=50, name="L1"),
            budget(max_usd=25, name="L2"),
            budget(max_usd=12, name="L3"),
            budget(max_usd=6, name="L4"),
        ):
            with pytest.raises(ValueError):
                async with budget(max_usd=3, name="L5"):
                    pass

    asyncio.run(main())


def test_each_asyncio_task_has_its_own_context() -> None:
    async def main() -> None:
        async with budget(max_usd=10, name="parent") as parent:
            started = asyncio.Event()
            release = asyncio.Event()
            seen: dict[str, object] = {}

            async def branch(name: str) -> None:
                async with budget(max_usd=1, name=name) as mine:
                    seen[name] = current_budget()
                    if len(seen) == 2:
                        started.set()
                    await release.wait()
                    assert current_budget() is mine
                    mine.record(usd=0.25)

            tasks = [asyncio.create_task(branch(n)) for n in ("a", "b")]
            await started.wait()
            # both children are active at once; this task still sees the parent
            assert current_budget() is parent
            assert {c.name for c in parent.children if c.is_active} == {"a", "b"}
            assert seen["a"] is not seen["b"]
            release.set()
            await asyncio.gather(*tasks)
        assert parent.spent == 0.5

    asyncio.run(main())


def test_migration_notes_unnamed_budgets() -> None:
    b = budget(max_usd=10.00)
    with b:
        b.record(usd=2.0)
    with b:
        b.record(usd=2.0)
    assert b.spent == 4.0
    with budget(max_usd=10.00) as x:
        x.record(usd=2.0)
    with budget(max_usd=10.00) as y:
        y.record(usd=2.0)
    assert x.spent == 2.0
    assert y.spent == 2.0
