"""The ``shekel`` command (also ``python -m shekel``): ``run``, ``models``, ``estimate``, and
``budgets`` / ``reset`` for budgets kept in a store (``_cli_stores.py``).

Exit codes: 0 success; for ``run``, the script's own code while it stays under budget and 1
when the budget stopped it; 2 for usage errors (``shekel ...: error: ...`` on stderr).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from ._cli_args import split_run_argv
from ._cli_config import (
    BUDGET_FILE_ENV,
    DEFAULT_FALLBACK_AT,
    DEFAULT_NAME,
    FILE_KEYS,
    UsageError,
    plain_whole,
    resolve,
)

EXIT_USAGE: Final = 2

_RUN_USAGE: Final = "shekel run --budget USD [options] SCRIPT [-- ARGS...]"
_RUN_USAGES: Final = f"""{_RUN_USAGE}
       shekel run [--name NAME] [--output FORMAT] SCRIPT --budget USD [options] [-- ARGS...]"""

_RUN_DESCRIPTION: Final = """\
Run a Python script inside a spend limit. The script runs in this process as
`python SCRIPT ARGS...` would run it, inside `with budget(...)`: every call the openai
and anthropic SDKs make is priced and counted, and the call that crosses a limit raises
BudgetExceededError. The spend summary is written to stderr when the script ends.

Arguments: shekel's options may come before or after SCRIPT. Arguments for the script
go after `--`. Arguments after SCRIPT that do not start with - go to the script too.
  shekel run agent.py --budget 0.50                   # same as --budget 0.50 agent.py
  shekel run agent.py --budget 0.50 -- --topic cats   # the script gets --topic cats
  shekel run --budget 0.50 agent.py notes.txt         # the script gets notes.txt
Put --name and --output before SCRIPT: after it they are refused, because scripts often
have options of these names. An option that shekel does not have, or one already given
before SCRIPT, is refused after SCRIPT too. A `--` before SCRIPT ends shekel's options,
and every argument after SCRIPT then goes to the script unchanged:
  shekel run --budget 0.50 -- -odd-name.py --topic cats
"""

_RUN_EPILOG: Final = f"""\
Settings come from the flags, then environment variables, then the budget file
(flags win over the environment, which wins over the file):
  --budget            SHEKEL_BUDGET_USD       max_usd
  --max-tokens        SHEKEL_MAX_TOKENS       max_tokens
  --max-llm-calls     SHEKEL_MAX_LLM_CALLS    max_llm_calls
  --warn-at           SHEKEL_WARN_AT          warn_at
  --fallback-model    SHEKEL_FALLBACK_MODEL   fallback_model
  --fallback-at       SHEKEL_FALLBACK_AT      fallback_at
  --strict            SHEKEL_STRICT           strict   (true/false, 1/0, yes/no, on/off)
  --loop-guard        SHEKEL_LOOP_GUARD       loop_guard
  --budget-file       {BUDGET_FILE_ENV}
At least one of the three limits must be set. Empty variables count as unset.
Numbers in flags and variables are plain ASCII decimals such as 0.5 or 2.5e-1, and
digits only for the limits on tokens and calls (not 1_000, 1,000 or non-ASCII digits).

Budget file (TOML, only a [budget] table; unknown keys are an error):
  [budget]
  max_usd = 0.50
  max_llm_calls = 20
  warn_at = 0.8
  fallback_model = "gpt-4o-mini"
  fallback_at = 0.8
  strict = false

Exit codes:
  the script's own   when it stays under budget (0 when it returns normally; 1 when it
                     raises, with the traceback printed as Python prints it)
  1                  the budget stopped the script: a limit was exceeded or a call was
                     refused, even if the script caught BudgetExceededError
  2                  usage error (missing script, bad value, malformed budget file)
  130                interrupted (Ctrl-C)

With --output json, the last line of stderr is one JSON object with the keys
  spent, limit (USD), calls, tokens, status ("ok", "warn" or "exceeded": the budget
  stopped the script), exit_code, script_exit_code, limits {{usd, tokens, llm_calls}},
  strict, error (null, or {{budget, axis, spent, limit, sent, model, message}}) and
  budget (the budget's summary_data()).
"""


def _non_negative(text: str) -> int:
    value = plain_whole(text)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"must be a whole number >= 0 written with the digits 0-9, such as 1000, got {text!r}"
        )
    return value


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``shekel`` parser and its sub-parsers by command name."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="shekel",
        description="Hard spend limits for LLM agents.",
        epilog="Run `shekel COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"shekel {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        usage=_RUN_USAGES,
        help="run a Python script inside a budget",
        description=_RUN_DESCRIPTION,
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    limits = run.add_argument_group("limits (at least one)")
    limits.add_argument(
        "--budget", "--max-usd", dest="max_usd", metavar="USD", help="USD limit, e.g. 0.50"
    )
    limits.add_argument("--max-tokens", metavar="N", help="token limit (input + output)")
    limits.add_argument("--max-llm-calls", metavar="N", help="limit on the number of LLM calls")
    policy = run.add_argument_group("policies")
    policy.add_argument(
        "--warn-at", metavar="FRACTION", help="print a warning at this fraction of a limit"
    )
    policy.add_argument(
        "--fallback-model",
        metavar="MODEL",
        help="switch requests to this (cheaper) model near the USD limit",
    )
    policy.add_argument(
        "--fallback-at",
        metavar="FRACTION",
        help=f"fraction of the USD limit where the fallback starts (default {DEFAULT_FALLBACK_AT})",
    )
    policy.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="never cross the USD cap: shorten or refuse requests that might (default: off)",
    )
    policy.add_argument(
        "--loop-guard",
        metavar="N",
        help="stop the Nth identical tool call or model request before it runs (a loop)",
    )
    other = run.add_argument_group("other")
    other.add_argument(
        "--budget-file", metavar="PATH", help="TOML file with a [budget] table (see below)"
    )
    other.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="spend summary on stderr as a text report or one JSON line (default: text)",
    )
    other.add_argument(
        "--name", default=DEFAULT_NAME, help="the budget's name (default: %(default)s)"
    )

    models = commands.add_parser(
        "models",
        help="list the models shekel knows prices for",
        description="The price table shekel uses, in USD per 1M tokens.",
    )
    models.add_argument("pattern", nargs="?", help="only models whose name contains this")
    models.add_argument("--provider", metavar="P", help="only this provider, e.g. openai")
    models.add_argument("--json", action="store_true", help="print a JSON list instead")

    estimate = commands.add_parser(
        "estimate",
        help="price one call",
        description="What one call with these token counts costs. Cached input tokens are "
        "part of --input (as providers count them).",
    )
    estimate.add_argument("--model", required=True, metavar="M")
    estimate.add_argument("--input", required=True, type=_non_negative, metavar="N")
    estimate.add_argument("--output", required=True, type=_non_negative, metavar="N")
    estimate.add_argument(
        "--cached-input", default=0, type=_non_negative, metavar="N", help="default 0"
    )
    estimate.add_argument("--provider", metavar="P", help="e.g. openai, anthropic")
    estimate.add_argument("--json", action="store_true", help="print a JSON object instead")
    from ._cli_stores import add_parsers

    stored = add_parsers(commands)
    return parser, {"run": run, "models": models, "estimate": estimate, **stored}


# -- run -------------------------------------------------------------------------------------


def _run(run_parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    from ._cli_run import make_budget, report, run_script
    from ._errors import BudgetConfigError

    split = split_run_argv(argv, run_parser)
    if split.problem is not None:
        run_parser.error(split.problem)
    script = split.script
    ns = run_parser.parse_args(split.options)
    try:
        flags = {key: getattr(ns, key) for key in FILE_KEYS}
        settings = resolve(flags, os.environ, budget_file=ns.budget_file, name=ns.name)
        if script is None:
            raise UsageError(f"missing SCRIPT; usage: {_RUN_USAGE}")
        if not os.path.exists(script):
            raise UsageError(f"the script {script!r} does not exist")
        if os.path.isdir(script) and not os.path.isfile(os.path.join(script, "__main__.py")):
            raise UsageError(f"{script!r} is a directory without a __main__.py to run")
        root = make_budget(settings.budget_kwargs())
    except (UsageError, BudgetConfigError) as error:
        run_parser.error(str(error))
    outcome = run_script(script, split.script_args, root, output=ns.output)
    report(outcome, ns.output)
    return outcome.exit_code


# -- models ----------------------------------------------------------------------------------


def _price_text(value: Decimal | None, places: int = 6) -> str:
    """``2.50``, ``0.075``: at least two decimals, at most ``places`` (price tables carry
    float artefacts such as 0.13999999999999999)."""
    if value is None:
        return "-"
    text = format(round(value, places).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _models(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    from ._pricing import known_models

    rows = known_models(ns.provider)
    if ns.provider and not rows:
        providers = sorted({p for p, _, _ in known_models()})
        parser.error(f"unknown provider {ns.provider!r}; known providers: {', '.join(providers)}")
    if ns.pattern:
        needle = ns.pattern.lower()
        rows = [r for r in rows if needle in r[1].lower()]
    if ns.json:
        listing = [
            {
                "provider": provider,
                "model": model,
                "input": None if price is None else float(price.input),
                "cached_input": None
                if price is None or price.cached_input is None
                else float(price.cached_input),
                "output": None if price is None else float(price.output),
            }
            for provider, model, price in rows
        ]
        _write(json.dumps(listing, indent=1) + "\n")
        return 0
    table = [("PROVIDER", "MODEL", "INPUT", "CACHED INPUT", "OUTPUT")]
    for provider, model, price in rows:
        table.append(
            (
                provider,
                model,
                _price_text(None if price is None else price.input),
                _price_text(None if price is None else price.cached_input),
                _price_text(None if price is None else price.output),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = ["USD per 1M tokens ('-': no flat price known)"]
    for row in table:
        left = f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}"
        right = "  ".join(f"{cell:>{widths[i]}}" for i, cell in enumerate(row[2:], start=2))
        lines.append(f"{left}  {right}")
    if len(table) == 1:
        lines.append("(no models match)")
    _write("\n".join(lines) + "\n")
    return 0


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `shekel models | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# -- estimate --------------------------------------------------------------------------------


def _usd_text(amount: Decimal) -> str:
    return "$" + _price_text(amount, 9)


def _estimate(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    from ._money import nanos_to_decimal
    from ._pricing import TokenUsage, known_models, rate_for

    if ns.cached_input > ns.input:
        parser.error(
            f"--cached-input ({ns.cached_input}) cannot exceed --input ({ns.input}): cached "
            "tokens are part of the input"
        )
    rate = rate_for([], ns.model, ns.provider)
    if rate is None:
        names = sorted({model for _, model, _ in known_models(ns.provider)})
        close = difflib.get_close_matches(ns.model, names, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        parser.error(
            f"no price is known for model {ns.model!r}.{hint} Run `shekel models` to list the "
            "models shekel knows"
        )
    usage = TokenUsage(ns.input, ns.output, cache_read_tokens=ns.cached_input)
    total = nanos_to_decimal(rate.cost(usage))
    price = rate.as_model_price()
    per_token = Decimal(1_000_000)
    parts: list[tuple[str, int, Decimal]] = [
        ("input", ns.input - ns.cached_input, price.input),
        ("cached input", ns.cached_input, price.cached_input or price.input),
        ("output", ns.output, price.output),
    ]
    if ns.json:
        result: dict[str, Any] = {
            "model": ns.model,
            "input_tokens": ns.input,
            "cached_input_tokens": ns.cached_input,
            "output_tokens": ns.output,
            "usd": float(total),
            "usd_exact": format(total.normalize(), "f"),
            "price_per_1m": {
                "input": float(price.input),
                "cached_input": float(price.cached_input or price.input),
                "output": float(price.output),
            },
            "tiered": rate.tiered is not None,
            "source": rate.source,
        }
        _write(json.dumps(result) + "\n")
        return 0
    lines = [f"{_usd_text(total)}  {ns.model}"]
    if rate.tiered is None:
        for label, tokens, per_m in parts:
            if tokens or label != "cached input":
                cost = per_m * tokens / per_token
                lines.append(
                    f"  {label:<13}{tokens:>12,} tokens × {_usd_text(per_m)} / 1M = "
                    f"{_usd_text(cost)}"
                )
    else:
        lines.append(
            "  (the price follows the provider's tiers or the time of day: the total is exact)"
        )
    lines.append(f"  price source: {rate.source}")
    _write("\n".join(lines) + "\n")
    return 0


# -- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``shekel`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    code instead of exiting."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    try:
        if args and args[0] == "run":
            return _run(commands["run"], args[1:])
        ns = parser.parse_args(args)
        if ns.command == "models":
            return _models(commands["models"], ns)
        if ns.command in ("budgets", "reset"):
            from . import _cli_stores

            handler = _cli_stores.budgets if ns.command == "budgets" else _cli_stores.reset
            return handler(commands[ns.command], ns)
        return _estimate(commands["estimate"], ns)
    except SystemExit as stop:  # argparse: --help, --version and usage errors
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
