"""Figures shared by the commands: horizon axes in human units and horizon-vs-date trends."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never needs a display
# Agent names with emoji or CJK characters lack glyphs in the default font: the figure shows boxes
# for them, while tables and reports keep the exact names, so one warning per glyph is noise.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from horizon_zoo.release_dates import decimal_year, from_decimal_year
from horizon_zoo.trend import TrendDraws, months_text

MINUTE_TICKS = {"1 s": 1 / 60, "10 s": 1 / 6, "1 min": 1, "4 min": 4, "15 min": 15, "1 h": 60, "4 h": 240,
                "1 day": 1440, "1 week": 10080, "1 month": 43200}


def minutes_axis(ax: plt.Axes, lo: float, hi: float, axis: str = "y") -> None:
    """Log axis in minutes labelled 1 s ... 1 month between ``lo`` and ``hi``."""
    ticks = {k: v for k, v in MINUTE_TICKS.items() if lo <= v <= hi}
    if axis == "y":
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        ax.set_yticks(list(ticks.values()), list(ticks))
        ax.minorticks_off()
    else:
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xticks(list(ticks.values()), list(ticks))
        ax.minorticks_off()


def _as_datetime(years: np.ndarray) -> list[dt.date]:
    return [from_decimal_year(float(y)) for y in years]


def _draw_trend_band(ax: plt.Axes, trend: TrendDraws, years: np.ndarray, color: str, label: str) -> None:
    log2_h = trend.log2_horizon_at(years)
    lo, med, hi = np.quantile(2.0 ** log2_h, [0.025, 0.5, 0.975], axis=0)
    dates = _as_datetime(years)
    ax.fill_between(dates, lo, hi, color=color, alpha=0.15, lw=0)
    ax.plot(dates, med, color=color, lw=1.5, label=label)


def _points(ax: plt.Axes, rows: pd.DataFrame, years: Mapping[str, float], grid: tuple[float, float],
            frontier: Sequence[str], color: str, offset_days: float = 0.0, labels: bool = True) -> None:
    lo_edge, hi_edge = grid
    for row in rows.itertuples():
        if row.agent not in years:
            continue
        date = from_decimal_year(years[row.agent]) + dt.timedelta(days=offset_days)
        med = float(np.clip(row.median_min, lo_edge, hi_edge))
        lo = float(np.clip(row.lo95_min, lo_edge, hi_edge))
        hi = float(np.clip(row.hi95_min, lo_edge, hi_edge))
        on_frontier = row.agent in frontier
        ax.errorbar([date], [med], yerr=[[med - lo], [hi - med]], fmt="o", color=color, ms=5, capsize=2,
                    mfc=color if on_frontier else "white", lw=1)
        if labels:
            ax.annotate(row.agent, (mdates.date2num(date), med), xytext=(4, 3), textcoords="offset points",
                        fontsize=7, color="0.2")


def _y_range(ax: plt.Axes, grid: tuple[float, float]) -> tuple[float, float]:
    """What was drawn, padded by a factor 2 each way, within the grid."""
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    return max(grid[0], lo / 2), min(grid[1], hi * 2)


def plot_trend(horizons: pd.DataFrame, trends: Sequence[TrendDraws], release_dates: Mapping[str, dt.date],
               grid: tuple[float, float], title: str, extend_years: float = 1.0) -> Figure:
    """Horizon vs release date, one panel per q: agents' medians and 95% intervals, trend bands.

    ``horizons`` is :func:`horizon_zoo.horizons.horizon_table` output for one model. Filled
    points are the agents the trend was fitted to; intervals reaching the grid's edge are cut
    there (the table says "< 1 s" / "> 30 days").
    """
    years = {a: decimal_year(d) for a, d in release_dates.items()}
    qs = sorted(horizons["q"].unique())
    fig, axes = plt.subplots(1, len(qs), figsize=(6.2 * len(qs), 4.6), squeeze=False, sharey=True)
    colors = {"marginal": "tab:blue", "typical task": "tab:orange"}
    for ax, q in zip(axes[0], qs, strict=False):
        shown = [t for t in trends if np.isclose(t.q, q)]
        for curve, color in colors.items():
            rows = horizons[(horizons["q"] == q) & (horizons["curve"] == curve)]
            if rows.empty:
                continue
            curve_trends = [t for t in shown if t.curve == curve and t.source != "joint"]
            frontier = curve_trends[0].agents if curve_trends else ()
            _points(ax, rows, years, grid, frontier, color, offset_days=0 if curve == "marginal" else 20,
                    labels=curve == "marginal")
            for t in curve_trends:
                span = np.linspace(t.year_range[0], t.year_range[1] + extend_years, 60)
                _draw_trend_band(ax, t, span, color, f"{curve}: doubling {_months(t)}")
        for t in (t for t in shown if t.source == "joint"):
            span = np.linspace(t.year_range[0], t.year_range[1] + extend_years, 60)
            _draw_trend_band(ax, t, span, "tab:green", f"joint Stan trend: doubling {_months(t)}")
        ax.set_title(f"{round(q * 100)}% horizon")
        ax.set_xlabel("release date")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ranges = [_y_range(ax, grid) for ax in axes[0]]
    for ax in axes[0]:  # one shared range so panels compare at a glance
        minutes_axis(ax, min(r[0] for r in ranges), max(r[1] for r in ranges))
    axes[0][0].set_ylabel("task length a human needs (log scale)")
    fig.suptitle(title + "  (filled: agents the trend is fitted to; bars: 95% intervals)", fontsize=10)
    fig.tight_layout()
    return fig


def _months(trend: TrendDraws) -> str:
    """The doubling time as the doubling table gives it (one summary, trend.doubling_summary)."""
    return months_text(*trend.doubling_summary) + " months"


def plot_trend_overlay(per_model: Mapping[str, tuple[pd.DataFrame, Sequence[TrendDraws]]],
                       release_dates: Mapping[str, dt.date], grid: tuple[float, float], q: float = 0.5,
                       extend_years: float = 1.0) -> Figure:
    """Several models' q-horizons and regression trends (marginal curves) on one axis."""
    years = {a: decimal_year(d) for a, d in release_dates.items()}
    fig, ax = plt.subplots(figsize=(8, 5))
    palette = plt.get_cmap("tab10")
    for i, (model, (horizons, trends)) in enumerate(per_model.items()):
        color = palette(i % 10)
        rows = horizons[(horizons["q"] == q) & (horizons["curve"] == "marginal")]
        trend = next((t for t in trends if np.isclose(t.q, q) and t.curve == "marginal"
                      and t.source != "joint"), None)
        _points(ax, rows, years, grid, trend.agents if trend else (), color,
                offset_days=12 * (i - (len(per_model) - 1) / 2), labels=i == 0)
        if trend is not None:
            span = np.linspace(trend.year_range[0], trend.year_range[1] + extend_years, 60)
            _draw_trend_band(ax, trend, span, color, f"{model}: doubling {_months(trend)}")
    minutes_axis(ax, *_y_range(ax, grid))
    ax.set_title(f"{round(q * 100)}% horizon by model (marginal curves, 95% intervals)")
    ax.set_xlabel("release date")
    ax.set_ylabel("task length a human needs (log scale)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_cv(table: pd.DataFrame) -> Figure:
    """elpd difference from the best model per CV scheme, +-2 SE bars (ArviZ plot_compare style)."""
    schemes = list(dict.fromkeys(table["scheme"]))
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.2 * len(schemes), 0.5 + 0.42 * table["model"].nunique() + 1),
                             squeeze=False)
    labels = {"cell": "PSIS-LOO: one more cell", "task": "leave tasks out", "family": "leave families out",
              "agent": "leave one agent out"}
    for ax, scheme in zip(axes[0], schemes, strict=False):
        t = table[table["scheme"] == scheme].sort_values("rank", ascending=False)
        y = np.arange(len(t))
        ax.errorbar(t["elpd_diff"], y, xerr=2 * t["dse"], fmt="o", color="tab:blue", capsize=3)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(y, t["model"], fontsize=8)
        ax.set_xlabel("elpd difference from the best (bars: 2 SE)")
        ax.set_title(labels.get(scheme, scheme), fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path) -> None:  # noqa: ANN001 - a Path
    """Save as PNG atomically and close the figure."""
    from horizon_zoo.rundir import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)
