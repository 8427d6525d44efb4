"""Reserve/commit and snapshots on every budget (seed 003's two-phase API, on the budget tree)."""

from __future__ import annotations

import pytest

from shekel import BudgetConfigError, BudgetExceededError, Reservation, budget


def test_reserve_commit_records_the_actual_spend() -> None:
    b = budget(max_usd=1.0, max_tokens=10_000, name="b")
    with b:
        with b.reserve(usd=0.012, tokens=2_000) as r:
            assert isinstance(r, Reservation)
            assert r.usd == 0.012
            assert r.tokens == 2_000
            snap = b.snapshot()
            assert snap.usd_reserved == 0.012
            assert snap.tokens_reserved == 2_000
            assert snap.usd_used == 0.0
            assert snap.usd_remaining == 0.988
            assert snap.tokens_remaining == 8_000
            assert b.remaining == 0.988
            call = r.commit(usd=0.009, tokens=1_500)
        assert call.cost_usd == 0.009
    snap = b.snapshot()
    assert snap.usd_used == 0.009
    assert snap.tokens_used == 1_500
    assert snap.usd_reserved == 0.0
    assert snap.tokens_reserved == 0
    assert b.spent == 0.009
    assert b.spent_direct == 0.009
    assert b.summary_data()["total_calls"] == 1


def test_commit_can_price_a_model() -> None:
    b = budget(name="b", prices={"house-model": {"input": 1.0, "output": 2.0}})
    with b.reserve(usd=0.01) as r:
        r.commit(model="house-model", input_tokens=1_000, output_tokens=500)
    # 1,000 x $1/M + 500 x $2/M = $0.002
    assert b.spent == 0.002
    assert b.snapshot().tokens_used == 1_500
    assert b.summary_data()["calls"][0]["model"] == "house-model"


def test_reservation_is_held_on_every_ancestor() -> None:
    with (
        budget(max_usd=10, name="root") as root,
        budget(max_usd=5, name="mid") as mid,
        budget(max_usd=2, name="leaf") as leaf,
    ):
        with leaf.reserve(usd=1.5) as r:
            for b in (root, mid, leaf):
                assert b.snapshot().usd_reserved == 1.5
            assert root.remaining == 8.5
            r.commit(usd=1.0)
        for b in (root, mid, leaf):
            assert b.snapshot().usd_reserved == 0.0
            assert b.spent == 1.0


def test_released_when_the_block_raises() -> None:
    b = budget(max_usd=1.0, name="b")
    with pytest.raises(TimeoutError), b.reserve(usd=0.5):
        raise TimeoutError
    assert b.snapshot().usd_reserved == 0.0
    assert b.spent == 0.0
    assert b.remaining == 1.0


def test_released_on_exit_without_commit() -> None:
    b = budget(max_usd=1.0, max_tokens=100, name="b")
    with b.reserve(usd=0.5, tokens=50):
        pass
    snap = b.snapshot()
    assert (snap.usd_reserved, snap.tokens_reserved, snap.usd_used, snap.tokens_used) == (
        0.0,
        0,
        0.0,
        0,
    )


def test_reservation_that_does_not_fit_the_budget_raises_before_anything_is_spent() -> None:
    b = budget(max_usd=1.0, name="b")
    b.record(usd=0.7)
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(usd=0.5)
    assert info.value.sent is False
    assert info.value.budget_name == "b"
    assert info.value.axis == "usd"
    snap = b.snapshot()
    assert snap.usd_reserved == 0.0
    assert snap.usd_used == 0.7


def test_reservation_that_does_not_fit_an_ancestor_holds_nothing_anywhere() -> None:
    with budget(max_usd=1.0, name="root") as root:
        root.record(usd=0.5)
        with budget(max_usd=0.5, name="mid") as mid, budget(name="leaf") as leaf:
            with pytest.raises(BudgetExceededError) as info:
                leaf.reserve(usd=0.6)  # the leaf is unlimited; mid and root are not
            assert info.value.budget_name == "root.mid"
            for b in (root, mid, leaf):
                assert b.snapshot().usd_reserved == 0.0
            assert root.spent == 0.5
            assert leaf.spent == 0.0
            with leaf.reserve(usd=0.5) as r:  # exactly what is left fits
                r.commit(usd=0.5)
    assert root.spent == 1.0
    assert root.remaining == 0.0


def test_ancestor_named_when_its_cap_refuses_a_reservation() -> None:
    with budget(max_usd=1.0, name="root") as root:
        with budget(name="leaf") as leaf:
            leaf.record(usd=0.8)
            with pytest.raises(BudgetExceededError) as info:
                leaf.reserve(usd=0.3)
    assert info.value.budget_name == "root"
    assert info.value.limit == 1.0
    assert root.snapshot().usd_reserved == 0.0


def test_outstanding_reservations_count_against_new_ones() -> None:
    b = budget(max_usd=1.0, max_tokens=1_000, name="b")
    first = b.reserve(usd=0.6, tokens=100)
    with pytest.raises(BudgetExceededError):
        b.reserve(usd=0.5)
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(tokens=901)
    assert info.value.axis == "tokens"
    second = b.reserve(usd=0.4, tokens=900)
    assert b.snapshot().usd_remaining == 0.0
    first.release()
    second.release()
    assert b.snapshot().usd_remaining == 1.0


def test_commit_over_the_cap_records_then_raises() -> None:
    b = budget(max_usd=1.0, name="b")
    with pytest.raises(BudgetExceededError) as info, b.reserve(usd=0.5) as r:
        r.commit(usd=1.25)
    assert info.value.spent == 1.25
    assert b.spent == 1.25
    assert b.snapshot().usd_reserved == 0.0


def test_commit_twice_or_after_release_is_an_error() -> None:
    b = budget(max_usd=1.0, name="b")
    r = b.reserve(usd=0.5)
    r.commit(usd=0.1)
    with pytest.raises(RuntimeError):
        r.commit(usd=0.1)
    r2 = b.reserve(usd=0.5)
    r2.release()
    with pytest.raises(RuntimeError):
        r2.commit(usd=0.1)
    assert b.spent == 0.1
    assert b.snapshot().usd_reserved == 0.0


def test_reset_drops_outstanding_reservations() -> None:
    b = budget(max_usd=1.0, name="b")
    r = b.reserve(usd=0.8)
    b.reset()
    assert b.snapshot().usd_reserved == 0.0
    r.release()
    assert b.snapshot().usd_reserved == 0.0
    assert b.remaining == 1.0


def test_reserve_on_a_parent_while_its_child_is_active_is_refused() -> None:
    with budget(max_usd=1.0, name="p") as p, budget(max_usd=0.5, name="c"):
        with pytest.raises(RuntimeError):
            p.reserve(usd=0.1)
        assert p.snapshot().usd_reserved == 0.0


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"usd": -0.1}, "usd"),
        ({"usd": float("nan")}, "usd"),
        ({"usd": float("inf")}, "usd"),
        ({"tokens": -5}, "tokens"),
        ({"tokens": 2.5}, "tokens"),
    ],
)
def test_bad_reservation_amounts(kwargs: dict[str, object], param: str) -> None:
    b = budget(max_usd=1.0, name="b")
    with pytest.raises(BudgetConfigError, match=param):
        b.reserve(**kwargs)  # type: ignore[arg-type]
    assert b.snapshot().usd_reserved == 0.0


def test_snapshot_fields() -> None:
    b = budget(max_usd=2.0, max_tokens=100, max_llm_calls=5, max_tool_calls=3, name="b")
    b.record(usd=0.5, tokens=40)
    b.tool_call("search").commit()
    r = b.reserve(usd=0.25, tokens=10)
    s = b.snapshot()
    assert s.usd_used == 0.5
    assert s.usd_reserved == 0.25
    assert s.usd_remaining == 1.25
    assert s.usd_limit == 2.0
    assert s.tokens_used == 40
    assert s.tokens_reserved == 10
    assert s.tokens_remaining == 50
    assert s.tokens_limit == 100
    assert s.llm_calls_used == 1
    assert s.llm_calls_remaining == 4
    assert s.tool_calls_used == 1
    assert s.tool_calls_remaining == 2
    r.release()
    unlimited = budget(name="u").snapshot()
    assert unlimited.usd_remaining is None
    assert unlimited.tokens_remaining is None
    assert unlimited.llm_calls_remaining is None
    assert unlimited.usd_limit is None
