"""The runs the handlers follow, and the answer to the interceptor's "who pays for this call?".

Handlers never make a budget active. Each LangChain run they see gets a :class:`Run` in
:data:`RUNS`, keyed by LangChain's run id, holding the budget it charges. When the openai or
anthropic SDK sends a request, :func:`route` finds the run that made it, the deeper of:

- the model or retriever run started last in this thread or task (:data:`STARTED_HERE`, set
  when such a run starts, put back when it ends where it started; a run that ended no longer
  counts). LangChain runs their bodies where their start callback ran and sets no config
  context for them, so this is the model run sending the request, or the retriever whose body
  sends it;
- the run whose body is executing according to LangChain's own ``var_child_runnable_config``
  (the parent of anything started inside a ``RunnableLambda``, a chain step or a tool).

The interceptor then charges (and checks, before sending) that run's budget, unless the budget
active where the request is sent was entered inside the run's body (a ``with budget(...)``
block, a LangGraph node decorator): that budget is the caller's choice, and pays.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

from langchain_core.runnables.config import var_child_runnable_config

from shekel import Budget, ToolCall
from shekel.plugins import CallRoute, hookimpl, plugin_manager

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler

MAX_RUNS: Final = 65_536
"""Runs followed at once. A run LangChain never ends (a start callback of another handler
raised after ours) would otherwise stay forever; past this many, the oldest is forgotten."""


class Run:
    """One LangChain run a handler follows."""

    __slots__ = (
        "active",
        "budget",
        "depth",
        "key",
        "owner",
        "parent_id",
        "route",
        "seen",
        "show_usage",
        "started",
        "token",
        "tool",
    )

    def __init__(
        self,
        key: int,
        budget: Budget,
        active: Budget | None,
        owner: ShekelCallbackHandler,
        parent_id: int | None,
        depth: int,
    ) -> None:
        self.key = key  # LangChain's run id, as an integer
        self.budget = budget
        self.active = active  # the budget active where the run started
        self.owner = owner
        self.parent_id = parent_id
        self.depth = depth  # followed ancestors
        self.route: CallRoute | None = None
        self.show_usage = False
        self.token: Token[int | None] | None = None  # STARTED_HERE, put back at the end
        # model runs: what their start callback was given (``serialized`` and the keywords,
        # read only if the model's name is needed); a cell set once the interceptor saw a
        # request of the run (shared by the runs of one multi-prompt ``generate()``)
        self.started: tuple[Mapping[str, Any] | None, Mapping[str, Any]] | None = None
        self.seen: list[bool] | None = None
        # tool runs: the call counted and held before the tool runs
        self.tool: ToolCall | None = None

    def model(self) -> str | None:
        """The model a model run named when it started: its ``model`` parameter, else
        LangChain's ``ls_model_name``, else the model's class name."""
        if self.started is None:
            return None
        serialized, kwargs = self.started
        return model_of(kwargs) or name_of(serialized)

    def charge_to(self, budget: Budget) -> None:
        self.budget = budget
        self.route = None


RUNS: Final[dict[int, Run]] = {}
"""Followed runs by LangChain run id (its 128-bit integer: hashed in C, unlike ``UUID``)."""
_evicting = threading.Lock()

STARTED_HERE: Final[ContextVar[int | None]] = ContextVar("shekel_langchain_run", default=None)


def follow(key: int, run: Run) -> None:
    RUNS[key] = run
    if not _routing[0]:
        start_routing()
    if len(RUNS) > MAX_RUNS:
        with _evicting:
            while len(RUNS) > MAX_RUNS:
                try:
                    del RUNS[next(iter(RUNS))]
                except (KeyError, RuntimeError, StopIteration):  # another thread changed it
                    continue


def route(active: Budget | None) -> CallRoute | None:
    """The budget that pays for the request being sent here, or ``None`` (not ours)."""
    here = STARTED_HERE.get()
    run = RUNS.get(here) if here is not None else None
    config: Any = var_child_runnable_config.get()
    if config:
        parent_id = getattr(config.get("callbacks"), "parent_run_id", None)
        if parent_id is not None:
            body = RUNS.get(parent_id.int)
            if body is not None and (run is None or body.depth > run.depth):
                run = body
    if run is None:
        return None
    if active is not None and active is not run.active and descends(active, run.active):
        return None  # a budget entered inside the run's body (``with budget``, a node decorator)
    seen = run.seen
    if seen is not None:
        seen[0] = True
    answer = run.route
    if answer is None:
        answer = run.route = CallRoute(run.budget, show_stream_usage=run.show_usage)
    return answer


def descends(budget: Budget, ancestor: Budget | None) -> bool:
    """True when ``ancestor`` is above ``budget`` (``None``: any budget descends from it)."""
    parent = budget.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return ancestor is None


class Router:
    """The ``shekel_route_call`` plugin: asked by the interceptor at every request."""

    @hookimpl
    def shekel_route_call(self, active: Budget | None) -> CallRoute | None:
        return route(active)


_routing = [False]
_routing_lock = threading.Lock()


def start_routing() -> None:
    """Register :class:`Router` with shekel, once per process."""
    with _routing_lock:
        if not _routing[0]:
            plugin_manager().register(Router(), name="shekel-langchain-router")
            _routing[0] = True


def name_of(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ids = serialized.get("id")
    if isinstance(ids, list) and ids and isinstance(ids[-1], str):
        return ids[-1]
    return None


def model_of(kwargs: Mapping[str, Any]) -> str | None:
    """The model a LangChain model run names when it starts."""
    params = kwargs.get("invocation_params") or {}
    for key in ("model", "model_name", "model_id"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    value = (kwargs.get("metadata") or {}).get("ls_model_name")
    return value if isinstance(value, str) and value else None
