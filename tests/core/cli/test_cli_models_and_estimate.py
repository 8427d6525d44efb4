"""shekel models and shekel estimate: the price table and what a call would cost."""

from __future__ import annotations

import json

import pytest
from cli_support import cli


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
