"""Run every ``benchmarks/bench_*.py`` and merge their JSON into one document.

``nox -s bench`` runs this. Each suite runs in its own process (see ``_harness.py`` for what a
suite prints); the merged document goes to stdout and to ``bench-results.json`` at the repository
root (git-ignored). Options (also passed on to every suite, which ignores what it does not know):

``--quick``              small loops, few repeats: a smoke run;
``--no-incumbents``      skip the PyPI incumbents (no network needed);
``--baseline REF``       also measure git ``REF`` (or a directory holding the ``shekel`` package)
                         side by side, for before/after figures;
``--only NAME``          run only ``bench_NAME.py`` (repeatable);
``--markdown PATH``      also write the Markdown table (``benchmarks/RESULTS.md`` for the README;
                         with ``--only``, only those suites' sections of an existing file);
``--from-json PATH``     render ``--markdown`` from an earlier result instead of running anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = ROOT / "bench-results.json"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def run_suite(script: Path, passthrough: list[str]) -> dict[str, Any]:
    print(f"bench: running {script.name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(script), *passthrough],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        check=False,
    )
    if done.returncode != 0:
        return {"error": f"{script.name} exited with {done.returncode}"}
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        return {"error": f"{script.name} printed no JSON document: {exc}"}
    return result


# -- Markdown -----------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ops/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f} M/s"
        return f"{value / 1e3:.0f} k/s"
    if unit == "µs/op":
        return f"{value:.2f} µs" if value < 100 else f"{value:,.0f} µs"
    if unit == "MB":
        return f"{value:.2f} MB"
    if unit == "instr/op":
        return f"{value / 1000:,.1f} k instr" if value >= 1000 else f"{value:,.0f} instr"
    return f"{value:g} {unit}"


def goal_text(fig: dict[str, Any]) -> str:
    goal = fig.get("goal")
    if not goal:
        return "–"
    mark = {True: " ✅", False: " ❌", None: ""}[fig.get("meets_goal")]
    if fig.get("median") is not None and goal["op"] == "<=" and fig["median"] < 0:
        mark = " (below zero: noise)"
    op = "≤" if goal["op"] == "<=" else "≥"
    return f"{op} {fmt(goal['value'], fig['unit'])}{mark}"


def incumbent_text(fig: dict[str, Any]) -> tuple[str, str]:
    inc = fig.get("incumbent")
    if not inc:
        return "–", "–"
    if not inc.get("available"):
        return f"{inc['name']}: {inc.get('reason') or 'unavailable'}", "–"
    ratio = fig.get("ratio_vs_incumbent")
    return (
        f"{fmt(inc['median'], fig['unit'])} ({inc['name']})",
        "–" if ratio is None else f"{ratio:,.2f}×",
    )


def markdown(document: dict[str, Any]) -> str:
    lines = ["# Benchmark results", ""]
    m = document.get("machine", {})
    lines.append(
        f"Measured {document.get('date', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} "
        f"cores), {m.get('python', '?')}, {m.get('os', '?')}; load average at start "
        f"{m.get('load_average_at_start', '?')}, at end {m.get('load_average_at_end', '?')}."
    )
    lines.append(f"Command: `{document.get('command', 'nox -s bench')}`.")
    lines.append("")
    lines.append(
        "Each figure is the median of several repeats, with the best repeat in brackets. "
        "*vs incumbent* is how many times faster shekel is (> 1 = faster), on the medians."
    )
    for name, suite in document.get("suites", {}).items():
        lines += ["", f"## {name}", ""]
        if "error" in suite:
            lines.append(f"Suite failed: {suite['error']}")
            continue
        figures = suite.get("figures", [])
        lines.append("| Figure | shekel | Goal | Incumbent | vs incumbent |")
        lines.append("|---|---|---|---|---|")
        for fig in figures:
            inc, ratio = incumbent_text(fig)
            lines.append(
                f"| {fig['label']} | {ours_text(fig)} | {goal_text(fig)} | {inc} | {ratio} |"
            )
        unavailable = suite.get("incumbents_unavailable")
        if unavailable:
            lines += ["", f"Incumbents unavailable: {unavailable}"]
        notes = suite.get("notes")
        if notes:
            lines += ["", *notes]
        lines += baseline_table(figures)
    return "\n".join(lines) + "\n"


def merge_sections(old: str, new: str, document: dict[str, Any]) -> str:
    """``old`` with each section of ``new`` (a run of some suites) in place of its own, marked
    with when it was measured; the header and the other sections stay as they were."""
    head, sections = _sections(old)
    start = document.get("machine", {}).get("load_average_at_start", "?")
    when = (
        f"This section was measured again on {document.get('date', '?')} "
        f"(`{document.get('command', 'nox -s bench')}`, load average at start {start}); the "
        "others in the run described at the top."
    )
    for name, body in _sections(new)[1].items():
        heading, _, rest = body.partition("\n\n")
        sections[name] = f"{heading}\n\n{when}\n\n{rest}"
    return "\n\n".join([head, *sections.values()]) + "\n"


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """The text before the first ``## `` heading, and each section by its name (stripped)."""
    head, *parts = re.split(r"(?m)^(?=## )", text)
    sections = {part.split("\n", 1)[0][3:].strip(): part.strip() for part in parts}
    return head.strip(), sections


def ours_text(fig: dict[str, Any]) -> str:
    unit = fig["unit"]
    text = fmt(fig.get("median"), unit)
    best = fig.get("max") if unit == "ops/s" else fig.get("min")
    if best is not None and "repeats" in fig:
        text += f" ({fmt(best, unit)})"
    return text


def baseline_table(figures: list[dict[str, Any]]) -> list[str]:
    """Before/after rows when the run measured a ``--baseline`` too."""
    bases = [f["baseline"] for f in figures if f.get("baseline", {}).get("available")]
    if not bases:
        return []
    ref = bases[0].get("commit") or bases[0].get("ref")
    lines = [
        "",
        f"### Against the baseline {ref} (same run)",
        "",
        f"| Figure | Before ({ref}) | Now | Speed-up |",
        "|---|---|---|---|",
    ]
    for fig in figures:
        base = fig.get("baseline") or {}
        if not base.get("available"):
            continue
        speed = base.get("ratio_vs_baseline")
        lines.append(
            f"| {fig['label']} | {fmt(base.get('median'), fig['unit'])} | {ours_text(fig)} | "
            + ("–" if speed is None else f"{speed:.2f}×")
            + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-incumbents", action="store_true")
    parser.add_argument("--baseline", metavar="REF")
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--from-json", metavar="PATH")
    parser.add_argument("--command", default=os.environ.get("SHEKEL_BENCH_COMMAND"))
    args = parser.parse_args(argv)

    if args.from_json:
        document = json.loads(Path(args.from_json).read_text())
    else:
        passthrough = []
        if args.quick:
            passthrough.append("--quick")
        if args.no_incumbents:
            passthrough.append("--no-incumbents")
        if args.baseline:
            passthrough += ["--baseline", args.baseline]
        scripts = sorted(HERE.glob("bench_*.py"))
        if args.only:
            scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
        document = {
            "schema": 1,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": args.command
            or shlex.join(["python", "benchmarks/run_all.py", *(argv or sys.argv[1:])]),
            "machine": machine(),
            "suites": {},
        }
        for script in scripts:
            result = run_suite(script, passthrough)
            document["suites"][result.get("suite", script.stem.removeprefix("bench_"))] = result
        if hasattr(os, "getloadavg"):
            document["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        RESULTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    if args.markdown:
        path = Path(args.markdown)
        text = markdown(document)
        if args.only and path.exists():  # some suites: the file keeps the others
            text = merge_sections(path.read_text(), text, document)
        path.write_text(text)
        print(f"bench: wrote {args.markdown}", file=sys.stderr)
    failed = [name for name, suite in document["suites"].items() if "error" in suite]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
