"""Helpers shared by the tests of the ``shekel`` command in this folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shekel._cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "runaway_agent.py"
ENV_VARS = (
    "SHEKEL_BUDGET_USD",
    "SHEKEL_MAX_TOKENS",
    "SHEKEL_MAX_LLM_CALLS",
    "SHEKEL_WARN_AT",
    "SHEKEL_FALLBACK_MODEL",
    "SHEKEL_FALLBACK_AT",
    "SHEKEL_STRICT",
    "SHEKEL_BUDGET_FILE",
    "OPENAI_BASE_URL",
)


SHOW_CONFIG = """
import json, shekel
from shekel._ledger import UNLIMITED
b = shekel.current_budget()
caps = b.config.caps
fb = b.config.fallback
print(json.dumps({
    "name": b.full_name,
    "max_usd": b.config.max_usd,
    "max_tokens": None if caps.tokens == UNLIMITED else caps.tokens,
    "max_llm_calls": None if caps.llm_calls == UNLIMITED else caps.llm_calls,
    "warn_at": b.config.warn_at,
    "fallback_model": fb.model if fb else None,
    "fallback_at": fb.at_pct if fb else None,
    "strict": b.config.strict,
}))
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def script(tmp_path: Path, body: str, name: str = "agent.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(stderr: str) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(extra)
    return env


def python_m_shekel(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shekel", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(**env),
        cwd=ROOT,
        check=False,
    )


def usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str, agent: str | None = None
) -> str:
    marker = tmp_path / "ran.marker"
    agent = agent or script(tmp_path, f"open({str(marker)!r}, 'w').close()\n", name="marker.py")
    code, out, err = cli(capsys, *[agent if a == "{s}" else a for a in args])
    assert code == 2, err
    assert not marker.exists(), "the script ran despite a usage error"
    assert out == ""
    assert "usage: shekel" in err
    return err
