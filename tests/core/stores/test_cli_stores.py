"""``shekel budgets`` and ``shekel reset`` on real SQLite files and a real Redis server.

Budgets are written by the library in this process (spend, windows, caps, a live hold) and
read back through the command, mostly with ``main([...])``; one run is a real ``python -m
shekel`` subprocess.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import unicodedata
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import redis

from shekel import budget
from shekel._cli import main

HEAD = ["BUDGET", "WINDOW", "PERIOD", "SPENT", "LIMIT", "REMAINING", "TOKENS", "CALLS"]


@pytest.fixture(autouse=True)
def no_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SHEKEL_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # no shekel.toml here


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def spend(store: str) -> Any:
    """Budgets as an application leaves them: returns a live reservation (a call in flight)."""
    user = budget(name="user_1", max_usd=5, window="1d", store=store)
    user.record(usd=1.25, tokens=100)
    other = budget(
        name="user_2",
        windows={"1h": 1.0, "1d": {"max_usd": 4, "max_llm_calls": 10}},
        store=store,
    )
    other.record(usd=0.5, tokens=7)
    team = budget(name="team", max_usd=100, store=store)
    team.record(usd=10)
    return team.reserve(usd=2)


def test_budgets_lists_spend_limits_remaining_and_holds(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    held = spend(store)
    code, out, err = cli(capsys, "budgets", "--store", store)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:8] == HEAD
    rows = {tuple(line.split()[:3]): line.split()[3:] for line in lines[1:]}
    assert len(rows) == 4
    team = rows[("team", "-", "-")]
    assert team == ["$10.00", "$100.00", "$88.00", "0", "1", "0", "1"]  # $2 held
    [user_1] = [v for k, v in rows.items() if k[:2] == ("user_1", "1d")]
    assert user_1 == ["$1.25", "$5.00", "$3.75", "100", "1", "0", "0"]
    [day] = [v for k, v in rows.items() if k[:2] == ("user_2", "1d")]
    assert day[:5] == ["$0.50", "$4.00", "$3.50", "7", "1/10"]
    [hour] = [v for k, v in rows.items() if k[:2] == ("user_2", "1h")]
    assert hour[:3] == ["$0.50", "$1.00", "$0.50"]
    held.release()
    code, out, _ = cli(capsys, "budgets", "--store", store, "team")
    assert out.splitlines()[1].split()[-1] == "0"  # released: no hold left
    assert len(out.splitlines()) == 2  # only the names starting with "team"


def test_budgets_as_json(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    spend(store)
    code, out, _ = cli(capsys, "budgets", "--store", store, "user_2", "--output", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["budget"], r["window"]) for r in rows] == [("user_2", "1d"), ("user_2", "1h")]
    day = rows[0]
    assert day["key"] == f"user_2@1d/{day['period']}"
    assert (day["usd"], day["usd_limit"], day["usd_remaining"]) == (0.5, 4.0, 3.5)
    assert (day["llm_calls"], day["llm_calls_limit"], day["llm_calls_remaining"]) == (1, 10, 9)
    assert (day["tokens"], day["tokens_limit"], day["holds"]) == (7, None, 0)
    assert day["forgotten_after"] > day["period"]


def test_reset_zeroes_a_budget_and_all_its_periods(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spend(store)
    code, out, err = cli(capsys, "reset", "user_2", "--store", store)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].endswith("2 account(s) now at zero")
    assert [line.strip().split("/")[0] for line in out.splitlines()[1:]] == [
        "user_2@1d",
        "user_2@1h",
    ]
    assert budget(name="user_2", windows={"1h": 1.0, "1d": 4.0}, store=store).spent == 0
    assert budget(name="user_1", max_usd=5, window="1d", store=store).spent == 1.25  # untouched
    code, _, err = cli(capsys, "reset", "user_3", "--store", store)
    assert code == 1
    assert "no budget named 'user_3'" in err


def test_an_unreachable_store_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "budgets", "--store", "redis://:pw@127.0.0.1:1/0?on_error=open")
    assert code == 1  # a listing never "fails open"
    assert "is unavailable" in err
    assert "pw" not in err


def test_usage_errors_say_what_to_give(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "budgets")
    assert code == 2
    assert "give --store URL, or set SHEKEL_STORE" in err
    code, _, err = cli(capsys, "budgets", "--store", "sqlite:///missing.db")
    assert code == 2
    assert "no SQLite store at" in err
    assert not (tmp_path / "missing.db").exists()  # not created by looking
    code, _, err = cli(capsys, "reset", "x", "--store", "memory")
    assert code == 2
    assert "inside one process" in err
    code, _, err = cli(capsys, "budgets", "--store", "mysql://x")
    assert code == 2
    assert "not a store shekel knows" in err


def test_the_default_store_and_a_real_subprocess(tmp_path: Path, redis_url: str) -> None:
    spend(redis_url)
    (tmp_path / "shekel.toml").write_text(f'[store]\nurl = "{redis_url}"\n')
    env = {k: v for k, v in os.environ.items() if k != "SHEKEL_STORE"}
    run = subprocess.run(
        [sys.executable, "-m", "shekel", "budgets", "user_1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    name, window, period, spent = run.stdout.splitlines()[1].split()[:4]
    assert (name, window, spent) == ("user_1", "1d", "$1.25")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00", period)


def test_reset_leaves_a_budget_whose_name_only_starts_like_it(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    budget(name="a", max_usd=1, window="1d", store=store).record(usd=0.5)
    budget(name="a@b", max_usd=1, window="1d", store=store).record(usd=0.25)
    budget(name="a@b", max_usd=1, store=store).record(usd=0.125)
    code, out, _ = cli(capsys, "reset", "a", "--store", store)
    assert code == 0
    assert [line.split("@1d/")[0].strip() for line in out.splitlines()[1:]] == ["a"]
    assert budget(name="a@b", max_usd=1, window="1d", store=store).spent == 0.25
    code, out, _ = cli(capsys, "budgets", "--store", store, "--output", "json")
    rows = {(r["budget"], r["window"]): r["usd"] for r in json.loads(out)}
    assert rows == {("a", "1d"): 0.0, ("a@b", None): 0.125, ("a@b", "1d"): 0.25}


# Names that budget(name=...) refuses, as hand-edited data or older versions may have left them
# in a store: a row forged after a newline, and escape sequences that would clear the screen,
# turn the text red and reverse it (U+202E) if they reached the terminal.
FORGED_ROW = "mallory\nalice  -  -  $0.00  $5.00  $5.00  0  0  0  0"
ESCAPES = "eve\x1b[2J\x1b[31m\u202elive\x7f"


def forge(store: str, key: str) -> None:
    """An account with $1 spent of $5, written straight into the store under ``key``."""
    caps = json.dumps([5_000_000_000, None, None, None])
    if store.startswith("redis://"):
        client = redis.Redis.from_url(store)
        client.hset(f"shekel:a:{key}", mapping={"usd": 1_000_000_000, "caps": caps})
        client.close()
        return
    with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as db, db:
        db.execute(
            "INSERT INTO shekel_accounts (key, usd, caps) VALUES (?, ?, ?)", (key, 10**9, caps)
        )


def hidden(text: str) -> list[str]:
    """The characters of ``text`` a terminal would not show as themselves (line ends aside)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl")]


def test_budgets_shows_control_characters_in_names_as_escapes(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    budget(name="alice", max_usd=5, store=store).record(usd=0.5)  # creates the store too
    forge(store, FORGED_ROW)
    forge(store, ESCAPES)
    forge(store, ESCAPES + "\u2028@1d/2026-06-14T00:00")
    code, out, err = cli(capsys, "budgets", "--store", store)
    assert (code, err) == (0, "")
    assert hidden(out) == []
    lines = out.splitlines()
    assert len(lines) == 1 + 4  # one line per account
    assert [line.split()[:4] for line in lines if line.startswith("alice")] == [
        ["alice", "-", "-", "$0.50"]
    ]
    forged = "mallory\\nalice  -  -  $0.00  $5.00  $5.00  0  0  0  0"
    escapes = "eve\\x1b[2J\\x1b[31m\\u202elive\\x7f"
    rows = {
        name: [line[len(name) :].split()[:3] for line in lines if line.startswith(name + " ")]
        for name in (forged, escapes, escapes + "\\u2028")
    }
    assert rows == {
        forged: [["-", "-", "$1.00"]],
        escapes: [["-", "-", "$1.00"]],
        escapes + "\\u2028": [["1d", "2026-06-14T00:00", "$1.00"]],
    }
    code, out, _ = cli(capsys, "budgets", "--store", store, "--output", "json")
    assert code == 0
    assert hidden(out) == []
    names = [row["budget"] for row in json.loads(out)]  # JSON keeps the names as they are
    assert sorted(names) == sorted(["alice", FORGED_ROW, ESCAPES, ESCAPES + "\u2028"])


def test_reset_shows_control_characters_in_keys_as_escapes(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    budget(name="alice", max_usd=5, store=store).record(usd=0.5)
    forge(store, ESCAPES)
    forge(store, ESCAPES + "@1d/2026-06-14T00:00")
    forge(store, FORGED_ROW)
    code, out, err = cli(capsys, "reset", ESCAPES, "--store", store)
    assert (code, err) == (0, "")
    assert hidden(out) == []
    escaped = "eve\\x1b[2J\\x1b[31m\\u202elive\\x7f"
    assert out.splitlines()[1:] == [f"  {escaped}", f"  {escaped}@1d/2026-06-14T00:00"]
    code, out, err = cli(capsys, "reset", FORGED_ROW, "--store", store)
    assert (code, err) == (0, "")
    assert hidden(out) == []
    assert out.splitlines()[1:] == ["  mallory\\nalice  -  -  $0.00  $5.00  $5.00  0  0  0  0"]
    code, out, _ = cli(capsys, "budgets", "--store", store, "--output", "json")
    spent = {row["budget"]: row["usd"] for row in json.loads(out)}
    assert spent == {"alice": 0.5, ESCAPES: 0.0, FORGED_ROW: 0.0}
