"""Settings of ``shekel run``: command-line flags, environment variables and a budget file,
merged (flags > environment > file) and validated into ``budget()`` arguments.

Every problem raises :class:`UsageError` with a message that names where the bad value came
from (``--budget``, ``SHEKEL_BUDGET_USD``, ``max_usd in shekel.toml``) and what is accepted.

Numbers given as text (flags, environment variables) must be written plainly in ASCII:
``0.05``, ``-1``, ``2.5e-3`` for amounts and fractions, ``50000`` for counts. What else
Python's ``float()`` and ``int()`` would take (``1_000``, non-ASCII digits such as ``٣``)
is refused rather than guessed at. TOML numbers are typed by the file's parser and used as
they are.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

DEFAULT_NAME: Final = "shekel-run"
DEFAULT_FALLBACK_AT: Final = 0.8
BUDGET_FILE_ENV: Final = "SHEKEL_BUDGET_FILE"
FILE_TABLE: Final = "budget"


class UsageError(Exception):
    """The command line, environment or budget file asks for something that cannot run."""


class NoLimitError(UsageError):
    """None of the three limits is set anywhere."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One budget setting and the three places it can come from."""

    key: str
    """Its key in the ``[budget]`` table of a budget file."""
    flag: str
    env: str
    parse: Callable[[object, str], Any]


_SPACE: Final = " \t\n\r\f\v"
_PLAIN_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN_DIGITS: Final = re.compile(r"[0-9]+")
_NOT_FINITE: Final = frozenset({"nan", "inf", "infinity"})


def plain_decimal(text: str) -> float | None:
    """``text`` as a float if it is a plain ASCII decimal number (optional sign, digits, at
    most one ``.``, optional exponent; surrounding ASCII blanks allowed), else ``None``."""
    text = text.strip(_SPACE)
    return float(text) if _PLAIN_DECIMAL.fullmatch(text) else None


def plain_whole(text: str) -> int | None:
    """``text`` as an int if it is ASCII digits only (surrounding ASCII blanks allowed), else
    ``None`` (also for more digits than ``int()`` converts, 4300 by default)."""
    text = text.strip(_SPACE)
    if not _PLAIN_DIGITS.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _number(value: object, where: str, what: str) -> float:
    if isinstance(value, str):
        parsed = plain_decimal(value)
        if parsed is None:
            if value.strip(_SPACE).lstrip("+-").lower() in _NOT_FINITE:
                raise UsageError(f"{where} must be a finite number ({what}), got {value!r}")
            raise UsageError(
                f"{where} must be {what}, written plainly (digits 0-9 and at most one '.', "
                f"no '_' or ','), got {value!r}"
            )
        number = parsed
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise UsageError(f"{where} must be {what}, got {value!r}")
    if not math.isfinite(number):
        raise UsageError(f"{where} must be a finite number ({what}), got {value!r}")
    return number


def parse_usd(value: object, where: str) -> float:
    """A USD limit: a finite number greater than 0 (``"$0.05"`` is accepted in text)."""
    if isinstance(value, str):
        value = value.strip(_SPACE).removeprefix("$")
    number = _number(value, where, "a number of US dollars such as 0.05")
    if number <= 0:
        raise UsageError(f"{where} must be greater than 0 US dollars, got {value!r}")
    return number


def parse_count(value: object, where: str) -> int:
    """A token or call limit: a whole number greater than 0."""
    what = "a whole number greater than 0, such as 50000"
    if isinstance(value, str):
        parsed = plain_whole(value)
        if parsed is None:
            raise UsageError(
                f"{where} must be {what}, written with the digits 0-9 only, got {value!r}"
            )
        count = parsed
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    else:
        raise UsageError(f"{where} must be {what}, got {value!r}")
    if count <= 0:
        raise UsageError(f"{where} must be {what}, got {value!r}")
    return count


def parse_fraction(value: object, where: str) -> float:
    """A fraction of the limit in (0, 1]."""
    number = _number(value, where, "a fraction of the limit in (0, 1], such as 0.8")
    if not 0 < number <= 1:
        raise UsageError(
            f"{where} must be a fraction of the limit in (0, 1], such as 0.8; got {value!r}"
        )
    return number


def parse_model(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where} must be a model name such as gpt-4o-mini, got {value!r}")
    return value.strip()


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise UsageError(f"{where} must be true or false (or 1/0, yes/no, on/off), got {value!r}")


def parse_loop_guard(value: object, where: str) -> int:
    """How many identical calls stop a loop: a whole number of at least 2."""
    count = parse_count(value, where)
    if count < 2:
        raise UsageError(
            f"{where} is how many identical calls stop a loop (the last one is refused): at "
            f"least 2, such as 3; got {value!r}"
        )
    return count


SETTINGS: Final = (
    Setting("max_usd", "--budget", "SHEKEL_BUDGET_USD", parse_usd),
    Setting("max_tokens", "--max-tokens", "SHEKEL_MAX_TOKENS", parse_count),
    Setting("max_llm_calls", "--max-llm-calls", "SHEKEL_MAX_LLM_CALLS", parse_count),
    Setting("warn_at", "--warn-at", "SHEKEL_WARN_AT", parse_fraction),
    Setting("fallback_model", "--fallback-model", "SHEKEL_FALLBACK_MODEL", parse_model),
    Setting("fallback_at", "--fallback-at", "SHEKEL_FALLBACK_AT", parse_fraction),
    Setting("strict", "--strict", "SHEKEL_STRICT", parse_bool),
    Setting("loop_guard", "--loop-guard", "SHEKEL_LOOP_GUARD", parse_loop_guard),
)
FILE_KEYS: Final = tuple(s.key for s in SETTINGS)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The merged, validated settings of one ``shekel run``."""

    max_usd: float | None = None
    max_tokens: int | None = None
    max_llm_calls: int | None = None
    warn_at: float | None = None
    fallback_model: str | None = None
    fallback_at: float | None = None
    strict: bool = False
    loop_guard: int | None = None
    name: str = DEFAULT_NAME
    budget_file: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each setting that is not at its default came from (flag, variable or file)."""

    def budget_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``budget()`` (callbacks are the caller's to add)."""
        kwargs: dict[str, Any] = {
            "max_usd": self.max_usd,
            "max_tokens": self.max_tokens,
            "max_llm_calls": self.max_llm_calls,
            "warn_at": self.warn_at,
            "strict": self.strict,
            "loop_guard": self.loop_guard,
            "name": self.name,
        }
        if self.fallback_model is not None:
            at = DEFAULT_FALLBACK_AT if self.fallback_at is None else self.fallback_at
            kwargs["fallback"] = {"at_pct": at, "model": self.fallback_model}
        return kwargs


def load_budget_file(path: str, source: str) -> dict[str, object]:
    """The ``[budget]`` table of a TOML file, with its keys checked (values are checked later).

    ``source`` is where the path came from (``--budget-file`` or the variable), for messages.
    """
    example = f"[{FILE_TABLE}]\nmax_usd = 0.50\nmax_llm_calls = 20"
    fix = f"give {source} the path of a readable TOML file"
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"budget file {path!r} (from {source}) does not exist") from None
    except IsADirectoryError:
        raise UsageError(
            f"budget file {path!r} (from {source}) is a directory, not a TOML file; {fix}"
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot read budget file {path!r} (from {source}): {reason}; {fix}"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"budget file {path!r} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"budget file {path!r} is not UTF-8 text; save it as UTF-8") from None
    for key in document:
        if key != FILE_TABLE:
            raise UsageError(
                f"budget file {path!r} has an unknown top-level key {key!r}; only a "
                f"[{FILE_TABLE}] table is read, like:\n{example}"
            )
    table = document.get(FILE_TABLE)
    if table is None:
        raise UsageError(f"budget file {path!r} has no [{FILE_TABLE}] table; write e.g.\n{example}")
    if not isinstance(table, dict):
        raise UsageError(
            f"{FILE_TABLE} in budget file {path!r} must be a table ([{FILE_TABLE}]), got {table!r}"
        )
    for key in table:
        if key not in FILE_KEYS:
            close = difflib.get_close_matches(key, FILE_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"unknown key {key!r} in the [{FILE_TABLE}] table of {path!r}; {hint}"
                f"accepted keys: {', '.join(FILE_KEYS)}"
            )
    return dict(table)


def resolve(
    flags: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    budget_file: str | None = None,
    name: str = DEFAULT_NAME,
) -> RunSettings:
    """Merge ``flags`` (keyed like the file, ``None`` = not given), ``environ`` and the budget
    file (``budget_file``, else ``$SHEKEL_BUDGET_FILE``) and validate the result.

    Empty environment variables count as unset.
    """
    source = "--budget-file" if budget_file else BUDGET_FILE_ENV
    file_path = budget_file or environ.get(BUDGET_FILE_ENV) or None
    table = load_budget_file(file_path, source) if file_path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        flag_value = flags.get(setting.key)
        env_value = environ.get(setting.env, "")
        if flag_value is not None:
            where = setting.flag if setting.key != "strict" or flag_value else "--no-strict"
            values[setting.key] = setting.parse(flag_value, where)
            sources[setting.key] = where
        elif env_value.strip():
            values[setting.key] = setting.parse(env_value, setting.env)
            sources[setting.key] = setting.env
        elif setting.key in table:
            where = f"{setting.key} in {file_path}"
            raw = table[setting.key]
            if isinstance(raw, str) and setting.parse is not parse_model:
                kind = "boolean (true or false)" if setting.key == "strict" else "number"
                raise UsageError(
                    f"{where} must be a TOML {kind}, not the string {raw!r}: drop the quotes"
                )
            values[setting.key] = setting.parse(raw, where)
            sources[setting.key] = where
    settings = RunSettings(
        **values, name=name, budget_file=file_path, sources=MappingProxyType(sources)
    )
    _check_combination(settings)
    return settings


def _check_combination(s: RunSettings) -> None:
    if s.max_usd is None and s.max_tokens is None and s.max_llm_calls is None:
        raise NoLimitError(
            "no limit set: give --budget USD (or --max-tokens N / --max-llm-calls N), set "
            "SHEKEL_BUDGET_USD, or put max_usd in the [budget] table of a --budget-file"
        )
    if s.fallback_at is not None and s.fallback_model is None:
        raise UsageError(
            f"{s.sources['fallback_at']} needs a fallback model: add --fallback-model MODEL "
            "(or SHEKEL_FALLBACK_MODEL, or fallback_model in the budget file)"
        )
    if s.fallback_model is not None and s.max_usd is None:
        raise UsageError(
            f"{s.sources['fallback_model']} needs a USD limit (--budget USD): the switch happens "
            "at a fraction of it (--fallback-at, default 0.8)"
        )
