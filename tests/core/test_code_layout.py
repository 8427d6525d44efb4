"""The core's shape that issue 21 asked for, kept: no module over 500 lines, and other modules
reach into a ``Budget``'s private fields in few places (they take its ``Node`` or ``Chain``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "packages" / "shekel" / "src" / "shekel"


def test_no_core_module_is_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(CORE)): len(path.read_text().splitlines())
        for path in CORE.rglob("*.py")
    }
    assert len(sizes) > 50
    assert {name: n for name, n in sizes.items() if n >= 500} == {}


def test_other_modules_read_budget_private_fields_in_few_places() -> None:
    spec = importlib.util.spec_from_file_location(
        "private_reads", ROOT / "benchmarks" / "private_reads.py"
    )
    assert spec is not None
    assert spec.loader is not None
    counter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(counter)
    fields = counter.budget_fields((CORE / "_budget.py").read_text())
    assert {"_c", "_node"} <= fields
    places = counter.count_reads(fields)
    # 14: ``_deprecated`` reads ``_node`` once, for the moved members' descriptors, and the
    # integration kit ``_c`` once, for ``refuses_unknown_models``
    assert sum(places.values()) <= 14, places
