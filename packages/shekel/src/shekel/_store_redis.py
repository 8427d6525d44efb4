"""``RedisLedger``: budgets kept on a Redis server, shared by every process on every host.

Every operation on a chain of accounts is one Lua script (``_store_redis.lua``, run with
EVALSHA, loaded again when the server lost it), so it applies to the whole chain atomically,
and holds expire on the server's clock (``TIME``), whatever the clocks of the hosts say. Amounts
are integers (nano-dollars for USD) kept as decimal strings, exact at any size.

Holds have ids and expire after their TTL (a killed worker's hold stops counting). A hold's id
is remembered for an hour after it settled, so a second commit or release does nothing. A
reply lost on the way back (a connection reset) is retried once: every operation carries an id
that makes the retry return what the first attempt did instead of applying twice.

``redis`` is imported when the first ``RedisLedger`` is created, never by ``import shekel``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final, TypeVar

from ._errors import BudgetConfigError
from ._journal import PendingSpend
from ._leases import DEFAULT_TTL
from ._ledger import NO_CAPS, UNLIMITED, AccountState, Caps, Hold, Ledger, Link, Overrun
from ._store_errors import DEFAULT_RETRY, StoreErrors
from ._store_redis_admin import list_accounts, reset_accounts
from ._store_redis_clients import LoopClients
from ._store_redis_wire import (
    RedisAccount,
    cap_args,
    check_url,
    empty_state,
    held_reply,
    nothing,
    overrun_reply,
    positive_seconds,
    redis_module,
    room_reply,
    script_text,
    state_reply,
)
from ._stores import shown_url as _shown_url

T = TypeVar("T")

SETTLED_MEMORY: Final = 3600.0
"""Seconds a settled or expired hold's id is remembered (a repeated commit does nothing)."""
RETRY_MEMORY: Final = 120.0
"""Seconds an operation's id is remembered, for the retry of a reply lost on the way."""
PREFIX: Final = "shekel:"
_SWEEP: Final = 1000


class RedisLedger(Ledger):
    """A ledger on the Redis server at ``url`` (``redis://host:6379/0``, ``rediss://`` for
    TLS; a password goes in the URL: ``redis://:secret@host:6379/0``).

    ``timeout``: seconds to connect and to wait for each reply before the store counts as
    unavailable. ``default_ttl``: seconds a hold's lease lasts unless renewed (this process
    renews the leases of its calls in flight). ``retry_for``: seconds a commit of spend that
    already happened is retried before it is kept in the process's journal. ``on_error``:
    ``"closed"`` (the default) raises ``BudgetStoreUnavailableError`` when the server cannot
    be used, so nothing is sent unaccounted; ``"open"`` lets calls go on unrecorded, with a
    warning. ``prefix`` starts every key the ledger writes.

    The async twins (``areserve``...) use ``redis.asyncio``, one client per event loop,
    closed when ``asyncio.run`` (or any loop that finalises its async generators) ends.
    A single server or primary: Redis Cluster is not supported.
    """

    shares_keys: ClassVar[bool] = True
    blocks: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        default_ttl: float = DEFAULT_TTL,
        on_error: str = "closed",
        prefix: str = PREFIX,
        retry_for: float = DEFAULT_RETRY,
    ) -> None:
        redis = redis_module()
        self._redis = redis
        self.url = url
        self.timeout = positive_seconds("timeout", timeout)
        self.default_ttl = self._life = positive_seconds("default_ttl", default_ttl)
        self.prefix = prefix
        self._errors = StoreErrors(
            _shown_url(url),
            on_error,
            (redis.exceptions.RedisError, OSError),
            damage=redis.exceptions.ResponseError,  # the script refused an account's data
            retry_for=retry_for,
        )
        self._client = self._make_client(redis)
        self._aclients = LoopClients(url, self._options)
        self._memory = str(round(SETTLED_MEMORY * 1000))
        self._retry_memory = str(round(RETRY_MEMORY * 1000))

    def _options(self, retry: Any) -> dict[str, Any]:
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": retry,
            "decode_responses": False,
        }

    def _make_client(self, redis: Any) -> Any:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        check_url(self.url)
        try:
            client = redis.Redis.from_url(self.url, **self._options(Retry(NoBackoff(), 0)))
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)  # unknown URL options fail here
        except (TypeError, ValueError) as exc:
            raise BudgetConfigError(
                f"the store URL {_shown_url(self.url)!r} is not one redis can use ({exc}); "
                "write it as redis://HOST:PORT/DB (rediss:// for TLS), with shekel's options "
                "on_error=, timeout= and ttl= or redis-py's connection options as ?name=value"
            ) from None
        return client

    def __repr__(self) -> str:
        return f"RedisLedger({_shown_url(self.url)!r})"

    def close(self) -> None:
        """Close the connections of the sync client (the ledger reconnects if used again)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop."""
        await self._aclients.aclose()

    # -- running the script ----------------------------------------------------------------

    def _args(
        self, op: str, chain: Sequence[Link], amounts: Sequence[int]
    ) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        args = [op, self.prefix, self._memory, str(len(chain))]
        for account, caps in chain:
            keys.append(account.redis_key)
            args.extend(cap_args(caps))
            args.append(account.keep_ms)
        args.extend(map(str, amounts))
        return keys, args

    def _eval(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        """Run the script; once more if the connection failed (every operation is safe to
        repeat: its id makes the second run return what the first did)."""
        try:
            return self._eval_once(keys, args)
        except self._redis.exceptions.ConnectionError:
            return self._eval_once(keys, args)

    def _eval_once(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        text, sha = script_text()
        try:
            return self._client.evalsha(sha, len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            return self._client.eval(text, len(keys), *keys, *args)

    async def _aeval(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        client = await self._aclients.get()
        try:
            return await self._aeval_once(client, keys, args)
        except self._redis.exceptions.ConnectionError:
            return await self._aeval_once(client, keys, args)

    async def _aeval_once(self, client: Any, keys: Sequence[str], args: Sequence[str]) -> Any:
        text, sha = script_text()
        try:
            return await client.evalsha(sha, len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            return await client.eval(text, len(keys), *keys, *args)

    def _run(self, fn: Callable[..., T], *args: Any, default: Callable[[], T]) -> T:
        return self._errors.run(fn, *args, default=default)

    async def _arun(
        self, fn: Callable[..., Awaitable[T]], *args: Any, default: Callable[[], T]
    ) -> T:
        return await self._errors.arun(fn, *args, default=default)

    # -- the contract ----------------------------------------------------------------------

    def open(
        self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None
    ) -> RedisAccount:
        keep = "" if keep_until is None else str(round(keep_until * 1000))
        return RedisAccount(key, caps, keep_until, f"{self.prefix}a:{key}", keep)

    def record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        write, pending = self._record_write(chain, (usd, tokens, calls, tools))
        return self._errors.spend(write, pending)

    async def arecord(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        write, pending = self._record_write(chain, (usd, tokens, calls, tools))
        return await self._errors.aspend(functools.partial(self._aoutcome, *write.args), pending)

    def _record_write(
        self, chain: Sequence[Link], amounts: tuple[int, int, int, int]
    ) -> tuple[functools.partial[Overrun | None], PendingSpend]:
        """A record as a write that applies once however often it is sent (within
        ``RETRY_MEMORY``: its operation id makes a repeat return what the first did)."""
        keys, args = self._args("record", chain, amounts)
        args += [uuid.uuid4().hex, self._retry_memory]
        write = functools.partial(self._outcome, chain, keys, args)
        return write, PendingSpend(write, chain[0][0].key, amounts)

    def try_record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        keys, args = self._args("try_record", chain, (usd, tokens, calls, tools))
        args += [uuid.uuid4().hex, self._retry_memory]
        return self._run(self._outcome, chain, keys, args, default=nothing)

    def _outcome(self, chain: Sequence[Link], keys: list[str], args: list[str]) -> Overrun | None:
        return overrun_reply(self._eval(keys, args), chain)

    async def _aoutcome(
        self, chain: Sequence[Link], keys: list[str], args: list[str]
    ) -> Overrun | None:
        return overrun_reply(await self._aeval(keys, args), chain)

    def _reserve_args(
        self,
        chain: Sequence[Link],
        amounts: tuple[int, int, int, int],
        need_headroom: bool,
        ttl: float | None,
    ) -> tuple[list[str], list[str], str]:
        life = self._life if ttl is None else ttl
        keys, args = self._args("reserve", chain, amounts)
        hold_id = uuid.uuid4().hex
        args += [hold_id, "1" if need_headroom else "0", str(max(round(life * 1000), 1))]
        return keys, args, hold_id

    def reserve(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
        ttl: float | None = None,
    ) -> Hold | Overrun:
        amounts = (usd, tokens, calls, tools)
        keys, args, hold_id = self._reserve_args(chain, amounts, need_headroom, ttl)
        return self._run(
            self._reserve,
            chain,
            keys,
            args,
            hold_id,
            amounts,
            default=lambda: self._errors.unrecorded_hold(chain, amounts),
        )

    def _reserve(
        self,
        chain: Sequence[Link],
        keys: list[str],
        args: list[str],
        hold_id: str,
        amounts: tuple[int, int, int, int],
    ) -> Hold | Overrun:
        return held_reply(self._eval(keys, args), chain, hold_id, amounts)

    async def areserve(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
        ttl: float | None = None,
    ) -> Hold | Overrun:
        amounts = (usd, tokens, calls, tools)
        keys, args, hold_id = self._reserve_args(chain, amounts, need_headroom, ttl)
        return await self._arun(
            self._areserve,
            chain,
            keys,
            args,
            hold_id,
            amounts,
            default=lambda: self._errors.unrecorded_hold(chain, amounts),
        )

    async def _areserve(
        self,
        chain: Sequence[Link],
        keys: list[str],
        args: list[str],
        hold_id: str,
        amounts: tuple[int, int, int, int],
    ) -> Hold | Overrun:
        return held_reply(await self._aeval(keys, args), chain, hold_id, amounts)

    def renew(self, leases: Sequence[tuple[Hold, float]]) -> None:
        keys, args = self._args("renew", [], (0, 0, 0, 0))
        for hold, ttl in leases:
            args += [str(hold.id), str(max(round(ttl * 1000), 1))]
        self._eval(keys, args)

    def check(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        keys, args = self._args("check", chain, (usd, tokens, calls, tools))
        args.append("1" if need_headroom else "0")
        return self._run(self._outcome, chain, keys, args, default=nothing)

    async def acheck(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        keys, args = self._args("check", chain, (usd, tokens, calls, tools))
        args.append("1" if need_headroom else "0")
        return await self._arun(self._aoutcome, chain, keys, args, default=nothing)

    def _settle_args(
        self, op: str, hold: Hold, amounts: Sequence[int]
    ) -> tuple[list[str], list[str]]:
        chain = list(zip(hold.accounts, hold.caps, strict=True))
        keys, args = self._args(op, chain, amounts)
        args.append(str(hold.id))
        return keys, args

    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if self._errors.is_unrecorded(hold):
            return None
        write, pending = self._commit_write(hold, (usd, tokens, calls, tools))
        return self._errors.spend(write, pending)

    async def acommit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if self._errors.is_unrecorded(hold):
            return None
        write, pending = self._commit_write(hold, (usd, tokens, calls, tools))
        return await self._errors.aspend(functools.partial(self._aoutcome, *write.args), pending)

    def _commit_write(
        self, hold: Hold, amounts: tuple[int, int, int, int]
    ) -> tuple[functools.partial[Overrun | None], PendingSpend]:
        """A commit as a write that applies once however often it is sent (by its hold's id)."""
        keys, args = self._settle_args("commit", hold, amounts)
        chain = list(zip(hold.accounts, hold.caps, strict=True))
        write = functools.partial(self._outcome, chain, keys, args)
        return write, PendingSpend(write, hold.accounts[0].key, amounts, hold)

    def release(self, hold: Hold) -> None:
        if not self._errors.is_unrecorded(hold):
            keys, args = self._settle_args("release", hold, (0, 0, 0, 0))
            self._run(self._eval, keys, args, default=nothing)

    async def arelease(self, hold: Hold) -> None:
        if not self._errors.is_unrecorded(hold):
            keys, args = self._settle_args("release", hold, (0, 0, 0, 0))
            await self._arun(self._aeval, keys, args, default=nothing)

    def read(self, account: RedisAccount) -> AccountState:
        return self._run(self._read, account, default=empty_state)

    def _read(self, account: RedisAccount) -> AccountState:
        # The script's ``rows``: the counters after dropping the holds whose lease ran out.
        keys, args = self._args("rows", [(account, NO_CAPS)], (0, 0, 0, 0))
        return state_reply(self._eval(keys, args))

    async def aread(self, account: RedisAccount) -> AccountState:
        return await self._arun(self._aread, account, default=empty_state)

    async def _aread(self, account: RedisAccount) -> AccountState:
        keys, args = self._args("rows", [(account, NO_CAPS)], (0, 0, 0, 0))
        return state_reply(await self._aeval(keys, args))

    def headroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        keys, args = self._args("rows", chain, (0, 0, 0, 0))
        return self._run(self._headroom, chain, keys, args, default=lambda: (UNLIMITED, UNLIMITED))

    def _headroom(self, chain: Sequence[Link], keys: list[str], args: list[str]) -> tuple[int, int]:
        return room_reply(chain, self._eval(keys, args))

    async def aheadroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        keys, args = self._args("rows", chain, (0, 0, 0, 0))
        return await self._arun(
            self._aheadroom, chain, keys, args, default=lambda: (UNLIMITED, UNLIMITED)
        )

    async def _aheadroom(
        self, chain: Sequence[Link], keys: list[str], args: list[str]
    ) -> tuple[int, int]:
        return room_reply(chain, await self._aeval(keys, args))

    def reset(self, account: RedisAccount) -> None:
        keys, args = self._args("reset", [(account, account.caps)], (0, 0, 0, 0))
        self._run(self._eval, keys, args, default=nothing)

    def expire(self) -> int:
        return self._run(self._expire, default=lambda: 0)

    def forget(self, accounts: Sequence[RedisAccount]) -> None:
        if accounts:
            self._client.delete(*[a.redis_key for a in accounts])

    def _expire(self) -> int:
        total = 0
        while True:
            keys, args = self._args("expire", [], (0, 0, 0, 0))
            done = int(self._eval(keys, [*args, str(_SWEEP)]))
            total += done
            if done < _SWEEP:
                return total

    async def aexpire(self) -> int:
        return await self._arun(self._aexpire, default=lambda: 0)

    async def _aexpire(self) -> int:
        total = 0
        while True:
            keys, args = self._args("expire", [], (0, 0, 0, 0))
            done = int(await self._aeval(keys, [*args, str(_SWEEP)]))
            total += done
            if done < _SWEEP:
                return total

    # -- for the CLI -----------------------------------------------------------------------

    def accounts(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every account whose key starts with ``prefix``: counters, caps, live holds."""
        return self._errors.closed(list_accounts, self, prefix)

    def reset_key(self, key: str) -> list[str]:
        """Reset every account whose key is ``key`` or one of its periods; their keys."""
        return self._errors.closed(reset_accounts, self, key)
