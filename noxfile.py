"""Development sessions: ``uv run nox -s tests`` (or ``tests_core`` and one ``tests_<package>``
per folder of ``tests/``, ``lint``, ``typecheck``, ``bench``); ``uv run nox -l`` lists them.

Every session runs its tool through ``uv run`` in the workspace's own environment (``uv sync``
keeps it in step with ``uv.lock``), so nox creates no virtual environments of its own. Extra
arguments after ``--`` go to the tool, e.g. ``nox -s tests -- -k pool`` or
``nox -s bench -- --quick``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]


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


# One session per folder of tests/: tests_core, and tests_<package> for each package added later.
for _folder in sorted(Path(__file__).parent.joinpath("tests").iterdir()):
    if _folder.is_dir() and not _folder.name.startswith(("_", ".")):
        _package_tests(_folder.name)


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
