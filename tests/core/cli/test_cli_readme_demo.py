"""The README's first command: the runaway agent stopped by its budget against the fake provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import EXAMPLE, ROOT, cli, last_json, python_m_shekel, script

from shekel._pricing import TokenUsage, rate_for
from shekel.testing import FakeProvider


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
