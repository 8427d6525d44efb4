"""examples/llamaindex_rag.py runs offline as its docstring says, and shows every step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "llamaindex_rag.py"


def test_the_rag_example_runs_and_prints_the_tree() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "stopped: budget 'rag.query.synthesize' has no room left" in out
    assert "the request was not sent" in out
    assert "15 requests reached the provider" in out
    lines = [line.split(":")[0] for line in out.splitlines() if line.startswith(" ")]
    assert lines == [
        "  query",
        "    retrieve",
        "    synthesize",
        "  chat",
        "    retrieve",
        "    synthesize",
    ]
    assert "rag: $0.0574 / $0.50" in out
