"""``ShekelCallbackHandler``: step limits for the components whose callback manager holds it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType

from shekel import BudgetConfigError, budget

StepOptions = float | int | Mapping[str, Any]
"""A step's limits: a number is ``max_usd``; a mapping holds ``budget()`` options."""

_NOT_PER_STEP = ("name", "ledger")


class ShekelCallbackHandler(BaseCallbackHandler):
    """Limits for the budgets of LlamaIndex steps, given where LlamaIndex takes callbacks.

    ``ShekelCallbackHandler(budgets={"retrieve": 0.10, "synthesize": {"max_usd": 1.0,
    "max_llm_calls": 3}})``, put in a ``CallbackManager`` (``Settings.callback_manager``, or
    a component's ``callback_manager=``): when a step of a component using that manager
    starts under a budget, or a step inside such a step (the retrieval and synthesis of a
    query engine using it), its child budget is created with these options (a number is
    ``max_usd``; a mapping holds any ``shekel.budget()`` option but ``name`` and
    ``ledger``). Keys are step names: ``query``, ``retrieve``, ``synthesize``, ``chat``,
    and a workflow's or agent's name and its steps' names inside a step that has the handler.
    A step budget that already exists keeps its limits (with a warning if they differ).

    Everything else (charging steps, stopping calls before they run, recording the usage of
    models the HTTP interception does not see) happens without this handler, for every
    component, as soon as shekel-llamaindex is installed. The handler only adds the limits;
    it listens to no event.
    """

    def __init__(self, budgets: Mapping[str, StepOptions] | None = None) -> None:
        super().__init__(
            event_starts_to_ignore=list(CBEventType), event_ends_to_ignore=list(CBEventType)
        )
        self.budgets: dict[str, dict[str, Any]] = _parse(budgets)

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        return None

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"ShekelCallbackHandler(budgets={self.budgets!r})"


def _parse(budgets: Mapping[str, StepOptions] | None) -> dict[str, dict[str, Any]]:
    if budgets is None:
        return {}
    if not isinstance(budgets, Mapping):
        raise BudgetConfigError(
            f"budgets must be a mapping of step name to limits, e.g. {{'retrieve': 0.1}}; "
            f"got {type(budgets).__name__}"
        )
    parsed: dict[str, dict[str, Any]] = {}
    for step, value in budgets.items():
        if not isinstance(step, str) or not step:
            raise BudgetConfigError(
                f"budgets keys are step names (non-empty strings such as 'retrieve'); got {step!r}"
            )
        parsed[step] = _options(step, value)
    return parsed


def _options(step: str, value: StepOptions) -> dict[str, Any]:
    if isinstance(value, bool):
        raise BudgetConfigError(
            f"budgets[{step!r}] must be a USD amount or a mapping of budget() options; "
            f"got {value!r}"
        )
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise BudgetConfigError(
                f"budgets[{step!r}] is a USD limit and must be a finite number > 0; got {value!r}"
            )
        options: dict[str, Any] = {"max_usd": value}
    elif isinstance(value, Mapping):
        options = dict(value)
        for key in _NOT_PER_STEP:
            if key in options:
                raise BudgetConfigError(
                    f"budgets[{step!r}] may not set {key!r}: the step's budget is named after "
                    "the step and shares its parent's ledger"
                )
    else:
        raise BudgetConfigError(
            f"budgets[{step!r}] must be a USD amount (e.g. 0.5) or a mapping of budget() "
            f"options (e.g. {{'max_usd': 0.5, 'max_llm_calls': 3}}); got {type(value).__name__}"
        )
    try:
        budget(**options)  # the core validates every option, naming the bad one
    except BudgetConfigError as error:
        raise BudgetConfigError(f"budgets[{step!r}]: {error}") from error
    return options


def budgets_of(instance: Any) -> dict[str, dict[str, Any]] | None:
    """The step limits of the first ``ShekelCallbackHandler`` in ``instance``'s callback
    manager, or ``None`` when it has none."""
    try:
        manager = instance.callback_manager
    except Exception:  # a component without one (a workflow), or a property that raises
        return None
    for handler in getattr(manager, "handlers", None) or ():
        if isinstance(handler, ShekelCallbackHandler):
            return handler.budgets
    return None
