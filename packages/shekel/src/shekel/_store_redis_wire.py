"""The Redis store's side of the wire: its Lua script, account handles, the arguments every
script call carries and the replies it returns (see ``_store_redis.lua``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from ._errors import BudgetConfigError
from ._ledger import AXES, NO_CAPS, UNLIMITED, AccountState, Caps, Hold, Link, Overrun
from ._stores import shown_url


@lru_cache(maxsize=1)
def script_text() -> tuple[str, str]:
    text = Path(__file__).with_name("_store_redis.lua").read_text(encoding="utf-8")
    return text, hashlib.sha1(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RedisAccount:
    """A handle on one account of a Redis store (no I/O until it is used)."""

    key: str
    caps: Caps = NO_CAPS
    keep_until: float | None = None
    redis_key: str = ""
    keep_ms: str = ""


@lru_cache(maxsize=256)
def cap_args(caps: Caps) -> tuple[str, str, str, str, str]:
    shown = json.dumps([None if c == UNLIMITED else c for c in caps])
    a, b, c, d = ("" if c == UNLIMITED else str(c) for c in caps)
    return a, b, c, d, shown


def redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise BudgetConfigError(
            "a redis:// store needs the redis package: pip install 'shekel[redis]'"
        ) from None
    return redis


COUNTERS: Final = ("usd", "tokens", "calls", "tools", "r_usd", "r_tokens", "r_calls", "r_tools")


def overrun_reply(reply: Sequence[bytes], chain: Sequence[Link]) -> Overrun | None:
    """The script's ``ok`` / ``over|position|axis|used`` (after ``done`` for a repeat)."""
    if reply[0] == b"done":
        reply = reply[1:]
    return over_reply(reply, chain) if reply[0] == b"over" else None


def over_reply(reply: Sequence[bytes], chain: Sequence[Link]) -> Overrun:
    """The script's ``over|position|axis|used``."""
    position, axis = int(reply[1]), int(reply[2]) - 1
    return Overrun(position, AXES[axis], int(reply[3]), chain[position][1][axis])


def held_reply(
    reply: Sequence[bytes],
    chain: Sequence[Link],
    hold_id: str,
    amounts: tuple[int, int, int, int],
) -> Hold | Overrun:
    if reply[0] != b"held":
        return over_reply(reply, chain)
    epochs = tuple(json.loads(reply[1])) or (-1,) * len(chain)
    usd, tokens, calls, tools = amounts
    return Hold(
        hold_id,
        tuple(a for a, _ in chain),
        tuple(c for _, c in chain),
        usd,
        tokens,
        calls,
        tools,
        epochs,
        int(reply[2]) / 1000,
    )


def room_reply(chain: Sequence[Link], reply: Sequence[Any]) -> tuple[int, int]:
    """USD and tokens free on ``chain``, from the script's ``rows`` reply."""
    values = [int(v) for v in reply]
    usd = tokens = UNLIMITED
    for i, (_, caps) in enumerate(chain):
        row = values[i * 8 : i * 8 + 8]
        if caps[0] != UNLIMITED:
            usd = min(usd, caps[0] - row[0] - row[4])
        if caps[1] != UNLIMITED:
            tokens = min(tokens, caps[1] - row[1] - row[5])
    return max(usd, 0), max(tokens, 0)


def state_reply(values: Sequence[bytes | None]) -> AccountState:
    n = [int(v) if v else 0 for v in values]
    return AccountState((n[0], n[1], n[2], n[3]), (n[4], n[5], n[6], n[7]))


def nothing() -> None:
    return None


def empty_state() -> AccountState:
    return AccountState((0, 0, 0, 0), (0, 0, 0, 0))


def positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise BudgetConfigError(f"{name} must be a number of seconds greater than 0, got {value!r}")
    return float(value)


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def check_url(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise BudgetConfigError(
            f"a Redis store URL starts with redis:// or rediss://, got {shown_url(url)!r}"
        )
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise BudgetConfigError(
            f"the path of a Redis store URL is a database number (redis://host:6379/0), got "
            f"{parts.path!r} in {shown_url(url)!r}"
        )
