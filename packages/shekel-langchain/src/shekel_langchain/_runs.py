"""The runs shekel's handlers follow, and which budget pays for a request sent in one.

Handlers never make a budget active. Each run they follow gets a :class:`Run` in :data:`RUNS`
holding the budget it charges, and :func:`route` names, at each request, the budget of the
deeper of: the model or retriever run started last in this thread or task (LangChain runs their
bodies where their start callback ran, with no config context of their own), and the run whose
body is executing according to LangChain's ``var_child_runnable_config`` (a ``RunnableLambda``,
a chain step, a tool). A budget entered inside the run's body is the caller's choice: it pays.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, Final

from langchain_core.runnables.config import var_child_runnable_config

from shekel import Budget, ToolCall
from shekel.integration import CallRoute

MAX_RUNS: Final = 65_536
"""Runs followed at once: past this many, the oldest are forgotten. Some runs never end (a
stream given up halfway, a start callback of another handler that raised after ours)."""


class Run:
    """One LangChain run a handler follows."""

    __slots__ = (
        *("active", "budget", "depth", "owner", "prompt", "route", "routed", "scope"),
        *("show_usage", "started", "token", "tool"),
    )

    def __init__(
        self, budget: Budget, active: Budget | None, scope: Budget, owner: object, depth: int
    ) -> None:
        self.budget = budget
        self.active = active  # the budget active where the run started
        self.scope = scope  # the budget active where its outermost followed run started
        self.owner = owner  # the handler following it
        self.depth = depth  # followed ancestors
        self.route: CallRoute | None = None
        self.routed = False  # its requests went through the interceptor, which recorded them
        self.show_usage = False
        self.token: Token[int | None] | None = None  # STARTED_HERE, put back at the end
        self.started: tuple[Any, dict[str, Any]] | None = None  # a model's start arguments
        self.prompt: Any = None  # and its prompt: a string, or messages
        self.tool: ToolCall | None = None  # a tool's call, held before the tool runs

    def model(self) -> str:
        """The model a model run named when it started: its ``model`` parameter, else
        LangChain's ``ls_model_name``, else the model's class name."""
        serialized, kwargs = self.started or (None, NOTHING)
        params = kwargs.get("invocation_params")
        if params and not _MODEL_PARAMS.isdisjoint(params):  # skips the loop in C when none
            for key in ("model", "model_name", "model_id"):
                name = params.get(key)
                if isinstance(name, str) and name:
                    return name
        name = (kwargs.get("metadata") or NOTHING).get("ls_model_name")
        return name if isinstance(name, str) and name else name_of(serialized) or "(no model name)"


_MODEL_PARAMS: Final = frozenset(("model", "model_name", "model_id"))
NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})
"""Read in place of a mapping a run or a response left out (never written)."""


RUNS: Final[dict[int, Run]] = {}
"""Followed runs by LangChain run id (its 128-bit integer: hashed in C, unlike ``UUID``)."""
STARTED_HERE: Final[ContextVar[int | None]] = ContextVar("shekel_langchain_run", default=None)


def forget_oldest() -> None:
    """Called when :data:`RUNS` holds more than ``MAX_RUNS`` (the caller tests, on every run)."""
    with contextlib.suppress(RuntimeError):  # another thread changed the table meanwhile
        for stale in list(itertools.islice(RUNS, len(RUNS) - MAX_RUNS + 1024)):
            RUNS.pop(stale, None)


def drop(key: int, run: Run) -> None:
    RUNS.pop(key, None)
    if run.token is not None:
        token, run.token = run.token, None
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per call)
            STARTED_HERE.reset(token)
        except (ValueError, RuntimeError):
            pass  # an async end runs in a copied context; the run is out of RUNS, enough


def route(active: Budget | None) -> CallRoute | None:
    """The route of the request being sent here, or ``None`` (not a followed run's)."""
    here = STARTED_HERE.get()
    run = RUNS.get(here) if here is not None else None
    config: Any = var_child_runnable_config.get()
    parent_id = getattr(config.get("callbacks"), "parent_run_id", None) if config else None
    body = RUNS.get(parent_id.int) if parent_id is not None else None
    if body is not None and (run is None or body.depth > run.depth):
        run = body
    if run is None or (
        active is not None and active is not run.active and descends(active, run.active)
    ):
        return None
    run.routed = True
    if run.route is None:
        run.route = CallRoute(run.budget, show_stream_usage=run.show_usage)
    return run.route


def descends(budget: Budget, ancestor: Budget | None) -> bool:
    """True when ``ancestor`` is above ``budget`` (``None``: any budget descends from it)."""
    parent = budget.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return ancestor is None


def name_of(serialized: Any) -> str | None:
    """The name LangChain serialized for a runnable: its ``name``, else its class."""
    if not serialized:
        return None
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ids = serialized.get("id")
    name = ids[-1] if isinstance(ids, list) and ids else None
    return name if isinstance(name, str) and name else None
