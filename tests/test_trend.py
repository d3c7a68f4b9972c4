"""Release dates, the per-draw horizon trend, forecasts and the ``horizons`` command."""

from __future__ import annotations

import datetime as dt

import arviz_base as azb
import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cli import main
from horizon_zoo.contract import default_grid
from horizon_zoo.data import load_runs
from horizon_zoo.errors import DataError
from horizon_zoo.release_dates import decimal_year, from_decimal_year, match_release_dates, read_release_dates
from horizon_zoo.trend import (
    doubling_table,
    forecast_table,
    frontier_agents,
    horizon_ratio_table,
    trend_draws,
)
from tests.conftest import make_runs

# --- release dates -----------------------------------------------------------------------


def test_decimal_year_round_trips():
    for day in (dt.date(2024, 1, 1), dt.date(2024, 7, 2), dt.date(2023, 12, 31)):
        assert from_decimal_year(decimal_year(day)) == day
    assert decimal_year(dt.date(2024, 7, 2)) == pytest.approx(2024.5, abs=0.003)


def test_reads_metr_yaml_flat_yaml_and_csv(tmp_path):
    metr = tmp_path / "release_dates.yaml"
    metr.write_text("date:\n  agent0: 2024-03-04\n  'agent1': '2024-06-20'\n")
    flat = tmp_path / "flat.yaml"
    flat.write_text("agent0: 2024-03-04\nagent1: 2024-06-20\n")
    csv = tmp_path / "dates.csv"
    csv.write_text("alias,release_date\nagent0,2024-03-04\nagent1,2024-06-20\n")
    expected = {"agent0": dt.date(2024, 3, 4), "agent1": dt.date(2024, 6, 20)}
    for path in (metr, flat, csv):
        assert read_release_dates(path) == expected


@pytest.mark.parametrize("text, message", [
    ("date:\n  agent0: soon\n", "not YYYY-MM-DD"),
    ("- just\n- a list\n", "mapping of agent name"),
    ("date: [unclosed\n", "not valid YAML"),
])
def test_bad_release_date_files_are_named(tmp_path, text, message):
    path = tmp_path / "dates.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_release_dates(path)


def test_matching_by_alias_model_id_and_parenthetical():
    runs = make_runs(n_agents=3)
    runs["model"] = runs["alias"].map({"agent0": "lab/agent-zero", "agent1": "x", "agent2": "y"})
    data = load_runs(runs)
    dates = {"lab/agent-zero": dt.date(2023, 1, 1), "agent1 (GPT-3)": dt.date(2024, 1, 1),
             "AGENT2": dt.date(2025, 1, 1)}
    matched, notes = match_release_dates(data, dates)
    assert matched == {"agent0": dt.date(2023, 1, 1), "agent1": dt.date(2024, 1, 1), "agent2": dt.date(2025, 1, 1)}
    assert any("agent0" in n and "model id" in n for n in notes)
    assert any("agent1 (GPT-3)" in n for n in notes)


def test_missing_dates_stop_with_closest_names_unless_skipped():
    data = load_runs(make_runs(n_agents=3))
    dates = {"agent0": dt.date(2023, 1, 1), "agent1": dt.date(2024, 1, 1), "agnet2x": dt.date(2025, 1, 1)}
    with pytest.raises(DataError, match=r"'agent2' \(closest: 'agnet2x'\).*--skip-undated"):
        match_release_dates(data, dates)
    matched, notes = match_release_dates(data, dates, skip_missing=True)
    assert set(matched) == {"agent0", "agent1"} and "left out" in notes[-1]


# --- the trend from p_curve draws ----------------------------------------------------------


def _curves_idata(log2_h50: np.ndarray, agents: list[str], slope: float = -0.8) -> object:
    """A fit whose p_curve draws are logistic curves with the given log2 50% horizons.

    ``log2_h50`` has shape (chains, draws, agents)."""
    grid = default_grid()
    x = grid / np.log(2)
    p = 1 / (1 + np.exp(-slope * (x[None, None, None, :] - log2_h50[..., None])))
    idata = azb.from_dict({"posterior": {"p_curve": p}},
                          coords={"agent": agents, "grid": np.exp(grid)}, dims={"p_curve": ["agent", "grid"]})
    return idata


def test_per_draw_regression_recovers_a_known_doubling_time():
    rng = np.random.default_rng(0)
    dates = {f"a{i}": dt.date(2019 + i, 6, 1) for i in range(6)}
    years = np.array([decimal_year(d) for d in dates.values()])
    true_slope = 12 / 7.0  # doublings per year: 7-month doubling
    centre = true_slope * (years - years.mean()) + 3
    draws = centre[None, None, :] + rng.normal(0, 0.2, (2, 500, 6))
    idata = _curves_idata(draws, list(dates))
    trend = trend_draws(idata, dates, 0.5, agents="all", regression_uncertainty=False)
    # Without the regression's own uncertainty the per-draw slope is OLS through the drawn
    # horizons: its sd is 0.2 / sqrt(Sxx).
    sd = 0.2 / np.sqrt(np.sum((years - years.mean()) ** 2))
    assert np.mean(trend.slope) == pytest.approx(true_slope, abs=4 * sd / np.sqrt(1000) + 1e-3)
    assert np.std(trend.slope) == pytest.approx(sd, rel=0.1)
    # With it, the scatter of each draw's horizons around its line widens the interval.
    full = trend_draws(idata, dates, 0.5, agents="all")
    assert np.mean(full.slope) == pytest.approx(true_slope, abs=4 * np.std(full.slope) / np.sqrt(1000))
    assert np.std(full.slope) > 1.2 * sd
    table = doubling_table([full])
    assert table.loc[0, "lo95_months"] < 7.0 < table.loc[0, "hi95_months"]
    # The 80% horizon of the same logistic curves is a constant shift: same doubling time.
    trend80 = trend_draws(idata, dates, 0.8, agents="all", regression_uncertainty=False)
    assert np.allclose(trend80.slope, trend.slope, atol=1e-2)
    ratios = horizon_ratio_table(idata)
    assert np.allclose(ratios["median"], 2 ** (-np.log(4) / 0.8), rtol=0.02)


def test_frontier_keeps_agents_that_beat_every_earlier_release():
    years = {"old": 2020.0, "good": 2021.0, "worse": 2022.0, "best": 2023.0, "tied": 2023.0}
    medians = {"old": 1.0, "good": 5.0, "worse": 3.0, "best": 9.0, "tied": 6.0}
    # "tied" is released on the same day as "best": it competes only with earlier agents.
    assert frontier_agents(medians, years) == ["old", "good", "best", "tied"]


def test_off_grid_agents_are_counted_and_left_out_unless_named():
    dates = {"a": dt.date(2020, 1, 1), "b": dt.date(2022, 1, 1), "c": dt.date(2024, 1, 1)}
    draws = np.tile(np.array([-12.0, 2.0, 6.0]), (1, 100, 1))  # "a" far below one second
    draws[0, :30, 2] = 30.0  # "c" above one month in 30% of draws
    idata = _curves_idata(draws, list(dates))
    trend = trend_draws(idata, dates, 0.5, agents="all")
    assert trend.agents == ("b", "c") and trend.censored["c"] == pytest.approx(0.3)
    assert doubling_table([trend]).loc[0, "max_offgrid_share"] == pytest.approx(0.3)
    named = trend_draws(idata, dates, 0.5, agents=["a", "b", "c"])
    assert named.censored["a"] == 1.0


def test_forecast_dates_and_the_far_flag():
    dates = {f"a{i}": dt.date(2020 + i, 1, 1) for i in range(4)}
    years = np.array([decimal_year(d) for d in dates.values()])
    draws = (np.log2(60) + 1.0 * (years - years[-1]))[None, None, :] * np.ones((1, 50, 1))
    trend = trend_draws(_curves_idata(draws, list(dates)), dates, 0.5, agents="all")
    table = forecast_table([trend], {"2 h": 120.0, "1 work-month": 167 * 60.0})
    # One doubling per year from 1 hour on 2023-01-01: 2 hours a year later.
    assert abs(dt.date.fromisoformat(table.loc[0, "median_date"]) - dt.date(2024, 1, 1)) <= dt.timedelta(days=3)
    assert not table.loc[0, "far"]
    assert table.loc[1, "far"]  # log2(167) = 7.4 years beyond a 3-year range


def test_shrinking_trends_never_cross():
    dates = {"a": dt.date(2020, 1, 1), "b": dt.date(2024, 1, 1)}
    draws = np.tile(np.array([4.0, 2.0]), (1, 20, 1))
    trend = trend_draws(_curves_idata(draws, list(dates)), dates, 0.5, agents="all")
    table = forecast_table([trend], {"8 h": 480.0})
    assert table.loc[0, "p_never"] == 1.0 and table.loc[0, "median_date"] == "never"
    assert doubling_table([trend]).loc[0, "p_shrinking"] == 1.0


# --- fits (compile Stan) ------------------------------------------------------------------------

DOUBLING_MONTHS = 7.0


def _trend_runs(seed: int = 3) -> tuple[pd.DataFrame, dict[str, dt.date]]:
    """Logistic runs (no task effects) whose 50% horizons double every 7 months exactly."""
    rng = np.random.default_rng(seed)
    dates = {f"agent{i}": dt.date(2019, 3, 1) + dt.timedelta(days=int(i * 365.25 * 0.9)) for i in range(7)}
    log2_minutes = rng.uniform(np.log2(1 / 60), np.log2(16 * 60), 60)
    rows = []
    for agent, day in dates.items():
        log2_h50 = -3 + (decimal_year(day) - 2019.2) * 12 / DOUBLING_MONTHS
        p = 1 / (1 + np.exp(0.8 * (log2_minutes - log2_h50)))
        for t, (lm, pt) in enumerate(zip(log2_minutes, p, strict=False)):
            for r in range(6):
                rows.append({"run_id": f"{agent}-{t}-{r}", "task_id": f"f{t % 12}/t{t}", "task_family": f"f{t % 12}",
                             "alias": agent, "human_minutes": float(2 ** lm), "score_binarized": int(rng.random() < pt),
                             "invsqrt_task_weight": 1.0})
    return pd.DataFrame(rows), dates


@pytest.mark.stan
@pytest.mark.parametrize("model", ["logistic", "logistic_trend"])
def test_known_doubling_time_is_inside_the_95_interval(model, tmp_path):
    runs, dates = _trend_runs()
    data = api.load(runs, release_dates=dates)
    result = api.horizons(data, models=[model], trend_agents="all", write=False, progress=False,
                          settings=SamplerSettings(chains=2, warmup=400, draws=400, seed=11))
    table = result.doubling[(result.doubling["q"] == 0.5)]
    assert len(table) == (2 if model == "logistic_trend" else 1)  # joint trend too
    for row in table.itertuples():
        assert row.lo95_months < DOUBLING_MONTHS < row.hi95_months, row


@pytest.mark.stan
def test_horizons_command_writes_tables_and_figures(tmp_path, write_runs):
    runs, dates = _trend_runs()
    runs_path = write_runs(runs)
    dates_path = tmp_path / "release_dates.yaml"
    dates_path.write_text("date:\n" + "".join(f"  {a}: {d.isoformat()}\n" for a, d in dates.items()))
    out = tmp_path / "run"
    code = main(["-q", "horizons", "--model", "logistic", "--runs", str(runs_path), "--release-dates",
                 str(dates_path), "--q", "50,80", "--thresholds", "8h,2d", "--chains", "2", "--warmup", "200",
                 "--draws", "200", "--out", str(out)])
    assert code == 0
    for stem in ("horizons", "horizons_wide", "doubling", "doubling_ratio", "horizon_ratio", "forecasts"):
        assert (out / "tables" / f"{stem}.csv").is_file() and (out / "tables" / f"{stem}.md").is_file()
    forecasts = pd.read_csv(out / "tables" / "forecasts.csv")
    assert set(forecasts["threshold"]) == {"8 h", "2 d"}
    # 2 days is six times 8 hours: on a growing trend it is reached later, by log2(6) doublings
    wide = forecasts.pivot_table(index=["q", "curve", "trend"], columns="threshold", values="median_year")
    doubling = pd.read_csv(out / "tables" / "doubling.csv").set_index(["q", "curve", "trend"])["doubling_months"]
    gap = (wide["2 d"] - wide["8 h"]) * 12
    assert (gap > 0).all()
    assert gap.to_numpy() == pytest.approx(np.log2(6) * doubling.loc[gap.index].to_numpy(), rel=0.25)
    png = out / "figures" / "trend_logistic.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "Doubling time" in summary and "trend_logistic.png" in summary
    assert "## Diagnostics" in summary and pd.read_csv(out / "tables" / "diagnostics.csv")["model"].tolist() == ["logistic"]
    # METR's reference beside the posterior (issue 35): per q a column, and the disagreement flag
    wide = pd.read_csv(out / "tables" / "horizons_wide.csv")
    assert {"METR p50 [95% boot]", "METR p80 [95% boot]", "METR outside 95%"} <= set(wide.columns)
    marginal = wide[wide["curve"] == "marginal"]
    assert marginal["METR p50 [95% boot]"].str.contains(r"\[").all()
    metr = pd.read_csv(out / "tables" / "metr.csv")
    assert set(metr["agent"]) == set(marginal["agent"]) and set(metr["q"]) == {0.5, 0.8}
    # Reusing the saved fit gives the same table without sampling again.
    again = tmp_path / "again"
    assert main(["-q", "horizons", "--model", "logistic", "--runs", str(runs_path), "--release-dates",
                 str(dates_path), "--fits", str(out / "fits"), "--out", str(again)]) == 0
    assert not (again / "fits").exists()
    # The saved curves keep 3 significant digits (compact storage), so a horizon read from them
    # moves, but by far less than its posterior uncertainty: within 1% of its 95% interval's width.
    reread = pd.read_csv(again / "tables" / "horizons.csv")
    fresh = pd.read_csv(out / "tables" / "horizons.csv")
    assert reread[["curve", "agent", "q"]].equals(fresh[["curve", "agent", "q"]])
    width = fresh["hi95_min"] - fresh["lo95_min"]
    for column in ("median_min", "lo95_min", "hi95_min"):
        assert ((reread[column] - fresh[column]).abs() <= 0.01 * width).all(), column


def test_trend_model_without_dates_is_a_clear_error(write_runs, capsys):
    code = main(["horizons", "--model", "logistic_trend", "--runs", str(write_runs(make_runs())), "--out", "/dev/null/x"])
    assert code == 2
    assert "release date for every agent" in capsys.readouterr().err


@pytest.mark.stan
def test_invsqrt_weighted_logistic_matches_the_unpenalised_weighted_fit_within_posterior_sd():
    """What the README's weighted-fit claim rests on: the Bayesian logistic with --weights invsqrt
    centres each agent's p50 within one posterior sd of the weighted maximum-likelihood fit
    (METR's regression without its penalty; METR's own numbers are the reference column's)."""
    from horizon_zoo.metr import fit_logistic
    from tests.conftest import small_default

    data = api.load(small_default(n_agents=4, n_tasks=60), weights="invsqrt")
    fit = api.fit("logistic", data, settings=SamplerSettings(chains=2, warmup=500, draws=500, seed=3), progress=False)
    post = fit.idata["posterior"]["log2_h50"]
    runs = data.runs
    for agent in data.agents:
        r = runs[runs["agent"] == agent]
        slope, intercept = fit_logistic(np.log2(r["human_minutes"].to_numpy()), r["success"].to_numpy(float),
                                        r["weight"].to_numpy(), regularization=0.0)
        mle_log2_h50 = -intercept / slope
        draws = post.sel(agent=agent).values.reshape(-1)
        assert abs(np.mean(draws) - mle_log2_h50) < np.std(draws), (agent, np.mean(draws), mle_log2_h50)



def test_a_q_no_agent_reaches_gives_no_trend_instead_of_an_error(caplog):
    from horizon_zoo.trend import all_trends

    dates = {"a": dt.date(2020, 1, 1), "b": dt.date(2022, 1, 1), "c": dt.date(2024, 1, 1)}
    draws = np.tile(np.array([1.0, 3.0, 5.0]), (1, 50, 1))
    idata = _curves_idata(draws, list(dates))
    # A success ceiling of 0.7: the curves never reach 80%, so no agent has a p80 horizon.
    idata["posterior"]["p_curve"] = idata["posterior"]["p_curve"] * 0.7
    trends = all_trends(idata, dates, [0.5, 0.8], agents="all")
    assert [t.q for t in trends] == [0.5]  # p50 of the scaled curves still crosses
    assert "no p80 trend" in caplog.text


def test_draws_where_a_curve_never_reaches_q_are_left_out_of_the_trend_and_counted(caplog):
    """Issue 37 item 5: an undefined horizon no longer enters the regression as '< 1 s'."""
    dates = {"a": dt.date(2020, 1, 1), "b": dt.date(2022, 1, 1), "c": dt.date(2024, 1, 1)}
    draws = np.tile(np.array([1.0, 3.0, 5.0]), (1, 100, 1))  # log2 minutes: one doubling per year
    idata = _curves_idata(draws, list(dates))
    p = idata["posterior"]["p_curve"].values.copy()
    p[0, :20, 0, :] = 0.3  # agent "a" has no 50% horizon in 20% of the draws
    p[0, :, 1, :] = np.where(np.arange(100)[:, None] < 60, 0.3, p[0, :, 1, :])  # "b" in 60%
    idata["posterior"]["p_curve"] = idata["posterior"]["p_curve"].copy(data=p)
    trend = trend_draws(idata, dates, 0.5, agents="all", regression_uncertainty=False)
    assert trend.agents == ("a", "c") and "left out b (60%)" in caplog.text
    assert trend.undefined == pytest.approx(0.2) and len(trend.slope) == 80
    # the kept draws' line: 4 doublings over the 4 years between a and c
    assert np.allclose(trend.slope, (5.0 - 1.0) / (decimal_year(dates["c"]) - decimal_year(dates["a"])), atol=1e-6)
    assert doubling_table([trend]).loc[0, "undefined_draws"] == pytest.approx(0.2)
    named = trend_draws(idata, dates, 0.5, agents=["a", "b", "c"], regression_uncertainty=False)
    assert named.undefined == pytest.approx(0.6)  # a listed agent is kept; its undefined draws are not


def test_the_trend_figure_says_the_doubling_time_the_table_says():
    """Issue 32 item 3: the figure legend took a plain median of 12 / slope (4.9 months) where the
    table inverts the slope's median (4.97); both now read one summary."""
    from horizon_zoo.plots import _months
    from horizon_zoo.trend import TrendDraws, doubling_text

    rng = np.random.default_rng(5)
    slope = rng.normal(2.4, 1.0, 1001)  # some draws shrink: 12 / slope is not monotone over them
    trend = TrendDraws(q=0.5, curve="marginal", source="per-draw regression", agents=("a", "b"), level=slope * 0,
                       slope=slope, year_mean=2023.0, year_range=(2020.0, 2025.0), censored={})
    table = doubling_table([trend])
    assert _months(trend) == doubling_text(table)[0] + " months"
    assert table.loc[0, "doubling_months"] == pytest.approx(12 / np.median(slope))
    assert np.median(12 / slope) != pytest.approx(12 / np.median(slope), rel=1e-3)  # the old legend's number differs


def test_the_doubling_ratio_pairs_the_draws_both_trends_kept():
    """metr-early: the p80 trend kept 1,116 draws and the p50 trend 1,302 (the others had an agent
    whose curve never reaches q); the ratio compared arrays of different lengths and crashed."""
    from horizon_zoo.trend import TrendDraws, doubling_ratio_table

    slope50 = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # draws 0-4 all kept
    slope80 = np.array([0.5, 1.5, 2.0])  # only draws 1, 3, 4 kept
    common = {"curve": "marginal", "source": "per-draw regression", "agents": ("a", "b"), "year_mean": 2023.0,
              "year_range": (2020.0, 2025.0), "censored": {}}
    p50 = TrendDraws(q=0.5, level=slope50 * 0, slope=slope50, **common)
    p80 = TrendDraws(q=0.8, level=slope80 * 0, slope=slope80, draws=np.array([1, 3, 4]), **common)
    row = doubling_ratio_table([p50, p80]).iloc[0]
    # pairs (2.0, 0.5), (4.0, 1.5), (5.0, 2.0): ratios 4, 2.67, 2.5
    assert row["draws_paired"] == 3 and row["share_both_growing"] == 1.0
    assert row["median"] == pytest.approx(4.0 / 1.5)


def test_the_off_grid_share_that_leaves_an_agent_out_counts_only_draws_with_a_horizon(caplog):
    """metr-early's davinci-002: no 50% horizon in some draws, below one second in 59% of the
    rest. Counted over all draws (NaN as on the grid) it stayed under one half and the agent
    entered the trend at the grid's edge."""
    dates = {"a": dt.date(2020, 1, 1), "b": dt.date(2022, 1, 1), "c": dt.date(2024, 1, 1)}
    draws = np.tile(np.array([1.0, 3.0, 5.0]), (1, 100, 1))
    draws[0, 40:75, 0] = -8.0  # "a" below the grid (one second is -5.9) in 35 draws
    idata = _curves_idata(draws, list(dates))
    p = idata["posterior"]["p_curve"].values.copy()
    p[0, :40, 0, :] = 0.3  # ... and no 50% horizon in 40: off the grid in 35 of its 60 defined draws
    idata["posterior"]["p_curve"] = idata["posterior"]["p_curve"].copy(data=p)
    trend = trend_draws(idata, dates, 0.5, agents="all", regression_uncertainty=False)
    assert trend.agents == ("b", "c") and "left out a (58%)" in caplog.text
