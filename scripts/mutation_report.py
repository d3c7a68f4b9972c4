"""Mutation testing and the test tiers' run times, written into docs/testing.md (issue 36).

    python scripts/mutation_report.py mutate [--max-children 2] [PATTERN ...]  # mutmut run, then write
    python scripts/mutation_report.py tiers [--tiers fast,default]  # time pytest tiers, then write
    python scripts/mutation_report.py write                        # the pages from the kept results

``mutate`` runs mutmut 3 as ``[tool.mutmut]`` in pyproject.toml configures it (the listed pure-Python
modules, the fast tier per mutant) and keeps each mutant's outcome in docs/testing/mutation.json;
``tiers`` runs each tier's pytest command once and keeps its wall time and test counts in
docs/testing/tiers.json. ``write`` (also the last step of both) renders those into the generated
blocks of docs/testing.md and the README, so no number there is typed by hand. Mutants that
cannot change behaviour are listed with a reason in scripts/equivalent_mutants.toml; a mutant
listed there that no longer exists is reported, so the list cannot go stale silently.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "testing"
EQUIVALENT = ROOT / "scripts" / "equivalent_mutants.toml"
PAGE = ROOT / "docs" / "testing.md"
README = ROOT / "README.md"
TARGET = 0.85

TIERS = {
    "fast": ["-m", "not stan and not real_data"],
    "default": [],
    "real_data": ["--real-data", "-m", "real_data"],
}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mutate(max_children: int, patterns: list[str], budget_min: float | None = None) -> None:
    """Run mutmut over the configured modules (or only the mutants matching ``patterns``, e.g.
    ``horizon_zoo.data.*``: mutmut keeps earlier outcomes of the others) and keep every mutant's
    status; a mutant never run stays 'not checked' and is counted apart. With ``budget_min`` the
    run is stopped after that many minutes (mutmut's CLI mutants take seconds each on 2 cores)."""
    import mutmut
    from mutmut.stats import status_by_exit_code

    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *patterns],
                            cwd=ROOT, start_new_session=True)
    stopped = False
    try:
        returncode = proc.wait(timeout=budget_min * 60 if budget_min else None)
    except subprocess.TimeoutExpired:
        # mutmut writes each outcome as it goes: what ran is kept, the rest stays 'not checked'
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        stopped, returncode = True, 0
    if returncode != 0:
        raise SystemExit(f"mutmut run exited {returncode}; nothing written")
    minutes = (time.monotonic() - started) / 60
    statuses: dict[str, dict[str, str]] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        module = meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        statuses[module] = {key: status_by_exit_code[code] for key, code in sorted(codes.items())}
    if not statuses:
        raise SystemExit("mutmut wrote no results under mutants/; nothing written")
    path = RESULTS / "mutation.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() and patterns else []
    command = ["python scripts/mutation_report.py mutate --max-children", str(max_children),
               *([f"--minutes {budget_min:g}"] if budget_min else []), *(f"'{p}'" for p in patterns)]
    runs.append({"measured": _now(), "command": " ".join(command), "wall_min": round(minutes, 1),
                 "stopped": stopped})
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": _machine(), "tool": f"mutmut {mutmut.__version__}", "runs": runs,
                                "statuses": statuses}, indent=1) + "\n")


def time_tiers(names: list[str]) -> None:
    """Run each named tier once and keep its wall time and pytest's counts."""
    path = RESULTS / "tiers.json"
    kept = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TIERS[name]]
        print(f"tier {name}: {' '.join(args[1:])}", file=sys.stderr, flush=True)
        started = time.monotonic()
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        minutes = (time.monotonic() - started) / 60
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", last)}
        if proc.returncode != 0:
            raise SystemExit(f"tier {name} failed (exit {proc.returncode}): {last}; nothing written")
        kept[name] = {"measured": _now(), "machine": _machine(), "wall_min": round(minutes, 1), **counts,
                      "command": "python -m pytest " + " ".join(f'"{a}"' if " " in a else a for a in TIERS[name])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept, indent=1) + "\n")


def scores(statuses: dict[str, dict[str, str]], equivalent: dict[str, str]) -> list[dict[str, object]]:
    """Per module: killed, survived (no fast test failed; 'no tests' and timeouts counted apart),
    equivalent, and the share of non-equivalent mutants killed."""
    rows = []
    for module, by_key in statuses.items():
        count = Counter("equivalent" if key in equivalent else status for key, status in by_key.items())
        killed = count["killed"] + count["timeout"]  # a mutant that makes the tests hang is caught by the timeout
        counted = sum(count.values()) - count["equivalent"] - count["not checked"]
        rows.append({"module": module, "mutants": sum(count.values()), "killed": killed,
                     "survived": count["survived"], "no tests": count["no tests"],
                     "equivalent": count["equivalent"], "not checked": count["not checked"],
                     "score": killed / counted if counted else float("nan")})
    return rows


def _block(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name} -->", f"<!-- end {name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"the page has no block '{start}' ... '{end}'")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n<!-- generated by scripts/mutation_report.py; do not edit -->\n{body}{end}{tail}"


def write() -> None:
    """Render the kept results into docs/testing.md and the README's tier line."""
    page, readme = PAGE.read_text(), README.read_text()
    tiers_path, mutation_path = RESULTS / "tiers.json", RESULTS / "mutation.json"
    if tiers_path.is_file():
        tiers = json.loads(tiers_path.read_text())
        lines = ["", "| tier | command | tests | wall time | measured |", "|---|---|---|---|---|"]
        for name, t in tiers.items():
            lines.append(f"| {name} | `{t['command']}` | {t.get('passed', 0)} passed, {t.get('skipped', 0)} skipped "
                         f"| {t['wall_min']} min | {t['measured']}; {t['machine']} |")
        page = _block(page, "tiers", "\n".join(lines) + "\n\n")
        spans = ", ".join(f"{name} {t['wall_min']} min" for name, t in tiers.items())
        readme = _block(readme, "tiers", f"  Measured run times: {spans} (docs/testing.md).\n")
    if mutation_path.is_file():
        kept = json.loads(mutation_path.read_text())
        equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.is_file() else {}
        flat = {key for by_key in kept["statuses"].values() for key in by_key}
        stale = sorted(set(equivalent) - flat)
        rows = scores(kept["statuses"], equivalent)
        lines = ["", f"{kept['tool']} on {kept['machine']}; runs (a later run re-tests the mutants it names, "
                 "the others keep their outcome):", "",
                 *[f"- {r['measured']}, {r['wall_min']} min{' (stopped at its time budget)' if r.get('stopped') else ''}"
                   f": `{r['command']}`" for r in kept["runs"]], "",
                 "Score = killed / (mutants - equivalent - not checked); a mutant no fast test reaches "
                 f"('no tests') counts as not killed; 'not checked' mutants were never run. Target: {TARGET:.0%} "
                 "in each module.", "",
                 "| module | mutants | killed | survived | no tests | equivalent | not checked | score |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            score = "no mutants" if r["mutants"] == 0 else "none run" if r["score"] != r["score"] else \
                f"{r['score']:.1%}" + ("" if r["score"] >= TARGET else " (below target)")
            lines.append(f"| {r['module']} | {r['mutants']} | {r['killed']} | {r['survived']} | {r['no tests']} "
                         f"| {r['equivalent']} | {r['not checked']} | {score} |")
        lines += ["", "Equivalent mutants (no input can tell them from the original), with the reason:", ""]
        lines += [f"- `{key}`: {reason}" for key, reason in sorted(equivalent.items()) if key in flat] or ["- none"]
        if stale:
            lines += ["", "Listed as equivalent but no longer generated (the code changed): "
                      + ", ".join(f"`{k}`" for k in stale)]
        survivors = sorted(k for by_key in kept["statuses"].values() for k, s in by_key.items()
                           if s in ("survived", "no tests") and k not in equivalent)
        lines += ["", f"<details><summary>{len(survivors)} mutants not killed</summary>", "",
                  *[f"- `{k}`" for k in survivors], "", "</details>", ""]
        page = _block(page, "mutation", "\n".join(lines) + "\n")
    PAGE.write_text(page)
    README.write_text(readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("mutate", help="mutmut run, then write")
    run.add_argument("--max-children", type=int, default=2)
    run.add_argument("--minutes", type=float, default=None, help="stop mutmut after this many minutes")
    run.add_argument("patterns", nargs="*", metavar="PATTERN", help="only these mutants (fnmatch), e.g. 'horizon_zoo.data.*'")
    tiers = sub.add_parser("tiers", help="time pytest tiers, then write")
    tiers.add_argument("--tiers", default="fast,default", help=f"comma-separated, of: {', '.join(TIERS)}")
    sub.add_parser("write", help="render the kept results")
    args = parser.parse_args(argv)
    if args.action == "mutate":
        mutate(args.max_children, args.patterns, args.minutes)
    elif args.action == "tiers":
        names = [t.strip() for t in args.tiers.split(",")]
        unknown = [n for n in names if n not in TIERS]
        if unknown:
            parser.error(f"unknown tier(s) {unknown}; choose from {list(TIERS)}")
        time_tiers(names)
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
