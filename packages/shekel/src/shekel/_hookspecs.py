"""The hooks a shekel plugin may implement.

A plugin is a module or object with functions marked ``@shekel.hookimpl``, registered through
the ``shekel`` entry-point group (``[project.entry-points.shekel]``) or with
``shekel.plugin_manager().register(obj)``. Hooks are called with keyword arguments; an
implementation may accept any subset of them.

Hooks that observe spend run on the thread that made the call, synchronously: keep them fast, and
do not raise from them unless you mean to stop the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._history import CallRecord
    from ._pricing import ModelPrice

hookspec = pluggy.HookspecMarker("shekel")


@hookspec(historic=True)
def shekel_install() -> None:
    """Called once per process, when the first budget is entered.

    Interceptors and framework integrations install themselves here (patch an HTTP client,
    register a callback handler). A plugin registered later is called at registration. Return
    value is ignored. Whatever is installed must do nothing measurable while no budget is active.
    """


@hookspec
def shekel_protocol_adapters() -> Sequence[Any]:
    """Called when the HTTP interceptor builds its routing table (on first use, and again after a
    plugin is registered). Return wire-protocol adapters (objects implementing
    ``shekel.ProtocolAdapter``) to add a provider or a gateway path; each plugin's list is added.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def shekel_model_price(model: str, provider: str | None) -> ModelPrice | None:
    """Called the first time a model's price is needed (answers are cached per model and provider).

    Return a :class:`shekel.ModelPrice` to price ``model`` (for private or fine-tuned models), or
    ``None`` to let the next source answer. Budget-level ``prices=`` overrides win over this hook;
    the bundled genai-prices table is asked after it.
    """


@hookspec
def shekel_budget_entered(budget: Any) -> None:
    """Called after ``budget`` became the active budget of the current thread or task.

    Return value is ignored.
    """


@hookspec
def shekel_budget_exited(budget: Any, error: BaseException | None) -> None:
    """Called when a ``with budget`` block ends, after the budget stopped being active.

    ``error`` is the exception leaving the block, if any. Return value is ignored.
    """


@hookspec
def shekel_spend_recorded(budget: Any, call: CallRecord) -> None:
    """Called after spend was added to ``budget`` and all of its ancestors.

    ``call`` holds the model, token counts, cost and the budget path. Called before any limit
    check raises, so every recorded call is seen. Return value is ignored.
    """


@hookspec
def shekel_warning_crossed(budget: Any, axis: str, spent: float, limit: float) -> None:
    """Called once per budget when its use on ``axis`` first reaches ``warn_at`` of the limit.

    Called after the budget's own ``on_warn`` callback. Return value is ignored.
    """


@hookspec
def shekel_fallback_activated(budget: Any, spent: float, limit: float, fallback_model: str) -> None:
    """Called once per budget when spend crosses the fallback threshold and later requests will be
    sent with ``fallback_model``. Return value is ignored."""


@hookspec
def shekel_limit_exceeded(budget: Any, error: BaseException) -> None:
    """Called just before a ``BudgetExceededError`` is raised for ``budget`` (the budget whose limit
    was hit, which may be an ancestor of the active one). Return value is ignored; raising here
    replaces the error."""
