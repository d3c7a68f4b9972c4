"""Markdown tables of a comparison run for the docs: LOO with diagnostics, and residual checks.

    .venv/bin/python scripts/results_table.py RUN_DIR [--checks CHECK_RUN_DIR]

RUN_DIR is a ``horizon-zoo compare`` run directory; checks are read from its tables or from a
separate ``horizon-zoo check`` run directory. Prints the tables ``stan_models/README.md`` shows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from horizon_zoo.rundir import markdown_table


def loo_with_diagnostics(run_dir: Path) -> pd.DataFrame:
    loo = pd.read_csv(run_dir / "tables" / "loo.csv")
    diag = pd.read_csv(run_dir / "tables" / "diagnostics.csv").set_index("model")
    rows = []
    for r in loo.itertuples():
        d = diag.loc[r.model]
        # the model's header may raise adapt_delta above the run's; the fit records what was used
        settings = json.loads((run_dir / "fits" / f"{r.model}.json").read_text())["settings"]
        rows.append({
            "model": r.model, "elpd_loo (SE)": f"{r.elpd_loo:.0f} ({r.se:.0f})",
            "elpd_diff (dSE)": "0" if r.elpd_diff == 0 else f"{r.elpd_diff:.0f} ({r.dse:.0f})",
            "p_loo": f"{r.p_loo:.0f}", "Pareto k > 0.7": int(r.n_high_k),
            "max R-hat": f"{d.max_rhat:.3f}", "min bulk ESS": f"{d.min_ess_bulk:.0f}",
            "divergences": int(d.divergences), "adapt_delta": settings["adapt_delta"],
            "sampling (s)": f"{d.sample_s:.0f}",
        })
    return pd.DataFrame(rows)


def residual_checks(check_dir: Path, order: list[str]) -> pd.DataFrame:
    rows = []
    for name in order:
        path = check_dir / "tables" / f"checks_{name}.csv"
        if not path.is_file():
            continue
        t = pd.read_csv(path).set_index("statistic")
        row = {"model": name}
        for stat, label in (("agent residual eigen share", "agent eigen share"),
                            ("task block (within - between family)", "task block")):
            s = t.loc[stat]
            row[f"{label}: observed"] = f"{s.observed:.2f}"
            row[f"{label}: replicated [95%]"] = f"{s.replicated_median:.2f} [{s.lo95:.2f}, {s.hi95:.2f}]"
            row[f"{label}: p"] = f"{s.p_value:.3f}" + (" *" if s.flagged else "")
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checks", type=Path, help="a 'horizon-zoo check' run directory (default: RUN_DIR)")
    args = parser.parse_args()
    table = loo_with_diagnostics(args.run_dir)
    print(markdown_table(table))
    checks = residual_checks(args.checks or args.run_dir, list(table["model"]))
    if not checks.empty:
        print(markdown_table(checks))


if __name__ == "__main__":
    main()
