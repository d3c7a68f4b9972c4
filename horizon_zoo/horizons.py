"""Posterior time horizons: the task length at which an agent succeeds with probability q.

Horizons are read off the contract's ``p_curve`` draws, so they work for every zoo model.  A
draw whose curve is already below q at the grid's shortest length, and still falling there, is
*below the grid*; one that never falls to q is *above the grid*; both are kept (as 0 / +inf
minutes) so that quantiles stay honest and tables print bounds ("< 1 s", "> 30 days") instead of
clipped numbers. A draw whose curve starts below q and is not falling towards it (a ceiling below
q, a rising curve) has no q-horizon at all: it is *undefined* (NaN), counted per agent and q
(``undefined``), left out of the quantiles and of the trend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from horizon_zoo import defaults

DEFAULT_QS = defaults.QS
CURVES = {"p_curve": "marginal", "p_curve_typical": "typical task"}
_EPS = 1e-12


def check_qs(qs: Sequence[float]) -> None:
    """Refuse success probabilities that are not fractions, before any fit (the API takes 0.5 for
    the 50% horizon; the CLI's ``--q`` takes percent and converts)."""
    from horizon_zoo.errors import HorizonZooError

    bad = [q for q in qs if not 0 < q < 1]
    if bad or not len(qs):
        raise HorizonZooError(f"qs are success probabilities, fractions strictly between 0 and 1 (0.5 for the 50% "
                              f"horizon; the command line's --q takes percent); got {list(qs)}.")


def crossing_log_minutes(p: np.ndarray, log_grid: np.ndarray, q: float) -> np.ndarray:
    """Log minutes where each curve first falls to ``q`` (grid on the last axis).

    Interpolates linearly in logit(p) between grid points, which is exact for logistic curves.
    Returns +inf where p never falls to q on the grid. Where p < q already at the first grid
    point: -inf (below the grid) if the curve, extended leftwards as a line in logit(p) from its
    first two grid points, reaches q within as many log minutes as the grid spans; else NaN (no
    q-horizon: the curve has levelled off below q, as under a ceiling, or rises with length).
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be strictly between 0 and 1, got {q}")
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    above = p >= q
    below_after = ~above[..., 1:] & above[..., :-1]  # falls below q between j and j+1
    has_cross = below_after.any(axis=-1)
    j = np.argmax(below_after, axis=-1)
    lq = np.log(q) - np.log1p(-q)
    l0 = np.take_along_axis(np.log(p) - np.log1p(-p), j[..., None], axis=-1)[..., 0] - lq
    l1 = np.take_along_axis(np.log(p) - np.log1p(-p), (j + 1)[..., None], axis=-1)[..., 0] - lq
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(l0 - l1 > 0, l0 / (l0 - l1), 0.0)
    x = log_grid[j] + t * (log_grid[np.minimum(j + 1, len(log_grid) - 1)] - log_grid[j])
    out = np.where(has_cross, x, np.inf)
    logit = np.log(p[..., :2]) - np.log1p(-p[..., :2])
    edge_slope = (logit[..., 1] - logit[..., 0]) / (log_grid[1] - log_grid[0])  # < 0: falling at the edge
    with np.errstate(invalid="ignore", divide="ignore"):
        reach = np.where(edge_slope < 0, (lq - logit[..., 0]) / -edge_slope, np.inf)  # log minutes leftwards
    below = reach <= log_grid[-1] - log_grid[0]
    return np.where(above[..., 0], out, np.where(below, -np.inf, np.nan))


def horizon_draws(idata: xr.DataTree, q: float, curve: str = "p_curve") -> xr.DataArray:
    """Horizon in minutes per (chain, draw, agent) for success probability ``q``.

    0 marks a draw below the grid (shorter than its first point), +inf one above it, NaN one
    whose curve never reaches q (see :func:`crossing_log_minutes`).
    """
    post = idata["posterior"].to_dataset()
    if curve not in post:
        raise KeyError(f"the fit has no '{curve}' in its posterior")
    p = post[curve].transpose("chain", "draw", "agent", "grid")
    log_grid = np.log(p["grid"].values)
    minutes = np.exp(crossing_log_minutes(p.values, log_grid, q))
    return xr.DataArray(minutes, dims=("chain", "draw", "agent"),
                        coords={"agent": p["agent"].values}, name=f"h{round(q * 100)}")


def horizon_table(idata: xr.DataTree, qs: Sequence[float] = DEFAULT_QS) -> pd.DataFrame:
    """Median and 50% / 95% intervals of each agent's q-horizon, in minutes.

    One row per (curve, agent, q). ``curve`` is ``marginal`` (a new random task, ``p_curve``)
    and, for models that expose it, ``typical task`` (``p_curve_typical``).  Infinite bounds
    mean below / above the grid; ``below_grid`` and ``above_grid`` give the share of draws, and
    ``undefined`` the share with no q-horizon, which the quantiles leave out (NaN when every
    draw is undefined).
    """
    grid = idata["posterior"].to_dataset()["grid"].values
    rows = []
    for curve, label in CURVES.items():
        if curve not in idata["posterior"].to_dataset():
            continue
        for q in qs:
            h = horizon_draws(idata, q, curve)
            flat = h.values.reshape(-1, h.sizes["agent"])
            undefined = np.isnan(flat)
            with np.errstate(invalid="ignore"):
                quant = np.full((5, flat.shape[1]), np.nan)
                for i in np.flatnonzero(~undefined.all(axis=0)):  # quantiles of the draws that have a horizon
                    quant[:, i] = np.quantile(flat[~undefined[:, i], i], [0.025, 0.25, 0.5, 0.75, 0.975],
                                              method="inverted_cdf")
            for i, agent in enumerate(h["agent"].values):
                lo95, lo50, med, hi50, hi95 = quant[:, i]
                rows.append({
                    "curve": label, "agent": str(agent), "q": q,
                    "median_min": med, "lo95_min": lo95, "hi95_min": hi95,
                    "lo50_min": lo50, "hi50_min": hi50,
                    "below_grid": float(np.mean(flat[:, i] <= 0)),
                    "above_grid": float(np.mean(np.isposinf(flat[:, i]))),
                    "undefined": float(np.mean(undefined[:, i])),
                    "horizon": f"{format_minutes(med, grid)} [{format_minutes(lo95, grid)}, "
                               f"{format_minutes(hi95, grid)}]",
                })
    return pd.DataFrame(rows)


def wide_horizon_table(table: pd.DataFrame, metr: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (curve, agent) with one readable column per q, e.g. ``p50 [95% CI]``.

    ``metr`` (the table of :func:`horizon_zoo.metr.reference`) adds METR's reference beside the
    marginal curve: ``METR p50 [95% boot]`` per q, and ``METR outside 95%`` naming the q's whose
    METR point estimate lies outside the posterior's 95% interval.
    """
    wide = table.pivot_table(index=["curve", "agent"], columns="q", values="horizon", aggfunc="first")
    qs = list(wide.columns)
    wide.columns = [f"p{round(q * 100)} [95% CI]" for q in wide.columns]
    if metr is not None:
        ref = metr.set_index(["agent", "q"])
        ours = table.set_index(["curve", "agent", "q"])
        marginal = CURVES["p_curve"]

        text = format_reference_minutes

        for q in qs:
            wide[f"METR p{round(q * 100)} [95% boot]"] = [
                f"{text(ref.loc[(a, q), 'horizon_min'])} [{text(ref.loc[(a, q), 'lo95_min'])}, "
                f"{text(ref.loc[(a, q), 'hi95_min'])}]" if c == marginal and (a, q) in ref.index else ""
                for c, a in wide.index]
        wide["METR outside 95%"] = [
            ", ".join(f"p{round(q * 100)}" for q in qs if c == marginal and (a, q) in ref.index
                      and not ours.loc[(c, a, q), "lo95_min"] <= ref.loc[(a, q), "horizon_min"]
                      <= ours.loc[(c, a, q), "hi95_min"])
            for c, a in wide.index]
    # Agents from shortest to longest horizon (first q, marginal curve), each agent's curves
    # together: reading down the table follows capability.
    first_q = table[(table["q"] == table["q"].iloc[0]) & (table["curve"] == CURVES["p_curve"])]
    rank = {a: i for i, a in enumerate(first_q.sort_values("median_min", kind="stable")["agent"])}
    curve_rank = {label: i for i, label in enumerate(CURVES.values())}
    keys = sorted(wide.index, key=lambda ca: (rank.get(ca[1], len(rank)), curve_rank.get(ca[0], 0)))
    return wide.loc[keys].reset_index()


def format_reference_minutes(minutes: float) -> str:
    """A point horizon (METR's reference) within the bounds the posterior columns print: METR's
    fit of an agent that almost never succeeds puts its horizon at 1e-12 s, or at exactly 0."""
    from horizon_zoo.contract import DEFAULT_GRID_MAX_MINUTES, DEFAULT_GRID_MIN_MINUTES

    if np.isfinite(minutes) and minutes < DEFAULT_GRID_MIN_MINUTES:
        return "< " + format_minutes(DEFAULT_GRID_MIN_MINUTES)
    if minutes > DEFAULT_GRID_MAX_MINUTES:
        return "> " + format_minutes(DEFAULT_GRID_MAX_MINUTES)
    return format_minutes(minutes)


def format_minutes(minutes: float, grid: np.ndarray | None = None) -> str:
    """Human-readable length: seconds, minutes, hours or days; bounds for off-grid values."""
    if np.isneginf(minutes) or minutes <= 0:  # horizon_draws marks below-grid draws with 0
        return "< " + (format_minutes(float(grid[0])) if grid is not None else "grid")
    if np.isposinf(minutes):
        return "> " + (format_minutes(float(grid[-1])) if grid is not None else "grid")
    if not np.isfinite(minutes):
        return "n/a"
    if minutes < 1:
        return f"{minutes * 60:.2g} s"
    if minutes < 60:
        return f"{minutes:.2g} min"
    if minutes < 24 * 60:
        return f"{minutes / 60:.2g} h"
    return f"{minutes / (24 * 60):.2g} days"
