"""Installed, the package follows LangChain runs inside any budget with no callbacks passed, and
nothing outside budgets; a handler given in callbacks replaces it; it is registered with
LangChain once, and uninstalled follows nothing by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from langchain_core.tracers import context as langchain_context
from langchain_openai import ChatOpenAI
from lc_support import fake_model, paid, run, shekel_handlers_here, tree_of

import shekel_langchain
from shekel import ToolBudgetExceededError, budget
from shekel.integration import OutsideBudgetWarning
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler, run_budgets
from shekel_langchain._runs import RUNS
from shekel_langchain._zero_config import INTEGRATION

probe = RunnableLambda(lambda _: shekel_handlers_here())


def zero_config(handlers: list[Any]) -> bool:
    """True when ``handlers`` are the one handler LangChain runs get by themselves."""
    return len(handlers) == 1 and not handlers[0].budgets


def test_runs_are_followed_inside_a_budget_only() -> None:
    assert probe.invoke(0) == []
    with budget(max_usd=1, name="root"):
        assert zero_config(probe.invoke(0))
        assert all(map(zero_config, probe.batch([0, 1, 2])))  # worker threads too
        with budget(max_usd=1, name="inner"):
            assert zero_config(probe.invoke(0))
        assert zero_config(probe.invoke(0))  # still inside root
    assert probe.invoke(0) == []  # off again once the last budget ended


def test_runs_are_followed_inside_an_async_budget_only() -> None:
    async def main() -> list[Any]:
        seen = [await probe.ainvoke(0)]
        async with budget(max_usd=1, name="root"):
            seen.append(await probe.ainvoke(0))
            seen.extend(await probe.abatch([0, 1]))
        seen.append(await probe.ainvoke(0))
        return seen

    seen = run(main())
    assert seen[0] == seen[-1] == []
    assert all(map(zero_config, seen[1:-1]))
    assert len(seen) == 5


def test_an_explicit_handler_keeps_the_zero_config_one_out() -> None:
    handler = ShekelCallbackHandler()
    model = fake_model()
    with budget(max_usd=1, name="root") as root:
        assert probe.invoke(0, config={"callbacks": [handler]}) == [handler]
        model.invoke("once", config={"callbacks": [handler]})
    assert root.snapshot().llm_calls_used == 1


def test_a_handler_given_to_an_inner_runnable_maps_the_runs_it_sees() -> None:
    """The zero-config handler, inherited from the outer runs, is called first for those runs
    (LangChain's order); the handler given closer to them decides, and nothing is counted
    twice."""
    model = fake_model()

    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        return query

    def inner_body(text: str) -> str:
        lookup.invoke(text)
        return str(model.invoke(text).content)

    def outer_body(text: str, config: RunnableConfig) -> Any:
        # given the config, the inner run stays a child of this one, with both handlers
        seen.append(probe.invoke(0, config))
        return inner.invoke(text, config)

    seen: list[Any] = []
    handler = ShekelCallbackHandler(budgets={"inner": {"max_tool_calls": 1}})
    inner = RunnableLambda(inner_body).with_config(run_name="inner", callbacks=[handler])
    outer = RunnableLambda(outer_body).with_config(run_name="outer")
    with budget(max_usd=1, name="root") as root, run_budgets({"outer": None}):
        outer.invoke("x")
        with pytest.raises(ToolBudgetExceededError) as refused:
            outer.invoke("y")
    assert len(seen) == 2
    assert all(map(zero_config, seen))
    assert [b.full_name for b in tree_of(root)] == ["root", "root.outer", "root.outer.inner"]
    inner_budget = root.child("outer").child("inner")
    assert (inner_budget.snapshot().llm_calls_used, inner_budget.snapshot().tool_calls_used) == (
        1,
        1,
    )
    assert (root.snapshot().llm_calls_used, root.snapshot().tool_calls_used) == (1, 1)
    assert refused.value.budget_name == "root.outer.inner"


def test_run_budgets_nest_and_end_with_their_block(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    model = gpt()
    chain = (RunnableLambda(lambda text: f"summarize: {text}") | model).with_config(
        run_name="summarize"
    )
    answers: dict[str, Any] = {}
    with budget(max_usd=5, name="root") as root:
        with run_budgets({"summarize": 1.0}):
            answers["summarize: a"] = chain.invoke("a")
            with run_budgets({}):
                answers["summarize: b"] = chain.invoke("b")
            answers["summarize: c"] = chain.invoke("c")
        answers["summarize: d"] = chain.invoke("d")
    assert paid(root, answers) == {
        "summarize: a": "root.summarize",
        "summarize: b": "root",
        "summarize: c": "root.summarize",
        "summarize: d": "root",
    }


def test_run_budgets_without_a_budget_follows_nothing_until_one_is_entered() -> None:
    model = fake_model()
    with run_budgets({"summarize": 1.0}):
        with pytest.warns(OutsideBudgetWarning, match="outside any budget"):
            model.with_config(run_name="summarize").invoke("untracked")
        with budget(max_usd=1, name="root") as root:
            model.with_config(run_name="summarize").invoke("tracked")
    assert root.child("summarize").snapshot().llm_calls_used == 1
    assert probe.invoke(0) == []


def test_langchain_is_registered_with_once() -> None:
    hooks = langchain_context._configure_hooks
    before = len(hooks)
    for n in range(50):
        with budget(max_usd=1, name=f"b{n}"), run_budgets({"x": 1.0}):
            probe.with_config(run_name="x").invoke(0)
    assert len(hooks) == before
    ours = [h for h in hooks if h[0].name == "shekel_langchain_handler"]
    assert len(ours) == 1


def test_uninstalled_only_a_handler_given_in_callbacks_follows_runs() -> None:
    handler = ShekelCallbackHandler(budgets={"s": None})
    followed = RunnableLambda(lambda _: len(RUNS)).with_config(run_name="s")
    INTEGRATION.uninstall()
    try:
        with budget(max_usd=1, name="root") as root:
            assert probe.invoke(0) == []
            assert followed.invoke(0) == 0
            assert followed.invoke(0, config={"callbacks": [handler]}) == 1
    finally:
        INTEGRATION.install()
    assert [c.name for c in root.children] == ["s"]
    with budget(max_usd=1, name="root"):
        assert zero_config(probe.invoke(0))


def test_the_installed_langchain_core_is_supported() -> None:
    assert shekel_langchain.supported()


def test_an_unsupported_langchain_core_is_reported_once_and_nothing_is_registered() -> None:
    script = textwrap.dedent(
        """
        import importlib.metadata, json, warnings
        real = importlib.metadata.version
        importlib.metadata.version = (
            lambda name: "2.5.0" if name == "langchain-core" else real(name)
        )
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from langchain_core.runnables import RunnableConfig, RunnableLambda
            from langchain_core.tracers import context
            from shekel import ToolBudgetExceededError, budget
            from shekel_langchain import ShekelCallbackHandler
            seen = []
            probe = RunnableLambda(lambda _: seen.append(1))
            for name in ("a", "b"):
                with budget(max_usd=1, name=name):
                    handlers = RunnableLambda(
                        lambda _: [
                            type(h).__name__
                            for h in __import__(
                                "langchain_core.runnables.config", fromlist=["x"]
                            ).var_child_runnable_config.get()["callbacks"].handlers
                        ]
                    ).invoke(0)
        print(json.dumps({
            "warnings": [
                (w.category.__name__, str(w.message)) for w in caught
                if w.category.__name__ == "UnsupportedFrameworkWarning"
            ],
            "handlers": handlers,
            "hooks": [h[0].name for h in context._configure_hooks],
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["warnings"]) == 1
    message = result["warnings"][0][1]
    assert "langchain-core 2.5.0 is installed; shekel-langchain supports" in message
    assert ">= 1.0, < 2" in message
    assert "ShekelCallbackHandler" not in str(result["handlers"])
    assert "shekel_langchain_handler" not in result["hooks"]


@pytest.mark.parametrize("explicit", [True, False], ids=["handler", "zero-config"])
def test_a_handler_follows_nothing_outside_budgets(explicit: bool) -> None:
    config: Any = {"callbacks": [ShekelCallbackHandler(budgets={"s": 1.0})]} if explicit else {}
    model = fake_model(replies=3)
    followed = RunnableLambda(lambda _: len(RUNS)).with_config(run_name="s")
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for _ in range(3):
            model.with_config(run_name="s").invoke("x", config=config)
        assert followed.invoke(0, config=config) == 0
    # budgets given outside any budget: one warning that they apply to nothing
    assert [w.category for w in warned] == [OutsideBudgetWarning] * explicit
    with budget(max_usd=1, name="root"):
        assert followed.invoke(0, config=config) == 1  # the same probe sees its run inside


def test_a_budget_costs_nothing_more_until_langchain_runs_in_it() -> None:
    """In a fresh process: entering a budget imports no LangChain and adds no hook to shekel's
    per-budget and per-call paths; LangChain imported afterwards is still followed."""
    script = textwrap.dedent(
        """
        import itertools, json, sys
        from shekel import budget
        from shekel.plugins import plugin_manager

        def state():
            hooks = plugin_manager().hook
            return {
                "langchain loaded": "langchain_core" in sys.modules,
                "route hooks": len(hooks.shekel_route_call.get_hookimpls()),
                "enter hooks": len(hooks.shekel_budget_entered.get_hookimpls()),
                "exit hooks": len(hooks.shekel_budget_exited.get_hookimpls()),
            }

        with budget(max_usd=1, name="first"):
            pass
        before = state()

        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage

        usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
        answer = AIMessage("x", usage_metadata=usage, response_metadata={"model_name": "gpt-4o"})
        model = GenericFakeChatModel(messages=itertools.repeat(answer))
        with budget(max_llm_calls=1, name="second") as second:
            model.invoke("a")
            try:
                model.invoke("b")
                refused = None
            except Exception as exc:
                refused = type(exc).__name__
        print(json.dumps({
            "before": before, "after": state(), "calls": second.snapshot().llm_calls_used,
            "refused": refused
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == {
        "langchain loaded": False,
        "route hooks": 0,
        "enter hooks": 0,
        "exit hooks": 0,
    }
    assert result["after"]["route hooks"] == 1
    assert (result["calls"], result["refused"]) == (1, "RunBudgetExceededError")


def test_plain_threads_under_shekel_run_are_followed(tmp_path: Path) -> None:
    """``shekel run``'s budget covers threads started without a copy of the context, and so
    does the zero-config path: a local model invoked in such a thread is recorded."""
    script = tmp_path / "threaded_agent.py"
    script.write_text(
        textwrap.dedent(
            """
            import itertools, threading
            import shekel
            from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
            from langchain_core.messages import AIMessage

            usage = {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100}
            named = {"model_name": "gpt-4o"}
            answer = AIMessage("x", usage_metadata=usage, response_metadata=named)
            model = GenericFakeChatModel(messages=itertools.repeat(answer))
            worker = threading.Thread(target=lambda: model.invoke("in a plain thread"))
            worker.start()
            worker.join()
            print("calls", shekel.current_budget().snapshot().llm_calls_used)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "shekel", "run", "--budget", "1", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "calls 1" in done.stdout


def test_the_handler_imported_after_a_budget_and_before_langchain_is_whole() -> None:
    """In a fresh process, as under ``shekel run``: a budget entered first, then the handler
    imported before any LangChain. LangChain's import installs the integration, which needs the
    handler: it used to meet it half-imported and fail with an ImportError."""
    script = textwrap.dedent(
        """
        from shekel import budget

        with budget(max_usd=1, name="first"):
            pass
        from shekel_langchain import ShekelCallbackHandler

        print(ShekelCallbackHandler.__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ShekelCallbackHandler"
