"""Both backends for real (issue 29): a real CmdStan (``horizon-zoo cmdstan build``) beside PyStan.

Skipped when no CmdStan is installed, unless ``HORIZON_ZOO_REQUIRE_CMDSTAN=1`` (CI sets it after
building CmdStan), which turns the skip into a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from horizon_zoo.backends import SamplerSettings, available_backends
from horizon_zoo.cli import main
from horizon_zoo.data import load_runs
from horizon_zoo.errors import BackendError
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import resolve
from tests.conftest import REPO, SHARED_DATA, make_runs

BOTH = {"cmdstanpy", "pystan"} <= set(available_backends())
if not BOTH and os.environ.get("HORIZON_ZOO_REQUIRE_CMDSTAN") == "1":
    raise RuntimeError(f"HORIZON_ZOO_REQUIRE_CMDSTAN=1 but the backends available are {available_backends()}")
pytestmark = [pytest.mark.stan,
              pytest.mark.skipif(not BOTH, reason="needs CmdStan and PyStan: horizon-zoo cmdstan build --archive ...")]

# CmdStan's CSV files hold 6 significant digits; PyStan hands over doubles.
CSV_RTOL = 5e-6


def _layout(dt) -> dict:
    return {group: {name: (var.dims, var.dtype.kind) for name, var in dt[group].data_vars.items()}
            for group in sorted(dt.children)}


def _coords(dt) -> dict:
    return {group: {name: list(dt[group][name].values) for name in dt[group].coords}
            for group in sorted(dt.children)}


def test_same_seed_gives_the_same_chains_and_the_same_datatree_on_both_backends():
    data = load_runs(make_runs(n_agents=3, n_tasks=6, runs_per_cell=3))
    settings = SamplerSettings(chains=2, warmup=200, draws=150, seed=11)
    fits = {b: fit_model(resolve("logistic"), data, settings=settings, backend=b, progress=False)
            for b in ("cmdstanpy", "pystan")}
    cmd, py = (fits[b].idata for b in ("cmdstanpy", "pystan"))
    assert _layout(cmd) == _layout(py)
    assert _coords(cmd) == _coords(py)
    for group in ("posterior", "log_likelihood"):
        for name, var in py[group].data_vars.items():
            np.testing.assert_allclose(cmd[group][name].values, var.values, rtol=CSV_RTOL, atol=1e-12,
                                       err_msg=f"{group}/{name}")
    np.testing.assert_array_equal(cmd["posterior_predictive"]["y_rep"].values,
                                  py["posterior_predictive"]["y_rep"].values)
    for name in ("tree_depth", "n_steps", "diverging"):
        np.testing.assert_array_equal(cmd["sample_stats"][name].values, py["sample_stats"][name].values)
    for name in ("step_size", "lp", "energy", "acceptance_rate"):
        np.testing.assert_allclose(cmd["sample_stats"][name].values, py["sample_stats"][name].values,
                                   rtol=CSV_RTOL, err_msg=name)
    assert fits["cmdstanpy"].info["backend_version"].count("CmdStan 2.36") == 1


def test_a_threaded_reduce_sum_fit_agrees_with_the_one_thread_fit():
    """Threads change the order of reduce_sum's partial sums, so the chains are not bitwise equal:
    the posterior means must agree within their Monte Carlo error."""
    data = load_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    model = resolve("irt_2pl")
    fits = [fit_model(model, data, settings=SamplerSettings(chains=2, warmup=300, draws=300, seed=5,
                                                            threads_per_chain=t), backend="cmdstanpy", progress=False)
            for t in (1, 2)]
    for fit in fits:
        assert fit.diagnostics.verdict in ("pass", "warn"), fit.diagnostics
    # the agents' abilities and the hyperparameters, against their Monte Carlo standard errors
    import arviz_stats as azs

    for name in ("ability", "delta", "sigma_diff"):
        one, two = (f.idata["posterior"][name] for f in fits)
        ess = [np.asarray(azs.ess(f.idata["posterior"][name], method="bulk")) for f in fits]
        difference = (one.mean(("chain", "draw")) - two.mean(("chain", "draw"))).values
        se = np.sqrt(one.var(("chain", "draw")).values / ess[0] + two.var(("chain", "draw")).values / ess[1])
        assert np.all(np.abs(difference) < 4 * se), (name, difference, se)


def test_a_compare_of_three_models_gives_the_same_tables_on_both_backends(tmp_path, write_runs):
    runs = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=2))
    tables = {}
    for backend in ("cmdstanpy", "pystan"):
        out = tmp_path / backend
        code = main(["compare", "--runs", str(runs), "--models", "logistic,constant_hazard,bradley_terry",
                     "--backend", backend, "--chains", "2", "--warmup", "200", "--draws", "200", "--seed", "4",
                     "--no-metr", "--out", str(out)])
        assert code in (0, 5), backend
        tables[backend] = (pd.read_csv(out / "tables" / "loo.csv"), pd.read_csv(out / "tables" / "horizons.csv"))
    (loo_c, hor_c), (loo_p, hor_p) = tables["cmdstanpy"], tables["pystan"]
    pd.testing.assert_frame_equal(loo_c[["model"]], loo_p[["model"]])
    np.testing.assert_allclose(loo_c["elpd_loo"], loo_p["elpd_loo"], rtol=1e-4)
    numeric = [c for c in hor_p.columns if pd.api.types.is_float_dtype(hor_p[c])]
    pd.testing.assert_frame_equal(hor_c.drop(columns=numeric), hor_p.drop(columns=numeric))
    np.testing.assert_allclose(hor_c[numeric].to_numpy(), hor_p[numeric].to_numpy(), rtol=1e-4)


def test_a_failing_model_names_its_cause_on_cmdstan():
    model = resolve(str(REPO / "tests" / "stan_programs" / "never_initialises.stan"))
    data = load_runs(make_runs(n_agents=2, n_tasks=4))
    with pytest.raises(BackendError, match="(?s)CmdStan sampling of never_initialises failed.*Initialization failed"):
        fit_model(model, data, settings=SamplerSettings(chains=1, warmup=20, draws=20, seed=1),
                  backend="cmdstanpy", progress=False)


@pytest.mark.real_data
def test_metr_early_compare_gives_the_same_loo_and_horizons_on_both_backends(tmp_path):
    runs = SHARED_DATA / "metr-early" / "all_runs.jsonl"
    tables = {}
    for backend in ("cmdstanpy", "pystan"):
        out = tmp_path / backend
        assert main(["compare", "--runs", str(runs), "--models", "logistic,constant_hazard,logistic_task_effects",
                     "--backend", backend, "--seed", "1", "--no-metr", "--out", str(out)]) in (0, 5)
        tables[backend] = (pd.read_csv(out / "tables" / "loo.csv"), pd.read_csv(out / "tables" / "horizons.csv"))
    (loo_c, hor_c), (loo_p, hor_p) = tables["cmdstanpy"], tables["pystan"]
    np.testing.assert_allclose(loo_c["elpd_loo"], loo_p["elpd_loo"], rtol=1e-4)
    numeric = [c for c in hor_p.columns if pd.api.types.is_float_dtype(hor_p[c])]
    np.testing.assert_allclose(hor_c[numeric].to_numpy(), hor_p[numeric].to_numpy(), rtol=1e-4)


def test_a_cached_executable_that_does_not_start_is_rebuilt_once(tmp_path, monkeypatch, caplog):
    """Issue 34, the CmdStan leg: a damaged (or orphaned) executable in the cache is removed and
    built again, with one line saying why, and the fit succeeds."""
    import shutil

    from horizon_zoo import backends

    data = load_runs(make_runs(n_agents=2, n_tasks=4))
    settings = SamplerSettings(chains=1, warmup=50, draws=50, seed=2)
    model = resolve("logistic")
    fit_model(model, data, settings=settings, backend="cmdstanpy", progress=False)  # compiled in the usual cache
    # the folder this CmdStan uses: the cache may hold builds of the same program by other CmdStans
    built = backends.cmdstanpy.build_dir_of(model)
    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path))
    copy = tmp_path / "cmdstan" / built.name
    shutil.copytree(built, copy)
    (copy / "logistic").write_bytes(b"not an executable\n")
    with caplog.at_level("WARNING", logger="horizon_zoo"):
        fit = fit_model(model, data, settings=settings, backend="cmdstanpy", progress=False)
    assert "cached CmdStan executable of logistic does not run (Exec format error)" in caplog.text
    assert "rebuilding it once" in caplog.text and fit.idata["posterior"].sizes["draw"] == 50
    assert backends.cmdstanpy._executable_fault(copy / "logistic") == ""


def test_a_fit_after_cache_clear_compiles_again_and_succeeds(tmp_path, monkeypatch, capsys):
    """Issue 34: `cache clear` empties the compiled-model cache, and the next fit rebuilds."""
    from horizon_zoo.cli import main

    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path))
    data = load_runs(make_runs(n_agents=2, n_tasks=4))
    settings = SamplerSettings(chains=1, warmup=50, draws=50, seed=3)
    model = resolve("bradley_terry")
    first = fit_model(model, data, settings=settings, backend="cmdstanpy", progress=False)
    again = fit_model(model, data, settings=settings, backend="cmdstanpy", progress=False)
    assert not first.info["timings"]["compile_cached"] and again.info["timings"]["compile_cached"]
    assert main(["cache", "clear", "--only", "cmdstan-models"]) == 0
    assert list((tmp_path / "cmdstan").iterdir()) == []
    rebuilt = fit_model(model, data, settings=settings, backend="cmdstanpy", progress=False)
    assert not rebuilt.info["timings"]["compile_cached"]
    np.testing.assert_array_equal(rebuilt.idata["posterior"]["theta"].values, first.idata["posterior"]["theta"].values)
