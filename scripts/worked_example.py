"""The README's worked example, printed from a kept compare run, so its numbers cannot drift.

    .venv/bin/python scripts/worked_example.py runs/metr-early-cv

Prints the horizons table (best model by PSIS-LOO beside the reference model, METR's estimate
beside both) and the doubling-time sentences, from the run directory's tables/ only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from horizon_zoo.rundir import markdown_table
from horizon_zoo.trend import months_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    tables = args.run_dir / "tables"
    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    best = str(pd.read_csv(tables / "loo.csv").iloc[0]["model"])
    reference = manifest.get("reference_model") or best
    wide = pd.read_csv(tables / "horizons_wide.csv")
    rows = []
    for agent in wide.loc[(wide["model"] == best) & (wide["curve"] == "marginal"), "agent"]:
        pick = {(m, c): wide[(wide["model"] == m) & (wide["agent"] == agent) & (wide["curve"] == c)]
                for m in (best, reference) for c in ("marginal", "typical task")}
        row = {"agent": agent}
        for (model, curve), r in pick.items():
            if r.empty:
                continue
            r = r.iloc[0]
            label = f"{model}" + (" (typical task)" if curve == "typical task" else "")
            row[f"{label}: p50"] = r["p50 [95% CI]"]
            row[f"{label}: p80"] = r["p80 [95% CI]"]
        metr = pick[(reference, "marginal")]
        if not metr.empty and "METR p50 [95% boot]" in metr.columns:
            row["METR: p50 [95% boot]"] = metr.iloc[0]["METR p50 [95% boot]"]
        rows.append(row)
    print(f"Run: {args.run_dir.name}; settings {manifest.get('settings')}; backend {manifest.get('backend')}.\n")
    print(markdown_table(pd.DataFrame(rows)))
    doubling = pd.read_csv(tables / "doubling.csv")
    for r in doubling[(doubling["curve"] == "marginal")].itertuples():
        if r.model in (best, reference) or r.trend == "joint":
            print(f"- {r.model}, p{round(r.q * 100)} ({r.trend}): "
                  f"{months_text(r.doubling_months, r.lo95_months, r.hi95_months)} months over {r.agents}")
    metr = tables / "metr_doubling.csv"
    if metr.is_file():
        m = pd.read_csv(metr).iloc[0]
        print(f"- METR's pipeline, p50: {months_text(m.months, m.lo95_months, m.hi95_months)} months over "
              f"{m.agents}")


if __name__ == "__main__":
    main()
