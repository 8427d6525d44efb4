"""The rules a child budget must follow to nest under a parent: names, depth, siblings."""

from __future__ import annotations

from collections.abc import Container

from ._config import MAX_DEPTH
from ._errors import BudgetConfigError


def child_name(
    name: str | None,
    parent_name: str | None,
    parent_path: str,
    siblings: Container[str],
    sibling_count: int,
    depth: int,
    *,
    number_unnamed: bool,
    number_repeats: bool,
) -> str:
    """The name a new child takes under its parent, or ``BudgetConfigError`` saying why it
    cannot nest there.

    ``number_unnamed`` names an unnamed child ``budget-N`` (``shekel run``'s root);
    ``number_repeats`` turns a repeated sibling name into ``name-2``, ``name-3``...
    (``@with_budget``) instead of refusing it.
    """
    if number_unnamed and name is None:
        name = f"budget-{sibling_count + 1}"
    if name is None or parent_name is None:
        raise BudgetConfigError(
            "nested budgets need names: give both the outer and the inner budget a name, "
            "e.g. budget(max_usd=10, name='workflow') and budget(max_usd=2, name='research')"
        )
    if depth > MAX_DEPTH:
        raise BudgetConfigError(
            f"budget {name!r} would be nested {depth} levels deep under {parent_path!r}; "
            f"at most {MAX_DEPTH + 1} levels are allowed (root = 0)"
        )
    if name not in siblings:
        return name
    if not number_repeats:
        raise BudgetConfigError(
            f"{parent_path!r} already has a child named {name!r}; reuse that budget object to "
            f"add to it, or give this one another name (e.g. {name + '-2'!r})"
        )
    n = 2
    while f"{name}-{n}" in siblings:
        n += 1
    return f"{name}-{n}"
