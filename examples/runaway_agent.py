"""An agent stuck in a retry loop, and the budget that stops it.

The agent asks gpt-4o for a JSON answer, and every time the reply does not parse it asks the
model to fix it. The model never gets it right, and nothing in the loop gives up: without a
limit this burns money until someone notices. The agent has no shekel limit in it. Run it
under one:

    uv run shekel run --budget 0.05 examples/runaway_agent.py

Every call the openai SDK makes is priced and counted; the call that crosses $0.05 raises
BudgetExceededError, which ends the script, and shekel prints the spend summary on stderr
and exits with code 1. The call that crosses the limit has been paid for; with ``--strict``
the cap is never crossed: the last affordable call has its output shortened to fit, and the
next one is refused before it is sent.

No API key is needed: unless OPENAI_BASE_URL is set, the script starts shekel's fake
OpenAI-compatible server in-process (``shekel.testing.FakeProvider``), which answers every
request with 2,000 input and 800 output tokens (gpt-4o: $0.013 a call).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import openai

import shekel
from shekel.testing import FakeProvider

MODEL = "gpt-4o"
TASK = (
    "List three risks of running an LLM agent without a spend limit. "
    'Answer with JSON only: {"risks": [...]}'
)
SAFETY_STOP = 200
"""Only so that the demo cannot loop forever when it is run without a budget."""

# Stands in for the long system prompt a real agent sends: instructions and a tool catalogue,
# about 2,000 tokens, which is what the fake provider reports as each request's input.
SYSTEM_PROMPT = (
    "You are a careful research agent. Use the tools below when they help.\n"
    + "\n".join(
        f"- tool_{n:02d}(query: str) -> str: looks up facts of kind {n} in the team's knowledge "
        f"base and returns a short summary with sources; call it at most once per question."
        for n in range(45)
    )
)


def cost_so_far() -> str:
    active = shekel.current_budget()
    if active is None:
        return "no budget active, nobody is counting"
    limit = "no limit" if active.limit is None else f"${active.limit:.2f}"
    return f"spent so far ${active.spent:.4f} of {limit}"


def main() -> None:
    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENAI_BASE_URL"):
            client = openai.OpenAI()  # the real API, or whatever the variable points at
        else:
            fake = stack.enter_context(
                FakeProvider(default_text="Sure! Here are the risks: cost, loops, and more cost.")
            )
            fake.set_usage(input_tokens=2_000, output_tokens=800)
            client = openai.OpenAI(base_url=fake.openai_base_url, api_key="fake-key")
        stack.callback(client.close)

        print(f"Task: {TASK}")
        messages: list[dict[str, str]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": TASK},
        ]
        attempt = 0
        while attempt < SAFETY_STOP:  # no real stopping condition: that is the bug
            attempt += 1
            print(f"attempt {attempt}: asking {MODEL} ...", flush=True)
            reply = client.chat.completions.create(
                model=MODEL,
                messages=messages,  # type: ignore[arg-type]
            )
            answer = reply.choices[0].message.content or ""
            try:
                risks = json.loads(answer)["risks"]
            except (ValueError, KeyError, TypeError):
                print(f"  reply is not the JSON asked for; retrying ({cost_so_far()})", flush=True)
                messages.append({"role": "assistant", "content": answer})
                messages.append(
                    {"role": "user", "content": "That is not valid JSON. Fix your answer."}
                )
                continue
            print(f"done: {risks}")
            return
    print(f"gave up after {SAFETY_STOP} attempts ({cost_so_far()})", file=sys.stderr)


if __name__ == "__main__":
    main()
