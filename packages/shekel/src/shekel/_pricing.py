"""Model prices: where they come from and how a call's usage becomes nano-dollars.

Lookup order for a model: the budget's own ``prices=`` table, then plugins
(``shekel_model_price``), then the genai-prices table. Each answer is resolved once per
(model, provider) and cached as integer rates, so pricing a call is a few multiplications.
genai-prices is imported on the first lookup, never at ``import shekel``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from ._clock import now as clock_now
from ._errors import BudgetConfigError, UnknownModelError
from ._money import Nanos, is_finite_number
from ._plugins import CALL, CHANGE_LISTENERS, LISTENING, plugin_manager

PICOS_PER_NANO: Final = 1000
_HALF_NANO_IN_PICOS: Final = PICOS_PER_NANO // 2
_PICO_PER_TOKEN_PER_USD_PER_MTOK: Final = Decimal(1_000_000)  # $1/MTok = 1e6 pico-USD per token


@dataclass(slots=True)
class TokenUsage:
    """Token counts of one call, normalised across providers.

    ``input_tokens`` counts every prompt token, including those read from or written to a prompt
    cache; ``cache_read_tokens`` and ``cache_write_tokens`` say how many of them were. Output
    includes reasoning tokens; ``reasoning_tokens`` says how many of them were.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's price in US dollars per million tokens.

    ``cached_input`` is the price of a prompt token read from cache and ``cache_write`` of one
    written to it; each defaults to the ``input`` price. ``max_output_tokens`` is the most
    output the model accepts in one request (strict mode never asks for more); when it is
    ``None``, shekel's table of the major models decides, else a conservative 4,096.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    max_output_tokens: int | None = None

    @classmethod
    def from_value(cls, model: str, value: ModelPrice | Mapping[str, Any]) -> ModelPrice:
        """Accept a ``ModelPrice`` or a mapping with keys input/output/cached_input/cache_write."""
        if isinstance(value, ModelPrice):
            given = {
                "input": value.input,
                "output": value.output,
                "cached_input": value.cached_input,
                "cache_write": value.cache_write,
            }
            if all(v is None or isinstance(v, Decimal) for v in given.values()):
                _max_output(model, value.max_output_tokens)
                return value
            # Built with floats or ints (``ModelPrice(input=0.5, output=1.5)``): check and convert.
            limit = value.max_output_tokens
            value = {k: v for k, v in given.items() if v is not None}
            if limit is not None:
                value["max_output_tokens"] = limit
        if not isinstance(value, Mapping):
            raise BudgetConfigError(
                f"prices[{model!r}] must be a dict like {{'input': 2.5, 'output': 10.0}} "
                f"(USD per 1M tokens), got {type(value).__name__}"
            )
        allowed = {"input", "output", "cached_input", "cache_write"}
        unknown = set(value) - allowed - {"max_output_tokens"}
        if unknown:
            raise BudgetConfigError(
                f"prices[{model!r}] has unknown key(s) {sorted(unknown)}; "
                f"allowed: {sorted(allowed)}"
            )
        missing = {"input", "output"} - set(value)
        if missing:
            raise BudgetConfigError(
                f"prices[{model!r}] needs {sorted(missing)} (USD per 1M tokens)"
            )
        parsed: dict[str, Decimal | None] = {}
        for key in allowed:
            raw = value.get(key)
            if raw is None:
                parsed[key] = None
                continue
            if not is_finite_number(raw) or raw < 0:
                raise BudgetConfigError(
                    f"prices[{model!r}][{key!r}] must be a finite number >= 0 "
                    f"(USD per 1M tokens), got {raw!r}"
                )
            parsed[key] = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
        inp, out = parsed["input"], parsed["output"]
        assert inp is not None
        assert out is not None
        limit = _max_output(model, value.get("max_output_tokens"))
        return cls(inp, out, parsed["cached_input"], parsed["cache_write"], limit)


def _max_output(model: str, value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value <= 0:
        raise BudgetConfigError(
            f"prices[{model!r}]['max_output_tokens'] must be a whole number > 0 (the most "
            f"output tokens one request may ask for), got {value!r}"
        )
    return value


class Rate:
    """A resolved price, ready for fast integer pricing (pico-dollars per token)."""

    __slots__ = ("cache_read", "cache_write", "input", "max_output", "output", "source", "tiered")

    def __init__(
        self,
        input: int,
        output: int,
        cache_read: int,
        cache_write: int,
        source: str,
        tiered: Callable[[TokenUsage], Decimal] | None = None,
    ) -> None:
        self.input, self.output = input, output
        self.cache_read, self.cache_write = cache_read, cache_write
        self.source = source
        self.tiered = tiered
        self.max_output: int | None = None

    @classmethod
    def from_price(cls, price: ModelPrice, source: str) -> Rate:
        def pico(value: Decimal | None, default: Decimal) -> int:
            use = default if value is None else value
            return int((use * _PICO_PER_TOKEN_PER_USD_PER_MTOK).to_integral_value())

        rate = cls(
            pico(price.input, price.input),
            pico(price.output, price.output),
            pico(price.cached_input, price.input),
            pico(price.cache_write, price.input),
            source,
        )
        rate.max_output = price.max_output_tokens
        return rate

    def cost(self, usage: TokenUsage) -> Nanos:
        """Nano-dollars for ``usage``, rounded half up once per call."""
        if self.tiered is not None:
            return int((self.tiered(usage) * 1_000_000_000).to_integral_value())
        return self.flat_cost(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        )

    def flat_cost(self, input_tokens: int, output_tokens: int, read: int, write: int) -> Nanos:
        """:meth:`cost` of a rate that is not ``tiered``, from the counts (``read`` and
        ``write``: the prompt tokens read from and written to a cache, part of
        ``input_tokens``)."""
        # Runs on every priced call: no max(), cache terms only if any.
        plain_input = input_tokens - read - write
        if plain_input < 0:
            plain_input = 0
        picos = plain_input * self.input + output_tokens * self.output
        if read or write:
            picos += read * self.cache_read + write * self.cache_write
        return (picos + _HALF_NANO_IN_PICOS) // PICOS_PER_NANO

    def as_model_price(self) -> ModelPrice:
        scale = _PICO_PER_TOKEN_PER_USD_PER_MTOK
        return ModelPrice(
            Decimal(self.input) / scale,
            Decimal(self.output) / scale,
            Decimal(self.cache_read) / scale,
            Decimal(self.cache_write) / scale,
            self.max_output,
        )


def compile_price_table(prices: Mapping[str, Any] | None) -> dict[str, Rate]:
    """Validate a budget's ``prices=`` argument and turn it into rates."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise BudgetConfigError(
            "prices must be a dict of model name -> {'input': ..., 'output': ...} "
            f"(USD per 1M tokens), got {type(prices).__name__}"
        )
    table: dict[str, Rate] = {}
    for model, value in prices.items():
        if not isinstance(model, str) or not model:
            raise BudgetConfigError(f"prices keys must be model names, got {model!r}")
        table[model] = Rate.from_price(ModelPrice.from_value(model, value), "budget prices=")
    return table


_MISSING: Final = object()
"""What :data:`_cache` holds for a model nobody prices: not a :class:`Rate`, so that the fast
paths reading the cache (``cached_rate``) tell it from a price by its class alone."""
CACHE_SIZE: Final = 4096
"""Model names remembered (prices, warnings); a server inventing names cannot grow memory."""
_cache: dict[tuple[str, str | None], object] = {}
CHANGE_LISTENERS.append(_cache.clear)  # a plugin registered later may price models differently
cached_rate: Final = _cache.get
"""``cached_rate((model, provider))``: what :func:`lookup_rate` found before, without a call
of its own: a :class:`Rate`, ``None`` when never looked up, or another object when unknown."""


def _remember(table: dict[Any, Any], key: object, value: object) -> None:
    if len(table) >= CACHE_SIZE:
        del table[next(iter(table))]  # the oldest entry
    table[key] = value


def lookup_rate(model: str, provider: str | None) -> Rate | None:
    """The shared (plugin, then genai-prices) rate of ``model``, or ``None`` if nobody knows it."""
    key = (model, provider)
    hit = _cache.get(key)
    if hit is None:
        rate = _resolve(model, provider)
        hit = _MISSING if rate is None else rate
        _remember(_cache, key, hit)
    return hit if isinstance(hit, Rate) else None  # not when it is _MISSING


FREE_PROVIDERS: Final = frozenset({"ollama"})
"""Providers whose models run on the user's own machine: their calls and tokens count, their
USD is zero (unless the budget's ``prices=`` or a plugin prices them)."""


def _resolve(model: str, provider: str | None) -> Rate | None:
    plugin_manager()  # entry-point plugins must be loaded before anything is cached
    if LISTENING.shekel_model_price:
        answer = CALL.shekel_model_price(model=model, provider=provider)
        if answer is not None:
            return Rate.from_price(ModelPrice.from_value(model, answer), "plugin")
    if provider in FREE_PROVIDERS:
        return Rate(0, 0, 0, 0, f"{provider} (a local model: no charge)")
    return _from_genai_prices(model, provider)


def _from_genai_prices(model: str, provider: str | None) -> Rate | None:
    import genai_prices
    from genai_prices import Usage

    probe = Usage(input_tokens=1_000, output_tokens=1_000)
    calc = None
    for provider_id in (provider, None) if provider else (None,):
        try:
            calc = genai_prices.calc_price(probe, model_ref=model, provider_id=provider_id)
            break
        except LookupError:
            continue
    if calc is None:
        return None
    model_price = calc.model_price
    fields = {
        name: getattr(model_price, f"{name}_mtok", None)
        for name in ("input", "output", "cache_read", "cache_write")
    }
    source = f"genai-prices ({calc.provider.id}/{calc.model.id})"
    # Some prices change with the date or the time of day (DeepSeek's off-peak hours, a price
    # announced for next month). A rate is cached for the life of the process, so those are
    # looked up again for each call, at the time of the call.
    model_info = calc.model
    by_time = isinstance(model_info.prices, list)
    flat_fields = all(v is None or isinstance(v, Decimal) for v in fields.values())
    if flat_fields and fields["input"] is None and fields["output"] is None:
        return None

    def priced_now(usage: TokenUsage) -> Decimal:
        price = model_price
        if by_time:
            price = model_info.get_prices(datetime.fromtimestamp(clock_now(), UTC))
        result = price.calc_price(
            Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            )
        )
        return Decimal(result["total_price"])

    base = {
        k: (v.base if v is not None and not isinstance(v, Decimal) else v)
        for k, v in fields.items()
    }
    zero = Decimal(0)
    rate = Rate.from_price(
        ModelPrice(
            base["input"] or zero, base["output"] or zero, base["cache_read"], base["cache_write"]
        ),
        source + (" (the price depends on the time of the call)" if by_time else ""),
    )
    if by_time or not flat_fields:
        rate.tiered = priced_now
    return rate


def known_models(provider: str | None = None) -> list[tuple[str, str, ModelPrice | None]]:
    """(provider, model, price) rows of the bundled genai-prices table, for ``shekel models``."""
    from genai_prices import data

    rows: list[tuple[str, str, ModelPrice | None]] = []
    for prov in data.providers:
        if provider and prov.id != provider:
            continue
        for model in prov.models:
            rows.append((prov.id, model.id, _flat_price(model.prices)))
    return rows


def _flat_price(prices: Any) -> ModelPrice | None:
    price = prices if hasattr(prices, "input_mtok") else None
    if price is None:
        return None

    def base(value: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return getattr(value, "base", None)

    inp, out = base(getattr(price, "input_mtok", None)), base(getattr(price, "output_mtok", None))
    if inp is None and out is None:
        return None
    return ModelPrice(
        inp or Decimal(0),
        out or Decimal(0),
        base(getattr(price, "cache_read_mtok", None)),
        base(getattr(price, "cache_write_mtok", None)),
    )


class UnknownModelWarning(UserWarning):
    """A model has no known price: its tokens are recorded, its cost is not."""


_warned_models: dict[str, None] = {}


def rate_for(tables: list[dict[str, Rate]], model: str, provider: str | None) -> Rate | None:
    """The first of ``tables`` (budget-level overrides, innermost first) that prices ``model``,
    else the shared sources."""
    for table in tables:
        rate = table.get(model)
        if rate is not None:
            return rate
    return lookup_rate(model, provider)


def unknown_model(model: str, provider: str | None, policy: str) -> None:
    """Apply the unknown-model policy: raise in ``'error'`` mode, else warn once per model."""
    if policy == "error":
        raise UnknownModelError(model, provider)
    if model not in _warned_models:
        _remember(_warned_models, model, None)
        warnings.warn(
            f"shekel has no price for model {model!r}: its tokens count against token limits "
            "but its cost is missing from USD totals. Pass budget(prices={...}) or "
            "unknown_models='error' to refuse such calls",
            UnknownModelWarning,
            stacklevel=4,
        )
