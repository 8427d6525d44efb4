"""``@with_budget``: run each call of a function inside a fresh budget."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ._budget import Budget

F = TypeVar("F", bound=Callable[..., Any])


def with_budget(**budget_kwargs: Any) -> Callable[[F], F]:
    """Decorate a sync or async function so that every call runs in a new ``budget(...)``.

    Accepts every ``budget()`` parameter. ``name`` defaults to the function's name; when the
    function runs several times under the same parent, later calls are named ``name-2``,
    ``name-3``... The arguments are checked when decorating, not at the first call.
    """
    Budget(**budget_kwargs)  # validate now, so a typo fails where the decorator is written

    def decorate(fn: F) -> F:
        def make() -> Budget:
            kwargs = dict(budget_kwargs)
            kwargs.setdefault("name", fn.__name__.replace(".", "_"))
            created = Budget(**kwargs)
            created._auto_suffix = True
            return created

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with make():
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with make():
                return fn(*args, **kwargs)

        return cast(F, run)

    return decorate
