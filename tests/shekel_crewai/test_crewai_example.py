"""examples/crewai_research_crew.py runs offline and prints the breakdown."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "crewai_research_crew.py"


def test_the_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "first kickoff: 3 requests, $0.02325" in out
    assert "second kickoff stopped: Research Analyst (nightly.crew.Research Analyst)" in out
    assert "requests sent: 3" in out
    # The tree's four lines (crewai 1.15.19 may print a notice of its own at any time).
    tree = out[out.index("nightly: ") :].splitlines()[:4]
    assert tree == [
        "nightly: $0.02325 / no limit (direct: $0.00)",
        "  crew: $0.02325 / $0.10 (direct: $0.00)",
        "    Research Analyst: $0.0155 / $0.05, 2 / 2 LLM calls (direct: $0.0155)",
        "    Content Writer: $0.00775 / $0.02 (direct: $0.00775)",
    ]
