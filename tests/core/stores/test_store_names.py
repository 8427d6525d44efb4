"""Every name is its own budget in a store: no name reaches another budget's window period, an
unnamed root's children or a pool (reliability probe v2: b01, b08, b10)."""

from __future__ import annotations

import gc
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from shekel import BudgetConfigError, BudgetExceededError, BudgetPool, budget
from shekel._stores import FORGET_BATCH, forget_gone, open_store


def _keys(store: str) -> list[str]:
    return [account["key"] for account in open_store(store).accounts()]


def test_a_name_spelling_another_budgets_period_has_an_account_of_its_own(store: str) -> None:
    bob = budget(name="bob", max_usd=5, window="1d", store=store)
    with bob:
        bob.record(usd=1.0)
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00")
    other = budget(name=f"bob@1d/{today}", max_usd=100, store=store)
    assert other.spent == 0
    with other:
        other.record(usd=4.5)
    assert bob.spent == pytest.approx(1.0)
    with bob:
        bob.record(usd=0.01)  # bob's day has $3.99 left: not refused
    assert budget(name=f"bob@1d/{today}", max_usd=100, store=store).spent == pytest.approx(4.5)


@pytest.mark.parametrize("name", ["bob#1", "bob%40", "a@pool", "50%", "bob@1d"])
def test_names_with_the_characters_of_keys_are_budgets_of_their_own(store: str, name: str) -> None:
    with budget(name="bob", max_usd=5, store=store) as bob:
        bob.record(usd=1.0)
    with budget(name=name, max_usd=5, store=store) as other:
        assert other.spent == 0
        other.record(usd=0.25)
    assert budget(name=name, max_usd=5, store=store).spent == pytest.approx(0.25)
    assert budget(name="bob", max_usd=5, store=store).spent == pytest.approx(1.0)


def test_children_of_unnamed_roots_in_other_processes_are_apart(store: str) -> None:
    step = "research"
    first = budget(max_usd=1.0, store=store)
    with first:
        first.child(step, max_usd=0.50).record(usd=0.40)
    code = (
        "import shekel\n"
        f"b = shekel.budget(max_usd=1.0, store={store!r})\n"
        "with b:\n"
        f"    c = b.child({step!r}, max_usd=0.50)\n"
        "    print(c.spent)\n"
        "    c.record(usd=0.20)\n"
        "    print(c.spent)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode == 0, other.stderr
    assert other.stdout.split() == ["0.0", "0.2"]
    assert first.find_child(step) is not None
    assert first.find_child(step).spent == pytest.approx(0.40)  # type: ignore[union-attr]


def test_children_of_unnamed_roots_are_forgotten_with_them(store: str) -> None:
    made = 2 * FORGET_BATCH + 1
    for _ in range(made):
        root = budget(max_usd=1.0, store=store)
        with root:
            root.child("step").record(usd=0.01)
    del root
    gc.collect()
    with budget(max_usd=1.0, name="next", store=store):
        pass  # a budget beginning deletes what gone budgets left
    left = [key for key in _keys(store) if key.endswith(".step")]
    forget_gone(at_exit=True)  # leave no batch waiting for the tests that count them
    assert len(left) < FORGET_BATCH  # deleted in batches: one batch may still wait


def test_named_children_keep_the_keys_they_always_had(store: str) -> None:
    with budget(name="workflow", max_usd=5, store=store) as w, w.child("research") as r:
        r.record(usd=0.5)
    assert sorted(_keys(store)) == ["workflow", "workflow.research"]


def test_pools_of_different_names_are_apart(store: str) -> None:
    ledger = open_store(store)
    tenant_a = BudgetPool(usd_cap=1.0, ledger=ledger, name="tenant-a")
    tenant_b = BudgetPool(usd_cap=1.0, ledger=ledger, name="tenant-b")
    tenant_a.record(usd=0.8)
    assert tenant_b.snapshot().usd_used == 0
    tenant_b.record(usd=0.3)
    tenant_b.reset()
    assert tenant_a.snapshot().usd_used == pytest.approx(0.8)


def test_pools_of_one_name_share_their_account(store: str) -> None:
    name = f"jobs-{uuid.uuid4().hex[:6]}"
    first = BudgetPool(usd_cap=1.0, ledger=open_store(store), name=name)
    second = BudgetPool(usd_cap=1.0, ledger=open_store(store), name=name)
    first.record(usd=0.8)
    with pytest.raises(BudgetExceededError):
        second.record(usd=0.3)


def test_a_pool_and_a_budget_never_share_an_account(store: str) -> None:
    pool = BudgetPool(usd_cap=1.0, ledger=open_store(store), name="pool")
    pool.record(usd=0.9)
    with budget(name="pool", max_usd=1.0, store=store) as b:
        assert b.spent == 0
        b.record(usd=0.5)
    assert pool.snapshot().usd_used == pytest.approx(0.9)


def test_a_pool_on_a_store_needs_a_name(store: str) -> None:
    with pytest.raises(BudgetConfigError, match=r"needs a name.*name='crawl-jobs'"):
        BudgetPool(usd_cap=1.0, ledger=open_store(store))


def test_names_with_control_characters_are_refused() -> None:
    for name in ["mallory\nalice", "eve\x1b[2K", "rtl\u202eevil", "tab\there"]:
        with pytest.raises(BudgetConfigError, match="control characters"):
            budget(name=name, max_usd=1)
        with budget(name="root", max_usd=1) as root, pytest.raises(BudgetConfigError):
            root.child(name)
