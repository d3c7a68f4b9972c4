"""Horizons read off p_curve draws: interpolation, off-grid bounds, tables."""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pytest

from horizon_zoo.contract import default_grid
from horizon_zoo.horizons import crossing_log_minutes, format_minutes, horizon_table, wide_horizon_table


def logistic_curves(h50_log: np.ndarray, slope: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(slope[..., None] * (grid - h50_log[..., None]))))


def test_crossing_is_exact_for_logistic_curves():
    rng = np.random.default_rng(1)
    grid = default_grid()
    h = rng.uniform(grid[5], grid[-5], 500)
    slope = -rng.uniform(0.3, 3.0, 500)
    for q in (0.5, 0.8, 0.2):
        expected = h + np.log(q / (1 - q)) / slope
        inside = (expected > grid[0]) & (expected < grid[-1])
        got = crossing_log_minutes(logistic_curves(h, slope, grid), grid, q)
        np.testing.assert_allclose(got[inside], expected[inside], atol=1e-6)


def test_off_grid_horizons_are_infinite_not_clipped():
    grid = default_grid()
    # a logistic whose 50% point lies 3 log-minutes below the grid is falling there: below the grid
    below = logistic_curves(np.array([grid[0] - 3.0]), np.array([-1.0]), grid)[0]
    curves = np.stack([below, np.full(len(grid), 0.95)])
    got = crossing_log_minutes(curves, grid, 0.5)
    assert got[0] == -np.inf and got[1] == np.inf


def test_curves_that_never_reach_q_have_no_horizon():
    """Issue 37 item 5: a ceiling below q, a flat or a rising curve is undefined (NaN), not '< 1 s'."""
    grid = default_grid()
    x = (grid - grid.mean()) / np.log(2)
    ceiling = 0.05 + (0.9 - 0.05) / (1 + np.exp(-(2.0 - 0.7 * x)))  # 4PL with ceiling 0.9
    rising = 1 / (1 + np.exp(-(0.3 * x - 1.0)))
    flat = np.full(len(grid), 0.3)
    far_below = logistic_curves(np.array([grid[0] - (grid[-1] - grid[0]) - 1.0]), np.array([-1.0]), grid)[0]
    got = crossing_log_minutes(np.stack([ceiling, rising, flat, far_below]), grid, 0.95)
    assert np.isnan(got[:3]).all()
    # a curve still falling steeply at the grid's edge but whose 95% point lies beyond one grid-span below it
    assert np.isnan(got[3])
    assert np.isfinite(crossing_log_minutes(ceiling[None], grid, 0.5)[0])  # the ceiling model has a p50


def test_horizon_table_counts_undefined_draws_and_leaves_them_out_of_the_quantiles():
    grid = default_grid()
    rng = np.random.default_rng(4)
    h = rng.normal(np.log(30.0), 0.2, (2, 400))
    p = logistic_curves(h, np.full_like(h, -1.0), grid)
    p[0, :200] = 0.3  # a quarter of the 800 draws never reach 0.5
    dt = azb.from_dict({"posterior": {"p_curve": p[..., None, :]}}, coords={"agent": ["a"], "grid": np.exp(grid)},
                       dims={"p_curve": ["agent", "grid"]})
    row = horizon_table(dt, qs=[0.5]).iloc[0]
    assert row["undefined"] == pytest.approx(0.25) and row["below_grid"] == 0.0
    defined = np.exp(h).reshape(-1)[200:]
    assert row["median_min"] == pytest.approx(np.quantile(defined, 0.5, method="inverted_cdf"), rel=1e-3)
    all_undefined = azb.from_dict({"posterior": {"p_curve": np.full((2, 10, 1, len(grid)), 0.3)}},
                                  coords={"agent": ["a"], "grid": np.exp(grid)}, dims={"p_curve": ["agent", "grid"]})
    row = horizon_table(all_undefined, qs=[0.5]).iloc[0]
    assert row["undefined"] == 1.0 and np.isnan(row["median_min"]) and row["horizon"] == "n/a [n/a, n/a]"


def test_horizon_table_reports_quantiles_and_bounds():
    grid = default_grid()
    rng = np.random.default_rng(2)
    chains, draws = 2, 500
    h = np.stack([rng.normal(np.log(30.0), 0.2, (chains, draws)),           # ~30 min
                  np.full((chains, draws), grid[-1] + 5.0),                   # beyond a month
                  np.full((chains, draws), grid[0] - 5.0)], axis=-1)          # below a second
    p = logistic_curves(h, np.full_like(h, -1.0), grid)
    dt = azb.from_dict({"posterior": {"p_curve": p}}, coords={"agent": ["a", "b", "c"], "grid": np.exp(grid)},
                       dims={"p_curve": ["agent", "grid"]})
    table = horizon_table(dt, qs=[0.5]).set_index("agent")
    assert table.loc["a", "median_min"] == pytest.approx(30.0, rel=0.05)
    sd = np.exp(h[..., 0]).std()
    assert abs(table.loc["a", "median_min"] - np.median(np.exp(h[..., 0]))) < 0.1 * sd
    assert table.loc["b", "above_grid"] == 1.0
    assert table.loc["b", "horizon"].startswith("> 30 days")
    assert table.loc["c", "below_grid"] == 1.0 and table.loc["c", "above_grid"] == 0.0
    assert table.loc["c", "horizon"] == "< 1 s [< 1 s, < 1 s]"


@pytest.mark.parametrize("minutes, text", [(0.5, "30 s"), (12.0, "12 min"), (90.0, "1.5 h"), (4320.0, "3 days")])
def test_format_minutes(minutes, text):
    assert format_minutes(minutes) == text


def test_wide_table_orders_agents_by_horizon_and_keeps_each_agents_curves_together():
    import pandas as pd

    rows = []
    for agent, med in [("slow", 100.0), ("fast", 1.0), ("mid", 10.0)]:
        for curve, factor in [("typical task", 0.5), ("marginal", 1.0)]:
            for q in (0.5, 0.8):
                m = med * factor / (4 if q == 0.8 else 1)
                rows.append({"curve": curve, "agent": agent, "q": q, "median_min": m, "horizon": f"{m:g}"})
    wide = wide_horizon_table(pd.DataFrame(rows))
    assert list(wide["agent"]) == ["fast", "fast", "mid", "mid", "slow", "slow"]
    assert list(wide["curve"]) == ["marginal", "typical task"] * 3
    assert list(wide.columns[-2:]) == ["p50 [95% CI]", "p80 [95% CI]"]
    assert wide.loc[0, "p80 [95% CI]"] == "0.25"


@pytest.mark.parametrize("minutes, text", [(0.0, "< 1 s"), (2.7e-14, "< 1 s"), (3.0, "3 min"),
                                           (1.1e191, "> 30 days"), (np.inf, "> 30 days"), (np.nan, "n/a")])
def test_metrs_point_horizons_print_within_the_posterior_columns_bounds(minutes, text):
    """METR's fit of an agent that almost never succeeds put '1.6e-12 s [6.7e-169 s, 7.6e+135 days]'
    beside the posterior's '< 1 s [< 1 s, 16 s]' (metr-early's gpt-3.5-turbo-instruct)."""
    from horizon_zoo.horizons import format_reference_minutes

    assert format_reference_minutes(minutes) == text
