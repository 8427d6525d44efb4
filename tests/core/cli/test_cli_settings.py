"""shekel run's settings: flags over environment variables over a budget file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_support import SHOW_CONFIG, cli, last_json, script


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
