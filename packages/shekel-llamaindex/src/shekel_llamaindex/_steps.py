"""Which LlamaIndex spans are steps, and what they are called.

A span's id is ``"<ConcreteClass>.<method>-<uuid4>"`` (``"<qualname>-<uuid4>"`` for a
function); the instance is handed over with it. Steps are matched by base class and method
name, since spans carry the concrete class (``VectorIndexRetriever``, ``CompactAndRefine``).
LlamaIndex classes are looked up in ``sys.modules``: a class whose module was never imported
has no instances, so nothing is imported here.
"""

from __future__ import annotations

import sys
from typing import Any, Final

QUERY: Final = "query"
RETRIEVE: Final = "retrieve"
SYNTHESIZE: Final = "synthesize"
CHAT: Final = "chat"

# (module, class) -> (step name, the methods that are that step)
_STEPS: Final[tuple[tuple[str, str, str, frozenset[str]], ...]] = (
    (
        "llama_index.core.base.base_query_engine",
        "BaseQueryEngine",
        QUERY,
        frozenset({"query", "aquery"}),
    ),
    (
        "llama_index.core.base.base_retriever",
        "BaseRetriever",
        RETRIEVE,
        frozenset({"retrieve", "aretrieve"}),
    ),
    (
        "llama_index.core.response_synthesizers.base",
        "BaseSynthesizer",
        SYNTHESIZE,
        frozenset({"synthesize", "asynthesize"}),
    ),
    (
        "llama_index.core.chat_engine.types",
        "BaseChatEngine",
        CHAT,
        frozenset({"chat", "achat", "stream_chat", "astream_chat"}),
    ),
)

_LLM_CALLS: Final = frozenset(
    name
    for base in ("chat", "complete", "stream_chat", "stream_complete")
    for name in (base, f"a{base}", f"_{base}", f"_a{base}")
)
"""The methods of an LLM that make one model call each (``chat`` of a ``CustomLLM`` calls its
own ``complete``: nested, they are still one call)."""

_UUID_SUFFIX: Final = 37  # "-" + a uuid4 in its 36-character form


def _loaded(module: str, name: str) -> type | None:
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def method_of(span_id: str) -> str:
    """The method (or function) name in a span id."""
    head = span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id
    return head.rpartition(".")[2]


def step_of(instance: Any, method: str) -> str | None:
    """The step a span of ``instance.method`` is (``query``, ``retrieve``, ...), if any; for a
    workflow's ``run``, the workflow's name (an agent's ``name``, else the class name)."""
    if instance is None:
        return None
    for module, cls_name, step, methods in _STEPS:
        if method in methods:
            cls = _loaded(module, cls_name)
            if cls is not None and isinstance(instance, cls):
                return step
    if method == "run" and is_workflow(instance):
        agent = _loaded("llama_index.core.agent.workflow.base_agent", "BaseWorkflowAgent")
        if agent is not None and isinstance(instance, agent):
            name = getattr(instance, "name", None)
            if isinstance(name, str) and name:
                return name
        return type(instance).__name__
    return None


def is_workflow(instance: Any) -> bool:
    cls = _loaded("workflows.workflow", "Workflow")
    return cls is not None and isinstance(instance, cls)


def call_kind(instance: Any, method: str) -> str | None:
    """``"llm"`` for a span that makes one model call, ``"embedding"`` for any span of an
    embedding model, else ``None``."""
    if instance is None:
        return None
    if method in _LLM_CALLS:
        llm = _loaded("llama_index.core.base.llms.base", "BaseLLM")
        if llm is not None and isinstance(instance, llm):
            return "llm"
    embedding = _loaded("llama_index.core.base.embeddings.base", "BaseEmbedding")
    if embedding is not None and isinstance(instance, embedding):
        return "embedding"
    return None


def model_of(instance: Any) -> str | None:
    """The model name an LLM or embedding model reports about itself."""
    for attribute in ("model", "model_name"):
        value = getattr(instance, attribute, None)
        if isinstance(value, str) and value:
            return value
    try:
        value = instance.metadata.model_name
    except Exception:  # a user's ``metadata`` property may raise; the name is only a label
        return None
    return value if isinstance(value, str) and value else None
