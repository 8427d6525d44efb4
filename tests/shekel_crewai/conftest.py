"""Real crewai, offline: CrewAI's native OpenAI provider pointed at shekel's fake provider, and
a custom ``BaseLLM`` that never reaches an SDK.

Runs in the ``tests_crewai`` nox session's environment (the workspace has no crewai). CrewAI
is imported once, here, after its telemetry is switched off and ``HOME`` points at a
temporary directory (CrewAI writes a key and a kickoff database under the user's data dir).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_HOME = tempfile.mkdtemp(prefix="shekel-crewai-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update(
    CREWAI_DISABLE_TELEMETRY="true",
    OTEL_SDK_DISABLED="true",
    CREWAI_TRACING_ENABLED="false",
    HOME=_HOME,
    XDG_DATA_HOME=os.path.join(_HOME, ".local", "share"),
)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from crewai.hooks import InterceptionPoint, unregister_hook  # noqa: E402
from crewai.hooks.dispatch import get_global_hook_list  # noqa: E402
from crews import FINAL, IN, OUT, LLMCallCounter  # noqa: E402

import shekel  # noqa: E402
from shekel.testing import FakeProvider  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # CrewAI warns about its own deprecated fields on every kickoff.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:crewai")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:crewai.*")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(default_text=FINAL) as provider:
        provider.set_usage(input_tokens=IN, output_tokens=OUT)
        yield provider


@pytest.fixture(autouse=True)
def _nothing_stays_active() -> Iterator[None]:
    assert shekel.current_budget() is None
    yield
    assert shekel.current_budget() is None, "a budget was left active after the test"


@pytest.fixture
def tries() -> Iterator[LLMCallCounter]:
    """Counts the LLM calls CrewAI tries, per role. Put first in CrewAI's hook list (a list
    CrewAI lets callers edit in place), so it runs before shekel's hook may refuse the call."""
    counter = LLMCallCounter()
    get_global_hook_list(InterceptionPoint.PRE_MODEL_CALL).insert(0, counter)
    yield counter
    unregister_hook(InterceptionPoint.PRE_MODEL_CALL, counter)
