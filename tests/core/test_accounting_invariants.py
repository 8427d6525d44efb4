"""Property-based tests (hypothesis) of the accounting invariants.

Amounts are generated as whole nano-dollars and passed as floats (``n / 1e9``), which is how users
write them; ``nanos()`` recovers the exact integer from a public float figure.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shekel import Budget, BudgetExceededError, BudgetPool, Reservation, budget

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def nanos(usd: float | None) -> int:
    assert usd is not None
    return round(usd * 1e9)


def usd(n: int) -> float:
    return n / 1e9


# -- a tree of budgets --------------------------------------------------------------------


@dataclass
class Node:
    budget: Budget
    path: list[Budget]
    children: list[Node] = field(default_factory=list)
    direct: int = 0  # nano-dollars expected to be recorded directly here

    def subtree(self) -> int:
        return self.direct + sum(c.subtree() for c in self.children)


caps = st.one_of(st.none(), st.integers(min_value=1, max_value=5_000).map(lambda c: c / 100))


@st.composite
def trees(draw: st.DrawFn) -> list[Node]:
    """A root with up to 3 children, each with up to 2 children; returns every node."""
    root_budget = budget(max_usd=draw(caps), name="root")
    root = Node(root_budget, [root_budget])
    nodes = [root]
    for i in range(draw(st.integers(0, 3))):
        b = budget(max_usd=draw(caps), name=f"c{i}")
        child = Node(b, [*root.path, b])
        root.children.append(child)
        nodes.append(child)
        for j in range(draw(st.integers(0, 2))):
            g = budget(max_usd=draw(caps), name=f"g{j}")
            grandchild = Node(g, [*child.path, g])
            child.children.append(grandchild)
            nodes.append(grandchild)
    return nodes


amounts = st.integers(min_value=0, max_value=3_000_000_000)  # up to $3
ops = st.lists(
    st.tuples(
        st.integers(0, 9),  # which node (modulo the node count)
        st.sampled_from(["record", "commit", "release", "tool", "over_commit"]),
        amounts,
        amounts,
    ),
    max_size=25,
)


def check_tree_invariants(nodes: list[Node]) -> None:
    for node in nodes:
        b = node.budget
        by_children = sum(nanos(c.budget.spent) for c in node.children)
        assert nanos(b.spent) == nanos(b.spent_direct) + nanos(b.spent_by_children)
        assert nanos(b.spent_by_children) == by_children
        assert nanos(b.spent_direct) == node.direct
        assert nanos(b.spent) == node.subtree()
        assert b.snapshot().usd_reserved == 0.0
        assert not b.is_active


@SETTINGS
@given(nodes=trees(), steps=ops)
def test_spent_is_direct_plus_children(nodes: list[Node], steps: list[tuple]) -> None:
    for index, kind, a, b in steps:
        node = nodes[index % len(nodes)]
        target = node.budget
        before = [nanos(n.budget.spent) for n in nodes]
        try:
            with ExitStack() as stack:
                for level in node.path:
                    stack.enter_context(level)
                if kind == "record":
                    node.direct += a
                    target.record(usd=usd(a), tokens=1)
                elif kind == "tool":
                    try:
                        target.tool_call("t", usd=usd(a)).commit()
                    except BudgetExceededError:
                        assert [nanos(n.budget.spent) for n in nodes] == before
                        raise
                    node.direct += a
                else:
                    try:
                        reservation = target.reserve(usd=usd(a))
                    except BudgetExceededError:
                        assert [nanos(n.budget.spent) for n in nodes] == before
                        raise
                    with reservation as r:
                        if kind == "commit":
                            node.direct += min(a, b)
                            r.commit(usd=usd(min(a, b)))
                        elif kind == "over_commit":
                            node.direct += a + b
                            r.commit(usd=usd(a + b))
                        # "release": leave the block without committing
        except BudgetExceededError:
            pass
        check_tree_invariants(nodes)


# -- reservations never let a budget of the chain pass its cap ----------------------------


@dataclass
class ChainState:
    used: int
    reserved: int
    cap: int | None
    tok_used: int
    tok_reserved: int
    tok_cap: int | None


def read_chain(chain: list[Budget]) -> list[ChainState]:
    out = []
    for b in chain:
        s = b.snapshot()
        out.append(
            ChainState(
                nanos(s.usd_used),
                nanos(s.usd_reserved),
                None if s.usd_limit is None else nanos(s.usd_limit),
                s.tokens_used,
                s.tokens_reserved,
                s.tokens_limit,
            )
        )
    return out


def fits(states: list[ChainState], amount: int, tokens: int) -> bool:
    return all(
        (s.cap is None or s.used + s.reserved + amount <= s.cap)
        and (s.tok_cap is None or s.tok_used + s.tok_reserved + tokens <= s.tok_cap)
        for s in states
    )


chain_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.integers(0, 2),
            st.integers(0, 2_000_000_000),
            st.integers(0, 3_000),
        ),
        st.tuples(st.just("settle"), st.integers(0, 50), st.floats(0, 1), st.floats(0, 1)),
        st.tuples(st.just("tool"), st.integers(0, 2), st.integers(0, 1_000_000_000), st.just(0)),
    ),
    max_size=40,
)
usd_caps = st.one_of(st.none(), st.integers(1, 5_000_000_000))
token_caps = st.one_of(st.none(), st.integers(1, 10_000))


@SETTINGS
@given(
    usd_cap_list=st.tuples(usd_caps, usd_caps, usd_caps),
    token_cap_list=st.tuples(token_caps, token_caps, token_caps),
    steps=chain_ops,
)
def test_reservations_never_let_a_budget_in_the_chain_exceed_its_cap(
    usd_cap_list: tuple[int | None, ...],
    token_cap_list: tuple[int | None, ...],
    steps: list[tuple],
) -> None:
    chain = [
        budget(
            max_usd=None if c is None else usd(c),
            max_tokens=t,
            name=f"level{i}",
        )
        for i, (c, t) in enumerate(zip(usd_cap_list, token_cap_list, strict=True))
    ]
    with chain[0], chain[1], chain[2]:  # nest them once (this also auto-caps the children)
        pass
    outstanding: list[tuple[Reservation, int, int]] = []

    for kind, a, b, c in steps:
        before = read_chain(chain)
        if kind == "reserve":
            target = chain[a]
            lineage = chain[: a + 1]  # the target and its ancestors
            expected = fits(read_chain(lineage), b, c)
            try:
                r = target.reserve(usd=usd(b), tokens=c)
            except BudgetExceededError as exc:
                refused = exc
                assert not expected, "a reservation that fits was refused"
                assert read_chain(chain) == before  # nothing held anywhere
                assert refused.sent is False
            else:
                assert expected, "a reservation that does not fit was granted"
                outstanding.append((r, b, c))
                for s0, s1 in zip(before[: a + 1], read_chain(lineage), strict=True):
                    assert s1.reserved == s0.reserved + b
                    assert s1.tok_reserved == s0.tok_reserved + c
        elif kind == "settle" and outstanding:
            r, held_usd, held_tokens = outstanding.pop(a % len(outstanding))
            if b < 0.3:
                r.release()
            else:
                # commit at most what was held: the actual cost of a call that fits
                r.commit(usd=usd(int(held_usd * c)), tokens=int(held_tokens * c))
        elif kind == "tool":
            target = chain[a]
            expected = fits(read_chain(chain[: a + 1]), b, 0)
            try:
                target.tool_call("search", usd=usd(b)).commit()
            except BudgetExceededError:
                assert not expected
                assert read_chain(chain) == before
            else:
                assert expected

        for s in read_chain(chain):
            assert s.cap is None or s.used + s.reserved <= s.cap
            assert s.tok_cap is None or s.tok_used + s.tok_reserved <= s.tok_cap
            assert s.reserved >= 0
            assert s.tok_reserved >= 0

    for r, _, _ in outstanding:
        r.release()
    for s in read_chain(chain):
        assert s.reserved == 0
        assert s.tok_reserved == 0


# -- exact sums -----------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=200))
def test_recorded_amounts_sum_exactly(parts: list[int]) -> None:
    b = budget(name="sum")
    for n in parts:
        b.record(usd=usd(n))
    assert b.spent == sum(parts) / 1e9
    assert nanos(b.spent) == sum(parts)


# -- the pool --------------------------------------------------------------------------------

pool_ops = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(0, 600), st.integers(0, 600_000_000)),
        st.tuples(st.just("reserve"), st.integers(0, 600), st.integers(0, 600_000_000)),
        st.tuples(st.just("settle"), st.integers(0, 50), st.integers(0, 3)),
    ),
    max_size=40,
)


@SETTINGS
@given(
    token_cap=st.one_of(st.none(), st.integers(1, 2_000)),
    usd_cap=st.one_of(st.none(), st.integers(1, 2_000_000_000)),
    steps=pool_ops,
)
def test_pool_refuses_exactly_what_would_pass_a_cap(
    token_cap: int | None, usd_cap: int | None, steps: list[tuple]
) -> None:
    pool = BudgetPool(token_cap=token_cap, usd_cap=None if usd_cap is None else usd(usd_cap))
    used_t = used_u = 0
    held: list[tuple[object, int, int]] = []

    def reserved() -> tuple[int, int]:
        return sum(t for _, t, _ in held), sum(u for _, _, u in held)

    for kind, a, b in steps:
        before = pool.snapshot()
        res_t, res_u = reserved()
        fit = (token_cap is None or used_t + res_t + a <= token_cap) and (
            usd_cap is None or used_u + res_u + b <= usd_cap
        )
        if kind == "record":
            try:
                pool.record(tokens=a, usd=usd(b))
            except BudgetExceededError:
                assert not fit
                assert pool.snapshot() == before
            else:
                assert fit
                used_t, used_u = used_t + a, used_u + b
        elif kind == "reserve":
            try:
                r = pool.reserve(tokens=a, usd=usd(b))
            except BudgetExceededError:
                assert not fit
                assert pool.snapshot() == before
            else:
                assert fit
                held.append((r, a, b))
        elif kind == "settle" and held:
            r, t, u = held.pop(a % len(held))
            if b == 0:
                r.release()  # type: ignore[attr-defined]
            else:
                t, u = t * b // 3, u * b // 3  # commit 1/3, 2/3 or all of it
                r.commit(tokens=t, usd=usd(u))  # type: ignore[attr-defined]
                used_t, used_u = used_t + t, used_u + u

        snap = pool.snapshot()
        res_t, res_u = reserved()
        assert snap.tokens_used == used_t
        assert nanos(snap.usd_used) == used_u
        assert snap.tokens_reserved == res_t
        assert nanos(snap.usd_reserved) == res_u
        if token_cap is not None:
            assert snap.tokens_used + snap.tokens_reserved <= token_cap
            assert snap.tokens_remaining == token_cap - used_t - res_t
        else:
            assert snap.tokens_remaining is None
        if usd_cap is not None:
            assert nanos(snap.usd_remaining) == usd_cap - used_u - res_u
        else:
            assert snap.usd_remaining is None
