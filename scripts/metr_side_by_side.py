"""METR's reference next to the zoo's posteriors on one dataset, for docs/metr-reference/.

    .venv/bin/python scripts/metr_side_by_side.py --name cyber-horizons \\
        --runs ../shared/data/cyber-horizons/all_runs.jsonl --weights weight \\
        --release-dates ../shared/data/cyber-horizons/release_dates.yaml --run-dir runs/cyber-cv

``--run-dir`` is a kept ``compare`` run directory (its ``tables/horizons.csv`` and ``loo.csv``);
METR's pipeline (horizon_zoo.metr) is run here three ways on the same runs: as METR publishes it
(``--weights`` as given or computed per agent, penalty 0.1), without the penalty, and without
weights or penalty (the maximum-likelihood fit the unweighted ``logistic`` posterior is centred
on). Writes ``docs/metr-reference/<name>.md``: p50 and p80 side by side with ``logistic`` and the
best model by PSIS-LOO, and the sentences that say where they differ, all computed here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from horizon_zoo import api
from horizon_zoo.horizons import format_reference_minutes
from horizon_zoo.metr import DEFAULT_REGULARIZATION, reference
from horizon_zoo.rundir import atomic_write_text, markdown_table

REPO = Path(__file__).resolve().parents[1]


def _text(m: float, lo: float, hi: float) -> str:
    """Within the bounds the posterior columns print ("< 1 s", "> 30 days")."""
    return f"{format_reference_minutes(m)} [{format_reference_minutes(lo)}, {format_reference_minutes(hi)}]"


def side_by_side(runs: Path, weights: str, run_dir: Path, release_dates: Path | None, n_boot: int
                 ) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    data = api.load(runs, weights=weights, release_dates=release_dates)
    published = reference(data, [0.5, 0.8], weights=weights, n_boot=n_boot, release_dates=data.release_dates)
    unpenalised = reference(data, [0.5, 0.8], weights=weights, regularization=0.0, n_boot=0)
    mle = reference(data, [0.5, 0.8], weights=None, regularization=0.0, n_boot=0)
    posterior = pd.read_csv(run_dir / "tables" / "horizons.csv")
    posterior = posterior[posterior["curve"] == "marginal"]
    best = str(pd.read_csv(run_dir / "tables" / "loo.csv").iloc[0]["model"])
    models = ["logistic"] + ([best] if best != "logistic" else [])
    unpenalised_min = unpenalised.table.set_index(["agent", "q"])["horizon_min"]
    mle_min = mle.table.set_index(["agent", "q"])["horizon_min"]
    rows = []
    for (agent, q), m in published.table.set_index(["agent", "q"]).iterrows():
        row = {"agent": agent, "q": q, "METR (published settings)": _text(m.horizon_min, m.lo95_min, m.hi95_min),
               "METR unpenalised": format_reference_minutes(unpenalised_min.loc[(agent, q)]),
               "ML, unweighted": format_reference_minutes(mle_min.loc[(agent, q)])}
        for model in models:
            p = posterior[(posterior["model"] == model) & (posterior["agent"] == agent) & (posterior["q"] == q)]
            row[f"{model} posterior"] = p["horizon"].iloc[0] if len(p) else "n/a"
        rows.append(row)
    table = pd.DataFrame(rows)
    # METR's fit extrapolates an agent's p50 below the shortest task when it fails nearly all of
    # them; such points enter METR's frontier regression like any other, so the doubling time is
    # also given without them.
    shortest = float(data.runs["human_minutes"].min())
    p50 = published.table[published.table["q"] == 0.5].set_index("agent")["horizon_min"]
    below = [a for a in data.agents if a in p50.index and p50[a] < shortest]
    sentences = _sentences(published, unpenalised, posterior, data.agents)
    restricted = ""
    if below:
        sentences.insert(0, f"p50: METR's estimate lies below the shortest task ({format_reference_minutes(shortest)}) "
                            f"for {', '.join(below)}: an extrapolation of the fitted curve, not a measurement.")
        if data.release_dates and not published.doubling.empty:
            kept = {a: d for a, d in data.release_dates.items() if a not in below}
            without = reference(data, [0.5], weights=weights, n_boot=n_boot, release_dates=kept).doubling
            if not without.empty:
                restricted = _doubling_text(without.iloc[0])
    return table, sentences, {"restricted_doubling": restricted, "below": ", ".join(below),
        "best": best, "weights": str(published.settings["weights"]), "n_boot": str(n_boot),
        "doubling": "" if published.doubling.empty else _doubling_text(published.doubling.iloc[0])}


def _doubling_text(row: pd.Series) -> str:
    """A row of METR's doubling table as ``m months [lo, hi] over agents``."""
    return f"{row['months']:.1f} months [{row['lo95_months']:.1f}, {row['hi95_months']:.1f}] over {row['agents']}"


def _sentences(published, unpenalised, posterior: pd.DataFrame, agents: tuple[str, ...]) -> list[str]:
    out = []
    pub = published.table.set_index(["agent", "q"])
    unp = unpenalised.table.set_index(["agent", "q"])
    logistic = posterior[posterior["model"] == "logistic"].set_index(["agent", "q"])
    for q in (0.5, 0.8):
        keys = [(a, q) for a in agents if (a, q) in pub.index and 0 < pub.loc[(a, q), "horizon_min"] < np.inf
                and 0 < unp.loc[(a, q), "horizon_min"] < np.inf]
        ratio = np.array([pub.loc[k, "horizon_min"] / unp.loc[k, "horizon_min"] for k in keys])
        if ratio.size:
            out.append(f"p{round(q * 100)}: METR's penalty multiplies the unpenalised horizon by "
                       f"{np.min(ratio):.2f} to {np.max(ratio):.2f} (median {np.median(ratio):.2f}) across "
                       f"{ratio.size} agents.")
        widths = []
        outside = []
        for k in keys:
            if k not in logistic.index:
                continue
            b_lo, b_hi = pub.loc[k, "lo95_min"], pub.loc[k, "hi95_min"]
            l_lo, l_hi = logistic.loc[k, "lo95_min"], logistic.loc[k, "hi95_min"]
            if min(b_lo, l_lo) > 0 and max(b_hi, l_hi) < np.inf:
                widths.append(np.log2(b_hi / b_lo) / np.log2(l_hi / l_lo))
            if not l_lo <= pub.loc[k, "horizon_min"] <= l_hi:
                outside.append(k[0])
        if widths:
            w = np.array(widths)
            out.append(f"p{round(q * 100)}: the bootstrap's 95% interval is {np.median(w):.1f} times as wide as "
                       f"logistic's posterior interval (median over {w.size} agents, in log2 minutes; wider for "
                       f"{int(np.sum(w > 1))}).")
        out.append(f"p{round(q * 100)}: METR's estimate lies outside logistic's 95% posterior interval for "
                   + (", ".join(outside) if outside else "no agent") + ".")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="dataset name: docs/metr-reference/<name>.md")
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--weights", required=True, help="METR's weights: equal, invsqrt or a column")
    parser.add_argument("--run-dir", type=Path, required=True, help="a kept compare run directory")
    parser.add_argument("--release-dates", type=Path)
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args(argv)
    table, sentences, info = side_by_side(args.runs, args.weights, args.run_dir, args.release_dates, args.boot)
    command = "scripts/metr_side_by_side.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"# METR's reference beside the posteriors: {args.name}", "",
             f"Generated by `.venv/bin/python {command}` (do not edit). METR's pipeline (`horizon_zoo.metr`) "
             f"with weights `{info['weights']}` and penalty {DEFAULT_REGULARIZATION} as METR publishes it, "
             f"{info['n_boot']} hierarchical bootstrap resamples; the same fit unpenalised; the unweighted "
             "maximum-likelihood fit; and the marginal posterior horizons (median [95%]) of `logistic` and of "
             f"the best model by PSIS-LOO, `{info['best']}`, from the kept run `{args.run_dir.name}` "
             "(unweighted fits).", ""]
    if info["doubling"]:
        lines += [f"METR's doubling time of p50 (frontier, bootstrap 95%): {info['doubling']}.", ""]
    if info["restricted_doubling"]:
        lines += [f"The same without the agents whose p50 is extrapolated below the shortest task "
                  f"({info['below']}): {info['restricted_doubling']}.", ""]
    lines += [*[f"- {s}" for s in sentences], ""]
    for q in (0.5, 0.8):
        lines += [f"## p{round(q * 100)}", "", markdown_table(table[table["q"] == q].drop(columns="q"))]
    out = REPO / "docs" / "metr-reference" / f"{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
