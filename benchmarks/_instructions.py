"""Instructions per call and per chunk, counted with callgrind: figures that do not move with
the machine's load (wall time here varies by ±3 µs between runs).

Run as a script under ``valgrind --tool=callgrind``, it executes one workload in regions
bracketed by ``os.getppid()`` (counters zeroed) and ``os.getpgrp()`` (counters dumped), each
region ``n`` iterations with no budget active, then ``n`` inside ``with budget(max_usd=1e9)``,
:data:`ROUNDS` times over. :func:`count` starts it and returns ``{"without": instr, "with":
instr, "overhead": instr}`` per iteration (medians over the rounds), or ``None`` when valgrind is
not installed.

Workloads: ``openai``, ``responses`` (the Responses API) and ``anthropic`` (a non-streamed
SDK call each), ``stream:K`` (an
openai streamed call of K content chunks, read to the end), ``message_stream:K`` (an anthropic
streamed message of K text deltas, read to the end), ``outside`` (this project only: the
openai call with no budget active, every region without shekel's patches against one with
them, after LangChain and LangGraph ran in a budget; "with" means patched there), ``langchain``
(a LangChain fake chat model's ``invoke``: "without" with an empty handler and no budget,
"with" with ``ShekelCallbackHandler`` inside a budget, as ``bench_langchain.py`` times it),
``reader:chat`` and ``reader:messages`` (this project only: ``n`` events of one stream,
"without" iterated as they are, "with" through the SDK layer's reader; see :func:`_reader`).
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROUNDS = 3
"""Regions without and with a budget, alternated; the figure is the median of the rounds."""


def _workload(name: str) -> Callable[[int], None]:
    import _incumbents_interception as work

    if name == "openai":
        return work.openai_calls(work.openai_client())
    if name == "responses":
        return work.openai_responses(work.openai_client())
    if name == "anthropic":
        return work.anthropic_calls(work.anthropic_client())
    if name.startswith("stream:"):
        chunks = int(name.partition(":")[2])
        return work.openai_streams(work.openai_client(chunks), chunks)
    if name.startswith("message_stream:"):
        deltas = int(name.partition(":")[2])
        return work.anthropic_streams(work.anthropic_client(deltas), deltas)
    raise SystemExit(f"unknown workload {name!r}")


def _region(run: Callable[[int], None], n: int, history: Any = None) -> None:
    os.getppid()  # --zero-before
    run(n)
    if history is not None:  # shekel's budget counts the calls it queued here, not later
        _ = history().total_calls
    os.getpgrp()  # --dump-before


def _use_integrations() -> None:
    """Run a LangChain model and a LangGraph graph inside a budget once each, as an application
    does: each integration registers its router then."""
    import itertools

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, StateGraph

    from shekel import budget
    from shekel_langgraph import budgeted_graph

    answer = AIMessage(
        content="ok",
        usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
        response_metadata={"model_name": "gpt-4o-mini"},
    )
    graph: Any = StateGraph(dict)
    graph.add_node("step", lambda state: {})
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    with budget(max_usd=1e9, name="integrations"):
        GenericFakeChatModel(messages=itertools.repeat(answer)).invoke("hi")
        budgeted_graph(graph.compile()).invoke({})


def _outside(n: int) -> None:
    """Regions of SDK calls made outside every budget: the bare SDK (shekel's patches taken
    off), then the same with them on, after LangChain and LangGraph were used in a budget."""
    from shekel import budget
    from shekel._interception import _httpx_patch

    run = _workload("openai")
    gc.disable()
    with budget(max_usd=1e9):  # installs interception
        run(3)
    if not os.environ.get("SHEKEL_BENCH_NO_INTEGRATIONS"):
        _use_integrations()
    run(3)
    for _ in range(ROUNDS):
        _httpx_patch.uninstall()
        _region(run, n)
        _httpx_patch.install()
        _region(run, n)


def _langchain(n: int) -> None:
    """Regions of LangChain model calls: with an empty handler, then with shekel's handler
    inside a budget."""
    import bench_langchain as lc
    from shekel import budget
    from shekel_langchain import ShekelCallbackHandler

    model = lc.make_model()
    empty: dict[str, Any] = {"callbacks": [lc.EmptyHandler()]}
    ours: dict[str, Any] = {"callbacks": [ShekelCallbackHandler(budgets={"summarize": 1.0})]}

    def calls(config: dict[str, Any]) -> Callable[[int], None]:
        def run(count: int) -> None:
            for _ in range(count):
                model.invoke("question", config=config)

        return run

    gc.disable()
    with budget(max_usd=1e9, name="root"):
        calls(ours)(3)
    calls(empty)(3)
    for _ in range(ROUNDS):
        _region(calls(empty), n)
        with budget(max_usd=1e9, name="root") as spent:
            _region(calls(ours), n, spent.history)


def _reader(kind: str, n: int) -> None:
    """Regions of ``n`` events of one stream read without shekel, then through the SDK
    layer's reader: shekel's cost of a chunk with no HTTP and no stream around it (the SDK's
    own cost of a long stream drifts between regions by more than shekel's cost of a chunk).

    ``chat``: OpenAI's content chunks as OpenAI sends them (padded), each built by the SDK as
    its stream builds it. Without shekel the request asks for no usage, so its chunks have no
    ``usage`` field; with shekel they name it null, and the reader takes it out again before
    the SDK builds them: the figure counts both. ``messages``: Anthropic's text deltas, read
    and not built (the reader never changes them)."""
    import _incumbents_interception as work
    from shekel import budget
    from shekel._interception import _sdk_readers as readers
    from shekel._interception import _sdk_streams as streams
    from shekel._interception._anthropic import MessagesAdapter
    from shekel._interception._openai import ChatCompletionsAdapter

    if kind == "chat":
        from openai._models import construct_type
        from openai._streaming import ServerSentEvent
        from openai.types.chat import ChatCompletionChunk

        plain = work.chat_stream_events(n + 1, False)[1 : n + 1]  # content chunks after the first
        asked = work.chat_stream_events(n + 1, True)[1 : n + 1]
        adapter: Any = ChatCompletionsAdapter()
        stream_kind, read, hide = streams.CHAT, readers._sync_events, True

        def use(event: Any) -> None:
            construct_type(type_=ChatCompletionChunk, value=event.json())
    else:
        from anthropic._streaming import ServerSentEvent  # type: ignore[assignment]

        plain = asked = work.message_stream_events(n)[3 : 3 + n]  # the text deltas
        adapter, stream_kind, hide = MessagesAdapter(), streams.MESSAGES, False
        read = readers._sync_named_events

        def use(event: Any) -> None:
            pass

    def events(raw: list[bytes]) -> list[Any]:
        built = []
        for text in (event.decode() for event in raw):
            head, _, data = text.rstrip("\n").rpartition("data: ")
            name = head.removeprefix("event: ").strip() or None
            built.append(ServerSentEvent(event=name, data=data))
        return built

    gc.disable()
    request = {"model": "gpt-4o-mini", "messages": work.PROMPT, "stream": True}
    with budget(max_usd=1e9) as spent:
        for _ in range(ROUNDS + 1):
            bare, ours = events(plain), events(asked)
            watch = streams._Watch(spent._c, adapter, request, hide, stream_kind)
            watch.call.settled = True  # the end of the events records nothing here
            os.getppid()
            for event in iter(bare):
                use(event)
            os.getpgrp()
            os.getppid()
            for event in read(watch, iter(ours)):
                use(event)
            os.getpgrp()


def _main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    if name == "outside":
        _outside(n)
        return
    if name.startswith("reader:"):
        _reader(name.partition(":")[2], n)
        return
    if name == "langchain":
        _langchain(n)
        return
    from shekel import budget

    run = _workload(name)
    gc.disable()
    with budget(max_usd=1e9):  # installs interception, warms up both paths
        run(3)
    run(3)
    for _ in range(ROUNDS):  # alternated: the SDK's own cost drifts by a few k per call
        _region(run, n)
        with budget(max_usd=1e9) as spent:
            _region(run, n, getattr(spent, "history", None))  # shekel 1.2.0 has none


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def count(name: str, n: int, python: str = sys.executable) -> dict[str, float] | None:
    """Instructions per iteration of workload ``name``, without and with a budget, in the
    environment of ``python`` (the incumbent's venv, for shekel 1.2.0); ``None`` without
    valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PYTHONHASHSEED="0", PYTHONPATH=str(HERE))
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--collect-atstart=yes",
                "--zero-before=os_getppid",
                "--dump-before=os_getpgrp",
                python,
                __file__,
                name,
                str(n),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.split(".")[-1]))
        if len(dumps) < 2 * ROUNDS:
            raise RuntimeError(f"callgrind wrote {len(dumps)} region dumps, expected {2 * ROUNDS}")
        per_call = [_total(p) / n for p in dumps[-2 * ROUNDS :]]
    without, with_budget = per_call[0::2], per_call[1::2]
    # Each round's difference, then their median: one region the SDK happened to make dearer
    # (a cache of its own growing) moves the figure by less than a round.
    overhead = statistics.median(w - wo for w, wo in zip(with_budget, without, strict=True))
    return {
        "without": statistics.median(without),
        "with": statistics.median(with_budget),
        "overhead": overhead,
    }


if __name__ == "__main__":
    _main()
