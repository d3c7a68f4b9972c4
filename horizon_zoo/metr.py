"""METR's own frequentist time-horizon pipeline, kept beside the zoo as a reference (not a Stan model).

What METR computes (its public ``eval-analysis-public`` code), and so what this module does:

* per agent, a logistic regression of run success on log2 human minutes with an intercept,
  weighted by each run's task weight and with an L2 penalty on the slope only: scikit-learn's
  ``LogisticRegression(C=1 / regularization)``, whose optimum minimises
  ``sum_i w_i logloss_i + regularization / 2 * slope^2``. METR's setting is
  ``regularization = 0.1`` (until its change of March 2026); ``0`` is the unpenalised fit;
* the weights are used as they stand: METR's pipeline makes each agent's weights sum to 1 when
  it computes them, and against weights summing to 1 the penalty is strong. Here they come from
  the run file's column as given (``--weights COLUMN``), or are computed per agent as METR's
  ``compute_task_weights`` does (``equal``: 1 / runs of the task; ``invsqrt``: that over the
  square root of the family's task count; both normalised to sum to 1 per agent); without
  ``--weights`` every run of an agent weighs 1 / its run count (unweighted, at METR's scale);
* the q-horizon ``2 ** ((logit(q) - intercept) / slope)`` minutes; an agent that fails every
  run gets 0, as in METR's code;
* intervals from METR's hierarchical bootstrap: task families resampled, then tasks within each
  sampled family, then runs within each (task, agent); an agent without both outcomes in a
  resample is skipped there; 2.5% and 97.5% ``nanquantile`` of the resampled horizons;
* the doubling time from a line of log2 p50 on release date through the frontier agents (chosen
  on the point estimates), refitted in every resample.

The fit is Newton's method on the two coefficients (the problem is strictly convex), so it
reaches the optimum that scikit-learn's solver approaches within its tolerance. The bootstrap
follows METR's scheme, not its random stream.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from horizon_zoo.data import WEIGHT_COLUMNS, RunData

log = logging.getLogger(__name__)

DEFAULT_REGULARIZATION = 0.1  # METR's C = 1 / 0.1 before its regularisation change of March 2026
DEFAULT_BOOTSTRAP = 1000
_NEWTON_TOL = 1e-12


@dataclass
class MetrReference:
    """METR's point horizons with bootstrap intervals, per agent and q, and its doubling time.

    ``table`` columns: ``agent, q, horizon_min, lo95_min, hi95_min, slope, intercept, runs,
    boot_skipped`` (share of resamples in which the agent had only one outcome); ``doubling``
    one row: ``months, lo95_months, hi95_months, agents, resamples_used``, or empty without
    release dates.
    """

    table: pd.DataFrame
    doubling: pd.DataFrame
    settings: dict[str, object]
    seconds: float
    draws: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)  # resample x agent log2 p50


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, regularization: float = DEFAULT_REGULARIZATION
                 ) -> tuple[float, float]:
    """(slope, intercept) in log2 minutes minimising ``sum w logloss + regularization / 2 slope^2``.

    Returns ``(-inf, 0)`` when every run failed (METR's convention: horizon 0) and ``(nan, nan)``
    when every run succeeded or the unpenalised problem has no finite optimum (separable data).
    """
    x, y, w = (np.asarray(v, dtype=float) for v in (x, y, w))
    if not (y > 0).any():
        return -np.inf, 0.0
    if (y == 1).all():
        return np.nan, np.nan
    beta = np.zeros(2)  # intercept, slope
    design = np.column_stack([np.ones_like(x), x])

    def objective(b: np.ndarray) -> float:
        eta = design @ b
        return float(w @ (np.logaddexp(0, eta) - y * eta) + 0.5 * regularization * b[1] ** 2)

    current = objective(beta)
    for _ in range(100):
        eta = design @ beta
        p = 1 / (1 + np.exp(-eta))
        grad = design.T @ (w * (p - y)) + np.array([0.0, regularization * beta[1]])
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag([0.0, regularization])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return np.nan, np.nan
        t = 1.0
        while t > 1e-10:  # halve until the objective does not rise (Newton from 0 can overshoot)
            trial = beta - t * step
            value = objective(trial)
            if value <= current + 1e-15 * abs(current):
                break
            t /= 2
        beta, current = trial, value
        if np.max(np.abs(t * step)) < _NEWTON_TOL * (1 + np.max(np.abs(beta))):
            return float(beta[1]), float(beta[0])
    return np.nan, np.nan


def log2_horizon(slope: float | np.ndarray, intercept: float | np.ndarray, q: float) -> np.ndarray:
    """log2 minutes at which the fitted curve crosses ``q`` (-inf for an agent with no success)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isneginf(slope), -np.inf, (np.log(q / (1 - q)) - intercept) / slope)


def run_weights(data: RunData, weights: str | None) -> np.ndarray:
    """Each run's weight in METR's regression (see the module docstring)."""
    runs = data.runs
    if weights is not None and weights not in WEIGHT_COLUMNS:
        return runs["weight"].to_numpy(dtype=float)  # the file's column, as given
    per_task = runs.groupby(["agent", "task_id"])["task_id"].transform("size").to_numpy(dtype=float)
    w = 1.0 / per_task if weights is not None else np.ones(len(runs))
    if weights == "invsqrt":
        tasks_in_family = (runs.drop_duplicates(["agent", "task_id"]).groupby(["agent", "task_family"]).size()
                           .rename("n").reset_index())
        n = runs.merge(tasks_in_family, on=["agent", "task_family"], how="left")["n"].to_numpy(dtype=float)
        w = w / np.sqrt(n)
    total = pd.Series(w).groupby(runs["agent"].to_numpy()).transform("sum").to_numpy()
    return w / total


def _arrays(data: RunData, weights: str | None) -> dict[str, np.ndarray]:
    runs = data.runs
    minutes = runs["recorded_minutes"] if "recorded_minutes" in runs else runs["human_minutes"]
    return {"x": np.log2(minutes.to_numpy(dtype=float)), "y": runs["success"].to_numpy(dtype=float),
            "w": run_weights(data, weights), "agent": runs["agent"].to_numpy(dtype=str),
            "task": runs["task_id"].to_numpy(dtype=str), "family": runs["task_family"].to_numpy(dtype=str)}


def hierarchical_resamples(arrays: Mapping[str, np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    """``n`` resamples of run indices: families, then tasks within each sampled family, then runs
    within each (task, agent), all with replacement (a task drawn twice counts twice)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((arrays["agent"], arrays["task"]))  # cells (task, agent) as contiguous blocks
    task, agent = arrays["task"][order], arrays["agent"][order]
    new_cell = np.r_[True, (task[1:] != task[:-1]) | (agent[1:] != agent[:-1])]
    cell_start = np.flatnonzero(new_cell)
    cell_len = np.diff(np.r_[cell_start, len(order)])
    cell_task = task[cell_start]
    cells_of_task = {t: np.flatnonzero(cell_task == t) for t in np.unique(cell_task)}
    family_of_task = dict(zip(arrays["task"], arrays["family"], strict=True))
    tasks_of: dict[str, list[str]] = {}
    for t in sorted(cells_of_task):
        tasks_of.setdefault(family_of_task[t], []).append(t)
    families = sorted(tasks_of)
    out = []
    for _ in range(n):
        tasks = [t for f in rng.choice(len(families), len(families))
                 for t in np.asarray(tasks_of[families[f]])[rng.choice(len(tasks_of[families[f]]),
                                                                        len(tasks_of[families[f]]))]]
        cells = np.concatenate([cells_of_task[t] for t in tasks])
        k = cell_len[cells]
        picks = np.repeat(cell_start[cells], k) + (rng.random(k.sum()) * np.repeat(k, k)).astype(int)
        out.append(order[picks])
    return out


def reference(
    data: RunData,
    qs: Sequence[float] = (0.5, 0.8),
    *,
    weights: str | None = None,
    regularization: float = DEFAULT_REGULARIZATION,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    release_dates: Mapping[str, date] | None = None,
) -> MetrReference:
    """METR's horizons of every agent of ``data`` with bootstrap intervals (see the module docstring)."""
    if regularization < 0:
        raise ValueError(f"regularization must be >= 0, got {regularization}")
    start = time.perf_counter()
    arrays = _arrays(data, weights)
    agents = list(data.agents)
    point = {}
    for a in agents:
        mask = arrays["agent"] == a
        point[a] = fit_logistic(arrays["x"][mask], arrays["y"][mask], arrays["w"][mask], regularization)
    boot = {q: np.full((n_boot, len(agents)), np.nan) for q in qs}
    skipped = np.zeros(len(agents))
    for b, idx in enumerate(hierarchical_resamples(arrays, n_boot, seed)):
        sample_agents = arrays["agent"][idx]
        for i, a in enumerate(agents):
            sel = idx[sample_agents == a]
            y = arrays["y"][sel]
            if sel.size == 0 or y.min() == y.max():  # METR skips an agent without both outcomes
                skipped[i] += 1
                continue
            slope, intercept = fit_logistic(arrays["x"][sel], y, arrays["w"][sel], regularization)
            for q in qs:
                boot[q][b, i] = log2_horizon(slope, intercept, q)
    rows = []
    for q in qs:
        # an agent METR skips in every resample (no success at all) has no interval: NaN, quietly;
        # its point fit (flat, regularised) puts the horizon beyond any float: inf, also quietly
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(boot[q], [0.025, 0.975], axis=0) if n_boot else (np.full(len(agents), np.nan),) * 2
            horizon = {a: float(np.exp2(log2_horizon(*point[a], q))) for a in agents}
            lo_min, hi_min = np.exp2(lo), np.exp2(hi)
        for i, a in enumerate(agents):
            slope, intercept = point[a]
            rows.append({"agent": a, "q": q, "horizon_min": horizon[a],
                         "lo95_min": float(lo_min[i]), "hi95_min": float(hi_min[i]),
                         "slope": slope, "intercept": intercept, "runs": int((arrays["agent"] == a).sum()),
                         "boot_skipped": float(skipped[i] / n_boot) if n_boot else np.nan})
    table = pd.DataFrame(rows)
    doubling = _doubling(point, boot.get(0.5), agents, release_dates) if 0.5 in qs else pd.DataFrame()
    settings = {"weights": weights or "none (1 / runs per agent)", "regularization": regularization,
                "n_boot": n_boot, "seed": seed}
    return MetrReference(table, doubling, settings, time.perf_counter() - start,
                         pd.DataFrame(boot.get(0.5, np.empty((0, len(agents)))), columns=agents))


def _doubling(point: Mapping[str, tuple[float, float]], boot: np.ndarray | None, agents: list[str],
              release_dates: Mapping[str, date] | None) -> pd.DataFrame:
    """Months per doubling of p50 along the frontier, point estimate and bootstrap interval."""
    from horizon_zoo.release_dates import decimal_year
    from horizon_zoo.trend import frontier_agents

    if not release_dates:
        return pd.DataFrame()
    years = {a: decimal_year(release_dates[a]) for a in agents if a in release_dates}
    log2_p50 = {a: float(log2_horizon(point[a][0], point[a][1], 0.5)) for a in years}
    chosen = frontier_agents({a: v for a, v in log2_p50.items() if np.isfinite(v)}, years)
    if len(chosen) < 2 or len({years[a] for a in chosen}) < 2:
        return pd.DataFrame()
    x = np.array([years[a] for a in chosen])
    xc = x - x.mean()

    def slope(y: np.ndarray) -> np.ndarray:
        return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)

    months = 12 / float(slope(np.array([log2_p50[a] for a in chosen])))
    row = {"months": months, "lo95_months": np.nan, "hi95_months": np.nan, "agents": ", ".join(chosen),
           "resamples_used": 0}
    if boot is not None and len(boot):
        y = boot[:, [agents.index(a) for a in chosen]]
        ok = np.isfinite(y).all(axis=1)
        if ok.any():
            s = slope(y[ok])
            lo, hi = np.quantile(s, [0.025, 0.975])
            row.update(lo95_months=12 / hi if hi > 0 else np.inf, hi95_months=12 / lo if lo > 0 else np.inf,
                       resamples_used=int(ok.sum()))
    return pd.DataFrame([row])
