"""The package's shape: its shekel plugin, the supported LangGraph range, its public names."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib.metadata import version

import pytest

import shekel_langgraph
from shekel import plugin_manager
from shekel_langgraph import package


def test_the_plugin_is_registered_through_the_entry_point() -> None:
    plugin = plugin_manager().get_plugin("langgraph")
    assert plugin is not None
    assert plugin.__name__ == "shekel_langgraph._plugin"


def test_loading_the_plugin_does_not_import_langgraph() -> None:
    code = (
        "import sys, shekel\n"
        "shekel.plugin_manager()\n"
        "assert 'shekel_langgraph._plugin' in sys.modules, 'plugin not loaded'\n"
        "print(sorted(m for m in ('langgraph', 'langchain_core') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_installed_langgraph_is_supported() -> None:
    assert package.supported()
    assert version("langgraph").split(".")[0] == "1"


@pytest.fixture
def unsupported(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(package, "_instruments", ("langgraph < 1",))
    package.supported.cache_clear()
    package._warned.clear()
    yield
    package.supported.cache_clear()
    package._warned.clear()


@pytest.mark.usefixtures("unsupported")
def test_an_unsupported_langgraph_is_reported_once() -> None:
    assert not package.supported()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        package.warn_if_unsupported()
        package.warn_if_unsupported()
        shekel_langgraph.budgeted_node(lambda state: {})
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "supports langgraph < 1" in message
    assert f"found langgraph {version('langgraph')}" in message


def test_the_public_names() -> None:
    for name in shekel_langgraph.__all__:
        assert getattr(shekel_langgraph, name) is not None
    assert sorted(dir(shekel_langgraph)) == sorted(shekel_langgraph.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = shekel_langgraph.nope  # type: ignore[attr-defined]
    assert issubclass(shekel_langgraph.NodeBudgetExceededError, RuntimeError)
