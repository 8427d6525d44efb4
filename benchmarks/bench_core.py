"""Core benchmarks: recording, entering budgets, BudgetPool throughput and memory.

Run ``python benchmarks/bench_core.py`` (or ``nox -s bench`` for every suite). Prints one JSON
document (see ``_harness.py``). Options:

``--quick``          smaller loops and fewer repeats (a smoke run, not for publishing);
``--no-incumbents``  skip shekel 1.2.0 and token-budget-py (no network needed);
``--baseline REF``   also measure the shekel source of git ``REF`` (e.g. ``HEAD``) in a
                     subprocess, side by side with the working tree, for before/after figures;
``--raw``            internal: print only our raw samples (used for ``--baseline``).

The incumbents are installed with ``uv`` into a throwaway virtual environment (under ``.nox/``,
reused between runs; ``SHEKEL_BENCH_VENV`` overrides the place) because shekel 1.2.0's import
name clashes with ours. If that fails they are reported as unavailable, never as a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _harness as h

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
INCUMBENT_SPECS = ("shekel==1.2.0", "token-budget-py==0.1.0")
SHEKEL_OLD = "shekel 1.2.0 (PyPI)"
TOKEN_BUDGET = "token-budget-py 0.1.0"

GOAL_RECORD_US = 3.0
GOAL_ENTER_EXIT_US = 5.0
GOAL_POOL_RECORD_OPS = 1_500_000.0
GOAL_MEMORY_MB = 5.0  # "a few MB at most" after 1,000,000 records

MEMORY_RECORDS = 1_000_000

NOTES = [
    "- *3 levels deep*: `root` > `mid` > `leaf`, each with a USD limit, recording on `leaf`;"
    " every record reaches all three accounts at once.",
    "- *Priced*: `gpt-4o-mini` with token counts, priced from the cached genai-prices rate.",
    "- *Incumbents* run in a throwaway virtual environment with the same Python: shekel 1.2.0"
    " (enter + exit of a reused `budget(max_usd=..., name=...)`) and token-budget-py 0.1.0"
    " (`record(tokens=, usd=)`, `try_reserve(...).commit(...)`); shekel's pool uses"
    " `reserve(...).commit(...)`.",
    "- Throughput with 8 threads is the total of all threads (one GIL: it cannot exceed one"
    " thread's). A pool's critical section in shekel has no call and no loop, so CPython"
    " never switches threads while one holds the lock and 8 threads run about as fast as one;"
    " threads of token-budget-py queue on its lock. The same holds for a budget 3 levels deep"
    " shared by threads (as LangGraph branches share their graph's budget): the ledger's"
    " critical sections for chains of up to three accounts are straight-line code, entered"
    " with `with` (a call such as `lock.acquire()` is a point where CPython may hand the GIL"
    " over with the lock held).",
    "- token-budget-py adds floats and only checks `< 0` (1,000,000 × $0.0001 sums to"
    " $100.00000000219612 there); shekel validates types, keeps integer nano-dollars"
    " (exactly $100) and goes through the ledger interface: the single-thread gap. Measured"
    " alone, two parts of it are deliberate: sums of nano-dollars pass 2**30 and take CPython's"
    " slower multi-digit integer path (about 90 ns more per record than adding floats), and"
    " `with lock` costs about 75 ns more than `acquire()`/`release()` but keeps 8 threads"
    " from queueing on the lock (the rows above).",
    "- Memory: tracemalloc, from before the budget is created to after the last record.",
    "- Timing with `time.perf_counter_ns`, garbage collector enabled, after a warm-up.",
]


def sizes_for(quick: bool) -> dict[str, int]:
    if quick:
        return {
            "repeats": 3,
            "record_n": 10_000,
            "enter_n": 10_000,
            "pool_n": 40_000,
            "incumbent_enter_n": 100,
            "memory_n": 100_000,
        }
    return {
        "repeats": 7,
        "record_n": 100_000,
        "enter_n": 100_000,
        "pool_n": 400_000,
        "incumbent_enter_n": 500,
        "memory_n": MEMORY_RECORDS,
    }


# -- our measurements -------------------------------------------------------------------------


def measure_ours(sizes: dict[str, int]) -> dict[str, Any]:
    """Raw samples of every figure, keyed like the figures."""
    import shekel

    repeats = sizes["repeats"]
    raw: dict[str, Any] = {}

    # Record into the innermost of three nested budgets (depths 0, 1 and 2): every record
    # reaches all three accounts at once.
    with (
        shekel.budget(max_usd=1e6, name="root"),
        shekel.budget(max_usd=1e6, name="mid"),
        shekel.budget(max_usd=1e6, name="leaf") as leaf,
    ):
        record = leaf.record

        def record_usd(n: int) -> None:
            for _ in range(n):
                record(usd=0.0001, tokens=150)

        def record_priced(n: int) -> None:
            for _ in range(n):
                record(model="gpt-4o-mini", input_tokens=1000, output_tokens=200)

        raw["record_depth3"] = h.time_per_op_us(record_usd, sizes["record_n"], repeats)
        raw["record_depth3_priced"] = h.time_per_op_us(record_priced, sizes["record_n"], repeats)

        # Threads sharing the nested budget, as LangGraph branches or a thread pool do.
        def make_record() -> Callable[[int], None]:
            return record_usd

        def make_reserve_commit() -> Callable[[int], None]:
            reserve = leaf.reserve

            def worker(n: int) -> None:
                for _ in range(n):
                    reserve(usd=0.001, tokens=200).commit(usd=0.0001, tokens=150)

            return worker

        for threads in h.THREAD_COUNTS:
            n = sizes["pool_n"] // threads
            raw[f"record_depth3_{threads}t"] = h.ops_per_second(make_record, threads, n, repeats)
            raw[f"reserve_commit_depth3_{threads}t"] = h.ops_per_second(
                make_reserve_commit, threads, n, repeats
            )

    # The same with warn_at on every level: each record then also reads every account of the
    # chain to check the warning threshold.
    with (
        shekel.budget(max_usd=1e6, name="root", warn_at=0.8),
        shekel.budget(max_usd=1e6, name="mid", warn_at=0.8),
        shekel.budget(max_usd=1e6, name="leaf", warn_at=0.8) as leaf,
    ):
        record = leaf.record
        raw["record_depth3_warn"] = h.time_per_op_us(record_usd, sizes["record_n"], repeats)

    reused = shekel.budget(max_usd=10.0, name="reused")

    def enter_exit(n: int) -> None:
        for _ in range(n):
            with reused:
                pass

    raw["enter_exit_reused"] = h.time_per_op_us(enter_exit, sizes["enter_n"], repeats)

    parent = shekel.budget(max_usd=10.0, name="parent")
    child = shekel.budget(max_usd=5.0, name="child")

    def enter_exit_child(n: int) -> None:
        for _ in range(n):
            with child:
                pass

    with parent:
        raw["enter_exit_nested"] = h.time_per_op_us(enter_exit_child, sizes["enter_n"], repeats)

    pool = shekel.BudgetPool(token_cap=h.POOL_TOKEN_CAP, usd_cap=h.POOL_USD_CAP)
    make_record, make_reserve_commit = h.pool_workloads(pool.record, pool.reserve)

    for threads in h.THREAD_COUNTS:
        n = sizes["pool_n"] // threads
        raw[f"pool_record_{threads}t"] = h.ops_per_second(make_record, threads, n, repeats)
        raw[f"pool_reserve_commit_{threads}t"] = h.ops_per_second(
            make_reserve_commit, threads, n, repeats
        )

    raw.update(measure_memory(sizes["memory_n"]))
    return raw


def measure_memory(records: int) -> dict[str, Any]:
    """tracemalloc current and peak (MB) after ``records`` records into one fresh budget."""
    import shekel

    shekel.budget(name="warm").record(usd=0.0001, tokens=150, model="gpt-4o-mini")
    tracemalloc.start()
    try:
        b = shekel.budget(max_usd=1e6, name="memory")
        record = b.record
        for _ in range(records):
            record(usd=0.0001, tokens=150, model="gpt-4o-mini")
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = records / 10_000
    return {
        "memory_current": current / 1e6,
        "memory_peak": peak / 1e6,
        "memory_exact_total": b.spent == expected,
        "memory_spent": b.spent,
        "memory_records": records,
    }


# -- incumbents ---------------------------------------------------------------------------------


def incumbent_venv() -> Path:
    override = os.environ.get("SHEKEL_BENCH_VENV")
    return Path(override) if override else ROOT / ".nox" / "_bench_incumbents"


def ensure_incumbent_env() -> tuple[Path | None, str]:
    """The incumbents' throwaway venv's python, or ``None`` and why not."""
    return h.ensure_venv(incumbent_venv(), list(INCUMBENT_SPECS))


def measure_incumbents(sizes: dict[str, int]) -> dict[str, Any]:
    python, how = ensure_incumbent_env()
    if python is None:
        return {"error": how}
    h.log(f"incumbents: venv {how} at {python.parent.parent}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    args = {
        "repeats": sizes["repeats"],
        "enter_n": sizes["incumbent_enter_n"],
        "pool_n": sizes["pool_n"],
    }
    try:
        done = subprocess.run(
            [str(python), "-s", str(HERE / "_incumbents.py"), json.dumps(args)],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
            env=env,
            cwd=str(HERE),
        )
        result: dict[str, Any] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return {"error": f"incumbent run failed: {detail.strip()[-500:]}"}
    return result


def incumbent_figure(
    incumbents: dict[str, Any], package: str, key: str, name: str
) -> dict[str, Any]:
    if "error" in incumbents:
        return h.unavailable(name, incumbents["error"])
    group = incumbents.get(package, {})
    if "error" in group:
        return h.unavailable(name, group["error"])
    found = group.get(key)
    if not found or "error" in found:
        return h.unavailable(name, (found or {}).get("error", "not measured"))
    return {"name": name, "version": group.get("version"), "available": True, **found}


# -- baseline (another git revision of shekel) --------------------------------------------------


def measure_baseline(ref: str, sizes: dict[str, int]) -> dict[str, Any]:
    """Run ``--raw`` against the shekel source of git ``ref`` (extracted to a temp dir) or of
    ``ref`` taken as a directory holding the ``shekel`` package (e.g. a copy of ``src``)."""
    with tempfile.TemporaryDirectory(prefix="shekel-baseline-") as tmp:
        try:
            if (Path(ref) / "shekel" / "__init__.py").is_file():
                return _run_raw(Path(ref).resolve(), ref, ref, sizes)
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
            return _run_raw(Path(tmp) / "packages" / "shekel" / "src", ref, commit, sizes)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            return {"error": f"baseline {ref!r} failed: {detail.strip()[-500:]}"}


def _run_raw(src: Path, ref: str, commit: str, sizes: dict[str, int]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--raw", "--sizes", json.dumps(sizes)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    result["ref"] = ref
    result["commit"] = commit
    return result


# -- assembling the document --------------------------------------------------------------------


def build_figures(
    raw: dict[str, Any], incumbents: dict[str, Any] | None, baseline: dict[str, Any] | None
) -> list[dict[str, Any]]:
    def inc(package: str, key: str, name: str) -> dict[str, Any] | None:
        if incumbents is None:
            return None
        return incumbent_figure(incumbents, package, key, name)

    figures = [
        h.figure(
            "record_depth3",
            "Budget.record(usd=, tokens=) into a budget 3 levels deep",
            "µs/op",
            raw["record_depth3"],
            goal=("<=", GOAL_RECORD_US),
        ),
        h.figure(
            "record_depth3_priced",
            "Budget.record(model=, input_tokens=, output_tokens=) 3 levels deep (priced)",
            "µs/op",
            raw["record_depth3_priced"],
            goal=("<=", GOAL_RECORD_US),
        ),
        h.figure(
            "record_depth3_warn",
            "Budget.record(usd=, tokens=) 3 levels deep, warn_at=0.8 on every level",
            "µs/op",
            raw["record_depth3_warn"],
        ),
        *[
            h.figure(
                f"{key}_depth3_{threads}t",
                f"{label} 3 levels deep, {threads} {'thread' if threads == 1 else 'threads'}",
                "ops/s",
                raw[f"{key}_depth3_{threads}t"],
            )
            for key, label in (
                ("record", "Budget.record(usd=, tokens=) into a budget"),
                ("reserve_commit", "Budget.reserve + commit on a budget"),
            )
            for threads in h.THREAD_COUNTS
        ],
        h.figure(
            "enter_exit_reused",
            "enter + exit of a reused budget",
            "µs/op",
            raw["enter_exit_reused"],
            goal=("<=", GOAL_ENTER_EXIT_US),
            incumbent=inc("shekel_1_2_0", "enter_exit_reused", SHEKEL_OLD),
        ),
        h.figure(
            "enter_exit_nested",
            "enter + exit of a reused child inside an active parent",
            "µs/op",
            raw["enter_exit_nested"],
            goal=("<=", GOAL_ENTER_EXIT_US),
        ),
    ]
    for threads in h.THREAD_COUNTS:
        plural = "thread" if threads == 1 else "threads"
        figures.append(
            h.figure(
                f"pool_record_{threads}t",
                f"BudgetPool.record, {threads} {plural}",
                "ops/s",
                raw[f"pool_record_{threads}t"],
                goal=(">=", GOAL_POOL_RECORD_OPS) if threads == 1 else None,
                incumbent=inc("token_budget", f"pool_record_{threads}t", TOKEN_BUDGET),
            )
        )
        figures.append(
            h.figure(
                f"pool_reserve_commit_{threads}t",
                f"BudgetPool.reserve + commit, {threads} {plural}",
                "ops/s",
                raw[f"pool_reserve_commit_{threads}t"],
                incumbent=inc("token_budget", f"pool_reserve_commit_{threads}t", TOKEN_BUDGET),
            )
        )
    records = raw["memory_records"]
    memory_extra = {"exact_total": raw["memory_exact_total"], "spent_usd": raw["memory_spent"]}
    figures.append(
        h.figure(
            "memory_current",
            f"memory after {records:,} records into one budget (tracemalloc current)",
            "MB",
            value=raw["memory_current"],
            goal=("<=", GOAL_MEMORY_MB),
            extra=memory_extra,
        )
    )
    figures.append(
        h.figure(
            "memory_peak",
            f"memory after {records:,} records into one budget (tracemalloc peak)",
            "MB",
            value=raw["memory_peak"],
            extra=memory_extra,
        )
    )
    if baseline is not None:
        for fig in figures:
            fig["baseline"] = baseline_figure(baseline, fig)
    return figures


def baseline_figure(baseline: dict[str, Any], fig: dict[str, Any]) -> dict[str, Any]:
    if "error" in baseline:
        return {"available": False, "reason": baseline["error"]}
    samples = baseline.get(fig["key"])
    if samples is None:
        return {"available": False, "reason": "not measured"}
    out: dict[str, Any] = {"ref": baseline["ref"], "commit": baseline["commit"], "available": True}
    out.update(h.stats(samples) if isinstance(samples, list) else {"median": samples})
    ratio = h.ratio(fig, {"available": True, "median": out["median"]})
    out["ratio_vs_baseline"] = ratio
    return out


def main(argv: list[str] | None = None) -> None:
    args, sizes = h.suite_args(argv, __doc__.splitlines()[0], sizes_for)

    if args.raw:
        h.emit(measure_ours(sizes))
        return

    baseline = None
    if args.baseline:
        h.log(f"core: measuring baseline {args.baseline} ...")
        baseline = measure_baseline(args.baseline, sizes)
    h.log("core: measuring shekel (working tree) ...")
    raw = measure_ours(sizes)
    incumbents = None
    if not args.no_incumbents:
        h.log("core: measuring incumbents ...")
        incumbents = measure_incumbents(sizes)

    import shekel

    document: dict[str, Any] = {
        "suite": "core",
        "shekel_version": shekel.__version__,
        "quick": args.quick,
        "sizes": sizes,
        "figures": build_figures(raw, incumbents, baseline),
        "notes": NOTES,
    }
    if incumbents is not None and "error" in incumbents:
        document["incumbents_unavailable"] = incumbents["error"]
    h.emit(document)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
