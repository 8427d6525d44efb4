"""Text and JSON views of a budget: ``summary()``, ``summary_data()`` and ``tree()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._history import CallRecord, ModelTotals
from ._keys import visible
from ._money import nanos_to_decimal, nanos_to_usd, usd_text
from ._tree import history_totals

if TYPE_CHECKING:
    from ._budget import Budget

_WIDTH = 60


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
    policy = budget._c.policy
    over = (snap.usd_limit is not None and snap.usd_used > snap.usd_limit) or (
        snap.tokens_limit is not None and snap.tokens_used > snap.tokens_limit
    )
    if over:
        return "EXCEEDED"
    if (
        snap.usd_remaining == 0
        or snap.tokens_remaining == 0
        or snap.llm_calls_remaining == 0
        or policy.refused  # what is left was too little for a call
    ):
        return "EXHAUSTED"
    if policy.looped:
        return "LOOP"  # loop_guard stopped a repeated call
    if budget.model_switched:
        return "FALLBACK"
    if policy.warned:
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


_RULE = None  # a rule across the box, between its parts
_THIN = "\x00"  # a rule inside the box, under a header


def summary(budget: Budget) -> str:
    data = summary_data(budget)
    limit = "none" if data["limit"] is None else usd_text(data["limit"])
    rows: list[str | None] = [  # None: a rule across the box
        f"Total: {usd_text(data['total_spent'])}  Limit: {limit}  "
        f"Calls: {data['total_calls']:,}  Status: {data['status']}",
    ]
    if data["name"]:
        rows.append(f"Budget: {visible(data['full_name'])}")
    if data["tokens_limit"] is not None or data["tokens_used"]:
        tok_limit = "none" if data["tokens_limit"] is None else f"{data['tokens_limit']:,}"
        rows.append(f"Tokens: {data['tokens_used']:,}  Limit: {tok_limit}")
    if data["model_switched"]:
        rows.append(
            f"Fallback: {data['fallback_model']} since {usd_text(data['switched_at_usd'])} "
            f"({usd_text(data['fallback_spent'])} spent on it)"
        )
    calls = data["calls"]
    # Under a tree of budgets (``shekel run``, nesting), each call says which budget it was.
    paths = {call["budget"] for call in calls}
    by_budget = len(paths) > 1 or (bool(paths) and paths != {data["full_name"]})
    rows += [_RULE, _call_header(by_budget), _THIN]
    first = data["total_calls"] - len(calls) + 1
    if first > 1:
        rows.append(f"… {first - 1:,} earlier calls not kept (totals below are exact)")
    for i, call in enumerate(calls, start=first):
        rows.append(_call_row(i, call, by_budget))
    if data["by_model"]:
        rows.append(_RULE)
        for model, t in data["by_model"].items():
            extra = f" ({t['unpriced_calls']:,} unpriced)" if t["unpriced_calls"] else ""
            rows.append(f"{model}: {_count(t['calls'], 'call')}  {usd_text(t['cost'])}{extra}")
    if data["incomplete"]:
        rows.append(_RULE)
        if data["unpriced_calls"]:
            rows.append(
                f"Incomplete: {_count(data['unpriced_calls'], 'call')} had no known price; "
                "the USD total leaves them out"
            )
        if data["estimated_calls"]:
            rows.append(
                f"Estimated: {_count(data['estimated_calls'], 'call')} (~) had estimated tokens"
            )
    return _box("Shekel Budget Summary", rows)


def _call_header(by_budget: bool) -> str:
    who = f"{'Budget':<20}" if by_budget else ""
    return f"{'#':>4}  {who}{'Model':<24}{'Input':>8}{'Output':>8}  Cost"


def _call_row(i: int, call: dict[str, Any], by_budget: bool) -> str:
    label = call["model"] or (f"tool:{call['tool']}" if call["tool"] else "(manual)")
    cost = usd_text(call["cost"]) if call["priced"] else "unpriced"
    mark = " ~" if call["estimated"] else ""
    who = f"{visible(call['budget'] or '')[:19]:<20}" if by_budget else ""
    return (
        f"{i:>4}  {who}{label[:23]:<24}{call['input_tokens']:>8,}"
        f"{call['output_tokens']:>8,}  {cost}{mark}"
    )


def _box(title: str, rows: list[str | None]) -> str:
    """``rows`` in a box closed on every side, as wide as its longest row (at least 60)."""
    width = max([_WIDTH, len(title) + 4, *(len(row) + 2 for row in rows if row is not None)])
    lines = ["┌─ " + title + " " + "─" * (width - len(title) - 3) + "┐"]
    for row in rows:
        if row is None:
            lines.append("├" + "─" * width + "┤")
        elif row is _THIN:
            lines.append("│ " + "─" * (width - 2) + " │")
        else:
            lines.append("│ " + row.ljust(width - 1) + "│")
    lines.append("└" + "─" * width + "┘")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def tree(budget: Budget) -> str:
    lines: list[str] = []

    def walk(b: Budget, indent: int) -> None:
        snap = b.snapshot()
        limit = snap.usd_limit
        shown = "no limit" if limit is None else usd_text(limit)
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
            f"{'  ' * indent}{visible(b.name or 'budget')}: {usd_text(snap.usd_used)} / {shown} "
            f"(direct: {usd_text(b.spent_direct)}){active}"
        )
        for child in list(b.children):
            walk(child, indent + 1)
        for name, rollup in list(b._node.rollups.items()):
            spent = usd_text(nanos_to_decimal(rollup.used[0]))
            lines.append(f"{'  ' * (indent + 1)}{name} ×{rollup.runs}: {spent}")

    walk(budget, 0)
    return "\n".join(lines)
