"""``ShekelCallbackHandler``: LangChain runs onto nested, named shekel budgets."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from shekel import (
    Budget,
    BudgetExceededError,
    UnknownModelError,
    UsageMissingWarning,
    current_budget,
)

from . import _usage
from ._errors import RunBudgetExceededError
from ._names import BudgetSpec, RunNames
from ._runs import RUNS, STARTED_HERE, Run, descends, follow, name_of
from ._zero_config import NAMES, ShekelHandlers
from .package import check_supported

SOURCE = "langchain"
"""``CallRecord.source`` of the calls this package reports."""

_SDK_MODELS: dict[str, bool] = {"openai": True, "azure_openai": True, "anthropic": False}
"""LangChain chat-model namespaces whose requests go through the openai and anthropic SDKs
(so shekel's interceptor records and refuses them), and whether the model reads the usage
chunk of an OpenAI stream (``show_stream_usage``)."""


class ShekelCallbackHandler(BaseCallbackHandler):
    """Charges LangChain runs to nested, named shekel budgets.

    ``budgets`` maps run names (a chain's ``run_name``, a tool's, a retriever's, a node's) to
    the child budget their runs charge: a USD limit (``0.50``), a dict of ``budget()`` options
    (``{"max_usd": 1.0, "max_tokens": 20000}``) or ``None`` (a child that only tracks). The
    child is made under the budget the run would charge otherwise (the nearest mapped ancestor
    run's, else the budget active where the outermost run started) and reused by every later
    run of that name. Runs without a mapped name charge their nearest mapped ancestor, else the
    active budget.

    Pass it in ``config={"callbacks": [handler]}``. With shekel-langchain installed, every
    LangChain run inside a ``with budget(...)`` block is followed without it (see
    :func:`shekel_langchain.run_budgets` for names on that path); a handler given in the config
    replaces that one for the runs it sees.
    """

    run_inline = True  # called in the caller's thread or task, where the run's calls are made
    raise_error = True  # a refusal before a run starts must reach the caller
    _explicit: ClassVar[bool] = True

    def __init__(self, budgets: Mapping[str, BudgetSpec] | None = None) -> None:
        super().__init__()
        check_supported()
        self._names = RunNames(budgets)

    @property
    def budgets(self) -> Mapping[str, Mapping[str, Any]]:
        """The run names this handler maps, with the options of their child budgets."""
        return MappingProxyType({n: t.options for n, t in self._names.targets.items()})

    def _mapping(self) -> RunNames:
        """The mapping in force for a run starting now."""
        return self._names

    def __repr__(self) -> str:
        return f"{type(self).__name__}(budgets={dict(self.budgets)!r})"

    # -- runs starting -------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._claim(run_id, parent_run_id, kwargs.get("name"), serialized)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        # LangChain runs a retriever's body without its own config context: the run must be
        # found where it started
        self._claim(run_id, parent_run_id, kwargs.get("name"), serialized, here=True)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        run = self._claim(run_id, parent_run_id, kwargs.get("name"), serialized)
        if run is None:
            return
        try:
            run.tool = _payer(run.budget).tool_call(
                name_of(serialized) or "tool", arguments=kwargs.get("inputs", input_str)
            )
        except BudgetExceededError:  # over max_tool_calls, or repeated (loop_guard)
            RUNS.pop(run_id.int, None)  # LangChain will not end a run whose start raised
            raise

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kwargs)

    # -- runs ending ---------------------------------------------------------------------------

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end(run_id)
        if run is not None and run.tool is not None:
            if getattr(output, "status", None) == "error":
                run.tool.release()  # a tool error LangChain turned into a message: it failed
            else:
                run.tool.commit()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end(run_id)
        if run is not None and run.tool is not None:
            run.tool.release()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end(run_id)
        if run is not None:
            self._report(run, response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end(run_id)
        response = kwargs.get("response")
        if run is not None and isinstance(response, LLMResult):
            self._report(run, response, partial=True)

    # -- the work --------------------------------------------------------------------------

    def _claim(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str | None,
        serialized: Mapping[str, Any] | None,
        *,
        here: bool = False,
    ) -> Run | None:
        """Follow a run starting now; ``None`` when it is not this handler's to follow.
        ``name`` is the run's name when LangChain gave one (else read from ``serialized``,
        only when some name is mapped). ``here``: the run's body runs where it starts, with
        no config context of its own (models, retrievers): remember it as started here."""
        key = run_id.int
        claimed = RUNS.get(key)
        if claimed is not None:
            return self._take_over(claimed, parent_run_id, name, serialized)
        active = current_budget()
        parent = None if parent_run_id is None else RUNS.get(parent_run_id.int)
        if parent is None:
            anchor, parent_key, depth = active, None, 0
        else:
            parent_key, depth = parent.key, parent.depth + 1
            anchor = _anchor(parent, active)
        if anchor is None:
            return None  # no budget to charge: nothing to follow
        names = self._mapping()
        budget = self._budget_for(anchor, names, name, serialized) if names else anchor
        run = Run(key, budget, active, self, parent_key, depth)
        follow(key, run)
        if here:
            run.token = STARTED_HERE.set(key)
        return run

    def _take_over(
        self,
        claimed: Run,
        parent_run_id: UUID | None,
        name: str | None,
        serialized: Mapping[str, Any] | None,
    ) -> Run | None:
        """A run another handler follows already: the first handler LangChain called decides,
        except that an explicit handler given to an inner runnable (called after the
        zero-config one, LangChain's order) decides the runs it sees by its own names."""
        if claimed.owner is self or not self._explicit or claimed.owner._explicit:
            return None
        parent = None if parent_run_id is None else RUNS.get(parent_run_id.int)
        anchor = claimed.active if parent is None else _anchor(parent, claimed.active)
        if anchor is not None:
            if claimed.tool is not None:
                claimed.tool.release()
                claimed.tool = None
            names = self._mapping()
            claimed.charge_to(
                self._budget_for(anchor, names, name, serialized) if names else anchor
            )
        claimed.owner = self
        return claimed

    @staticmethod
    def _budget_for(
        anchor: Budget, names: RunNames, name: str | None, serialized: Mapping[str, Any] | None
    ) -> Budget:
        target = names.targets.get(name or name_of(serialized) or "")
        if target is None or anchor.name == target.budget_name:
            return anchor  # unmapped, or already inside its own child (never nest into itself)
        return names.child(anchor, target)

    def _model_start(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        kwargs: dict[str, Any],
    ) -> None:
        run = self._claim(run_id, parent_run_id, kwargs.get("name"), serialized, here=True)
        if run is None:
            return
        sdk = _sdk_model(serialized)
        run.show_usage = bool(sdk)
        if run.started is None:  # not a run taken over from the zero-config handler
            run.started = (serialized, kwargs)
            run.seen = [False]
            if (kwargs.get("batch_size") or 1) > 1 and run.token is not None:
                # the prompts of one generate() start one after the other, then are sent
                latest = run.token.old_value
                previous = RUNS.get(latest) if isinstance(latest, int) else None
                if (
                    previous is not None
                    and previous.seen is not None
                    and previous.parent_id == run.parent_id
                ):
                    run.seen = previous.seen
        if sdk is None:
            self._check_before(run, run_id.int, kwargs)

    def _check_before(self, run: Run, key: int, kwargs: Mapping[str, Any]) -> None:
        """Refuse a model the interceptor will not see, before it runs."""
        budget = run.budget
        try:
            budget.check(model=run.model() or "(no model name)")
        except BudgetExceededError as refusal:
            _drop(key, run)
            name = kwargs.get("name") or name_of(run.started[0] if run.started else None)
            raise RunBudgetExceededError.refusing(refusal, name) from None
        except UnknownModelError:
            _drop(key, run)
            raise

    def _end(self, run_id: UUID) -> Run | None:
        """Stop following a run that ended; the run if this handler followed it."""
        key = run_id.int
        run = RUNS.get(key)
        if run is None or run.owner is not self:
            return None
        _drop(key, run)
        return run

    def _report(self, run: Run, response: LLMResult, *, partial: bool = False) -> None:
        """Record a model call the interceptor did not see (once per provider response id)."""
        seen = run.seen
        if seen is not None and seen[0]:
            return  # sent through the openai or anthropic SDK: the interceptor recorded it
        reported = _usage.read(response)
        if reported.cache_hit or (partial and reported.missing):
            return
        model = reported.model or run.model()
        if reported.missing:
            warnings.warn(
                f"LangChain model {model!r} reported no token usage: the call is counted (marked"
                " estimated), its tokens and cost are not. Use a model that fills"
                " AIMessage.usage_metadata.",
                UsageMissingWarning,
                stacklevel=2,
            )
        prompt = reported.input_tokens
        cached = min(reported.cached_input_tokens, prompt)
        # A report that crosses a cap is recorded, and the budget refuses the next call. Raised
        # from here, the error would leave the run open in every handler called after this one.
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per call)
            _payer(run.budget).record(
                model=model,
                input_tokens=prompt,
                output_tokens=reported.output_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=min(reported.cache_write_tokens, prompt - cached),
                call_id=reported.call_id,
                source=SOURCE,
                estimated=reported.missing,
            )
        except BudgetExceededError:
            pass


def _anchor(parent: Run, active: Budget | None) -> Budget | None:
    """The budget a run under ``parent`` charges unless its own name is mapped."""
    if active is None or active is parent.active:
        return parent.budget
    if descends(active, parent.active):
        return active  # a budget entered inside the parent's body: the caller's choice
    return parent.budget


def _drop(key: int, run: Run) -> None:
    RUNS.pop(key, None)
    token = run.token
    if token is not None:
        run.token = None
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per call)
            STARTED_HERE.reset(token)
        except (ValueError, RuntimeError):
            # An async end runs in a copied context, where the reset fails: the run is closed,
            # which is all the resolver needs.
            pass


ShekelHandlers.register(ShekelCallbackHandler)


class ZeroConfigHandler(ShekelCallbackHandler):
    """The handler LangChain adds by itself inside budgets; its names come from
    :func:`shekel_langchain.run_budgets`."""

    _explicit = False

    def _mapping(self) -> RunNames:
        return NAMES.get() or self._names


def zero_config_handler() -> ZeroConfigHandler:
    return ZeroConfigHandler()


def _payer(budget: Budget) -> Budget:
    """``budget``, or a budget entered below it in this thread or task (recording on a parent
    while its child is active here is refused; the child's spend reaches the parent)."""
    active = current_budget()
    if active is not None and active is not budget and descends(active, budget):
        return active
    return budget


def _sdk_model(serialized: Mapping[str, Any] | None) -> bool | None:
    """For a LangChain chat model that sends through the openai or anthropic SDK: whether it
    reads OpenAI's stream usage chunk. ``None`` for any other model."""
    ids = serialized.get("id") if serialized else None
    if isinstance(ids, list) and len(ids) > 3 and ids[0] == "langchain" and ids[1] == "chat_models":
        return _SDK_MODELS.get(ids[2])
    return None
