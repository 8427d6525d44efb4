"""What the integration puts into openai-agents, and takes back: its hooks and state around
every run (``AgentRunner.run``, which ``run_sync`` also runs, and ``run_streamed``), the
release of a function tool that raised, and the router."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Final

import agents.tool
from agents.run import AgentRunner

from shekel.integration import route_calls, stop_routing

from . import _runs

_ORIGINAL: Final = "__shekel_original__"
_FAILED: Final = "maybe_invoke_function_tool_failure_error_function"
_lock = threading.Lock()


def _run(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = _runs.begin(kwargs)
        if state is None:
            return await original(self, *args, **kwargs)
        token = _runs.RUN.set(state)
        try:
            return await original(self, *args, **kwargs)
        finally:
            _runs.RUN.reset(token)
            _runs.release(state)  # tools whose end never came (one raised): not counted

    return run


def _run_streamed(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run_streamed(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _runs.RUN.set(_runs.begin(kwargs))  # the run's task copies it when it starts
        try:
            return original(self, *args, **kwargs)
        finally:
            _runs.RUN.reset(token)

    return run_streamed


def _failed(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def failed(*args: Any, **kwargs: Any) -> Any:
        _runs.release(_runs.RUN.get(), _runs.tool_key(kwargs.get("context")))
        return await original(*args, **kwargs)

    return failed


_PATCHES: Final = (
    (AgentRunner, "run", _run),
    (AgentRunner, "run_streamed", _run_streamed),
    (agents.tool, _FAILED, _failed),
)


def install() -> None:
    with _lock:
        for owner, name, wrap in _PATCHES:
            current = getattr(owner, name)
            if getattr(current, _ORIGINAL, None) is None:
                wrapped = wrap(current)
                setattr(wrapped, _ORIGINAL, current)
                setattr(owner, name, wrapped)
        route_calls(_runs.route, live=_runs.RUN.get)


def uninstall() -> None:
    with _lock:
        for owner, name, _ in _PATCHES:
            original = getattr(getattr(owner, name), _ORIGINAL, None)
            if original is not None:
                setattr(owner, name, original)
        stop_routing(_runs.route)
