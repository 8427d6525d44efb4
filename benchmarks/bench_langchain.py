"""shekel-langchain: what its callback handler adds to a LangChain model call.

Run ``python benchmarks/bench_langchain.py`` (or ``nox -s bench`` for every suite). Prints one
JSON document (see ``_harness.py``). ``--quick`` takes fewer repeats (a smoke run).

One LangChain fake chat model (``GenericFakeChatModel``, answering with usage and a model
name, as a local model would: nothing reaches an SDK, so the handler does all of shekel's work
for the call: follows the run, checks the budget before it runs, records its usage after), is
invoked ``call_n`` times per sample in each configuration below; the configurations take
turns within every repeat (the machine's speed drifts over minutes), and each figure is a
difference of medians against the run with an empty handler.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableLambda

import _harness as h
import _instructions
import shekel
from shekel_langchain import ShekelCallbackHandler

GOAL_US = 10.0

NOTES = [
    "- *Overhead* = median(µs per `model.invoke()` with the configuration) − median(µs per call"
    " with one empty handler), from the same process, the configurations taking turns in every"
    " repeat; in brackets min − min. LangChain's own work per call (tens of µs) is in both.",
    "- Times are the CPU time of the measuring thread (`time.thread_time_ns`), not wall time:"
    " the figures differ by a few µs out of a hundred, and on a shared machine waiting for a"
    " core would swamp them. Every case runs in that one thread.",
    "- *Empty handler*: a `BaseCallbackHandler` with `run_inline = True` whose start and end"
    " callbacks do nothing, passed in `config={'callbacks': [...]}`."
    " *UsageMetadataCallbackHandler*: LangChain's own usage counter (sums `usage_metadata`"
    " per model, no prices, no limits).",
    "- *shekel handler*: `ShekelCallbackHandler(budgets={'summarize': 1.0})` in the config,"
    " inside `with budget(max_usd=1e9, name='root')`: per call it follows the model run, checks"
    " the budget before the model runs and records the reported usage (priced, gpt-4o-mini)"
    " after. *Zero-config*: the same inside the budget with no callbacks passed (LangChain adds"
    " the handler itself). *Outside a budget*: the handler passed, no budget active.",
    "- *Handler alone*: `on_chat_model_start` + `on_llm_end` called directly, without LangChain:"
    " shekel's own work per call (the record in it costs what `Budget.record(model=...)` costs"
    " in the core suite).",
    "- The model is a local fake; a ChatOpenAI or ChatAnthropic call is recorded by shekel's"
    " interceptor instead (see the interception suite), and the handler then only follows the"
    " run and tells the interceptor which budget pays: no check and no record of its own.",
    "- Called between LangChain's own work (some 80 µs of Python per call), the handler's code"
    " runs about three times slower than in the tight loops of *handler alone* and *core's"
    " share*: compare those two to see what the core's check and record take of it.",
    "- *Instructions*: `model.invoke()` with the empty handler and no budget, then with"
    " ShekelCallbackHandler inside a budget, counted by callgrind in alternating regions as"
    " the interception suite counts its calls (`_instructions.py`, workload `langchain`):"
    " a figure that does not move with the machine's load.",
]


def sizes_for(quick: bool) -> dict[str, Any]:
    if quick:
        return {"repeats": 7, "call_n": 200, "direct_n": 2_000, "warmup": 200}
    return {"repeats": 41, "call_n": 500, "direct_n": 20_000, "warmup": 1_000}


class EmptyHandler(BaseCallbackHandler):
    """Does nothing, in the callbacks shekel's handler implements (a chat model handler without
    ``on_chat_model_start`` would make LangChain fall back to ``on_llm_start``, a dearer path)."""

    run_inline = True

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        pass

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        pass

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        pass

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        pass


def make_model() -> GenericFakeChatModel:
    message = AIMessage(
        "an answer",
        usage_metadata={"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
        response_metadata={"model_name": "gpt-4o-mini"},
    )
    return GenericFakeChatModel(messages=itertools.repeat(message))


def sync_case(model: Any, config: dict[str, Any], inside: bool) -> Callable[[int], None]:
    def work(n: int) -> None:
        if inside:
            with shekel.budget(max_usd=1e9, name="root"):
                for _ in range(n):
                    model.invoke("question", config=config)
        else:
            for _ in range(n):
                model.invoke("question", config=config)

    return work


def async_case(model: Any, config: dict[str, Any], inside: bool) -> Callable[[int], None]:
    async def calls(n: int) -> None:
        for _ in range(n):
            await model.ainvoke("question", config=config)

    async def body(n: int) -> None:
        if inside:
            async with shekel.budget(max_usd=1e9, name="root"):
                await calls(n)
        else:
            await calls(n)

    def work(n: int) -> None:
        asyncio.run(body(n))

    return work


def chain_case(config: dict[str, Any], inside: bool) -> Callable[[int], None]:
    chain = RunnableLambda(lambda x: x).with_config(run_name="summarize")

    def work(n: int) -> None:
        if inside:
            with shekel.budget(max_usd=1e9, name="root"):
                for _ in range(n):
                    chain.invoke("x", config=config)
        else:
            for _ in range(n):
                chain.invoke("x", config=config)

    return work


def cases() -> dict[str, Callable[[int], None]]:
    model = make_model()
    names = {"summarize": 1.0}
    empty: dict[str, Any] = {"callbacks": [EmptyHandler()]}
    usage: dict[str, Any] = {"callbacks": [UsageMetadataCallbackHandler()]}
    ours: dict[str, Any] = {"callbacks": [ShekelCallbackHandler(budgets=names)]}
    return {
        "bare": sync_case(model, {}, inside=False),
        "empty": sync_case(model, empty, inside=False),
        "usage": sync_case(model, usage, inside=False),
        "shekel": sync_case(model, ours, inside=True),
        "zero_config": sync_case(model, {}, inside=True),
        "shekel_outside": sync_case(model, ours, inside=False),
        "async_empty": async_case(model, empty, inside=False),
        "async_shekel": async_case(model, ours, inside=True),
        "chain_empty": chain_case(empty, inside=False),
        "chain_shekel": chain_case(ours, inside=True),
    }


def measure(sizes: dict[str, Any]) -> dict[str, list[float]]:
    runs = cases()
    for work in runs.values():
        work(sizes["warmup"])
    samples: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    n = sizes["call_n"]
    for repeat in range(sizes["repeats"]):
        shift = repeat % len(order)
        for name in order[shift:] + order[:shift]:
            t0 = time.thread_time_ns()
            runs[name](n)
            samples[name].append((time.thread_time_ns() - t0) / n / 1_000)
    return samples


def measure_direct(sizes: dict[str, Any]) -> dict[str, list[float]]:
    """The handlers' own callbacks, called as LangChain would, without LangChain around them."""
    from uuid import uuid4

    message = make_model().invoke("warm")  # a real AIMessage with usage, as models return
    result = LLMResult(generations=[[ChatGeneration(message=message)]])
    serialized = {"id": ["langchain_core", "fake", "GenericFakeChatModel"]}
    kwargs = {"invocation_params": {"_type": "generic-fake-chat-model"}, "batch_size": 1}

    def calls(handler: BaseCallbackHandler) -> Callable[[int], None]:
        def work(n: int) -> None:
            with shekel.budget(max_usd=1e9, name="root"):
                for _ in range(n):
                    run_id = uuid4()
                    handler.on_chat_model_start(serialized, [[]], run_id=run_id, **kwargs)
                    handler.on_llm_end(result, run_id=run_id)

        return work

    def core_calls(n: int) -> None:
        """What the handler asks of shekel's core per call: the check before, the record after."""
        with shekel.budget(max_usd=1e9, name="root") as root:
            for _ in range(n):
                root.check()
                root.record(
                    model="gpt-4o-mini", input_tokens=100, output_tokens=10, source="langchain"
                )

    runs = {
        "direct_empty": calls(EmptyHandler()),
        "direct_shekel": calls(ShekelCallbackHandler()),
        "direct_core": core_calls,
    }
    out: dict[str, list[float]] = {name: [] for name in runs}
    n = sizes["direct_n"]
    for work in runs.values():
        work(n // 10)
    for _ in range(sizes["repeats"]):
        for name, work in runs.items():
            t0 = time.thread_time_ns()
            work(n)
            out[name].append((time.thread_time_ns() - t0) / n / 1_000)
    return out


def overhead(
    key: str,
    label: str,
    samples: dict[str, list[float]],
    case: str,
    against: str,
    goal: tuple[str, float] | None = None,
) -> dict[str, Any]:
    ours, base = samples[case], samples[against]
    diff = statistics.median(ours) - statistics.median(base)
    best = min(ours) - min(base)
    return h.figure(
        key,
        label,
        "µs/op",
        value=diff,
        goal=goal,
        extra={
            "best": best,
            "with_median": statistics.median(ours),
            "against_median": statistics.median(base),
            "paired_median": statistics.median(a - b for a, b in zip(ours, base, strict=True)),
            "repeats": len(ours),
        },
    )


def main(argv: list[str] | None = None) -> None:
    args, sizes = h.suite_args(argv, __doc__.splitlines()[0], sizes_for)
    with shekel.budget(name="install"):  # installs interception and the LangChain hook once
        pass
    samples = measure(sizes)
    samples.update(measure_direct(sizes))
    figures = [
        h.figure(
            "langchain_bare_call",
            "GenericFakeChatModel.invoke, no handler, no budget (LangChain alone)",
            "µs/op",
            samples["bare"],
        ),
        overhead(
            "langchain_empty_handler",
            "an empty run_inline handler: overhead per call vs no handler",
            samples,
            "empty",
            "bare",
        ),
        overhead(
            "langchain_shekel_handler",
            "ShekelCallbackHandler inside a budget: overhead per LLM call vs the empty handler",
            samples,
            "shekel",
            "empty",
            goal=("<=", GOAL_US),
        ),
        overhead(
            "langchain_zero_config",
            "zero-config (no callbacks passed) inside a budget: overhead per LLM call vs the"
            " empty handler",
            samples,
            "zero_config",
            "empty",
            goal=("<=", GOAL_US),
        ),
        overhead(
            "langchain_usage_handler",
            "LangChain's UsageMetadataCallbackHandler: overhead per call vs the empty handler",
            samples,
            "usage",
            "empty",
        ),
        overhead(
            "langchain_shekel_vs_usage",
            "ShekelCallbackHandler inside a budget vs UsageMetadataCallbackHandler, per call",
            samples,
            "shekel",
            "usage",
        ),
        overhead(
            "langchain_shekel_outside",
            "ShekelCallbackHandler with no budget active: overhead per call vs the empty handler",
            samples,
            "shekel_outside",
            "empty",
        ),
        overhead(
            "langchain_async_shekel",
            "ainvoke, ShekelCallbackHandler inside a budget: overhead per call vs the empty"
            " handler",
            samples,
            "async_shekel",
            "async_empty",
            goal=("<=", GOAL_US),
        ),
        overhead(
            "langchain_chain_run",
            "a mapped chain run (RunnableLambda named 'summarize'): overhead per run vs the empty"
            " handler",
            samples,
            "chain_shekel",
            "chain_empty",
        ),
        overhead(
            "langchain_handler_alone",
            "on_chat_model_start + on_llm_end called directly: shekel's own work per call",
            samples,
            "direct_shekel",
            "direct_empty",
        ),
        h.figure(
            "langchain_core_share",
            "of which the core's Budget.check() + Budget.record(model=...), called directly",
            "µs/op",
            samples["direct_core"],
        ),
    ]
    h.log("langchain: instructions per call under callgrind")
    try:
        counted = _instructions.count("langchain", 20 if args.quick else 50)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        h.log(f"langchain: callgrind failed: {exc}")
        counted = None
    figures.append(
        h.figure(
            "langchain_shekel_handler_instructions",
            "ShekelCallbackHandler inside a budget: instructions per LLM call over the empty"
            " handler",
            "instr/op",
            value=None if counted is None else counted["overhead"],
            extra={"counts": counted},
        )
    )
    import langchain_core

    h.emit(
        {
            "suite": "langchain",
            "shekel_version": shekel.__version__,
            "langchain_core_version": langchain_core.__version__,
            "quick": args.quick,
            "sizes": sizes,
            "figures": figures,
            "notes": NOTES,
        }
    )


if __name__ == "__main__":
    main()
