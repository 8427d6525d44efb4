"""Which LlamaIndex spans are steps, and what they are called.

A span's id is ``"<ConcreteClass>.<method>-<uuid4>"`` and the instance comes with it, so steps
are matched by base class and method name. Classes are looked up in ``sys.modules``: one whose
module was never imported has no instances, and nothing is imported here.
"""

from __future__ import annotations

import sys
from typing import Any, Final

_STEPS: Final = (  # the step, the base class (in llama_index.core), its methods that are it
    ("query", "base.base_query_engine.BaseQueryEngine", ("query", "aquery")),
    ("retrieve", "base.base_retriever.BaseRetriever", ("retrieve", "aretrieve")),
    ("synthesize", "response_synthesizers.base.BaseSynthesizer", ("synthesize", "asynthesize")),
    ("chat", "chat_engine.types.BaseChatEngine", ("chat", "achat", "stream_chat", "astream_chat")),
)
AGENT: Final = "agent.workflow.base_agent.BaseWorkflowAgent"
AGENTS: Final = (AGENT, "agent.workflow.multi_agent_workflow.AgentWorkflow")
_LLM_CALLS: Final = frozenset(  # each makes one model call (nested in one another: still one)
    f"{prefix}{base}"
    for base in ("chat", "complete", "stream_chat", "stream_complete")
    for prefix in ("", "a", "_", "_a")
)
_UUID: Final = 37  # "-" and a uuid4, at the end of a span id


def loaded(path: str, root: str = "llama_index.core.") -> Any:
    """The class at ``path`` if its module is imported, else ``None``."""
    module, _, name = (root + path).rpartition(".")
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def _is(instance: Any, path: str, root: str = "llama_index.core.") -> bool:
    cls = loaded(path, root)
    return cls is not None and isinstance(instance, cls)


def method_of(span_id: str) -> str:
    head = span_id[:-_UUID] if len(span_id) > _UUID else span_id
    return head.rpartition(".")[2]


def step_of(instance: Any, method: str) -> str | None:
    """The step a span of ``instance.method`` is, if any; a workflow's ``run`` is named after
    the agent (its ``name``) or the workflow's class."""
    if instance is None:
        return None
    for step, path, methods in _STEPS:
        if method in methods and _is(instance, path):
            return step
    if method == "run" and is_workflow(instance):
        name = getattr(instance, "name", None) if _is(instance, AGENT) else None
        return name if isinstance(name, str) and name else type(instance).__name__
    return None


def is_workflow(instance: Any) -> bool:
    return _is(instance, "workflow.Workflow", "workflows.")


def runs_steps(instance: Any) -> bool:
    """A workflow whose steps are steps: not an agent's or ``AgentWorkflow``'s, which are
    LlamaIndex's own (the agent is the step)."""
    return is_workflow(instance) and not any(_is(instance, path) for path in AGENTS)


def call_kind(instance: Any, method: str) -> str | None:
    """``"llm"`` for a span that makes one model call, ``"embedding"`` for one of an embedding
    model, else ``None``."""
    if instance is None:
        return None
    if method in _LLM_CALLS and _is(instance, "base.llms.base.BaseLLM"):
        return "llm"
    return "embedding" if _is(instance, "base.embeddings.base.BaseEmbedding") else None


def model_of(instance: Any) -> str | None:
    """The model name an LLM or embedding model gives for itself."""
    for value in (getattr(instance, "model", None), getattr(instance, "model_name", None)):
        if isinstance(value, str) and value:
            return value
    try:
        value = instance.metadata.model_name
    except Exception:  # a user's ``metadata`` property may raise; the name is only a label
        return None
    return value if isinstance(value, str) and value else None
