"""Bounded memory: per-model totals stay exact forever, the per-call history is bounded."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

from shekel import Budget, CallRecord, SpendHistory, budget

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")


def traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def alive_records() -> int:
    gc.collect()
    return sum(
        1 for o in gc.get_objects() if type(o) is CallRecord and o.budget_path == "memtest.worker"
    )


@pytest.mark.slow
def test_history_is_bounded_and_memory_does_not_grow_with_calls() -> None:
    counts = dict.fromkeys(MODELS, 0)

    def record_many(b: Budget, n: int) -> None:
        for i in range(n):
            model = MODELS[i % 3]
            counts[model] += 1
            b.record(usd=0.0001, model=model, input_tokens=10, output_tokens=5)

    with budget(name="memtest") as root, budget(name="worker") as b:
        record_many(b, 3)  # warm up price caches and per-model totals
        tracemalloc.start()
        try:
            start = traced_bytes()
            record_many(b, 10_000)
            at_10k = traced_bytes()
            record_many(b, 40_000)
            at_50k = traced_bytes()
        finally:
            tracemalloc.stop()
        record_many(b, 150_000)
    # the history holds at most 1,000 calls: a few hundred kB, then nothing more
    assert at_10k - start < 2_000_000
    assert at_50k - at_10k < 64_000
    # calls are queued, and taken into the totals when read or every 256 calls: at most
    # 1,000 kept plus 255 queued before a read, the 1,000 newest after it
    assert 1_000 < alive_records() <= 1_000 + 255
    total = 200_003
    data = b.summary_data()
    assert alive_records() == 1_000
    assert data["total_calls"] == total
    assert len(data["calls"]) == 1_000
    assert len(b.history().calls) == 1_000
    for model in MODELS:
        assert data["by_model"][model]["calls"] == counts[model]
        assert data["by_model"][model]["input_tokens"] == 10 * counts[model]
        assert data["by_model"][model]["output_tokens"] == 5 * counts[model]
    assert sum(counts.values()) == total
    assert b.spent == 20.0003
    assert root.spent == 20.0003
    assert b.snapshot().tokens_used == 15 * total
    # the parent keeps no copy of its child's calls
    assert len(root.history().calls) == 0
    assert len(root.summary_data()["calls"]) == 1_000


def test_history_size_is_configurable() -> None:
    b = budget(name="b", history_size=10)
    for _ in range(1_000):
        b.record(usd=0.001, model="gpt-4o-mini", input_tokens=1)
    assert len(b.summary_data()["calls"]) == 10
    assert b.summary_data()["by_model"]["gpt-4o-mini"]["calls"] == 1_000
    assert b.spent == 1.0


def test_every_read_counts_the_calls_just_recorded() -> None:
    b = budget(name="b", history_size=2)
    for n in range(1, 4):
        b.record(usd=0.001, model="gpt-4o-mini", input_tokens=n)
    assert b.history().total_calls == 3
    assert b.history().by_model["gpt-4o-mini"].input_tokens == 6
    assert [c.input_tokens for c in b.history().calls] == [2, 3]
    assert [c.input_tokens for c in b.history().recent()] == [2, 3]
    assert b.summary_data()["total_calls"] == 3
    b.record(usd=0.001, model="gpt-4o", input_tokens=1, estimated=True)
    assert b.history().estimated_calls == 1
    assert sorted(b.history().snapshot()[1]) == ["gpt-4o", "gpt-4o-mini"]


def test_threads_recording_into_one_budget_lose_no_call() -> None:
    threads, each = 8, 2_000
    with budget(name="shared", history_size=50) as b:

        def work() -> None:
            for _ in range(each):
                b.record(usd=0.000001, model="gpt-4o-mini", input_tokens=1, output_tokens=2)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    totals = b.history().by_model["gpt-4o-mini"]
    assert (b.history().total_calls, totals.calls) == (threads * each, threads * each)
    assert (totals.input_tokens, totals.output_tokens) == (threads * each, 2 * threads * each)
    assert len(b.history().calls) == 50


def test_totals_of_mixed_calls_are_counted_per_model_tool_and_manual_spend() -> None:
    # More calls than one fold takes (256): the totals come from a fold during recording and
    # one at the read, each holding calls of several models, tools and manual spend.
    b = budget(name="mixed", history_size=10)
    expected: dict[str, list[int]] = {}  # key -> [calls, input tokens]
    for n in range(300):
        kind = n % 4
        if kind == 0:
            b.record(usd=0.001, model="gpt-4o-mini", input_tokens=n)
            key = "gpt-4o-mini"
        elif kind == 1:
            b.record(usd=0.002, model="gpt-4o", input_tokens=n, estimated=True)
            key = "gpt-4o"
        elif kind == 2:
            b.record(usd=0.003)
            key = "(manual)"
        else:
            b.tool_call("search", usd=0.004).commit()
            key = "search"
        counts = expected.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += n if kind < 2 else 0
    history = b.history()
    found = {key: [t.calls, t.input_tokens] for key, t in history.by_model.items()}
    assert found == expected
    assert list(history.by_model) == ["gpt-4o-mini", "gpt-4o", "(manual)", "search"]  # as seen
    assert (history.total_calls, history.estimated_calls) == (300, 75)
    assert history.by_model["search"].cost == 75 * 4_000_000  # nano-dollars
    assert [c.tool_name for c in history.calls][-4:] == [None, None, None, "search"]


def test_a_spend_history_built_by_hand_counts_what_is_added() -> None:
    """``SpendHistory`` is public: ``add`` queues a record and folds every 256, as a budget's
    own recording path does."""
    history = SpendHistory(size=5)
    for n in range(300):
        history.add(
            CallRecord(n, "hand", "gpt-4o" if n % 2 else None, n, 1, 10, n + 1, tool_name="t")
        )
    assert len(history.queued) == 300 - 256  # one fold ran while adding
    assert history.total_calls == 300
    assert [c.seq for c in history.calls] == [295, 296, 297, 298, 299]
    assert history.by_model["gpt-4o"].calls == 150
    assert history.by_model["t"].input_tokens == sum(range(0, 300, 2))
    assert history.by_model["gpt-4o"].cost == 1500
