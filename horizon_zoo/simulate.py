"""Simulated run data: the embedded default dataset, and data drawn from any zoo model.

The default dataset (:func:`default_runs`) is METR-like and generated from a documented model
with a fixed seed, so ``horizon-zoo compare`` with no arguments is reproducible everywhere:

* 12 agents released between 2019-02 and 2025-06 (:data:`DEFAULT_RELEASE_DATES`); the agent's
  50% horizon doubles every :data:`DOUBLING_MONTHS` months from 6 seconds at the first release
  (``log2 h50 = log2(0.1) + months / 7``).
* 150 tasks in 40 families. Family centres are log-uniform between 1 second and 16 hours, tasks
  scatter around their family centre with sd 1 doubling (clipped to that range).
* Success: ``logit p = beta_a * (log2 minutes - log2 h50_a) + family effect + task effect`` with
  ``beta_a ~ normal(-0.75, 0.1)``, family effects ``normal(0, 0.5)`` and task effects
  ``normal(0, 0.6)`` on the logit scale, so the data contain the task-level correlation that
  hierarchical models are meant to find.
* 4 runs of every agent on every task (7,200 runs), with METR's equal and inverse-sqrt task
  weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from horizon_zoo.backends import SamplerSettings, sample
from horizon_zoo.contract import stan_data
from horizon_zoo.data import RunData
from horizon_zoo.registry import ZooModel

DEFAULT_SEED = 20250319
DOUBLING_MONTHS = 7.0
DEFAULT_RELEASE_DATES = {
    "sim-2019-02": "2019-02-14", "sim-2019-11": "2019-11-05", "sim-2020-05": "2020-05-28",
    "sim-2022-03": "2022-03-15", "sim-2023-03": "2023-03-14", "sim-2023-11": "2023-11-06",
    "sim-2024-03": "2024-03-04", "sim-2024-06": "2024-06-20", "sim-2024-09": "2024-09-12",
    "sim-2024-12": "2024-12-05", "sim-2025-02": "2025-02-24", "sim-2025-06": "2025-06-05",
}
N_TASKS, N_FAMILIES, RUNS_PER_CELL = 150, 40, 4
MIN_MINUTES, MAX_MINUTES = 1.0 / 60.0, 16.0 * 60.0
FIRST_H50_MINUTES = 0.1
SLOPE_MEAN, SLOPE_SD, FAMILY_SD, TASK_SD = -0.75, 0.1, 0.5, 0.6


def true_log2_h50(release: str) -> float:
    """The default dataset's true log2 50% horizon (before task effects) for a release date."""
    first = date.fromisoformat(min(DEFAULT_RELEASE_DATES.values()))
    months = (date.fromisoformat(release) - first).days / (365.25 / 12)
    return float(np.log2(FIRST_H50_MINUTES) + months / DOUBLING_MONTHS)


def default_release_dates() -> dict[str, date]:
    """Release dates of the default dataset's agents."""
    return {agent: date.fromisoformat(d) for agent, d in DEFAULT_RELEASE_DATES.items()}


def default_runs(seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The embedded METR-like default dataset as a run table in METR's format."""
    return synthetic_runs(DEFAULT_RELEASE_DATES, N_TASKS, N_FAMILIES, RUNS_PER_CELL, seed)


def synthetic_runs(release_dates: dict[str, str], n_tasks: int, n_families: int, runs_per_cell: int,
                   seed: int) -> pd.DataFrame:
    """Runs from the default dataset's generating model (module docstring) for any agents (name ->
    ISO release date, which sets the true 50% horizon), number of tasks, families and runs per cell.
    The benchmark's 160,000-run scale-up uses it with 40 agents x 500 tasks x 8 runs."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log2(MIN_MINUTES), np.log2(MAX_MINUTES)
    family_centre = rng.uniform(lo, hi, n_families)
    family_of_task = np.concatenate([np.arange(n_families), rng.integers(0, n_families, n_tasks - n_families)])
    log2_minutes = np.clip(family_centre[family_of_task] + rng.normal(0, 1.0, n_tasks), lo, hi)
    family_effect = rng.normal(0, FAMILY_SD, n_families)
    task_effect = rng.normal(0, TASK_SD, n_tasks)
    agents = list(release_dates)
    slopes = rng.normal(SLOPE_MEAN, SLOPE_SD, len(agents))
    family_size = np.bincount(family_of_task, minlength=n_families)
    invsqrt = 1 / np.sqrt(family_size[family_of_task])
    invsqrt = invsqrt / invsqrt.sum()
    digits = max(3, len(str(n_tasks - 1)))  # task numbers sort as text, as in the default data
    rows = []
    for a, agent in enumerate(agents):
        h = true_log2_h50(release_dates[agent])
        logit = slopes[a] * (log2_minutes - h) + family_effect[family_of_task] + task_effect
        p = 1 / (1 + np.exp(-logit))
        success = rng.random((n_tasks, runs_per_cell)) < p[:, None]
        for t in range(n_tasks):
            minutes = float(2.0 ** log2_minutes[t])
            source = "short" if minutes < 1 else "medium" if minutes < 60 else "long"
            task = f"fam{family_of_task[t]:02d}/task{t:0{digits}d}"
            for r in range(runs_per_cell):
                rows.append({
                    "run_id": f"{agent}/t{t:0{digits}d}/{r}",
                    "task_id": task,
                    "task_family": f"fam{family_of_task[t]:02d}",
                    "task_source": source,
                    "alias": agent,
                    "human_minutes": minutes,
                    "human_source": "baseline",
                    "score_binarized": int(success[t, r]),
                    "equal_task_weight": 1.0 / (n_tasks * runs_per_cell),
                    "invsqrt_task_weight": float(invsqrt[t]) / runs_per_cell,
                })
    return pd.DataFrame(rows)


def with_successes(run_data: RunData, n_success: np.ndarray, source: str) -> RunData:
    """The same design (agents, tasks, runs per cell) with new success counts per cell."""
    n_success = np.asarray(n_success, dtype=int)
    cells = run_data.cells.assign(n_success=n_success)
    tasks = run_data.tasks.set_index("task_id")
    rows = []
    for cell in cells.itertuples(index=False):
        task = tasks.loc[cell.task_id]
        for r in range(cell.n_runs):
            rows.append({"run_id": f"{cell.agent}/{cell.task_id}/{r}", "agent": cell.agent,
                         "task_id": cell.task_id, "task_family": task["task_family"],
                         "task_source": task["task_source"], "human_source": task["human_source"],
                         "human_minutes": task["human_minutes"], "success": int(r < cell.n_success),
                         "weight": cell.weight})
    return replace(run_data, runs=pd.DataFrame(rows), cells=cells, source=source, warnings=())


def runs_table(run_data: RunData) -> pd.DataFrame:
    """Runs in METR's file format (the columns :func:`horizon_zoo.data.load_runs` reads)."""
    runs = run_data.runs.rename(columns={"agent": "alias", "success": "score_binarized"})
    columns = ["run_id", "task_id", "task_family", "task_source", "alias", "human_minutes",
               "human_source", "score_binarized"]
    return runs[columns]


def simulate_at(
    model: ZooModel,
    design: RunData,
    values: dict[str, Any],
    *,
    seed: int,
    backend: str = "auto",
    progress: bool = False,
) -> RunData:
    """Simulate successes on ``design`` from ``model`` at given parameter values.

    ``values`` maps every parameter of the program to a number or a list of the parameter's
    shape (agents in the design's order). Runs Stan's fixed-parameter sampler, so the data come
    from the program's own ``y_rep``.
    """
    missing = sorted(set(model.info.get("parameters", {})) - set(values))
    if missing:
        from horizon_zoo.errors import HorizonZooError

        raise HorizonZooError(f"--values must give every parameter of {model.name}; missing {', '.join(missing)}.")
    data = stan_data(design)
    settings = SamplerSettings(chains=1, warmup=0, draws=1, seed=seed)
    draws = sample(model, data, settings, backend=backend, inits=[values], fixed_param=True, progress=progress)
    return with_successes(design, draws.variables["y_rep"][0, 0], f"{model.name} at given values (seed {seed})")


def draw_from_prior(
    model: ZooModel,
    design: RunData,
    *,
    seed: int,
    backend: str = "auto",
    progress: bool = False,
    extra: Sequence[str] = (),
) -> tuple[dict[str, Any], RunData]:
    """Draw parameters from the model's prior and data from its likelihood, on ``design``.

    Uses the same Stan program: with every cell weight 0 the posterior is the prior, and the
    program's ``y_rep`` is then a prior predictive draw.  Returns the true parameter values
    (one prior draw), plus the ``extra`` generated quantities of that draw (e.g. ``p_curve``),
    and the simulated runs.
    """
    data = stan_data(design)
    data["weight"] = np.zeros(data["N"])
    settings = SamplerSettings(chains=1, warmup=300, draws=100, seed=seed)
    draws = sample(model, data, settings, backend=backend, progress=progress)
    pick = -1
    truth = {name: draws.variables[name][0, pick] for name in [*model.info.get("parameters", {}), *extra]}
    y = draws.variables["y_rep"][0, pick]
    return truth, with_successes(design, y, f"prior draw of {model.name} (seed {seed})")
