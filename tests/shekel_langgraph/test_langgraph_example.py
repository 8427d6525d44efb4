"""``examples/langgraph_research.py`` runs offline as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "langgraph_research.py"


def test_the_research_example_pauses_at_its_cap_and_resumes() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "Paused at node 'synthesize' (before it started): budget 'research' used $0.0540 of $0.0540"
    )
    assert "Raising the graph's limit to $0.10 and resuming." in lines
    assert "Requests sent: 7, total $0.0945" in lines
    final_tree = lines[lines.index("Requests sent: 7, total $0.0945") + 1 :]
    assert final_tree[0] == "research: $0.0945 / $0.10 (direct: $0.00)"
    assert [line.split(":")[0].strip() for line in final_tree[1:]] == [
        "plan",
        "search",
        "synthesize",
        "write",
    ]
