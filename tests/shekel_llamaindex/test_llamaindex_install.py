"""Zero config: the entry point installs into LlamaIndex once it is imported, costs no import
of LlamaIndex before that, and stays out of the way of versions it does not support."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.llms.openai import OpenAI

from shekel import budget
from shekel.plugins import plugin_manager
from shekel.testing import FakeProvider
from shekel_llamaindex import supported
from shekel_llamaindex._plugin import INTEGRATION


def _run(code: str, env_path: Path | None = None) -> str:
    env = None
    if env_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(env_path)}
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_entry_point_is_registered() -> None:
    names = {name for name, _ in plugin_manager().list_name_plugin()}
    assert "llamaindex" in names


def test_the_installed_llamaindex_is_supported_and_installed() -> None:
    with budget(name="app"):  # the first budget entered runs the entry point
        assert supported()
        assert INTEGRATION.installed


def test_uninstall_takes_everything_back(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    from llama_index.core.agent.workflow.base_agent import BaseWorkflowAgent
    from llama_index.core.callbacks.base import CallbackManager

    with budget(name="app"):  # the first budget entered runs the entry point
        assert hasattr(BaseWorkflowAgent._call_tool, "__shekel_original__")
    INTEGRATION.uninstall()
    try:
        assert not INTEGRATION.installed
        assert not hasattr(CallbackManager.on_event_start, "__wrapped__")
        assert not hasattr(BaseWorkflowAgent._call_tool, "__shekel_original__")
        assert plugin_manager().get_plugin("shekel-integration-routes") is None
        with budget(name="rag") as rag:
            index.as_query_engine(llm=llm).query("Who?")
        assert (rag.snapshot().llm_calls_used, rag.children) == (2, [])  # the interceptor alone
    finally:
        INTEGRATION.install()
    assert hasattr(BaseWorkflowAgent._call_tool, "__shekel_original__")
    with budget(name="rag") as rag:
        index.as_query_engine(llm=llm).query("Who?")
    assert [child.name for child in rag.children] == ["query"]


def test_nothing_of_llamaindex_is_imported_before_the_application_imports_it() -> None:
    out = _run(
        """
        import sys
        import shekel
        with shekel.budget(name="app"):
            pass
        print(sorted(m for m in sys.modules if m.startswith("llama_index")))
        """
    )
    assert out.strip().endswith("[]")


def test_sdk_calls_pay_for_routing_only_once_llamaindex_is_imported() -> None:
    """Until then no ``shekel_route_call`` plugin is registered, so the interceptor asks none."""
    out = _run(
        """
        import shekel
        from shekel._plugins import LISTENING
        with shekel.budget(name="app"):
            print("before", LISTENING.shekel_route_call)
            import llama_index.core
            print("after", LISTENING.shekel_route_call)
        """
    )
    said = [line for line in out.splitlines() if line.startswith(("before ", "after "))]
    assert said == ["before False", "after True"]


def test_a_budget_entered_before_llamaindex_is_imported_still_sees_its_steps() -> None:
    """As under ``shekel run``: the budget comes first, the script imports LlamaIndex."""
    out = _run(
        """
        import shekel
        from shekel.testing import FakeProvider

        with FakeProvider() as fake, shekel.budget(name="run") as run:
            import importlib.resources

            from llama_index.core import Document, VectorStoreIndex
            from llama_index.embeddings.openai import OpenAIEmbedding
            from llama_index.llms.openai import OpenAI

            # the import hook leaves the package's own loader in charge of everything else
            static = importlib.resources.files("llama_index.core").joinpath("_static")
            print("resources", static.joinpath("tiktoken_cache").is_dir())

            embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
            llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
            index = VectorStoreIndex.from_documents([Document(text="a b c")], embed_model=embed)
            index.as_query_engine(llm=llm).query("Who?")
        names = sorted(b.full_name for b in run.child("query").children)
        print(names, run.snapshot().llm_calls_used)
        """
    )
    assert "['run.query.retrieve', 'run.query.synthesize'] 3" in out
    assert "resources True" in out


def test_an_unsupported_llamaindex_is_left_alone_with_a_warning(tmp_path: Path) -> None:
    info = tmp_path / "llama_index_core-0.13.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llama-index-core\nVersion: 0.13.6\n"
    )
    out = _run(
        """
        import shekel
        from shekel.testing import FakeProvider
        from llama_index.core import Document, VectorStoreIndex
        from llama_index.embeddings.openai import OpenAIEmbedding

        with FakeProvider() as fake, shekel.budget(name="run") as run:
            embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
            index = VectorStoreIndex.from_documents([Document(text="a")], embed_model=embed)
            index.as_retriever().retrieve("a?")  # a step, were the package active
        print("calls", run.snapshot().llm_calls_used, "children", run.children)

        from llama_index.core.callbacks import CallbackManager
        from shekel_llamaindex import ShekelCallbackHandler

        handler = ShekelCallbackHandler(budgets={"retrieve": 0.5})  # asked for: it runs
        with FakeProvider() as fake, shekel.budget(name="run") as run:
            embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
            index = VectorStoreIndex.from_documents([Document(text="a")], embed_model=embed)
            retriever = index.as_retriever()
            retriever.callback_manager = CallbackManager([handler])
            retriever.retrieve("a?")
        print("explicit", [(c.name, c.config.max_usd) for c in run.children])
        """,
        env_path=tmp_path,
    )
    expected = (
        "UnsupportedFrameworkWarning: shekel-llamaindex: llama-index-core 0.13.6 is installed; "
        "shekel-llamaindex supports llama-index-core >= 0.14.5, < 0.15. Its automatic hooks are "
        "not installed"
    )
    assert expected in out
    assert out.count("UnsupportedFrameworkWarning") == 1
    assert "calls 2 children []" in out  # the interceptor still records every call
    assert "explicit [('retrieve', 0.5)]" in out


@pytest.mark.parametrize("name", ["ShekelCallbackHandler", "LlamaIndexBudgetExceededError"])
def test_the_public_api(name: str) -> None:
    import shekel_llamaindex

    assert name in shekel_llamaindex.__all__
    assert getattr(shekel_llamaindex, name).__module__.startswith("shekel_llamaindex")
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        shekel_llamaindex.missing  # noqa: B018


def test_the_handler_imported_after_a_budget_and_before_llamaindex_is_whole() -> None:
    """In a fresh process, as under ``shekel run``: a budget entered first, then the handler
    imported before any LlamaIndex. LlamaIndex's import installs the integration, which needs
    the handler: it used to meet it half-imported and fail with an ImportError."""
    script = textwrap.dedent(
        """
        from shekel import budget

        with budget(max_usd=1, name="first"):
            pass
        from shekel_llamaindex import ShekelCallbackHandler

        print(ShekelCallbackHandler.__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ShekelCallbackHandler"
