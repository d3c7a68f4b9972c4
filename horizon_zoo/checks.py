"""Posterior predictive checks that show what structure a model leaves in the data.

Every check uses only the contract (``y_rep``, ``log_lik``, ``p_curve`` and the cell/task
indices in ``constant_data``), so it works for any zoo model:

* calibration by task length: observed vs replicated success rate in log-length bins, per
  agent and pooled;
* success curves: each agent's ``p_curve`` bands over its binned success rates;
* residual structure: agent-by-agent and task-by-task correlation of cell residuals (observed
  minus posterior-mean predicted success rate), one statistic per matrix, compared with the
  same statistic on replicated data. In-sample, a model whose effects target a statistic's own
  grouping absorbs that structure from the data it is checked on (its p-value is not
  calibrated); :func:`cross_validated_structure` computes each statistic from cross-validated
  residuals instead (see :data:`CV_SCHEME_OF`);
* LOO-PIT (randomised for discrete data) and Pareto k;
* test statistics: overall success rate, success on tasks over an hour, per-family rates and
  the variance of per-task success rates.

A posterior predictive p-value is ``P(T(y_rep) > T(y)) + P(T(y_rep) = T(y)) / 2``; values
outside [0.025, 0.975] are flagged.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from horizon_zoo.compare import Psis, psis
from horizon_zoo.cv import Predictive
from horizon_zoo.data import RunData

log = logging.getLogger(__name__)

FLAG_LOW, FLAG_HIGH = 0.025, 0.975
LONG_TASK_MINUTES = 60.0
DEFAULT_BINS = 6
MIN_SHARED = 3  # a residual correlation needs at least this many shared agents / tasks


CHECKS_LEGEND = (
    "Posterior predictive p-values, `P(T(y_rep) > T(y))` (mid-p); `*` marks values outside "
    "[0.025, 0.975]. Task block: mean within-family minus between-family residual correlation "
    "of tasks (high = tasks of a family share difficulty the model misses). Agent eigen share: "
    "the leading eigenvalue's share of the agent residual correlation matrix (high = one pattern "
    "over tasks runs through every agent's residuals). Families / calibration bins flagged: how "
    "many per-family success rates and (agent, length bin) success rates lie outside the "
    "replicated 95%: about 5% are expected by chance.")


@dataclass(frozen=True)
class CheckData:
    """The arrays every check reads, pulled once from a fit."""

    y: np.ndarray  # (N,) observed successes
    n: np.ndarray  # (N,) runs
    y_rep: np.ndarray  # (S, N) replicated successes, a thinned set of draws
    agent: np.ndarray  # (N,) 0-based agent of each cell
    task: np.ndarray  # (N,) 0-based task of each cell
    family: np.ndarray  # (T,) 0-based family of each task
    log_minutes: np.ndarray  # (T,)
    agents: tuple[str, ...]
    tasks: tuple[str, ...]
    families: tuple[str, ...]
    # Predicted success rate of each cell when it is known more precisely than the mean of the
    # thinned y_rep (cross-validated predictions carry the mean over all of a fold's draws).
    p_mean: np.ndarray | None = None

    @property
    def p_hat(self) -> np.ndarray:
        """Posterior-mean (or cross-validated predictive mean) success rate of each cell."""
        return self.p_mean if self.p_mean is not None else self.y_rep.mean(axis=0) / self.n


def check_data(idata: xr.DataTree, max_draws: int = 400, seed: int = 0) -> CheckData:
    """Collect observed data, indices and up to ``max_draws`` replicated datasets from a fit."""
    y_rep = idata["posterior_predictive"]["y_rep"].values
    y_rep = y_rep.reshape(-1, y_rep.shape[-1])
    if len(y_rep) > max_draws:
        y_rep = y_rep[np.random.default_rng(seed).choice(len(y_rep), max_draws, replace=False)]
    const = idata["constant_data"]
    obs = idata["observed_data"]
    post = idata["posterior"]
    return CheckData(
        y=obs["n_success"].values.astype(int), n=obs["n_runs"].values.astype(int), y_rep=y_rep.astype(int),
        agent=const["agent_index"].values.astype(int) - 1, task=const["task_index"].values.astype(int) - 1,
        family=const["family_index"].values.astype(int) - 1, log_minutes=const["log_minutes"].values,
        agents=tuple(map(str, post["agent"].values)), tasks=tuple(map(str, const["task"].values)),
        # family_index counts into the data's sorted family names, which are these
        families=tuple(sorted(set(map(str, const["task_family"].values)))),
    )


def ppc_p_value(observed: float, replicated: np.ndarray) -> float:
    """Mid-p posterior predictive p-value ``P(T_rep > T_obs) + P(T_rep = T_obs) / 2``."""
    replicated = np.asarray(replicated, dtype=float)
    replicated = replicated[np.isfinite(replicated)]
    if not np.isfinite(observed) or replicated.size == 0:
        return np.nan
    return float(np.mean(replicated > observed) + 0.5 * np.mean(replicated == observed))


def flagged(p: float) -> bool:
    """True when a p-value lies outside [0.025, 0.975]."""
    return bool(np.isfinite(p) and (p < FLAG_LOW or p > FLAG_HIGH))


# --- 1. calibration by task length ------------------------------------------------------------


def length_bins(log_minutes: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin edges in log minutes with about equal numbers of tasks per bin."""
    edges = np.unique(np.quantile(log_minutes, np.linspace(0, 1, n_bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def calibration_table(d: CheckData, edges: np.ndarray | None = None) -> pd.DataFrame:
    """Observed vs replicated success rate per (agent or ``all``, length bin), with p-values."""
    edges = length_bins(d.log_minutes) if edges is None else edges
    cell_bin = np.digitize(d.log_minutes[d.task], edges[1:-1])
    rows = []
    groups = [("all", np.ones_like(d.agent, dtype=bool))] + [
        (name, d.agent == i) for i, name in enumerate(d.agents)]
    for label, in_group in groups:
        for b in range(len(edges) - 1):
            mask = in_group & (cell_bin == b)
            runs = int(d.n[mask].sum())
            if runs == 0:
                continue
            observed = d.y[mask].sum() / runs
            replicated = d.y_rep[:, mask].sum(axis=1) / runs
            lo95, lo50, med, hi50, hi95 = np.quantile(replicated, [0.025, 0.25, 0.5, 0.75, 0.975])
            minutes = np.exp(d.log_minutes[np.unique(d.task[mask])])
            rows.append({"agent": label, "bin": b, "min_minutes": minutes.min(), "max_minutes": minutes.max(),
                         "centre_minutes": float(np.exp(np.mean(np.log(minutes)))), "runs": runs,
                         "observed": observed, "replicated_median": med, "lo50": lo50, "hi50": hi50,
                         "lo95": lo95, "hi95": hi95, "p_value": ppc_p_value(observed, replicated)})
    table = pd.DataFrame(rows)
    table["flagged"] = table["p_value"].map(flagged)
    return table


# --- 3. residual correlation structure ------------------------------------------------------


def residual_matrix(d: CheckData, successes: np.ndarray) -> np.ndarray:
    """Agent x task residuals (success rate minus posterior-mean predicted rate); NaN where no runs.

    ``successes`` is (N,) or (S, N); the result is (A, T) or (S, A, T).
    """
    successes = np.asarray(successes, dtype=float)
    resid = successes / d.n - d.p_hat
    shape = resid.shape[:-1] + (len(d.agents), len(d.tasks))
    out = np.full(shape, np.nan)
    out[..., d.agent, d.task] = resid
    return out


def uncentred_correlation(residuals: np.ndarray) -> np.ndarray:
    """Correlation between the columns of ``residuals`` (rows x columns, NaN = missing).

    Uncentred (about zero, not about each column's mean): residuals are already deviations from
    the model, and a task that is harder than predicted for *every* agent is exactly the
    structure to detect; centring each column would remove it. Pairs sharing fewer than 3
    rows get NaN.
    """
    present = np.isfinite(residuals)
    r = np.where(present, residuals, 0.0)
    m = present.astype(float)
    cross = r.T @ r
    sq = (r * r).T @ m  # sum of squares of column i over rows shared with column j
    shared = m.T @ m
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cross / np.sqrt(sq * sq.T)
    corr[shared < MIN_SHARED] = np.nan
    return corr


def task_block_statistic(task_corr: np.ndarray, family: np.ndarray) -> float:
    """Mean within-family minus mean between-family residual correlation of distinct tasks."""
    same = family[:, None] == family[None, :]
    off = ~np.eye(len(family), dtype=bool)
    finite = np.isfinite(task_corr)
    within = same & off & finite
    between = ~same & finite
    if not within.any() or not between.any():
        return np.nan
    return float(task_corr[within].mean() - task_corr[between].mean())


def agent_eigen_share(agent_corr: np.ndarray) -> float:
    """Share of the leading eigenvalue in the agent-by-agent residual correlation matrix.

    1/A when residuals are unrelated across agents; near 1 when one pattern over tasks (task
    difficulty the model misses) runs through every agent's residuals.
    """
    c = np.where(np.isfinite(agent_corr), agent_corr, 0.0)
    np.fill_diagonal(c, 1.0)
    eig = np.linalg.eigvalsh(c)
    return float(eig[-1] / np.sum(np.clip(eig, 0, None)))


@dataclass
class ResidualStructure:
    """Observed residual correlation matrices and the two block statistics with their PPCs."""

    agent_corr: np.ndarray
    task_corr: np.ndarray
    observed: dict[str, float]
    replicated: dict[str, np.ndarray]
    p_values: dict[str, float] = field(default_factory=dict)


def residual_structure(d: CheckData) -> ResidualStructure:
    """Residual correlations of the data and of every replicated dataset (same p_hat)."""
    obs = residual_matrix(d, d.y)
    agent_corr = uncentred_correlation(obs.T)
    task_corr = uncentred_correlation(obs)
    observed = {"task_block": task_block_statistic(task_corr, d.family),
                "agent_eigen_share": agent_eigen_share(agent_corr)}
    rep = residual_matrix(d, d.y_rep)
    replicated = {"task_block": np.empty(len(rep)), "agent_eigen_share": np.empty(len(rep))}
    for s, r in enumerate(rep):
        replicated["task_block"][s] = task_block_statistic(uncentred_correlation(r), d.family)
        replicated["agent_eigen_share"][s] = agent_eigen_share(uncentred_correlation(r.T))
    p_values = {k: ppc_p_value(observed[k], replicated[k]) for k in observed}
    return ResidualStructure(agent_corr, task_corr, observed, replicated, p_values)


CV_STRUCTURE_NOTE = (
    "Read these, not the in-sample task block and agent eigen share: in-sample residuals are measured "
    "against a prediction fitted to the same cells, so a model whose effects target a statistic's "
    "own grouping absorbs that structure (on data simulated from agent_family_interaction itself the "
    "in-sample task-block p-value sits near 1). Here each cell's residual is against the predictive "
    "mean of a fit that never saw its family (task block) or its task (agent eigen share), and the "
    "replicates are drawn from that same predictive distribution. p in [0.025, 0.975]: no structure "
    "the model cannot reproduce; the calibration of these p-values on simulated data is in "
    "docs/check-calibration.md.")

# Which grouped-CV scheme makes each structure statistic's residuals honest: the task block asks
# whether tasks of one family share something, so each cell is predicted by a fit that never saw
# its family; the agent eigen share asks whether a task's residual runs through every agent, so
# each cell is predicted by a fit that never saw its task.
CV_SCHEME_OF = {"task_block": "family", "agent_eigen_share": "task"}
STRUCTURE_LABELS = {"task_block": "task block (within - between family)",
                    "agent_eigen_share": "agent residual eigen share"}


def check_data_from_runs(data: RunData, y_rep: np.ndarray, p_mean: np.ndarray | None = None) -> CheckData:
    """A :class:`CheckData` of ``data`` with replicated successes ``y_rep`` (S, N) from anywhere,
    e.g. cross-validated predictions; indices follow :func:`horizon_zoo.contract.stan_data`."""
    cells, tasks = data.cells, data.tasks
    agent_index = {a: i for i, a in enumerate(data.agents)}
    task_index = {t: i for i, t in enumerate(tasks["task_id"])}
    family_index = {f: i for i, f in enumerate(data.families)}
    return CheckData(
        y=cells["n_success"].to_numpy(dtype=int), n=cells["n_runs"].to_numpy(dtype=int),
        y_rep=np.asarray(y_rep, dtype=int), agent=cells["agent"].map(agent_index).to_numpy(dtype=int),
        task=cells["task_id"].map(task_index).to_numpy(dtype=int),
        family=tasks["task_family"].map(family_index).to_numpy(dtype=int),
        log_minutes=np.log(tasks["human_minutes"].to_numpy(dtype=float)), agents=tuple(data.agents),
        tasks=tuple(map(str, tasks["task_id"])), families=tuple(data.families), p_mean=p_mean)


@dataclass
class CVStructure:
    """The residual-structure statistics from cross-validated residuals: one row per statistic in
    ``table`` (its scheme, observed value, replicated median and 95% interval, p-value, flag),
    and for the figure the combined :class:`ResidualStructure` (agent matrix from the ``task``
    scheme, task matrix from the ``family`` scheme) with the cells' :class:`CheckData`."""

    table: pd.DataFrame
    structure: ResidualStructure
    data: CheckData


def cross_validated_structure(data: RunData, predictive: Mapping[str, Predictive]) -> CVStructure | None:
    """The two residual-structure statistics from cross-validated residuals, with their p-values.

    ``predictive`` maps a CV scheme to one model's :class:`horizon_zoo.cv.Predictive`. Each
    statistic uses the scheme :data:`CV_SCHEME_OF` names: the observed statistic is computed
    from ``y - p_cv`` (``p_cv`` the cell's predictive mean from the fold that held its group
    out), each replicated one from ``y_rep - p_cv`` with ``y_rep`` drawn from that same
    predictive distribution. Nothing the statistic looks at was used to fit the effects that
    could absorb it. Statistics whose scheme was not run are left out; None when neither was.
    """
    rows, parts = [], {}
    for stat, scheme in CV_SCHEME_OF.items():
        if scheme not in predictive:
            continue
        pred = predictive[scheme]
        d = check_data_from_runs(data, pred.y_rep, pred.p_mean)
        parts[stat] = residual_structure(d)
        row = _stat_row(STRUCTURE_LABELS[stat], "residual, cross-validated", parts[stat].observed[stat],
                        parts[stat].replicated[stat])
        rows.append({"statistic": stat, "scheme": scheme, **{k: v for k, v in row.items() if k != "statistic"}})
    if not parts:
        return None
    nan_matrix = np.full((len(data.agents),) * 2, np.nan)
    combined = ResidualStructure(
        agent_corr=parts["agent_eigen_share"].agent_corr if "agent_eigen_share" in parts else nan_matrix,
        task_corr=parts["task_block"].task_corr if "task_block" in parts else np.full((len(data.tasks),) * 2, np.nan),
        observed={k: parts[k].observed[k] for k in parts}, replicated={k: parts[k].replicated[k] for k in parts},
        p_values={k: parts[k].p_values[k] for k in parts})
    return CVStructure(pd.DataFrame(rows), combined, d)


def structure_verdicts(table: pd.DataFrame) -> list[str]:
    """One sentence per structure statistic over models: which leave no detectable structure
    (cross-validated p in [0.025, 0.975]) and which are flagged. ``table`` has a ``model`` column
    besides the columns of :class:`CVStructure`'s table."""
    out = []
    for stat, t in table.groupby("statistic", sort=False):
        ok = [f"{m} (p = {p:.3f})" for m, p in zip(t["model"], t["p_value"], strict=False) if np.isfinite(p) and not flagged(p)]
        bad = [f"{m} (p = {p:.3f})" for m, p in zip(t["model"], t["p_value"], strict=False) if flagged(p)]
        scheme = "leave-family-out" if CV_SCHEME_OF[stat] == "family" else "leave-task-out"
        question = ("Do tasks of a family share a misfit" if stat == "task_block"
                    else "Does one pattern over tasks run through every agent's residuals")
        out.append(f"{question} ({STRUCTURE_LABELS[stat]}, {scheme} residuals)? Explained by: "
                   + (", ".join(ok) if ok else "no model") + "; left behind by: " + (", ".join(bad) if bad else "no model")
                   + ".")
    return out


# --- 4. LOO-PIT and Pareto k ------------------------------------------------------------------


def loo_pit_and_k(idata: xr.DataTree, seed: int = 0, weights: Psis | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Randomised LOO-PIT values and Pareto k per cell (ArviZ), from the fit's PSIS ``weights``
    (computed here when not given); NaN arrays if PSIS fails."""
    import arviz_stats as azs

    view = xr.DataTree.from_dict({
        # loo_pit reads chain and draw sizes from the posterior; one small variable carries them.
        "posterior": xr.Dataset({"dummy": idata["posterior"]["p_curve"].isel(agent=0, grid=0, drop=True)}),
        "posterior_predictive": xr.Dataset({"y": idata["posterior_predictive"]["y_rep"]}),
        "log_likelihood": xr.Dataset({"y": idata["log_likelihood"]["log_lik"]}),
        "observed_data": xr.Dataset({"y": idata["observed_data"]["n_success"]}),
    })
    n = idata["observed_data"]["n_success"].size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights = weights or psis(idata)
            pit = azs.loo_pit(view, var_names="y", random_state=seed,
                              log_weights=xr.Dataset({"y": weights.log_weights}),
                              pareto_k=xr.Dataset({"y": weights.pareto_k}))["y"].values
    except Exception as exc:  # noqa: BLE001 - a failed PSIS fit should not sink the other checks
        log.warning("LOO-PIT failed: %s", exc)
        return np.full(n, np.nan), np.full(n, np.nan)
    return np.asarray(pit, dtype=float).reshape(-1), weights.pareto_k.values.astype(float).reshape(-1)


def pit_uniformity_p(pit: np.ndarray) -> float:
    """Kolmogorov-Smirnov p-value of the LOO-PIT values against uniform (dependence ignored)."""
    from scipy import stats

    pit = pit[np.isfinite(pit)]
    return float(stats.kstest(pit, "uniform").pvalue) if pit.size else np.nan


# --- 5. test statistics -------------------------------------------------------------------------


def _rate(successes: np.ndarray, n: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return successes[..., mask].sum(axis=-1) / n[mask].sum()


def _task_rate_variance(d: CheckData, successes: np.ndarray) -> np.ndarray:
    runs = np.bincount(d.task, weights=d.n, minlength=len(d.tasks))
    flat = np.atleast_2d(successes)
    per_task = np.stack([np.bincount(d.task, weights=row, minlength=len(d.tasks)) for row in flat]) / runs
    return per_task.var(axis=1)


def statistic_checks(d: CheckData) -> pd.DataFrame:
    """Observed value, replicated median and 95% interval, and p-value of each test statistic."""
    everything = np.ones_like(d.y, dtype=bool)
    stats: list[tuple[str, np.ndarray, str]] = [("success rate", everything, "rate")]
    long_cells = np.exp(d.log_minutes[d.task]) > LONG_TASK_MINUTES
    if long_cells.any():
        stats.append(("success rate, tasks over 1 h", long_cells, "rate"))
    rows = []
    for name, mask, _ in stats:
        rows.append(_stat_row(name, "overall", _rate(d.y, d.n, mask), _rate(d.y_rep, d.n, mask)))
    rows.append(_stat_row("variance of per-task success rates", "overall", _task_rate_variance(d, d.y)[0],
                          _task_rate_variance(d, d.y_rep)))
    cell_family = d.family[d.task]
    for f, family in enumerate(d.families):
        mask = cell_family == f
        if mask.any():
            rows.append(_stat_row(f"success rate, family {family}", "family",
                                  _rate(d.y, d.n, mask), _rate(d.y_rep, d.n, mask)))
    return pd.DataFrame(rows)


def _stat_row(name: str, kind: str, observed: float, replicated: np.ndarray) -> dict[str, object]:
    lo, med, hi = np.quantile(replicated, [0.025, 0.5, 0.975])
    p = ppc_p_value(float(observed), replicated)
    return {"statistic": name, "kind": kind, "observed": float(observed), "replicated_median": med,
            "lo95": lo, "hi95": hi, "p_value": p, "flagged": flagged(p)}


# --- all checks of one fit ---------------------------------------------------------------------


@dataclass
class CheckResult:
    """Every check of one fit: the p-value table, calibration, residual structure, LOO-PIT."""

    model: str
    p_values: pd.DataFrame  # statistic, kind, observed, replicated_median, lo95, hi95, p_value, flagged
    calibration: pd.DataFrame
    residuals: ResidualStructure
    pit: np.ndarray
    pareto_k: np.ndarray
    data: CheckData

    def summary_row(self) -> dict[str, object]:
        """One row for the comparison's checks table: the headline p-values and flag counts."""
        t = self.p_values.set_index("statistic")
        row: dict[str, object] = {"model": self.model}
        for stat in ("task block (within - between family)", "agent residual eigen share", "success rate",
                     "success rate, tasks over 1 h", "variance of per-task success rates", "LOO-PIT uniformity"):
            if stat in t.index:
                row[stat] = _p_text(float(t.loc[stat, "p_value"]))
        fam = self.p_values[self.p_values["kind"] == "family"]
        row["families flagged"] = f"{int(fam['flagged'].sum())}/{len(fam)}"
        cal = self.calibration[self.calibration["agent"] != "all"]
        row["calibration bins flagged"] = f"{int(cal['flagged'].sum())}/{len(cal)}"
        row["pareto k > 0.7"] = int(np.sum(self.pareto_k > 0.7))
        return row


def _p_text(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.3f}" + (" *" if flagged(p) else "")


def run_checks(idata: xr.DataTree, model: str, *, max_draws: int = 400, seed: int = 0,
               weights: Psis | None = None) -> CheckResult:
    """Run every check on one fit (figures are drawn separately by :func:`write_check_outputs`);
    ``weights`` are the fit's PSIS weights when already computed."""
    d = check_data(idata, max_draws=max_draws, seed=seed)
    structure = residual_structure(d)
    pit, k = loo_pit_and_k(idata, seed=seed, weights=weights)
    rows = [
        {**_stat_row("task block (within - between family)", "residual", structure.observed["task_block"],
                     structure.replicated["task_block"])},
        {**_stat_row("agent residual eigen share", "residual", structure.observed["agent_eigen_share"],
                     structure.replicated["agent_eigen_share"])},
    ]
    p_pit = pit_uniformity_p(pit)
    rows.append({"statistic": "LOO-PIT uniformity", "kind": "loo-pit", "observed": np.nan,
                 "replicated_median": np.nan, "lo95": np.nan, "hi95": np.nan, "p_value": p_pit,
                 "flagged": bool(np.isfinite(p_pit) and p_pit < FLAG_LOW)})
    table = pd.concat([pd.DataFrame(rows), statistic_checks(d)], ignore_index=True)
    return CheckResult(model, table, calibration_table(d), structure, pit, k, d)


def checks_summary(results: Mapping[str, CheckResult]) -> pd.DataFrame:
    """Model x statistic table of p-values; ``*`` marks values outside [0.025, 0.975]."""
    return pd.DataFrame([r.summary_row() for r in results.values()])
