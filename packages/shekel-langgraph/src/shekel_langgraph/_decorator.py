"""``@budgeted_node``: a budget for each run of a LangGraph node function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast, overload

from langchain_core.runnables import Runnable
from langgraph.config import get_config

from shekel import BudgetConfigError, budget

from ._errors import OnExhausted
from ._node import NodeSpec, check_on_exhausted, check_options, run_async, run_sync
from .package import warn_if_unsupported

F = TypeVar("F", bound=Callable[..., Any])

MARK: Final = "__shekel_langgraph_node__"
"""Attribute a decorated node function carries (its :class:`NodeSpec`), so that
``budgeted_graph`` leaves that node to the decorator."""


def _config() -> Mapping[str, Any] | None:
    try:
        return get_config()
    except RuntimeError:  # called outside a LangGraph / LangChain run
        return None


@overload
def budgeted_node(fn: F, /) -> F: ...


@overload
def budgeted_node(
    fn: None = None,
    /,
    *,
    max_usd: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    on_exhausted: OnExhausted | None = None,
    **options: Any,
) -> Callable[[F], F]: ...


def budgeted_node(
    fn: F | None = None,
    /,
    *,
    max_usd: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    on_exhausted: OnExhausted | None = None,
    **options: Any,
) -> F | Callable[[F], F]:
    """Charge each run of a LangGraph node to a child of the budget active where it runs.

    ``@budgeted_node`` or ``@budgeted_node(max_usd=0.50, max_tokens=..., name=None,
    on_exhausted=None, **options)`` on a sync or async node function. The child is named
    ``name``, else after the LangGraph node (``config["metadata"]["langgraph_node"]``), and
    created once per parent with these limits (``options``: any other ``budget()`` option,
    e.g. ``max_llm_calls``, ``warn_at``); loops, retries and parallel ``Send`` branches of the
    node all add to that one child. Before each run the node is checked: if the child or an
    ancestor has no room for another LLM call, :class:`NodeBudgetExceededError` is raised
    (``on_exhausted="raise"``) or the graph is paused with a LangGraph interrupt
    (``"interrupt"``); ``None`` does what the enclosing ``budgeted_graph`` does, else raises.
    The signature is kept, so LangGraph still injects ``config``, ``runtime``, ``store`` and
    ``writer``. With no budget active the node runs as it is.
    """
    spec = NodeSpec(
        name=name,
        options=check_options(
            _limits(max_usd=max_usd, max_tokens=max_tokens, **options), "budgeted_node"
        ),
        on_exhausted=None if on_exhausted is None else check_on_exhausted(on_exhausted),
    )
    if name is not None:  # a name the user chose: checked now, not at the first run
        _check_name(name)
    warn_if_unsupported()
    if fn is None:
        return lambda inner: _decorate(inner, spec)
    return _decorate(fn, spec)


def _limits(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise BudgetConfigError(f"budgeted_node: name must be a string, got {name!r}")
    try:
        budget(name=name)
    except BudgetConfigError as error:
        raise BudgetConfigError(
            f"budgeted_node: {error} (shekel.budget_name() turns any text into a valid name)"
        ) from error


def _decorate(fn: F, spec: NodeSpec) -> F:
    if isinstance(fn, Runnable) or not callable(fn):
        raise BudgetConfigError(
            f"budgeted_node decorates a node function (def or async def), got {fn!r}; for a "
            "compiled subgraph or another Runnable used as a node, wrap the parent graph with "
            "budgeted_graph(graph, nodes={'<node>': <max_usd>})"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise BudgetConfigError(
            f"budgeted_node decorates node functions that return their update; "
            f"{getattr(fn, '__name__', fn)!r} is a generator function"
        )
    fallback = getattr(fn, "__name__", None) or type(fn).__name__

    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (a callable object's own method)
    ):

        @functools.wraps(fn)
        async def run_node_async(*args: Any, **kwargs: Any) -> Any:
            return await run_async(spec, _config(), fallback, lambda: fn(*args, **kwargs))

        setattr(run_node_async, MARK, spec)
        return cast(F, run_node_async)

    @functools.wraps(fn)
    def run_node(*args: Any, **kwargs: Any) -> Any:
        return run_sync(spec, _config(), fallback, lambda: fn(*args, **kwargs))

    setattr(run_node, MARK, spec)
    return cast(F, run_node)
