"""Saved fits are compact (issue 32 item 1) and still give the same LOO, horizons and checks."""

from __future__ import annotations

from types import SimpleNamespace

import arviz_base as azb
import numpy as np
from scipy import stats

from horizon_zoo.compare import loo
from horizon_zoo.fit import load_fit, save_fit


def _fit(rng: np.random.Generator, chains: int = 2, draws: int = 500, cells: int = 300) -> SimpleNamespace:
    n = np.full(cells, 8)
    p = rng.uniform(0.05, 0.95, cells)
    y = rng.binomial(n, p)
    draw_p = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + rng.normal(0, 0.2, (chains, draws, cells)))))
    curve = np.sort(rng.uniform(0, 1, (chains, draws, 3, 40)), axis=-1)[..., ::-1]
    idata = azb.from_dict({"posterior": {"p_curve": curve, "alpha": rng.normal(size=(chains, draws, 3))},
                           "log_likelihood": {"log_lik": stats.binom.logpmf(y, n, draw_p)},
                           "posterior_predictive": {"y_rep": rng.binomial(n, draw_p).astype(np.int32)},
                           "observed_data": {"n_success": y}},
                          dims={"p_curve": ["agent", "grid"], "alpha": ["agent"], "log_lik": ["cell"],
                                "y_rep": ["cell"], "n_success": ["cell"]})
    return SimpleNamespace(model=SimpleNamespace(name="m"), idata=idata, info={"model": "m"})


def test_a_saved_fit_is_compact_and_loses_nothing_that_matters(tmp_path):
    fit = _fit(np.random.default_rng(0))
    nc, _ = save_fit(fit, tmp_path)
    back, info = load_fit(nc)
    assert info == {"model": "m"}
    assert back["posterior_predictive"]["y_rep"].dtype == np.uint8
    np.testing.assert_array_equal(back["posterior_predictive"]["y_rep"].values, fit.idata["posterior_predictive"]["y_rep"].values)
    ll, ll_back = fit.idata["log_likelihood"]["log_lik"].values, back["log_likelihood"]["log_lik"].values
    assert back["log_likelihood"]["log_lik"].dtype == np.float32
    assert np.max(np.abs(ll_back - ll) / np.abs(ll)) < 1e-3  # 4 significant digits
    curve, curve_back = fit.idata["posterior"]["p_curve"].values, back["posterior"]["p_curve"].values
    assert np.max(np.abs(curve_back - curve) / np.maximum(curve, 1e-12)) < 1e-2  # 3 significant digits
    # other posterior draws keep 4 significant digits
    alpha, alpha_back = fit.idata["posterior"]["alpha"].values, back["posterior"]["alpha"].values
    assert np.max(np.abs(alpha_back - alpha) / np.abs(alpha)) < 1e-3
    # the elpd moves by far less than its standard error
    before, after = loo(fit.idata), loo(back)
    assert abs(after.elpd - before.elpd) < 1e-2 * before.se
    # and the file is under a third of the values as computed (float64 log_lik and curves, int32 y_rep),
    # for noise that compresses badly; real fits, measured: docs/benchmarks.md (storage)
    raw = sum(v.nbytes for g in ("posterior", "log_likelihood", "posterior_predictive")
              for v in fit.idata[g].to_dataset().data_vars.values())
    assert nc.stat().st_size < raw / 3


def test_each_chunk_holds_every_draw_of_a_few_cells(tmp_path):
    # one cell's draws share sign and exponent, so chunks along the draws compress better than
    # HDF5's default chunks, which cut across cells (sizes: docs/benchmarks.md, storage)
    import netCDF4

    nc, _ = save_fit(_fit(np.random.default_rng(1), chains=2, draws=500, cells=300), tmp_path)
    with netCDF4.Dataset(nc) as ds:
        log_lik = ds["log_likelihood"]["log_lik"]
        assert log_lik.chunking() == [2, 500, 131]  # 512 KB of float32: 2**19 // (2 * 500 * 4) cells
        assert ds["posterior"]["p_curve"].chunking() == [2, 500, 1, 40]
        y_rep = ds["posterior_predictive"]["y_rep"]
        assert y_rep.chunking() == [2, 500, 300] and y_rep.filters()["bzip2"]
