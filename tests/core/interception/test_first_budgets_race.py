"""No call goes out unrecorded, even when many threads or tasks enter the process's first
budgets at the same moment (the interceptor is installed on first use).

Each scenario runs in a fresh interpreter, where no budget has been entered yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Only the SDKs a scenario uses are imported: an httpx flavour that no SDK has imported yet is
# where installing the interceptor used to race (anthropic 2 and openai 3 use httpx2 only).
PRELUDE = """
import asyncio, json, sys, threading, warnings
warnings.simplefilter("ignore")
import shekel
from shekel.testing import FakeProvider
fake = FakeProvider()
fake.set_usage(input_tokens=20, output_tokens=500)
"""

THREADS_OWN_BUDGETS = """
import anthropic
client = anthropic.Anthropic(api_key="t", base_url=fake.anthropic_base_url, max_retries=2)
barrier = threading.Barrier(20)
budgets, errors = [], []
def work(i):
    b = shekel.budget(max_usd=1.0, name=f"w{i}")
    budgets.append(b)
    barrier.wait()
    try:
        with b:
            client.messages.create(model="claude-haiku-4-5", max_tokens=500,
                                   messages=[{"role": "user", "content": "hi"}])
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
recorded = sum(b.snapshot().llm_calls_used for b in budgets)
print(json.dumps({"sent": len(fake.requests), "recorded": recorded,
                  "errors": errors}))
"""

THREADS_ONE_STRICT_BUDGET = """
import openai
oai = openai.OpenAI(api_key="t", base_url=fake.openai_base_url, max_retries=2)
cap = 0.0303  # about six gpt-4o calls of 20 + 500 tokens
shared = shekel.budget(max_usd=cap, name="shared", strict=True)
barrier = threading.Barrier(20)
errors = []
def work():
    barrier.wait()
    try:
        with shared:
            oai.chat.completions.create(model="gpt-4o", max_tokens=500,
                                        messages=[{"role": "user", "content": "hi"}])
    except shekel.BudgetExceededError:
        pass
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work) for _ in range(20)]
for t in threads: t.start()
for t in threads: t.join()
real = sum(20 * 2.5e-6 + min(500, r.body.get("max_tokens", 500)) * 10e-6 for r in fake.requests)
recorded = shared.snapshot().llm_calls_used
print(json.dumps({"sent": len(fake.requests), "recorded": recorded, "errors": errors,
                  "real": real, "spent": shared.spent, "cap": cap}))
"""

TASKS = """
import anthropic, openai
async def main():
    oai = openai.AsyncOpenAI(api_key="t", base_url=fake.openai_base_url, max_retries=2)
    claude = anthropic.AsyncAnthropic(api_key="t", base_url=fake.anthropic_base_url, max_retries=2)
    cap = 0.0505  # ten gpt-4o calls of 20 + 500 tokens: the strict half must stop there
    shared = shekel.budget(max_usd=cap, name="shared", strict=True)
    own, errors = [], []
    start = asyncio.Event()
    async def work(i):
        await start.wait()
        try:
            if i % 2:
                b = shekel.budget(max_usd=1.0, name=f"t{i}")
                own.append(b)
                async with b:
                    await claude.messages.create(model="claude-haiku-4-5", max_tokens=500,
                                                 messages=[{"role": "user", "content": "hi"}])
            else:
                async with shared:
                    await oai.chat.completions.create(model="gpt-4o", max_tokens=500,
                                                      messages=[{"role": "user", "content": "hi"}])
        except shekel.BudgetExceededError:
            pass
        except Exception as exc:
            errors.append(repr(exc))
    tasks = [asyncio.create_task(work(i)) for i in range(100)]
    await asyncio.sleep(0)
    start.set()
    await asyncio.gather(*tasks)
    return shared, own, errors, cap
shared, own, errors, cap = asyncio.run(main())
gpt = [r for r in fake.requests if r.path.endswith("/chat/completions")]
real = sum(20 * 2.5e-6 + min(500, r.body.get("max_tokens", 500)) * 10e-6 for r in gpt)
print(json.dumps({"sent": len(fake.requests),
                  "recorded": shared.snapshot().llm_calls_used
                  + sum(b.snapshot().llm_calls_used for b in own),
                  "errors": errors, "real": real, "spent": shared.spent, "cap": cap}))
"""

pytestmark = pytest.mark.slow  # each race runs in a fresh process of its own


def run_fresh(body: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("attempt", [1])
def test_twenty_threads_entering_their_first_budgets_are_all_recorded(attempt: int) -> None:
    result = run_fresh(THREADS_OWN_BUDGETS)
    assert result["errors"] == []
    assert result["sent"] == result["recorded"] == 20


@pytest.mark.parametrize("attempt", [1])
def test_twenty_threads_racing_into_a_strict_budget_hold_its_cap(attempt: int) -> None:
    result = run_fresh(THREADS_ONE_STRICT_BUDGET)
    assert result["errors"] == []
    assert result["sent"] == result["recorded"]
    assert result["real"] <= result["cap"]  # type: ignore[operator]
    assert result["spent"] == pytest.approx(result["real"], abs=1e-12)


@pytest.mark.parametrize("attempt", [1])
def test_a_hundred_tasks_entering_their_first_budgets(attempt: int) -> None:
    result = run_fresh(TASKS)
    assert result["errors"] == []
    assert result["sent"] == result["recorded"]
    assert result["real"] <= result["cap"]  # type: ignore[operator]
    assert result["spent"] == pytest.approx(result["real"], abs=1e-12)
