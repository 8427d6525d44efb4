"""A CrewAI research crew with a budget per agent, run offline.

A Research Analyst works two tasks, then a Content Writer turns the notes into a report. The
crew is wrapped once with its limits: $0.10 for the crew, two LLM calls (and $0.05) for the
analyst, $0.02 for the writer. It then runs twice inside a "nightly" budget, where it gets a
budget of its own. The first kickoff fits; on the second the analyst has no calls left and is
stopped before its next LLM call is sent (``AgentBudgetExceededError``, which CrewAI neither
retries nor wraps), which ends the crew. ``tree()`` shows who spent what.

No API key is needed: the agents use CrewAI's native OpenAI provider pointed at shekel's fake
OpenAI-compatible server (``shekel.testing.FakeProvider``), which answers every request with
a final answer, 1,500 input and 400 output tokens (gpt-4o: $0.00775 a call). crewai is not
part of the development workspace; run the example with the environment of the
``tests_crewai`` nox session:

    uv run nox -s tests_crewai            # builds .nox/tests_crewai (once)
    .nox/tests_crewai/bin/python examples/crewai_research_crew.py
"""

from __future__ import annotations

import os

# CrewAI's telemetry would try to reach the network; this example stays offline.
for _name, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
}.items():
    os.environ.setdefault(_name, _value)

from crewai import LLM, Agent, Crew, Task  # noqa: E402

from shekel import budget  # noqa: E402
from shekel.testing import FakeProvider  # noqa: E402
from shekel_crewai import AgentBudgetExceededError, crew_budget  # noqa: E402

ANSWER = "Thought: I now know the final answer\nFinal Answer: Three findings, cited."


def build_crew(llm: LLM) -> Crew:
    analyst = Agent(
        role="Research Analyst",
        goal="Find reliable facts about LLM cost control",
        backstory="A careful analyst who cites sources.",
        llm=llm,
    )
    writer = Agent(
        role="Content Writer",
        goal="Turn research notes into a short report",
        backstory="A clear, concise technical writer.",
        llm=llm,
    )
    return Crew(
        agents=[analyst, writer],
        tasks=[
            Task(
                name="survey",
                description="Survey the field.",
                expected_output="notes",
                agent=analyst,
            ),
            Task(
                name="verify",
                description="Check the sources.",
                expected_output="notes",
                agent=analyst,
            ),
            Task(
                name="report",
                description="Write the report.",
                expected_output="a report",
                agent=writer,
            ),
        ],
    )


def main() -> None:
    with FakeProvider(default_text=ANSWER) as fake:
        fake.set_usage(input_tokens=1500, output_tokens=400)
        crew = crew_budget(
            build_crew(LLM(model="gpt-4o", base_url=fake.openai_base_url, api_key="offline")),
            max_usd=0.10,
            agents={
                "Research Analyst": {"max_usd": 0.05, "max_llm_calls": 2},
                "Content Writer": 0.02,
            },
        )
        with budget(name="nightly") as spend:
            crew.kickoff()
            print(f"first kickoff: {len(fake.requests)} requests, ${spend.spent:.5f}")
            try:
                crew.kickoff()
            except AgentBudgetExceededError as stopped:
                print(f"second kickoff stopped: {stopped.agent_role} ({stopped.budget_name})")
        print(f"requests sent: {len(fake.requests)}")
        print(spend.tree())


if __name__ == "__main__":
    main()
