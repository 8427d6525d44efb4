"""``ShekelCallbackHandler``: LangChain runs onto nested, named shekel budgets."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from shekel import Budget, BudgetExceededError, UnknownModelError, current_budget
from shekel.integration import Limits, framework_error, record_unreported

from . import _usage
from ._errors import RunBudgetExceededError
from ._names import NAMED, RunNames
from ._runs import RUNS, STARTED_HERE, Run, descends, drop, follow, name_of
from ._zero_config import INTEGRATION

SOURCE = "langchain"
"""``CallRecord.source`` of the calls this package reports."""

_SDK_MODELS: dict[str, bool] = {"openai": True, "azure_openai": True, "anthropic": False}
"""LangChain chat-model namespaces whose requests go through the openai and anthropic SDKs
(shekel's interceptor records and refuses them), and whether the model reads the usage chunk
of an OpenAI stream (``show_stream_usage``)."""


class ShekelCallbackHandler(BaseCallbackHandler):
    """Charges LangChain runs to nested, named shekel budgets.

    ``budgets`` maps run names (a ``run_name``, a tool's or a retriever's name) to the limits
    of the child budget their runs charge, made under the budget the run would charge otherwise
    (its nearest mapped ancestor run's, else the budget active where the outermost run started)
    and found again by later runs. Runs of other names charge their nearest mapped ancestor,
    else the active budget. Pass it in ``config={"callbacks": [handler]}``; inside a budget,
    runs given none get one by themselves, which maps the names of :func:`run_budgets`.
    """

    run_inline = True  # called in the caller's thread or task, where the run's calls are made
    raise_error = True  # a refusal before a run starts must reach the caller

    def __init__(self, budgets: Mapping[str, Limits] | None = None) -> None:
        super().__init__()
        INTEGRATION.supported()  # warns once if unsupported; an explicit handler still runs
        self._names = RunNames(budgets)

    @property
    def budgets(self) -> Mapping[str, Mapping[str, Any]]:
        """The run names this handler maps, with the options of their child budgets."""
        return MappingProxyType({name: s.options for name, s in self._names.limits.items()})

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
        # LangChain runs a retriever's body with no config context of its own
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
        arguments = kwargs.get("inputs", input_str)
        try:
            run.tool = _payer(run.budget).tool_call(
                name_of(serialized) or "tool", arguments=arguments
            )
        except BaseException:
            drop(run_id.int, run)  # LangChain ends no run whose start raised
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
        prompt = messages[0] if messages else ()
        self._model_start(serialized, prompt, run_id, parent_run_id, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, prompts[0] if prompts else "", run_id, parent_run_id, kwargs)

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

    # -- the work ------------------------------------------------------------------------------

    def _claim(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str | None,
        serialized: Mapping[str, Any] | None,
        *,
        here: bool = False,
    ) -> Run | None:
        """Follow a run starting now; ``None`` when there is no budget to charge. ``here``: the
        run's body runs where it starts (models, retrievers)."""
        key = run_id.int
        claimed = RUNS.get(key)
        if claimed is not None:
            if claimed.owner is self:
                return None
            # Also seen by a handler inherited from outer runs: this one, given closer to the
            # run, is called after it, and decides.
            if claimed.tool is not None:
                claimed.tool.release()
        # A handler given no budgets maps the names of the innermost run_budgets() block.
        names = self._names or NAMED.get() or self._names
        active = current_budget()
        parent = None if parent_run_id is None else RUNS.get(parent_run_id.int)
        if parent is not None:
            anchor, scope, depth = _anchor(parent, active), parent.scope, parent.depth + 1
        elif active is not None:
            anchor, scope, depth = active, active, 0
        else:
            if names:
                INTEGRATION.warn_outside_budget("a LangChain run given budgets=")
            return None
        budget = anchor
        if names:
            run_name = name or name_of(serialized) or ""
            budget = names.budget_for(anchor, scope, run_name, outermost=parent is None)
        run = Run(budget, active, scope, self, depth)
        follow(key, run)
        if claimed is not None:
            run.token = claimed.token
        elif here:
            run.token = STARTED_HERE.set(key)
        return run

    def _model_start(
        self,
        serialized: dict[str, Any] | None,
        prompt: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        kwargs: dict[str, Any],
    ) -> None:
        run = self._claim(run_id, parent_run_id, kwargs.get("name"), serialized, here=True)
        if run is None:
            return
        run.started, run.prompt = (serialized, kwargs), prompt
        sdk = _sdk_model(serialized)
        if sdk is not None:  # the interceptor records and refuses its requests, inside the run
            run.routed, run.show_usage = True, sdk
            return
        try:  # any other model: refused here, before it runs
            run.budget.check(model=run.model() or "(no model name)")
        except BudgetExceededError as refusal:
            drop(run_id.int, run)
            error = framework_error(refusal, RunBudgetExceededError)
            error.run_name = kwargs.get("name") or name_of(serialized)
            raise error from None
        except UnknownModelError:
            drop(run_id.int, run)
            raise

    def _end(self, run_id: UUID) -> Run | None:
        """Stop following a run that ended; the run if this handler followed it."""
        key = run_id.int
        run = RUNS.get(key)
        if run is None or run.owner is not self:
            return None
        drop(key, run)
        return run

    def _report(self, run: Run, response: LLMResult, *, partial: bool = False) -> None:
        """Record a model call the interceptor did not see."""
        if run.routed:
            return
        reported = _usage.read(response)
        if reported.cache_hit or (partial and reported.missing):
            return
        model = reported.model or run.model() or "(no model name)"
        budget = _payer(run.budget)
        # A report crossing a cap is recorded, and the next call is refused: raised from here,
        # the error would leave the run open in every handler called after this one.
        try:
            if reported.missing:
                prompt, reply = _usage.prompt_text(run.prompt), _usage.reply_text(response)
                record_unreported(
                    budget, model, prompt, reply, source=SOURCE, call_id=reported.call_id
                )
                return
            cached = min(reported.cached_input_tokens, reported.input_tokens)
            budget.record(
                model=model,
                input_tokens=reported.input_tokens,
                output_tokens=reported.output_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=min(reported.cache_write_tokens, reported.input_tokens - cached),
                call_id=reported.call_id,
                source=SOURCE,
            )
        except BudgetExceededError:
            pass


def _anchor(parent: Run, active: Budget | None) -> Budget:
    """The budget a run under ``parent`` charges unless its own name is mapped."""
    if active is not None and active is not parent.active and descends(active, parent.active):
        return active  # a budget entered inside the parent's body: the caller's choice
    return parent.budget


def _payer(budget: Budget) -> Budget:
    """``budget``, or a budget entered below it in this thread or task (recording on a parent
    while its child is active here is refused; the child's spend reaches the parent)."""
    active = current_budget()
    if active is not None and active is not budget and descends(active, budget):
        return active
    return budget


def _sdk_model(serialized: Mapping[str, Any] | None) -> bool | None:
    """For a LangChain chat model sending through the openai or anthropic SDK: whether it reads
    OpenAI's stream usage chunk. ``None`` for any other model."""
    ids = serialized.get("id") if serialized else None
    if isinstance(ids, list) and len(ids) > 3 and ids[0] == "langchain" and ids[1] == "chat_models":
        return _SDK_MODELS.get(ids[2])
    return None
