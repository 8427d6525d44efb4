"""The budget tree: how a child joins its parent, and how repeated children are rolled up.

A child budget joins a parent once, the first time it is activated under it; it keeps its name,
and the parent lists it in ``children``. A parent normally refuses a second child with a taken
name. Two kinds of children are *repeats* instead, which a long-running process may create
millions of:

- the budgets ``@with_budget`` makes, one per call;
- children of a parent that adopts repeats (``shekel run``'s budget): a budget without a name,
  or with the name of an existing child.

A repeat is not listed in ``children``. It keeps the plain name (``service.handle``), any number
of repeats with that name may run at once, and when one ends its totals are added to the
parent's :class:`Rollup` for that name. ``tree()`` shows the rollup as one line. Time and
memory per repeat are constant however many ran before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._config import MAX_DEPTH, MAX_FRAMEWORK_DEPTH
from ._errors import BudgetConfigError
from ._history import ModelTotals

if TYPE_CHECKING:
    from ._budget import Budget
    from ._chain import Chain
    from ._context import Activation


class Node:
    """A budget's place in the tree: its children by name, its activations, the rollups of its
    ended repeats, and how deep it sits. It knows its budget and its chain, so the tree's
    functions (and ``Budget``'s helper modules) take a node and need nothing private of a
    ``Budget``."""

    __slots__ = (
        "active_children",
        "adopts_repeats",
        "asked_with",
        "budget",
        "chain",
        "child_names",
        "counted_depth",
        "depth",
        "folded",
        "live",
        "parent",
        "repeat",
        "rollups",
    )

    def __init__(self, budget: Budget, chain: Chain) -> None:
        self.budget: Budget = budget
        self.chain: Chain = chain
        self.parent: Node | None = None  # set once, when the budget joins a parent
        self.child_names: dict[str, Budget] = {}
        self.rollups: dict[str, Rollup] = {}
        self.active_children: list[Budget] = []  # entered and not ended, in entry order
        self.live: list[Activation] = []  # this budget's own activations
        self.depth: int = 0
        self.counted_depth: int = 0  # levels of hand-written budgets, for MAX_DEPTH
        self.repeat = False  # a child that is rolled up into its parent when it ends
        self.adopts_repeats = False  # unnamed and same-name children become repeats
        self.folded: Totals | None = None  # what this repeat last added to its parent's rollup
        self.asked_with: dict[str, Any] = {}  # the options child() created it with


class Totals:
    """What a budget and everything under it recorded: the ledger's four axes, exact
    per-model totals and call counts."""

    __slots__ = ("by_model", "calls", "estimated", "unpriced", "used")

    def __init__(self) -> None:
        self.used = [0, 0, 0, 0]
        self.by_model: dict[str, ModelTotals] = {}
        self.calls = self.unpriced = self.estimated = 0

    def add(self, other: Totals, sign: int = 1) -> None:
        for i, value in enumerate(other.used):
            self.used[i] += sign * value
        for model, theirs in other.by_model.items():
            mine = self.by_model.setdefault(model, ModelTotals())
            mine.merge(theirs, sign)
        self.calls += sign * other.calls
        self.unpriced += sign * other.unpriced
        self.estimated += sign * other.estimated


class Rollup(Totals):
    """The summed totals of a parent's ended repeats of one name."""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0


def history_totals(budget: Budget) -> Totals:
    """Per-model totals and call counts recorded in ``budget``'s subtree, rollups included
    (``used`` is left at zero: the budget's own account already holds its subtree's use)."""
    totals = Totals()
    stack = [budget]
    while stack:
        b = stack.pop()
        _, by_model, calls, unpriced, estimated = b.history().snapshot()
        for model, t in by_model.items():
            totals.by_model.setdefault(model, ModelTotals()).merge(t)
        totals.calls += calls
        totals.unpriced += unpriced
        totals.estimated += estimated
        for rollup in b._node.rollups.values():
            totals.add(_without_used(rollup))
        stack.extend(b.children)
    return totals


def _without_used(rollup: Rollup) -> Totals:
    part = Totals()
    part.by_model, part.calls = rollup.by_model, rollup.calls
    part.unpriced, part.estimated = rollup.unpriced, rollup.estimated
    return part


def join(
    child: Node, parent: Node, *, asked_by_name: bool = False, framework: bool = False
) -> None:
    """Make ``child`` a child of ``parent`` (call with the tree lock held), or raise
    ``BudgetConfigError`` saying why it cannot nest there. ``asked_by_name``: the child comes
    from ``parent.child(name)``, which names it, so its parent may be unnamed. ``framework``: a
    level an integration made for a framework's step, which does not count against the depth
    limit of hand-written budgets."""
    mine, theirs = child.chain, parent.chain
    kid, elder = child.budget, parent.budget
    if mine in theirs.lineage:
        raise BudgetConfigError(f"budget {kid.full_name!r} is already active here")
    if mine.ledger is not theirs.ledger:
        raise BudgetConfigError(
            f"budget {kid.name!r} uses another ledger than {elder.full_name!r}; a child "
            "must keep its accounts on its parent's ledger (pass the same ledger=)"
        )
    if kid.parent is not None:
        raise BudgetConfigError(
            f"budget {kid.full_name!r} belongs to {kid.parent.full_name!r}; it cannot be "
            f"entered inside {elder.full_name!r}. Create a separate budget for each place"
        )
    if mine.ledger.shares_keys:  # a store's account may rightly hold spend of past runs
        held_spend = bool(mine.history.total_calls or kid.children)
    else:
        state = mine.ledger.read(mine.read_account())
        held_spend = any(state.used) or any(state.reserved)
    if held_spend:
        # Its past spend never reached ``parent``: nesting it would break the parent's totals.
        raise BudgetConfigError(
            f"budget {kid.full_name!r} already holds spend recorded outside "
            f"{elder.full_name!r}, so it cannot become its child; reset() it first, or "
            "create a new budget for this place"
        )
    depth = parent.depth + 1
    name = kid.name
    repeat = child.repeat or (
        parent.adopts_repeats and (name is None or name in parent.child_names)
    )
    if repeat and name is None:
        name = "budget"
    if name is None or (elder.name is None and not asked_by_name):
        raise BudgetConfigError(
            "nested budgets need names: give both the outer and the inner budget a name, "
            "e.g. budget(max_usd=10, name='workflow') and budget(max_usd=2, name='research')"
        )
    counted = parent.counted_depth + (0 if framework else 1)
    if counted > MAX_DEPTH or depth > MAX_FRAMEWORK_DEPTH:
        raise BudgetConfigError(
            f"budget {name!r} would be nested {depth} levels deep under {elder.full_name!r}; "
            f"at most {MAX_DEPTH + 1} levels of budgets are allowed (root = 0), not counting "
            f"the levels framework integrations add for their steps (at most "
            f"{MAX_FRAMEWORK_DEPTH + 1} levels in all)"
        )
    if not repeat:
        if name in parent.child_names:
            raise BudgetConfigError(
                f"{elder.full_name!r} already has a child named {name!r}; reuse that budget "
                f"object (or parent.child({name!r})) to add to it, or give this one another name"
            )
        elder.children.append(kid)
        parent.child_names[name] = kid
    kid.name = name
    kid.parent = elder
    child.parent = parent
    child.repeat = repeat
    child.depth = depth
    child.counted_depth = counted
    mine.attach(theirs, name, repeat=repeat)


def fold(child: Node) -> None:
    """Add an ended repeat's totals to its parent's rollup (call with the tree lock held).

    A repeat that is entered and ended again replaces what it added before, so a budget object
    reused across blocks is never counted twice."""
    parent = child.parent
    name = child.budget.name
    assert parent is not None
    assert name is not None
    now = history_totals(child.budget)
    now.used = list(child.chain.used())
    rollup = parent.rollups.get(name)
    if rollup is None:
        rollup = parent.rollups[name] = Rollup()
    before = child.folded
    if before is None:
        rollup.runs += 1
    else:
        rollup.add(before, -1)
    rollup.add(now)
    child.folded = now


def framework_child(parent: Budget, name: str, options: Mapping[str, Any]) -> Budget:
    """``parent.child(name, **options)`` for a framework's step (see ``shekel.integration``):
    created and attached at once, or the existing child of that name as it is."""
    from ._budget import _TREE_LOCK, Budget

    with _TREE_LOCK:
        existing = parent.find_child(name)
        if existing is not None:
            return existing
        elder = parent._node
        created = Budget(name=name, ledger=elder.chain.ledger, **options)
        node = created._node
        join(node, elder, asked_by_name=True, framework=True)
        node.asked_with = dict(options)
    node.chain.autocap()
    return created
