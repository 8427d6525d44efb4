"""``crew_budget``: a shekel budget for one crew, with limits per agent role and per task."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from shekel import Budget, BudgetConfigError, budget_name

AgentLimits = float | int | Decimal | Mapping[str, Any] | None
"""A USD amount (``5.0``), ``None`` (no limit of its own) or ``budget()`` options
(``{"max_usd": 5.0, "max_llm_calls": 20}``)."""


class CrewBudget(Budget):
    """A budget around a CrewAI crew, with a child per agent role and per named task.

    Use it as ``with`` or ``async with`` around ``kickoff()``, ``kickoff_async()`` or
    ``akickoff()``. Every LLM call an agent makes (through CrewAI's OpenAI or Anthropic
    provider, or a custom ``BaseLLM`` that reports usage) is charged to the agent's child,
    named after its role (``shekel.budget_name(role)``), and to this budget above it. A task
    named in ``tasks`` gets a child under the agent that runs it. ``tree()`` shows the
    breakdown. An agent whose budget, or this one, has no room left is stopped before its next
    LLM call with ``AgentBudgetExceededError``, which ends the crew.

    Args:
        crew: the ``crewai.Crew`` to budget (roles and task names are checked against it).
        max_usd: the crew's USD limit (``None``: no USD limit).
        agents: limits per agent role: a USD amount, ``None``, or a mapping of ``budget()``
            options (``{"max_usd": 5.0, "max_llm_calls": 20, "max_tool_calls": 10}``).
        tasks: limits per task name (``Task(name=...)``), in the same forms.
        name: this budget's name (the agents' budgets are named under it).
        **options: any other ``budget()`` option for the crew budget (``max_tokens``,
            ``max_llm_calls``, ``warn_at``, ``prices``, ``tool_prices``, ``strict``...).
    """

    def __init__(
        self,
        crew: Any,
        max_usd: float | None = None,
        *,
        agents: Mapping[str, AgentLimits] | None = None,
        tasks: Mapping[str, AgentLimits] | None = None,
        name: str = "crew",
        **options: Any,
    ) -> None:
        from crewai import Crew

        if not isinstance(crew, Crew):
            raise BudgetConfigError(
                "crew_budget() takes the crewai.Crew whose agents it budgets as its first "
                f"argument, got {type(crew).__name__}: crew_budget(crew, max_usd=...)"
            )
        if not isinstance(name, str) or not name:
            raise BudgetConfigError(
                "crew_budget() needs a name: its agents' budgets are named under it "
                "(name='crew' by default)"
            )
        self.crew = crew
        self.agent_options = _limits(
            "agents", agents, _roles(crew), "agent of this crew has the role"
        )
        self.task_options = _limits("tasks", tasks, _task_names(crew), "task of this crew is named")
        super().__init__(max_usd, name=name, **options)

        from ._install import install

        install()

    def agent(self, role: str) -> Budget:
        """The budget of the agent with this role, directly under this one (created if needed)."""
        _known("agent()", role, _roles(self.crew), "agent of this crew has the role")
        return child_of(self, budget_name(role), self.agent_options.get(role, {}))

    def task(self, name: str) -> Budget:
        """The budget of the named task under the budget of the agent assigned to it."""
        _known("task()", name, _task_names(self.crew), "task of this crew is named")
        if name not in self.task_options:
            raise BudgetConfigError(
                f"task {name!r} has no budget of its own: give it one with "
                f"crew_budget(crew, tasks={{{name!r}: <USD or budget options>}})"
            )
        task = next(t for t in self.crew.tasks if t.name == name)
        runner = task.agent or self.crew.manager_agent
        if runner is None:
            raise BudgetConfigError(
                f"task {name!r} has no agent yet (a hierarchical crew's manager is made at "
                "kickoff): read its budget after the crew ran, or assign the task an agent"
            )
        return child_of(self.agent(runner.role), budget_name(name), self.task_options[name])


def child_of(parent: Budget, name: str, options: Mapping[str, Any]) -> Budget:
    """``parent``'s child ``name``, created with ``options`` the first time. An existing one is
    returned as it is, its limits perhaps changed since with ``set_limits()``."""
    for child in parent.children:
        if child.name == name:
            return child
    return parent.child(name, **options)


def _roles(crew: Any) -> list[str]:
    roles = [agent.role for agent in crew.agents]
    if crew.manager_agent is not None:
        roles.append(crew.manager_agent.role)
    else:
        roles.extend(_automatic_manager_role(crew))
    return list(dict.fromkeys(roles))


def _automatic_manager_role(crew: Any) -> Iterable[str]:
    """The role CrewAI gives the manager it creates for a hierarchical crew at kickoff."""
    from crewai import Process

    if crew.process != Process.hierarchical:
        return ()
    try:
        from crewai.utilities.i18n import get_i18n

        role = get_i18n(prompt_file=crew.prompt_file).retrieve("hierarchical_manager_agent", "role")
    except Exception:  # an internal helper: without it the manager just cannot be named
        return ()
    return (role,) if isinstance(role, str) else ()


def _task_names(crew: Any) -> list[str]:
    return [task.name for task in crew.tasks if isinstance(task.name, str) and task.name]


def _limits(
    what: str, given: Mapping[str, AgentLimits] | None, known: list[str], noun: str
) -> dict[str, dict[str, Any]]:
    """Validate ``agents=`` or ``tasks=`` into ``budget()`` options per role or task name."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise BudgetConfigError(
            f"crew_budget({what}=...) takes a mapping, e.g. {what}={{'<name>': 5.0}}, "
            f"got {type(given).__name__}"
        )
    options: dict[str, dict[str, Any]] = {}
    for key, value in given.items():
        _known(f"crew_budget({what}=...)", key, known, noun)
        options[key] = _options(f"{what}[{key!r}]", value)
    return options


def _known(where: str, key: object, known: list[str], noun: str) -> None:
    """Refuse a role or task name the crew does not have (``where`` names the argument)."""
    if isinstance(key, str) and key in known:
        return
    if not isinstance(key, str):
        raise BudgetConfigError(f"{where} keys are strings, got {key!r}")
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(repr(k) for k in known) or "none"
    extra = " Tasks without name= cannot have a budget of their own." if "task" in noun else ""
    raise BudgetConfigError(f"{where}: no {noun} {key!r}{hint} Known: {listed}.{extra}")


def _options(where: str, value: AgentLimits) -> dict[str, Any]:
    """``budget()`` options for one agent or task, checked by building a budget with them."""
    if value is None:
        options: dict[str, Any] = {}
    elif isinstance(value, bool):
        raise BudgetConfigError(
            f"{where} is {value!r}: give a USD amount (5.0) or budget options "
            "({'max_usd': 5.0, 'max_llm_calls': 20})"
        )
    elif isinstance(value, int | float | Decimal):
        options = {"max_usd": value}
    elif isinstance(value, Mapping):
        options = dict(value)
    else:
        raise BudgetConfigError(
            f"{where} is a {type(value).__name__}: give a USD amount (5.0) or budget options "
            "({'max_usd': 5.0, 'max_llm_calls': 20})"
        )
    for fixed in ("name", "ledger"):
        if fixed in options:
            raise BudgetConfigError(
                f"{where} may not set {fixed!r}: the budget is named after the "
                "role or task and kept on the crew budget's ledger"
            )
    try:
        Budget(**options)
    except BudgetConfigError as error:
        raise BudgetConfigError(f"{where}: {error}") from None
    return options


crew_budget = CrewBudget
"""``crew_budget(crew, max_usd=..., agents={...}, tasks={...})`` creates a :class:`CrewBudget`."""
