"""Which budget is active in the current thread or asyncio task.

A context variable holds the innermost :class:`Activation` of this thread or task. Each one
links to the activation that was current when it started, so the chain reads innermost first.
Ending an activation is safe from anywhere:

- in the thread or task that started it, the budget that was current before it becomes
  current again in this context. Tasks and threads that copied the context meanwhile keep
  their view, as context variables promise (a task that outlives the block still counts
  against the budget);
- out of order (a generator holding an inner budget is closed after the outer block ended):
  the outer end restores what was current before the outer block, and the late inner end
  finds nothing of its own to restore;
- from another thread or task (LangChain runs async end callbacks in a task over a copy of the
  caller's context): the activation is *revoked*, and every context still pointing at it reads
  past it to the budget that was current before it.
"""

from __future__ import annotations

import sys
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._budget import Budget


class Activation:
    """One activation of a budget in one thread or task: returned by
    ``shekel.integration.activate()`` and given back to ``deactivate()``. Ending it twice is
    harmless."""

    __slots__ = ("budget", "live", "owner", "previous", "revoked")

    def __init__(self, budget: Budget, previous: Activation | None) -> None:
        self.budget = budget
        self.previous = previous
        self.live = True
        self.revoked = False
        self.owner = current_owner()

    def __repr__(self) -> str:
        state = "live" if self.live else "ended"
        return f"<Activation of {self.budget.full_name!r} ({state})>"


ACTIVE: Final[ContextVar[Activation | None]] = ContextVar("shekel_active", default=None)

PROCESS_ROOT: list[Budget | None] = [None]
"""A budget that covers the whole process (``shekel run`` sets it): threads that were started
without a copy of the context, and so see no active budget, count against it."""


def _visible(frame: Activation | None) -> Activation | None:
    while frame is not None and frame.revoked:
        frame = frame.previous
    return frame


def entered_budget() -> Budget | None:
    """The innermost budget entered in this thread or task (not the process-wide one)."""
    frame = _visible(ACTIVE.get())
    return None if frame is None else frame.budget


def current_budget() -> Budget | None:
    """The innermost budget active in this thread or task (or the process-wide budget of
    ``shekel run``), or ``None``."""
    frame = ACTIVE.get()
    while frame is not None:
        if not frame.revoked:
            return frame.budget
        frame = frame.previous
    return PROCESS_ROOT[0]


active_budget: Final = current_budget
"""The core's name for :func:`current_budget`: one function, so that integrations asking
through the public name pay no extra call on every step."""


def push(budget: Budget) -> Activation:
    """Make ``budget`` the innermost active budget of this context."""
    frame = Activation(budget, _visible(ACTIVE.get()))
    ACTIVE.set(frame)
    return frame


def pop(frame: Activation) -> bool:
    """End ``frame``. If it (or anything started above it) is current in this context, the
    budget that was active before it becomes current again; ended from another thread or task,
    it is revoked everywhere. False if it had already ended."""
    if not frame.live:
        return False
    frame.live = False
    current = ACTIVE.get()
    while current is not None:
        if current is frame:
            ACTIVE.set(_visible(frame.previous))
            break
        current = current.previous
    if frame.owner != current_owner():
        frame.revoked = True
    return True


def find_live(budget: Budget) -> Activation | None:
    """This context's live activation of ``budget``, if any (innermost first)."""
    frame = ACTIVE.get()
    while frame is not None:
        if frame.live and frame.budget is budget:
            return frame
        frame = frame.previous
    return None


def set_process_root(budget: Budget | None) -> None:
    """Make ``budget`` apply to every thread that has no budget of its own (None to stop)."""
    PROCESS_ROOT[0] = budget


def current_owner() -> tuple[int, int]:
    """Identity of the running thread and asyncio task (0 outside a task)."""
    # No event loop can run before asyncio is imported, so ``import shekel`` need not import it.
    # ``current_task()`` raises outside a loop; asking for the running loop first spares a
    # sync caller (every stream) building and catching that exception.
    asyncio = sys.modules.get("asyncio")
    loop = asyncio._get_running_loop() if asyncio is not None else None
    task = asyncio.current_task(loop) if asyncio is not None and loop is not None else None
    return threading.get_ident(), id(task) if task is not None else 0
