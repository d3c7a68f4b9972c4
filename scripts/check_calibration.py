"""Are the residual-structure checks calibrated? Simulate from fitted models and look at the p-values.

    .venv/bin/python scripts/check_calibration.py \\
        --runs ../shared/data/metr-early/all_runs.jsonl \\
        --models logistic_task_effects,agent_family_interaction --sims 20 --folds 5 --jobs 2

Each model is fitted to the run file (``--source-*`` settings); the replicated data of ``--sims``
random posterior draws are the simulated datasets (the real design, the model's own parameters).
On each, the task-block and agent-eigen-share checks are run in-sample and cross-validated
(``horizon_zoo.check_calibration``). Writes into ``--out`` (default ``docs/check-calibration``):
``p_values.csv`` (one row per simulation, statistic and kind), ``uniformity.csv`` and ``.md``
(Kolmogorov-Smirnov test against uniform, share flagged, mean p), ``histograms.png`` and
``study.json`` (settings, versions, date), and the page ``docs/check-calibration.md`` around them
(with the default ``--out``). Every fit is cached, so running the same command again
rebuilds the outputs from the cache in a minute.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from horizon_zoo import __version__, api
from horizon_zoo.backends import SamplerSettings, resolve_backend
from horizon_zoo.check_calibration import plot_p_value_histograms, study_models, uniformity_table
from horizon_zoo.plots import save_figure
from horizon_zoo.rundir import atomic_write_text, markdown_table

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="METR-format run file (the design and the source fit)")
    parser.add_argument("--models", default="logistic_task_effects,agent_family_interaction")
    parser.add_argument("--sims", type=int, default=20, help="simulated datasets per model")
    parser.add_argument("--folds", type=int, default=5, help="folds per CV scheme")
    parser.add_argument("--chains", type=int, default=2, help="chains of each simulation's fits")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--source-chains", type=int, default=4, help="chains of the fit that generates the data")
    parser.add_argument("--source-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20250319)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "check-calibration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("horizon_zoo").setLevel(logging.INFO)

    data = api.load(args.runs)
    models = api.select_models(args.models.split(","))
    settings = SamplerSettings(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed)
    source = SamplerSettings(chains=args.source_chains, draws=args.source_draws, seed=args.seed)
    started = time.perf_counter()
    rows = study_models(models, data, source_settings=source, sims=args.sims, folds=args.folds, settings=settings,
                        backend=args.backend, jobs=args.jobs, seed=args.seed)
    uniform = uniformity_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "p_values.csv", index=False)
    uniform.to_csv(args.out / "uniformity.csv", index=False)
    atomic_write_text(args.out / "uniformity.md", markdown_table(uniform.round(3)) + "\n")
    save_figure(plot_p_value_histograms(rows), args.out / "histograms.png")
    study = {"runs": str(args.runs), "models": [m.name for m in models], "sims": args.sims, "folds": args.folds,
             "settings": settings.as_dict(), "source_settings": source.as_dict(),
             "backend": resolve_backend(args.backend), "horizon_zoo": __version__,
             "date": datetime.now(UTC).strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - started)}
    atomic_write_text(args.out / "study.json", json.dumps(study, indent=2) + "\n")
    if args.out == REPO / "docs" / "check-calibration":
        command = "scripts/check_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
        atomic_write_text(REPO / "docs" / "check-calibration.md", page(uniform, study, command))
    print(markdown_table(uniform.round(3)))
    return 0


MEANING = [
    "What the shapes mean for reading a check on real data:",
    "",
    "- *uniform*: the p-value means what it says.",
    "- *conservative* (bunched in the middle): under the model, values outside [0.025, 0.975] are "
    "rarer than 5%, so a flagged model really leaves structure it cannot reproduce, while an "
    "unflagged one is only weakly cleared. Posterior predictive p-values are conservative whenever "
    "the posterior is uncertain, because the replicates carry that uncertainty and the data do not "
    "(Meng 1994; Bayarri and Berger 2000); here the truth of each simulation is one posterior draw.",
    "- *pinned high*: the check cannot flag that model on its own data at all (it absorbed the "
    "structure it is asked about), so its value says nothing about the model.",
]


def reading(uniform: pd.DataFrame) -> list[str]:
    """One line per (model, statistic): what the two kinds of p-value did on the model's own data."""
    lines = []
    for (model, stat), t in uniform.groupby(["model", "statistic"], sort=False):
        parts = []
        for r in t.itertuples():
            parts.append(f"{r.kind}: {r.shape} (mean p {r.mean_p:.2f}, interquartile range {r.iqr_p:.2f} against "
                         f"uniform's 0.50, {r.share_flagged:.0%} flagged, range [{r.min_p:.3f}, {r.max_p:.3f}], "
                         f"KS p {r.ks_p:.3f})")
        lines.append(f"- `{model}`, {stat.replace('_', ' ')}: " + "; ".join(parts) + ".")
    return lines


def page(uniform: pd.DataFrame, study: dict, command: str) -> str:
    """docs/check-calibration.md: how the study was run, its table, figure and reading."""
    s = SamplerSettings(**study["settings"])
    return "\n".join([
        "# Are the residual-structure checks calibrated?", "",
        f"Made by `.venv/bin/python {command}` on {study['date']} (generated, do not edit; this run took "
        f"{study['seconds'] / 60:.0f} min on 2 cores; fits and folds already in the study's cache are reused). "
        f"Run file `{study['runs']}`; {study['sims']} simulated datasets per model.", "",
        "A posterior predictive p-value is evidence only if it is close to uniform on data the model itself "
        "generated. For each model: fit the run file "
        f"({study['source_settings'].get('chains', 4)} chains x {study['source_settings'].get('draws', 1000)} draws), take "
        "the replicated data `y_rep` of randomly chosen posterior draws as simulated datasets (the real design, "
        "the model's own parameters), and run both residual-structure checks on each:", "",
        "- **in-sample** (what `check` and `compare` report in their checks table): fit the simulated data, "
        "residuals against the posterior-mean prediction, replicates from the same fit;",
        f"- **cross-validated** (`compare --cv task,family`, table `checks_cv`): the task block from "
        f"leave-family-out and the agent eigen share from leave-task-out residuals, {study['folds']} folds per "
        "scheme, replicates drawn from each held-out cell's own predictive distribution.", "",
        f"Every fit of a simulation: {s.describe()} after {s.warmup} warmup, backend {study['backend']}. "
        "`ks_p` is a Kolmogorov-Smirnov test of the p-values against uniform (small: not uniform); "
        "`share_flagged` the share outside [0.025, 0.975] (5% when calibrated).", "",
        markdown_table(uniform.round(3)), "",
        "![p-value histograms](check-calibration/histograms.png)", "",
        "## Reading", "", *reading(uniform), "", *MEANING, "",
        "Per-simulation p-values: `docs/check-calibration/p_values.csv`.", ""])


if __name__ == "__main__":
    sys.exit(main())
