"""METR's reference pipeline: its fit, weights and bootstrap, against METR's published numbers and
scikit-learn (METR's own fitter)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.data import load_runs
from horizon_zoo.metr import fit_logistic, hierarchical_resamples, log2_horizon, reference, run_weights
from tests.conftest import SHARED_DATA as SHARED
from tests.conftest import make_runs

needs_shared = pytest.mark.skipif(not (SHARED / "cyber-horizons").is_dir(), reason="../shared/data is not present")


@needs_shared
def test_reproduces_the_published_cyber_horizons_values():
    """Published by the cyber study (weights as given in its 'weight' column, METR's penalty 0.1):
    Claude 3.5 Haiku slope -0.433, intercept 0.207 (log2 minutes), p50 1.393 min; O3 p50 3.695 min."""
    data = api.load(SHARED / "cyber-horizons" / "all_runs.jsonl", weights="weight")
    t = reference(data, [0.5], weights="weight", n_boot=0).table.set_index("agent")
    haiku, o3 = t.loc["Claude 3.5 Haiku"], t.loc["O3"]
    assert haiku["slope"] == pytest.approx(-0.433, rel=1e-3)
    assert haiku["intercept"] == pytest.approx(0.207, rel=1e-3)
    assert haiku["horizon_min"] == pytest.approx(1.393, rel=1e-3)
    assert o3["horizon_min"] == pytest.approx(3.695, rel=1e-3)
    # the weights are used as they stand: GPT 2's sum to 1.076, and re-normalising them moves its p50
    assert data.runs.loc[data.runs["agent"] == "GPT 2", "weight"].sum() == pytest.approx(1.0762, abs=1e-4)


@needs_shared
def test_metr_early_p50s_equal_scikit_learns_fit():
    from sklearn.linear_model import LogisticRegression

    data = api.load(SHARED / "metr-early" / "all_runs.jsonl")
    t = reference(data, [0.5], weights="invsqrt", n_boot=0).table.set_index("agent")
    w = run_weights(data, "invsqrt")
    checked = 0
    for agent in data.agents:
        mask = (data.runs["agent"] == agent).to_numpy()
        y = data.runs.loc[mask, "success"].to_numpy()
        if y.min() == y.max():  # sklearn refuses one class; METR's convention is a horizon of 0
            assert t.loc[agent, "horizon_min"] == 0.0 and y.max() == 0
            continue
        x = np.log2(data.runs.loc[mask, "human_minutes"].to_numpy())[:, None]
        fit = LogisticRegression(C=1 / 0.1, tol=1e-12, max_iter=100_000).fit(x, y, sample_weight=w[mask])
        expected = 2 ** ((0 - fit.intercept_[0]) / fit.coef_[0, 0])
        assert t.loc[agent, "horizon_min"] == pytest.approx(expected, rel=1e-6), agent
        checked += 1
    assert checked >= 8


def test_newton_fit_is_the_penalised_optimum():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 8, 300)
    y = (rng.random(300) < 1 / (1 + np.exp(-(1.0 - 0.6 * x)))).astype(float)
    w = rng.uniform(0.5, 2, 300) / 300
    for lam in (0.0, 0.1, 1.0):
        slope, intercept = fit_logistic(x, y, w, lam)
        eta = intercept + slope * x
        p = 1 / (1 + np.exp(-eta))
        # the gradient of sum w logloss + lam / 2 slope^2 vanishes at the optimum
        assert abs(np.sum(w * (p - y))) < 1e-10 and abs(np.sum(w * (p - y) * x) + lam * slope) < 1e-10
    # the penalty pulls the slope towards 0 when the weights sum to 1
    assert abs(fit_logistic(x, y, w, 1.0)[0]) < abs(fit_logistic(x, y, w, 0.0)[0])
    assert fit_logistic(x, np.zeros(300), w)[0] == -np.inf  # METR: an agent with no success has horizon 0
    assert np.exp2(log2_horizon(-np.inf, 0.0, 0.5)) == 0.0


def test_weights_equal_and_invsqrt_are_computed_per_agent_to_sum_to_1():
    runs = make_runs(n_agents=2, n_tasks=6, runs_per_cell=2)
    runs = runs[~((runs["alias"] == "agent1") & (runs["task_id"] == "fam0/task0") & runs["run_id"].str.endswith("1"))]
    data = load_runs(runs)
    for scheme in ("equal", "invsqrt", None):
        w = pd.Series(run_weights(data, scheme), index=data.runs.index)
        assert w.groupby(data.runs["agent"]).sum().to_numpy() == pytest.approx([1.0, 1.0]), scheme
    equal = pd.Series(run_weights(data, "equal"), index=data.runs.index)
    a1 = data.runs["agent"] == "agent1"
    # agent1 has one run on task0 and two on the others: each task weighs the same in total
    per_task = equal[a1].groupby(data.runs.loc[a1, "task_id"]).sum()
    assert per_task.to_numpy() == pytest.approx(np.full(6, 1 / 6))
    invsqrt = pd.Series(run_weights(data, "invsqrt"), index=data.runs.index)
    assert invsqrt[a1].groupby(data.runs.loc[a1, "task_id"]).sum().to_numpy() == pytest.approx(np.full(6, 1 / 6))
    data_w = load_runs(runs.assign(my_w=2.0), weights="my_w")  # a column is used as given
    assert run_weights(data_w, "my_w") == pytest.approx(np.full(len(data_w.runs), 2.0))


def test_hierarchical_resamples_draw_families_then_tasks_then_runs():
    runs = make_runs(n_agents=2, n_tasks=8, runs_per_cell=3)
    data = load_runs(runs)
    arrays = {"agent": data.runs["agent"].to_numpy(str), "task": data.runs["task_id"].to_numpy(str),
              "family": data.runs["task_family"].to_numpy(str)}
    for idx in hierarchical_resamples(arrays, 50, seed=1):
        tasks = pd.Series(arrays["task"][idx])
        # every drawn (task, agent) cell brings its own number of runs, once per time the task was drawn
        cells = pd.DataFrame({"task": arrays["task"][idx], "agent": arrays["agent"][idx]}).value_counts()
        assert (cells % 3 == 0).all()
        # 2 families of 4 tasks: 8 task draws in all, so 8 x 2 agents x 3 runs
        assert len(idx) == 48
        # tasks come from the families drawn: a family drawn twice gives 8 task draws from it
        families = pd.Series(arrays["family"][idx]).value_counts()
        assert set(families.to_numpy()) <= {24, 48}
        assert tasks.map(lambda t: t.split("/")[0]).nunique() == len(families)


def test_reference_intervals_cover_the_point_and_the_doubling_time_is_refitted_per_resample():
    import datetime as dt

    rng = np.random.default_rng(3)
    rows = []
    dates = {}
    for a in range(4):
        h50 = 2.0 + 1.5 * a  # log2 minutes: one doubling every 8 months at a release every year
        dates[f"agent{a}"] = dt.date(2020 + a, 1, 1)
        for t in range(40):
            x = -1 + t * 0.3
            for r in range(4):
                rows.append({"run_id": f"{a}-{t}-{r}", "task_id": f"fam{t % 8}/t{t}", "task_family": f"fam{t % 8}",
                             "alias": f"agent{a}", "human_minutes": 2.0 ** x,
                             "score_binarized": int(rng.random() < 1 / (1 + np.exp(0.9 * (x - h50))))})
    data = load_runs(pd.DataFrame(rows))
    ref = reference(data, [0.5, 0.8], n_boot=200, seed=2, release_dates=dates, regularization=0.0)
    t = ref.table
    assert ((t["lo95_min"] <= t["horizon_min"]) & (t["horizon_min"] <= t["hi95_min"])).all()
    assert (t[t["q"] == 0.8]["horizon_min"].to_numpy() < t[t["q"] == 0.5]["horizon_min"].to_numpy()).all()
    d = ref.doubling.iloc[0]
    assert d["lo95_months"] < 8.0 < d["hi95_months"] and d["resamples_used"] == 200
    assert d["agents"] == "agent0, agent1, agent2, agent3"


def test_an_agent_that_never_succeeds_gets_no_interval_and_no_warning():
    """metr-early's davinci-002 succeeds in none of its runs: METR skips it in every resample. Its
    interval is undefined (NaN) and numpy's 'All-NaN slice' warning stays off the terminal."""
    import warnings

    runs = make_runs(n_agents=3, n_tasks=8, runs_per_cell=3)
    runs.loc[runs["alias"] == runs["alias"].iloc[0], "score_binarized"] = 0
    data = load_runs(runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = reference(data, [0.5], n_boot=20, seed=1)
    never = ref.table.set_index("agent").loc[runs["alias"].iloc[0]]
    assert np.isnan(never["lo95_min"]) and np.isnan(never["hi95_min"]) and never["boot_skipped"] == 1.0
    others = ref.table[ref.table["agent"] != runs["alias"].iloc[0]]
    assert np.isfinite(others["lo95_min"]).all()
