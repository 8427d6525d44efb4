"""``examples/otel_console.py`` runs offline and prints what a collector would receive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "otel_console.py"


def test_the_console_example_prints_spans_and_metrics() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "span plan: {'shekel.cost_usd': 0.00069, 'shekel.calls': 1, "
        "'shekel.budget.path': 'agent.plan'}"
    )
    drafts = [line for line in lines if line.startswith("span anthropic.messages.create: {")]
    assert len(drafts) == 6
    assert "stopped: agent.write refused draft 7 before sending" in lines
    assert "warning: the writing budget is at $0.0150 of $0.03" in lines
    assert (
        "    event shekel.budget.exceeded: {'shekel.budget.path': 'agent.write', "
        "'shekel.limit.axis': 'usd', 'shekel.limit.spent': 0.03, 'shekel.limit.value': 0.03, "
        "'shekel.call.sent': False}"
    ) in lines
    metrics = lines[lines.index("metric shekel.cost (USD):") :]
    assert (
        "    {'shekel.budget.path': 'agent.write', 'gen_ai.provider.name': 'anthropic', "
        "'gen_ai.request.model': 'claude-haiku-4-5'} 0.03"
    ) in metrics
    assert "metric gen_ai.client.token.usage ({token}):" in metrics
    assert "    {'shekel.budget.path': 'agent.write'} 0" in metrics
    assert lines[-1] == "spent $0.0307 of $0.10"
