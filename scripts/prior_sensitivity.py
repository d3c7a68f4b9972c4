"""How much the agent-intercept prior moves the headline numbers (issue 37, item 3).

    .venv/bin/python scripts/prior_sensitivity.py --name metr-early \\
        --runs ../shared/data/metr-early/all_runs.jsonl \\
        --release-dates ../shared/data/metr-early/release_dates.yaml --out runs/prior-sensitivity-metr-early

Every zoo model whose agent intercept (``alpha`` or ``ability``) has the prior ``normal(0, 2.5)``
is fitted twice to the same runs with the same seed: as it is, and with that prior widened to
``normal(0, --scale)`` (a copy of the program, ``<model>_wide``, written under ``--out``). One
``horizons`` run fits them all; this script then writes ``docs/prior-sensitivity/<name>.md``:
per model, the doubling time of p50 and the p50 of the weakest and the strongest agent under
each prior, and how far the wide prior moves them in units of the posterior's own interval.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from horizon_zoo.cli import main as horizon_zoo
from horizon_zoo.horizons import format_minutes
from horizon_zoo.registry import discover, resolve
from horizon_zoo.rundir import atomic_write_text, markdown_table
from horizon_zoo.trend import months_text

REPO = Path(__file__).resolve().parents[1]
PRIOR = "normal(0, 2.5)"
INTERCEPT = re.compile(r"^\s*(alpha|ability)\b[^;\n]*~ normal\(0, 2\.5\);", re.MULTILINE)


def models_with_the_prior() -> list[str]:
    """Zoo models whose agent intercept has the prior this study widens."""
    return [name for name, model in discover().items() if INTERCEPT.search(model.program)]


def wide_variant(name: str, scale: float, directory: Path) -> Path:
    """A copy of zoo model ``name`` named ``<name>_wide`` whose ``normal(0, 2.5)`` (the intercept's
    prior, in the program and its header) reads ``normal(0, scale)``."""
    model = resolve(name)
    code = model.code.replace(f"name: {name}\n", f"name: {name}_wide\n", 1)
    if code.count(PRIOR) != 2:  # the header's statement and the program's: nothing else may change
        raise SystemExit(f"{name}: expected '{PRIOR}' twice (header and program), found {code.count(PRIOR)}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}_wide.stan"
    atomic_write_text(path, code.replace(PRIOR, f"normal(0, {scale:g})"))
    return path


def p50_tables(tables: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The horizons run's p50 rows of the marginal curve: (horizons, doubling times)."""
    frames = []
    for stem in ("horizons", "doubling"):
        frame = pd.read_csv(tables / f"{stem}.csv")
        frames.append(frame[(frame["curve"] == "marginal") & np.isclose(frame["q"], 0.5)])
    return frames[0], frames[1]


def sensitivity_table(tables: Path, models: list[str], scale: float) -> pd.DataFrame:
    """Per model and prior: p50 doubling time, and the weakest and the strongest agent's p50
    (agents ranked by the default prior's median)."""
    horizons, doubling = p50_tables(tables)
    rows = []
    for name in models:
        base = horizons[horizons["model"] == name].sort_values("median_min")
        if base.empty:
            continue
        ends = {"weakest": base.iloc[0]["agent"], "strongest": base.iloc[-1]["agent"]}
        for variant, prior in ((name, PRIOR), (f"{name}_wide", f"normal(0, {scale:g})")):
            row: dict[str, object] = {"model": name, "intercept prior": prior}
            d = doubling[doubling["model"] == variant]
            row["p50 doubling, months"] = (months_text(*d.iloc[0][["doubling_months", "lo95_months", "hi95_months"]])
                                           if not d.empty else "no trend")
            h = horizons[horizons["model"] == variant].set_index("agent")
            for end, agent in ends.items():
                r = h.loc[agent] if agent in h.index else None
                row[f"{end} agent"] = agent
                row[f"{end} p50"] = (f"{format_minutes(r['median_min'])} [{format_minutes(r['lo95_min'])}, "
                                     f"{format_minutes(r['hi95_min'])}]" if r is not None else "")
            rows.append(row)
    return pd.DataFrame(rows)


def shifts(tables: Path, models: list[str]) -> pd.DataFrame:
    """For each model: how far the wide prior moves the p50 doubling time and each agent's p50
    median, in log scale, as a share of the default prior's 95% interval width (log scale)."""
    horizons, doubling = p50_tables(tables)
    doubling = doubling.set_index("model")
    rows = []
    for name in models:
        base = horizons[horizons["model"] == name].set_index("agent")
        wide = horizons[horizons["model"] == f"{name}_wide"].set_index("agent")
        agents = base.index.intersection(wide.index)
        if agents.empty:
            continue
        log = np.log
        width = (log(base.loc[agents, "hi95_min"]) - log(base.loc[agents, "lo95_min"])).replace(0, np.nan)
        moved = (log(wide.loc[agents, "median_min"]) - log(base.loc[agents, "median_min"])).abs() / width
        row = {"model": name, "agents": len(agents),
               "largest p50 shift / interval": float(np.nanmax(moved)) if moved.notna().any() else np.nan,
               "agent moved most": str(moved.idxmax()) if moved.notna().any() else ""}
        if name in doubling.index and f"{name}_wide" in doubling.index:
            b, w = doubling.loc[name], doubling.loc[f"{name}_wide"]
            span = log(b["hi95_months"]) - log(b["lo95_months"])
            row["doubling shift / interval"] = (abs(log(w["doubling_months"]) - log(b["doubling_months"])) / span
                                                if np.isfinite(span) and span > 0 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def page(name: str, command: str, run_dir: Path, models: list[str], scale: float) -> str:
    tables = run_dir / "tables"
    return "\n".join([
        f"# Prior sensitivity of the agent intercepts: {name}", "",
        f"Generated by `{command}` (do not edit). Each model below is fitted with its agent "
        f"intercept's prior as in the zoo, `{PRIOR}` on the logit at the centre length, and with "
        f"that prior widened to `normal(0, {scale:g})` (`<model>_wide`); same runs, seed and sampler "
        f"settings (`{run_dir}/manifest.json`). p50 median [95% interval], marginal curve; the doubling "
        "time is the per-draw regression over the frontier agents that the `horizons` command picks.", "",
        markdown_table(sensitivity_table(tables, models, scale)), "",
        "How far the wide prior moves each model's numbers, as a share of the default prior's 95% "
        "interval (log scale; 0.1 = a tenth of the interval):", "",
        markdown_table(shifts(tables, models).round(3)), "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="dataset name: the page is docs/prior-sensitivity/NAME.md")
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--release-dates", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="run directory (kept: the page cites it)")
    parser.add_argument("--models", help="comma-separated (default: every model with the prior)")
    parser.add_argument("--scale", type=float, default=10.0, help="the wide prior's sd (default: 10)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--page-only", action="store_true", help="rewrite the page from an existing --out")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else models_with_the_prior()
    run_dir = args.out / "run"
    if not args.page_only:
        variants = [str(wide_variant(m, args.scale, args.out / "models")) for m in models]
        code = horizon_zoo(["horizons", "--models", ",".join([*models, *variants]), "--runs", str(args.runs),
                            "--release-dates", str(args.release_dates), "--q", "50", "--no-metr",
                            "--chains", str(args.chains), "--warmup", str(args.warmup), "--draws", str(args.draws),
                            "--out", str(run_dir)])
        if code != 0:
            sys.exit(code)
    # the command that fits (a --page-only rerun rewrites the same page from its run)
    command = "python scripts/prior_sensitivity.py " + shlex.join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--page-only")
    text = page(args.name, command, run_dir, models, args.scale)
    print(text)
    target = REPO / "docs" / "prior-sensitivity" / f"{args.name}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
