"""The hooks a shekel plugin may implement.

A plugin is a module or object with functions marked ``@shekel.plugins.hookimpl``, registered
through the ``shekel`` entry-point group (``[project.entry-points.shekel]``) or with
``shekel.plugins.plugin_manager().register(obj)``. Hooks are called with keyword arguments; an
implementation may accept any subset of them.

Hooks that observe spend run on the thread that made the call, synchronously: keep them fast, and
do not raise from them unless you mean to stop the caller. An exception raised from a hook inside
an SDK call reaches the caller as ``CallbackError`` (with yours as ``__cause__``), so that the SDK
never retries a paid request because of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._budget import Budget
    from ._history import CallRecord
    from ._interception import ProtocolAdapter
    from ._pricing import ModelPrice

hookspec = pluggy.HookspecMarker("shekel")


@dataclass(frozen=True, slots=True)
class CallRoute:
    """Where an intercepted call goes, as a ``shekel_route_call`` implementation decides.

    ``budget`` is charged for the call and checked before it is sent (and its ancestors, as
    always). ``show_stream_usage`` hands the usage chunk shekel asks OpenAI streams for on to
    the caller instead of hiding it: for callers known to handle it (LangChain's chat models
    fill ``usage_metadata`` from it), never for code that indexes ``chunk.choices[0]``.
    """

    budget: Budget
    show_stream_usage: bool = False


@hookspec(historic=True)
def shekel_install() -> None:
    """Called once per process, before the first budget becomes active (every thread entering
    a budget meanwhile waits for it to finish).

    Interceptors and framework integrations install themselves here (patch an HTTP client,
    register a callback handler). A plugin registered later is called at registration. Return
    value is ignored. If it raises, the budget being entered is not, and the next budget entered
    tries again. Whatever is installed must do nothing measurable while no budget is active.
    """


@hookspec
def shekel_protocol_adapters() -> Sequence[ProtocolAdapter]:
    """Called when the HTTP interceptor builds its routing table (on first use, and again after a
    plugin is registered). Return wire-protocol adapters (objects implementing
    ``shekel.ProtocolAdapter``) to add a provider or a gateway path; each plugin's list is added.
    """
    return ()


@hookspec(firstresult=True)
def shekel_route_call(active: Budget | None) -> CallRoute | None:
    """Called for every request the interceptor is about to send to a model (chat, responses,
    messages and embeddings alike), in the thread or task sending it, before the budget check.
    ``active`` is the budget active there (or ``None``).

    Return a :class:`shekel.CallRoute` to charge the call to another budget (a framework
    integration resolving the step that made the call from its own run map), or ``None`` to
    leave it to the next plugin and finally to ``active``. The first answer wins. The refusal
    before sending then applies to the routed budget, so an integration stops a step's calls
    without raising from its own callbacks. Called only while some plugin implements it, and
    must be quick: it runs on every call.
    """


@hookspec(firstresult=True)
def shekel_model_price(model: str, provider: str | None) -> ModelPrice | None:
    """Called the first time a model's price is needed (answers are cached per model and provider).

    Return a :class:`shekel.ModelPrice` to price ``model`` (for private or fine-tuned models), or
    ``None`` to let the next source answer. Budget-level ``prices=`` overrides win over this hook;
    the bundled genai-prices table is asked after it.
    """


@hookspec
def shekel_budget_entered(budget: Budget) -> None:
    """Called after ``budget`` became the active budget of the current thread or task.

    Return value is ignored.
    """


@hookspec
def shekel_budget_exited(budget: Budget, error: BaseException | None) -> None:
    """Called when a ``with budget`` block ends (or an activation is ended), after the budget
    stopped being active there.

    ``error`` is the exception leaving the block, if any. Return value is ignored.
    """


@hookspec
def shekel_spend_recorded(budget: Budget, call: CallRecord) -> None:
    """Called after spend was added to ``budget`` and all of its ancestors.

    ``call`` holds the model, token counts, cost and the budget path. Called before any limit
    check raises, so every recorded call is seen. Return value is ignored.
    """


@hookspec
def shekel_warning_crossed(budget: Budget, axis: str, spent: float, limit: float) -> None:
    """Called once per budget when its use on ``axis`` first reaches ``warn_at`` of the limit.

    Called after the budget's own ``on_warn`` callback. Return value is ignored.
    """


@hookspec
def shekel_fallback_activated(
    budget: Budget, spent: float, limit: float, fallback_model: str
) -> None:
    """Called once per budget when spend crosses the fallback threshold and later requests will be
    sent with ``fallback_model``. Return value is ignored."""


@hookspec
def shekel_limit_exceeded(budget: Budget, error: BaseException) -> None:
    """Called just before a ``BudgetExceededError`` is raised for ``budget`` (the budget whose limit
    was hit, which may be an ancestor of the active one), in the thread or task that will raise
    it. Return value is ignored; raising here replaces the error (inside an SDK call, wrapped in
    ``CallbackError``)."""
