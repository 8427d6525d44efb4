"""Text and JSON views of a budget: ``summary()``, ``summary_data()`` and ``tree()``."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any, Final

from ._history import CallRecord, ModelTotals
from ._money import nanos_to_usd
from ._tree import history_totals

if TYPE_CHECKING:
    from ._budget import Budget

_WIDTH = 60

_ESCAPES: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_HIDDEN: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories escaped by :func:`visible`: controls (C0, DEL, C1), format characters
(bidi overrides, zero-width characters), lone surrogates, and line and paragraph separators."""


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` (a budget name or store key) made safe to print on one line of a terminal.

    Control and format characters, lone surrogates and line or paragraph separators are
    written as escapes (``\\n``, ``\\x1b``, ``\\u202e``): a name never spans two lines, and
    nothing in it reaches the terminal as a control sequence. Other characters are kept as
    they are (a backslash too, so a name can contain text that reads like an escape).
    """
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _HIDDEN else char for char in text
    )


def _subtree(budget: Budget) -> list[Budget]:
    out, stack = [], [budget]
    while stack:
        b = stack.pop()
        out.append(b)
        stack.extend(reversed(list(b.children)))
    return out


def _collect(budget: Budget) -> tuple[list[CallRecord], dict[str, ModelTotals], int, int, int]:
    """The newest calls of the subtree (ended repeats keep only their totals) and the exact
    totals of all of it."""
    calls: list[CallRecord] = []
    for b in _subtree(budget):
        calls.extend(b.history().recent())
    calls.sort(key=lambda c: c.seq)
    keep = budget.config.history_size
    totals = history_totals(budget)
    return calls[-keep:], totals.by_model, totals.calls, totals.unpriced, totals.estimated


def status(budget: Budget) -> str:
    snap = budget.snapshot()
    over = (snap.usd_limit is not None and snap.usd_used > snap.usd_limit) or (
        snap.tokens_limit is not None and snap.tokens_used > snap.tokens_limit
    )
    if over:
        return "EXCEEDED"
    if snap.usd_remaining == 0 or snap.tokens_remaining == 0 or snap.llm_calls_remaining == 0:
        return "EXHAUSTED"
    if budget.model_switched:
        return "FALLBACK"
    if budget._policy.warned:
        return "WARNING"
    return "OK"


def summary_data(budget: Budget) -> dict[str, Any]:
    calls, totals, count, unpriced, estimated = _collect(budget)
    snap = budget.snapshot()
    fb = budget.config.fallback
    return {
        "name": budget.name,
        "full_name": budget.full_name,
        "total_spent": snap.usd_used,
        "limit": snap.usd_limit,
        "remaining": snap.usd_remaining,
        "status": status(budget),
        "tokens_used": snap.tokens_used,
        "tokens_limit": snap.tokens_limit,
        "calls_used": snap.llm_calls_used,
        "calls_limit": budget.config.caps.llm_calls
        if snap.llm_calls_remaining is not None
        else None,
        "tool_calls_used": snap.tool_calls_used,
        "total_calls": count,
        "model_switched": budget.model_switched,
        "switched_at_usd": budget.switched_at_usd,
        "fallback_model": fb.model if fb else None,
        "fallback_spent": budget.fallback_spent,
        "incomplete": unpriced > 0 or estimated > 0,
        "unpriced_calls": unpriced,
        "estimated_calls": estimated,
        "calls": [c.as_dict() for c in calls],
        "by_model": {
            model: {
                "calls": t.calls,
                "cost": nanos_to_usd(t.cost),
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "unpriced_calls": t.unpriced_calls,
            }
            for model, t in totals.items()
        },
    }


def _line(text: str) -> str:
    return f"│ {text}"


def summary(budget: Budget) -> str:
    data = summary_data(budget)
    rule = "─" * _WIDTH
    title = "─ Shekel Budget Summary "
    limit = "none" if data["limit"] is None else f"${data['limit']:,.2f}"
    lines = [
        "┌" + title + "─" * (_WIDTH - len(title)) + "┐",
        _line(
            f"Total: ${data['total_spent']:,.4f}  Limit: {limit}  Calls: {data['total_calls']}  "
            f"Status: {data['status']}"
        ),
    ]
    if data["name"]:
        lines.append(_line(f"Budget: {data['full_name']}"))
    if data["tokens_limit"] is not None or data["tokens_used"]:
        tok_limit = "none" if data["tokens_limit"] is None else f"{data['tokens_limit']:,}"
        lines.append(_line(f"Tokens: {data['tokens_used']:,}  Limit: {tok_limit}"))
    if data["model_switched"]:
        lines.append(
            _line(
                f"Fallback: {data['fallback_model']} since ${data['switched_at_usd']:,.4f} "
                f"(${data['fallback_spent']:,.4f} spent on it)"
            )
        )
    lines += ["├" + rule + "┤", _line(f"{'#':>4}  {'Model':<28}{'Input':>9}{'Output':>9}  Cost")]
    lines.append(_line("─" * (_WIDTH - 4)))
    calls = data["calls"]
    first = data["total_calls"] - len(calls) + 1
    if first > 1:
        lines.append(_line(f"… {first - 1:,} earlier calls not kept (totals below are exact)"))
    for i, call in enumerate(calls, start=first):
        label = call["model"] or (f"tool:{call['tool']}" if call["tool"] else "(manual)")
        cost = f"${call['cost']:.4f}" if call["priced"] else "unpriced"
        mark = " ~" if call["estimated"] else ""
        lines.append(
            _line(
                f"{i:>4}  {label[:27]:<28}{call['input_tokens']:>9,}"
                f"{call['output_tokens']:>9,}  {cost}{mark}"
            )
        )
    if data["by_model"]:
        lines.append("├" + rule + "┤")
        for model, t in data["by_model"].items():
            extra = f" ({t['unpriced_calls']} unpriced)" if t["unpriced_calls"] else ""
            lines.append(_line(f"{model}: {t['calls']} calls  ${t['cost']:.4f}{extra}"))
    if data["incomplete"]:
        lines.append("├" + rule + "┤")
        if data["unpriced_calls"]:
            lines.append(
                _line(
                    f"Incomplete: {data['unpriced_calls']} call(s) had no known price; "
                    "the USD total leaves them out"
                )
            )
        if data["estimated_calls"]:
            lines.append(
                _line(f"Estimated: {data['estimated_calls']} call(s) (~) had estimated tokens")
            )
    lines.append("└" + rule + "┘")
    return "\n".join(lines)


def _usd(amount: float) -> str:
    """Cents, as the seeds show amounts; four decimals below a cent, so a run of cheap calls
    does not read $0.00."""
    return f"${amount:,.4f}" if 0 < abs(amount) < 0.01 else f"${amount:,.2f}"


def tree(budget: Budget) -> str:
    lines: list[str] = []

    def walk(b: Budget, indent: int) -> None:
        snap = b.snapshot()
        limit = snap.usd_limit
        shown = "no limit" if limit is None else _usd(limit)
        # Other capped axes after the dollars: "3 / 4 LLM calls".
        for used, cap, unit in (
            (snap.tokens_used, snap.tokens_limit, "tokens"),
            (snap.llm_calls_used, snap.llm_calls_limit, "LLM calls"),
            (snap.tool_calls_used, snap.tool_calls_limit, "tool calls"),
        ):
            if cap is not None:
                shown += f", {used:,} / {cap:,} {unit}"
        active = " [active]" if b.is_active else ""
        lines.append(
            f"{'  ' * indent}{b.name or 'budget'}: {_usd(snap.usd_used)} / {shown} "
            f"(direct: {_usd(b.spent_direct)}){active}"
        )
        for child in list(b.children):
            walk(child, indent + 1)
        for name, rollup in list(b.rollups.items()):
            lines.append(
                f"{'  ' * (indent + 1)}{name} ×{rollup.runs}: {_usd(nanos_to_usd(rollup.used[0]))}"
            )

    walk(budget, 0)
    return "\n".join(lines)
