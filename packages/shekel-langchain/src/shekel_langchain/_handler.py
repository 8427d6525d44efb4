"""``ShekelCallbackHandler``: LangChain runs onto nested, named shekel budgets."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from shekel import Budget, BudgetExceededError, UnknownModelError, current_budget
from shekel.integration import Limits, framework_error, refuses_unknown_models, route_calls

from ._errors import RunBudgetExceededError
from ._names import NAMED, RunNames
from ._runs import (
    MAX_RUNS,
    RUNS,
    STARTED_HERE,
    Run,
    descends,
    drop,
    forget_oldest,
    name_of,
    route,
)
from ._usage import record_usage
from ._zero_config import INTEGRATION


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
        INTEGRATION.supported()  # warns once if unsupported; a handler still runs
        self._names = RunNames(budgets)
        route_calls(route, live=RUNS.__len__)

    @property
    def budgets(self) -> Mapping[str, Mapping[str, Any]]:
        """The run names this handler maps, with the options of their child budgets."""
        return MappingProxyType({name: s.options for name, s in self._names.limits.items()})

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        self._claim(serialized, kw)

    def on_retriever_start(self, serialized: Any, query: Any, **kw: Any) -> None:
        self._claim(serialized, kw, here=True)  # its body runs with no config context of its own

    def on_tool_start(self, serialized: Any, input_str: Any, **kw: Any) -> None:
        run = self._claim(serialized, kw)
        if run is not None:
            try:
                tool = name_of(serialized) or "tool"
                run.tool = _payer(run.budget).tool_call(tool, arguments=kw.get("inputs", input_str))
            except BaseException:
                drop(kw["run_id"].int, run)  # LangChain ends no run whose start raised
                raise

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self._model_start(serialized, messages[0] if messages else (), kw)

    def on_llm_start(self, serialized: Any, prompts: Any, **kw: Any) -> None:
        self._model_start(serialized, prompts[0] if prompts else "", kw)

    def on_chain_end(self, outputs: Any, **kw: Any) -> None:
        self._end(kw)

    def on_chain_error(self, error: BaseException, **kw: Any) -> None:
        self._end(kw)

    def on_retriever_end(self, documents: Any, **kw: Any) -> None:
        self._end(kw)

    def on_retriever_error(self, error: BaseException, **kw: Any) -> None:
        self._end(kw)

    def on_tool_end(self, output: Any, **kw: Any) -> None:
        # an error LangChain handed back as the tool's answer (handle_tool_error) failed too
        self._end(kw, failed=getattr(output, "status", None) == "error")

    def on_tool_error(self, error: BaseException, **kw: Any) -> None:
        self._end(kw, failed=True)

    def on_llm_end(self, response: LLMResult, **kw: Any) -> None:
        key = kw["run_id"].int  # ``_end`` of a model run (never a tool), on every call
        run = RUNS.get(key)
        if run is not None and run.owner is self:
            drop(key, run)
            if not run.routed:
                record_usage(_payer(run.budget), run, response)

    def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        run, response = self._end(kw), kw.get("response")
        if run is not None and not run.routed and isinstance(response, LLMResult):
            record_usage(_payer(run.budget), run, response, partial=True)

    def _claim(
        self, serialized: Any, kw: Mapping[str, Any], *, here: bool = False, name: str | None = None
    ) -> Run | None:
        """Follow a run starting now; ``None`` when there is no budget to charge. ``here``: the
        run's body runs where it starts (models, retrievers); ``name``: ``name_of(serialized)``
        when the caller has it."""
        key, parent_id = kw["run_id"].int, kw.get("parent_run_id")
        claimed = RUNS.get(key)
        if claimed is not None and claimed.owner is self:
            return None  # given twice (inherited and local): followed once
        names = self._names if self._names.limits else NAMED.get() or self._names
        active = current_budget()
        parent = None if parent_id is None else RUNS.get(parent_id.int)
        if parent is not None:
            anchor, scope, depth = _anchor(parent, active), parent.scope, parent.depth + 1
        elif active is not None:
            anchor, scope, depth = active, active, 0
        else:
            if names.limits:
                INTEGRATION.warn_outside_budget("a LangChain run given budgets=")
            return None
        budget = anchor
        if names.limits:
            step = kw.get("name") or name or name_of(serialized) or ""
            budget = names.budget_for(anchor, scope, step, outermost=parent is None)
        run = Run(budget, active, scope, self, depth)
        RUNS[key] = run
        if len(RUNS) > MAX_RUNS:
            forget_oldest()
        if claimed is not None:
            # Followed by a handler inherited from outer runs: this one, given closer to the
            # run (LangChain calls it after), takes it over.
            if claimed.tool is not None:
                claimed.tool.release()
            run.token = claimed.token
        elif here:
            run.token = STARTED_HERE.set(key)
        return run

    def _model_start(self, serialized: Any, prompt: Any, kw: dict[str, Any]) -> None:
        _, name, sdk = _model_facts(serialized)
        run = self._claim(serialized, kw, here=True, name=name)
        if run is None:
            return
        if sdk is not None:  # the interceptor records and refuses its requests, inside the run
            run.routed, run.show_usage = True, sdk
            return
        run.started, run.prompt = (serialized, kw), prompt
        try:  # any other model is refused here, before it runs
            budget = run.budget
            if refuses_unknown_models(budget):
                budget.check(model=run.model())
            else:  # the model's name would change nothing: not worked out on every call
                budget.check()
        except BudgetExceededError as refusal:
            drop(kw["run_id"].int, run)
            error = framework_error(refusal, RunBudgetExceededError)
            error.run_name = kw.get("name") or name_of(serialized)
            raise error from None
        except UnknownModelError:
            drop(kw["run_id"].int, run)
            raise

    def _end(self, kw: Mapping[str, Any], *, failed: bool = False) -> Run | None:
        """Stop following a run that ended (a tool's call is released if it ``failed``, else
        recorded); the run, if this handler followed it."""
        key = kw["run_id"].int
        run = RUNS.get(key)
        if run is None or run.owner is not self:
            return None
        drop(key, run)
        if run.tool is not None and failed:
            run.tool.release()
        elif run.tool is not None:
            run.tool.commit()
        return run


def _anchor(parent: Run, active: Budget | None) -> Budget:
    """The budget a run under ``parent`` charges unless its own name is mapped."""
    if active is not None and active is not parent.active and descends(active, parent.active):
        return active  # a budget entered inside the parent's body: the caller's choice
    return parent.budget


def _payer(budget: Budget) -> Budget:
    """``budget``, or a budget entered below it in this thread or task (recording on a parent
    while its child is active here is refused; the child's spend reaches the parent)."""
    active = current_budget()
    if active is None or active is budget:
        return budget
    return active if descends(active, budget) else budget


_MODELS: dict[int, tuple[Any, str | None, bool | None]] = {}
"""By ``id(serialized)``: a model's serialized form, its name and :func:`_sdk_model`. LangChain
serializes a model once (a cached property) and hands that dict to each of its runs."""


def _model_facts(serialized: Any) -> tuple[Any, str | None, bool | None]:
    """``(serialized, name_of(serialized), _sdk_model(serialized))``, worked out once per
    serialized form."""
    facts = _MODELS.get(id(serialized))
    if facts is None or facts[0] is not serialized:
        facts = (serialized, name_of(serialized), _sdk_model(serialized))
        if len(_MODELS) >= 256:  # models made per request: keep a few, not all
            _MODELS.clear()
        _MODELS[id(serialized)] = facts
    return facts


def _sdk_model(serialized: Mapping[str, Any] | None) -> bool | None:
    """For LangChain's chat models on the openai and anthropic SDKs (the interceptor records
    and refuses their requests): whether they read OpenAI's stream usage chunk. ``None`` for
    any other model."""
    ids = serialized.get("id") if serialized else None
    if isinstance(ids, list) and len(ids) > 3 and ids[1] == "chat_models" and ids[0] == "langchain":
        return _SDK_MODELS.get(ids[2])
    return None


_SDK_MODELS: Final = {"openai": True, "azure_openai": True, "anthropic": False}
"""The modules under ``langchain.chat_models`` of the chat models that :func:`_sdk_model` names."""
