"""Prior predictive check: success curves drawn from each zoo model's prior.

Samples every model with all cell weights 0 (so the posterior is the prior) on the design of
the embedded default dataset (all agents, 12 tasks), and draws 40 prior `p_curve`s of the first agent per model.
Writes docs/prior_predictive.png (or --output).

    .venv/bin/python scripts/prior_predictive.py [--models a,b] [--output docs/prior_predictive.png]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from horizon_zoo.api import load, select_models
from horizon_zoo.backends import SamplerSettings, sample
from horizon_zoo.contract import stan_data
from horizon_zoo.simulate import default_runs

TICKS = {"1 s": 1 / 60, "1 min": 1, "1 h": 60, "1 day": 1440, "1 month": 43200}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated model names (default: the whole zoo)")
    parser.add_argument("--output", type=Path, default=Path("docs/prior_predictive.png"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    models = select_models(args.models.split(",") if args.models else None)
    # The prior does not depend on the cells, but every gradient evaluates all of them (weight 0),
    # so a slice of the default design (all agents, 12 tasks) keeps this to seconds per model.
    full = load(None)
    data = stan_data(load(default_runs()[lambda r: r["task_id"].isin(sorted(full.tasks["task_id"])[:12])],
                          release_dates=full.release_dates))
    data["weight"] = np.zeros(data["N"])
    minutes = np.exp(data["log_minutes_grid"])
    cols = 4
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, model in zip(axes.flat, models, strict=False):
        draws = sample(model, data, SamplerSettings(chains=1, warmup=300, draws=200, seed=args.seed), progress=False)
        curves = draws.variables["p_curve"][0, ::5, 0, :]  # 40 draws, first agent
        ax.plot(minutes, curves.T, color="tab:blue", alpha=0.3, lw=0.8)
        ax.plot(minutes, np.median(draws.variables["p_curve"][0, :, 0, :], axis=0), color="black", lw=1.5)
        ax.set_title(model.name, fontsize=10)
        ax.set_xscale("log")
        ax.set_xticks(list(TICKS.values()), list(TICKS), fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        print(f"{model.name}: prior median p at 1 min {np.median(curves[:, np.searchsorted(minutes, 1)]):.2f}, "
              f"at 1 h {np.median(curves[:, np.searchsorted(minutes, 60)]):.2f}")
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("P(success)")
    for ax in axes[-1, :]:
        ax.set_xlabel("human task length")
    fig.suptitle("Prior predictive success curves (40 prior draws each, median in black)")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
