"""What the Redis store does beyond the ledger contract, on a real ``redis-server``: exact
amounts far past what a Lua number holds, holds on the server's clock, operations retried
after a lost reply applied once, keys that expire, bad URLs, unreachable and silent servers,
the failure policy, native async twins, and ``import shekel`` without redis."""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

from shekel import BudgetConfigError, budget
from shekel._errors import BudgetStoreUnavailableError
from shekel._ledger import UNLIMITED, Caps, Hold, Overrun
from shekel._store_errors import BudgetStoreWarning
from shekel._store_redis import RedisLedger
from shekel._stores import open_store

USD = 1_000_000_000
BIG = 10**18  # $1e9 in nano-dollars: far past 2^53, the last integer a Lua number holds


@pytest.fixture
def ledger(redis_url: str) -> Iterator[RedisLedger]:
    found = RedisLedger(redis_url)
    yield found
    found.close()


def key(name: str) -> str:
    import uuid

    return f"{name}-{uuid.uuid4().hex[:8]}"


# -- exact amounts ----------------------------------------------------------------------------


def test_amounts_of_a_billion_dollars_add_up_exactly(ledger: RedisLedger) -> None:
    chain = [(ledger.open(key("big")), Caps()), (ledger.open(key("parent")), Caps())]
    amounts = [BIG] * 9 + [BIG - 1, 123_456_789_012_345_678, 99_999_999_999_999, 1]
    for amount in amounts:
        assert ledger.record(chain, amount, amount) is None
    for account, _ in chain:
        assert ledger.read(account).used[:2] == (sum(amounts), sum(amounts))
    assert sum(amounts) > 2**63  # past a 64-bit integer too


def test_caps_near_a_billion_dollars_are_kept_to_the_nano_dollar(ledger: RedisLedger) -> None:
    cap = 3 * BIG + 7
    chain = [(ledger.open(key("cap")), Caps(usd=cap))]
    held = ledger.reserve(chain, 2 * BIG, 0)
    assert isinstance(held, Hold)
    assert ledger.try_record(chain, BIG + 7, 0) is None  # exactly to the cap
    refused = ledger.reserve(chain, 1, 0)
    assert refused == Overrun(0, "usd", BIG + 7, cap)
    ledger.commit(held, 2 * BIG - 1, 0)
    state = ledger.read(chain[0][0])
    assert state.used[0] == 3 * BIG + 6
    assert state.reserved[0] == 0
    assert ledger.headroom(chain) == (1, UNLIMITED)
    assert ledger.record(chain, 2, 0) == Overrun(0, "usd", 3 * BIG + 8, cap)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["record", "hold", "commit", "release"]),
            st.integers(min_value=0, max_value=BIG),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_of_large_amounts_matches_python_integers(
    ledger: RedisLedger, steps: list[tuple[str, int]]
) -> None:
    chain = [(ledger.open(key("prop")), Caps())]
    used = reserved = 0
    holds: list[Hold] = []
    for op, amount in steps:
        if op == "record":
            ledger.record(chain, amount, 0)
            used += amount
        elif op == "hold":
            hold = ledger.reserve(chain, amount, 0)
            assert isinstance(hold, Hold)
            holds.append(hold)
            reserved += amount
        elif holds:
            hold = holds.pop(0)
            reserved -= hold.usd
            if op == "commit":
                ledger.commit(hold, amount, 0)
                used += amount
            else:
                ledger.release(hold)
    state = ledger.read(chain[0][0])
    assert (state.used[0], state.reserved[0]) == (used, reserved)


# -- holds on the server ----------------------------------------------------------------------


def test_a_hold_expires_on_the_servers_clock(
    ledger: RedisLedger, redis_server: RedisServer
) -> None:
    chain = [(ledger.open(key("clock")), Caps())]
    seconds, micros = redis_server.client().time()
    server_now = seconds + micros / 1e6
    hold = ledger.reserve(chain, 1, 0, ttl=100)
    assert isinstance(hold, Hold)
    assert hold.expires_at is not None
    assert server_now + 99 < hold.expires_at < server_now + 101


def test_an_expired_hold_stops_counting_for_the_next_reserve_without_expire(
    ledger: RedisLedger, redis_url: str
) -> None:
    name = key("crashed")
    chain = [(ledger.open(name), Caps(usd=USD))]
    assert isinstance(ledger.reserve(chain, USD, 0, ttl=0.1), Hold)  # and then the worker died
    other = RedisLedger(redis_url)  # another process
    theirs = [(other.open(name), Caps(usd=USD))]
    assert isinstance(other.reserve(theirs, 1, 0), Overrun)
    import time

    time.sleep(0.3)
    assert isinstance(other.reserve(theirs, USD, 0), Hold)
    other.close()


def test_settled_holds_and_operation_ids_are_forgotten_in_time(
    ledger: RedisLedger, redis_server: RedisServer
) -> None:
    chain = [(ledger.open(key("ttl")), Caps())]
    hold = ledger.reserve(chain, 5, 0)
    assert isinstance(hold, Hold)
    client = redis_server.client()
    assert client.ttl(f"shekel:h:{hold.id}") == -1  # live: kept until settled or expired
    ledger.commit(hold, 5, 0)
    assert 3500 < client.ttl(f"shekel:h:{hold.id}") <= 3600
    ledger.record(chain, 1, 0)
    marks = list(client.scan_iter(match="shekel:op:*"))
    assert len(marks) == 1
    assert 0 < client.ttl(marks[0]) <= 120
    assert client.zcard("shekel:live") == 0


def test_a_windows_period_account_expires_with_its_period(
    redis_url: str, redis_server: RedisServer
) -> None:
    b = budget(name=key("daily"), max_usd=5, window="1d", store=redis_url)
    b.record(usd=1.0)
    client = redis_server.client()
    [period_key] = client.scan_iter(match=f"shekel:a:{b.name}@1d/*")
    remaining = client.pttl(period_key) / 1000
    ends = b.snapshot().period_ends_at
    assert ends is not None
    import time

    expected = ends + 86400 - time.time()  # kept one window past its end, then forgotten
    assert expected - 5 < remaining <= expected + 1
    assert client.ttl(f"shekel:a:{b.name}") == -2  # the budget's own account is not used


def test_the_script_is_loaded_again_when_the_server_forgot_it(
    ledger: RedisLedger, redis_server: RedisServer
) -> None:
    chain = [(ledger.open(key("flush")), Caps())]
    ledger.record(chain, 1, 0)
    redis_server.client().script_flush()
    ledger.record(chain, 1, 0)
    assert ledger.read(chain[0][0]).used[0] == 2


class ReplyDropper:
    """A TCP proxy in front of Redis that forwards commands but closes the connection instead
    of passing back the next ``drops`` replies that carry ``marker``: the command ran, the
    client never heard."""

    def __init__(self, port: int, marker: bytes, drops: int) -> None:
        self.target = port
        self.marker = marker
        self.drops = drops
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.target))
        with client, server:
            while True:
                request = client.recv(1 << 16)
                if not request:
                    return
                server.sendall(request)
                reply = server.recv(1 << 16)
                if self.marker in request and self.drops > 0:
                    self.drops -= 1
                    return  # the reply is lost with the connection
                client.sendall(reply)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("op", ["record", "reserve", "commit", "try_record"])
def test_an_operation_whose_reply_was_lost_is_applied_once(
    redis_server: RedisServer, redis_url: str, op: str
) -> None:
    proxy = ReplyDropper(redis_server.port, op.encode(), drops=1)
    via_proxy = RedisLedger(f"redis://127.0.0.1:{proxy.port}/0")
    direct = RedisLedger(redis_url)
    name = key("lost")
    chain = [(via_proxy.open(name), Caps(usd=10))]
    direct.record([(direct.open(name), Caps())], 0, 0)  # load the script without the proxy
    if op == "commit":
        hold = direct.reserve(chain, 3, 0)
        assert isinstance(hold, Hold)
        assert via_proxy.commit(hold, 2, 0) is None
    elif op == "reserve":
        assert isinstance(via_proxy.reserve(chain, 3, 0), Hold)
    elif op == "record":
        assert via_proxy.record(chain, 3, 0) is None
    else:
        assert via_proxy.try_record(chain, 3, 0) is None
    assert proxy.drops == 0  # the first reply was lost, and the retry answered
    state = direct.read(direct.open(name))
    expected = {"record": (3, 0), "try_record": (3, 0), "reserve": (0, 3), "commit": (2, 0)}
    assert (state.used[0], state.reserved[0]) == expected[op]
    proxy.close()
    via_proxy.close()
    direct.close()


# -- URLs and failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:notaport/0", "not one redis can use"),
        ("redis://127.0.0.1:6379/zero", "database number"),
        ("redis://127.0.0.1:6379/0?bogus=1", "bogus"),
        ("redis://127.0.0.1:6379/0?timeout=0", "timeout must be a number of seconds"),
        ("redis://127.0.0.1:6379/0?ttl=soon", "ttl must be a number of seconds"),
        ("redis://127.0.0.1:6379/0?on_error=maybe", "on_error must be 'closed'"),
        ("sqlite:///x.db?bogus=1", "takes the options on_error, timeout, ttl"),
        ("sqlite://spend.db", "sqlite:///relative/spend.db"),
        ("postgres://host/db", "not a store shekel knows"),
    ],
)
def test_bad_store_urls_say_what_to_fix(url: str, message: str) -> None:
    with pytest.raises(BudgetConfigError, match=message):
        open_store(url)


def test_url_options_reach_the_store(redis_url: str) -> None:
    found = open_store(f"{redis_url}?timeout=0.5&ttl=7&on_error=open&health_check_interval=3")
    assert isinstance(found, RedisLedger)
    assert (found.timeout, found.default_ttl) == (0.5, 7.0)
    assert found._errors.policy == "open"
    assert open_store(f"{redis_url}?timeout=0.5&ttl=7&on_error=open&health_check_interval=3") is (
        found
    )


def test_sqlite_url_options_reach_the_store(tmp_path: object) -> None:
    from shekel._store_sqlite import SQLiteLedger

    found = open_store(f"sqlite:///{tmp_path}/opts.db?timeout=0.5&ttl=7&on_error=open")
    assert isinstance(found, SQLiteLedger)
    assert (found.timeout, found.default_ttl, found._errors.policy) == (0.5, 7.0, "open")
    assert found.path == f"{tmp_path}/opts.db"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now


def test_an_unreachable_server_fails_closed_saying_what_to_check() -> None:
    # retry_for: spend that happened (the arecord below) is retried that long, 10 s by default
    ledger = RedisLedger(f"redis://:hunter2@127.0.0.1:{closed_port()}/0", retry_for=0.5)
    chain = [(ledger.open("x"), Caps())]
    with pytest.raises(BudgetStoreUnavailableError) as caught:
        ledger.reserve(chain, 1, 0)
    text = str(caught.value)
    assert "redis://:***@127.0.0.1" in text
    assert "check that it is running and reachable" in text
    assert "hunter2" not in text
    with pytest.raises(BudgetStoreUnavailableError):
        asyncio.run(ledger.arecord(chain, 1, 0))


def test_a_server_that_never_answers_times_out() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never replies
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    ledger = RedisLedger(url, timeout=0.2, retry_for=0.5)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            ledger.record([(ledger.open("x"), Caps())], 1, 0)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a bound on a hang, not a measurement
    assert not worker.is_alive()
    assert isinstance(outcome[0], BudgetStoreUnavailableError)
    silent.close()


def test_failing_open_lets_calls_go_on_with_one_warning() -> None:
    ledger = RedisLedger(f"redis://127.0.0.1:{closed_port()}/0", on_error="open")
    chain = [(ledger.open("x"), Caps(usd=1))]
    with pytest.warns(BudgetStoreWarning, match="unavailable.*unrecorded"):
        hold = ledger.reserve(chain, 5 * USD, 0)
    assert isinstance(hold, Hold)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ledger.commit(hold, 5 * USD, 0) is None
        assert ledger.record(chain, 1, 0) is None
        assert ledger.read(chain[0][0]).used == (0, 0, 0, 0)


# -- async ------------------------------------------------------------------------------------


def test_async_twins_run_on_the_event_loop_and_close_their_connections(
    ledger: RedisLedger,
) -> None:
    chain = [(ledger.open(key("async")), Caps(llm_calls=40))]

    async def run() -> int:
        loop = asyncio.get_running_loop()

        def no_threads(*args: object) -> None:
            raise AssertionError("an async twin ran in a worker thread")

        loop.run_in_executor = no_threads  # type: ignore[assignment, method-assign]

        async def one() -> bool:
            hold = await ledger.areserve(chain, 0, 0, 1)
            if isinstance(hold, Overrun):
                return False
            await ledger.acommit(hold, 0, 0, 1)
            return True

        results = await asyncio.gather(*(one() for _ in range(60)))
        await ledger.arecord(chain, 0, 5)
        refused = await ledger.acheck(chain, 0, 0, 1)
        assert refused is not None
        assert refused.axis == "llm_calls"
        assert await ledger.aheadroom(chain) == (UNLIMITED, UNLIMITED)
        assert await ledger.aexpire() == 0
        return sum(results)

    gc.collect()  # what earlier tests in this process left unclosed is not this test's
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert asyncio.run(run()) == 40
        assert asyncio.run(ledger.aread(chain[0][0])).used == (0, 5, 40, 0)
        gc.collect()  # an unclosed connection would warn here


# -- import ----------------------------------------------------------------------------------


def test_import_shekel_never_imports_redis(tmp_path: object) -> None:
    code = (
        "import sys, shekel\n"
        "b = shekel.budget(name='x', max_usd=1, store='sqlite:///' + sys.argv[1])\n"
        "b.record(usd=0.1)\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, f"{tmp_path}/s.db"], check=True)
