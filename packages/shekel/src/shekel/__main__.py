"""``python -m shekel``: the same as the ``shekel`` command."""

from __future__ import annotations

from shekel._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
