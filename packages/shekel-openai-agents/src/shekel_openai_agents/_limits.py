"""Limits by agent name for the runs inside a block, and the budget an agent pays into: the
child named after it of the budget active where its run began."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, NamedTuple

from shekel import Budget, BudgetExceededError, budget_name, current_budget
from shekel.integration import Limits, NameWatch, child_of, framework_error, parse_limits

from ._plugin import INTEGRATION


class AgentBudgetExceededError(BudgetExceededError):
    """An agent stopped before its model call (``sent=False``): its budget, or one above it,
    has no room left. ``agent_name`` names the agent; the rest is the core's error. Raised from
    the run (``Runner.run``, ``run_sync``, or the streamed result's ``stream_events()``)."""

    agent_name: str | None = None


def agent_error(error: BudgetExceededError, agent: str) -> AgentBudgetExceededError:
    made = framework_error(error, AgentBudgetExceededError)
    made.agent_name = agent
    made.args = (f"agent {agent!r} was stopped before its model call: {error}",)
    return made


class Block(NamedTuple):  # an agent_budgets() block: its limits, and the budget it began in
    watch: NameWatch
    anchor: Budget | None


LIMITS: Final[ContextVar[Block | None]] = ContextVar("shekel_openai_agents", default=None)


@contextmanager
def agent_budgets(agents: Mapping[str, Limits] | None) -> Iterator[None]:
    """Give the agents of the runs inside this block limits, by agent name: a USD amount, a
    dict of ``budget()`` options, or ``None``. Each applies when the agent's budget is made (the
    first time it is needed under a parent); one made before (``app.child(name, ...)``) is used
    as it is. Checked on entry (``BudgetConfigError``); names that matched no agent by the end
    of the budget active here are reported (``UnmatchedNameWarning``)."""
    watch = NameWatch(
        parse_limits(agents, param="agents", steps="agent names"), param="agents", steps="agent"
    )
    anchor = current_budget()
    if anchor is None and watch.limits:
        INTEGRATION.warn_outside_budget("agent_budgets()")
    elif anchor is not None:
        watch.report_when_done(anchor, lambda: _names_under(anchor))
    INTEGRATION.install_when_imported()
    token = LIMITS.set(Block(watch, anchor))
    try:
        yield
    finally:
        LIMITS.reset(token)


def payer(base: Budget, agent: str, block: Block | None) -> Budget:
    """The budget ``agent`` pays into in a run that began in ``base``: its child named after
    the agent (with the block's limits when it is made), or ``base`` itself when it is named so
    (a run inside ``with app.child(agent):``)."""
    label = budget_name(agent)
    if base.name == label:
        return base
    mapped = block.watch.limits.get(agent) if block is not None else None
    if mapped is not None and block is not None and block.anchor is not None:
        block.watch.matched(block.anchor, agent)
    return child_of(base, label, mapped.options if mapped is not None else None)


def _names_under(budget: Budget) -> Iterator[str]:
    for child in budget.children:
        yield child.name or ""
        yield from _names_under(child)
