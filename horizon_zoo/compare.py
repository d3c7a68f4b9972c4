"""Compare zoo models with PSIS-LOO over binomial cells (ArviZ).

The elpd here answers "how well does the model predict one more (agent, task) cell".  Each row
also counts the cells whose Pareto k exceeds ArviZ's sample-size-dependent threshold, where the
PSIS estimate is unreliable. Where there are few such cells (``max_refits``) they are replaced by
exact leave-one-out refits (reloo, with the held-out weight of :mod:`horizon_zoo.cv`); the
``loo_method`` column says which estimate each model got. Moment matching is not used: it needs
the model's log density on the unconstrained scale, which PyStan 3 does not expose per draw
cheaply enough.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

HIGH_K = 0.7
WEIGHTED_ELPD_NOTE = ("The likelihood is weighted (task weights): every elpd here, PSIS-LOO, exact refits and "
                      "grouped CV alike, is log E[prod p(y_i)^w_i] over the held-out cells (the log predictive "
                      "density of their weighted likelihood); not comparable with the elpds of unweighted fits.")
LOO_MEANING_NOTE = ("What PSIS-LOO over cells scores: the runs of one (agent, task) cell, with the task and the "
                    "agent seen through their other cells. Models with task effects learn each task's difficulty "
                    "from the other agents' runs, which is most of their lead here; how well a model predicts a "
                    "task, family or agent it has never seen is grouped CV's question (--cv).")
# Log-likelihood spread across draws below which a cell's importance weights count as uniform.
CONSTANT_SPREAD = 1e-9


@dataclass(frozen=True)
class Psis:
    """Pareto-smoothed importance weights of one fit's cells: computed once, shared by LOO and LOO-PIT."""

    log_weights: xr.DataArray  # (chain, draw, cell), normalised over draws
    pareto_k: xr.DataArray  # (cell,)
    reff: float


def _flat_tail(ll: np.ndarray, reff: float) -> np.ndarray:
    """Cells (columns of ``ll``, draws x cells) whose largest importance ratios are all equal over
    the tail that ArviZ's Pareto fit uses, which it refuses ("All tail values are the same"). A
    saved fit's log_lik is quantised (horizon_zoo.fit), so a cell whose log likelihood hardly
    varies can take only a few values; its tail is then flat, not heavy, and plain importance
    sampling serves."""
    n = ll.shape[0]
    tail = int(np.floor(3 * (n / reff) ** 0.5)) if n * reff > 225 else n // 5  # ArviZ's tail length
    if tail < 5:
        return np.zeros(ll.shape[1], dtype=bool)
    top = np.partition(-ll, n - tail, axis=0)[n - tail:]  # the tail's values, unordered
    return (top.max(axis=0) - top.min(axis=0)) < np.finfo(float).tiny


def psis(idata: xr.DataTree) -> Psis:
    """PSIS of the cells' leave-one-out importance ratios, with ArviZ's relative efficiency.

    Cells whose log likelihood is (nearly) the same in every draw, as when a model is certain of
    the outcome (log p = 0, or -1e-310), make ArviZ's Pareto fit fail ("All tail values are the
    same"), yet their importance weights are uniform to within ``CONSTANT_SPREAD``, so plain
    importance sampling is exact there: they keep their raw weights and Pareto k = 0. So do cells
    whose ratios are equal over the whole tail ArviZ fits (:func:`_flat_tail`).
    """
    ll = idata["log_likelihood"]["log_lik"].transpose("chain", "draw", "cell")
    n_samples = ll.sizes["chain"] * ll.sizes["draw"]
    # ArviZ's r_eff: mean ESS over every posterior value (as azs.loo computes it when not given)
    ess = idata["posterior"].to_dataset().azstats.ess(method="mean")
    reff = float(np.mean(np.concatenate([ess[v].values.ravel() for v in ess.data_vars]))) / n_samples \
        if ll.sizes["chain"] > 1 else 1.0
    spread = (ll.max(("chain", "draw")) - ll.min(("chain", "draw"))).values
    constant = (spread < CONSTANT_SPREAD) | _flat_tail(ll.values.reshape(n_samples, -1), reff)
    log_weights = -ll - _logsumexp_columns(-ll.values.reshape(n_samples, -1))  # raw; exact for constant cells
    pareto_k = xr.zeros_like(ll.isel(chain=0, draw=0, drop=True))
    if not constant.all():
        varying = np.flatnonzero(~constant)
        lw, k = ll.isel(cell=varying).azstats.psislw(r_eff=reff, dim=["chain", "draw"])
        log_weights[..., varying] = lw.transpose("chain", "draw", "cell").values
        pareto_k[varying] = k.values
    return Psis(log_weights, pareto_k, reff)


def _logsumexp_columns(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x), axis=0)), shifted by each column's maximum for stability. scipy's
    logsumexp took 1.4-2.5 s on cyber-horizons' 4,000 draws x 4,674 cells (3.4 s reducing
    over (chain, draw) unflattened); this takes 0.06 s and agrees to 2e-15."""
    top = x.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.0)  # an all -inf column sums to 0, its log to -inf
    with np.errstate(divide="ignore"):
        return top + np.log(np.exp(x - top).sum(axis=0))


def loo(idata: xr.DataTree, weights: Psis | None = None) -> azs.ELPDData:
    """Pointwise PSIS-LOO of one fit (log likelihood variable ``log_lik``), from ``weights`` when
    they have been computed already (:func:`psis`)."""
    weights = weights or psis(idata)
    result = azs.loo(idata, pointwise=True, var_name="log_lik", reff=weights.reff,
                     log_weights=weights.log_weights, pareto_k=weights.pareto_k)
    result.log_weights = None  # compare keeps every model's result; the weights are as large as log_lik
    return result


def reloo(result: azs.ELPDData, fit_heldout: Callable[[np.ndarray], xr.DataTree],
          max_refits: int) -> tuple[azs.ELPDData, str]:
    """Replace the PSIS estimate of cells with Pareto k > 0.7 by exact refits, when there are at most
    ``max_refits`` of them; return the result and a note saying which method was used.

    ``fit_heldout(mask)`` refits with the cells in ``mask`` held out (``horizon_zoo.cv.holdout``).
    An exact refit's elpd is on PSIS-LOO's scale (:func:`horizon_zoo.cv.joint_elpd`), weighted
    fits included.
    """
    from horizon_zoo.cv import joint_elpd

    k = np.asarray(result.pareto_k)
    bad = np.flatnonzero(k > min(HIGH_K, result.good_k))
    if bad.size == 0:
        return result, "PSIS"
    if bad.size > max_refits:
        return result, (f"PSIS; {bad.size} cells with k > {HIGH_K:g} exceed --reloo-max {max_refits}: "
                        "unreliable, use grouped CV (--cv)")
    elpd_i = result.elpd_i.copy()
    for i in bad:
        mask = np.zeros(elpd_i.size, dtype=bool)
        mask[i] = True
        elpd_i[i] = joint_elpd(fit_heldout(mask), np.array([i]))
    result.elpd_i = elpd_i
    result.elpd = float(elpd_i.sum())
    result.se = float(np.sqrt(elpd_i.size * np.var(elpd_i.values)))
    pareto_k = result.pareto_k.copy()
    pareto_k[bad] = 0.0  # exact now
    result.pareto_k = pareto_k
    return result, f"PSIS + exact refits of {bad.size} cells with k > {HIGH_K:g}"


def loo_compare(fits: Mapping[str, xr.DataTree],
                refit: Mapping[str, Callable[[np.ndarray], xr.DataTree]] | None = None,
                max_refits: int = 0,
                loos: Mapping[str, azs.ELPDData] | None = None) -> pd.DataFrame:
    """Rank models by elpd_loo with standard errors, stacking weights and Pareto-k counts.

    Returns one row per model (best first) with ArviZ's columns (``elpd_diff`` is this model's
    elpd minus the best one's, so <= 0; ``p_worse``, ``diag_diff``, ``diag_elpd``) renamed to
    ``elpd_loo`` and ``p_loo``, plus ``diff_over_dse`` (how many standard errors below the best),
    ``n_high_k`` (cells with Pareto k above ``good_k``) and ``good_k``. ``loos`` gives models'
    :func:`loo` results already computed (the rest are computed here).
    """
    if not fits:
        raise ValueError("no fits to compare")
    with warnings.catch_warnings():
        # ArviZ warns once per model about high Pareto k; the table counts them instead.
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        # A fit that failed its diagnostics can make the Pareto fit overflow; its row then shows
        # the damage (elpd, n_high_k) and the diagnostics table says why, so no numpy noise.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"arviz_stats\.")
        loos = {name: loos[name] if loos and name in loos else loo(dt) for name, dt in fits.items()}
    methods = {name: "PSIS" for name in loos}
    for name in loos:
        if refit and name in refit:
            loos[name], methods[name] = reloo(loos[name], refit[name], max_refits)
        elif np.any(np.asarray(loos[name].pareto_k) > min(HIGH_K, loos[name].good_k)):
            methods[name] = "PSIS; some cells have k > 0.7: unreliable there"
    if len(loos) == 1:
        (name, single), = loos.items()
        table = pd.DataFrame({"rank": [0], "elpd": [single.elpd], "p": [single.p], "elpd_diff": [0.0],
                              "weight": [1.0], "se": [single.se], "dse": [0.0], "p_worse": [np.nan],
                              "diag_diff": [""], "diag_elpd": [""]}, index=[name])
    else:
        with warnings.catch_warnings():
            # ArviZ warns when differences are small; the table's dse and diff_over_dse say so already
            warnings.filterwarnings("ignore", message="Difference in performance potentially due to chance")
            table = azs.compare(loos, round_to="none")
    table = table.rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table["n_high_k"] = [int(np.sum(np.asarray(loos[m].pareto_k) > min(HIGH_K, loos[m].good_k)))
                         for m in table.index]
    table["good_k"] = [float(loos[m].good_k) for m in table.index]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["diff_over_dse"] = np.where(table["dse"] > 0, table["elpd_diff"] / table["dse"], 0.0)
    table["loo_method"] = [methods[m] for m in table.index]
    table.index.name = "model"
    columns = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "diff_over_dse", "p_worse", "p_loo",
               "weight", "n_high_k", "good_k", "loo_method", "diag_diff", "diag_elpd"]
    return table[columns].reset_index()


LOO_SHOWN = ("model", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "n_high_k", "loo_method")


def loo_shown(table: pd.DataFrame) -> pd.DataFrame:
    """The columns of :func:`loo_compare`'s table that the terminal, summary.md and the report show.
    Stacking weights are rounded to 3 decimals: a weight of 2e-13 is a weight of 0, and printing it
    in scientific notation only hides that."""
    shown = table[[c for c in LOO_SHOWN if c in table.columns]].copy()
    if "weight" in shown.columns:
        shown["weight"] = shown["weight"].round(3) + 0.0  # + 0.0: no "-0.0"
    return shown
