"""Runs side by side with ``asyncio.gather``, with the real openai-agents: each request is
charged to the agent whose run sent it, however the runs interleave."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, Runner, Usage
from oa_support import CALL_USD, LocalModel, responses

from shekel import budget
from shekel.testing import FakeProvider, Reply


async def ran(agent: Agent, prompt: str) -> Any:
    return (await Runner.run(agent, prompt)).final_output


async def streamed(agent: Agent, prompt: str) -> Any:
    result = Runner.run_streamed(agent, prompt)
    async for _ in result.stream_events():
        pass
    return result.final_output


def slow(fake: FakeProvider, count: int) -> None:
    """``count`` replies that each take a while: the runs' requests overlap."""
    fake.enqueue(*[Reply(latency=0.05) for _ in range(count)])


def test_parallel_runs_of_shared_agents_are_charged_to_each(fake: FakeProvider) -> None:
    writer = Agent(name="Writer", model=responses(fake))
    critic = Agent(name="Critic", model=responses(fake))
    slow(fake, 8)

    async def main() -> list[Any]:
        # A new coroutine for each run (gather awaits a repeated one once).
        runs = [run(agent, "Go") for run in (ran, streamed) for agent in (writer, critic) * 2]
        return await asyncio.gather(*runs)

    with budget(max_usd=1, name="app") as app:
        outputs = asyncio.run(main())
    assert outputs == [fake.default_text] * 8
    assert sorted((c.name, c.snapshot().llm_calls_used) for c in app.children) == [
        ("Critic", 4),
        ("Writer", 4),
    ]
    assert app.snapshot().llm_calls_used == 8 == len(fake.requests)
    assert app.spent_direct == 0


def test_parallel_requests_of_users_with_budgets_of_their_own(fake: FakeProvider) -> None:
    agent = Agent(name="Assistant", model=responses(fake))
    slow(fake, 6)

    async def serve(user: str) -> float:
        with budget(name=user) as spend:
            await Runner.run(agent, f"Help {user}")
            await streamed(agent, f"Help {user} again")
        return spend.spent

    async def main() -> list[float]:
        return await asyncio.gather(*(serve(user) for user in ("ann", "bob", "cy")))

    with budget(max_usd=1, name="app") as app:
        spent = asyncio.run(main())
    assert spent == pytest.approx([2 * CALL_USD] * 3)
    for user in ("ann", "bob", "cy"):
        assistant = app.find_child(user).find_child("Assistant")  # type: ignore[union-attr]
        assert assistant is not None
        assert assistant.snapshot().llm_calls_used == 2
    assert app.snapshot().llm_calls_used == 6 == len(fake.requests)


def test_parallel_handoffs_from_a_local_model(fake: FakeProvider) -> None:
    """Triage runs on a model no SDK carries (usage reported by the hooks), Researcher on the
    fake provider (recorded by the interceptor): four runs at once, each counted once."""

    def triage() -> Agent:
        usage = Usage(requests=1, input_tokens=500, output_tokens=10, total_tokens=510)
        model = LocalModel(usage=usage, calls_tool="transfer_to_researcher")
        researcher = Agent(name="Researcher", model=responses(fake))
        return Agent(name="Triage", model=model, handoffs=[researcher])

    slow(fake, 4)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(run(triage(), "Go") for run in (ran, streamed, ran, streamed))
        )

    with budget(max_usd=1, name="app") as app:
        asyncio.run(main())
    by_name = {child.name: child for child in app.children}
    assert by_name["Triage"].snapshot().llm_calls_used == 4
    assert by_name["Triage"].snapshot().tokens_used == 4 * 510
    assert by_name["Researcher"].snapshot().llm_calls_used == 4 == len(fake.requests)
    assert {c.source for c in by_name["Triage"].history().calls} == {"openai-agents"}
    assert {c.source for c in by_name["Researcher"].history().calls} == {"sdk"}
