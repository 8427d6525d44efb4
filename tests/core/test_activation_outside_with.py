"""Activation outside a with block (shekel.integration): from other threads and tasks too."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from shekel import (
    BudgetConfigError,
    budget,
    current_budget,
)
from shekel.integration import activate, deactivate


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
