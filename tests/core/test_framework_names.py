"""Framework step names made safe as budget names (budget_name)."""

from __future__ import annotations

import pytest

from shekel import (
    budget,
    budget_name,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Research Analyst", "Research Analyst"),
        ("crew.lead", "crew%2Elead"),
        ("crew_lead", "crew_lead"),
        ("100% sure", "100%25 sure"),
        ("line\nbreak", "line%0Abreak"),
        ("", "%"),
        ("  ", "%20%20"),
        ("日本.語", "日本%2E語"),
    ],
)
def test_budget_name_turns_any_framework_name_into_a_valid_one(text: str, name: str) -> None:
    assert budget_name(text) == name
    budget(name=budget_name(text))  # accepted as a budget name


def test_budget_name_never_makes_two_names_equal() -> None:
    texts = ["a.b", "a%2Eb", "a_b", "a b", "a%b", "a%25b", "", "%", " ", "%20", "\x00", "%00"]
    assert len({budget_name(t) for t in texts}) == len(texts)
