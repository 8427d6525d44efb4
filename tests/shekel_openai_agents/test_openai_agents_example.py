"""examples/openai_agents_handoff.py runs offline and prints the breakdown."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "openai_agents_handoff.py"


def test_the_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == [
        "answered: How do I cap agent spend? ($0.03325 so far)",
        "stopped: Researcher (support.Researcher)",
        "requests sent: 5",
        "support: $0.05875 / no limit (direct: $0.00)",
        "  Triage: $0.0155 / no limit (direct: $0.0155)",
        "  Researcher: $0.04325 / $0.50, 3 / 3 LLM calls (direct: $0.04325)",
    ]
