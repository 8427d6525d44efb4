"""Measure the incumbents; run by ``bench_core.py`` inside a throwaway virtual environment.

That environment holds ``shekel==1.2.0`` (whose import name clashes with ours) and
``token-budget-py==0.1.0``. Prints one JSON document: ``{"shekel_1_2_0": {...},
"token_budget": {...}}``, each figure as ``{"median", "min", "max", "repeats"}`` or
``{"error": "..."}``. Argument: a JSON object with the sizes (``n``, ``repeats``, ...).
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import _harness as h


def _guard(measure: Callable[[], list[float]]) -> dict[str, Any]:
    try:
        samples = measure()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {**h.stats(samples), "repeats": len(samples)}


def shekel_1_2_0(sizes: dict[str, int]) -> dict[str, Any]:
    import importlib.metadata

    import shekel

    out: dict[str, Any] = {"version": importlib.metadata.version("shekel")}
    b = shekel.budget(max_usd=1000.0, name="bench")

    def enter_exit(n: int) -> None:
        for _ in range(n):
            with b:
                pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["enter_exit_reused"] = _guard(
            lambda: h.time_per_op_us(enter_exit, sizes["enter_n"], sizes["repeats"])
        )
    return out


def token_budget(sizes: dict[str, int]) -> dict[str, Any]:
    import importlib.metadata

    from token_budget import BudgetPool

    out: dict[str, Any] = {"version": importlib.metadata.version("token-budget-py")}
    pool = BudgetPool(token_cap=h.POOL_TOKEN_CAP, usd_cap=h.POOL_USD_CAP)
    make_record, make_reserve_commit = h.pool_workloads(pool.record, pool.try_reserve)

    for threads in h.THREAD_COUNTS:
        out[f"pool_record_{threads}t"] = _guard(
            lambda t=threads: h.ops_per_second(
                make_record, t, sizes["pool_n"] // t, sizes["repeats"]
            )
        )
        out[f"pool_reserve_commit_{threads}t"] = _guard(
            lambda t=threads: h.ops_per_second(
                make_reserve_commit, t, sizes["pool_n"] // t, sizes["repeats"]
            )
        )
    return out


def main() -> None:
    sizes = json.loads(sys.argv[1])
    result: dict[str, Any] = {}
    for name, measure in (("shekel_1_2_0", shekel_1_2_0), ("token_budget", token_budget)):
        try:
            result[name] = measure(sizes)
        except Exception as exc:  # e.g. the package is missing
            traceback.print_exc(file=sys.stderr)
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
