"""``shekel run``: run a Python script in this process inside a budget, then report the spend.

The script runs like ``python SCRIPT ARGS...`` would run it (``__name__ == "__main__"``,
``sys.argv == [SCRIPT, *ARGS]``, the script's directory first on ``sys.path``), inside
``with budget(...)``. Its own budgets, named or not, nest under that budget.

Exit code: the script's own, unless the budget stopped it (1); an uncaught exception is
printed as Python prints it and gives 1; ``KeyboardInterrupt`` gives 130.

While the script runs, ``sys.stderr`` is wrapped to remember whether the script left a line
unfinished, so that shekel's own lines (warnings, the report) always start a line of their own.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, TextIO, cast

from ._budget import Budget
from ._context import set_process_root
from ._errors import BudgetExceededError
from ._loops import LoopGuardError, ordinal
from ._money import usd_text
from ._plugins import hookimpl, plugin_manager

Status = Literal["ok", "warn", "exceeded"]
OutputFormat = Literal["text", "json"]

EXIT_EXCEEDED = 1
EXIT_CRASHED = 1
EXIT_INTERRUPTED = 130


@dataclass(slots=True)
class RunOutcome:
    """What happened to one script run."""

    budget: Budget
    exit_code: int
    script_exit_code: int
    """The code the script itself ended with (1 for an uncaught exception)."""
    status: Status
    error: BudgetExceededError | None = None
    """The first limit error of the run's budget, or the one that escaped the script."""
    stderr_mid_line: bool = False
    """The script's last write to ``sys.stderr`` did not end its line."""


class _LineTracker:
    """Stands in for ``sys.stderr`` during the run: passes everything to the real stream and
    remembers whether the last text written ended a line. Writes that bypass ``sys.stderr``
    (``sys.__stderr__``, the ``buffer`` or file descriptor 2) are not seen."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.mid_line = False

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if text:  # print(..., end="") writes an empty string last
            self.mid_line = not text.endswith("\n")
        return written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def start_line(self) -> None:
        """End the script's unfinished line, if there is one."""
        if self.mid_line:
            self.write("\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Watcher:
    """A plugin, registered for the length of the run, that sees limit errors, warnings and
    the fallback of the run's budget even when the script catches the error."""

    def __init__(self, root: Budget, output: OutputFormat, stderr: _LineTracker) -> None:
        self.root = root
        self.output = output
        self.stderr = stderr
        self.errors: list[BudgetExceededError] = []

    def _say(self, message: str) -> None:
        self.stderr.start_line()
        print(f"shekel: {message}", file=self.stderr, flush=True)

    @hookimpl
    def shekel_limit_exceeded(self, budget: Any, error: BaseException) -> None:
        if budget is self.root and isinstance(error, BudgetExceededError):
            self.errors.append(error)

    @hookimpl
    def shekel_warning_crossed(self, budget: Any, axis: str, spent: float, limit: float) -> None:
        if budget is not self.root or self.output != "text":
            return
        warn_at = self.root.config.warn_at or 0.0
        self._say(
            f"warning: {budget.full_name!r} reached {warn_at:.0%} of its {_UNIT[axis]} limit "
            f"({_amount(axis, spent)} of {_amount(axis, limit)})"
        )

    @hookimpl
    def shekel_fallback_activated(
        self, budget: Any, spent: float, limit: float, fallback_model: str
    ) -> None:
        if budget is self.root and self.output == "text":
            self._say(
                f"switched to the fallback model {fallback_model} at {usd_text(spent)} of "
                f"{usd_text(limit)}"
            )


_UNIT: Final = {"usd": "USD", "tokens": "token", "llm_calls": "LLM call", "tool_calls": "tool call"}
_HINT: Final = {
    "usd": "raise --budget, or add --fallback-model MODEL to switch to a cheaper model first",
    "tokens": "raise --max-tokens",
    "llm_calls": "raise --max-llm-calls",
    "tool_calls": "raise the script's max_tool_calls",
}


def _amount(axis: str, value: float) -> str:
    return usd_text(value) if axis == "usd" else f"{value:,.0f}"


def stop_message(error: BudgetExceededError, root: Budget) -> str:
    """One line saying which limit stopped the script, and what to change (CLI wording)."""
    who = error.budget_name or root.full_name
    if isinstance(error, LoopGuardError):
        line = (
            f"{who!r} stopped a loop: {error.repeated} was about to run for the "
            f"{ordinal(error.count)} time; it was not sent"
        )
        if who == root.full_name:
            line += ". To let it go further, raise --loop-guard"
        return line
    verb = "exceeded" if error.spent > error.limit else "reached"
    line = (
        f"{who!r} {verb} its {_UNIT.get(error.axis, error.axis)} limit: "
        f"{_amount(error.axis, error.spent)} used of {_amount(error.axis, error.limit)}"
    )
    if error.model:
        line += f" (last call: {error.model}"
        if error.tokens:
            line += ", " + ", ".join(f"{k}={v:,}" for k, v in error.tokens.items())
        line += ")"
    if not error.sent:
        line += "; the last request was not sent"
    if who == root.full_name:
        line += f". To let it go further, {_HINT.get(error.axis, 'raise the limit')}"
    return line


def _ignore_warning(spent: float, limit: float) -> None:
    """``on_warn`` of the run's budget: the watcher reports the crossing instead of a
    Python ``BudgetWarning``."""


def make_budget(kwargs: dict[str, Any]) -> Budget:
    """The run's budget. Budgets the script enters without a name, or with a name already
    used, are repeats under it (named ``budget``, or their name), rolled up when they end."""
    if kwargs.get("warn_at") is not None:
        kwargs = {**kwargs, "on_warn": _ignore_warning}
    root = Budget(**kwargs)
    root._node.adopts_repeats = True
    return root


def _exit_code_of(code: object) -> int:
    """``SystemExit.code`` the way the interpreter turns it into a process exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code)
    print(code, file=sys.stderr)
    return 1


def _print_uncaught(error: BaseException, script: str) -> None:
    """Print ``error`` as Python prints an uncaught exception, without shekel's own frames."""
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    sys.stdout.flush()
    traceback.print_exception(type(error), error, tb, file=sys.stderr)
    sys.stderr.flush()


def _is_over(data: dict[str, Any]) -> bool:
    """True when the budget used more than a limit on any axis."""
    pairs = (
        (data["total_spent"], data["limit"]),
        (data["tokens_used"], data["tokens_limit"]),
        (data["calls_used"], data["calls_limit"]),
    )
    return any(limit is not None and used > limit for used, limit in pairs)


def run_script(
    script: str, args: list[str], root: Budget, *, output: OutputFormat = "text"
) -> RunOutcome:
    """Run ``script`` with ``args`` inside ``root`` and say how it ended.

    ``sys.argv``, ``sys.path`` and ``sys.stderr`` are restored afterwards, even if the script
    replaced them.
    """
    saved_argv, saved_path, saved_stderr = sys.argv, list(sys.path), sys.stderr
    stderr = _LineTracker(saved_stderr)
    watcher = _Watcher(root, output, stderr)
    manager = plugin_manager()
    manager.register(watcher)
    sys.stderr = cast(TextIO, stderr)
    sys.argv = [script, *args]
    where = os.path.realpath(script)
    home = where if os.path.isdir(where) else os.path.dirname(where)
    if sys.path:
        sys.path[0] = home  # as `python SCRIPT` does: the script's directory replaces ours
    else:
        sys.path.append(home)
    escaped: BudgetExceededError | None = None
    try:
        with root:
            set_process_root(root)  # threads started without our context still count
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = _exit_code_of(stop.code)
    except BudgetExceededError as error:
        escaped, code = error, EXIT_CRASHED
    except KeyboardInterrupt as error:
        _print_uncaught(error, script)
        code = EXIT_INTERRUPTED
    except BaseException as error:
        if isinstance(error, BaseExceptionGroup):
            matched, _ = error.split(BudgetExceededError)
            if matched is not None:
                escaped = _first_leaf(matched)
        _print_uncaught(error, script)
        code = EXIT_CRASHED
    finally:
        set_process_root(None)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        sys.stderr = saved_stderr
        manager.unregister(watcher)
        sys.stdout.flush()
    data = root.summary_data()
    stopped = escaped is not None or bool(watcher.errors) or _is_over(data)
    status: Status
    if stopped:
        status = "exceeded"
    elif data["status"] != "OK":
        status = "warn"
    else:
        status = "ok"
    return RunOutcome(
        budget=root,
        exit_code=EXIT_EXCEEDED if stopped else code,
        script_exit_code=code,
        status=status,
        error=escaped or (watcher.errors[0] if watcher.errors else None),
        stderr_mid_line=stderr.mid_line,
    )


def _first_leaf(group: BaseExceptionGroup[Any]) -> BudgetExceededError | None:
    for inner in group.exceptions:
        if isinstance(inner, BudgetExceededError):
            return inner
        if isinstance(inner, BaseExceptionGroup):
            found = _first_leaf(inner)
            if found is not None:
                return found
    return None


def _limits_line(data: dict[str, Any]) -> str:
    usd = "no USD limit" if data["limit"] is None else usd_text(data["limit"])
    parts = [f"spent {usd_text(data['total_spent'])} of {usd}"]
    calls = f"{data['calls_used']:,}"
    if data["calls_limit"] is not None:
        calls += f" of {data['calls_limit']:,}"
    parts.append(f"{calls} LLM call{'' if data['calls_used'] == 1 else 's'}")
    tokens = f"{data['tokens_used']:,}"
    if data["tokens_limit"] is not None:
        tokens += f" of {data['tokens_limit']:,}"
    parts.append(f"{tokens} tokens")
    return " · ".join(parts)


def report_data(outcome: RunOutcome) -> dict[str, Any]:
    """The JSON report: top-level figures plus the budget's ``summary_data()``."""
    data = outcome.budget.summary_data()
    return {
        "spent": data["total_spent"],
        "limit": data["limit"],
        "calls": data["calls_used"],
        "tokens": data["tokens_used"],
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "script_exit_code": outcome.script_exit_code,
        "limits": {
            "usd": data["limit"],
            "tokens": data["tokens_limit"],
            "llm_calls": data["calls_limit"],
        },
        "strict": outcome.budget.config.strict,
        "error": None if outcome.error is None else _error_data(outcome.error),
        "budget": data,
    }


def _error_data(error: BudgetExceededError) -> dict[str, Any]:
    return {
        "budget": error.budget_name,
        "axis": error.axis,
        "spent": error.spent,
        "limit": error.limit,
        "sent": error.sent,
        "model": error.model,
        "message": str(error),
    }


def report(outcome: RunOutcome, output: OutputFormat) -> None:
    """Write the spend summary to stderr, after everything the script printed, starting on a
    line of its own."""
    sys.stdout.flush()
    out = sys.stderr
    if outcome.stderr_mid_line:
        out.write("\n")
    if output == "json":
        print(json.dumps(report_data(outcome), separators=(",", ":")), file=out, flush=True)
        return
    data = outcome.budget.summary_data()
    if outcome.error is not None:
        print(f"shekel: stopped: {stop_message(outcome.error, outcome.budget)}", file=out)
    print(outcome.budget.summary(), file=out)
    ending = f"exit code {outcome.exit_code}"
    if outcome.exit_code != outcome.script_exit_code:
        ending += f" (the script's own: {outcome.script_exit_code})"
    # The status the box shows: one word for one state (the JSON report keeps its own).
    print(f"shekel: {_limits_line(data)} · status: {data['status'].lower()} · {ending}", file=out)
    out.flush()
