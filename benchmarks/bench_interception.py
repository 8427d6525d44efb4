"""Interception overhead: what a budget adds to a real SDK call, and to each streamed chunk.

Run ``python benchmarks/bench_interception.py`` (or ``nox -s bench`` for every suite). Prints one
JSON document (see ``_harness.py``). Options:

``--quick``          fewer repeats (a smoke run, not for publishing);
``--no-incumbents``  skip shekel 1.2.0 (no network needed);
``--baseline REF``   also measure the shekel source of git ``REF`` (or a directory holding the
                     ``shekel`` package), for before/after figures;
``--raw``            internal: print only our raw samples (the rounds below run it).

The real ``openai`` and ``anthropic`` SDKs send to an in-process ``MockTransport`` (``httpx``
for openai, ``httpx2`` for anthropic), in the same process, without and with a budget active,
in interleaved repeats. The calls themselves cost hundreds of µs here and the machine is noisy,
so every overhead figure is ``median(with) - median(without)`` with the best-case
``min(with) - min(without)`` in brackets (and the median of per-repeat differences as
``paired_median``). The workloads live in ``_incumbents_interception.py``, which also runs
shekel 1.2.0 (it patches ``Completions.create`` / ``Messages.create``) in a throwaway virtual
environment with the same SDK versions.

Each implementation (working tree, shekel 1.2.0, ``--baseline``) is measured in its own
subprocess, a share of the repeats at a time, in rounds that rotate the order: this machine's
speed drifts over minutes, and one after the other they would be measured at different speeds.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _harness as h
import _incumbents_interception as work
import _instructions
import _providers_workloads as providers

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SHEKEL_OLD = "shekel 1.2.0 (PyPI)"
SDK_PACKAGES = ("openai", "anthropic", "httpx", "httpx2")

GOAL_CALL_US = 10.0
GOAL_CHUNK_US = 0.5
GOAL_CALL_INSTRUCTIONS = 25_000
GOAL_CHUNK_INSTRUCTIONS = 1_500
INSTRUCTION_STREAM_CHUNKS = 200

NOTES = [
    "- *Overhead* = median(µs per call inside `with budget(max_usd=1e9):`) − median(µs per call"
    " with no budget active), from repeats that alternate without/with (ABBA order); in brackets"
    " min(with) − min(without). The clock runs inside the `with` block: entering the budget is"
    " not counted (see the core suite for that).",
    "- *Without* means interception installed (a budget was entered once before) but no budget"
    " active: for shekel that is the pass-through of the patched `httpx.Client.send`. shekel 1.2.0"
    " removes its patches when its last budget exits, so its *without* is the bare SDK.",
    "- SDK clients: `openai.OpenAI(http_client=httpx.Client(transport=httpx.MockTransport(...)),"
    " max_retries=0)` answering a gpt-4o-mini chat completion with usage (and a Responses API"
    " response, for `responses.create`);"
    " `anthropic.Anthropic(http_client=httpx2.Client(transport=httpx2.MockTransport(...)))`"
    " answering a claude-3-haiku message. Each non-streamed response has an id of its own, as a"
    " provider's has (shekel remembers the ids it recorded); the streams repeat one id.",
    "- *Per chunk*: `stream=True` calls whose mock response is an event stream of K content chunks,"
    " one event per network read, each as OpenAI sends it: padded last with an `obfuscation`"
    ' field of 1 to 16 characters, and with `"usage":null` only when the request asks for the'
    " usage (`stream_options.include_usage`, which a budget adds and then hides from the"
    " caller), as is the usage chunk, so the SDK parses K chunks on both sides. Per chunk ="
    " (overhead at K − overhead at K=1) / (K − 1): the fixed per-stream cost is taken out;"
    " `per_chunk_including_fixed` is overhead / K.",
    "- *Reader, no HTTP*: the events of one stream fed to the SDK layer's reader directly, with no"
    " HTTP and no stream (`_instructions._reader`), against the same events without shekel:"
    " OpenAI's 300 content chunks, each then built by the SDK as its stream builds it (without"
    " shekel: the chunks of a request that asks for no usage); Anthropic's 2,000 text deltas,"
    " read and not built. The streamed workloads' per-chunk rows subtract two counts of about"
    " 800k instructions a chunk of the SDK's own work, which drifts between regions by more than"
    " shekel's cost of a chunk; these rows do not drift.",
    "- *Tap, direct*: the recorded event stream fed through shekel's `SyncTap` (`ChatTally`"
    " reading usage) with no SDK and no HTTP: the cost per chunk without SDK noise (the per-stream"
    " setup and the final recording included, spread over the K chunks). The tap reads the"
    " streams the SDK layer leaves to the HTTP layer (clients other than the SDKs', raw"
    " responses); the SDKs' chat, Responses and message streams no longer go through it.",
    "- *httpx.Client.send, no SDK*: the same chat completion sent with `Client.send` directly:"
    " shekel's per-call work without the SDK's. The long conversation shows what grows with the"
    ' request: shekel looks for `"stream"` and the model in the request body, two passes'
    " over its bytes.",
    "- *Instructions*: each workload run under `valgrind --tool=callgrind` (`_instructions.py`),"
    " in regions bracketed by `os.getppid()` (counters zeroed) and `os.getpgrp()` (dumped): n"
    " calls with no budget active, then n inside `with budget(max_usd=1e9)`, three rounds"
    " alternated (the SDK's own cost per call drifts by a few thousand instructions between"
    " regions, dearest in the first); the figure is the median of the rounds' differences per"
    " call (per chunk: (streams of 200 chunks − streams of 1) / 199; anthropic's streams the"
    " same, with text deltas), for shekel"
    " and for shekel 1.2.0 in its venv. Instruction counts do not move with the machine's load;"
    " they are the figures to judge a change by (the wall-time rows here vary by several µs"
    " between runs). shekel-otel is installed in the workspace: its zero-config watcher's share"
    " (about 1k instructions per call) is included. The budget region ends by reading the"
    " budget's totals, so the calls its history queued are counted in it. *With no budget"
    " active*: regions of the same call with shekel's patches taken off and put back, after a"
    " LangChain model and a LangGraph graph ran in a budget (their routers registered): what"
    " an application pays for shekel outside its budgets.",
    "- *Where the calls are taken*: non-streamed openai and anthropic calls and openai's"
    " streamed chat completions in the SDK client's `request` (the model read from the"
    " request's dict, the usage from the parsed response, or from a streamed event's text"
    " before the SDK builds a chunk of it: one search of each event's text for"
    ' `"usage":null`, taken out of the chunk when the caller did not ask for the usage), the'
    " HTTP layer below only passing the request on. Raw responses, other streams and strict or"
    " capped budgets stay at the HTTP layer.",
]


def sizes_for(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "repeats": 31,
            "warmup": 20,
            "call_n": 5,
            "send_n": 50,
            "stream_chunks": [1, 200],
            "stream_chunk_total": 2_000,
            "stream_min_repeats": 7,
            "tap_chunks": 1_000,
            "tap_n": 5,
            "tap_repeats": 7,
            "rounds": 1,
        }
    return {
        "repeats": 401,
        "warmup": 100,
        "call_n": 5,
        "send_n": 50,
        "stream_chunks": [1, 200, 1000],
        "stream_chunk_total": 40_000,
        "stream_min_repeats": 41,
        "tap_chunks": 1_000,
        "tap_n": 20,
        "tap_repeats": 21,
        "rounds": 4,
    }


# -- our measurements -------------------------------------------------------------------------


def _patched() -> bool:
    import httpx

    return getattr(httpx.Client.send, "__shekel_original__", None) is not None


def measure_ours(sizes: dict[str, Any]) -> dict[str, Any]:
    import shekel

    with shekel.budget(name="install"):  # installs the interception; it stays installed
        pass
    raw: dict[str, Any] = {"patched_without_budget": _patched()}
    raw.update(work.measure_sdk_calls(lambda: shekel.budget(max_usd=1e9), sizes))
    raw.update(measure_providers(sizes))
    raw["openai_send"] = measure_send(sizes, work.PROMPT)
    raw["openai_send_routed"] = measure_routed_send(sizes)
    raw["openai_send_large"] = measure_send(sizes, large_prompt())
    try:
        raw.update(measure_taps(sizes))
    except Exception as exc:  # e.g. a --baseline revision with other internals
        for key in ("tap_openai", "tap_anthropic", "tally_openai"):
            raw[key] = {"error": f"{type(exc).__name__}: {exc}"}
    raw["patched_without_budget"] = raw["patched_without_budget"] and _patched()
    return raw


def measure_providers(sizes: dict[str, Any]) -> dict[str, Any]:
    """The other providers' SDK calls, measured like the OpenAI and Anthropic ones."""
    import shekel

    raw: dict[str, Any] = {}
    for key, (_, make) in providers.WORKLOADS.items():
        try:
            run = make()
            b = shekel.budget(max_usd=1e9)
            raw[key] = work.interleaved(
                run, lambda b=b: b, sizes["call_n"], sizes["repeats"], sizes["warmup"]
            )
        except Exception as exc:  # an SDK missing, or a --baseline revision without the adapter
            raw[key] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        raw[key]["budget_spent_usd"] = b.spent
        raw[key]["calls_recorded"] = b.snapshot().llm_calls_used
        raw[key]["free"] = key == "ollama_call"  # a local model: $0 is right
    return raw


LARGE_PROMPT_TURNS = 100
"""Turns of the long conversation (about 93 kB of request body, some 23,000 tokens)."""


def large_prompt() -> list[dict[str, str]]:
    turn = "The quick brown fox jumps over the lazy dog. " * 20
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": turn}
        for i in range(LARGE_PROMPT_TURNS)
    ]


def measure_send(sizes: dict[str, Any], messages: list[dict[str, str]]) -> dict[str, Any]:
    """``httpx.Client.send`` of a chat-completions request over ``MockTransport``, no SDK."""
    import httpx

    import shekel

    completion = json.dumps(work.CHAT_COMPLETION).encode()
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, headers=work.JSON_HEADERS, content=completion)
        )
    )
    request = client.build_request(
        "POST",
        "http://bench/v1/chat/completions",
        content=json.dumps(
            {"messages": messages, "model": work.OPENAI_MODEL}, separators=(",", ":")
        ).encode(),
        headers=work.JSON_HEADERS,
    )
    send = client.send

    def run(n: int) -> None:
        for _ in range(n):
            send(request)

    b = shekel.budget(max_usd=1e9)
    out = work.interleaved(run, lambda: b, sizes["send_n"], sizes["repeats"] // 4, sizes["warmup"])
    out["budget_spent_usd"] = b.spent
    out["calls_recorded"] = b.snapshot().llm_calls_used
    out["request_bytes"] = len(request.content)
    return out


def measure_routed_send(sizes: dict[str, Any]) -> dict[str, Any]:
    """``measure_send`` with a routing plugin registered and not answering."""
    import shekel

    if not hasattr(shekel, "CallRoute"):  # a --baseline revision from before the hook
        return {"error": "no shekel_route_call hook in this revision"}

    class RouteNowhere:
        """A ``shekel_route_call`` plugin that never answers: what an installed integration
        costs the calls made outside its framework."""

        @shekel.plugins.hookimpl
        def shekel_route_call(self, active: Any) -> None:
            return None

    plugin = RouteNowhere()
    shekel.plugins.plugin_manager().register(plugin)
    try:
        return measure_send(sizes, work.PROMPT)
    finally:
        shekel.plugins.plugin_manager().unregister(plugin)


def measure_taps(sizes: dict[str, Any]) -> dict[str, Any]:
    """Recorded event streams through shekel's taps directly: µs per chunk, no SDK, no HTTP."""
    import shekel
    from shekel._interception._call import InterceptedCall
    from shekel._interception._routing import adapter_for
    from shekel._interception._streams import SyncTap

    chunks, n, repeats = sizes["tap_chunks"], sizes["tap_n"], sizes["tap_repeats"]
    raw: dict[str, Any] = {}

    def stream_through_tap(path: str, events: list[bytes], body: bytes) -> dict[str, Any]:
        adapter = adapter_for(path)
        assert adapter is not None, path
        b = shekel.budget(max_usd=1e9)

        def bare(count: int) -> None:
            for _ in range(count):
                for _event in events:
                    pass

        def tapped(count: int) -> None:
            for _ in range(count):
                call = InterceptedCall(b, adapter)
                call.prepare(body)
                tally = adapter.new_tally(call.hide_usage)
                tap = SyncTap(call, tally, events)
                call.watch(tally)
                for _out in tap:
                    pass

        with b:
            tapped(2)
            bare_us = h.time_per_op_us(bare, n, repeats)
            tapped_us = h.time_per_op_us(tapped, n, repeats)
        return {
            "per_chunk": [(t - statistics.median(bare_us)) / chunks for t in tapped_us],
            "calls_recorded": b.snapshot().llm_calls_used,
            "spent_usd": b.spent,
        }

    chat_events = work.chat_stream_events(chunks, include_usage=True)
    chat_body = json.dumps(
        {"messages": work.PROMPT, "model": work.OPENAI_MODEL, "stream": True}
    ).encode()
    raw["tap_openai"] = stream_through_tap("/v1/chat/completions", chat_events, chat_body)

    anthropic_body = json.dumps(
        {
            "max_tokens": 256,
            "messages": work.ANTHROPIC_PROMPT,
            "model": work.ANTHROPIC_MODEL,
            "stream": True,
        }
    ).encode()
    raw["tap_anthropic"] = stream_through_tap(
        "/v1/messages", anthropic_stream_events(chunks), anthropic_body
    )

    # ChatTally.events alone (what the tap calls per complete event), on a fresh tally each time.
    from shekel._interception._openai import ChatTally

    def tally_only(count: int) -> None:
        for _ in range(count):
            events = ChatTally(True).events
            for event in chat_events:
                events(event)

    raw["tally_openai"] = {
        "per_chunk": [t / chunks for t in h.time_per_op_us(tally_only, n, repeats)]
    }
    return raw


def anthropic_stream_events(deltas: int) -> list[bytes]:
    """A streamed Anthropic message: message_start, ``deltas`` text deltas, message_delta."""

    def event(kind: str, data: dict[str, Any]) -> bytes:
        payload = json.dumps({"type": kind, **data}, separators=(",", ":"))
        return f"event: {kind}\ndata: {payload}\n\n".encode()

    message = {**work.ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}
    message["usage"] = {**message["usage"], "output_tokens": 1}
    events = [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for i in range(deltas):
        events.append(
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": f" tok{i % 100}"}},
            )
        )
    events.append(event("content_block_stop", {"index": 0}))
    events.append(
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": deltas},
            },
        )
    )
    events.append(event("message_stop", {}))
    return events


# -- incumbent (shekel 1.2.0) -------------------------------------------------------------------


def incumbent_venv() -> Path:
    override = os.environ.get("SHEKEL_BENCH_INTERCEPTION_VENV")
    return Path(override) if override else ROOT / ".nox" / "_bench_incumbents_interception"


def incumbent_specs() -> list[str]:
    """shekel 1.2.0 and exactly the SDK versions of this environment (same work per call)."""
    specs = ["shekel==1.2.0"]
    for name in SDK_PACKAGES:
        try:
            specs.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            specs.append(name)
    return specs


def ensure_incumbent_env() -> tuple[Path | None, str]:
    """shekel 1.2.0's throwaway venv's python, or ``None`` and why not."""
    return h.ensure_venv(incumbent_venv(), incumbent_specs())


def _run_json(command: list[str], env: dict[str, str], what: str) -> dict[str, Any]:
    """Run a measuring subprocess and read the JSON document it prints (or why it failed)."""
    try:
        done = subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=3600,
            env=env,
            cwd=str(HERE),
        )
        result: dict[str, Any] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return {"error": f"{what} failed: {detail.strip()[-500:]}"}
    return result


def incumbent_runner() -> tuple[Callable[[dict[str, Any]], dict[str, Any]] | None, str]:
    python, how = ensure_incumbent_env()
    if python is None:
        return None, how
    h.log(f"interception: incumbent venv {how} at {python.parent.parent}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    script = str(HERE / "_incumbents_interception.py")
    return (
        lambda part: _run_json([str(python), "-s", script, json.dumps(part)], env, "shekel 1.2.0"),
        how,
    )


def ours_runner(src: Path | None, what: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """This script with ``--raw`` in a subprocess, on the working tree or on ``src``."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    me = str(Path(__file__).resolve())
    return lambda part: _run_json(
        [sys.executable, me, "--raw", "--sizes", json.dumps(part)], env, what
    )


# -- baseline (another git revision of shekel) --------------------------------------------------


def baseline_source(ref: str, tmp: str) -> tuple[Path, str]:
    """The ``src`` folder of the shekel package at git ``ref`` (extracted under ``tmp``), or
    ``ref`` itself when it is a directory holding the ``shekel`` package; and a short name."""
    if (Path(ref) / "shekel" / "__init__.py").is_file():
        return Path(ref).resolve(), ref
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "packages/shekel/src"],
        check=True,
        capture_output=True,
        cwd=str(ROOT),
        timeout=120,
    ).stdout
    tar_path = Path(tmp) / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp, filter="data")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], capture_output=True, text=True, cwd=str(ROOT)
    ).stdout.strip()
    return Path(tmp) / "packages" / "shekel" / "src", commit or ref


# -- rounds ---------------------------------------------------------------------------------------


def part_sizes(sizes: dict[str, Any]) -> dict[str, Any]:
    """The share of the work one round does."""
    rounds = sizes["rounds"]
    part = dict(sizes)
    for key in ("repeats", "stream_min_repeats", "tap_repeats"):
        part[key] = max(-(-sizes[key] // rounds), 3)
    part["stream_chunk_total"] = sizes["stream_chunk_total"] // rounds
    return part


def measure_in_rounds(
    runners: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], sizes: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every runner a share of the work per round, in rotating order, samples pooled.

    The machine's speed drifts over minutes; measuring shekel, shekel 1.2.0 and a baseline one
    after the other would compare different moments. Taking turns spreads the drift over all."""
    parts: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(sizes["rounds"]):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            h.log(f"interception: round {i + 1}/{sizes['rounds']}: {name} ...")
            parts[name].append(runners[name](part_sizes(sizes)))
    return {name: merge_parts(found) for name, found in parts.items()}


_SUMMED = ("calls_with_budget", "calls_recorded", "budget_spent_usd", "spent_usd")


def merge_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One raw document from several rounds: samples joined, counts added, errors kept."""
    for part in parts:
        if "error" in part:
            return {"error": part["error"]}
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if not isinstance(value, dict) or key == "sizes":
                if key == "patched_without_budget":
                    merged[key] = merged.get(key, True) and value
                else:
                    merged.setdefault(key, value)
                continue
            into = merged.setdefault(key, {})
            if "error" in into:
                continue
            if "error" in value:
                merged[key] = value
                continue
            for field, item in value.items():
                if isinstance(item, list):
                    into.setdefault(field, []).extend(item)
                elif field in _SUMMED and item is not None:
                    into[field] = into.get(field, 0) + item
                else:
                    into.setdefault(field, item)
    return merged


# -- figures --------------------------------------------------------------------------------------


def overhead(raw: dict[str, Any] | None, scale: float = 1.0) -> dict[str, Any] | None:
    """Overhead of the with-budget side over the without side (µs, divided by ``scale``)."""
    if not raw or "error" in raw:
        return None
    with_, without = raw["with"], raw["without"]
    return {
        "median": (statistics.median(with_) - statistics.median(without)) / scale,
        "min": (min(with_) - min(without)) / scale,
        "paired_median": statistics.median(a - b for a, b in zip(with_, without, strict=True))
        / scale,
        "repeats": len(with_),
    }


def per_chunk(raw: dict[str, Any], chunks: int) -> dict[str, Any] | None:
    """Overhead per chunk at ``chunks``, the fixed per-stream overhead (K=1) taken out."""
    at_k, at_1 = overhead(raw.get(f"openai_stream_{chunks}")), overhead(raw.get("openai_stream_1"))
    if at_k is None:
        return None
    if at_1 is None or chunks <= 1:
        out = {k: v / chunks if k != "repeats" else v for k, v in at_k.items()}
        out["fixed_cost_removed"] = False
        return out
    out = {k: (at_k[k] - at_1[k]) / (chunks - 1) for k in ("median", "min", "paired_median")}
    out["repeats"] = at_k["repeats"]
    out["per_chunk_including_fixed"] = at_k["median"] / chunks
    out["fixed_cost_removed"] = True
    return out


def incumbent_of(incumbent: dict[str, Any], key: str, value: dict[str, Any] | None) -> Any:
    if "error" in incumbent:
        return h.unavailable(SHEKEL_OLD, incumbent["error"])
    found = incumbent.get(key) or {}
    if value is None:
        return h.unavailable(SHEKEL_OLD, found.get("error", "not measured"))
    if not found.get("calls_recorded"):
        # It did not see the calls: its "overhead" would be that of doing nothing.
        return h.unavailable(SHEKEL_OLD, f"recorded none of the calls ({key})")
    return {
        "name": SHEKEL_OLD,
        "version": incumbent.get("version"),
        "available": True,
        **value,
        "calls_recorded": found.get("calls_recorded"),
        "budget_spent_usd": found.get("budget_spent_usd"),
    }


def recording_problem(raw: dict[str, Any] | None) -> str | None:
    """Why our with-budget side cannot be trusted (it did not record every call), or None."""
    if not raw or "error" in raw or raw.get("calls_recorded") is None:
        return None
    if raw["calls_recorded"] != raw["calls_with_budget"]:
        return f"recorded {raw['calls_recorded']} of {raw['calls_with_budget']} calls"
    if not raw.get("budget_spent_usd") and not raw.get("free"):
        return "recorded $0"
    return None


def overhead_figure(
    key: str,
    label: str,
    ours: dict[str, Any] | None,
    *,
    goal: float | None,
    incumbent: Any = None,
    extra: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    if ours is None:
        return h.figure(key, label, "µs/op", value=None, extra={"error": error or "not measured"})
    fields = {"min": ours["min"], "max": None, "repeats": ours["repeats"], **(extra or {})}
    fields.update({k: v for k, v in ours.items() if k not in ("median", "min", "repeats")})
    fig = h.figure(
        key,
        label,
        "µs/op",
        value=ours["median"],
        goal=None if goal is None else ("<=", goal),
        incumbent=incumbent,
        extra=fields,
    )
    if ours["median"] <= 0:
        fig["ratio_vs_incumbent"] = None  # below the noise: no meaningful ratio
    if error:
        fig["error"] = error
        fig["meets_goal"] = False
    return fig


def sides(raw: dict[str, Any] | None) -> dict[str, Any]:
    if not raw or "error" in raw:
        return {}
    return {
        "without_budget_us": h.stats(raw["without"]),
        "with_budget_us": h.stats(raw["with"]),
        "budget_spent_usd": raw.get("budget_spent_usd"),
        "calls_with_budget": raw.get("calls_with_budget"),
        "calls_recorded": raw.get("calls_recorded"),
    }


def build_figures(
    raw: dict[str, Any], incumbent: dict[str, Any] | None, sizes: dict[str, Any]
) -> list[dict[str, Any]]:
    figures = []
    inc = incumbent or {}
    for key, label in (
        ("openai_call", "openai chat.completions.create (non-streamed): overhead per call"),
        ("anthropic_call", "anthropic messages.create (non-streamed): overhead per call"),
    ):
        figures.append(
            overhead_figure(
                f"{key}_overhead",
                label,
                overhead(raw.get(key)),
                goal=GOAL_CALL_US,
                incumbent=None
                if incumbent is None
                else incumbent_of(inc, key, overhead(inc.get(key))),
                extra={**sides(raw.get(key)), "params": {"calls_per_repeat": sizes["call_n"]}},
                error=(raw.get(key) or {}).get("error") or recording_problem(raw.get(key)),
            )
        )
    for key, (label, _) in providers.WORKLOADS.items():
        figures.append(
            overhead_figure(
                f"{key}_overhead",
                f"{label}: overhead per call",
                overhead(raw.get(key)),
                goal=GOAL_CALL_US,
                extra={**sides(raw.get(key)), "params": {"calls_per_repeat": sizes["call_n"]}},
                error=(raw.get(key) or {}).get("error") or recording_problem(raw.get(key)),
            )
        )
    figures.append(
        overhead_figure(
            "openai_send_overhead",
            "httpx.Client.send of a chat completion, no SDK: overhead per call",
            overhead(raw.get("openai_send")),
            goal=None,
            extra=sides(raw.get("openai_send")),
            error=recording_problem(raw.get("openai_send")),
        )
    )
    figures.append(
        overhead_figure(
            "openai_send_routed_overhead",
            "httpx.Client.send as above, with a shekel_route_call plugin answering None: "
            "overhead per call",
            overhead(raw.get("openai_send_routed")),
            goal=None,
            extra=sides(raw.get("openai_send_routed")),
            error=(raw.get("openai_send_routed") or {}).get("error")
            or recording_problem(raw.get("openai_send_routed")),
        )
    )
    large = raw.get("openai_send_large") or {}
    figures.append(
        overhead_figure(
            "openai_send_large_prompt_overhead",
            f"httpx.Client.send, no SDK, {LARGE_PROMPT_TURNS}-turn conversation "
            f"({large.get('request_bytes', 0) / 1000:.0f} kB): overhead per call",
            overhead(raw.get("openai_send_large")),
            goal=None,
            extra={
                **sides(raw.get("openai_send_large")),
                "request_bytes": large.get("request_bytes"),
            },
            error=recording_problem(raw.get("openai_send_large")),
        )
    )
    figures.append(
        overhead_figure(
            "openai_stream_fixed_overhead",
            "openai stream=True, 1 content chunk: overhead per streamed call",
            overhead(raw.get("openai_stream_1")),
            goal=None,
            incumbent=None
            if incumbent is None
            else incumbent_of(inc, "openai_stream_1", overhead(inc.get("openai_stream_1"))),
            extra=sides(raw.get("openai_stream_1")),
            error=recording_problem(raw.get("openai_stream_1")),
        )
    )
    for chunks in sizes["stream_chunks"]:
        if chunks <= 1:
            continue
        figures.append(
            overhead_figure(
                f"openai_stream_{chunks}_per_chunk",
                f"openai stream=True, {chunks} content chunks: overhead per chunk",
                per_chunk(raw, chunks),
                goal=GOAL_CHUNK_US,
                incumbent=None
                if incumbent is None
                else incumbent_of(inc, f"openai_stream_{chunks}", per_chunk(inc, chunks)),
                extra={**sides(raw.get(f"openai_stream_{chunks}")), "params": {"chunks": chunks}},
                error=recording_problem(raw.get(f"openai_stream_{chunks}")),
            )
        )
    tap_chunks = sizes["tap_chunks"]
    for key, label in (
        ("tap_openai", f"shekel's tap, direct (no SDK): OpenAI chat stream of {tap_chunks} chunks"),
        (
            "tap_anthropic",
            f"shekel's tap, direct (no SDK): Anthropic message stream of {tap_chunks} deltas",
        ),
        ("tally_openai", "ChatTally.events alone, per chunk"),
    ):
        found = raw.get(key) or {"error": "not measured"}
        figures.append(
            h.figure(
                f"{key}_per_chunk",
                label + ("" if key.startswith("tally") else ", per chunk"),
                "µs/op",
                found.get("per_chunk"),
                goal=("<=", GOAL_CHUNK_US) if key == "tap_openai" else None,
                params={"chunks": tap_chunks},
                extra={k: v for k, v in found.items() if k != "per_chunk"},
            )
        )
    return figures


def measure_instructions(
    incumbent_python: Path | None, quick: bool
) -> dict[str, dict[str, dict[str, float] | None]]:
    """Instructions per call (callgrind), ours and shekel 1.2.0's, for each workload."""
    calls = 20 if quick else 50
    workloads = {
        "openai": calls,
        "responses": calls,
        "anthropic": calls,
        "stream:1": calls // 2,
        # The SDK's own cost of a long stream drifts by tens of thousands of instructions
        # between regions: ten streams a region, so that a chunk's figure is not that drift.
        f"stream:{INSTRUCTION_STREAM_CHUNKS}": 4 if quick else 10,
        "message_stream:1": calls // 2,
        f"message_stream:{INSTRUCTION_STREAM_CHUNKS}": 4 if quick else 10,
    }
    pythons = {"ours": sys.executable}
    if incumbent_python is not None:
        pythons["incumbent"] = str(incumbent_python)
    found: dict[str, dict[str, dict[str, float] | None]] = {}
    for side, python in pythons.items():
        found[side] = {}
        # shekel 1.2.0 has no integrations, and no reader of the SDK's events to run alone
        mine = {"outside": calls, **READERS} if side == "ours" else {}
        for name, n in {**workloads, **mine}.items():
            h.log(f"interception: instructions of {name} ({side}), {n} calls under callgrind")
            try:
                found[side][name] = _instructions.count(name, n, python)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                h.log(f"interception: callgrind failed for {name} ({side}): {exc}")
                found[side][name] = None
    return found


READERS = {"reader:chat": 300, "reader:messages": 2000}
"""Events read through the SDK layer's reader, without HTTP or a stream (see
``_instructions._reader``): OpenAI's are built by the SDK too (about 730k instructions each)."""


def _instruction_overheads(counts: dict[str, dict[str, float] | None]) -> dict[str, float | None]:
    def over(name: str) -> float | None:
        found = counts.get(name)
        return None if found is None else found["overhead"]

    def per_chunk(one: float | None, many: float | None) -> float | None:
        return (
            None if one is None or many is None else (many - one) / (INSTRUCTION_STREAM_CHUNKS - 1)
        )

    one, many = over("stream:1"), over(f"stream:{INSTRUCTION_STREAM_CHUNKS}")
    message_one = over("message_stream:1")
    message_many = over(f"message_stream:{INSTRUCTION_STREAM_CHUNKS}")
    return {
        "openai": over("openai"),
        "responses": over("responses"),
        "anthropic": over("anthropic"),
        "outside": over("outside"),
        "stream_fixed": one,
        "chunk": per_chunk(one, many),
        "message_stream_fixed": message_one,
        "message_chunk": per_chunk(message_one, message_many),
        "chunk_reader": over("reader:chat"),
        "message_reader": over("reader:messages"),
    }


def instruction_figures(
    found: dict[str, dict[str, dict[str, float] | None]],
) -> list[dict[str, Any]]:
    ours = _instruction_overheads(found.get("ours", {}))
    theirs = _instruction_overheads(found["incumbent"]) if "incumbent" in found else None
    rows = (
        (
            "openai",
            "openai chat.completions.create (non-streamed): instructions per call",
            GOAL_CALL_INSTRUCTIONS,
        ),
        (
            "responses",
            "openai responses.create (non-streamed): instructions per call",
            None,
        ),
        (
            "anthropic",
            "anthropic messages.create (non-streamed): instructions per call",
            GOAL_CALL_INSTRUCTIONS,
        ),
        (
            "outside",
            "openai chat.completions.create with no budget active, after LangChain and LangGraph "
            "ran in one: instructions per call over the unpatched SDK",
            None,
        ),
        (
            "stream_fixed",
            "openai stream=True, 1 content chunk: instructions per streamed call",
            None,
        ),
        (
            "chunk",
            f"openai stream=True, {INSTRUCTION_STREAM_CHUNKS} content chunks: "
            "instructions per chunk",
            GOAL_CHUNK_INSTRUCTIONS,
        ),
        (
            "message_stream_fixed",
            "anthropic messages.create(stream=True), 1 text delta: instructions per streamed call",
            None,
        ),
        (
            "message_chunk",
            f"anthropic messages.create(stream=True), {INSTRUCTION_STREAM_CHUNKS} text deltas: "
            "instructions per delta",
            GOAL_CHUNK_INSTRUCTIONS,
        ),
        (
            "chunk_reader",
            "openai chat chunks (padded as OpenAI sends them) through the SDK layer's reader, "
            "then built by the SDK, against the chunks of a request that asks for no usage, "
            "no HTTP: instructions per chunk (a figure the SDK's own drift does not move)",
            GOAL_CHUNK_INSTRUCTIONS,
        ),
        (
            "message_reader",
            "anthropic text deltas through the SDK layer's reader alone, no SDK, no HTTP: "
            "instructions per delta",
            GOAL_CHUNK_INSTRUCTIONS,
        ),
    )
    figures = []
    for key, label, goal in rows:
        incumbent = None
        if theirs is not None and key == "responses":
            # Checked in its venv: a budget around responses.create stays at $0, no call counted.
            incumbent = h.unavailable(SHEKEL_OLD, "records no Responses API call")
        elif theirs is not None and key in ("chunk_reader", "message_reader"):
            incumbent = h.unavailable(SHEKEL_OLD, "reads the HTTP bytes: no reader of events")
        elif theirs is not None and key != "outside":
            incumbent = (
                {"name": SHEKEL_OLD, "available": True, "median": theirs[key]}
                if theirs[key] is not None
                else h.unavailable(SHEKEL_OLD, "callgrind could not count it")
            )
        figures.append(
            h.figure(
                f"{key}_instructions",
                label,
                "instr/op",
                value=ours[key],
                goal=None if goal is None else ("<=", goal),
                incumbent=incumbent,
                extra={"counts": found.get("ours")} if key == "openai" else None,
            )
        )
    return figures


def baseline_figure(
    baseline: dict[str, Any], theirs: dict[str, Any] | None, fig: dict[str, Any]
) -> dict[str, Any]:
    """``fig`` as measured on the baseline (``theirs``: the same figure built from its raw)."""
    if "error" in baseline:
        return {"available": False, "reason": baseline["error"]}
    if theirs is None or theirs.get("median") is None:
        return {"available": False, "reason": "not measured"}
    out = {
        "ref": baseline["ref"],
        "commit": baseline["commit"],
        "available": True,
        "median": theirs["median"],
        "min": theirs.get("min"),
    }
    if fig.get("median") and fig["median"] > 0 and theirs["median"] > 0:
        out["ratio_vs_baseline"] = theirs["median"] / fig["median"]
    else:
        out["ratio_vs_baseline"] = None
    return out


def main(argv: list[str] | None = None) -> None:
    args, sizes = h.suite_args(argv, __doc__.splitlines()[0], sizes_for)

    if args.raw:
        h.emit({**measure_ours(sizes), "sizes": sizes})
        return

    runners = {"ours": ours_runner(None, "shekel (working tree)")}
    incumbent_error = None
    if not args.no_incumbents:
        run_incumbent, why = incumbent_runner()
        if run_incumbent is None:
            incumbent_error = why
        else:
            runners["incumbent"] = run_incumbent
    with tempfile.TemporaryDirectory(prefix="shekel-baseline-") as tmp:
        baseline_error, commit = None, None
        if args.baseline:
            try:
                src, commit = baseline_source(args.baseline, tmp)
                runners["baseline"] = ours_runner(src, f"baseline {args.baseline!r}")
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", None) or str(exc)
                if isinstance(detail, bytes):
                    detail = detail.decode(errors="replace")
                baseline_error = f"baseline {args.baseline!r} failed: {detail.strip()[-500:]}"
        measured = measure_in_rounds(runners, sizes)
    raw = measured["ours"]
    if "error" in raw:
        raise SystemExit(f"interception: {raw['error']}")
    incumbent = None
    if not args.no_incumbents:
        incumbent = measured.get("incumbent") or {"error": incumbent_error or "not measured"}
    baseline = None
    if args.baseline:
        baseline = measured.get("baseline") or {"error": baseline_error or "not measured"}
        baseline.update(ref=args.baseline, commit=commit)

    import shekel

    figures = build_figures(raw, incumbent, sizes)
    incumbent_python = None if args.no_incumbents else ensure_incumbent_env()[0]
    figures += instruction_figures(measure_instructions(incumbent_python, args.quick))
    if baseline is not None:
        before = {}
        if "error" not in baseline:
            before = {f["key"]: f for f in build_figures(baseline, None, sizes)}
        for fig in figures:
            fig["baseline"] = baseline_figure(baseline, before.get(fig["key"]), fig)
    document: dict[str, Any] = {
        "suite": "interception",
        "shekel_version": shekel.__version__,
        "sdk_versions": {name: _version(name) for name in SDK_PACKAGES},
        "quick": args.quick,
        "sizes": sizes,
        "interception_installed_while_no_budget": raw.get("patched_without_budget"),
        "figures": figures,
        "notes": NOTES,
    }
    if incumbent is not None and "error" in incumbent:
        document["incumbents_unavailable"] = incumbent["error"]
    h.emit(document)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
