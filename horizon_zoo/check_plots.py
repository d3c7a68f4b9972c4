"""Figures of the posterior predictive checks (see :mod:`horizon_zoo.checks`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from horizon_zoo.checks import CheckData, CheckResult, ResidualStructure
from horizon_zoo.plots import minutes_axis


def _grid_of_axes(n: int, width: float = 3.2, height: float = 2.6) -> tuple[Figure, list[plt.Axes]]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _minutes_range(calibration: pd.DataFrame) -> tuple[float, float]:
    return float(calibration["min_minutes"].min()) / 2, float(calibration["max_minutes"].max()) * 2


def plot_calibration(calibration: pd.DataFrame, model: str, agent_order: list[str] | None = None) -> Figure:
    """Observed success rate per length bin (dots) against the replicated 50%/95% intervals."""
    agents = ["all"] + (agent_order or [a for a in calibration["agent"].unique() if a != "all"])
    agents = [a for a in agents if a in set(calibration["agent"])]
    fig, axes = _grid_of_axes(len(agents))
    lo, hi = _minutes_range(calibration)
    for ax, agent in zip(axes, agents, strict=False):
        t = calibration[calibration["agent"] == agent]
        x = t["centre_minutes"].to_numpy()
        ax.vlines(x, t["lo95"], t["hi95"], color="tab:blue", alpha=0.35, lw=5, label="replicated 95%")
        ax.vlines(x, t["lo50"], t["hi50"], color="tab:blue", alpha=0.8, lw=5, label="replicated 50%")
        colors = np.where(t["flagged"], "tab:red", "black")
        ax.scatter(x, t["observed"], color=colors, zorder=3, s=18, label="observed")
        ax.set_title("all agents (pooled)" if agent == "all" else agent, fontsize=9)
        minutes_axis(ax, lo, hi, axis="x")
        ax.set_ylim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6, loc="upper right")
    for ax in axes:
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("success rate")
        if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
            ax.set_xlabel("human task length (bin centre)")
    fig.suptitle(f"{model}: calibration by task length (red: observed outside the replicated 95%)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_success_curves(idata: xr.DataTree, calibration: pd.DataFrame, model: str,
                        agent_order: list[str] | None = None) -> Figure:
    """Each agent's ``p_curve`` median with 50%/95% bands over its binned observed success rates."""
    p = idata["posterior"]["p_curve"]
    grid = p["grid"].values
    agents = agent_order or [str(a) for a in p["agent"].values]
    fig, axes = _grid_of_axes(len(agents))
    lo, hi = _minutes_range(calibration)
    inside = (grid >= lo) & (grid <= hi)
    for ax, agent in zip(axes, agents, strict=False):
        draws = p.sel(agent=agent).values.reshape(-1, len(grid))[:, inside]
        q = np.quantile(draws, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0)
        x = grid[inside]
        ax.fill_between(x, q[0], q[4], color="tab:blue", alpha=0.2, lw=0, label="95%")
        ax.fill_between(x, q[1], q[3], color="tab:blue", alpha=0.4, lw=0, label="50%")
        ax.plot(x, q[2], color="tab:blue", lw=1.2, label="median")
        t = calibration[calibration["agent"] == agent]
        ax.scatter(t["centre_minutes"], t["observed"], s=8 + 40 * t["runs"] / max(1, t["runs"].max()),
                   color="black", zorder=3, label="observed (size: runs)")
        ax.set_title(agent, fontsize=9)
        minutes_axis(ax, lo, hi, axis="x")
        ax.set_ylim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("P(success)")
        if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
            ax.set_xlabel("human task length")
    axes[0].legend(fontsize=6, loc="upper right")
    fig.suptitle(f"{model}: success curves (p_curve: a new task of that length) over binned success rates",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_residual_structure(d: CheckData, s: ResidualStructure, model: str, agent_order: list[str] | None = None,
                            residuals: str = "observed minus posterior-mean predicted success rate per cell") -> Figure:
    """Agent and task residual correlation heatmaps and each block statistic against its PPC;
    ``residuals`` says in the title what a residual is."""
    agent_idx = [d.agents.index(a) for a in agent_order] if agent_order else list(range(len(d.agents)))
    task_idx = np.lexsort((d.log_minutes, d.family))  # by family, then length
    fig = plt.figure(figsize=(13, 9.5))
    gs = fig.add_gridspec(2, 2, height_ratios=[1.5, 1])
    ax = fig.add_subplot(gs[0, 0])
    c = s.agent_corr[np.ix_(agent_idx, agent_idx)]
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [d.agents[i] for i in agent_idx]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title("agent x agent residual correlation\n(over shared tasks; agents by release date or as given)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[0, 1])
    c = s.task_corr[np.ix_(task_idx, task_idx)]
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fam = d.family[task_idx]
    bounds = np.flatnonzero(np.diff(fam)) + 0.5
    for b in bounds:
        ax.axhline(b, color="0.3", lw=0.3)
        ax.axvline(b, color="0.3", lw=0.3)
    ax.set_xlabel("task (grouped by family, lines between families; by length within)")
    ax.set_ylabel("task")
    ax.set_title("task x task residual correlation (over shared agents)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    names = {"agent_eigen_share": "agent residual eigen share (leading eigenvalue / total)",
             "task_block": "task block: within-family minus between-family correlation"}
    for col, key in enumerate(("agent_eigen_share", "task_block")):
        ax = fig.add_subplot(gs[1, col])
        rep = s.replicated.get(key, np.array([]))
        rep = rep[np.isfinite(rep)]
        if key not in s.observed:
            ax.set_axis_off()
            continue
        if rep.size:
            ax.hist(rep, bins=30, color="tab:blue", alpha=0.6, label="replicated data")
        obs = s.observed[key]
        if np.isfinite(obs):
            p = s.p_values[key]
            p_text = f"p < {1 / rep.size:.3f}" if p == 0 else f"p > {1 - 1 / rep.size:.3f}" if p == 1 else f"p = {p:.3f}"
            ax.axvline(obs, color="tab:red", lw=2, label=f"observed ({p_text})")
        ax.set_title(names[key], fontsize=9)
        ax.set_xlabel("statistic")
        ax.set_ylabel("replicated datasets")
        ax.legend(fontsize=7)
    fig.suptitle(f"{model}: residual structure the model leaves (residual = {residuals})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_loo_pit(result: CheckResult) -> Figure:
    """LOO-PIT ECDF difference from uniform with a 95% band, and Pareto k per cell."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    pit = np.sort(result.pit[np.isfinite(result.pit)])
    if pit.size:
        u = np.linspace(0, 1, 201)
        ecdf = np.searchsorted(pit, u, side="right") / pit.size
        band = 1.96 * np.sqrt(u * (1 - u) / pit.size)
        ax1.fill_between(u, -band, band, color="0.85", label="95% pointwise band (uniform)")
        ax1.plot(u, ecdf - u, color="tab:blue", label="LOO-PIT ECDF - uniform")
        ax1.axhline(0, color="0.4", lw=0.8)
    ax1.set_xlabel("PIT value")
    ax1.set_ylabel("ECDF difference")
    ax1.set_title("LOO-PIT (randomised for discrete data)", fontsize=9)
    ax1.legend(fontsize=7)
    k = result.pareto_k
    if np.isfinite(k).any():
        ax2.scatter(np.arange(k.size), k, s=4, c=np.where(k > 0.7, "tab:red", "tab:blue"))
        ax2.axhline(0.7, color="tab:red", lw=0.8, ls="--")
        ax2.set_title(f"Pareto k per cell ({int(np.sum(k > 0.7))} above 0.7: PSIS-LOO unreliable there)",
                      fontsize=9)
    ax2.set_xlabel("cell (agent-major order)")
    ax2.set_ylabel("Pareto k")
    fig.suptitle(f"{result.model}: LOO-PIT and Pareto k", fontsize=10)
    fig.tight_layout()
    return fig


def write_check_outputs(result: CheckResult, idata: xr.DataTree, directory: Path,
                        agent_order: list[str] | None = None) -> list[Path]:
    """Write the p-value and calibration tables and the four figures of one model's checks."""
    from horizon_zoo.plots import save_figure
    from horizon_zoo.rundir import write_table

    write_table(result.p_values, directory / "tables", f"checks_{result.model}")
    write_table(result.calibration, directory / "tables", f"calibration_{result.model}")
    figures = {
        "calibration": plot_calibration(result.calibration, result.model, agent_order),
        "curves": plot_success_curves(idata, result.calibration, result.model, agent_order),
        "residuals": plot_residual_structure(result.data, result.residuals, result.model, agent_order),
        "loo_pit": plot_loo_pit(result),
    }
    paths = []
    for name, fig in figures.items():
        path = directory / "figures" / f"{name}_{result.model}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
