"""``ShekelCallbackHandler``: limits for LlamaIndex steps, where LlamaIndex takes callbacks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType

from shekel import Budget, current_budget
from shekel.integration import Limits, NameWatch, parse_limits

from ._plugin import INTEGRATION


class ShekelCallbackHandler(BaseCallbackHandler):
    """Limits for the children of LlamaIndex steps, by step name, for the steps of the
    components whose ``CallbackManager`` holds it and the steps inside those (workflows and
    agents, which have none, take ``Settings.callback_manager``'s). Creating it installs the
    integration, even into an unsupported LlamaIndex: it was asked for."""

    def __init__(self, budgets: Mapping[str, Limits] | None = None) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=list(CBEventType))
        self.limits = parse_limits(budgets, param="budgets", steps="LlamaIndex step names")
        self.watch = NameWatch(self.limits, param="budgets", steps="LlamaIndex step")
        from ._install import install

        install()

    def saw(self, base: Budget, step: str) -> None:
        """A step under this handler started in ``base``: when ``base`` ends, the mapped names
        that matched no step there are reported."""
        self.watch.matched(base, step)
        self.watch.report_when_done(base, lambda: _names_under(base))

    def on_event_start(self, *args: Any, **kwargs: Any) -> str:  # outside a budget: warn
        if self.limits and current_budget() is None:
            INTEGRATION.warn_outside_budget("A LlamaIndex component with ShekelCallbackHandler")
        return str(kwargs.get("event_id") or "")

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        """LlamaIndex calls these on every handler; this one needs none of them."""

    on_event_end = start_trace = end_trace = _nothing


def _names_under(budget: Budget) -> Iterator[str]:
    for child in budget.children:
        yield child.name or ""
        yield from _names_under(child)
