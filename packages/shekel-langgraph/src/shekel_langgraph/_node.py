"""One run of a LangGraph node inside its own budget: the part ``@budgeted_node`` and
``budgeted_graph`` share.

A run finds the budget active where LangGraph runs the node (the graph's, the caller's), takes
the child of that budget named after the node (one object per parent and name, so loops,
retries and parallel ``Send`` branches all add to it), checks that it may start, and runs the
node with that child active, so every SDK call inside is charged to it by the interceptor.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from langgraph.errors import GraphInterrupt
from langgraph.types import Interrupt

from shekel import (
    Budget,
    BudgetConfigError,
    BudgetExceededError,
    budget,
    budget_name,
    current_budget,
)

from ._errors import ON_EXHAUSTED, NodeBudgetExceededError, OnExhausted, pause_of

T = TypeVar("T")

_OPEN: Final[ContextVar[str | None]] = ContextVar("shekel_langgraph_open_task", default=None)
"""The checkpoint namespace of the LangGraph task whose node budget is open in this context: a
second wrapper inside the same task (a decorated helper called by a decorated node) nests
under it by its own name instead of taking the node's name again."""

_CREATED: Final[weakref.WeakKeyDictionary[Budget, tuple[tuple[str, Any], ...]]] = (
    weakref.WeakKeyDictionary()
)
"""The options each node budget was asked for when it was created or first found here: a
later run asking with the same options gets the budget even after ``set_limits()`` changed
its limits (a paused graph resumed with a raised limit)."""

_NOT_CHILD_OPTIONS: Final = ("name", "ledger")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """How a node's runs are budgeted: the budget name (``None``: the LangGraph node's
    name), ``budget()`` options for the node budget, and what to do when it is exhausted."""

    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    on_exhausted: OnExhausted | None = None
    """``None``: as the nearest enclosing ``budgeted_graph`` says, else ``"raise"``."""

    @property
    def key(self) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(self.options.items()))


GRAPH_MODES: Final[weakref.WeakKeyDictionary[Budget, OnExhausted]] = weakref.WeakKeyDictionary()
"""``on_exhausted`` of each ``budgeted_graph``'s budget, for the decorated nodes run under it."""


def check_on_exhausted(value: object) -> OnExhausted:
    if value not in ON_EXHAUSTED:
        raise BudgetConfigError(
            f"on_exhausted must be 'raise' (NodeBudgetExceededError before the node starts) or "
            f"'interrupt' (pause the graph; needs a checkpointer to resume), got {value!r}"
        )
    return value


def check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``budget()`` options for a node budget, validated now (not at the node's first run)."""
    for reserved in _NOT_CHILD_OPTIONS:
        if reserved in options:
            hint = (
                "the budget is named after the node; pass name='...' to budgeted_node to change it"
                if reserved == "name"
                else "a node budget keeps its parent's ledger"
            )
            raise BudgetConfigError(f"{where}: {reserved!r} cannot be set for a node ({hint})")
    try:
        budget(name="check", **options)
    except BudgetConfigError as error:
        raise BudgetConfigError(f"{where}: {error}") from error
    return dict(options)


def where_in_graph(config: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """The LangGraph node name and task checkpoint namespace a config belongs to, or
    ``(None, None)`` outside a LangGraph task."""
    if not config:
        return None, None
    metadata = config.get("metadata") or {}
    node = metadata.get("langgraph_node")
    task = metadata.get("langgraph_checkpoint_ns") or (config.get("configurable") or {}).get(
        "checkpoint_ns"
    )
    return (node if isinstance(node, str) else None), (task if isinstance(task, str) else None)


def node_budget(parent: Budget, name: str, spec: NodeSpec) -> Budget:
    """The child of ``parent`` named ``name``, created with ``spec.options`` the first time."""
    key = spec.key
    try:
        child = parent.child(name, **spec.options)
    except BudgetConfigError:
        if not spec.options:
            raise
        # The child exists with other limits: fine if it is the one these options made and
        # only set_limits() changed it since; otherwise two places disagree on its limits.
        child = parent.child(name)
        if _CREATED.get(child) != key:
            raise
        return child
    _CREATED.setdefault(child, key)
    return child


def _chain(child: Budget) -> list[Budget]:
    """``child`` and its ancestors, innermost first."""
    chain = []
    walk: Budget | None = child
    while walk is not None:
        chain.append(walk)
        walk = walk.parent
    return chain


def binding(child: Budget, error: BudgetExceededError) -> BudgetExceededError:
    """The refusal naming the outermost exhausted budget above (or at) ``child``.

    A child is auto-capped to what its parent has left, so when the graph's budget runs out
    every node budget under it reads "no room" too, with a limit of what it had spent: the
    limit to raise is the ancestor's, and that is the one a caller must be told about."""
    for candidate in reversed(_chain(child)):
        try:
            candidate.check()
        except BudgetExceededError as found:
            return found
    return error


def went_over(bound: BudgetExceededError, error: BudgetExceededError) -> BudgetExceededError:
    """The limit to raise, ``bound`` (as :func:`binding` found it, which tells it as a refusal
    of the next call), told as what happened: ``error``'s call was sent and its spend went
    over."""
    tool = getattr(error, "tool_name", None)
    return BudgetExceededError(
        bound.spent,
        bound.limit,
        axis=bound.axis,
        budget_name=bound.budget_name,
        model=error.model,
        tokens=error.tokens,
        detail=(
            f"tool {tool!r} was called and its price recorded"
            if tool
            else "the call was sent and its spend recorded"
        ),
    )


def _mode(spec: NodeSpec, child: Budget) -> OnExhausted:
    if spec.on_exhausted is not None:
        return spec.on_exhausted
    walk = child.parent
    while walk is not None:
        mode = GRAPH_MODES.get(walk)
        if mode is not None:
            return mode
        walk = walk.parent
    return "raise"


class _Run:
    """What one node run needs to know once its budget is chosen."""

    __slots__ = ("budget", "node", "spec", "task")

    def __init__(self, spec: NodeSpec, config: Mapping[str, Any] | None, fallback: str) -> None:
        self.spec = spec
        self.budget: Budget | None = None
        node, task = where_in_graph(config)
        self.task = task
        parent = current_budget()
        if parent is None:
            self.node = node or fallback
            return
        if spec.name is not None:
            name = spec.name
        elif node is not None and task is not None and _OPEN.get() != task:
            name = budget_name(node)
        else:  # called outside LangGraph, or inside a node whose budget is already open
            name = budget_name(fallback)
        self.node = node or fallback
        self.budget = node_budget(parent, name, spec)

    @property
    def interrupts(self) -> bool:
        """True if this run pauses the graph rather than raise (asked only when it must)."""
        return (
            self.task is not None
            and self.budget is not None
            and _mode(self.spec, self.budget) == "interrupt"
        )

    def admit(self) -> None:
        """Raise before the node starts if its budget or an ancestor has no room left."""
        assert self.budget is not None
        try:
            self.budget.check()
        except BudgetExceededError as error:
            refusal = error
        else:
            return
        if self.interrupts:
            raise self.pause(refusal, started=False)
        raise NodeBudgetExceededError.refusing(
            binding(self.budget, refusal), node=self.node, node_budget=self.budget.full_name
        ) from refusal

    def pauses_for(self, error: BudgetExceededError) -> bool:
        """True if ``error``, raised from inside the node, should pause the graph: this node's
        budget or an ancestor reached its limit, and the node may interrupt."""
        return (
            self.budget is not None
            and error.budget_name in {b.full_name for b in _chain(self.budget)}
            and self.interrupts
        )

    def pause(self, error: BudgetExceededError, *, started: bool) -> GraphInterrupt:
        """The interrupt that pauses the graph here. It is raised as LangGraph's
        ``interrupt()`` raises it, but takes no place among the node's own ``interrupt()``
        answers: a budget pause needs no answer."""
        assert self.budget is not None
        assert self.task is not None
        bound = binding(self.budget, error)
        value = pause_of(
            went_over(bound, error) if error.sent else bound,
            node=self.node,
            node_budget=self.budget.full_name,
            started=started,
        )
        return GraphInterrupt((Interrupt.from_ns(value, f"{self.task}|shekel-budget"),))


def run_sync(
    spec: NodeSpec, config: Mapping[str, Any] | None, fallback: str, call: Callable[[], T]
) -> T:
    """Run ``call`` as one run of a node: checked before it starts, its budget active."""
    run = _Run(spec, config, fallback)
    if run.budget is None:  # no budget active: nothing to charge
        return call()
    run.admit()
    token = _OPEN.set(run.task)
    try:
        with run.budget:
            return call()
    except BudgetExceededError as error:
        if not run.pauses_for(error):
            raise
        pause = run.pause(error, started=True)
    finally:
        _OPEN.reset(token)
    raise pause


async def run_async(
    spec: NodeSpec,
    config: Mapping[str, Any] | None,
    fallback: str,
    call: Callable[[], Awaitable[T]],
) -> T:
    """The async counterpart of :func:`run_sync`."""
    run = _Run(spec, config, fallback)
    if run.budget is None:
        return await call()
    run.admit()
    token = _OPEN.set(run.task)
    try:
        async with run.budget:
            return await call()
    except BudgetExceededError as error:
        if not run.pauses_for(error):
            raise
        pause = run.pause(error, started=True)
    finally:
        _OPEN.reset(token)
    raise pause
