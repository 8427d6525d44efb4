"""The shekel command as a real process (python -m shekel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import last_json, python_m_shekel, script, subprocess_env


def test_python_m_shekel_run_exceeded_in_a_subprocess(tmp_path: Path) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        while True:
            print("working", flush=True)
            shekel.current_budget().record(usd=0.3)
        """,
    )
    done = python_m_shekel("run", "--output", "json", agent, SHEKEL_BUDGET_USD="1")
    assert done.returncode == 1, done.stderr
    assert done.stdout == "working\n" * 4
    report = last_json(done.stderr)
    assert report["status"] == "exceeded"
    assert report["spent"] == pytest.approx(1.2)
    assert report["limit"] == pytest.approx(1.0)


def test_python_m_shekel_passes_exit_codes_and_usage_errors(tmp_path: Path) -> None:
    agent = script(tmp_path, "import sys\nprint(sys.argv[1:])\nsys.exit(4)\n")
    done = python_m_shekel("run", agent, "--budget", "1", "--", "-x")
    assert done.returncode == 4
    assert done.stdout == "['-x']\n"
    assert "Shekel Budget Summary" in done.stderr
    done = python_m_shekel("run", "--budget", "-1", agent)
    assert done.returncode == 2
    assert "shekel run: error: --budget must be greater than 0" in done.stderr
    assert done.stdout == ""


def test_the_shekel_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("shekel")
    if not exe.exists():
        pytest.skip("no shekel console script next to this interpreter")
    done = subprocess.run(
        [str(exe), "estimate", "--model", "gpt-4o-mini", "--input", "1000", "--output", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("$0.00075")
