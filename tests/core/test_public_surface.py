"""What ``shekel`` shows its users: Budget's members and the names of its public classes."""

from __future__ import annotations

import shekel
from shekel import Budget

BUDGET_MEMBERS = {
    # spend
    "spent",
    "limit",
    "remaining",
    "spent_direct",
    "spent_by_children",
    # the fallback model
    "model_switched",
    "switched_at_usd",
    "fallback_spent",
    # the tree
    "full_name",
    "active_child",
    "is_active",
    "child",
    "find_child",
    # recording and checks
    "record",
    "tool_call",
    "reserve",
    "check",
    "set_limits",
    "reset",
    # reports
    "snapshot",
    "tree",
    "summary",
    "summary_data",
    "history",
    "config",
}


def test_budget_shows_the_members_users_call_and_no_more() -> None:
    shown = {name for name in dir(Budget) if not name.startswith("_")}
    assert shown == BUDGET_MEMBERS
    assert {name for name in dir(shekel.budget()) if not name.startswith("_")} == {
        *BUDGET_MEMBERS,
        *("name", "parent", "children"),
    }
    assert len(shown) <= 25


def test_each_budget_also_has_its_name_parent_and_children() -> None:
    with shekel.budget(max_usd=1, name="outer") as outer, shekel.budget(name="inner") as inner:
        assert (inner.name, inner.parent, outer.children) == ("inner", outer, [inner])


def test_public_classes_are_shown_as_shekel_names_in_tracebacks() -> None:
    classes = [getattr(shekel, name) for name in shekel.__all__]
    where = {c.__qualname__: c.__module__ for c in classes if isinstance(c, type)}
    assert len(where) > 20
    assert set(where.values()) == {"shekel"}, where
