"""Installing into CrewAI, and taking it back: the wrappers, the hooks, the usage handler."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final

from crewai import Crew
from crewai.agent.core import Agent
from crewai.events import crewai_event_bus
from crewai.events.types.llm_events import LLMCallCompletedEvent

from . import _agents, _crews, _hooks, _usage

_ORIGINAL: Final = "__shekel_original__"
_lock = threading.Lock()


def _around(around: Callable[..., AbstractContextManager[None]]) -> Callable[..., Any]:
    """A wrapper factory: ``original`` (sync or async) runs inside ``around(self, ...)``."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            with around(self, *args, **kwargs):
                return await original(self, *args, **kwargs)

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with around(self, *args, **kwargs):
                return original(self, *args, **kwargs)

        return functools.wraps(original)(
            run_async if inspect.iscoroutinefunction(original) else run
        )

    return wrap


_WRAPPED: Final[tuple[tuple[type, str, Callable[[Callable[..., Any]], Any]], ...]] = (
    (Agent, "execute_task", _around(_agents.agent_run)),
    (Agent, "aexecute_task", _around(_agents.agent_run)),
    (Crew, "kickoff", _around(_crews.crew_run)),
    (Crew, "akickoff", _around(_crews.crew_run)),
    (Crew, "copy", _crews.wrap_copy),
)


def patch() -> None:
    with _lock:
        for cls, name, wrap in _WRAPPED:
            current = getattr(cls, name)
            if getattr(current, _ORIGINAL, None) is None:
                wrapped = wrap(current)
                setattr(wrapped, _ORIGINAL, current)
                setattr(cls, name, wrapped)
        _hooks.register()
        crewai_event_bus.register_handler(LLMCallCompletedEvent, _usage.report)


def unpatch() -> None:
    with _lock:
        for cls, name, _ in _WRAPPED:
            original = getattr(getattr(cls, name), _ORIGINAL, None)
            if original is not None:
                setattr(cls, name, original)
        _hooks.unregister()
        crewai_event_bus.off(LLMCallCompletedEvent, _usage.report)
