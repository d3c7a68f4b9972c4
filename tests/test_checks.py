"""Posterior predictive checks: statistics on constructed data, and the acceptance test on fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.checks import (
    CheckData,
    agent_eigen_share,
    calibration_table,
    ppc_p_value,
    residual_structure,
    task_block_statistic,
    uncentred_correlation,
)
from horizon_zoo.cli import main
from tests.conftest import family_effect_runs


def test_mid_p_value_counts_ties_as_half():
    assert ppc_p_value(2.0, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.5 + 0.125)
    assert ppc_p_value(0.0, np.array([1.0, 2.0])) == 1.0
    assert np.isnan(ppc_p_value(np.nan, np.array([1.0])))


def test_uncentred_correlation_uses_shared_rows_only():
    r = np.array([[1.0, 2.0, np.nan], [1.0, 2.0, 1.0], [-1.0, -2.0, 1.0], [2.0, 4.0, np.nan]])
    c = uncentred_correlation(r)
    assert c[0, 1] == pytest.approx(1.0)  # proportional columns
    assert np.isnan(c[0, 2])  # only 2 shared rows
    # Uncentred: a column shifted by the same amount for every row is still perfectly correlated
    # with another shifted column, which is the structure a missing task effect leaves.
    shifted = uncentred_correlation(np.array([[0.5, 0.4], [0.6, 0.5], [0.4, 0.6]]))
    assert shifted[0, 1] > 0.9


def test_block_statistics_on_known_matrices():
    family = np.array([0, 0, 1, 1])
    corr = np.array([[1, .8, 0, 0], [.8, 1, 0, 0], [0, 0, 1, .6], [0, 0, .6, 1]], dtype=float)
    assert task_block_statistic(corr, family) == pytest.approx(0.7)
    assert np.isnan(task_block_statistic(corr, np.arange(4)))  # no two tasks share a family
    assert agent_eigen_share(np.eye(5)) == pytest.approx(0.2)
    assert agent_eigen_share(np.ones((5, 5))) == pytest.approx(1.0)


def _synthetic(family_sd: float, seed: int = 0) -> CheckData:
    """Data with family effects of ``family_sd`` logits; replicated data from a model without them."""
    rng = np.random.default_rng(seed)
    n_agents, n_families, per_family, runs = 8, 20, 4, 4
    n_tasks = n_families * per_family
    family = np.repeat(np.arange(n_families), per_family)
    log_minutes = rng.uniform(0, 6, n_tasks)
    ability = np.linspace(1, 6, n_agents)
    agent, task = np.meshgrid(np.arange(n_agents), np.arange(n_tasks), indexing="ij")
    agent, task = agent.ravel(), task.ravel()
    base = ability[agent] - log_minutes[task]
    effect = rng.normal(0, family_sd, n_families)[family][task]
    n = np.full(agent.size, runs)
    y = rng.binomial(n, 1 / (1 + np.exp(-(base + effect))))
    y_rep = rng.binomial(n, 1 / (1 + np.exp(-base)), size=(300, agent.size))
    return CheckData(y=y, n=n, y_rep=y_rep, agent=agent, task=task, family=family, log_minutes=log_minutes,
                     agents=tuple(f"a{i}" for i in range(n_agents)), tasks=tuple(f"t{i}" for i in range(n_tasks)),
                     families=tuple(f"f{i}" for i in range(n_families)))


def test_family_effects_the_model_lacks_are_flagged_and_absent_ones_are_not():
    with_effects = residual_structure(_synthetic(family_sd=1.5))
    assert with_effects.p_values["task_block"] < 0.025
    assert with_effects.p_values["agent_eigen_share"] < 0.025
    # Without effects the p-value is uniform, so one dataset lands in the flagged 5% by chance:
    # over 20 datasets, more than 4 flags has probability 0.003.
    flags = sum(not 0.025 < residual_structure(_synthetic(family_sd=0.0, seed=s)).p_values["task_block"] < 0.975
                for s in range(20))
    assert flags <= 4, flags


def test_calibration_table_counts_runs_and_rates():
    d = _synthetic(family_sd=0.0)
    table = calibration_table(d)
    pooled = table[table["agent"] == "all"]
    assert pooled["runs"].sum() == d.n.sum()
    assert (pooled["observed"] * pooled["runs"]).sum() == pytest.approx(d.y.sum())
    assert set(table["agent"]) == {"all", *d.agents}
    assert ((table["lo95"] <= table["replicated_median"]) & (table["replicated_median"] <= table["hi95"])).all()


@pytest.mark.stan
def test_task_block_flags_logistic_but_not_logistic_task_effects():
    data = api.load(family_effect_runs())
    result = api.check(data, models=["logistic", "logistic_task_effects"], write=False, progress=False,
                       settings=SamplerSettings(chains=2, warmup=400, draws=400, seed=2))
    p = {m: r.p_values.set_index("statistic").loc["task block (within - between family)", "p_value"]
         for m, r in result.results.items()}
    assert p["logistic"] < 0.025, p
    assert 0.025 <= p["logistic_task_effects"] <= 0.975, p


@pytest.mark.stan
def test_check_command_writes_figures_and_p_value_tables(tmp_path, write_runs):
    runs = write_runs(family_effect_runs())
    out = tmp_path / "run"
    assert main(["-q", "check", "--model", "logistic", "--runs", str(runs), "--chains", "2", "--warmup", "200",
                 "--draws", "200", "--out", str(out)]) == 0
    for name in ("calibration", "curves", "residuals", "loo_pit"):
        assert (out / "figures" / f"{name}_logistic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "tables" / "checks_logistic.csv")
    assert {"task block (within - between family)", "agent residual eigen share", "success rate",
            "variance of per-task success rates"} <= set(table["statistic"])
    assert table["p_value"].between(0, 1).all()
    summary = pd.read_csv(out / "tables" / "checks.csv")
    assert summary.loc[0, "model"] == "logistic"
    assert "Posterior predictive p-values" in (out / "summary.md").read_text()
    # the fit's diagnostics are shown too (issue 32 item 5): table, summary and report
    diagnostics = pd.read_csv(out / "tables" / "diagnostics.csv")
    assert diagnostics.loc[0, "model"] == "logistic" and diagnostics.loc[0, "verdict"] in ("pass", "warn", "fail")
    assert "## Diagnostics" in (out / "summary.md").read_text()
    assert "<h2 id='diagnostics'>Diagnostics</h2>" in (out / "report.html").read_text()
