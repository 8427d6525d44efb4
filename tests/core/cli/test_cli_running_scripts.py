"""How shekel run runs a script: argv, __main__, sys.path, threads, async code, subprocesses."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from cli_support import SHOW_CONFIG, cli, last_json, script, usage_error

from shekel.testing import FakeProvider

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
