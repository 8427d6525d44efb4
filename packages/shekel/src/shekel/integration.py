"""The kit for framework integrations: what every ``shekel-<framework>`` package needs, decided
once here so that all of them behave the same way.

An integration maps a framework's steps (runs, nodes, agents, tasks, spans) onto named child
budgets: it decides which child pays for a step's calls, stops a step early, and reports usage
of models that never reach the SDKs shekel intercepts. Limits, pricing and accounting stay in
the core. A package keeps only what is specific to its framework; from here it takes:

- :class:`Integration`: its identity and life cycle. ``install_when_imported()`` from its
  ``shekel_install`` hook installs it once the framework is imported (never importing it), if
  the installed release is within its supported range; otherwise one
  :class:`UnsupportedFrameworkWarning` says so and nothing automatic is installed (explicit
  wrappers still run). ``uninstall()`` takes it back, for tests. ``warn_outside_budget()`` warns
  once when limits are used where no budget is active.
- :func:`parse_limits`: the ``budgets=`` / ``nodes=`` / ``agents=`` / ``tasks=`` argument, the
  same forms everywhere (a USD number or ``Decimal``; a dict of ``budget()`` options; ``None``),
  checked when given. :class:`NameWatch` reports the names that matched no step, with a "did
  you mean".
- :func:`child_of`: the child a step pays into, created once with its options and found
  afterwards as it is. Its parent may be unnamed; such levels do not count against the depth
  limit of hand-written budgets.
- :func:`route_calls`: register a router, asked at every request, that names the budget of the
  step that made it; when several integrations answer, the deepest step pays. Give it a
  ``live`` test (true while the framework has a run going) and requests sent outside every
  budget ask the router only then.
- :func:`framework_error`: the core's ``BudgetExceededError`` as the integration's own subclass,
  with every attribute kept.
- Tools: ``with budget.tool_call(name, arguments=...)`` before a tool runs: checked against
  ``max_tool_calls``, ``tool_prices`` and ``loop_guard``; a tool that fails is released (not
  counted).
- :func:`activate` / :func:`deactivate`: a step's budget active from a framework's "started"
  callback to its "ended" one, for frameworks that report a step in two calls.
- :func:`refuses_unknown_models`: whether ``budget.check(model=...)`` needs the model's name at
  all, for frameworks where working it out costs something on every step.
- Missing usage: report what a framework knows with ``budget.record(...)``; when it knows no
  token counts, :func:`estimate_tokens` gives the same estimate everywhere, recorded with
  ``estimated=True``.

``shekel.testing.integration_contract`` is the suite every integration runs against its
framework. ``docs/integrations.md`` is the recipe for a new one.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, TypeVar

from ._budget import begin, end
from ._context import Activation
from ._errors import BudgetExceededError
from ._hookspecs import CallRoute
from ._interception._call import UsageMissingWarning
from ._kit_install import (
    Integration,
    OutsideBudgetWarning,
    UnmatchedNameWarning,
    UnsupportedFrameworkWarning,
    unsupported_reason,
    when_imported,
)
from ._kit_install import forget_warnings as _forget_install_warnings
from ._kit_limits import Limits, NameWatch, StepLimits, child_of, parse_limits
from ._kit_routes import Router, route_calls, stop_routing
from ._plugins import CALL, LISTENING

if TYPE_CHECKING:
    from ._budget import Budget
    from ._history import CallRecord

E = TypeVar("E", bound=BudgetExceededError)


def framework_error(error: BudgetExceededError, cls: type[E]) -> E:
    """``error`` as an instance of ``cls`` (a subclass of ``BudgetExceededError``): the same
    message, attributes (``sent``, ``budget_name``, ``axis``, ``window``...) and cause."""
    if isinstance(error, cls):
        return error
    converted = cls.__new__(cls)
    converted.__dict__.update(error.__dict__)
    converted.args = error.args
    converted.__cause__ = error.__cause__
    converted.__traceback__ = error.__traceback__
    return converted


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` as every integration estimates them when a framework reports no usage:
    one per four characters, at least one."""
    return max(len(text) // 4, 1)


def activate(budget: Budget) -> Activation:
    """Make ``budget`` active in the current thread or task, as entering its ``with`` block
    does, until :func:`deactivate` is given the returned activation.

    For framework callbacks and span handlers that see a step start and end in separate
    calls. Ending is safe from anywhere: from another thread or task (LangChain runs async end
    callbacks in a copied context) it stops the activation counting everywhere, so nothing
    stays active by mistake.
    """
    return begin(budget)


def deactivate(activation: Activation) -> None:
    """End an activation returned by :func:`activate`. Ending it twice does nothing."""
    budget = activation.budget
    if end(budget, activation) and LISTENING.shekel_budget_exited:
        CALL.shekel_budget_exited(budget=budget, error=None)


def refuses_unknown_models(budget: Budget) -> bool:
    """Whether ``budget`` or an ancestor refuses models it has no price for (``strict=True``
    or ``unknown_models="error"``): otherwise ``budget.check(model=...)`` answers as
    ``budget.check()`` does, and a framework need not work the model's name out first."""
    chain = budget._c
    return chain.strict or chain.refuses_unknown


_unreported_warned: set[tuple[str, str]] = set()


def record_unreported(
    budget: Budget,
    model: str,
    prompt: str,
    completion: str,
    *,
    source: str,
    call_id: str | None = None,
) -> CallRecord:
    """Record a call of ``model`` whose framework reported no token counts: estimated from the
    texts (:func:`estimate_tokens`), marked ``estimated``, with one ``UsageMissingWarning`` per
    model and reporter. Raises as ``budget.record`` does (the spend is recorded first)."""
    key = (source, model)
    if key not in _unreported_warned:
        _unreported_warned.add(key)
        warnings.warn(
            f"{source}: the model {model!r} ran without token usage, so shekel recorded an "
            "estimate (a token per four characters of prompt and reply); make the model report "
            "its usage to record exact figures",
            UsageMissingWarning,
            stacklevel=2,
        )
    return budget.record(
        model=model,
        input_tokens=estimate_tokens(prompt),
        output_tokens=estimate_tokens(completion) if completion else 0,
        call_id=call_id,
        source=source,
        estimated=True,
    )


def forget_warnings() -> None:
    """Give every warning integrations give once per process again (their
    ``UnsupportedFrameworkWarning``, ``OutsideBudgetWarning``, ``UsageMissingWarning``): for
    tests, each of which expects its own warnings whatever ran before it."""
    _forget_install_warnings()
    _unreported_warned.clear()


__all__ = [
    "Activation",
    "CallRoute",
    "Integration",
    "Limits",
    "NameWatch",
    "OutsideBudgetWarning",
    "Router",
    "StepLimits",
    "UnmatchedNameWarning",
    "UnsupportedFrameworkWarning",
    "activate",
    "child_of",
    "deactivate",
    "estimate_tokens",
    "forget_warnings",
    "framework_error",
    "parse_limits",
    "record_unreported",
    "refuses_unknown_models",
    "route_calls",
    "stop_routing",
    "unsupported_reason",
    "when_imported",
]
