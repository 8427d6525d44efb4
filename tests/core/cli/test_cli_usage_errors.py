"""Usage errors of the shekel command: exit 2, a message that says what to fix, no run."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from cli_support import EXAMPLE, SHOW_CONFIG, cli, script, usage_error

from shekel._cli_config import SETTINGS


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
