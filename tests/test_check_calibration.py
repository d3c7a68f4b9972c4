"""The checks' calibration study: how p-values on the model's own data are summarised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo.check_calibration import shape_of, simulated_datasets, uniformity_table
from horizon_zoo.data import load_runs
from tests.conftest import make_runs


@pytest.mark.parametrize("p, shape", [
    (np.linspace(0.01, 0.99, 40), "uniform"),
    (np.linspace(0.3, 0.5, 40), "conservative"),
    (np.full(20, 1.0), "pinned high"),
    (np.concatenate([np.full(15, 0.01), np.linspace(0.2, 0.9, 5)]), "pinned low"),
    (np.concatenate([np.full(8, 0.001), np.full(12, 0.5)]), "skewed"),
])
def test_the_shape_of_simulated_p_values_is_named(p, shape):
    assert shape_of(p) == shape


def test_the_uniformity_table_counts_flags_and_spread():
    rows = pd.DataFrame({"model": "m", "statistic": "task_block", "kind": "cross-validated",
                         "p_value": [0.01, 0.3, 0.4, 0.5, 0.99]})
    t = uniformity_table(rows).iloc[0]
    assert t["sims"] == 5 and t["share_flagged"] == pytest.approx(0.4)
    assert t["mean_p"] == pytest.approx(0.44) and t["iqr_p"] == pytest.approx(0.2)
    assert (t["min_p"], t["max_p"]) == (0.01, 0.99)


def test_simulated_datasets_are_whole_draws_of_the_replicates_on_the_design():
    data = load_runs(make_runs(n_agents=2, n_tasks=4, runs_per_cell=3))
    n = data.cells["n_runs"].to_numpy()
    y_rep = np.stack([np.minimum(n, d % 4) for d in range(12)]).reshape(3, 4, -1)  # chains x draws x cells
    sims = simulated_datasets(y_rep, data, 5, seed=0, source="test")
    draws = [d for d, _ in sims]
    assert len(set(draws)) == 5 and draws == sorted(draws)  # without replacement
    for draw, sim in sims:
        assert sim.cells["n_success"].tolist() == y_rep.reshape(12, -1)[draw].tolist()
        assert sim.cells["n_runs"].tolist() == n.tolist() and sim.tasks.equals(data.tasks)
    with pytest.raises(ValueError, match="13 simulations need at least as many posterior draws; the fit has 12"):
        simulated_datasets(y_rep, data, 13, seed=0, source="test")
