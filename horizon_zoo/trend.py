"""How horizons grow with release date: doubling times, p80/p50 ratios and forecasts.

The trend is a line of log2 horizon on release date fitted **per posterior draw**, and drawn
from that draw's regression posterior, so the doubling time's interval carries each agent's
horizon uncertainty and the agents' scatter around the line (METR fits one line to point
estimates and bootstraps tasks instead). Agents whose horizon falls outside the curve grid in a
draw enter that draw at the grid's edge; the share of such draws is reported with the trend and
warned about, never hidden, and agents off the grid in most draws are left out. A draw in which
an agent's curve never reaches q (a ceiling below q) has no horizon for it: such draws are left
out of the regression and their share is reported (``undefined_draws``); agents without a
horizon in most draws are left out.

Models that fit the trend inside Stan (``logistic_trend``: ``trend_level``, ``trend_slope``)
also get the joint model's own trend, labelled ``joint``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from horizon_zoo.horizons import CURVES, horizon_draws
from horizon_zoo.release_dates import decimal_year, from_decimal_year

log = logging.getLogger(__name__)

WORK_DAY, WORK_WEEK, WORK_MONTH = 8 * 60.0, 40 * 60.0, 167 * 60.0
DEFAULT_THRESHOLDS = {"1 work-day (8 h)": WORK_DAY, "1 work-week (40 h)": WORK_WEEK,
                      "1 work-month (167 h)": WORK_MONTH}
CONSTANT_HAZARD_RATIO = np.log(0.8) / np.log(0.5)  # h80 / h50 when the hazard is constant
CENSORED_WARNING_SHARE = 0.05


@dataclass(frozen=True)
class TrendDraws:
    """Posterior draws of one trend line ``log2 h = level + slope * (year - year_mean)``."""

    q: float
    curve: str
    source: str  # "per-draw regression" or "joint"
    agents: tuple[str, ...]
    level: np.ndarray  # log2 minutes at year_mean, one value per draw
    slope: np.ndarray  # doublings per year, one value per draw
    year_mean: float
    year_range: tuple[float, float]
    censored: Mapping[str, float]  # share of draws outside the grid, per agent
    # share of posterior draws left out because some agent's curve never reaches q in them
    undefined: float = 0.0
    # positions (in the flattened chain x draw order) of the posterior draws kept, one per value
    # of level and slope; None when every draw is kept. Two trends are compared draw by draw.
    draws: np.ndarray | None = None

    @property
    def positions(self) -> np.ndarray:
        """Positions of the draws kept (all of them when ``draws`` is None)."""
        return np.arange(len(self.slope)) if self.draws is None else self.draws

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The slopes of the posterior draws at ``positions`` (each must be one of ``draws``)."""
        if self.draws is None:
            return self.slope[positions]
        return self.slope[np.searchsorted(self.draws, positions)]

    @property
    def doubling_months(self) -> np.ndarray:
        """Months per doubling per draw (negative when the horizon shrinks, inf when flat)."""
        with np.errstate(divide="ignore"):
            return 12.0 / self.slope

    @property
    def doubling_summary(self) -> tuple[float, float, float]:
        """Months per doubling: median and 95% interval, taken on the slope and inverted (so
        they stay right when slopes near 0 make single draws' doubling times huge); inf where
        the slope's quantile is <= 0. The one summary every table and figure shows."""
        s_med, s_lo, s_hi = _interval(self.slope)
        return (12 / s_med if s_med > 0 else np.inf, 12 / s_hi if s_hi > 0 else np.inf,
                12 / s_lo if s_lo > 0 else np.inf)

    def log2_horizon_at(self, years: np.ndarray) -> np.ndarray:
        """log2 minutes on the trend at ``years``: shape (draws, len(years))."""
        return self.level[:, None] + self.slope[:, None] * (np.asarray(years)[None, :] - self.year_mean)

    def crossing_year(self, minutes: float) -> np.ndarray:
        """Year at which the trend reaches ``minutes`` per draw; nan where it never does."""
        with np.errstate(divide="ignore", invalid="ignore"):
            year = self.year_mean + (np.log2(minutes) - self.level) / self.slope
        return np.where(self.slope > 0, year, np.nan)


def frontier_agents(medians: Mapping[str, float], years: Mapping[str, float]) -> list[str]:
    """Agents that beat every agent released before them (METR's state-of-the-art set).

    ``medians`` are horizon medians (any monotone summary works). Agents released the same day
    compete only with earlier releases, so both can be on the frontier.
    """
    agents = sorted((a for a in medians if a in years), key=lambda a: (years[a], a))
    frontier, best_before, best_today, today = [], -np.inf, -np.inf, None
    for agent in agents:
        if years[agent] != today:
            best_before, best_today, today = max(best_before, best_today), -np.inf, years[agent]
        if medians[agent] > best_before:
            frontier.append(agent)
        best_today = max(best_today, medians[agent])
    return frontier


def trend_draws(
    idata: xr.DataTree,
    release_dates: Mapping[str, dt.date],
    q: float = 0.5,
    *,
    agents: str | Sequence[str] = "frontier",
    curve: str = "p_curve",
    regression_uncertainty: bool = True,
    seed: int = 0,
) -> TrendDraws:
    """Regress log2 q-horizon on release year in every posterior draw.

    ``agents`` is ``"frontier"`` (agents that beat all earlier ones on the median 50% horizon
    of this curve), ``"all"`` (every dated agent) or an explicit list. Agents chosen by rule
    whose horizon is off the grid in most draws are left out (their horizon is only a bound)
    with a warning; listed agents are always kept.

    With ``regression_uncertainty`` each draw's line is itself drawn from the posterior of a
    linear regression with flat priors (``sigma^2 ~ RSS / chi^2_{n-2}``, then level and slope
    normal around the least-squares fit), so the interval carries both the agents' horizon
    uncertainty and their scatter around the line. Without it, only the former.
    """
    years = {a: decimal_year(d) for a, d in release_dates.items()}
    h = horizon_draws(idata, q, curve)
    fitted = [str(a) for a in h["agent"].values]
    dated = [a for a in fitted if a in years]
    if isinstance(agents, str):
        if agents == "all":
            chosen = dated
        elif agents == "frontier":
            h50 = horizon_draws(idata, 0.5, curve)
            medians = {str(a): float(np.nanmedian(h50.sel(agent=a).values)) for a in dated
                       if not np.isnan(h50.sel(agent=a).values).all()}
            chosen = frontier_agents(medians, years)
        else:
            raise ValueError(f"agents must be 'frontier', 'all' or a list of names, not {agents!r}")
    else:
        unknown = [a for a in agents if a not in dated]
        if unknown:
            raise ValueError(f"no fitted, dated agent named {', '.join(unknown)}")
        chosen = list(agents)
    grid = np.asarray(idata["posterior"].to_dataset()["grid"].values)
    if isinstance(agents, str):
        no_horizon = {a: float(np.mean(np.isnan(h.sel(agent=a).values))) for a in chosen}
        dropped = [a for a in chosen if no_horizon[a] > 0.5]
        if dropped:
            log.warning("p%d trend (%s): left out %s: the curve never reaches %d%% in most draws", round(q * 100),
                        CURVES.get(curve, curve), ", ".join(f"{a} ({no_horizon[a]:.0%})" for a in dropped),
                        round(q * 100))
            chosen = [a for a in chosen if a not in dropped]
        shares = {a: _offgrid_share(h.sel(agent=a).values, grid) for a in chosen}
        dropped = [a for a in chosen if shares[a] > 0.5]
        if dropped:
            log.warning("p%d trend (%s): left out %s: the horizon is off the grid in most draws, so only a bound "
                        "is known (name agents with --trend-agents to force them in)", round(q * 100),
                        CURVES.get(curve, curve), ", ".join(f"{a} ({shares[a]:.0%})" for a in dropped))
            chosen = [a for a in chosen if a not in dropped]
    x_years = np.array([years[a] for a in chosen])
    if len(chosen) < 2 or np.ptp(x_years) == 0:
        raise ValueError(f"a trend needs at least two agents with different release dates; got {chosen}")
    values = h.sel(agent=chosen).values.reshape(-1, len(chosen))
    # A draw in which some agent has no q-horizon has no line through all agents: it is left out.
    defined = ~np.isnan(values).any(axis=1)
    if not defined.any():
        raise ValueError(f"no posterior draw has a p{round(q * 100)} horizon for every one of {chosen}")
    undefined = float(1 - defined.mean())
    values = values[defined]
    censored = {a: _offgrid_share(values[:, i], grid) for i, a in enumerate(chosen)}
    y = np.log2(np.clip(values, grid[0], grid[-1]))
    xc = x_years - x_years.mean()
    sxx = xc @ xc
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / sxx
    level = y.mean(axis=1)
    df = len(chosen) - 2
    if regression_uncertainty and df > 0:
        rng = np.random.default_rng(seed)
        rss = np.sum((y - level[:, None] - slope[:, None] * xc[None, :]) ** 2, axis=1)
        sigma = np.sqrt(rss / rng.chisquare(df, size=len(rss)))
        slope = slope + sigma / np.sqrt(sxx) * rng.standard_normal(len(rss))
        level = level + sigma / np.sqrt(len(chosen)) * rng.standard_normal(len(rss))
    return TrendDraws(q=q, curve=CURVES.get(curve, curve), source="per-draw regression", agents=tuple(chosen),
                      level=level, slope=slope, year_mean=float(x_years.mean()),
                      year_range=(float(x_years.min()), float(x_years.max())), censored=censored,
                      undefined=undefined, draws=np.flatnonzero(defined))


def _offgrid_share(minutes: np.ndarray, grid: np.ndarray) -> float:
    """Share of the draws with a horizon (not NaN) that lie off the grid: NaN draws counted as
    on the grid let metr-early's davinci-002 (off the grid in 59% of its defined draws) into the
    trend as if it were mostly measured."""
    minutes = np.asarray(minutes).reshape(-1)
    minutes = minutes[~np.isnan(minutes)]
    return float(np.mean((minutes <= grid[0]) | (minutes >= grid[-1]))) if minutes.size else 0.0


def joint_trend_draws(idata: xr.DataTree) -> TrendDraws | None:
    """The trend a joint model fitted inside Stan (``trend_level``, ``trend_slope``), if it has one."""
    post = idata["posterior"].to_dataset()
    if not {"trend_level", "trend_slope"} <= set(post) or "release_year" not in idata["constant_data"]:
        return None
    years = np.asarray(idata["constant_data"]["release_year"].values, dtype=float)
    return TrendDraws(q=0.5, curve=CURVES["p_curve"], source="joint", agents=tuple(map(str, post["agent"].values)),
                      level=post["trend_level"].values.reshape(-1), slope=post["trend_slope"].values.reshape(-1),
                      year_mean=float(years.mean()), year_range=(float(years.min()), float(years.max())),
                      censored={})


def all_trends(
    idata: xr.DataTree,
    release_dates: Mapping[str, dt.date],
    qs: Sequence[float],
    agents: str | Sequence[str] = "frontier",
) -> list[TrendDraws]:
    """Per-draw regression trends for each q and curve the fit has, plus a joint trend if any."""
    out = []
    post = idata["posterior"].to_dataset()
    for curve in CURVES:
        if curve not in post:
            continue
        for q in qs:
            try:
                out.append(trend_draws(idata, release_dates, q, agents=agents, curve=curve))
            except ValueError as exc:  # e.g. a ceiling below q: no agent has a q-horizon on the grid
                log.warning("no p%d trend (%s): %s", round(q * 100), CURVES[curve], exc)
    joint = joint_trend_draws(idata)
    if joint is not None:
        out.append(joint)
    for trend in out:
        heavy = {a: s for a, s in trend.censored.items() if s > CENSORED_WARNING_SHARE}
        if heavy:
            log.warning("p%d trend (%s): %s; those draws enter the regression at the grid's edge",
                        round(trend.q * 100), trend.curve,
                        ", ".join(f"{a} is off the grid in {s:.0%} of draws" for a, s in heavy.items()))
    return out


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (np.nan, np.nan, np.nan)
    lo, med, hi = np.quantile(values, [0.025, 0.5, 0.975])
    return float(med), float(lo), float(hi)


def doubling_table(trends: Sequence[TrendDraws]) -> pd.DataFrame:
    """Doubling time in months (median, 95% interval) for each trend, with what went into it.

    The interval is taken on the slope and inverted, so it stays correct when slopes near zero
    make doubling times huge; ``p_shrinking`` is the share of draws where the horizon shrinks.
    """
    rows = []
    for t in trends:
        months, lo, hi = t.doubling_summary
        rows.append({
            "q": t.q, "curve": t.curve, "trend": t.source,
            "doubling_months": months, "lo95_months": lo, "hi95_months": hi,
            "doublings_per_year": _interval(t.slope)[0],
            "p_shrinking": float(np.mean(t.slope <= 0)),
            "n_agents": len(t.agents),
            "max_offgrid_share": max(t.censored.values(), default=0.0),
            "undefined_draws": t.undefined,
            "agents": ", ".join(t.agents),
        })
    return pd.DataFrame(rows)


def months_text(months: float, lo: float, hi: float) -> str:
    """``median [lo, hi]`` months, an infinite bound written as ``unbounded``."""
    return " ".join(f"{months:.1f} [{lo:.1f}, {hi:.1f}]".replace("inf", "unbounded").split())


def doubling_text(table: pd.DataFrame) -> list[str]:
    """``median [lo, hi]`` months for each row of :func:`doubling_table` output."""
    return [months_text(m, lo, hi)
            for m, lo, hi in zip(table["doubling_months"], table["lo95_months"], table["hi95_months"], strict=False)]


def doubling_ratio_table(trends: Sequence[TrendDraws], numerator: float = 0.8,
                         denominator: float = 0.5) -> pd.DataFrame:
    """Ratio of the p80 and p50 doubling times per draw (1 when the two trends are parallel)."""
    rows = []
    by_key = {(t.q, t.curve): t for t in trends if t.source != "joint"}
    for (q, curve), num in by_key.items():
        den = by_key.get((denominator, curve))
        if not np.isclose(q, numerator) or den is None:
            continue
        # A doubling time exists only where the horizon grows: the ratio is taken over the draws
        # where both trends grow, and the share of such draws is reported beside it.
        # Each trend keeps the draws in which its every agent reaches its q: pair the common ones.
        common = np.intersect1d(den.positions, num.positions)
        slope_den, slope_num = den.at(common), num.at(common)
        growing = (slope_den > 0) & (slope_num > 0)
        ratio = slope_den[growing] / slope_num[growing]  # (12 / slope80) / (12 / slope50)
        med, lo, hi = _interval(ratio) if growing.any() else (np.nan, np.nan, np.nan)
        rows.append({"curve": curve, "ratio": f"p{round(numerator * 100)}/p{round(denominator * 100)}",
                     "median": med, "lo95": lo, "hi95": hi, "share_both_growing": float(growing.mean()),
                     "draws_paired": int(common.size),
                     "agents": ", ".join(num.agents)})
    return pd.DataFrame(rows)


def horizon_ratio_table(idata: xr.DataTree, numerator: float = 0.8, denominator: float = 0.5,
                        curve: str = "p_curve") -> pd.DataFrame:
    """Each agent's h80 / h50 ratio (median and 95% interval); a constant hazard predicts 0.32."""
    num = horizon_draws(idata, numerator, curve)
    den = horizon_draws(idata, denominator, curve)
    rows = []
    for agent in num["agent"].values:
        a, b = num.sel(agent=agent).values.reshape(-1), den.sel(agent=agent).values.reshape(-1)
        ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
        med, lo, hi = _interval(a[ok] / b[ok]) if ok.any() else (np.nan, np.nan, np.nan)
        rows.append({"agent": str(agent), "curve": CURVES.get(curve, curve), "median": med,
                     "lo95": lo, "hi95": hi, "share_on_grid": float(ok.mean())})
    return pd.DataFrame(rows)


def forecast_table(trends: Sequence[TrendDraws],
                   thresholds: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Date at which each trend reaches each threshold (minutes): median and 95% interval.

    ``extrapolation_years`` is how far past the last release the median lies; ``far`` flags
    forecasts further beyond the data than the data's own span of release dates.
    """
    thresholds = DEFAULT_THRESHOLDS if thresholds is None else thresholds
    rows = []
    for t in trends:
        span = t.year_range[1] - t.year_range[0]
        for label, minutes in thresholds.items():
            year = t.crossing_year(minutes)
            never = float(np.mean(~np.isfinite(year)))
            med, lo, hi = np.quantile(np.where(np.isfinite(year), year, np.inf), [0.5, 0.025, 0.975],
                                      method="inverted_cdf")  # no interpolation between infinities
            beyond = med - t.year_range[1]
            rows.append({
                "q": t.q, "curve": t.curve, "trend": t.source, "threshold": label,
                "median_date": _date_text(med), "lo95_date": _date_text(lo), "hi95_date": _date_text(hi),
                "median_year": med, "p_never": never,
                "extrapolation_years": beyond, "far": bool(beyond > span),
            })
    table = pd.DataFrame(rows)
    far = table[table["far"]] if len(table) else table
    if len(far):
        log.warning("%d forecast(s) lie further beyond the last release than the data's whole date range; "
                    "they are extrapolations of a straight line, not predictions", len(far))
    return table


def _date_text(year: float) -> str:
    if not np.isfinite(year):
        return "never" if year > 0 else "n/a"
    if year > 9999 or year < 1:
        return "after 9999" if year > 0 else "before year 1"
    return from_decimal_year(year).isoformat()
