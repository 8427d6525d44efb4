"""Development sessions: ``uv run nox -s tests`` (or ``tests_core`` and one ``tests_<package>``
per folder of ``tests/``, ``lint``, ``typecheck``, ``bench``); ``uv run nox -l`` lists them.

These sessions run their tool through ``uv run`` in the workspace's own environment (``uv sync``
keeps it in step with ``uv.lock``), so nox creates no virtual environments for them. Extra
arguments after ``--`` go to the tool, e.g. ``nox -s tests -- -k pool`` or
``nox -s bench -- --quick``.

The workspace pins openai 2.x (crewai and llama-index-llms-openai pin ``openai<3``), but users
also run shekel on openai 3 and on the oldest SDKs it declares. Two sessions run ``tests/core``
in environments of their own, built by nox with ``uv venv`` + ``uv pip install`` in
``.nox/<session>`` from the interpreter nox runs under (no Python download, no lock to keep):

- ``tests_core_newest``: the newest openai 3.x and the newest anthropic shekel allows, with
  LangChain's openai and anthropic packages on top; resolved afresh each run (``--upgrade``).
- ``tests_core_lowest``: exactly the lower bounds shekel declares for pluggy, genai-prices,
  openai and anthropic, and the workspace's lower bound for httpx. Only those are pinned, to
  ``==`` their floor: everything else resolves to its newest compatible version, so uv never
  backtracks to ancient releases. LangChain needs far newer SDKs, so
  ``test_libraries_on_the_sdks.py`` does not run there.

Both read their requirements from the pyproject files (shekel's dependencies and extras, and
the test tools of the workspace's ``dev`` group), print the versions they installed, and stop
if the SDK generation is not the one meant. Installs come from uv's cache when it has them:
``UV_OFFLINE=1 nox -s tests_core_newest`` works without the network once they have run.
``nox -s tests_core_newest tests_core_lowest -- -k stream`` passes options to pytest.

``tests_crewai`` builds an environment the same way for ``packages/shekel-crewai`` (outside
the workspace: crewai pins ``openai<3`` and ``pydantic<2.13``): the newest supported crewai,
mypy on the package, then ``tests/shekel_crewai``; ``tests_crewai_lowest`` does the same with
crewai at the lower bound the package declares.

``tests_llamaindex`` builds ``.nox/tests_llamaindex`` the same way for
``packages/shekel-llamaindex``, which stays out of the workspace (LlamaIndex is some 200 MB and
llama-index-llms-openai pins ``openai<3``): the core and the package editable, the newest
LlamaIndex its package allows with its OpenAI LLM and embeddings, and the test tools; then
``mypy --strict`` on the package and ``pytest tests/shekel_llamaindex`` (the workspace's pytest
run ignores that folder). ``tests_llamaindex_lowest`` does the same with llama-index-core at
the lower bound the package declares.

``tests_openai_agents`` builds ``.nox/tests_openai_agents`` for ``packages/shekel-openai-agents``
(outside the workspace: openai-agents 0.23 and later need openai 3): the newest openai-agents
the package allows, on openai 3.x, mypy on the package, then ``tests/shekel_openai_agents``;
``tests_openai_agents_lowest`` does the same with openai-agents at the lower bound the package
declares, on openai 2.x.

``tests_shekel_otel_lowest`` runs ``tests/shekel_otel`` on the lowest opentelemetry-api (and
SDK) shekel-otel declares.
``tests_litellm`` builds ``.nox/tests_litellm`` for ``tests/sdk_litellm``: LiteLLM's Gemini
and Bedrock paths (about 140 MB, and it installs aiohttp, so it stays out of the workspace).

``tests_shekel_langchain_lowest`` and ``tests_shekel_langchain_newest`` do the same for
``tests/shekel_langchain``: langchain-core, langchain-openai and langchain-anthropic 1.0.0 (the
lowest langchain-core shekel-langchain declares) on the workspace's openai 2.x, and the newest
langchain-core it allows on openai 3.x.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import nox
from packaging.requirements import Requirement

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]

ROOT = Path(__file__).parent
SHEKEL = ROOT / "packages" / "shekel"


def _uv_run(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    # stderr kept apart (nox merges it into stdout by default): ``nox -s bench`` prints clean
    # JSON on stdout.
    session.run("uv", "run", *args, external=True, env=env, stderr=sys.stderr)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """All tests of every package."""
    _uv_run(session, "pytest", *session.posargs)


def _package_tests(package: str) -> None:
    def session_func(session: nox.Session) -> None:
        _uv_run(session, "pytest", f"tests/{package}", *session.posargs)

    session_func.__doc__ = f"Tests of one package (``tests/{package}``)."
    nox.session(python=False, name=f"tests_{package}")(session_func)


# Test folders of the packages kept out of the workspace: each has a session of its own below,
# building its environment (the workspace's cannot import their frameworks).
_OWN_ENVIRONMENTS = {"shekel_crewai", "shekel_llamaindex", "shekel_openai_agents", "sdk_litellm"}

# One session per folder of tests/: tests_core, and tests_<package> for each package added later.
for _folder in sorted(ROOT.joinpath("tests").iterdir()):
    if (
        _folder.is_dir()
        and not _folder.name.startswith(("_", "."))
        and _folder.name not in _OWN_ENVIRONMENTS
    ):
        _package_tests(_folder.name)


LIBRARIES_TEST = "tests/core/interception/test_libraries_on_the_sdks.py"
_NOT_FOR_TESTS = {"ruff", "mypy", "nox"}  # dev tools that the tests do not import
_SDKS = {"openai", "anthropic"}
_LIBRARIES = {"langchain-openai", "langchain-anthropic"}
# The other providers' SDKs: only tests/core/providers uses them (the core sessions install
# them; the framework packages' sessions leave them out, as their frameworks pin pydantic).
_PROVIDER_SDKS = {"google-genai", "aiohttp", "boto3", "ollama", "cohere"}
_SHOWN = [
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
    "pluggy",
    "genai-prices",
    "pydantic",
    "pytest",
    "langchain-openai",
    "langchain-anthropic",
    "redis",
]


def _pyproject(path: Path) -> dict[str, Any]:
    with path.joinpath("pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def _shekel_requirements() -> dict[str, Requirement]:
    """shekel's dependencies and the SDKs of its extras, by name."""
    project = _pyproject(SHEKEL)["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return {req.name: req for req in map(Requirement, [*project["dependencies"], *extras])}


def _dev_requirements() -> dict[str, Requirement]:
    """The workspace's ``dev`` group, by name."""
    group = _pyproject(ROOT)["dependency-groups"]["dev"]
    return {req.name: req for req in map(Requirement, group)}


def _floor(requirement: Requirement) -> str:
    """``name==X`` for a requirement's ``>=X`` lower bound."""
    floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if len(floors) != 1:
        raise ValueError(f"{requirement} has no single '>=' lower bound to test")
    return f"{requirement.name}=={floors[0]}"


def _show_versions(session: nox.Session, expect: dict[str, str], names: list[str] = _SHOWN) -> None:
    """Print the versions the session installed; fail unless each matches its ``expect``
    (``"3"`` matches 3.x.y, ``"1.60"`` matches 1.60.z)."""
    script = (
        "import sys\n"
        "from importlib.metadata import PackageNotFoundError, version\n"
        "bad = []\n"
        "for name, prefix in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    try:\n"
        "        found = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        found = 'not installed'\n"
        "    print(f'{name:>20} {found}')\n"
        "    if prefix and not (found + '.').startswith(prefix + '.'):\n"
        "        bad.append(f'{name} {found}: expected {prefix}.*')\n"
        "print(f'{\"python\":>20} {sys.version.split()[0]}')\n"
        "sys.exit('; '.join(bad) or None)\n"
    )
    pairs = [part for name in names for part in (name, expect.get(name, ""))]
    session.log("installed:")
    session.run("python", "-c", script, *pairs, silent=False, log=False)


def _pytest_core(session: nox.Session, *extra: str) -> None:
    session.run("python", "-m", "pytest", "tests/core", *extra, *session.posargs)


@nox.session
def tests_core_newest(session: nox.Session) -> None:
    """tests/core on the newest openai 3.x and newest anthropic, with LangChain (own venv)."""
    shekel = _shekel_requirements()
    dev = _dev_requirements()
    tools = [str(req) for name, req in dev.items() if name not in _NOT_FOR_TESTS | _SDKS]
    session.install(
        "--upgrade",
        "-e",
        str(SHEKEL),
        *(str(req) for name, req in shekel.items() if name != "openai"),
        f"{shekel['openai']},>=3",
        *tools,
    )
    _show_versions(session, {"openai": "3"})
    _pytest_core(session)


@nox.session
def tests_core_lowest(session: nox.Session) -> None:
    """tests/core on the lowest versions shekel declares for its dependencies (own venv)."""
    shekel = _shekel_requirements()
    dev = _dev_requirements()
    floors = [_floor(req) for req in shekel.values()] + [_floor(dev["httpx"])]
    skip = _NOT_FOR_TESTS | _SDKS | _LIBRARIES | {"httpx"}
    tools = [str(req) for name, req in dev.items() if name not in skip]
    session.install("-e", str(SHEKEL), *floors, *tools)
    _show_versions(session, {pin.split("==")[0]: pin.split("==")[1] for pin in floors})
    session.log(
        f"not running {LIBRARIES_TEST}: langchain-openai and langchain-anthropic need far "
        "newer SDKs than these lower bounds"
    )
    _pytest_core(session, f"--ignore={LIBRARIES_TEST}")


LANGCHAIN = ROOT / "packages" / "shekel-langchain"
LANGCHAIN_FLOORS = (
    "langchain-openai==1.0.0",
    "langchain-anthropic==1.0.0",
    "langgraph==1.0.0",
    "langgraph-prebuilt==1.0.0",
)
"""The first langchain-openai, langchain-anthropic and langgraph releases made for
langchain-core 1.0 (langgraph: a graph's nodes are LangChain runs, which one test maps by name,
and its ToolNode runs LangChain tools; its newest releases no longer import with
langchain-core 1.0.0, and langgraph 1.0.0 allows langgraph-prebuilt releases that need a newer
langgraph)."""


def _langchain_core_requirement() -> Requirement:
    deps = map(Requirement, _pyproject(LANGCHAIN)["project"]["dependencies"])
    return next(req for req in deps if req.name == "langchain-core")


def _langchain_tests(session: nox.Session, *pins: str, expect: dict[str, str]) -> None:
    skip = _NOT_FOR_TESTS | _SDKS | _LIBRARIES | _PROVIDER_SDKS
    tools = [str(req) for name, req in _dev_requirements().items() if name not in skip]
    session.install("-e", str(SHEKEL), "-e", str(LANGCHAIN), *tools, *pins)
    _show_versions(session, expect, [*_SHOWN, "langchain-core", "langgraph"])
    session.run("python", "-m", "pytest", "tests/shekel_langchain", *session.posargs)


@nox.session
def tests_shekel_langchain_lowest(session: nox.Session) -> None:
    """tests/shekel_langchain on the lowest langchain-core shekel-langchain declares (own venv)."""
    floor = _floor(_langchain_core_requirement())
    sdks = [str(req) for name, req in _dev_requirements().items() if name in _SDKS]
    _langchain_tests(
        session, floor, *LANGCHAIN_FLOORS, *sdks, expect={"langchain-core": floor.split("==")[1]}
    )


@nox.session
def tests_shekel_langchain_newest(session: nox.Session) -> None:
    """tests/shekel_langchain on the newest langchain-core it allows, openai 3 (own venv)."""
    core = _langchain_core_requirement()
    _langchain_tests(
        session,
        "--upgrade",
        str(core),
        "langchain-openai",
        "langchain-anthropic",
        "langgraph",
        f"{_shekel_requirements()['openai']},>=3",
        str(_shekel_requirements()["anthropic"]),
        expect={"openai": "3"},
    )


LLAMAINDEX = ROOT / "packages" / "shekel-llamaindex"
_LLAMAINDEX_EXTRAS = ["llama-index-llms-openai", "llama-index-embeddings-openai"]


def _llamaindex_tests(session: nox.Session, *pins: str) -> None:
    shekel = _shekel_requirements()
    dev = _dev_requirements()
    skip = {"ruff", "nox"} | _SDKS | _LIBRARIES | _PROVIDER_SDKS
    tools = [str(req) for name, req in dev.items() if name not in skip]
    session.install(
        "--upgrade",
        "-e",
        str(SHEKEL),
        "-e",
        str(LLAMAINDEX),
        str(shekel["openai"]),
        *_LLAMAINDEX_EXTRAS,
        *pins,
        *tools,
    )
    shown = ["openai", "httpx", "pluggy", "genai-prices", "pydantic", "pytest", "mypy"]
    expect = {pin.split("==")[0]: pin.split("==")[1] for pin in pins}
    _show_versions(session, expect, [*shown, "llama-index-core", *_LLAMAINDEX_EXTRAS])
    session.run("mypy", "--strict", "-p", "shekel_llamaindex")
    session.run("python", "-m", "pytest", "tests/shekel_llamaindex", *session.posargs)


@nox.session
def tests_llamaindex(session: nox.Session) -> None:
    """tests/shekel_llamaindex and mypy on shekel-llamaindex, with the newest LlamaIndex the
    package allows and its OpenAI LLM and embeddings (own venv)."""
    _llamaindex_tests(session)


@nox.session
def tests_llamaindex_lowest(session: nox.Session) -> None:
    """The same with the lowest llama-index-core shekel-llamaindex declares (own venv)."""
    core = Requirement(
        next(r for r in _pyproject(LLAMAINDEX)["project"]["dependencies"] if "llama-index" in r)
    )
    _llamaindex_tests(session, _floor(core))


CREWAI = ROOT / "packages" / "shekel-crewai"


def _crewai_requirement() -> Requirement:
    deps = map(Requirement, _pyproject(CREWAI)["project"]["dependencies"])
    return next(req for req in deps if req.name == "crewai")


def _crewai_tests(session: nox.Session, *pins: str, expect: dict[str, str]) -> None:
    dev = _dev_requirements()
    skip = _NOT_FOR_TESTS | _SDKS | _LIBRARIES | _PROVIDER_SDKS
    tools = [str(req) for name, req in dev.items() if name not in skip]
    session.install(
        "--upgrade",
        "-e",
        str(SHEKEL),
        "-e",
        str(CREWAI),
        str(_shekel_requirements()["anthropic"]),
        str(dev["mypy"]),
        *tools,
        *pins,
    )
    shown = ["crewai", "openai", "anthropic", "httpx", "pydantic", "pluggy", "pytest"]
    _show_versions(session, {"openai": "2", **expect}, shown)
    session.run("mypy", "-p", "shekel_crewai")
    session.run("python", "-m", "pytest", "tests/shekel_crewai", *session.posargs)


@nox.session
def tests_crewai(session: nox.Session) -> None:
    """tests/shekel_crewai with the newest supported crewai, in an environment of its own.

    crewai pins ``openai<3`` and ``pydantic<2.13`` and weighs some 0.9 GB, so shekel-crewai
    is kept out of the workspace. Installs shekel and shekel-crewai (editable), the anthropic
    SDK (for CrewAI's native Anthropic provider) and the test tools, prints the versions, runs
    mypy (strict) on the package, then pytest. The tests import crewai once (about 5 s).
    """
    _crewai_tests(session, expect={"crewai": "1"})


@nox.session
def tests_crewai_lowest(session: nox.Session) -> None:
    """The same with the lowest crewai shekel-crewai declares (own venv)."""
    floor = _floor(_crewai_requirement())
    _crewai_tests(session, floor, expect={"crewai": floor.split("==")[1]})


OPENAI_AGENTS = ROOT / "packages" / "shekel-openai-agents"


def _openai_agents_requirement() -> Requirement:
    deps = map(Requirement, _pyproject(OPENAI_AGENTS)["project"]["dependencies"])
    return next(req for req in deps if req.name == "openai-agents")


def _openai_agents_tests(session: nox.Session, *pins: str, expect: dict[str, str]) -> None:
    dev = _dev_requirements()
    skip = _NOT_FOR_TESTS | _SDKS | _LIBRARIES | _PROVIDER_SDKS
    tools = [str(req) for name, req in dev.items() if name not in skip]
    editable = ("-e", str(SHEKEL), "-e", str(OPENAI_AGENTS))
    session.install("--upgrade", *editable, str(dev["mypy"]), *tools, *pins)
    shown = ["openai-agents", "openai", "httpx", "httpx2", "pydantic", "pluggy", "pytest"]
    _show_versions(session, expect, shown)
    session.run("mypy", "-p", "shekel_openai_agents")
    session.run("python", "-m", "pytest", "tests/shekel_openai_agents", *session.posargs)


@nox.session
def tests_openai_agents(session: nox.Session) -> None:
    """tests/shekel_openai_agents with the newest openai-agents the package allows, in an
    environment of its own.

    Its newest releases need openai 3 (the workspace pins openai 2.x), so shekel-openai-agents
    stays out of the workspace. Installs shekel and the package (editable), the newest
    openai-agents (with openai 3.x) and the test tools, prints the versions, runs mypy (strict)
    on the package, then pytest.
    """
    _openai_agents_tests(session, str(_openai_agents_requirement()), expect={"openai": "3"})


@nox.session
def tests_openai_agents_lowest(session: nox.Session) -> None:
    """The same with the lowest openai-agents the package declares (on openai 2.x)."""
    floor = _floor(_openai_agents_requirement())
    expect = {"openai-agents": floor.split("==")[1], "openai": "2"}
    _openai_agents_tests(session, floor, expect=expect)


@nox.session
def tests_litellm(session: nox.Session) -> None:
    """tests/sdk_litellm: LiteLLM's Gemini and Bedrock paths against the fake provider, in an
    environment of its own.

    LiteLLM weighs some 140 MB (with tokenizers, tiktoken and boto3) and installs aiohttp, which
    changes how google-genai sends its async calls; the workspace tests google-genai both ways
    already, so LiteLLM stays out of it. Installs shekel (editable), the newest LiteLLM and the
    test tools, prints the versions, then runs pytest (LiteLLM's model table is read from its own
    copy, not the network).
    """
    dev = _dev_requirements()
    skip = _NOT_FOR_TESTS | _SDKS | _LIBRARIES | _PROVIDER_SDKS
    tools = [str(req) for name, req in dev.items() if name not in skip]
    session.install("--upgrade", "-e", str(SHEKEL), "litellm", *tools)
    shown = ["litellm", "openai", "httpx", "aiohttp", "boto3", "genai-prices", "pytest"]
    _show_versions(session, {}, shown)
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/sdk_litellm",
        *session.posargs,
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )


@nox.session
def tests_shekel_langgraph_lowest(session: nox.Session) -> None:
    """tests/shekel_langgraph on the lowest LangGraph shekel-langgraph declares, with the
    workspace's shekel-langchain (own venv)."""
    package = ROOT / "packages" / "shekel-langgraph"
    declared = map(Requirement, _pyproject(package)["project"]["dependencies"])
    langgraph = next(req for req in declared if req.name == "langgraph")
    skip = _NOT_FOR_TESTS | _PROVIDER_SDKS
    tools = [str(req) for name, req in _dev_requirements().items() if name not in skip]
    # shekel-langchain (a dependency) from the workspace; langgraph-prebuilt pinned as in
    # LANGCHAIN_FLOORS, its later 1.0.x releases needing a newer langgraph than 1.0.0
    editable = ("-e", str(SHEKEL), "-e", str(LANGCHAIN), "-e", str(package))
    session.install(*editable, _floor(langgraph), "langgraph-prebuilt==1.0.0", *tools)
    session.run("python", "-c", "import importlib.metadata as m; print(m.version('langgraph'))")
    session.run("python", "-m", "pytest", "tests/shekel_langgraph", *session.posargs)


OTEL = ROOT / "packages" / "shekel-otel"


@nox.session
def tests_shekel_otel_lowest(session: nox.Session) -> None:
    """tests/shekel_otel on the lowest opentelemetry-api shekel-otel declares, with the SDK
    of the same release (own venv). LLM instrumentations need far newer releases: the test
    that runs them is skipped here."""
    declared = map(Requirement, _pyproject(OTEL)["project"]["dependencies"])
    api = _floor(next(req for req in declared if req.name == "opentelemetry-api"))
    sdk = api.replace("opentelemetry-api", "opentelemetry-sdk")
    dev = _dev_requirements()
    skip = _NOT_FOR_TESTS | _LIBRARIES | {"opentelemetry-sdk"}
    tools = [
        str(req) for name, req in dev.items() if name not in skip and "opentelemetry" not in name
    ]
    session.install("-e", str(SHEKEL), "-e", str(OTEL), api, sdk, *tools)
    _show_versions(
        session,
        {"opentelemetry-api": api.split("==")[1], "opentelemetry-sdk": sdk.split("==")[1]},
        [*_SHOWN, "opentelemetry-api", "opentelemetry-sdk"],
    )
    session.run("python", "-m", "pytest", "tests/shekel_otel", *session.posargs)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    _uv_run(session, "ruff", "check", ".", *session.posargs)
    _uv_run(session, "ruff", "format", "--check", ".")


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy (strict) over the packages configured in pyproject.toml."""
    _uv_run(session, "mypy", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Every ``benchmarks/bench_*.py``, merged into one JSON document on stdout and in
    ``bench-results.json``. Options go after ``--``: ``--quick``, ``--no-incumbents``,
    ``--baseline REF``, ``--markdown benchmarks/RESULTS.md`` (see benchmarks/run_all.py)."""
    command = "nox -s bench" + (" -- " + " ".join(session.posargs) if session.posargs else "")
    _uv_run(
        session,
        "python",
        "benchmarks/run_all.py",
        *session.posargs,
        env={"SHEKEL_BENCH_COMMAND": command},
    )
