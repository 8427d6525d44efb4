"""Which budget is active in the current thread or asyncio task.

One context variable holds the innermost active budget; its ``parent`` links give the rest of the
chain. Each thread and each asyncio task sees its own value, so concurrent branches of one
workflow can each have their own child of a shared parent.
"""

from __future__ import annotations

import sys
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._budget import Budget

ACTIVE: Final[ContextVar[Any]] = ContextVar("shekel_active_budget", default=None)

PROCESS_ROOT: list[Any] = [None]
"""A budget that covers the whole process (``shekel run`` sets it): threads that were started
without a copy of the context, and so see no active budget, count against it."""


def current_budget() -> Budget | None:
    """The innermost budget active in this thread or task (or the process-wide budget of
    ``shekel run``), or ``None``."""
    budget: Budget | None = ACTIVE.get() or PROCESS_ROOT[0]
    return budget


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
