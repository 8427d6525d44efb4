"""How ``shekel run`` splits its arguments into shekel's options, SCRIPT and the script's
arguments.

shekel's options may come before or after SCRIPT: ``shekel run agent.py --budget 5`` and
``shekel run --budget 5 agent.py`` are the same run. The script's own arguments go after
``--`` (``shekel run agent.py --budget 5 -- --topic cats``). After SCRIPT, an argument that
does not start with ``-`` is the script's as well (``shekel run --budget 5 agent.py
data.txt``), as it always was.

Refused after SCRIPT (without ``--``), with a message that shows the corrected command:

- an option shekel does not have, such as ``--topic``: it can only be the script's;
- ``--name`` and ``--output``: scripts often have options of these names too, so shekel's go
  before SCRIPT and the script's after ``--``;
- an option also given before SCRIPT, such as ``--budget 1 agent.py --budget 3``: shekel
  cannot tell which one was meant, or whether the second one was for the script.

A ``--`` before SCRIPT ends shekel's options: the next argument is SCRIPT, and every argument
after it is the script's, unchanged.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

BEFORE_SCRIPT_ONLY: Final = frozenset({"--name", "--output"})
"""shekel's options that are refused after SCRIPT, because scripts often have them too."""

_Kind = Literal["shekel", "before-only", "repeated", "unknown", "argument"]


@dataclass(frozen=True, slots=True)
class RunArgs:
    """The arguments after ``run``, split."""

    options: list[str]
    """shekel's options for its parser, ``--opt VALUE`` written ``--opt=VALUE`` so that a
    value starting with ``-`` is never taken for an option."""
    script: str | None
    script_args: list[str]
    problem: str | None
    """Why the command is refused (a usage error), or ``None``."""


def _is_option(token: str) -> bool:
    return token.startswith("-") and token != "-"


def _name(item: Sequence[str]) -> str:
    return item[0].split("=", 1)[0]


def _take(
    argv: Sequence[str], i: int, table: dict[str, argparse.Action]
) -> tuple[list[str], int, argparse.Action | None]:
    """The option at ``argv[i]`` with its value when it takes one written apart, the index
    after them, and its action (``None`` when shekel has no such option)."""
    token = argv[i]
    action = table.get(_name([token]))
    if action is not None and action.nargs != 0 and "=" not in token and i + 1 < len(argv):
        return [token, argv[i + 1]], i + 2, action
    return [token], i + 1, action


def _for_parser(items: Sequence[Sequence[str]]) -> list[str]:
    return [item[0] if len(item) == 1 else f"{item[0]}={item[1]}" for item in items]


def split_run_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> RunArgs:
    """Split ``argv`` (everything after ``run``) with the options of ``parser``."""
    table = {text: action for action in parser._actions for text in action.option_strings}
    before: list[list[str]] = []
    i = 0
    dashed = False
    while i < len(argv) and _is_option(argv[i]):
        if argv[i] == "--":
            dashed, i = True, i + 1
            break
        item, i, _ = _take(argv, i, table)
        before.append(item)
    if i >= len(argv):
        return RunArgs(_for_parser(before), None, [], None)
    script, i = argv[i], i + 1
    if dashed:
        return RunArgs(_for_parser(before), script, list(argv[i:]), None)
    given = {table[_name(item)].dest for item in before if _name(item) in table}
    after: list[tuple[_Kind, list[str]]] = []
    rest: list[str] = []
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest = list(argv[i + 1 :])
            break
        if not _is_option(token):
            after.append(("argument", [token]))
            i += 1
            continue
        item, i, action = _take(argv, i, table)
        kind: _Kind
        if action is None:
            kind = "unknown"
        elif action.dest in given and action.dest != "help":
            kind = "repeated"
        elif _name(item) in BEFORE_SCRIPT_ONLY:
            kind = "before-only"
        else:
            kind = "shekel"
        after.append((kind, item))
    options = _for_parser(before + [item for kind, item in after if kind == "shekel"])
    script_args = [token for kind, item in after if kind == "argument" for token in item]
    problem = _problem(before, script, after, rest, known=list(table))
    return RunArgs(options, script, script_args + rest, problem)


def _listed(names: Sequence[str]) -> str:
    """``--a``, ``--a and --b``, ``--a, --b and --c``, each name once."""
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _problem(
    before: list[list[str]],
    script: str,
    after: list[tuple[_Kind, list[str]]],
    rest: list[str],
    *,
    known: Sequence[str],
) -> str | None:
    """The usage error for arguments after SCRIPT that shekel will not guess about."""
    found: dict[_Kind, list[str]] = {}
    for kind, item in after:
        found.setdefault(kind, []).append(_name(item))
    if not {"repeated", "before-only", "unknown"} & found.keys():
        return None
    given = [token for item in before for token in item]
    kept = [token for kind, item in after if kind == "shekel" for token in item]
    moved = [token for kind, item in after if kind != "shekel" for token in item]
    for_script = shlex.join(["shekel", "run", *given, script, *kept, "--", *moved, *rest])
    if "repeated" in found:
        names = _listed(found["repeated"])
        many = len(set(found["repeated"])) > 1
        return (
            f"{names} {'are' if many else 'is'} given both before and after SCRIPT, so shekel "
            f"cannot tell which to use. Give shekel's {names} once. If "
            f"{'the ones after SCRIPT are' if many else 'the one after SCRIPT is'} for the "
            f"script, put {'them' if many else 'it'} after `--`: {for_script}"
        )
    if "before-only" in found:
        names = _listed(found["before-only"])
        many = len(set(found["before-only"])) > 1
        ours = [t for kind, item in after if kind == "before-only" for t in item]
        theirs = [t for kind, item in after if kind in ("unknown", "argument") for t in item]
        tail = ["--", *theirs, *rest] if theirs or rest else []
        for_shekel = shlex.join(["shekel", "run", *given, *ours, script, *kept, *tail])
        them = "them" if many else "it"
        return (
            f"{names} after SCRIPT {'are' if many else 'is'} ambiguous, because scripts often "
            f"have {'options of these names' if many else 'a ' + names + ' option'} too. If "
            f"{'they are' if many else 'it is'} for the script, put {them} after `--`: "
            f"{for_script}. If {'they are' if many else 'it is'} shekel's, put {them} before "
            f"SCRIPT: {for_shekel}"
        )
    unknown = found["unknown"]
    many = len(set(unknown)) > 1
    longs = {name.lstrip("-"): name for name in known if name.startswith("--")}
    close = difflib.get_close_matches(unknown[0].lstrip("-"), list(longs), n=1, cutoff=0.75)
    guess = f" (did you mean {longs[close[0]]}?)" if close and not many else ""
    return (
        f"{_listed(unknown)} {'are not options' if many else 'is not an option'} of shekel "
        f"run{guess}. Arguments for the script go after `--`: {for_script}"
    )
