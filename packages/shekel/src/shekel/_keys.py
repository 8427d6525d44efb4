"""The keys a store knows accounts by, and why no budget name can reach another's account.

A key is built from names, so that every process gives the same budget the same account:

- a named root budget: its name (``"alice"``); a child: its parent's key, ``"."``, its name
  (``"workflow.research"``);
- a budget nobody else can know (an unnamed root on a store, a repeat such as a
  ``@with_budget`` call, and every child under one of them): the key of its place with
  ``#<random id>`` (``"budget#3f2a….research"``), deleted from the store once the budget is gone;
- a window's period: the budget's key, ``@<window>/<period start>``
  (``"alice@1d/2026-06-14T00:00"``);
- a pool: ``<name>@pool``.

Names may hold any printable character but ``.`` (the level separator). In a key, the three
characters that carry structure are written as ``%40`` (``@``), ``%23`` (``#``) and ``%25``
(``%``), so a name can never spell another budget's period, private key or pool: a budget named
``"bob@1d/2026-06-14T00:00"`` has the key ``"bob%401d/2026-06-14T00:00"``, not bob's day.
Names without those characters are their own keys, as they always were.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Final

from ._errors import BudgetConfigError

_ESCAPES: Final = str.maketrans({"%": "%25", "@": "%40", "#": "%23"})
_UNESCAPES: Final = (("%40", "@"), ("%23", "#"), ("%25", "%"))

POOL_SUFFIX: Final = "@pool"


def key_part(name: str) -> str:
    """``name`` as one level of a store key."""
    if "%" in name or "@" in name or "#" in name:
        return name.translate(_ESCAPES)
    return name


def name_of(part: str) -> str:
    """The name a level of a store key was written from (the inverse of :func:`key_part`)."""
    if "%" not in part:
        return part
    for escaped, plain in _UNESCAPES:
        part = part.replace(escaped, plain)
    return part


def path_key(path: str) -> str:
    """The key of a named budget given its dotted path (``"workflow.research"``), as
    ``shekel reset`` is given it."""
    return ".".join(key_part(part) for part in path.split("."))


def shown_key(key: str) -> str:
    """A key as people read it: names unescaped, control characters visible."""
    return visible(name_of(key))


def private_key(base: str) -> str:
    """A key only this budget object knows."""
    return f"{base}#{uuid.uuid4().hex}"


def pool_key(name: str) -> str:
    return key_part(name) + POOL_SUFFIX


def has_control_characters(text: str) -> bool:
    return not text.isprintable() and any(unicodedata.category(c) in _HIDDEN for c in text)


_CHAR_ESCAPES: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_HIDDEN: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories escaped by :func:`visible`: controls (C0, DEL, C1), format characters
(bidi overrides, zero-width characters), lone surrogates, and line and paragraph separators."""


def _escape(char: str) -> str:
    if char in _CHAR_ESCAPES:
        return _CHAR_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` (a budget name or store key) made safe to print on one line of a terminal.

    Control and format characters, lone surrogates and line or paragraph separators are
    written as escapes (``\\n``, ``\\x1b``, ``\\u202e``): a name never spans two lines, and
    nothing in it reaches the terminal as a control sequence. Other characters are kept as
    they are (a backslash too, so a name can contain text that reads like an escape).
    """
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _HIDDEN else char for char in text
    )


def budget_name(text: str) -> str:
    """A valid budget name for any framework name (an agent's role, a graph node, a span).

    Budget names may not contain '.', which separates levels in ``full_name``. The rule keeps
    names readable and never makes two different names equal: '%' and '.' are written as
    ``%25`` and ``%2E``, control characters as their ``%XX`` code, and a name of only blanks
    has its blanks encoded too. So ``"Research Analyst"`` stays as it is, ``"crew.lead"``
    becomes ``"crew%2Elead"``, and ``"crew_lead"`` stays distinct from it.
    """
    if not isinstance(text, str):
        raise BudgetConfigError(f"budget_name() needs a string, got {text!r}")

    def encode(char: str) -> str:
        if char in "%." or (not char.isprintable() and char != " "):
            return "".join(f"%{byte:02X}" for byte in char.encode())
        return char

    name = "".join(encode(c) for c in text)
    if not name.strip():  # only blanks, or nothing ("%" alone cannot come from any text)
        name = "".join(f"%{byte:02X}" for byte in name.encode()) or "%"
    return name
