"""Shared timing helpers and the JSON shape every ``bench_*.py`` script prints.

Standard library only: the incumbent runner imports this module inside a throwaway virtual
environment that has no shekel-workspace packages in it.

Contract of a benchmark script (``benchmarks/bench_<suite>.py``), so ``run_all.py`` can merge it:

* run as ``python benchmarks/bench_<suite>.py [--quick]``;
* print exactly one JSON document to stdout: ``{"suite": "<suite>", "figures": [figure, ...]}``
  (progress and logs go to stderr);
* each figure is built with :func:`figure` (see its docstring for the fields).

Timing: ``time.perf_counter_ns`` around a loop of ``n`` operations, repeated; the garbage
collector stays enabled (it is part of the real cost of allocating records). We report the
median and the min (and max) over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# -- timing ---------------------------------------------------------------------------------


def time_per_op_us(
    run: Callable[[int], object], n: int, repeats: int, warmup: int | None = None
) -> list[float]:
    """Microseconds per operation of ``run(n)`` (which performs ``n`` operations), per repeat."""
    run(warmup if warmup is not None else max(n // 10, 1))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        run(n)
        samples.append((time.perf_counter_ns() - t0) / n / 1_000)
    return samples


def ops_per_second(
    make_worker: Callable[[], Callable[[int], object]],
    threads: int,
    n_per_thread: int,
    repeats: int,
) -> list[float]:
    """Aggregate operations per second of ``threads`` threads, each running ``worker(n)``.

    All threads wait on a barrier; the clock runs from its release until the last one ends.
    ``make_worker`` is called once per thread (in the main thread) before the clock starts.
    """
    make_worker()(max(n_per_thread // 10, 1))  # warm-up
    samples = []
    for _ in range(repeats):
        workers = [make_worker() for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []

        def body(
            worker: Callable[[int], object],
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                worker(n_per_thread)
            except BaseException as exc:  # reported after the run
                errors.append(exc)

        pool = [threading.Thread(target=body, args=(w,)) for w in workers]
        for t in pool:
            t.start()
        barrier.wait()
        t0 = time.perf_counter_ns()
        for t in pool:
            t.join()
        elapsed = time.perf_counter_ns() - t0
        if errors:
            raise errors[0]
        samples.append(threads * n_per_thread / (elapsed / 1e9))
    return samples


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


# -- figures ----------------------------------------------------------------------------------

LOWER_IS_BETTER = ("µs/op", "ms/op", "MB", "instr/op")


def figure(
    key: str,
    label: str,
    unit: str,
    samples: list[float] | None = None,
    *,
    value: float | None = None,
    goal: tuple[str, float] | None = None,
    incumbent: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One benchmark figure.

    Fields: ``key``, ``label``, ``unit`` (``µs/op``, ``ops/s``, ``MB`` or ``instr/op``),
    ``median``, ``min``, ``max`` and ``repeats`` (or just ``median`` for a single measurement
    given as ``value``),
    ``goal`` (``{"op": "<=", "value": 3.0}`` or null) and ``meets_goal`` (judged on the
    median), ``incumbent`` (``{"name", "available", "median", "min", ...}`` or null; when the
    incumbent could not be measured, ``available`` is false with a ``reason``) and
    ``ratio_vs_incumbent``: how many times better shekel is (incumbent time / shekel time, or
    shekel throughput / incumbent throughput; > 1 means shekel is faster), on the medians.
    """
    out: dict[str, Any] = {"key": key, "label": label, "unit": unit}
    if samples is not None:
        out.update(stats(samples))
        out["repeats"] = len(samples)
    else:
        out["median"] = value
    if params:
        out["params"] = params
    out["goal"] = None if goal is None else {"op": goal[0], "value": goal[1]}
    out["meets_goal"] = None if goal is None else _meets(out["median"], goal)
    out["incumbent"] = incumbent
    out["ratio_vs_incumbent"] = ratio(out, incumbent)
    if extra:
        out.update(extra)
    return out


def _meets(median: float | None, goal: tuple[str, float]) -> bool | None:
    if median is None:
        return None
    op, target = goal
    if op == "<=" and median < 0:
        return None  # a cost below zero is the noise of two medians: neither met nor missed
    return median <= target if op == "<=" else median >= target


def ratio(ours: dict[str, Any], incumbent: dict[str, Any] | None) -> float | None:
    if not incumbent or not incumbent.get("available") or not ours.get("median"):
        return None
    theirs = incumbent.get("median")
    if not theirs:
        return None
    if ours["unit"] in LOWER_IS_BETTER:
        return float(theirs) / float(ours["median"])
    return float(ours["median"]) / float(theirs)


def unavailable(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "available": False, "reason": reason}


def emit(document: dict[str, Any]) -> None:
    """Print the suite's JSON document on stdout (the only thing a bench script prints there)."""
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- workloads shared by shekel and the incumbents ---------------------------------------------

POOL_RECORD = {"tokens": 100, "usd": 0.0003}
POOL_RESERVE = {"tokens": 200, "usd": 0.001}
POOL_COMMIT = {"tokens": 150, "usd": 0.0004}
POOL_TOKEN_CAP = 10**15
POOL_USD_CAP = 1e9
THREAD_COUNTS = (1, 8)


def ensure_venv(venv: Path, specs: list[str]) -> tuple[Path | None, str]:
    """A throwaway venv's python with ``specs`` installed, created (or reused when the specs and
    the Python version are unchanged) with ``uv``; or ``None`` and the reason it failed."""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = venv / ".shekel-bench-specs"
    wanted = " ".join(specs) + f" | {sys.version.split()[0]}"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python, "reused"
    try:
        subprocess.run(
            [uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python), *specs],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return None, f"could not install {', '.join(specs)}: {detail.strip()[-500:]}"
    marker.write_text(wanted)
    return python, "installed"


def suite_args(
    argv: list[str] | None, description: str, sizes_for: Callable[[bool], dict[str, Any]]
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The options every suite understands, and its loop sizes (``--quick`` or ``--sizes``).
    Unknown options are ignored: ``run_all.py`` passes every option to every suite."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-incumbents", action="store_true")
    parser.add_argument("--baseline", metavar="REF")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    sizes = json.loads(args.sizes) if args.sizes else sizes_for(args.quick)
    warnings.simplefilter("ignore")  # e.g. an unknown-model warning must not pollute stdout
    return args, sizes


def pool_workloads(
    record: Callable[..., Any], reserve: Callable[..., Any]
) -> tuple[Callable[[], Callable[[int], None]], Callable[[], Callable[[int], None]]]:
    """Worker factories for the shared-pool figures, the same for every library measured:
    ``record(tokens=, usd=)`` and ``reserve(tokens=, usd=).commit(tokens=, usd=)`` with the
    amounts in ``POOL_RECORD`` / ``POOL_RESERVE`` / ``POOL_COMMIT``."""
    rec, res, com = POOL_RECORD, POOL_RESERVE, POOL_COMMIT

    def make_record() -> Callable[[int], None]:
        def worker(n: int, tokens: int = rec["tokens"], usd: float = rec["usd"]) -> None:
            for _ in range(n):
                record(tokens=tokens, usd=usd)

        return worker

    def make_reserve_commit() -> Callable[[int], None]:
        def worker(
            n: int,
            tokens: int = res["tokens"],
            usd: float = res["usd"],
            used_tokens: int = com["tokens"],
            used_usd: float = com["usd"],
        ) -> None:
            for _ in range(n):
                reserve(tokens=tokens, usd=usd).commit(tokens=used_tokens, usd=used_usd)

        return worker

    return make_record, make_reserve_commit
