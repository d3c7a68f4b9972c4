"""Simulation-based calibration: ranks, uniformity tests, the design, caching and the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import cli
from horizon_zoo.data import load_runs
from horizon_zoo.registry import resolve
from horizon_zoo.sbc import (
    checked_quantities,
    design_subset,
    ecdf_band,
    rank_of,
    sbc_summary,
    thin,
    uniformity,
)
from tests.conftest import make_runs, small_default


def _ranks_table(ranks: np.ndarray, L: int = 99, quantity: str = "theta", model: str = "m") -> pd.DataFrame:
    return pd.DataFrame({"model": model, "sim": np.arange(ranks.size), "L": L, "divergences": 0,
                         "max_rhat": 1.0, "verdict": "pass", "error": None, "quantity": quantity, "rank": ranks})


def test_rank_counts_draws_below_and_splits_ties_at_random():
    rng = np.random.default_rng(0)
    draws = np.array([[1.0], [2.0], [3.0], [np.inf], [np.inf]])
    assert rank_of(np.array([2.5]), draws, rng)[0] == 2
    assert rank_of(np.array([0.0]), draws, rng)[0] == 0
    # an off-grid truth (+inf) tied with two off-grid draws: rank 3, 4 or 5, each possible
    seen = {int(rank_of(np.array([np.inf]), draws, rng)[0]) for _ in range(200)}
    assert seen == {3, 4, 5}


def test_thinning_spreads_over_chains_and_refuses_too_few_draws():
    values = np.arange(2 * 50).reshape(2, 50)  # chain 0: 0..49, chain 1: 50..99
    picked = thin(values, 10)
    assert picked[0] == 0 and picked[-1] == 99 and len(picked) == 10
    with pytest.raises(Exception, match="at least 200 posterior draws"):
        thin(values, 200)


def test_calibrated_ranks_pass_and_miscalibrated_ranks_are_flagged():
    rng = np.random.default_rng(3)
    L, sims = 99, 200
    truth = rng.normal(size=sims)
    # calibrated: truth and draws from the same distribution
    good = np.array([rank_of(t, rng.normal(size=(L, 1)), rng)[0] for t in truth])
    # over-confident posterior (draws too narrow): ranks pile up at 0 and L
    narrow = np.array([rank_of(t, 0.4 * rng.normal(size=(L, 1)), rng)[0] for t in truth])
    # biased posterior: ranks pile up on one side
    biased = np.array([rank_of(t, 0.7 + rng.normal(size=(L, 1)), rng)[0] for t in truth])
    table = pd.concat([_ranks_table(good, quantity="good"), _ranks_table(narrow, quantity="narrow"),
                       _ranks_table(biased, quantity="biased")])
    tests = uniformity(table).set_index("quantity")
    assert not tests.loc["good", "flagged"] and tests.loc["good", "p_value"] > 0.01
    assert tests.loc["narrow", "flagged"] and tests.loc["biased", "flagged"]
    assert set(tests["bins"]) == {25}  # 200 simulations: 25 equiprobable bins of 4 rank values each
    summary = sbc_summary(table, uniformity(table))
    assert summary.loc[0, "verdict"] == "fail" and set(summary.loc[0, "flagged"].split(", ")) == {"narrow", "biased"}


def test_uniformity_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(11)
    tables = [_ranks_table(rng.integers(0, 100, 30), quantity=f"q{i}") for i in range(300)]
    p = uniformity(pd.concat(tables))["p_value"].to_numpy()
    # 30 simulations: the exact-by-simulation null keeps the test's size near nominal
    assert 0.02 < np.mean(p < 0.1) < 0.18


def test_ecdf_band_covers_uniform_ranks_at_its_level():
    rng = np.random.default_rng(5)
    n, values = 50, 100
    band = ecdf_band(n, values)
    z = np.arange(1, values) / values
    inside = [np.all(np.abs(np.array([(r < k).mean() for k in range(1, values)]) - z) <= band)
              for r in rng.integers(0, values, (300, n))]
    assert 0.9 < np.mean(inside) < 0.99


def test_design_subset_keeps_the_length_range_and_release_dates():
    from horizon_zoo.simulate import default_release_dates

    data = load_runs(small_default(n_agents=12, n_tasks=150))
    import dataclasses

    data = dataclasses.replace(data, release_dates=default_release_dates())
    cut = design_subset(data, 4, 10)
    assert len(cut.agents) == 4 and len(cut.tasks) == 10
    assert cut.tasks["human_minutes"].min() == data.tasks["human_minutes"].min()
    assert cut.tasks["human_minutes"].max() == data.tasks["human_minutes"].max()
    assert cut.agents[0] == data.agents[0] and cut.agents[-1] == data.agents[-1]
    assert cut.release_dates == data.release_dates
    assert design_subset(data, 0, None).cells.shape == data.cells.shape


def test_sbc_checks_scalar_and_agent_level_parameters_only():
    assert checked_quantities(resolve("logistic")) == ["alpha", "beta"]
    hier = checked_quantities(resolve("logistic_task_effects"))
    assert hier == ["alpha", "beta", "tau_family", "tau_task"]  # not z_task, z_family_total


@pytest.mark.stan
def test_sbc_command_writes_tables_figures_and_resumes_from_its_cache(tmp_path, monkeypatch, write_runs, capsys):
    monkeypatch.setenv("HORIZON_ZOO_SBC_CACHE", str(tmp_path / "cache"))
    runs = write_runs(make_runs(n_agents=3, n_tasks=12, runs_per_cell=3))
    argv = ["sbc", "--model", "logistic", "--sims", "6", "--runs", str(runs), "--chains", "2", "--warmup", "200",
            "--draws", "100", "--ranks", "49", "--out", str(tmp_path / "a")]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "a"
    ranks = pd.read_csv(run_dir / "tables" / "sbc_ranks.csv")
    assert sorted(ranks["sim"].unique()) == list(range(6))
    assert ranks["rank"].between(0, 49).all()
    assert set(ranks["quantity"].str.replace(r"\[.*\]$", "", regex=True)) == {"alpha", "beta", "h50"}
    assert (run_dir / "figures" / "sbc_logistic.png").stat().st_size > 10_000
    assert "Simulation-based calibration" in (run_dir / "report.md").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    from horizon_zoo.backends import resolve_backend

    assert manifest["backend"] == resolve_backend("auto") != "auto"  # the backend that ran, not "auto"

    # the same SBC again is served from the cache: no fit may run
    import horizon_zoo.fit

    def no_fit(*args, **kwargs):
        raise AssertionError("refitted a cached simulation")

    monkeypatch.setattr(horizon_zoo.fit, "fit_model", no_fit)
    assert cli.main([*argv[:-1], str(tmp_path / "b")]) == 0
    again = pd.read_csv(tmp_path / "b" / "tables" / "sbc_ranks.csv")
    pd.testing.assert_frame_equal(ranks, again)
    # a backend other than the one "auto" resolved to misses the cache (issue 30): the key holds the
    # resolved backend, so neither an explicit other backend nor "auto" resolving differently reuses it
    from horizon_zoo import sbc

    other = "pystan" if resolve_backend("auto") == "cmdstanpy" else "cmdstanpy"
    monkeypatch.setattr("horizon_zoo.simulate.draw_from_prior", no_fit)
    with pytest.raises(AssertionError, match="refitted"):
        cli.main([*argv[:-1], str(tmp_path / "c"), "--backend", other])
    monkeypatch.setattr(sbc, "resolve_backend", lambda backend: other if backend == "auto" else backend)
    with pytest.raises(AssertionError, match="refitted"):
        cli.main([*argv[:-1], str(tmp_path / "d")])
