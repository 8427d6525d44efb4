"""``shekel budgets`` and ``shekel reset``: what the budgets in a store have spent, and zeroing
one of them (with every period of its windows).

Names and keys read from the store are printed through ``_keys.visible``: a name that
reached the store with a newline or an escape sequence in it cannot forge a row of the listing
or send control sequences to the terminal. ``--output json`` gives the names as stored.

Exit codes: 0 success; 1 when the store cannot be used, or ``reset`` found no such budget;
2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from ._keys import name_of, path_key, visible

EXIT_FAILED: Final = 1

_AXES: Final = ("usd", "tokens", "llm_calls", "tool_calls")
_STORE_HELP: Final = (
    "the store: sqlite:///path/spend.db or redis://host:6379/0 (default: $SHEKEL_STORE, else "
    "[store] url in ./shekel.toml)"
)


def add_parsers(commands: Any) -> dict[str, argparse.ArgumentParser]:
    """Add ``budgets`` and ``reset`` to the ``shekel`` command's sub-parsers."""
    budgets = commands.add_parser(
        "budgets",
        help="list the budgets kept in a store",
        description="What each budget in a store has spent, per period of its windows: spent, "
        "limit and remaining in USD (as the budget's code last set its limits), tokens and "
        "calls, and the holds of calls in flight.",
    )
    budgets.add_argument("prefix", nargs="?", default="", help="only names starting with this")
    budgets.add_argument("--store", metavar="URL", help=_STORE_HELP)
    budgets.add_argument(
        "--output", choices=("text", "json"), default="text", help="default: %(default)s"
    )
    reset = commands.add_parser(
        "reset",
        help="zero a budget kept in a store",
        description="Zero a budget in a store, and every period of its windows: its spend "
        "starts again from nothing, and holds taken before stop counting.",
    )
    reset.add_argument("name", help="the budget's name (as given to budget(name=...))")
    reset.add_argument("--store", metavar="URL", help=_STORE_HELP)
    return {"budgets": budgets, "reset": reset}


def _ledger(parser: argparse.ArgumentParser, url: str | None) -> tuple[Any, str]:
    from ._errors import BudgetConfigError
    from ._stores import STORE_ENV, default_store_url, open_store

    try:
        url = url or default_store_url()
        if url is None:
            parser.error(f"give --store URL, or set {STORE_ENV} (or [store] url in shekel.toml)")
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///").partition("?")[0]
            if not os.path.isfile(path):
                parser.error(f"no SQLite store at {os.path.abspath(path)} (from {url!r})")
        ledger = open_store(url)
    except BudgetConfigError as error:
        parser.error(str(error))
    if not hasattr(ledger, "accounts"):
        parser.error(
            f"the store {url!r} keeps its budgets inside one process; give a "
            "sqlite:///... or redis://... store"
        )
    return ledger, url


def budgets(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    from ._errors import BudgetStoreUnavailableError

    ledger, _ = _ledger(parser, ns.store)
    try:
        accounts = ledger.accounts(path_key(ns.prefix))
    except BudgetStoreUnavailableError as error:
        return _failed("budgets", str(error))
    rows = [_row(account) for account in accounts]
    if ns.output == "json":
        _write(json.dumps(rows, indent=1) + "\n")
        return 0
    _write(_table(rows, ns.prefix))
    return 0


def reset(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    from ._errors import BudgetStoreUnavailableError
    from ._stores import shown_url

    ledger, url = _ledger(parser, ns.store)
    url = shown_url(url)
    try:
        keys = ledger.reset_key(path_key(ns.name))
    except BudgetStoreUnavailableError as error:
        return _failed("reset", str(error))
    if not keys:
        return _failed(
            "reset",
            f"no budget named {ns.name!r} in {url}; `shekel budgets --store {url}` lists them",
        )
    lines = [f"reset {ns.name!r} in {url}: {len(keys)} account(s) now at zero"]
    lines += [f"  {visible(key)}" for key in keys]
    _write("\n".join(lines) + "\n")
    return 0


def _row(account: dict[str, Any]) -> dict[str, Any]:
    from ._windows import split_period_key

    key = account["key"]
    name, window, period = split_period_key(key)
    name = name_of(name)
    used, reserved, caps = account["used"], account["reserved"], account["caps"]
    row: dict[str, Any] = {"budget": name, "window": window, "period": period, "key": key}
    for i, axis in enumerate(_AXES):
        cap = caps[i]
        to_value = _usd if axis == "usd" else int
        row[axis] = to_value(used[i])
        row[f"{axis}_reserved"] = to_value(reserved[i])
        row[f"{axis}_limit"] = None if cap is None else to_value(cap)
        row[f"{axis}_remaining"] = (
            None if cap is None else to_value(max(cap - used[i] - reserved[i], 0))
        )
    row["holds"] = account["holds"]
    keep = account["keep_until"]
    row["forgotten_after"] = (
        None if keep is None else datetime.fromtimestamp(keep, UTC).isoformat(timespec="seconds")
    )
    return row


def _usd(nanos: int) -> float:
    return nanos / 1e9


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    text = format(round(Decimal(repr(value)), 9).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def _count(used: int, cap: int | None) -> str:
    return f"{used:,}" if cap is None else f"{used:,}/{cap:,}"


def _table(rows: list[dict[str, Any]], prefix: str) -> str:
    if not rows:
        where = f" whose name starts with {prefix!r}" if prefix else ""
        return f"(no budgets{where} in this store)\n"
    head = "BUDGET WINDOW PERIOD SPENT LIMIT REMAINING TOKENS CALLS TOOL_CALLS HOLDS"
    table: list[tuple[str, ...]] = [tuple(h.replace("_", " ") for h in head.split())]
    for row in rows:
        table.append(
            (
                visible(row["budget"]),
                visible(row["window"] or "-"),
                visible(row["period"] or "-"),
                _money(row["usd"]),
                _money(row["usd_limit"]),
                _money(row["usd_remaining"]),
                _count(row["tokens"], row["tokens_limit"]),
                _count(row["llm_calls"], row["llm_calls_limit"]),
                _count(row["tool_calls"], row["tool_calls_limit"]),
                str(row["holds"]),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        left = "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(line[:3]))
        right = "  ".join(f"{cell:>{widths[i]}}" for i, cell in enumerate(line[3:], start=3))
        lines.append(f"{left}  {right}")
    return "\n".join(lines) + "\n"


def _failed(command: str, message: str) -> int:
    sys.stderr.write(f"shekel {command}: error: {visible(message)}\n")
    return EXIT_FAILED


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `shekel budgets | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
