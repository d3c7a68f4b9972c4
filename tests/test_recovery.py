"""Parameter recovery of every zoo model on data simulated from the model itself (compiles Stan).

Truth is one draw from the model's prior (sampled by the same program with all cell weights 0),
data are that draw's replicated successes. Each true value should fall inside its central 95%
posterior interval, but 1 in 20 falls outside by chance, so the test allows as many misses as a
Binomial(n, 0.05) exceeds only with probability 0.001. No value may sit further from its posterior
mean than a Bonferroni bound for all n values at family-wise level 0.001 (about 4.4 posterior sd
for 90 values): a per-value 99.9% interval fails one run in ten by chance once n is near 100, and
its ends, read from 2,000 draws, rest on one or two draws each. Prior draws can be extreme (an
agent that never fails), so adapt_delta is 0.9 and a stray divergence (under 0.5% of draws) is
tolerated here; zero divergences at default settings are required on the real datasets
(tests/test_end_to_end.py, --real-data).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from horizon_zoo.backends import SamplerSettings
from horizon_zoo.data import load_runs
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import discover
from horizon_zoo.simulate import default_release_dates, draw_from_prior
from tests.conftest import small_default

ZOO = discover()


@pytest.mark.stan
@pytest.mark.parametrize("name", sorted(ZOO))
def test_parameters_are_recovered(name):
    model = ZOO[name]
    design = load_runs(small_default(n_agents=6, n_tasks=40), source="recovery design")
    design = dataclasses.replace(design, release_dates=default_release_dates())  # for trend models
    truth, simulated = draw_from_prior(model, design, seed=101)
    assert_recovered(model, truth, simulated)


@pytest.mark.stan
def test_irt_2pl_is_recovered_where_some_tasks_are_centred():
    """irt_2pl samples a task's difficulty residual centred where its runs carry Fisher
    information >= 25 (its transformed data); with 64 runs per cell some tasks cross that line
    and some do not, so both branches of the offset/multiplier share one posterior."""
    model = ZOO["irt_2pl"]
    design = load_runs(small_default(n_agents=6, n_tasks=40), source="recovery design")
    design = dataclasses.replace(design, cells=design.cells.assign(n_runs=64))
    truth, simulated = draw_from_prior(model, design, seed=101)
    cells = simulated.cells
    p_hat = (cells["n_success"] + 0.5) / (cells["n_runs"] + 1)
    info = (cells["weight"] * cells["n_runs"] * p_hat * (1 - p_hat)).groupby(cells["task_id"]).sum()
    assert 0 < int((info >= 25).sum()) < len(info), info.describe()  # the premise: a mix of both
    assert_recovered(model, truth, simulated)


def assert_recovered(model, truth, simulated):
    """Fit ``simulated`` and check every true value against its posterior intervals."""
    fit = fit_model(model, simulated, settings=SamplerSettings(chains=4, warmup=500, draws=500, seed=5, adapt_delta=0.9),
                    progress=False)
    assert fit.diagnostics.divergences < 0.005 * fit.diagnostics.draws, fit.diagnostics.problems
    assert fit.diagnostics.max_rhat < 1.05, fit.diagnostics.problems
    z_scores, names, inside95 = [], [], 0
    for param, true_value in truth.items():
        draws = fit.idata["posterior"][param].values
        draws = draws.reshape(-1, *draws.shape[2:])
        lo95, hi95 = np.quantile(draws, [0.025, 0.975], axis=0)
        inside95 += int(np.sum((lo95 <= true_value) & (true_value <= hi95)))
        z_scores.append(np.ravel((true_value - draws.mean(axis=0)) / draws.std(axis=0)))
        names += [f"{param}[{i}]" for i in range(z_scores[-1].size)]
    z = np.concatenate(z_scores)
    total = z.size
    z_bound = stats.norm.isf(0.001 / (2 * total))
    worst = int(np.argmax(np.abs(z)))
    assert abs(z[worst]) <= z_bound, \
        f"true {names[worst]} is {z[worst]:.2f} sd from its posterior mean (bound {z_bound:.2f})"
    allowed_misses = stats.binom.ppf(0.999, total, 0.05)
    assert total - inside95 <= allowed_misses, f"{inside95}/{total} true values inside 95% intervals"
