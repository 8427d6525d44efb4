"""Count the places where core modules other than ``_budget.py`` reach into a ``Budget``'s
private fields (issue 21: the goal is about 10). Prints JSON: the total and the count per module
and per field.

A field is one that ``Budget`` assigns as ``self._name`` or defines as a ``_name`` method; a
place is an attribute access ``x._name`` in another module where ``x`` is not ``self`` (other
classes' own fields of the same name are not counted). Run: ``uv run python
benchmarks/private_reads.py``.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "packages" / "shekel" / "src" / "shekel"


def budget_fields(source: str) -> set[str]:
    tree = ast.parse(source)
    fields: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Budget":
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                    and inner.attr.startswith("_")
                    and not inner.attr.startswith("__")
                    and isinstance(inner.ctx, ast.Store)
                ):
                    fields.add(inner.attr)
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and item.name.startswith("_")
                    and not item.name.startswith("__")
                ):
                    fields.add(item.name)
    return fields


def count_reads(fields: set[str]) -> Counter[str]:
    """Places per ``module:field`` (the module relative to the core) where a module reads
    ``fields`` of an object other than ``self`` or ``cls``."""
    by_module: Counter[str] = Counter()
    for path in sorted(CORE.rglob("*.py")):
        if path.name == "_budget.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in fields
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                by_module[f"{path.relative_to(CORE)}:{node.attr}"] += 1
    return by_module


def main() -> int:
    fields = budget_fields((CORE / "_budget.py").read_text())
    places = count_reads(fields)
    by_module: Counter[str] = Counter()
    by_field: Counter[str] = Counter()
    for place, n in places.items():
        module, field = place.rsplit(":", 1)
        by_module[module] += n
        by_field[field] += n
    report = {
        "total": sum(by_module.values()),
        "by_module": dict(by_module.most_common()),
        "by_field": dict(by_field.most_common()),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
