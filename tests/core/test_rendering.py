"""summary() (seed 000's box table), summary_data() and tree() (seed 004's format)."""

from __future__ import annotations

import json

import pytest

from shekel import Budget, BudgetExceededError, budget
from shekel._keys import visible

# The border lines of seed 000's summary, verbatim.
TOP = "┌─ Shekel Budget Summary ────────────────────────────────────┐"
RULE = "├────────────────────────────────────────────────────────────┤"
BOTTOM = "└────────────────────────────────────────────────────────────┘"


def squash(text: str) -> list[str]:
    """Lines with runs of spaces collapsed (the seed's own text lost its alignment)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def session_with_history() -> Budget:
    session = budget(max_usd=10.00, name="session")
    with session:
        session.record(model="gpt-4o-mini", input_tokens=1_200, output_tokens=300)
    with session:
        session.record(model="gpt-4o-mini", input_tokens=1_500, output_tokens=450)
        session.record(model="gpt-4o-mini", input_tokens=2_000, output_tokens=500)
    with session:
        session.record(model="gpt-4o", input_tokens=1_000, output_tokens=250)
    return session


def test_summary_shows_all_calls_across_all_contexts() -> None:
    text = session_with_history().summary()
    lines = text.splitlines()
    assert lines[0] == TOP
    assert lines[-1] == BOTTOM
    assert lines.count(RULE) == 2
    # gpt-4o-mini $0.15/$0.60 and gpt-4o $2.50/$10.00 per million tokens
    squashed = squash(text)
    assert squashed[1] == "│ Total: $0.006455 Limit: $10.00 Calls: 4 Status: OK │"
    header = squashed.index("│ # Model Input Output Cost │")
    assert squashed[header + 2 : header + 6] == [
        "│ 1 gpt-4o-mini 1,200 300 $0.00036 │",
        "│ 2 gpt-4o-mini 1,500 450 $0.000495 │",
        "│ 3 gpt-4o-mini 2,000 500 $0.0006 │",
        "│ 4 gpt-4o 1,000 250 $0.005 │",
    ]
    assert squashed[header + 6] == RULE
    assert squashed[header + 7 : header + 9] == [
        "│ gpt-4o-mini: 3 calls $0.001455 │",
        "│ gpt-4o: 1 call $0.005 │",
    ]


def test_summary_box_lines_all_have_the_same_width() -> None:
    text = session_with_history().summary()
    assert {len(line) for line in text.splitlines()} == {len(TOP)}
    rows = [line for line in text.splitlines() if line[0] not in "┌├└"]
    assert all(line.startswith("│ ") and line.endswith("│") for line in rows)  # closed right


def test_summary_data_is_json_serialisable_with_the_documented_keys() -> None:
    data = session_with_history().summary_data()
    json.dumps(data)
    assert data["name"] == "session"
    assert data["full_name"] == "session"
    assert data["total_spent"] == 0.006455
    assert data["limit"] == 10.0
    assert data["remaining"] == 9.993545
    assert data["status"] == "OK"
    assert data["total_calls"] == 4
    assert data["tokens_used"] == 7_200
    assert data["incomplete"] is False
    assert data["model_switched"] is False
    first = data["calls"][0]
    assert {"model", "input_tokens", "output_tokens", "cost", "budget"} <= set(first)
    assert first == first | {
        "model": "gpt-4o-mini",
        "input_tokens": 1_200,
        "output_tokens": 300,
        "cost": 0.00036,
        "budget": "session",
    }
    assert [c["model"] for c in data["calls"]] == ["gpt-4o-mini"] * 3 + ["gpt-4o"]
    assert data["by_model"]["gpt-4o-mini"] == {
        "calls": 3,
        "cost": 0.001455,
        "input_tokens": 4_700,
        "output_tokens": 1_250,
        "unpriced_calls": 0,
    }


def test_summary_data_of_a_parent_includes_its_childrens_calls_with_their_path() -> None:
    with budget(max_usd=10, name="workflow") as w:
        with budget(max_usd=2, name="research") as r:
            r.record(usd=0.5, model="gpt-4o-mini", input_tokens=10, output_tokens=5)
        w.record(usd=0.25, model="gpt-4o", input_tokens=20, output_tokens=7)
    data = w.summary_data()
    assert [(c["budget"], c["model"], c["cost"]) for c in data["calls"]] == [
        ("workflow.research", "gpt-4o-mini", 0.5),
        ("workflow", "gpt-4o", 0.25),
    ]
    assert data["total_calls"] == 2
    assert data["total_spent"] == 0.75
    assert r.summary_data()["calls"][0]["budget"] == "workflow.research"
    assert len(r.summary_data()["calls"]) == 1


def test_summary_status() -> None:
    ok = budget(max_usd=1, name="ok")
    ok.record(usd=0.1)
    assert ok.summary_data()["status"] == "OK"

    warned = budget(max_usd=1, name="w", warn_at=0.5, on_warn=lambda s, lim: None)
    warned.record(usd=0.6)
    assert warned.summary_data()["status"] == "WARNING"

    switched = budget(max_usd=1, name="f", fallback={"at_pct": 0.5, "model": "cheap"})
    switched.record(usd=0.6)
    assert switched.summary_data()["status"] == "FALLBACK"
    assert switched.summary_data()["fallback_model"] == "cheap"
    assert switched.summary_data()["switched_at_usd"] == 0.6
    assert "Fallback: cheap" in switched.summary()

    exhausted = budget(max_usd=1, name="e")
    exhausted.record(usd=1.0)
    assert exhausted.summary_data()["status"] == "EXHAUSTED"

    exceeded = budget(max_usd=1, name="x")
    with pytest.raises(BudgetExceededError):
        exceeded.record(usd=1.5)
    assert exceeded.summary_data()["status"] == "EXCEEDED"
    assert "Status: EXCEEDED" in exceeded.summary()


def test_history_is_bounded_but_totals_stay_exact() -> None:
    b = budget(name="b", history_size=5)
    for i in range(12):
        b.record(usd=0.01, model="m", input_tokens=i, output_tokens=1)
    data = b.summary_data()
    assert data["total_calls"] == 12
    assert [c["input_tokens"] for c in data["calls"]] == list(range(7, 12))
    assert data["by_model"]["m"]["calls"] == 12
    assert data["by_model"]["m"]["input_tokens"] == sum(range(12))
    assert data["by_model"]["m"]["cost"] == 0.12
    squashed = squash(b.summary())
    assert any("7 earlier calls not kept" in line for line in squashed)
    rows = [line for line in squashed if line.startswith("│ ") and line.endswith("$0.01 │")]
    assert [row.split()[1] for row in rows] == ["8", "9", "10", "11", "12"]
    assert "│ m: 12 calls $0.12 │" in squashed


def test_summary_without_a_limit_or_calls() -> None:
    text = budget().summary()
    assert squash(text)[1] == "│ Total: $0.00 Limit: none Calls: 0 Status: OK │"
    assert text.splitlines()[0] == TOP
    assert text.splitlines()[-1] == BOTTOM


def test_tree_format() -> None:
    with budget(max_usd=50.00, name="pipeline") as p:
        with budget(max_usd=10.00, name="ingestion") as i:
            i.record(usd=8.50)
        with budget(max_usd=20.00, name="processing"):
            with budget(max_usd=8.00, name="validation") as v:
                v.record(usd=6.00)
            with budget(max_usd=12.00, name="transform") as t:
                t.record(usd=11.00)
        p.record(usd=2.00)
    assert p.tree() == "\n".join(
        [
            "pipeline: $27.50 / $50.00 (direct: $2.00)",
            "  ingestion: $8.50 / $10.00 (direct: $8.50)",
            "  processing: $17.00 / $20.00 (direct: $0.00)",
            "    validation: $6.00 / $8.00 (direct: $6.00)",
            "    transform: $11.00 / $12.00 (direct: $11.00)",
        ]
    )


def test_tree_of_a_subtree_and_of_track_only_budgets() -> None:
    with budget(name="root") as root:
        with budget(name="free") as free:
            free.record(usd=1.0)
        with budget(max_usd=3, name="capped") as capped:
            capped.record(usd=0.5)
    assert root.tree().splitlines() == [
        "root: $1.50 / no limit (direct: $0.00)",
        "  free: $1.00 / no limit (direct: $1.00)",
        "  capped: $0.50 / $3.00 (direct: $0.50)",
    ]
    assert capped.tree() == "capped: $0.50 / $3.00 (direct: $0.50)"


def test_tree_marks_active_budgets() -> None:
    with budget(max_usd=5, name="outer") as outer, budget(max_usd=1, name="inner"):
        assert outer.tree().splitlines() == [
            "outer: $0.00 / $5.00 (direct: $0.00) [active]",
            "  inner: $0.00 / $1.00 (direct: $0.00) [active]",
        ]
    assert "[active]" not in outer.tree()


def test_tree_shows_the_auto_capped_limit() -> None:
    with budget(max_usd=10, name="parent") as parent:
        parent.record(usd=7.0)
        with budget(max_usd=5, name="child") as child:
            child.record(usd=1.0)
    assert parent.tree().splitlines()[1] == "  child: $1.00 / $3.00 (direct: $1.00)"


def test_repr_shows_every_digit_that_matters() -> None:
    b = budget(max_usd=2, name="r")
    b.record(usd=0.5)
    assert repr(b) == "<Budget 'r' $0.50 / $2.00>"
    assert repr(budget()) == "<Budget 'budget' $0.00 / no limit>"
    tiny = budget(max_usd=0.0001, name="tiny")
    tiny.record(usd=0.000015)
    assert repr(tiny) == "<Budget 'tiny' $0.000015 / $0.0001>"  # not "$0.0000 / $0.0001"


def test_tree_shows_the_caps_on_other_axes() -> None:
    from shekel import budget

    with budget(max_usd=5, name="crew") as crew:
        with budget(max_llm_calls=4, max_tool_calls=2, name="researcher") as r:
            r.record(usd=0.5)
            r.tool_call("search").commit()
    assert crew.tree().splitlines() == [
        "crew: $0.50 / $5.00 (direct: $0.00)",
        "  researcher: $0.50 / no limit, 1 / 4 LLM calls, 1 / 2 tool calls (direct: $0.50)",
    ]


def test_tree_shows_every_digit_that_matters() -> None:
    """Not rounded to cents: $0.046 of $0.05 is not exhausted, $0.00048 is not nothing."""
    from shekel import budget

    with budget(max_usd=5, name="rag") as rag:
        with budget(name="embed") as embed:
            embed.record(usd=0.00048)
        with budget(max_usd=0.05, name="summarize") as summarize:
            summarize.record(usd=0.046)
    assert rag.tree().splitlines() == [
        "rag: $0.04648 / $5.00 (direct: $0.00)",
        "  embed: $0.00048 / no limit (direct: $0.00048)",
        "  summarize: $0.046 / $0.05 (direct: $0.046)",
    ]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("user_1", "user_1"),
        ("café 日本 a\\nb", "café 日本 a\\nb"),  # printable text and backslashes stay as they are
        ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
        ("x\x1b[2Jy\x00\x7f\x85", "x\\x1b[2Jy\\x00\\x7f\\x85"),  # C0, DEL, C1
        ("a\u202eb\u200bc\ufeff", "a\\u202eb\\u200bc\\ufeff"),  # bidi override, zero width
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
        ("tag\U000e0041 \udcff", "tag\\U000e0041 \\udcff"),  # a tag character, a surrogate
        ("no\u00a0break", "no\u00a0break"),  # a no-break space is shown as one
    ],
)
def test_visible_escapes_what_a_terminal_would_not_show(name: str, shown: str) -> None:
    assert visible(name) == shown


def test_a_summary_over_nested_budgets_names_the_budget_of_each_call() -> None:
    with budget(max_usd=1, name="run") as run:
        with budget(name="research") as research:
            research.record(model="gpt-4o-mini", input_tokens=1_000, output_tokens=10)
        run.record(model="gpt-4o-mini", input_tokens=500, output_tokens=10)
    rows = squash(run.summary())
    header = rows.index("│ # Budget Model Input Output Cost │")
    assert rows[header + 2 : header + 4] == [
        "│ 1 run.research gpt-4o-mini 1,000 10 $0.000156 │",
        "│ 2 run gpt-4o-mini 500 10 $0.000081 │",
    ]


def test_a_summary_of_one_budget_has_no_budget_column() -> None:
    with budget(max_usd=1, name="solo") as solo:
        solo.record(model="gpt-4o-mini", input_tokens=1_000, output_tokens=10)
    assert "│ # Model Input Output Cost │" in squash(solo.summary())
