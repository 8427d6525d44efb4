"""Validation of ``budget()`` arguments into an immutable configuration.

Every check raises :class:`BudgetConfigError` naming the parameter and what it accepts, so a
mistake is caught where the budget is written, not when the first request goes out.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, ParamSpec, TypedDict, TypeVar

from ._errors import BudgetConfigError
from ._history import DEFAULT_HISTORY_SIZE
from ._keys import has_control_characters
from ._ledger import UNLIMITED, Caps, Ledger
from ._money import is_finite_number, nanos_to_usd, usd_to_nanos
from ._pricing import Rate, compile_price_table
from ._windows import Window, parse_window, parse_zone

MAX_DEPTH: Final = 4
"""Deepest allowed nesting level; the root is level 0, so five levels in all (the levels
framework integrations add for their steps are not counted)."""
MAX_FRAMEWORK_DEPTH: Final = 15
"""The deepest any budget may be (root = 0), levels made by framework integrations included."""

MAX_HISTORY_SIZE: Final = 10_000_000

WarnCallback = Callable[[float, float], object]
FallbackCallback = Callable[[float, float, str], object]
UnknownModels = Literal["warn", "error"]

PARAMETERS: Final = (
    "max_usd",
    "max_tokens",
    "max_llm_calls",
    "max_tool_calls",
    "name",
    "warn_at",
    "on_warn",
    "fallback",
    "on_fallback",
    "prices",
    "tool_prices",
    "strict",
    "unknown_models",
    "history_size",
    "window",
    "windows",
    "timezone",
    "loop_guard",
    "store",
    "ledger",
)


class UnknownParameterError(BudgetConfigError, TypeError):
    """``budget()`` was given a keyword it does not know."""


class ChildOptions(TypedDict, total=False):
    """The options ``Budget.child()`` takes: ``budget()``'s, without ``name`` and ``store``."""

    max_usd: float | None
    max_tokens: int | None
    max_llm_calls: int | None
    max_tool_calls: int | None
    warn_at: float | None
    on_warn: WarnCallback | None
    fallback: Mapping[str, Any] | None
    on_fallback: FallbackCallback | None
    prices: Mapping[str, Any] | None
    tool_prices: Mapping[str, float] | None
    strict: bool
    unknown_models: UnknownModels
    history_size: int
    window: str | None
    windows: Mapping[str, float | Mapping[str, float | int | None]] | None
    timezone: str | None
    loop_guard: int | None


@dataclass(frozen=True, slots=True)
class Fallback:
    """Switch requests to ``model`` once spend reaches ``at_pct`` of the USD limit."""

    at_pct: float
    model: str


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    caps: Caps
    name: str | None
    warn_at: float | None
    on_warn: WarnCallback | None
    fallback: Fallback | None
    on_fallback: FallbackCallback | None
    prices: dict[str, Rate]
    tool_prices: dict[str, int]
    strict: bool
    unknown_models: UnknownModels
    history_size: int
    windows: tuple[Window, ...] = ()
    """Shortest first; the last (longest) is the one ``spent``, ``limit``... report."""
    loop_guard: int | None = None
    """The repeat of one call that is stopped (``loop_guard=3``: the third identical call)."""

    @property
    def max_usd(self) -> float | None:
        """The USD cap as given (``None``: none); ``Budget.limit`` is the one in force, lowered
        to what the parent has left."""
        return None if self.caps.usd == UNLIMITED else nanos_to_usd(self.caps.usd)


def reject_unknown(unexpected: Mapping[str, object], known: tuple[str, ...] = PARAMETERS) -> None:
    if unexpected:
        raise unknown_parameter(unexpected, known)


def unknown_parameter(
    unexpected: Mapping[str, object], known: tuple[str, ...] = PARAMETERS
) -> UnknownParameterError:
    bad = sorted(unexpected)[0]
    close = difflib.get_close_matches(bad, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; accepted: {', '.join(known)}"
    return UnknownParameterError(f"budget() got an unknown parameter {bad!r}{hint}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def explain_unknown(init: Callable[_P, _R]) -> Callable[_P, _R]:
    """Give a misspelt keyword of ``budget()`` a "did you mean" (``UnknownParameterError``)
    instead of Python's bare ``TypeError``. The signature stays exact, so type checkers catch
    the misspelling before it runs."""

    @functools.wraps(init)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return init(*args, **kwargs)
        except TypeError:
            unknown = {k: v for k, v in kwargs.items() if k not in PARAMETERS}
            if not unknown:
                raise
        raise unknown_parameter(unknown) from None

    return checked


def _usd_limit(value: object) -> int:
    if value is None:
        return UNLIMITED
    if not is_finite_number(value):
        raise BudgetConfigError(
            f"max_usd must be a finite number of US dollars greater than 0 or None, got {value!r}"
        )
    nanos = usd_to_nanos(value, "max_usd")  # type: ignore[arg-type]
    if nanos <= 0:
        raise BudgetConfigError(
            f"max_usd must be greater than 0 (use None for a track-only budget), got {value!r}"
        )
    return nanos


def _count_limit(param: str, value: object) -> int:
    if value is None:
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and value > 0:
            return int(value)
        raise BudgetConfigError(
            f"{param} must be a whole number greater than 0 or None, got {value!r}"
        )
    if value <= 0:
        raise BudgetConfigError(
            f"{param} must be greater than 0 (or None for no limit), got {value!r}"
        )
    return value


def _name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BudgetConfigError(f"name must be a non-empty string, got {value!r}")
    if "." in value:
        raise BudgetConfigError(
            f"name must not contain '.', which separates levels in full_name; got {value!r}"
        )
    if has_control_characters(value):
        raise BudgetConfigError(
            "name must not contain control characters (newlines, tabs, terminal escapes), "
            f"which would garble trees and listings; got {value!r}"
        )
    return value


def _fraction(param: str, value: object) -> float:
    if not is_finite_number(value) or not 0 < float(value) <= 1:  # type: ignore[arg-type]
        raise BudgetConfigError(f"{param} must be a fraction in (0, 1], such as 0.8; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _fallback(value: object, caps: Caps) -> Fallback | None:
    if value is None:
        return None
    example = "fallback={'at_pct': 0.8, 'model': 'gpt-4o-mini'}"
    if not isinstance(value, Mapping):
        raise BudgetConfigError(f"fallback must be a dict like {example}, got {value!r}")
    unknown = set(value) - {"at_pct", "model"}
    if unknown or "model" not in value or "at_pct" not in value:
        raise BudgetConfigError(
            f"fallback must have exactly the keys 'at_pct' and 'model', like {example}; "
            f"got {dict(value)!r}"
        )
    model = value["model"]
    if not isinstance(model, str) or not model.strip():
        raise BudgetConfigError(f"fallback['model'] must be a model name, got {model!r}")
    if caps.usd == UNLIMITED:
        raise BudgetConfigError("fallback needs max_usd: at_pct is a fraction of the USD limit")
    return Fallback(_fraction("fallback['at_pct']", value["at_pct"]), model)


def _tool_prices(value: object) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BudgetConfigError(
            f"tool_prices must be a dict of tool name -> USD per call, got {type(value).__name__}"
        )
    table: dict[str, int] = {}
    for tool, price in value.items():
        if not isinstance(tool, str) or not tool:
            raise BudgetConfigError(f"tool_prices keys must be tool names, got {tool!r}")
        if not is_finite_number(price) or price < 0:
            raise BudgetConfigError(
                f"tool_prices[{tool!r}] must be a finite number of USD >= 0, got {price!r}"
            )
        table[tool] = usd_to_nanos(price, f"tool_prices[{tool!r}]")
    return table


def build_config(
    *,
    max_usd: object,
    max_tokens: object,
    max_llm_calls: object,
    max_tool_calls: object,
    name: object,
    warn_at: object,
    on_warn: object,
    fallback: object,
    on_fallback: object,
    prices: object,
    tool_prices: object,
    strict: object,
    unknown_models: object,
    history_size: object,
    window: object = None,
    windows: object = None,
    timezone: object = None,
    loop_guard: object = None,
) -> BudgetConfig:
    caps = Caps(
        _usd_limit(max_usd),
        _count_limit("max_tokens", max_tokens),
        _count_limit("max_llm_calls", max_llm_calls),
        _count_limit("max_tool_calls", max_tool_calls),
    )
    periods = _windows(caps, window, windows, timezone)
    if periods and windows is not None:
        caps = periods[-1].caps  # the longest window's limits are the ones the budget shows
    warn = None if warn_at is None else _fraction("warn_at", warn_at)
    if on_warn is not None and not callable(on_warn):
        raise BudgetConfigError(
            f"on_warn must be a function (spent, limit) -> None, got {on_warn!r}"
        )
    if on_warn is not None and warn is None:
        raise BudgetConfigError("on_warn needs warn_at, the fraction of the limit that triggers it")
    fb = _fallback(fallback, caps)
    if on_fallback is not None and not callable(on_fallback):
        raise BudgetConfigError(
            f"on_fallback must be a function (spent, limit, model) -> None, got {on_fallback!r}"
        )
    if on_fallback is not None and fb is None:
        raise BudgetConfigError("on_fallback needs fallback={'at_pct': ..., 'model': ...}")
    if not isinstance(strict, bool):
        raise BudgetConfigError(f"strict must be True or False, got {strict!r}")
    if unknown_models not in ("warn", "error"):
        raise BudgetConfigError(f"unknown_models must be 'warn' or 'error', got {unknown_models!r}")
    size = _count_limit("history_size", history_size)
    if size == UNLIMITED:
        size = DEFAULT_HISTORY_SIZE
    elif size > MAX_HISTORY_SIZE:
        raise BudgetConfigError(
            f"history_size keeps that many calls in memory; use at most {MAX_HISTORY_SIZE:,} "
            f"(per-model totals are exact whatever the size), got {history_size!r}"
        )
    return BudgetConfig(
        caps=caps,
        name=_name(name),
        warn_at=warn,
        on_warn=on_warn,
        fallback=fb,
        on_fallback=on_fallback,
        prices=compile_price_table(prices),  # type: ignore[arg-type]
        tool_prices=_tool_prices(tool_prices),
        strict=strict,
        unknown_models=unknown_models,
        history_size=size,
        windows=periods,
        loop_guard=_loop_guard(loop_guard),
    )


def _loop_guard(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise BudgetConfigError(
            "loop_guard is how many identical calls stop a loop (the last one is refused), a "
            f"whole number of at least 2, such as 3; got {value!r}"
        )
    return value


def _windows(caps: Caps, window: object, windows: object, zone_name: object) -> tuple[Window, ...]:
    """The budget's windows, shortest first."""
    if window is None and windows is None:
        if zone_name is not None:
            raise BudgetConfigError("timezone needs window= or windows=: it says where days start")
        return ()
    zone = parse_zone(zone_name)
    if window is not None:
        if windows is not None:
            raise BudgetConfigError(
                "give window= (the limits above apply per period) or windows= (limits per "
                "window), not both"
            )
        return (parse_window(window, caps, zone),)
    if caps != Caps():
        raise BudgetConfigError(
            "with windows=, put every limit in it, e.g. windows={'1m': 1.0, '1d': "
            "{'max_usd': 20, 'max_llm_calls': 500}}; max_usd=... and the like apply with window="
        )
    if not isinstance(windows, Mapping) or not windows:
        raise BudgetConfigError(
            "windows must be a dict of window -> USD limit or limits, e.g. "
            f"{{'1m': 1.0, '1d': {{'max_usd': 20}}}}, got {windows!r}"
        )
    parsed = []
    for spec, limits in windows.items():
        param = f"windows[{spec!r}]"
        if isinstance(limits, Mapping):
            unknown = set(limits) - set(_CAP_PARAMETERS)
            if unknown:
                raise BudgetConfigError(
                    f"{param} takes {', '.join(_CAP_PARAMETERS)}; got {sorted(unknown)}"
                )
            window_caps = Caps(*(limit_value(p, limits.get(p)) for p in _CAP_PARAMETERS))
        else:
            window_caps = Caps(_usd_limit(limits))
        parsed.append(parse_window(spec, window_caps, zone, param))
    return tuple(sorted(parsed, key=lambda w: w.length))


_DEFAULTS: Final[dict[str, object]] = {
    "max_usd": None,
    "max_tokens": None,
    "max_llm_calls": None,
    "max_tool_calls": None,
    "name": None,
    "warn_at": None,
    "on_warn": None,
    "fallback": None,
    "on_fallback": None,
    "prices": None,
    "tool_prices": None,
    "strict": False,
    "unknown_models": "warn",
    "history_size": DEFAULT_HISTORY_SIZE,
    "window": None,
    "windows": None,
    "timezone": None,
    "loop_guard": None,
}


def check_ledger(ledger: object) -> Ledger | None:
    if ledger is not None and not isinstance(ledger, Ledger):
        raise BudgetConfigError(f"ledger must be a shekel Ledger, got {type(ledger).__name__}")
    return ledger


def check_arguments(arguments: Mapping[str, object]) -> None:
    """Validate ``budget()`` keyword arguments without creating a budget (``@with_budget``
    checks them where it is written; creating a budget may open an account in a store)."""
    reject_unknown({k: v for k, v in arguments.items() if k not in PARAMETERS})
    check_ledger(arguments.get("ledger"))
    build_config(
        **{**_DEFAULTS, **{k: v for k, v in arguments.items() if k not in ("ledger", "store")}}
    )


MAX_COUNT: Final = 10**15
"""The largest token or call count one record may carry."""
SURELY_A_COUNT: Final = 2**49
"""A power of two below :data:`MAX_COUNT`: when ints ``a | b`` (a bitwise or) is in
``range(SURELY_A_COUNT)``, both are counts in range; one test for several counts (a larger
value takes the full test)."""


def check_counts(**counts: object) -> None:
    """``BudgetConfigError`` naming the first count that is not a whole number in range."""
    for label, value in counts.items():
        if type(value) is not int or not 0 <= value < MAX_COUNT:
            raise BudgetConfigError(
                f"{label} must be a whole number >= 0 (and below {MAX_COUNT:,}), got {value!r}"
            )


def check_text(label: str, value: object, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value or value.isspace():
        wanted = "a non-empty string" if required else "a non-empty string or None"
        blank = " (only whitespace)" if isinstance(value, str) and value else ""
        raise BudgetConfigError(f"{label} must be {wanted}, got {value!r}{blank}")


_CAP_PARAMETERS: Final = ("max_usd", "max_tokens", "max_llm_calls", "max_tool_calls")


def limit_value(param: str, value: object) -> int:
    """One limit, validated as ``budget()`` validates it (``UNLIMITED`` for ``None``)."""
    return _usd_limit(value) if param == "max_usd" else _count_limit(param, value)


def check_same_options(full_name: str, config: BudgetConfig, options: Mapping[str, object]) -> None:
    """Raise ``BudgetConfigError`` unless ``options`` match those budget ``full_name`` was
    created with (``config``): asking for an existing child by name."""
    differ = _differing_options(config, options)
    if differ:
        raise BudgetConfigError(
            f"{full_name!r} already exists with other {', '.join(differ)}; ask for it "
            "with the same options (or none), or change a live budget's limits with "
            "set_limits()"
        )


def _differing_options(config: BudgetConfig, options: Mapping[str, object]) -> list[str]:
    wanted = build_config(**{**_DEFAULTS, **options, "name": config.name})
    differ = []
    for param in options:
        if param in _CAP_PARAMETERS:
            index = _CAP_PARAMETERS.index(param)
            same = wanted.caps[index] == config.caps[index]
        elif param == "prices":
            same = _rates(wanted.prices) == _rates(config.prices)
        else:
            same = getattr(wanted, param) == getattr(config, param)
        if not same:
            differ.append(param)
    return differ


def _rates(table: Mapping[str, Rate]) -> dict[str, tuple[object, ...]]:
    return {
        model: (r.input, r.output, r.cache_read, r.cache_write, r.max_output)
        for model, r in table.items()
    }
