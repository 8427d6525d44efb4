"""Two OpenAI Agents SDK agents and a handoff, with a budget per agent, run offline.

Triage reads the question and hands off to Researcher, who searches (a priced tool) and
answers. Inside the "support" budget each agent pays into a budget named after it: a handoff
moves the charge to the agent that runs next. Researcher may make three LLM calls: the first
question takes two, so on the second, after one call and a search, it is stopped before its
next request is sent (``AgentBudgetExceededError``, which the SDK does not retry), and that run
ends. ``tree()`` shows who spent what.

No API key is needed: the agents' models are pointed at shekel's fake OpenAI server
(``shekel.testing.FakeProvider``), which answers each request with 1,500 input and 400 output
tokens (gpt-4o: $0.00775 a call). openai-agents is not part of the development workspace; run
the example with the environment of the ``tests_openai_agents`` nox session:

    uv run nox -s tests_openai_agents     # builds .nox/tests_openai_agents (once)
    .nox/tests_openai_agents/bin/python examples/openai_agents_handoff.py
"""

from __future__ import annotations

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_trace_processors
from openai import AsyncOpenAI

from shekel import budget
from shekel.testing import FakeProvider, Reply, ToolCall
from shekel_openai_agents import AgentBudgetExceededError, agent_budgets

set_trace_processors([])  # offline: send no traces to OpenAI


@function_tool
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"three sources about {query}"


def agents(fake: FakeProvider) -> Agent:
    def model() -> OpenAIResponsesModel:
        client = AsyncOpenAI(base_url=fake.openai_base_url, api_key="offline", max_retries=0)
        return OpenAIResponsesModel("gpt-4o", client)

    researcher = Agent(name="Researcher", model=model(), tools=[search])
    return Agent(name="Triage", model=model(), handoffs=[researcher])


def main() -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=1500, output_tokens=400)
        # The model's answers, in order: Triage hands off, Researcher searches, then answers.
        script = [
            Reply(tool_calls=(ToolCall("transfer_to_researcher", {}),)),
            Reply(tool_calls=(ToolCall("search", {"query": "agent budgets"}),)),
        ]
        limits = {"Researcher": {"max_llm_calls": 3, "max_usd": 0.50}}
        with budget(name="support", tool_prices={"search": 0.01}) as spend, agent_budgets(limits):
            for question in ("How do I cap agent spend?", "And per user?"):
                fake.enqueue(*script)
                try:
                    Runner.run_sync(agents(fake), question)
                    print(f"answered: {question} (${spend.spent:.5f} so far)")
                except AgentBudgetExceededError as stopped:
                    print(f"stopped: {stopped.agent_name} ({stopped.budget_name})")
        print(f"requests sent: {len(fake.requests)}")
        print(spend.tree())


if __name__ == "__main__":
    main()
