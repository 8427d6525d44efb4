"""A worker process for the store tests: real openai SDK calls to the fake provider, under a
budget kept in a store. Prints one JSON line with what it recorded itself.

    python store_worker.py calls STORE NAME CAP_USD BASE_URL N [GO_FILE]
        N strict calls (max_tokens=5); waits for GO_FILE to exist before the first one
    python store_worker.py hold STORE NAME CAP_USD BASE_URL
        one strict call that the test kills while the provider is slow to answer
    python store_worker.py trickle STORE NAME CAP_USD BASE_URL
        calls until killed, printing after each what it has recorded (nano-dollars)
"""

from __future__ import annotations

import json
import os
import sys
import time

import openai

from shekel import BudgetExceededError, budget

MESSAGES = [{"role": "user", "content": "Say hello."}]


def calls(store: str, name: str, cap: float, base_url: str, n: int, go: str | None) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=2)
    refused = 0
    b = budget(name=name, max_usd=cap, strict=True, store=store)
    with b:  # the first budget loads the price table: before the race, so that all start even
        pass
    print("ready", flush=True)
    while go and not os.path.exists(go):
        time.sleep(0.01)
    with b:
        for _ in range(n):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
            except BudgetExceededError as error:
                if error.sent:
                    raise
                refused += 1
        records = b.history().recent()
    print(
        json.dumps(
            {
                "nanos": sum(r.cost for r in records),
                "calls": len(records),
                "tokens": sum(r.tokens for r in records),
                "refused": refused,
            }
        ),
        flush=True,
    )


def hold(store: str, name: str, cap: float, base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=2)
    print("ready", flush=True)
    with budget(name=name, max_usd=cap, strict=True, store=store):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def trickle(store: str, name: str, cap: float, base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=2)
    print("ready", flush=True)
    with budget(name=name, max_usd=cap, store=store) as b:
        while True:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
            print(sum(r.cost for r in b.history().recent()), flush=True)


if __name__ == "__main__":
    command, store, name, cap, base_url, *rest = sys.argv[1:]
    if command == "calls":
        calls(store, name, float(cap), base_url, int(rest[0]), rest[1] if len(rest) > 1 else None)
    elif command == "trickle":
        trickle(store, name, float(cap), base_url)
    else:
        hold(store, name, float(cap), base_url)
