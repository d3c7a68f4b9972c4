"""PSIS-LOO comparison table on synthetic log likelihoods."""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from horizon_zoo.compare import loo, loo_compare


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


def test_cells_with_constant_log_likelihood_get_their_exact_loo_value():
    rng = np.random.default_rng(3)
    true_p = rng.uniform(0.2, 0.8, 100)
    y = rng.binomial(8, true_p)
    fit = fake_loglik_fit(true_p, true_p, y, 8, 1)
    ll = fit["log_likelihood"]["log_lik"].values.copy()
    ll[..., :5] = 0.0  # a model certain of these cells' outcome, e.g. log p = 0 exactly
    ll[..., 5] = -np.abs(rng.normal(0, 1e-310, ll.shape[:2]))  # or a denormal sliver from it
    fit["log_likelihood"] = fit["log_likelihood"].to_dataset().assign(log_lik=(("chain", "draw", "cell"), ll))
    from horizon_zoo.compare import loo

    result = loo(fit)
    assert result.n_data_points == 100
    np.testing.assert_array_equal(result.elpd_i.values[:5], 0.0)
    assert abs(result.elpd_i.values[5]) < 1e-300
    assert result.elpd == pytest.approx(float(result.elpd_i.sum()))
    assert loo_compare({"a": fit, "b": fake_loglik_fit(true_p, np.full(100, 0.5), y, 8, 2)}).loc[0, "model"] == "a"


def test_a_cell_quantised_to_few_values_gets_its_plain_importance_sampling_value():
    """A saved fit keeps log_lik to a few significant digits, so a cell whose log likelihood hardly
    varies takes two values here, the larger in 30% of the draws: ArviZ's Pareto fit refuses such
    a flat tail; the cell gets the plain importance-sampling estimate, log(1 / mean(1 / p)), k = 0."""
    rng = np.random.default_rng(5)
    true_p = rng.uniform(0.2, 0.8, 50)
    y = rng.binomial(8, true_p)
    fit = fake_loglik_fit(true_p, true_p, y, 8, 1)
    ll = fit["log_likelihood"]["log_lik"].values.copy()
    ll[..., 0] = np.where(rng.uniform(size=ll.shape[:2]) < 0.3, -2.301, -2.302)
    fit["log_likelihood"] = fit["log_likelihood"].to_dataset().assign(log_lik=(("chain", "draw", "cell"), ll))
    result = loo(fit)
    expected = -np.log(np.mean(np.exp(-ll[..., 0])))
    assert result.elpd_i.values[0] == pytest.approx(expected, abs=1e-12)
    assert float(result.pareto_k.values[0]) == 0.0
    assert np.isfinite(result.elpd_i.values).all() and (result.pareto_k.values[1:] != 0).any()


def test_high_k_cells_are_refitted_exactly_up_to_the_limit():
    fit = _high_k_fit()
    refits = []

    def heldout(mask):
        refits.append(np.flatnonzero(mask).tolist())
        exact = np.full((2, 400, 50), -3.0)  # the refit's predictive log density of the cell
        return azb.from_dict({"log_likelihood": {"log_lik": exact * 1e-9}}, dims={"log_lik": ["cell"]})

    psis_only = loo_compare({"m": fit})
    assert psis_only.loc[0, "n_high_k"] >= 1 and "unreliable" in psis_only.loc[0, "loo_method"]
    table = loo_compare({"m": fit}, refit={"m": heldout}, max_refits=5)
    assert refits == [[0]] and table.loc[0, "n_high_k"] == 0
    assert table.loc[0, "loo_method"] == "PSIS + exact refits of 1 cells with k > 0.7"
    psis_cell0 = float(loo(fit).elpd_i[0])
    assert table.loc[0, "elpd_loo"] == pytest.approx(psis_only.loc[0, "elpd_loo"] - psis_cell0 - 3.0)
    over = loo_compare({"m": fit}, refit={"m": heldout}, max_refits=0)
    assert "exceed --reloo-max 0" in over.loc[0, "loo_method"] and len(refits) == 1


def test_one_psis_per_fit_serves_loo_and_loo_pit_as_arviz_computes_them():
    import arviz_stats as azs
    import xarray as xr

    from horizon_zoo.checks import loo_pit_and_k
    from horizon_zoo.compare import psis

    rng = np.random.default_rng(5)
    true_p = rng.uniform(0.1, 0.9, 120)
    y = rng.binomial(8, true_p)
    fit = fake_loglik_fit(true_p, true_p, y, 8, 6)
    p = fit["posterior"]["p"].values
    fit = azb.from_dict({"posterior": {"p": p, "p_curve": p[..., :6].reshape(2, 400, 2, 3)},
                         "log_likelihood": {"log_lik": fit["log_likelihood"]["log_lik"].values},
                         "posterior_predictive": {"y_rep": rng.binomial(8, p)},
                         "observed_data": {"n_success": y}},
                        dims={"p": ["cell"], "p_curve": ["agent", "grid"], "log_lik": ["cell"], "y_rep": ["cell"],
                              "n_success": ["cell"]})
    weights = psis(fit)
    shared, own = loo(fit, weights), azs.loo(fit, pointwise=True, var_name="log_lik")
    np.testing.assert_allclose(shared.elpd_i.values, own.elpd_i.values, rtol=1e-12)
    np.testing.assert_allclose(shared.pareto_k.values, own.pareto_k.values, rtol=1e-12)
    pit, k = loo_pit_and_k(fit, seed=1, weights=weights)
    np.testing.assert_array_equal(k, weights.pareto_k.values)
    # ArviZ's own PSIS inside loo_pit (same posterior, so the same relative efficiency)
    view = xr.DataTree.from_dict({"posterior": fit["posterior"].to_dataset(),
                                  "posterior_predictive": xr.Dataset({"y": fit["posterior_predictive"]["y_rep"]}),
                                  "log_likelihood": xr.Dataset({"y": fit["log_likelihood"]["log_lik"]}),
                                  "observed_data": xr.Dataset({"y": fit["observed_data"]["n_success"]})})
    np.testing.assert_allclose(pit, azs.loo_pit(view, var_names="y", random_state=1)["y"].values, rtol=1e-10)
    # precomputed results are used as given
    table = loo_compare({"a": fit}, loos={"a": shared})
    assert table.loc[0, "elpd_loo"] == shared.elpd


def test_column_logsumexp_matches_scipy_with_infinite_columns():
    from scipy.special import logsumexp

    from horizon_zoo.compare import _logsumexp_columns

    x = np.random.default_rng(2).normal(0, 300, size=(500, 6))
    x[:, 3] = -np.inf  # a cell no draw can produce
    x[7, 4] = np.inf
    x[:, 5] = 1e-300  # constant column
    np.testing.assert_allclose(_logsumexp_columns(x), logsumexp(x, axis=0), rtol=1e-13)


@pytest.mark.stan
def test_weighted_psis_loo_and_exact_refits_are_on_one_scale():
    """Issue 37: PSIS-LOO reads log_lik = w log p, so its elpd of a cell is log E[p^w]; an exact refit
    must give the same quantity (it used to divide the weight out, log E[p], mixing scales in one sum)."""
    from horizon_zoo import api
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.cv import holdout, joint_elpd
    from horizon_zoo.fit import fit_model
    from horizon_zoo.registry import resolve
    from tests.conftest import make_runs

    runs = make_runs(n_agents=2, n_tasks=16, runs_per_cell=4, seed=2)
    runs["equal_task_weight"] = np.where(runs["task_id"].str[-1].astype(int) % 2 == 0, 3.0, 0.5)
    data = api.load(runs, weights="equal")
    weight = data.cells["weight"].to_numpy()
    assert weight.max() / weight.min() == pytest.approx(6.0)
    settings = SamplerSettings(chains=2, warmup=500, draws=1000, seed=11)
    model = resolve("logistic")
    fit = fit_model(model, data, settings=settings, progress=False)
    psis_result = loo(fit.idata)
    ll = fit.idata["log_likelihood"]["log_lik"].values.reshape(-1, len(weight))
    k = np.asarray(psis_result.pareto_k)
    heavy, light = (int(np.flatnonzero(weight == w)[np.argmin(k[weight == w])]) for w in (weight.max(), weight.min()))
    for cell in (heavy, light):
        assert k[cell] < 0.5  # PSIS is reliable here
        mask = np.arange(len(weight)) == cell
        exact = joint_elpd(fit_model(model, holdout(data, mask), settings=settings, progress=False).idata,
                           np.array([cell]))
        # Monte Carlo error of a log mean of exp(log_lik) over the draws, with a margin for PSIS
        tolerance = 4 * ll[:, cell].std() / np.sqrt(ll.shape[0] / 2) + 0.05
        assert exact == pytest.approx(float(psis_result.elpd_i[cell]), abs=tolerance), (cell, weight[cell])


def _two_close_models(seed: int = 7):
    """Two fits of the same cells whose elpds differ by less than one standard error of the
    difference (so 0 < dse < 1), each with a second log-likelihood variable that LOO must ignore."""
    rng = np.random.default_rng(seed)
    true_p = rng.uniform(0.2, 0.8, 120)
    y = rng.binomial(8, true_p)
    fits = {}
    for name, shift, s in (("a", 0.0, 1), ("b", 0.01, 2)):
        fit = fake_loglik_fit(true_p, np.clip(true_p + shift, 0.01, 0.99), y, 8, s)
        ll = fit["log_likelihood"]["log_lik"]
        fit["log_likelihood"] = fit["log_likelihood"].to_dataset().assign(other=ll * 50.0)
        fits[name] = fit
    return fits


def test_the_comparison_table_reports_each_models_own_loo_to_full_precision():
    import warnings

    fits = _two_close_models()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ArviZ's notes on chance differences and Pareto k stay inside
        table = loo_compare(fits).set_index("model")
    best, other = table.index
    assert table.loc[best, "diff_over_dse"] == 0.0 and table.loc[best, "dse"] == 0.0
    assert 0 < table.loc[other, "dse"] < 1
    assert table.loc[other, "diff_over_dse"] == table.loc[other, "elpd_diff"] / table.loc[other, "dse"]
    for name, fit in fits.items():
        own = loo(fit)
        assert own.log_weights is None and own.elpd_i.shape == (120,)
        assert table.loc[name, "elpd_loo"] == own.elpd  # from log_lik, not the other variable, unrounded
        assert table.loc[name, "good_k"] == own.good_k
        assert table.loc[name, "n_high_k"] == int(np.sum(own.pareto_k.values > min(0.7, own.good_k)))
        assert table.loc[name, "loo_method"] == "PSIS"


def test_a_single_model_and_no_model():
    fit = _two_close_models()["a"]
    (row,) = loo_compare({"a": fit}).to_dict("records")
    assert (row["model"], row["rank"], row["elpd_diff"], row["weight"], row["dse"], row["diff_over_dse"]) == \
        ("a", 0, 0.0, 1.0, 0.0, 0.0)
    assert row["elpd_loo"] == loo(fit).elpd and row["loo_method"] == "PSIS"
    with pytest.raises(ValueError, match="^no fits to compare$"):
        loo_compare({})


def test_loo_results_given_are_used_and_the_rest_computed():
    fits = _two_close_models()
    given = loo(fits["b"])  # deliberately another fit's result: it must be taken as given
    table = loo_compare(fits, loos={"a": given}).set_index("model")
    assert table.loc["a", "elpd_loo"] == given.elpd and table.loc["b", "elpd_loo"] == given.elpd


def test_refits_default_to_none_allowed():
    fit = _high_k_fit()

    def never(mask):
        raise AssertionError("refitted although max_refits defaults to 0")

    table = loo_compare({"m": fit}, refit={"m": never})
    assert "exceed --reloo-max 0" in table.loc[0, "loo_method"]
    assert loo_compare({"m": fit}).loc[0, "loo_method"] == "PSIS; some cells have k > 0.7: unreliable there"


@pytest.mark.parametrize("n, reff, tail", [
    (1000, 0.5, 134),  # n * reff > 225: ArviZ's 3 sqrt(n / reff)
    (300, 0.5, 60),  # n * reff <= 225 < n / reff: n // 5
    (25, 1.0, 5),  # the shortest tail that is checked
])
def test_a_flat_tail_is_exactly_arviz_s_tail_length_of_equal_ratios(n, reff, tail):
    from horizon_zoo.compare import _flat_tail

    rng = np.random.default_rng(0)
    ll = -rng.uniform(0, 1, (n, 4)) - 2.0  # -ll in (2, 3): distinct values everywhere
    ll[:tail, 0] = -5.0  # exactly the tail's draws (the largest -ll) equal: flat
    ll[:tail - 1, 1] = -5.0  # one draw short: the tail holds two values
    ll[:, 2] = rng.uniform(1, 2, n)  # column 2: -ll below 0, except the tail, which is 0 and one
    ll[:tail, 2] = 0.0  # draw at the least a double can differ from it: not flat
    ll[0, 2] = -np.finfo(float).tiny
    ll[-tail:, 3] = 0.5  # column 3: the smallest -ll equal, which is not the tail of the ratios
    np.testing.assert_array_equal(_flat_tail(ll, reff), [True, False, False, False])


def test_too_short_a_tail_is_never_flat():
    from horizon_zoo.compare import _flat_tail

    flat = _flat_tail(np.full((20, 3), -1.0), 1.0)  # 20 draws: a tail of 4, too short to judge
    assert flat.dtype == bool and flat.shape == (3,) and not flat.any()


def test_an_all_minus_infinity_column_sums_to_minus_infinity_without_a_warning():
    import warnings

    from horizon_zoo.compare import _logsumexp_columns

    x = np.array([[-np.inf, 0.0], [-np.inf, np.log(3.0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _logsumexp_columns(x)
    assert out[0] == -np.inf and out[1] == pytest.approx(np.log(4.0))


def _high_k_fit():
    rng = np.random.default_rng(3)
    y = rng.binomial(8, 0.5, 50)
    fit = fake_loglik_fit(np.full(50, 0.5), np.full(50, 0.5), y, 8, 4)
    ll = fit["log_likelihood"]["log_lik"].values.copy()
    ll[0, :5, 0] -= 40.0  # a few draws that explain cell 0 terribly: heavy-tailed importance ratios
    fit["log_likelihood"] = fit["log_likelihood"].to_dataset().assign(log_lik=(("chain", "draw", "cell"), ll))
    return fit


def test_reloo_replaces_exactly_the_high_k_cells_and_recomputes_the_standard_error():
    from horizon_zoo.compare import reloo

    fit = _high_k_fit()
    masks = []

    def heldout(mask):
        masks.append(mask)
        exact = -3.0 - 0.01 * np.arange(50)  # differs by cell: only the held-out cell's own value counts
        return azb.from_dict({"log_likelihood": {"log_lik": np.broadcast_to(exact * 1e-9, (2, 10, 50))}},
                             dims={"log_lik": ["cell"]})

    before = loo(fit)
    bad = int(np.sum(before.pareto_k.values > 0.7))
    assert bad == 1
    result, note = reloo(loo(fit), heldout, max_refits=bad)  # exactly as many refits as allowed
    assert note == "PSIS + exact refits of 1 cells with k > 0.7"
    assert len(masks) == 1 and masks[0].dtype == bool and np.flatnonzero(masks[0]).tolist() == [0]
    assert result.elpd_i.values[0] == pytest.approx(-3.0)
    np.testing.assert_array_equal(result.elpd_i.values[1:], before.elpd_i.values[1:])
    assert result.elpd == pytest.approx(float(result.elpd_i.values.sum()))
    assert result.se == pytest.approx(np.sqrt(50 * np.var(result.elpd_i.values)))
    assert result.pareto_k.values[0] == 0.0
    _, note = reloo(loo(fit), heldout, max_refits=0)
    assert note == "PSIS; 1 cells with k > 0.7 exceed --reloo-max 0: unreliable, use grouped CV (--cv)"
    good = _two_close_models()["a"]
    assert reloo(loo(good), heldout, max_refits=5)[1] == "PSIS" and len(masks) == 1


def test_arviz_warnings_about_pareto_k_stay_inside_the_comparison():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = np.random.default_rng(3).binomial(8, 0.5, 50)  # _high_k_fit's cells
        table = loo_compare({"heavy": _high_k_fit(), "close": fake_loglik_fit(np.full(50, 0.5), np.full(50, 0.45),
                                                                               y, 8, 5)})
    assert set(table["model"]) == {"heavy", "close"}


def test_one_chain_uses_r_eff_1_and_a_constant_cell_gets_k_0():
    from horizon_zoo.compare import psis

    rng = np.random.default_rng(2)
    ll = np.log(rng.uniform(0.2, 0.8, (1, 30, 6)))
    ll[..., 0] = -0.5  # the same in every draw
    fit = azb.from_dict({"posterior": {"p": rng.normal(size=(1, 30))}, "log_likelihood": {"log_lik": ll}},
                        dims={"log_lik": ["cell"]})
    weights = psis(fit)
    assert weights.reff == 1.0
    assert weights.pareto_k.dims == ("cell",) and weights.pareto_k.values[0] == 0.0
    assert loo(fit).elpd_i.values[0] == pytest.approx(-0.5)


def test_shown_weights_are_rounded_to_3_decimals_without_a_negative_zero():
    from horizon_zoo.compare import LOO_SHOWN, loo_shown

    table = pd.DataFrame({"model": ["a", "b", "c"], "weight": [0.99951, 0.00049, -1e-15], "rank": [0, 1, 2],
                          "elpd_loo": [-1.0, -2.0, -3.0]})
    shown = loo_shown(table)
    assert list(shown.columns) == [c for c in LOO_SHOWN if c in table.columns]
    assert shown["weight"].tolist() == [1.0, 0.0, 0.0] and str(shown["weight"].iloc[2]) == "0.0"
