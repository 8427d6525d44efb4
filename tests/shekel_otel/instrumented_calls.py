"""Calls under OpenLLMetry's openai and anthropic instrumentations, with shekel-otel wired;
prints the finished spans as JSON (run by ``test_otel_spans.py`` in a process of its own:
these instrumentations patch the SDKs for the whole process and do not all undo it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import anthropic
import openai
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from otel_support import CLAUDE, GPT, PRICES, USER, Telemetry

import shekel_otel
from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply


def run(fake: FakeProvider, telemetry: Telemetry) -> None:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    aclaude = anthropic.AsyncAnthropic(
        base_url=fake.anthropic_base_url, api_key="test", max_retries=0
    )
    tracer = telemetry.tracer_provider.get_tracer("app")
    fake.enqueue(
        Reply(text="a", input_tokens=1_000, output_tokens=10),  # openai
        Reply(text="b", input_tokens=2_000, output_tokens=20),  # anthropic
        Reply(text="one two three", input_tokens=100, output_tokens=3),  # openai stream
        Reply(text="four", input_tokens=200, output_tokens=1),  # async anthropic
        Reply(text="five six", input_tokens=300, output_tokens=2),  # async anthropic stream
    )

    async def ask_claude() -> None:
        await aclaude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        async with aclaude.messages.stream(
            model=CLAUDE,
            max_tokens=100,
            messages=USER,  # type: ignore[arg-type]
        ) as stream:
            await stream.until_done()
        await aclaude.close()

    with budget(max_usd=1, name="app", prices=PRICES), tracer.start_as_current_span("work"):
        oai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
        # This instrumentation does not make its span the current one.
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        for _ in oai.chat.completions.create(model=GPT, messages=USER, stream=True):  # type: ignore[arg-type]
            pass
        asyncio.run(ask_claude())
        with budget(max_llm_calls=1, name="capped"):
            oai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
            try:
                oai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
            except BudgetExceededError:
                pass
            else:
                raise AssertionError("the call over the limit was not refused")
    oai.close()
    claude.close()


def main() -> None:
    telemetry = Telemetry.create()
    for instrumentor in (OpenAIInstrumentor(), AnthropicInstrumentor()):
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    shekel_otel.instrument(
        meter_provider=telemetry.meter_provider, tracer_provider=telemetry.tracer_provider
    )
    with FakeProvider() as fake:
        run(fake, telemetry)
        requests = len(fake.requests)
    spans: list[dict[str, Any]] = [
        {
            "name": span.name,
            "status": span.status.status_code.name,
            "attributes": {k: v for k, v in (span.attributes or {}).items() if "shekel" in k},
            "events": [
                {"name": e.name, "attributes": dict(e.attributes or {})}
                for e in span.events
                if e.name.startswith("shekel.")
            ],
        }
        for span in telemetry.spans()
    ]
    json.dump({"spans": spans, "requests": requests}, sys.stdout)


if __name__ == "__main__":
    main()
