"""Installed, with no code: reports to the global providers, and costs nothing without an SDK.

Each case runs ``zero_config_calls.py`` in a process of its own: global providers can be set
only once per process, and shekel's install runs once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from otel_support import CLAUDE, GPT, cost

SCRIPT = Path(__file__).with_name("zero_config_calls.py")

PER_CALL_HOOKS = {
    "shekel_spend_recorded",
    "shekel_limit_exceeded",
    "shekel_warning_crossed",
    "shekel_fallback_activated",
    "shekel_budget_exited",
}


def run(mode: str, **env: str) -> dict[str, Any]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment = {**inherited, **env}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), mode],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def by_path_and_model(points: list[list[Any]]) -> dict[tuple[str, str], float]:
    return {
        (attributes["shekel.budget.path"], attributes["gen_ai.request.model"]): value
        for attributes, value in points
    }


def test_global_providers_set_before_the_first_budget() -> None:
    found = run("before")
    one_call = {GPT: cost(GPT, 12, 3), CLAUDE: cost(CLAUDE, 12, 3)}
    calls = {"early": 2, "early.late": 1}
    assert by_path_and_model(found["metrics"]["shekel.cost"]) == {
        (path, model): pytest.approx(usd * calls[path])
        for path in calls
        for model, usd in one_call.items()
    }
    tokens = {
        (a["shekel.budget.path"], a["gen_ai.request.model"], a["gen_ai.token.type"]): value
        for a, value in found["metrics"]["gen_ai.client.token.usage"]
    }
    assert tokens == {
        (path, model, kind): [calls[path], calls[path] * (12 if kind == "input" else 3)]
        for path in calls
        for model in (GPT, CLAUDE)
        for kind in ("input", "output")
    }
    # The anthropic SDK traces its calls to the global provider: each has its span. The
    # openai call's cost goes on the application's span around it.
    spans = [(s["name"], s["shekel"].get("shekel.cost_usd")) for s in found["spans"]]
    assert spans == [
        *[("anthropic.messages.create", pytest.approx(one_call[CLAUDE]))] * 3,
        ("work", pytest.approx(one_call[GPT])),
    ]
    assert set(found["hooks_in_first_budget"]) >= PER_CALL_HOOKS


def test_global_providers_set_after_the_first_budget() -> None:
    found = run("after")
    # The first calls went out before there was anywhere to report them; from the first call
    # recorded after the providers were set on, everything is reported.
    assert found["hooks_in_first_budget"] == {
        "shekel_install": ["shekel_otel._plugin"],
        "shekel_spend_recorded": ["Watcher"],
    }
    assert by_path_and_model(found["metrics"]["shekel.cost"]) == {
        (path, model): pytest.approx(cost(model, 12, 3))
        for path in ("early", "early.late")
        for model in (GPT, CLAUDE)
    }
    # The budget entered before is reported by the gauges too, with all its spend.
    remaining = {
        a["shekel.budget.path"]: v
        for a, v in found["gauges_while_active"]["shekel.budget.remaining"]
    }
    per_pair = cost(GPT, 12, 3) + cost(CLAUDE, 12, 3)
    assert remaining == {
        "early": pytest.approx(1 - 3 * per_pair),
        "early.late": pytest.approx(0.5 - per_pair),
    }
    assert set(found["hooks_at_end"]) >= PER_CALL_HOOKS


def test_without_an_sdk_only_a_look_at_each_call() -> None:
    found = run("none")
    # The install, and at each recorded call a test that the providers are still the API's
    # placeholders: nothing on the way of a request, nothing when budgets are entered.
    assert found["hooks_at_end"] == {
        "shekel_install": ["shekel_otel._plugin"],
        "shekel_spend_recorded": ["Watcher"],
    }
    assert found["sdk_imported"] is False
    assert found["metrics"] == {}


def test_turned_off_by_opentelemetrys_own_variable() -> None:
    found = run("env", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests, shekel")
    assert found["hooks_at_end"] == {"shekel_install": ["shekel_otel._plugin"]}
    assert found["spend_hook_listened"] is False  # shekel skips the spend hook altogether
    assert found["metrics"] == {}
    assert all(span["shekel"] == {} for span in found["spans"])


def test_providers_named_in_the_environment_are_reported_to() -> None:
    """The API makes the SDK's providers named in ``OTEL_PYTHON_*_PROVIDER`` when first asked
    for them: shekel-otel asks the API's getters, and so finds them at the first recorded call,
    before the application itself asked."""
    found = run(
        "named",
        OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider",
        OTEL_PYTHON_METER_PROVIDER="sdk_meter_provider",
    )
    assert set(found["hooks_in_first_budget"]) >= PER_CALL_HOOKS
    # Spans from when the application added its exporter on: the second pair of calls.
    spans = [(s["name"], s["shekel"].get("shekel.cost_usd")) for s in found["spans"]]
    assert spans == [
        *[("anthropic.messages.create", pytest.approx(cost(CLAUDE, 12, 3)))] * 2,
        ("work", pytest.approx(cost(GPT, 12, 3))),
    ]
