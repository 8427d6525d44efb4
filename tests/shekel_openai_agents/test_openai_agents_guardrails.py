"""Guardrails with the real openai-agents: an agent a guardrail runs pays for its own model
calls, not the agent it guards."""

from __future__ import annotations

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    RunContextWrapper,
    Runner,
    input_guardrail,
    output_guardrail,
)
from oa_support import CALL_USD, responses

from shekel import budget
from shekel.testing import FakeProvider


def guarded(fake: FakeProvider, *, trips: bool = False, parallel: bool = True) -> Agent:
    guard = Agent(name="Guard", model=responses(fake))
    checker = Agent(name="Checker", model=responses(fake))

    @input_guardrail(run_in_parallel=parallel)
    async def screen(
        ctx: RunContextWrapper[None], agent: Agent, text: object
    ) -> GuardrailFunctionOutput:
        verdict = await Runner.run(guard, str(text), context=ctx.context)
        return GuardrailFunctionOutput(output_info=verdict.final_output, tripwire_triggered=trips)

    @output_guardrail
    async def review(
        ctx: RunContextWrapper[None], agent: Agent, output: object
    ) -> GuardrailFunctionOutput:
        verdict = await Runner.run(checker, str(output), context=ctx.context)
        return GuardrailFunctionOutput(output_info=verdict.final_output, tripwire_triggered=False)

    return Agent(
        name="Assistant",
        model=responses(fake),
        input_guardrails=[screen],
        output_guardrails=[review],
    )


def test_guardrail_agents_are_charged_to_themselves(fake: FakeProvider) -> None:
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(guarded(fake), "Hello")
    assert sorted((c.name, c.snapshot().llm_calls_used) for c in app.children) == [
        ("Assistant", 1),
        ("Checker", 1),
        ("Guard", 1),
    ]
    assert app.snapshot().llm_calls_used == 3 == len(fake.requests)
    assert app.spent == pytest.approx(3 * CALL_USD)


def test_a_tripped_guardrail_keeps_what_its_agent_spent(fake: FakeProvider) -> None:
    # Run before the agent's model call: a guardrail that trips or fails while that call is in
    # flight makes openai-agents 0.19 drop the call's coroutine unfinished (it complains when
    # the coroutine is collected, in whichever test that happens).
    with budget(max_usd=1, name="app") as app:
        with pytest.raises(InputGuardrailTripwireTriggered):
            Runner.run_sync(guarded(fake, trips=True, parallel=False), "Hello")
    assert [(c.name, c.snapshot().llm_calls_used) for c in app.children] == [("Guard", 1)]
    assert app.snapshot().llm_calls_used == 1 == len(fake.requests)


def test_a_guardrail_agent_with_limits_of_its_own(fake: FakeProvider) -> None:
    from shekel_openai_agents import AgentBudgetExceededError

    with budget(max_usd=1, name="app") as app:
        app.child("Guard", max_llm_calls=1)
        Runner.run_sync(guarded(fake), "Hello")
        with pytest.raises(AgentBudgetExceededError) as caught:  # see the test above
            Runner.run_sync(guarded(fake, parallel=False), "Hello again")
    assert caught.value.budget_name == "app.Guard"
    assert app.find_child("Guard").snapshot().llm_calls_used == 1  # type: ignore[union-attr]
