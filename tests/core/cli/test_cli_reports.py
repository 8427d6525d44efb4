"""What shekel run reports: the summary box, the status line, the JSON report and the tree."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cli_support import cli, last_json, python_m_shekel, script


def test_json_report_is_one_parseable_line_with_the_budget_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        shekel.current_budget().record(
            model="gpt-4o-mini", input_tokens=1000, output_tokens=500
        )
        print("hello")
        """,
    )
    code, out, err = cli(
        capsys, "run", "--budget", "1", "--max-tokens", "10000", "--output", "json", agent
    )
    assert code == 0
    assert out == "hello\n"
    assert len(err.strip().splitlines()) == 1
    report = last_json(err)
    expected = 0.15 * 1000 / 1e6 + 0.60 * 500 / 1e6
    assert report["spent"] == pytest.approx(expected)
    assert report["calls"] == 1
    assert report["tokens"] == 1500
    assert report["status"] == "ok"
    assert report["exit_code"] == 0
    assert report["limits"] == {"usd": 1.0, "tokens": 10000, "llm_calls": None}
    assert report["budget"]["full_name"] == "shekel-run"
    assert report["budget"]["by_model"]["gpt-4o-mini"]["calls"] == 1
    assert report["error"] is None


@pytest.mark.parametrize(
    "unfinished",
    [
        'sys.stderr.write("progress: 100%")',
        'print("progress: 100%", file=sys.stderr, end="")',
        'sys.stderr.writelines(["step 1\\n", "progress: 100%"])',
    ],
)
def test_json_report_starts_a_line_after_an_unfinished_stderr_line(
    tmp_path: Path, unfinished: str
) -> None:
    agent = script(tmp_path, f"import sys\n{unfinished}\n")
    done = python_m_shekel("run", "--budget", "1", "--output", "json", agent)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.split("\n")
    assert lines[-1] == ""
    assert lines[-3] == "progress: 100%"
    assert json.loads(lines[-2])["status"] == "ok"


def test_json_report_adds_no_blank_line_after_a_finished_stderr_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import sys
        sys.stderr.write("progress: 100%")
        sys.stderr.write("\\n")
        print("done", file=sys.stderr, end="")
        print(file=sys.stderr)
        """,
    )
    code, _, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 0
    first, second, report, end = err.split("\n")
    assert (first, second, end) == ("progress: 100%", "done", "")
    assert json.loads(report)["exit_code"] == 0


def test_text_report_and_warnings_start_their_own_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import sys, shekel
        sys.stderr.write("step 1 ...")
        shekel.current_budget().record(usd=0.6)
        sys.stderr.write("step 2 ...")
        """,
    )
    code, _, err = cli(capsys, "run", "--budget", "1", "--warn-at", "0.5", agent)
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == "step 1 ..."
    assert lines[1].startswith("shekel: warning: 'shekel-run' reached 50% of its USD limit")
    assert lines[2] == "step 2 ..."
    assert lines[3].startswith("┌─ Shekel Budget Summary")


def test_sys_stderr_is_restored_after_the_run_even_if_the_script_replaced_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, "import io, sys\nsys.stderr = io.StringIO()\n")
    before = sys.stderr
    code, _, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 0
    assert sys.stderr is before
    assert last_json(err)["status"] == "ok"  # the report went to the real stderr


def test_warn_at_prints_a_warning_and_reports_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, "import shekel\nshekel.current_budget().record(usd=0.6)\n")
    code, out, err = cli(capsys, "run", "--budget", "1", "--warn-at", "0.5", agent)
    assert code == 0
    assert out == ""
    assert "shekel: warning: 'shekel-run' reached 50% of its USD limit" in err
    assert "Status: WARNING" in err
    assert "status: warning" in err  # the last line says what the box says
    code, _, err = cli(capsys, "run", "--budget", "1", "--warn-at", "0.5", "--output=json", agent)
    assert code == 0
    assert last_json(err)["status"] == "warn"
    assert "warning:" not in err


def test_the_fallback_switch_is_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        b = shekel.current_budget()
        b.record(usd=0.6)
        print(b.config.fallback.model if b.model_switched else None)
        """,
    )
    args = ["run", "--budget", "1", "--fallback-model", "gpt-4o-mini", "--fallback-at"]
    code, out, err = cli(capsys, *args, "0.5", agent)
    assert code == 0
    assert out == "gpt-4o-mini\n"
    assert "shekel: switched to the fallback model gpt-4o-mini at $0.60 of $1.00" in err
    assert "Status: FALLBACK" in err
    assert "status: fallback" in err
