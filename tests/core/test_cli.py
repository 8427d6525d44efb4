"""The ``shekel`` command: ``run`` (exit codes, settings, reports), ``models`` and ``estimate``.

Most tests call ``main([...])`` in this process; a few run ``python -m shekel`` as a real
subprocess. Scripts are written to ``tmp_path`` and spend through ``current_budget().record``,
which needs no interception; the runaway example goes through the real openai SDK and the
fake provider.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shekel._cli import main
from shekel._cli_config import SETTINGS
from shekel._pricing import TokenUsage, rate_for
from shekel.testing import FakeProvider

ROOT = Path(__file__).resolve().parents[2]
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

# A script that prints what the run's budget was configured with, as one JSON line.
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


# -- exit codes -------------------------------------------------------------------------------


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


# -- how the script runs ----------------------------------------------------------------------


# A script that prints its arguments and what the run's budget was given, as one JSON line.
SHOW_ARGV = """
import json, sys, shekel
b = shekel.current_budget()
print(json.dumps({
    "argv": sys.argv[1:], "name": b.full_name, "max_usd": b.config.max_usd,
    "strict": b.config.strict,
}))
"""


@pytest.mark.parametrize(
    ("args", "argv", "max_usd"),
    [
        # shekel's options before SCRIPT, after it (the seed's form), or some on each side
        (["--budget", "3", "{s}"], [], 3.0),
        (["{s}", "--budget", "3"], [], 3.0),
        (["{s}", "--max-usd=3"], [], 3.0),
        (["--strict", "{s}", "--budget", "3"], [], 3.0),
        # the script's arguments after `--`, wherever shekel's options are
        (["{s}", "--budget", "3", "--", "--name", "exp1"], ["--name", "exp1"], 3.0),
        (["--budget", "3", "{s}", "--", "--budget", "9", "-v"], ["--budget", "9", "-v"], 3.0),
        (["{s}", "--budget", "3", "--", "--"], ["--"], 3.0),
        # arguments after SCRIPT that do not start with - are the script's without `--`
        (["--budget", "3", "{s}", "a", "b"], ["a", "b"], 3.0),
        (["{s}", "in.txt", "--budget", "3", "-", "--", "-v"], ["in.txt", "-", "-v"], 3.0),
        # a `--` before SCRIPT: every argument after SCRIPT is the script's, unchanged
        (
            ["--budget=3", "--", "{s}", "--name", "x", "--budget", "1"],
            ["--name", "x", "--budget", "1"],
            3.0,
        ),
        # an option's value may start with -
        (["--name", "-x", "--budget", "3", "{s}", "a"], ["a"], 3.0),
    ],
)
def test_shekel_options_before_or_after_the_script_and_its_arguments_after_dashes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    argv: list[str],
    max_usd: float,
) -> None:
    agent = script(tmp_path, SHOW_ARGV)
    code, out, err = cli(capsys, "run", *[agent if a == "{s}" else a for a in args])
    assert code == 0, err
    seen = json.loads(out)
    assert seen["argv"] == argv
    assert seen["max_usd"] == max_usd
    assert seen["strict"] is ("--strict" in args)


def test_options_after_the_script_set_every_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, SHOW_CONFIG)
    after = ["--max-tokens", "500", "--max-llm-calls=7", "--warn-at", "0.5"]
    after += ["--fallback-model", "gpt-4o-mini", "--fallback-at", "0.6", "--strict"]
    code, out, err = cli(capsys, "run", "--name", "nightly", agent, "--budget", "2", *after)
    assert code == 0, err
    assert json.loads(out) == {
        "name": "nightly",
        "max_usd": 2.0,
        "max_tokens": 500,
        "max_llm_calls": 7,
        "warn_at": 0.5,
        "fallback_model": "gpt-4o-mini",
        "fallback_at": 0.6,
        "strict": True,
    }


def test_the_seed_form_stops_a_script_over_its_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2_000, output_tokens=800)  # gpt-4o: $0.013 a call
        agent = script(
            tmp_path,
            f"""
            import sys
            import openai
            client = openai.OpenAI(base_url={fake.openai_base_url!r}, api_key="t", max_retries=0)
            print(sys.argv[1:], flush=True)
            for _ in range(10):
                client.chat.completions.create(
                    model="gpt-4o", messages=[{{"role": "user", "content": "again"}}]
                )
            print("never printed")
            """,
        )
        code, out, err = cli(capsys, "run", agent, "--budget", "0.03", "--", "--name", "exp1")
        served = len(fake.requests)
    assert code == 1, err
    assert out == "['--name', 'exp1']\n"
    assert served == 3  # the third call crossed $0.03 and raised
    assert "shekel: stopped: 'shekel-run' exceeded its USD limit" in err
    assert "status: exceeded · exit code 1" in err


def suggested(err: str, agent: str) -> list[str]:
    """The arguments after ``shekel run`` of the first command a usage error suggests."""
    message = err.split("shekel run: error: ", 1)[1]
    command = message.split(": shekel run ", 1)[1].split(". If ", 1)[0].strip()
    return [a if a != agent else "{s}" for a in shlex.split(command)]


@pytest.mark.parametrize(
    ("args", "message", "fixed"),
    [
        (
            ["{s}", "--budget", "3", "--topic", "cats"],
            "--topic is not an option of shekel run. Arguments for the script go after `--`",
            ["{s}", "--budget", "3", "--", "--topic", "cats"],
        ),
        (
            ["--budget", "3", "{s}", "-v", "in.txt", "-x", "--", "--y"],
            "-v and -x are not options of shekel run. Arguments for the script go after `--`",
            ["--budget", "3", "{s}", "--", "-v", "in.txt", "-x", "--y"],
        ),
        (
            ["{s}", "--bugdet", "3"],
            "--bugdet is not an option of shekel run (did you mean --budget?)",
            ["{s}", "--", "--bugdet", "3"],
        ),
        (
            ["--budget", "0.5", "{s}", "--budget", "3"],
            "--budget is given both before and after SCRIPT, so shekel cannot tell which to "
            "use. Give shekel's --budget once. If the one after SCRIPT is for the script, put "
            "it after `--`",
            ["--budget", "0.5", "{s}", "--", "--budget", "3"],
        ),
        (
            ["--max-usd", "0.5", "--strict", "{s}", "--budget=3", "--no-strict"],
            "--budget and --no-strict are given both before and after SCRIPT, so shekel cannot "
            "tell which to use. Give shekel's --budget and --no-strict once. If the ones after "
            "SCRIPT are for the script, put them after `--`",
            ["--max-usd", "0.5", "--strict", "{s}", "--", "--budget=3", "--no-strict"],
        ),
        (
            ["--name", "a", "{s}", "--budget", "3", "--name", "b"],
            "--name is given both before and after SCRIPT",
            ["--name", "a", "{s}", "--budget", "3", "--", "--name", "b"],
        ),
    ],
)
def test_an_option_after_the_script_that_is_not_clearly_shekels_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
    fixed: list[str],
) -> None:
    err = usage_error(capsys, tmp_path, "run", *args)
    assert f"shekel run: error: {message}" in err
    agent = str(tmp_path / "marker.py")
    assert suggested(err, agent) == fixed


@pytest.mark.parametrize(
    ("after", "for_script", "for_shekel"),
    [
        (
            ["--name", "exp1"],
            ["{s}", "--budget", "3", "--", "--name", "exp1"],
            ["--name", "exp1", "{s}", "--budget", "3"],
        ),
        (
            ["--output=json", "-v", "--name", "exp1", "--", "x"],
            ["{s}", "--budget", "3", "--", "--output=json", "-v", "--name", "exp1", "x"],
            ["--output=json", "--name", "exp1", "{s}", "--budget", "3", "--", "-v", "x"],
        ),
    ],
)
def test_name_and_output_after_the_script_are_refused_with_both_fixes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    after: list[str],
    for_script: list[str],
    for_shekel: list[str],
) -> None:
    # `shekel run train.py --name exp1` once renamed the budget instead of passing --name on.
    err = usage_error(capsys, tmp_path, "run", "{s}", "--budget", "3", *after)
    agent = str(tmp_path / "marker.py")
    many = "--output" in after[0]
    names = "--output and --name" if many else "--name"
    assert f"shekel run: error: {names} after SCRIPT {'are' if many else 'is'} ambiguous" in err
    assert suggested(err, agent) == for_script
    assert f"shekel's, put {'them' if many else 'it'} before SCRIPT: shekel run " in err
    shekels = err.split("before SCRIPT: shekel run ", 1)[1].strip()
    assert [a if a != agent else "{s}" for a in shlex.split(shekels)] == for_shekel


def test_the_suggested_command_runs_as_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(tmp_path, SHOW_ARGV)
    code, _, err = cli(capsys, "run", agent, "--budget", "3", "--name", "exp1", "-v")
    assert code == 2
    for_script = [a if a != "{s}" else agent for a in suggested(err, agent)]
    for_shekel = shlex.split(err.split("before SCRIPT: shekel run ", 1)[1])
    code, out, err = cli(capsys, "run", *for_script)
    assert code == 0, err
    assert json.loads(out) == {
        "argv": ["--name", "exp1", "-v"],
        "name": "shekel-run",
        "max_usd": 3.0,
        "strict": False,
    }
    code, out, err = cli(capsys, "run", *for_shekel)
    assert code == 0, err
    assert json.loads(out) == {"argv": ["-v"], "name": "exp1", "max_usd": 3.0, "strict": False}


def test_no_limit_is_the_plain_error_when_the_limit_flag_is_the_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(capsys, tmp_path, "run", "{s}", "--", "--budget", "1")
    assert "shekel run: error: no limit set: give --budget USD" in err


def test_the_script_runs_as_main_with_its_directory_on_sys_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cli_helper_mod_7f3.py").write_text("ANSWER = 42\n")
    agent = script(
        tmp_path,
        """
        import sys
        import cli_helper_mod_7f3
        if __name__ == "__main__":
            print(cli_helper_mod_7f3.ANSWER, sys.path[0])
        """,
    )
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    code, out, _ = cli(capsys, "run", "--budget", "1", agent)
    assert code == 0
    assert out.split() == ["42", os.path.realpath(tmp_path)]
    assert sys.argv == saved_argv
    assert sys.path == saved_path


def test_the_scripts_unnamed_budgets_nest_under_the_run_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = script(
        tmp_path,
        """
        import shekel
        for _ in range(2):
            with shekel.budget(max_usd=5) as b:
                b.record(usd=0.1)
                print(b.full_name, b.limit)
        with shekel.budget(max_usd=5, name="research") as r:
            print(r.full_name)
        """,
    )
    code, out, err = cli(capsys, "run", "--budget", "0.5", "--output", "json", agent)
    assert code == 0, err
    assert out.splitlines() == [
        "shekel-run.budget 0.5",
        "shekel-run.budget 0.4",
        "shekel-run.research",
    ]
    assert last_json(err)["spent"] == pytest.approx(0.2)


def test_name_sets_the_run_budgets_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = script(tmp_path, SHOW_CONFIG)
    code, out, _ = cli(capsys, "run", "--budget", "1", "--name", "nightly", agent)
    assert code == 0
    assert json.loads(out)["name"] == "nightly"


def test_a_directory_with_main_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "__main__.py").write_text("print('app main ran')\n")
    code, out, _ = cli(capsys, "run", "--budget", "1", str(package))
    assert code == 0
    assert out == "app main ran\n"


# -- reports ------------------------------------------------------------------------------------


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


# -- settings: flags > environment > file -------------------------------------------------


def test_flags_override_environment_which_overrides_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "shekel.toml"
    config.write_text(
        textwrap.dedent(
            """
            [budget]
            max_usd = 3.0
            max_tokens = 1000
            max_llm_calls = 5
            warn_at = 0.5
            fallback_model = "gpt-4o-mini"
            fallback_at = 0.6
            strict = true
            """
        )
    )
    agent = script(tmp_path, SHOW_CONFIG)
    monkeypatch.setenv("SHEKEL_BUDGET_USD", "2")
    monkeypatch.setenv("SHEKEL_MAX_TOKENS", "2000")
    monkeypatch.setenv("SHEKEL_WARN_AT", "0.7")
    monkeypatch.setenv("SHEKEL_STRICT", "no")
    monkeypatch.setenv("SHEKEL_FALLBACK_AT", "")  # empty: unset
    code, out, err = cli(
        capsys,
        "run",
        "--budget-file",
        str(config),
        "--budget",
        "1",
        "--warn-at",
        "0.9",
        "--output",
        "json",
        agent,
    )
    assert code == 0, err
    seen = json.loads(out)
    assert seen["max_usd"] == 1.0  # flag
    assert seen["max_tokens"] == 2000  # env
    assert seen["max_llm_calls"] == 5  # file
    assert seen["warn_at"] == 0.9  # flag over env and file
    assert seen["strict"] is False  # env "no" over file true
    assert seen["fallback_model"] == "gpt-4o-mini"  # file
    assert seen["fallback_at"] == 0.6  # file: the empty variable does not count
    report = last_json(err)
    assert report["limits"] == {"usd": 1.0, "tokens": 2000, "llm_calls": 5}
    assert report["limit"] == 1.0
    assert report["strict"] is False
    assert report["budget"]["fallback_model"] == "gpt-4o-mini"


def test_budget_file_from_the_environment_and_flag_precedence_over_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "env.toml"
    env_file.write_text("[budget]\nmax_usd = 4\nstrict = true\n")
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text("[budget]\nmax_llm_calls = 7\n")
    agent = script(tmp_path, SHOW_CONFIG)
    monkeypatch.setenv("SHEKEL_BUDGET_FILE", str(env_file))
    code, out, _ = cli(capsys, "run", agent)
    assert code == 0
    assert json.loads(out)["max_usd"] == 4.0
    assert json.loads(out)["strict"] is True
    code, out, _ = cli(capsys, "run", "--no-strict", agent)
    assert json.loads(out)["strict"] is False
    code, out, _ = cli(capsys, "run", "--budget-file", str(flag_file), agent)
    assert code == 0
    seen = json.loads(out)
    assert seen["max_usd"] is None
    assert seen["max_llm_calls"] == 7


def test_every_environment_variable_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEKEL_BUDGET_USD", "$2.50")
    monkeypatch.setenv("SHEKEL_MAX_TOKENS", "9000")
    monkeypatch.setenv("SHEKEL_MAX_LLM_CALLS", "12")
    monkeypatch.setenv("SHEKEL_WARN_AT", "0.25")
    monkeypatch.setenv("SHEKEL_FALLBACK_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("SHEKEL_FALLBACK_AT", "0.75")
    monkeypatch.setenv("SHEKEL_STRICT", "ON")
    agent = script(tmp_path, SHOW_CONFIG)
    code, out, err = cli(capsys, "run", agent)
    assert code == 0, err
    assert json.loads(out) == {
        "name": "shekel-run",
        "max_usd": 2.5,
        "max_tokens": 9000,
        "max_llm_calls": 12,
        "warn_at": 0.25,
        "fallback_model": "gpt-4o-mini",
        "fallback_at": 0.75,
        "strict": True,
    }


def test_fallback_at_defaults_to_0_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = script(tmp_path, SHOW_CONFIG)
    code, out, _ = cli(capsys, "run", "--budget", "1", "--fallback-model", "gpt-4o-mini", agent)
    assert code == 0
    assert json.loads(out)["fallback_at"] == 0.8


# -- usage errors: exit 2, a message that says what to fix, and the script never runs ----------


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "-1"], "--budget must be greater than 0 US dollars, got '-1'"),
        (["--budget", "0"], "--budget must be greater than 0"),
        (["--budget", "nan"], "--budget must be a finite number"),
        (["--budget", "inf"], "--budget must be a finite number"),
        (["--budget", "five"], "--budget must be a number of US dollars such as 0.05"),
        (["--max-tokens", "1.5"], "--max-tokens must be a whole number greater than 0"),
        (["--max-llm-calls", "0"], "--max-llm-calls must be a whole number greater than 0"),
        (["--budget", "1", "--warn-at", "80"], "--warn-at must be a fraction of the limit"),
        (["--budget", "1", "--fallback-at", "0.5"], "--fallback-at needs a fallback model"),
        (
            ["--max-tokens", "9", "--fallback-model", "gpt-4o-mini"],
            "--fallback-model needs a USD limit",
        ),
        (["--budget", "1", "--name", "a.b"], "name must not contain '.'"),
        (["--budget", "1", "--output", "yaml"], "argument --output: invalid choice: 'yaml'"),
        ([], "no limit set: give --budget USD"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = usage_error(capsys, tmp_path, "run", *args, "{s}")
    assert f"shekel run: error: {message}" in err


USD_WORDING = "must be a number of US dollars such as 0.05, written plainly"
COUNT_WORDING = "must be a whole number greater than 0, such as 50000, written with the digits 0-9"
FRACTION_WORDING = "must be a fraction of the limit in (0, 1], such as 0.8, written plainly"


@pytest.mark.parametrize(
    ("flag", "value", "wording"),
    [
        ("--budget", "1_000", USD_WORDING),  # float() reads $1000
        ("--budget", "\u0663", USD_WORDING),  # Arabic-Indic three: float() reads $3
        ("--budget", "1,5", USD_WORDING),
        ("--budget", "0x10", USD_WORDING),
        ("--budget", "\uff11", USD_WORDING),  # fullwidth one
        ("--max-tokens", "1_000", COUNT_WORDING),
        ("--max-tokens", "1e3", COUNT_WORDING),
        ("--max-tokens", "+5", COUNT_WORDING),
        pytest.param("--max-tokens", "9" * 5000, COUNT_WORDING, id="more-digits-than-int-reads"),
        ("--max-llm-calls", "\u0663", COUNT_WORDING),
        ("--warn-at", "\u0660.5", FRACTION_WORDING),
        ("--fallback-at", "0_8", FRACTION_WORDING),
    ],
)
def test_numbers_must_be_plain_ascii_decimals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, wording: str
) -> None:
    limit = [] if flag in ("--budget", "--max-tokens", "--max-llm-calls") else ["--budget", "1"]
    fallback = ["--fallback-model", "gpt-4o-mini"] if flag == "--fallback-at" else []
    err = usage_error(capsys, tmp_path, "run", *limit, *fallback, flag, value, "{s}")
    assert f"shekel run: error: {flag} {wording}" in err
    assert f"got {value!r}" in err


@pytest.mark.parametrize(
    ("env", "value", "wording"),
    [
        ("SHEKEL_BUDGET_USD", "1_000", USD_WORDING),
        ("SHEKEL_BUDGET_USD", "\u0663", USD_WORDING),
        ("SHEKEL_BUDGET_USD", "$1_000", USD_WORDING),
        ("SHEKEL_MAX_TOKENS", "\u0661\u0660\u0660", COUNT_WORDING),
        ("SHEKEL_MAX_LLM_CALLS", "1_0", COUNT_WORDING),
        ("SHEKEL_WARN_AT", "\u0660.5", FRACTION_WORDING),
        ("SHEKEL_FALLBACK_AT", "0_8", FRACTION_WORDING),
    ],
)
def test_numbers_in_environment_variables_must_be_plain_ascii_decimals(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    value: str,
    wording: str,
) -> None:
    monkeypatch.setenv(env, value)
    err = usage_error(capsys, tmp_path, "run", "{s}")
    assert f"shekel run: error: {env} {wording}" in err


def test_plain_numbers_in_every_form_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = script(tmp_path, SHOW_CONFIG)
    forms = [
        (["--budget", "2.5e-1", "--max-tokens", "007", "--warn-at", "8E-1"], (0.25, 7, 0.8)),
        (["--budget", "+.5", "--max-tokens", " 12 ", "--warn-at", "1."], (0.5, 12, 1.0)),
    ]
    for args, (usd, tokens, warn_at) in forms:
        code, out, err = cli(capsys, "run", *args, agent)
        assert code == 0, err
        seen = json.loads(out)
        assert (seen["max_usd"], seen["max_tokens"], seen["warn_at"]) == (usd, tokens, warn_at)
    monkeypatch.setenv("SHEKEL_BUDGET_USD", " $3 ")
    monkeypatch.setenv("SHEKEL_MAX_LLM_CALLS", "40\n")
    code, out, err = cli(capsys, "run", agent)
    assert code == 0, err
    assert (json.loads(out)["max_usd"], json.loads(out)["max_llm_calls"]) == (3.0, 40)


def test_typed_toml_numbers_keep_working(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # TOML's own syntax allows `_` between digits and exponents; the file's parser types them.
    config = tmp_path / "shekel.toml"
    config.write_text(
        "[budget]\nmax_usd = 1_000\nmax_tokens = 50_000\nmax_llm_calls = 3.0\n"
        "warn_at = 5e-1\nfallback_model = 'gpt-4o-mini'\nfallback_at = 0.75\n"
    )
    agent = script(tmp_path, SHOW_CONFIG)
    code, out, err = cli(capsys, "run", "--budget-file", str(config), agent)
    assert code == 0, err
    seen = json.loads(out)
    assert seen["max_usd"] == 1000.0
    assert seen["max_tokens"] == 50_000
    assert seen["max_llm_calls"] == 3
    assert seen["warn_at"] == 0.5
    assert seen["fallback_at"] == 0.75


def test_an_unknown_option_before_the_script_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(capsys, tmp_path, "run", "--bugdet", "1", "{s}")
    assert "unrecognized arguments: --bugdet" in err


def test_a_missing_script_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.py")
    err = usage_error(capsys, tmp_path, "run", "--budget", "1", missing, agent=missing)
    assert f"shekel run: error: the script {missing!r} does not exist" in err
    err = usage_error(capsys, tmp_path, "run", "--budget", "1")
    assert "shekel run: error: missing SCRIPT" in err
    err = usage_error(capsys, tmp_path, "run", "--budget")
    assert "shekel run: error: argument --budget/--max-usd: expected one argument" in err
    err = usage_error(capsys, tmp_path, "run", "--budget", "1", str(tmp_path), agent="x")
    assert "is a directory without a __main__.py" in err


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("SHEKEL_BUDGET_USD", "-3", "SHEKEL_BUDGET_USD must be greater than 0"),
        ("SHEKEL_BUDGET_USD", "NaN", "SHEKEL_BUDGET_USD must be a finite number"),
        ("SHEKEL_MAX_TOKENS", "lots", "SHEKEL_MAX_TOKENS must be a whole number"),
        ("SHEKEL_STRICT", "maybe", "SHEKEL_STRICT must be true or false"),
        ("SHEKEL_BUDGET_FILE", "/no/such/shekel.toml", "does not exist"),
    ],
)
def test_bad_environment_values_name_the_variable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(env, value)
    err = usage_error(capsys, tmp_path, "run", "--max-llm-calls", "5", "{s}")
    assert message in err


def test_a_flag_replaces_a_bad_environment_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEKEL_BUDGET_USD", "oops")
    agent = script(tmp_path, SHOW_CONFIG)
    code, out, _ = cli(capsys, "run", "--budget", "1", agent)
    assert code == 0
    assert json.loads(out)["max_usd"] == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[budget\nmax_usd = 1\n", "is not valid TOML"),
        ("[budget]\nmax_usdd = 1\n", "unknown key 'max_usdd' in the [budget] table"),
        ("[budget]\nmax_usd = 1\nlimit = 2\n", "unknown key 'limit'"),
        ("max_usd = 1\n", "unknown top-level key 'max_usd'"),
        ("[tool]\nx = 1\n", "unknown top-level key 'tool'"),
        ("", "has no [budget] table"),
        ("budget = 5\n", "must be a table"),
        ("[budget]\nmax_usd = -1.0\n", "max_usd in {path} must be greater than 0"),
        ("[budget]\nmax_usd = nan\n", "max_usd in {path} must be a finite number"),
        ("[budget]\nmax_usd = '5'\n", "max_usd in {path} must be a TOML number, not the string"),
        ("[budget]\nmax_tokens = 10.5\n", "max_tokens in {path} must be a whole number"),
        ("[budget]\nmax_usd = 1\nstrict = 'yes'\n", "strict in {path} must be a TOML boolean"),
        ("[budget]\nmax_usd = 1\nfallback_model = ''\n", "fallback_model in {path} must be"),
    ],
)
def test_malformed_budget_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "shekel.toml"
    path.write_text(content)
    err = usage_error(capsys, tmp_path, "run", "--budget-file", str(path), "{s}")
    assert message.format(path=path) in err
    assert "shekel run: error:" in err


def unreadable_paths(tmp_path: Path) -> list[tuple[str, str]]:
    """Budget-file paths that cannot be read even by root, with the reason shown for each."""
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("[budget]\nmax_usd = 1\n")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return [
        (str(tmp_path / "a-directory"), "is a directory, not a TOML file"),
        (str(tmp_path / "a-file" / "shekel.toml"), os.strerror(errno.ENOTDIR)),
        (str(tmp_path / "loop"), os.strerror(errno.ELOOP)),
    ]


def test_an_unreadable_budget_file_flag_says_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, reason in unreadable_paths(tmp_path):
        err = usage_error(capsys, tmp_path, "run", "--budget-file", path, "{s}")
        assert f"budget file {path!r} (from --budget-file)" in err
        assert reason in err
        assert err.endswith("; give --budget-file the path of a readable TOML file\n")


def test_an_unreadable_budget_file_variable_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, reason in unreadable_paths(tmp_path):
        monkeypatch.setenv("SHEKEL_BUDGET_FILE", path)
        err = usage_error(capsys, tmp_path, "run", "--max-llm-calls", "3", "{s}")
        assert f"budget file {path!r} (from SHEKEL_BUDGET_FILE)" in err
        assert reason in err
        assert err.endswith("; give SHEKEL_BUDGET_FILE the path of a readable TOML file\n")


def test_a_budget_file_that_is_not_utf_8_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shekel.toml"
    path.write_bytes("[budget]\n# caf\u00e9\nmax_usd = 1\n".encode("latin-1"))
    err = usage_error(capsys, tmp_path, "run", "--budget-file", str(path), "{s}")
    assert f"budget file {str(path)!r} is not UTF-8 text; save it as UTF-8" in err


def test_unknown_key_suggests_the_close_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shekel.toml"
    path.write_text("[budget]\nmax_llmcalls = 3\n")
    err = usage_error(capsys, tmp_path, "run", "--budget-file", str(path), "{s}")
    assert "did you mean 'max_llm_calls'?" in err


def test_help_exits_0_and_documents_argument_placement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert (
        "shekel's options may come before or after SCRIPT. Arguments for the script go "
        "after `--`." in text
    )
    assert "Put --name and --output before SCRIPT" in text
    assert "usage: shekel run --budget USD [options] SCRIPT [-- ARGS...]\n" in out
    assert " shekel run [--name NAME] [--output FORMAT] SCRIPT --budget USD [options] [-- " in out
    assert "plain ASCII decimals such as 0.5 or 2.5e-1" in out
    assert "SHEKEL_BUDGET_USD" in out
    for setting in SETTINGS:
        assert setting.flag in out
        assert setting.env in out
        assert f"  {setting.key} = " in out or f" {setting.key}\n" in out
    code, after, _ = cli(capsys, "run", str(EXAMPLE), "--budget", "1", "-h")
    assert (code, after) == (0, out)  # shekel's help, wherever -h is; the script does not run
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    assert out.startswith("shekel ")
    code, _, err = cli(capsys)
    assert code == 2
    assert "shekel: error:" in err


# -- models and estimate ----------------------------------------------------------------------


def test_models_lists_the_price_table_for_a_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "models", "--provider", "openai")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows
    assert {row[0] for row in rows} == {"openai"}
    mini = next(row for row in rows if row[1] == "gpt-4o-mini")
    assert mini[2:] == ["0.15", "0.075", "0.60"]
    header = out.splitlines()[1]
    assert header.split() == ["PROVIDER", "MODEL", "INPUT", "CACHED", "INPUT", "OUTPUT"]
    widths = {len(line) for line in out.splitlines()[1:]}
    assert len(widths) == 1, "columns are not aligned"


def test_models_filters_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "claude", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing
    assert all("claude" in row["model"] for row in listing)
    assert {"provider", "model", "input", "cached_input", "output"} == set(listing[0])


def test_models_unknown_provider_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "models", "--provider", "nobody")
    assert code == 2
    assert out == ""
    assert "shekel models: error: unknown provider 'nobody'" in err
    assert "openai" in err


def test_estimate_prices_one_call(capsys: pytest.CaptureFixture[str]) -> None:
    expected = 0.15 * 1000 / 1e6 + 0.60 * 1000 / 1e6
    code, out, _ = cli(
        capsys, "estimate", "--model", "gpt-4o-mini", "--input", "1000", "--output", "1000"
    )
    assert code == 0
    assert out.startswith("$0.00075  gpt-4o-mini\n")
    code, out, _ = cli(
        capsys,
        "estimate",
        "--model",
        "gpt-4o-mini",
        "--input",
        "1000",
        "--output",
        "1000",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["usd"] == pytest.approx(expected, rel=1e-12)
    assert json.loads(out)["usd_exact"] == "0.00075"


def test_estimate_with_cached_input(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "--model", "gpt-4o-mini", "--input", "1000", "--output", "0"]
    code, out, _ = cli(capsys, *args, "--cached-input", "400", "--json")
    assert code == 0
    assert json.loads(out)["usd"] == pytest.approx((600 * 0.15 + 400 * 0.075) / 1e6, rel=1e-12)
    code, _, err = cli(capsys, *args, "--cached-input", "2000")
    assert code == 2
    assert "--cached-input (2000) cannot exceed --input (1000)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gpt-4o-mini-typo", "--input", "1", "--output", "1"], "no price is known"),
        (["--model", "gpt-4o-mini", "--input", "-1", "--output", "1"], "--input: must be a whole"),
        (
            ["--model", "gpt-4o-mini", "--input", "1_000", "--output", "1"],
            "argument --input: must be a whole number >= 0 written with the digits 0-9, "
            "such as 1000, got '1_000'",
        ),
        (
            ["--model", "gpt-4o-mini", "--input", "1", "--output", "\u0663"],
            "argument --output: must be a whole number >= 0 written with the digits 0-9",
        ),
        (
            ["--model", "gpt-4o-mini", "--input", "1", "--output", "1", "--cached-input", "+1"],
            "argument --cached-input: must be a whole number >= 0",
        ),
        (["--model", "gpt-4o-mini", "--input", "1"], "required: --output"),
    ],
)
def test_estimate_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "estimate", *args)
    assert code == 2
    assert out == ""
    assert "shekel estimate: error:" in err
    assert message in err


def test_estimate_suggests_close_model_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        capsys, "estimate", "--model", "gpt-4o-minii", "--input", "1", "--output", "1"
    )
    assert code == 2
    assert "Did you mean: gpt-4o-mini" in err


# -- as a real process ----------------------------------------------------------------------------


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


# -- the README's first command: the runaway agent against the fake provider ----------------


def gpt_4o_call_cost() -> float:
    rate = rate_for([], "gpt-4o", "openai")
    assert rate is not None
    return rate.cost(TokenUsage(2_000, 800)) / 1e9


def test_the_readme_runs_the_demo_as_these_tests_do() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    command = next(line for line in lines if line.startswith("uv run shekel run "))
    argv = command.split("#")[0].split()[4:]
    assert argv == ["--budget", "0.05", "examples/runaway_agent.py"]
    done = python_m_shekel("run", *argv[:-1], str(ROOT / argv[-1]))
    assert done.returncode == 1, done.stderr
    assert "stopped" in done.stderr


def test_runaway_agent_is_stopped_by_the_budget() -> None:
    done = python_m_shekel("run", "--budget", "0.05", "--output", "json", str(EXAMPLE))
    assert done.returncode == 1, done.stderr
    assert "attempt 1: asking gpt-4o" in done.stdout
    report = last_json(done.stderr)
    assert report["status"] == "exceeded"
    per_call = gpt_4o_call_cost()
    assert report["spent"] > 0
    assert report["calls"] >= 2
    assert report["spent"] == pytest.approx(report["calls"] * per_call)
    assert report["spent"] <= 0.05 + per_call  # stopped at the call that crossed the cap
    # The story's running total never claims more than the final summary.
    shown = [
        float(line.split("spent so far $")[1].split()[0])
        for line in done.stdout.splitlines()
        if "spent so far $" in line
    ]
    assert shown
    assert 0 < shown[-1] <= report["spent"]
    assert report["budget"]["by_model"]["gpt-4o"]["calls"] == report["calls"]


def test_runaway_agent_under_a_strict_budget_never_crosses_the_cap() -> None:
    done = python_m_shekel("run", "--budget", "0.05", "--strict", "--output", "json", str(EXAMPLE))
    assert done.returncode == 1, done.stderr
    report = last_json(done.stderr)
    assert report["status"] == "exceeded"
    assert report["strict"] is True
    assert 0.05 - gpt_4o_call_cost() < report["spent"] <= 0.05
    assert report["error"]["sent"] is False  # the next call was refused before sending
    calls = report["budget"]["calls"]
    assert calls[-1]["output_tokens"] < 800  # the last call's output limit was lowered to fit


def test_a_strict_runs_box_and_last_line_agree(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newcomer trial item 7: the box said "Status: OK" under a last line "status: exceeded"."""
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2_000, output_tokens=800)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        code, _, err = cli(capsys, "run", "--budget", "0.05", "--strict", str(EXAMPLE))
    assert code == 1
    assert "Status: EXHAUSTED" in err
    assert "status: exhausted · exit code 1" in err


def test_loop_guard_stops_the_runaway_agent_before_its_cap(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2_000, output_tokens=800)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        code, _, err = cli(capsys, "run", "--budget", "0.05", "--loop-guard", "3", str(EXAMPLE))
        served = len(fake.requests)
    assert code == 1
    assert served == 3  # the task, then "fix it" twice: the third "fix it" was never sent
    assert "stopped a loop: the same request to gpt-4o was about to run for the 3rd time" in err
    assert "raise --loop-guard" in err
    assert "Status: LOOP" in err
    assert "status: loop · exit code 1" in err


@pytest.mark.parametrize("value", ["1", "0", "two"])
def test_loop_guard_must_be_at_least_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    agent = script(tmp_path, "pass\n")
    code, _, err = cli(capsys, "run", "--budget", "1", "--loop-guard", value, agent)
    assert code == 2
    assert "--loop-guard" in err


def test_runaway_agent_text_story_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2_000, output_tokens=800)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        code, out, err = cli(capsys, "run", "--budget", "0.05", str(EXAMPLE))
        served = len(fake.requests)
    assert code == 1
    assert out.count("attempt ") == served
    assert "shekel: stopped: 'shekel-run' exceeded its USD limit" in err
    assert "Shekel Budget Summary" in err
    assert f"{served} LLM calls" in err
    assert "status: exceeded · exit code 1" in err


def test_calls_from_plain_threads_count_against_the_run_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Worker threads do not inherit the context that holds the active budget; under
    # ``shekel run`` they still count against the run's budget.
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2000, output_tokens=800)  # gpt-4o: $0.013 a call
        path = script(
            tmp_path,
            f"""
            from concurrent.futures import ThreadPoolExecutor
            import openai
            client = openai.OpenAI(base_url={fake.openai_base_url!r}, api_key="t", max_retries=0)
            def ask(n):
                return client.chat.completions.create(
                    model="gpt-4o", messages=[{{"role": "user", "content": str(n)}}]
                )
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(ask, range(8)))
            """,
        )
        code, _, err = cli(capsys, "run", "--budget", "0.03", "--output", "json", path)
        served = len(fake.requests)
    report = last_json(err)
    assert code == 1
    assert report["spent"] >= 0.03
    assert report["calls"] == served
    assert served < 8  # the exhausted budget refused the rest before sending
