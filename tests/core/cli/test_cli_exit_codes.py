"""shekel run's exit codes: 0 when the script ends, 1 at a budget's limit, else the script's."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import cli, last_json, script


def test_under_budget_exits_0_with_output_on_stdout_and_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        shekel.current_budget().record(usd=0.25)
        print("agent finished")
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "1", agent)
    assert code == 0
    assert out == "agent finished\n"
    assert "Shekel Budget Summary" in err
    assert "status: ok" in err
    assert "spent $0.25 of $1.00" in err


def test_the_scripts_own_exit_code_is_passed_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, "import sys\nsys.exit(3)\n")
    code, _, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 3
    report = last_json(err)
    assert report["exit_code"] == 3
    assert report["status"] == "ok"


def test_sys_exit_with_a_message_prints_it_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, "import sys\nsys.exit('could not find the input file')\n")
    code, out, err = cli(capsys, "run", "--budget", "1", agent)
    assert code == 1
    assert "could not find the input file" in err
    assert out == ""


def test_exceeding_the_budget_exits_1_and_reports_exceeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        for step in range(10):
            print("step", step, flush=True)
            shekel.current_budget().record(usd=0.02)
        print("never printed")
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "0.05", "--output", "json", agent)
    assert code == 1
    assert "never printed" not in out
    assert out.splitlines() == ["step 0", "step 1", "step 2"]
    report = last_json(err)
    assert report["status"] == "exceeded"
    assert report["exit_code"] == 1
    assert report["spent"] == pytest.approx(0.06)
    assert report["limit"] == pytest.approx(0.05)
    assert report["error"]["budget"] == "shekel-run"
    assert report["error"]["axis"] == "usd"
    assert report["error"]["sent"] is True
    assert "shekel-run" in report["error"]["message"]


def test_text_report_names_the_limit_that_stopped_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, "import shekel\nshekel.current_budget().record(usd=0.5)\n")
    code, out, err = cli(capsys, "run", "--budget", "0.1", agent)
    assert code == 1
    assert out == ""
    assert "shekel: stopped: 'shekel-run' exceeded its USD limit" in err
    assert "raise --budget" in err
    assert "status: exceeded" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("ending", ["pass", "import sys; sys.exit(0)"])
def test_exit_is_1_when_the_script_caught_the_error_and_ended_normally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ending: str
) -> None:
    agent = script(
        tmp_path,
        f"""
        import shekel
        try:
            shekel.current_budget().record(usd=2)
        except shekel.BudgetExceededError:
            print("caught it, pretending all is well")
        {ending}
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 1
    assert "caught it" in out
    report = last_json(err)
    assert report["status"] == "exceeded"
    assert report["script_exit_code"] == 0


def test_a_refused_call_counts_as_stopped_even_when_caught_and_under_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # max_llm_calls=2: the third call is refused before anything is recorded.
    agent = script(
        tmp_path,
        """
        import shekel
        b = shekel.current_budget()
        for _ in range(3):
            try:
                b.tool_call("search").commit()
                b.record(usd=0.01)
            except shekel.BudgetExceededError as e:
                print("refused:", e.axis)
                break
        """,
    )
    code, out, err = cli(capsys, "run", "--max-llm-calls", "2", "--output", "json", agent)
    assert "refused: llm_calls" in out
    assert code == 1
    assert last_json(err)["calls"] == 3
    assert last_json(err)["status"] == "exceeded"


def test_an_error_of_the_scripts_own_inner_budget_that_it_catches_is_its_business(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        try:
            with shekel.budget(max_usd=0.01, name="step"):
                shekel.current_budget().record(usd=0.02)
        except shekel.BudgetExceededError as e:
            print("step over budget:", e.budget_name)
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert out == "step over budget: shekel-run.step\n"
    assert code == 0
    assert last_json(err)["status"] == "ok"


def test_an_uncaught_exception_prints_the_scripts_traceback_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        def plan():
            raise ValueError("the planner is confused")

        plan()
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 1
    assert out == ""
    assert "Traceback (most recent call last):" in err
    assert f'File "{agent}", line 5, in <module>' in err
    assert "ValueError: the planner is confused" in err
    assert "runpy" not in err
    assert "_cli_run" not in err
    report = last_json(err)
    assert report["status"] == "ok"
    assert report["exit_code"] == 1


def test_a_syntax_error_is_reported_like_python_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, 'print("never closed"\n')
    code, out, err = cli(capsys, "run", "--budget", "1", agent)
    assert code == 1
    assert out == ""
    assert f'File "{agent}", line 1' in err
    assert "SyntaxError:" in err
    assert "Traceback" not in err


def test_a_budget_error_inside_an_exception_group_counts_as_exceeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        errors = []
        try:
            shekel.current_budget().record(usd=5)
        except shekel.BudgetExceededError as e:
            errors.append(e)
        raise ExceptionGroup("workers failed", [*errors, KeyError("x")])
        """,
    )
    code, _, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 1
    assert "ExceptionGroup: workers failed" in err
    assert last_json(err)["status"] == "exceeded"


def test_keyboard_interrupt_exits_130_and_still_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        "import shekel\nshekel.current_budget().record(usd=0.1)\nraise KeyboardInterrupt\n",
    )
    code, _, err = cli(capsys, "run", "--budget", "1", "--output", "json", agent)
    assert code == 130
    assert "KeyboardInterrupt" in err
    assert last_json(err)["spent"] == pytest.approx(0.1)
