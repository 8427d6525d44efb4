"""``@budgeted_node``: a budget for each run of a LangGraph node function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast, overload

from langchain_core.runnables import Runnable
from langgraph.config import get_config

from shekel import BudgetConfigError
from shekel.integration import parse_limits

from . import _node
from ._errors import OnExhausted
from ._node import NodeRun, NodeSpec, check_on_exhausted

F = TypeVar("F", bound=Callable[..., Any])

MARK: Final = "__shekel_langgraph_node__"
"""A decorated function's :class:`NodeSpec`: ``budgeted_graph`` leaves its node to it."""


def _config() -> Mapping[str, Any] | None:
    try:
        return get_config()
    except RuntimeError:  # called outside a LangGraph or LangChain run
        return None


@overload
def budgeted_node(fn: F, /) -> F: ...


@overload
def budgeted_node(
    fn: None = None,
    /,
    *,
    max_usd: float | None = None,
    name: str | None = None,
    on_exhausted: OnExhausted | None = None,
    **options: Any,
) -> Callable[[F], F]: ...


def budgeted_node(
    fn: F | None = None,
    /,
    *,
    max_usd: float | None = None,
    name: str | None = None,
    on_exhausted: OnExhausted | None = None,
    **options: Any,
) -> F | Callable[[F], F]:
    """Charge each run of a LangGraph node function (sync or async) to a child of the budget
    active where it runs, named ``name`` or after the node, made once per parent with
    ``max_usd`` and ``options`` (``budget()``'s). With no room left the node does not start:
    :class:`NodeBudgetExceededError`, or a pause with ``on_exhausted="interrupt"`` (``None``:
    as the enclosing ``budgeted_graph`` says). The signature is kept for LangGraph's injection
    of ``config``, ``runtime``, ``store`` and ``writer``."""
    if name is not None and not isinstance(name, str):
        raise BudgetConfigError(f"budgeted_node: name must be a string, got {name!r}")
    if max_usd is not None:
        options["max_usd"] = max_usd
    mode = None if on_exhausted is None else check_on_exhausted(on_exhausted)

    def decorate(function: F) -> F:
        return _decorate(function, name, options, mode)

    return decorate if fn is None else decorate(fn)


def _decorate(fn: F, name: str | None, options: Mapping[str, Any], mode: OnExhausted | None) -> F:
    if isinstance(fn, Runnable) or not callable(fn):
        raise BudgetConfigError(
            f"budgeted_node decorates a node function (def or async def), got {fn!r}; for a "
            "compiled subgraph or another Runnable used as a node, wrap the parent graph with "
            "budgeted_graph(graph, nodes={'<node>': <limits>})"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise BudgetConfigError(
            f"budgeted_node decorates node functions that return their update; {fn!r} is a "
            "generator function"
        )
    fallback = getattr(fn, "__name__", None) or type(fn).__name__
    step = fallback if name is None else name
    [limits] = parse_limits({step: options}, param="budgeted_node", steps="node names").values()
    spec = NodeSpec(None if name is None else limits.budget_name, limits.options, mode)
    _node.INTEGRATION.supported()  # warns once when this LangGraph is not one we support

    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (a callable object's own method)
    ):

        @functools.wraps(fn)
        async def run_node_async(*args: Any, **kwargs: Any) -> Any:
            with NodeRun(spec, None, _config(), fallback):
                return await fn(*args, **kwargs)

        setattr(run_node_async, MARK, spec)
        return cast(F, run_node_async)

    @functools.wraps(fn)
    def run_node(*args: Any, **kwargs: Any) -> Any:
        with NodeRun(spec, None, _config(), fallback):
            return fn(*args, **kwargs)

    setattr(run_node, MARK, spec)
    return cast(F, run_node)
