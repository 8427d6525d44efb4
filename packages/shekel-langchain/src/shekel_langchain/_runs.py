"""The runs shekel's handlers follow, and the answer to the interceptor's "who pays for this call?".

Handlers never make a budget active. Each run they follow gets a :class:`Run` in :data:`RUNS`
(keyed by LangChain's run id) holding the budget it charges. When the openai or anthropic SDK
sends a request, :func:`route` names the budget of the deeper of:

- the model or retriever run started last in this thread or task (:data:`STARTED_HERE`):
  LangChain runs their bodies where their start callback ran, with no config context of their
  own, so this is the model sending the request, or the retriever whose body sends it;
- the run whose body is executing according to LangChain's ``var_child_runnable_config`` (the
  parent of anything started inside a ``RunnableLambda``, a chain step or a tool).

A budget entered inside the run's body (``with budget(...)``) is the caller's choice: it pays.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, Final

from langchain_core.runnables.config import var_child_runnable_config

from shekel import Budget, CallRoute, ToolCall
from shekel.integration import route_calls, stop_routing

MAX_RUNS: Final = 65_536
"""Runs followed at once. A run LangChain never ends (a start callback of another handler
raised after ours) would otherwise stay for ever; past this many, the oldest is forgotten."""


class Run:
    """One LangChain run a handler follows."""

    __slots__ = (
        "active",
        "budget",
        "depth",
        "owner",
        "prompt",
        "route",
        "routed",
        "scope",
        "show_usage",
        "started",
        "token",
        "tool",
    )

    def __init__(
        self, budget: Budget, active: Budget | None, scope: Budget, owner: object, depth: int
    ) -> None:
        self.budget = budget
        self.active = active  # the budget active where the run started
        self.scope = scope  # the budget active where its outermost followed run started
        self.owner = owner  # the handler that follows it
        self.depth = depth  # followed ancestors
        self.route: CallRoute | None = None
        self.routed = False  # the interceptor saw a request of this run (and recorded it)
        self.show_usage = False
        self.token: Token[int | None] | None = None  # STARTED_HERE, put back at the end
        # model runs: what the start callback was given, read only if needed at the end
        self.started: tuple[Mapping[str, Any] | None, Mapping[str, Any]] | None = None
        self.prompt: Any = None
        self.tool: ToolCall | None = None  # tool runs: the call held before the tool runs

    def model(self) -> str | None:
        """The model a model run named when it started: its ``model`` parameter, else
        LangChain's ``ls_model_name``, else the model's class name."""
        if self.started is None:
            return None
        serialized, kwargs = self.started
        params = kwargs.get("invocation_params") or {}
        for key in ("model", "model_name", "model_id"):
            if isinstance(params.get(key), str) and params[key]:
                return str(params[key])
        name = (kwargs.get("metadata") or {}).get("ls_model_name")
        return name if isinstance(name, str) and name else name_of(serialized)


RUNS: Final[dict[int, Run]] = {}
"""Followed runs by LangChain run id (its 128-bit integer: hashed in C, unlike ``UUID``)."""
STARTED_HERE: Final[ContextVar[int | None]] = ContextVar("shekel_langchain_run", default=None)
_evicting = threading.Lock()
_routing = [False]


def follow(key: int, run: Run) -> None:
    RUNS[key] = run
    if not _routing[0]:
        _routing[0] = True
        route_calls(route)
    if len(RUNS) > MAX_RUNS:
        with _evicting:
            while len(RUNS) > MAX_RUNS:
                try:
                    del RUNS[next(iter(RUNS))]
                except (KeyError, RuntimeError, StopIteration):  # another thread changed it
                    continue


def stop_following() -> None:
    """Stop routing requests (until a run is followed again)."""
    _routing[0] = False
    stop_routing(route)


def drop(key: int, run: Run) -> None:
    RUNS.pop(key, None)
    token = run.token
    if token is not None:
        run.token = None
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per call)
            STARTED_HERE.reset(token)
        except (ValueError, RuntimeError):
            # An async end runs in a copied context, where the reset fails: the run is gone
            # from RUNS, which is all route() needs.
            pass


def route(active: Budget | None) -> CallRoute | None:
    """The route of the request being sent here, or ``None`` (not a followed run's)."""
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
        return None  # a budget entered inside the run's body: the caller's choice
    run.routed = True
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


def name_of(serialized: Mapping[str, Any] | None) -> str | None:
    """The name LangChain serialized for a runnable: its ``name``, else its class."""
    if not serialized:
        return None
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ids = serialized.get("id")
    if isinstance(ids, list) and ids and isinstance(ids[-1], str):
        return ids[-1]
    return None
