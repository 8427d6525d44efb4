"""``@with_budget``: run each call of a function inside a fresh budget."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, cast

from ._budget import _TREE_LOCK, Budget
from ._config import check_arguments
from ._errors import BudgetConfigError
from ._tree import fold

F = TypeVar("F", bound=Callable[..., Any])


def with_budget(**budget_kwargs: Any) -> Callable[[F], F]:
    """Decorate a function so that every call runs in a new ``budget(...)``.

    Accepts every ``budget()`` parameter; they are checked when decorating, not at the first
    call. ``name`` defaults to the function's name. Works on sync and async functions, and on
    generator and async-generator functions, whose budget is active while their body runs
    (between the caller's ``next()`` calls it is not).

    Under an active parent the calls are *repeats*: they all take the same name, and each one
    that ends is added to the parent's rollup for that name (one line
    in ``tree()``), so a million calls cost constant time and memory each.
    """
    check_arguments(budget_kwargs)

    def decorate(fn: F) -> F:
        kwargs = {"name": fn.__name__, **budget_kwargs}

        def make() -> Budget:
            created = Budget(**kwargs)
            created._node.repeat = True
            return created

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            def run_async_generator(*args: Any, **call_kwargs: Any) -> AsyncGenerator[Any, Any]:
                return _metered_async_generator(make(), fn(*args, **call_kwargs))

            return cast(F, run_async_generator)

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def run_generator(*args: Any, **call_kwargs: Any) -> Generator[Any, Any, Any]:
                return _metered_generator(make(), fn(*args, **call_kwargs))

            return cast(F, run_generator)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **call_kwargs: Any) -> Any:
                async with make():
                    return await fn(*args, **call_kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **call_kwargs: Any) -> Any:
            with make():
                return fn(*args, **call_kwargs)

        return cast(F, run)

    return decorate


def _metered_generator(budget: Budget, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Run each step of ``inner`` inside ``budget`` (entered and left around every step, so
    the caller's code between steps is not charged to it).

    Closing runs ``inner``'s cleanup inside ``budget`` too, when it can still be entered. Once
    the block of the budget it nests under has ended (or inside another budget's block) it
    cannot: the cleanup then runs outside it, and closing does not fail for that."""
    step: Callable[[], Any] = inner.__next__
    while True:
        try:
            with budget:
                value = step()
        except StopIteration as stop:
            return stop.value
        try:
            sent = yield value
        except GeneratorExit:
            with contextlib.ExitStack() as cleanup:
                try:
                    cleanup.enter_context(budget)
                except BudgetConfigError:  # its enclosing block ended: clean up outside it
                    cleanup.callback(_fold_late_spend, budget)
                inner.close()
            raise
        except BaseException as exc:
            step = functools.partial(inner.throw, exc)
        else:
            step = functools.partial(inner.send, sent)


async def _metered_async_generator(
    budget: Budget, inner: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    """The async-generator counterpart of :func:`_metered_generator`."""
    step: Callable[[], Any] = inner.__anext__
    while True:
        try:
            async with budget:
                value = await step()
        except StopAsyncIteration:
            return
        try:
            sent = yield value
        except GeneratorExit:
            async with contextlib.AsyncExitStack() as cleanup:
                try:
                    await cleanup.enter_async_context(budget)
                except BudgetConfigError:  # its enclosing block ended: clean up outside it
                    cleanup.callback(_fold_late_spend, budget)
                await inner.aclose()
            raise
        except BaseException as exc:
            step = functools.partial(inner.athrow, exc)
        else:
            step = functools.partial(inner.asend, sent)


def _fold_late_spend(budget: Budget) -> None:
    """Add what a generator's cleanup recorded on ``budget`` outside it (a stream it held,
    closed late) to its parent's rollup, which is otherwise updated only when a block ends."""
    with _TREE_LOCK:
        if budget.parent is not None and not budget.is_active:
            fold(budget._node)
