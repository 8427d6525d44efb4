"""``examples/langchain_summarize.py`` runs offline as its docstring says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langchain_summarize.py"


def test_the_summarize_example_stops_one_step_and_prints_the_tree() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=120
    )
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "summarized 8 sections; 2 refused before sending by 'report.summarize' "
        "(its llm_calls limit)"
    )
    assert lines[1] == "10 requests reached the provider"
    tree = lines[lines.index("") + 1 :]
    assert [line.split(":")[0].strip() for line in tree] == [
        "report",
        "summarize",
        "overview",
        "translate",
    ]
    assert tree[1].startswith("  summarize: $0.046 / $0.05")  # not shown as exhausted
    assert done.stderr == ""
