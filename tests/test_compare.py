"""PSIS-LOO comparison table on synthetic log likelihoods."""

from __future__ import annotations

import arviz_base as azb
import numpy as np
from scipy import stats

from horizon_zoo.compare import loo_compare


def fake_loglik_fit(true_p: np.ndarray, model_p: np.ndarray, y: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    # draws of p around the model's value, as a posterior would scatter them
    logit = np.log(model_p / (1 - model_p)) + rng.normal(0, 0.05, (2, 400, len(y)))
    p = 1 / (1 + np.exp(-logit))
    return azb.from_dict({"posterior": {"p": p}, "log_likelihood": {"log_lik": stats.binom.logpmf(y, n, p)}},
                         dims={"p": ["cell"], "log_lik": ["cell"]})


def test_the_true_model_ranks_first_with_standard_errors():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.1, 0.9, 300)
    y = rng.binomial(8, true_p)
    fits = {"true": fake_loglik_fit(true_p, true_p, y, 8, 1),
            "flat": fake_loglik_fit(true_p, np.full(300, 0.5), y, 8, 2)}
    table = loo_compare(fits)
    assert list(table["model"]) == ["true", "flat"]
    assert table.loc[0, "elpd_diff"] == 0
    assert table.loc[1, "elpd_diff"] < -2 * table.loc[1, "dse"] < 0
    assert table.loc[1, "diff_over_dse"] < -2
    assert abs(table["weight"].sum() - 1) < 1e-6
    assert table["n_high_k"].tolist() == [0, 0]
    assert set(table.columns) >= {"elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "n_high_k"}
