"""Bad input raises at construction, with a message that names the parameter."""

from __future__ import annotations

import pytest

from shekel import BudgetConfigError, BudgetExceededError, ShekelError, budget, with_budget

NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize("param", ["max_usd", "max_tokens", "max_llm_calls", "max_tool_calls"])
@pytest.mark.parametrize("value", [-1, 0, NAN, INF, -INF, -0.5, "10", True])
def test_bad_limits(param: str, value: object) -> None:
    with pytest.raises(BudgetConfigError, match=param) as info:
        budget(**{param: value})  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ShekelError)
    assert repr(value) in str(info.value) or str(value) in str(info.value)


@pytest.mark.parametrize("param", ["max_tokens", "max_llm_calls", "max_tool_calls"])
def test_count_limits_must_be_whole(param: str) -> None:
    with pytest.raises(BudgetConfigError, match=param):
        budget(**{param: 2.5})  # type: ignore[arg-type]


def test_good_limits_are_accepted() -> None:
    b = budget(max_usd=0.01, max_tokens=1, max_llm_calls=1, max_tool_calls=1)
    assert b.limit == 0.01
    assert budget(max_usd=5).limit == 5.0
    assert budget(max_usd=None).limit is None


@pytest.mark.parametrize("value", [0, -0.1, 1.01, 2, NAN, INF, "0.8", True])
def test_warn_at_outside_zero_one(value: object) -> None:
    with pytest.raises(BudgetConfigError, match="warn_at"):
        budget(max_usd=1, warn_at=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1, 1.0, 0.5, 1e-9])
def test_warn_at_inside_zero_one(value: float) -> None:
    assert budget(max_usd=1, warn_at=value).config.warn_at == float(value)


@pytest.mark.parametrize(
    "fallback",
    [
        "gpt-4o-mini",
        ["gpt-4o-mini", 0.8],
        {"model": "gpt-4o-mini"},
        {"at_pct": 0.8},
        {"at_pct": 0.8, "model": "gpt-4o-mini", "extra": 1},
        {"at_pct": 0, "model": "gpt-4o-mini"},
        {"at_pct": 1.5, "model": "gpt-4o-mini"},
        {"at_pct": NAN, "model": "gpt-4o-mini"},
        {"at_pct": 0.8, "model": ""},
        {"at_pct": 0.8, "model": 42},
        {"at_pct": "0.8", "model": "gpt-4o-mini"},
    ],
)
def test_malformed_fallback(fallback: object) -> None:
    with pytest.raises(BudgetConfigError, match="fallback"):
        budget(max_usd=5, fallback=fallback)  # type: ignore[arg-type]


def test_fallback_needs_a_usd_limit() -> None:
    with pytest.raises(BudgetConfigError, match="max_usd"):
        budget(fallback={"at_pct": 0.8, "model": "gpt-4o-mini"})


def test_well_formed_fallback() -> None:
    b = budget(max_usd=5, fallback={"at_pct": 0.8, "model": "gpt-4o-mini"})
    assert b.config.fallback is not None
    assert b.config.fallback.model == "gpt-4o-mini"
    assert b.config.fallback.at_pct == 0.8


@pytest.mark.parametrize("name", ["", "   ", "a.b", ".", "pipeline.stage", 7])
def test_bad_names(name: object) -> None:
    with pytest.raises(BudgetConfigError, match="name"):
        budget(max_usd=1, name=name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("max_usdd", "max_usd"),
        ("warnat", "warn_at"),
        ("on_warning", "on_warn"),
        ("fallbacks", "fallback"),
        ("max_token", "max_tokens"),
        ("price", "prices"),
        ("nmae", "name"),
    ],
)
def test_unknown_keyword_suggests_the_right_one(typo: str, suggestion: str) -> None:
    with pytest.raises(BudgetConfigError, match=f"did you mean '{suggestion}'") as info:
        budget(max_usd=1, **{typo: 1})
    assert typo in str(info.value)
    assert isinstance(info.value, TypeError)


def test_unknown_keyword_without_a_close_match_lists_the_accepted_ones() -> None:
    with pytest.raises(BudgetConfigError, match="accepted") as info:
        budget(max_usd=1, zzzzzz=1)
    assert "max_usd" in str(info.value)
    assert "zzzzzz" in str(info.value)


def test_callbacks_must_be_callable_and_need_their_setting() -> None:
    with pytest.raises(BudgetConfigError, match="on_warn"):
        budget(max_usd=1, warn_at=0.5, on_warn="print")
    with pytest.raises(BudgetConfigError, match="on_warn"):
        budget(max_usd=1, on_warn=print)
    with pytest.raises(BudgetConfigError, match="on_fallback"):
        budget(max_usd=1, fallback={"at_pct": 0.5, "model": "m"}, on_fallback=3)
    with pytest.raises(BudgetConfigError, match="on_fallback"):
        budget(max_usd=1, on_fallback=print)


@pytest.mark.parametrize(
    "prices",
    [
        "cheap",
        {"m": 1.0},
        {"m": {"input": 1.0}},
        {"m": {"output": 1.0}},
        {"m": {"input": -1.0, "output": 1.0}},
        {"m": {"input": NAN, "output": 1.0}},
        {"m": {"input": 1.0, "output": 1.0, "cache": 0.1}},
        {"": {"input": 1.0, "output": 1.0}},
    ],
)
def test_malformed_prices(prices: object) -> None:
    with pytest.raises(BudgetConfigError, match="prices"):
        budget(prices=prices)  # type: ignore[arg-type]


@pytest.mark.parametrize("tool_prices", ["x", {"search": -1}, {"search": NAN}, {"": 0.1}])
def test_malformed_tool_prices(tool_prices: object) -> None:
    with pytest.raises(BudgetConfigError, match="tool_prices"):
        budget(tool_prices=tool_prices)  # type: ignore[arg-type]


def test_other_options() -> None:
    with pytest.raises(BudgetConfigError, match="unknown_models"):
        budget(unknown_models="ignore")
    with pytest.raises(BudgetConfigError, match="strict"):
        budget(strict="yes")  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match="history_size"):
        budget(history_size=0)
    with pytest.raises(BudgetConfigError, match="ledger"):
        budget(ledger=object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"usd": -1.0}, "usd"),
        ({"usd": NAN}, "usd"),
        ({"usd": INF}, "usd"),
        ({"tokens": -1}, "tokens"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 1.5}, "output_tokens"),
        ({"cached_input_tokens": -3}, "cached_input_tokens"),
        ({"llm_calls": -1}, "llm_calls"),
    ],
)
def test_bad_record_arguments_record_nothing(kwargs: dict[str, object], param: str) -> None:
    b = budget(max_usd=1, name="b")
    with pytest.raises(BudgetConfigError, match=param):
        b.record(**kwargs)  # type: ignore[arg-type]
    assert b.spent == 0.0
    assert b.snapshot().llm_calls_used == 0
    assert b.summary_data()["total_calls"] == 0


def test_with_budget_validates_when_decorating() -> None:
    with pytest.raises(BudgetConfigError, match="did you mean 'max_usd'"):
        with_budget(max_usdd=1.0)
    with pytest.raises(BudgetConfigError, match="max_usd"):
        with_budget(max_usd=-1.0)


# -- bad arguments never corrupt state ------------------------------------------------------


@pytest.mark.parametrize(
    "commit",
    [
        {"usd": NAN},
        {"usd": -1},
        {"tokens": -5000},
        {"tokens": 1.5},
        {"model": "gpt-4o", "input_tokens": -1},
        {"output_tokens": "3"},
        {"model": 5},
        {"model": " ", "input_tokens": 1},
    ],
    ids=lambda kwargs: ",".join(f"{k}={v!r}" for k, v in kwargs.items()),
)
def test_a_bad_commit_changes_nothing_and_keeps_the_hold_releasable(
    commit: dict[str, object],
) -> None:
    b = budget(max_usd=1.0, max_tokens=1000)
    with b:
        with pytest.raises(BudgetConfigError), b.reserve(usd=0.6, tokens=10) as r:
            r.commit(**commit)  # type: ignore[arg-type]
        snap = b.snapshot()
        assert (snap.usd_reserved, snap.tokens_reserved) == (0, 0)  # released on exit
        assert (snap.usd_used, snap.tokens_used) == (0, 0)
        with b.reserve(usd=0.9) as again:  # all the room is there again
            again.commit(usd=0.1, tokens=5)
    assert (b.spent, b.snapshot().tokens_used) == (pytest.approx(0.1), 5)


def test_a_bad_commit_can_be_corrected_before_the_block_ends() -> None:
    with budget(max_usd=1.0) as b, b.reserve(usd=0.5) as r:
        with pytest.raises(BudgetConfigError):
            r.commit(usd=NAN)
        r.commit(usd=0.25)
    assert b.spent == 0.25
    assert b.snapshot().usd_reserved == 0


def test_a_bad_pool_commit_changes_nothing() -> None:
    from shekel import BudgetPool

    pool = BudgetPool(usd_cap=1.0, token_cap=100)
    with pytest.raises(BudgetConfigError), pool.reserve(usd=0.6, tokens=10) as r:
        r.commit(usd=-1)
    snap = pool.snapshot()
    assert (snap.usd_reserved, snap.tokens_reserved, snap.usd_used) == (0, 0, 0)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda b: b.record(model=5, input_tokens=1), "model"),
        (lambda b: b.record(model="", input_tokens=1_000_000, output_tokens=1), "model"),
        (lambda b: b.record(model="   ", input_tokens=5), "model"),
        (lambda b: b.record(model="\t\n", usd=0.01), "model"),
        (lambda b: b.record(provider=5, model="gpt-4o", input_tokens=1), "provider"),
        (lambda b: b.record(tokens=10**16), "tokens"),
        (lambda b: b.tool_call(("a", 1)).commit(), "tool_name"),
        (lambda b: b.tool_call(5).commit(), "tool_name"),
        (lambda b: b.tool_call("").commit(), "tool_name"),
        (lambda b: b.tool_call("  ").commit(), "tool_name"),
        (lambda b: b.reserve(tokens=-1), "tokens"),
        (lambda b: b.record(usd=10**30), "usd"),
        (lambda b: b.record(usd=1e300), "usd"),
    ],
    ids=[
        "record-model",
        "record-empty-model",
        "record-blank-model",
        "record-blank-model-usd",
        "record-provider",
        "record-huge-tokens",
        "tool-tuple",
        "tool-int",
        "tool-empty",
        "tool-blank",
        "reserve-negative",
        "record-huge-int",
        "record-huge-float",
    ],
)
def test_bad_arguments_name_their_parameter_and_record_nothing(call: object, param: str) -> None:
    with budget(max_usd=5, max_tool_calls=5) as b:
        with pytest.raises(BudgetConfigError, match=param):
            call(b)  # type: ignore[operator]
        assert b.snapshot().usd_used == 0
        assert b.snapshot().tool_calls_used == 0
        assert b.history().total_calls == 0


@pytest.mark.parametrize("value", [10**30, 1e300, "1e30", 2_000_000_000])
def test_amounts_beyond_the_counting_range_are_refused_whatever_their_type(value: object) -> None:
    with pytest.raises(BudgetConfigError, match="max_usd must be a finite number"):
        budget(max_usd=value)  # type: ignore[arg-type]


def test_history_size_is_bounded() -> None:
    with pytest.raises(BudgetConfigError, match="history_size"):
        budget(history_size=10**30)


def test_a_track_only_budget_never_raises_however_much_it_records() -> None:
    with budget() as b:
        for _ in range(20):
            b.record(usd=1_000_000_000)  # twenty times the largest single amount
    assert b.spent == 20_000_000_000


def test_summary_of_tool_calls_is_json() -> None:
    import json

    with budget(max_tool_calls=5) as b:
        b.tool_call("search", usd=0.01).commit()
    json.dumps(b.summary_data())


# -- every error shekel raises derives from ShekelError ---------------------------------------


def test_the_core_raises_no_builtin_exception() -> None:
    """An AST scan of the core (the fake provider in ``shekel.testing`` is a test kit and may
    raise ValueError for bad scripting): no ``raise ValueError(...)``, ``RuntimeError(...)``
    or other built-in exception; shekel's own all derive from ShekelError."""
    import ast
    import builtins
    from pathlib import Path

    import shekel

    builtin_errors = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    } - {"SystemExit", "KeyboardInterrupt"}
    offenders = []
    for path in Path(shekel.__file__).parent.rglob("*.py"):
        if "testing" in path.parts:
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    func = node.exc.func
                    name = func.id if isinstance(func, ast.Name) else ""
                    protocol = function.name == "__getattr__" and name == "AttributeError"
                    if name in builtin_errors and not protocol:
                        offenders.append(f"{path.name}:{node.lineno} raises {name}")
    assert offenders == []


def test_runtime_failures_are_runtime_errors() -> None:
    from shekel import BudgetStateError, CallbackError, UsageMissingError

    for error in (UsageMissingError, BudgetStateError, CallbackError, BudgetExceededError):
        assert issubclass(error, RuntimeError)
        assert issubclass(error, ShekelError)
