"""Backends: chain structure, InferenceData layout, saving and reloading (compiles Stan)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from horizon_zoo.backends import (
    SamplerSettings,
    available_backends,
    cmdstan_available,
    grainsize,
    resolve_backend,
)
from horizon_zoo.data import load_runs
from horizon_zoo.errors import BackendError
from horizon_zoo.fit import fit_model, load_fit
from horizon_zoo.registry import discover, load_model, resolve
from tests.conftest import REPO, make_runs, start_python

BACKENDS = [b for b in ("pystan", "cmdstanpy") if b in available_backends()]
stan = pytest.mark.stan


@pytest.mark.parametrize("cmdstan, pystan, expected", [(True, True, "cmdstanpy"), (False, True, "pystan"),
                                                        (True, False, "cmdstanpy")])
def test_auto_backend_prefers_cmdstan_when_installed(cmdstan, pystan, expected, monkeypatch):
    """Each installation state set explicitly (the old test computed its expectation with the code's
    own branching, so it could not fail)."""
    monkeypatch.setattr("horizon_zoo.backends.cmdstan_available", lambda: cmdstan)
    monkeypatch.setattr("horizon_zoo.backends.pystan_available", lambda: pystan)
    assert resolve_backend("auto") == expected


def test_no_backend_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("horizon_zoo.backends.cmdstan_available", lambda: False)
    monkeypatch.setattr("horizon_zoo.backends.pystan_available", lambda: False)
    with pytest.raises(BackendError, match="no Stan backend: install pystan"):
        resolve_backend("auto")


def test_forcing_a_missing_backend_is_a_clear_error():
    if cmdstan_available():
        pytest.skip("CmdStan is installed here")
    with pytest.raises(BackendError, match="CmdStan is not installed.*--backend pystan"):
        resolve_backend("cmdstanpy")


@stan
@pytest.mark.parametrize("backend", BACKENDS)
def test_chains_started_in_separate_modes_keep_their_identity(backend):
    model = load_model(REPO / "tests" / "stan_programs" / "bimodal.stan")
    data = load_runs(make_runs(n_agents=2, n_tasks=3))
    settings = SamplerSettings(chains=4, warmup=200, draws=200, seed=7)
    inits = [{"mu": -10.0}, {"mu": 10.0}, {"mu": -10.0}, {"mu": 10.0}]
    fit = fit_model(model, data, settings=settings, backend=backend, inits=inits, progress=False)
    mu = fit.idata["posterior"]["mu"].values
    assert mu.shape == (4, 200)
    # every draw of a chain stays in the mode it started in, so chain order is exact
    np.testing.assert_array_equal(np.sign(mu.mean(axis=1)), [-1, 1, -1, 1])
    assert np.all(np.sign(mu) == np.sign(mu.mean(axis=1))[:, None])
    assert fit.diagnostics.max_rhat > 1.1
    assert fit.diagnostics.verdict == "fail"


@stan
@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_data_layout_is_the_contract(backend, tmp_path):
    data = load_runs(make_runs(n_agents=3, n_tasks=5, runs_per_cell=3))
    settings = SamplerSettings(chains=2, warmup=150, draws=100, seed=3)
    fit = fit_model(resolve("logistic"), data, settings=settings, backend=backend, out_dir=tmp_path,
                    progress=False)
    dt = fit.idata
    assert set(dt.children) == {"posterior", "posterior_predictive", "log_likelihood", "sample_stats",
                                "observed_data", "constant_data"}
    assert dt["posterior"]["p_curve"].dims == ("chain", "draw", "agent", "grid")
    assert dt["posterior"]["alpha"].dims == ("chain", "draw", "agent")
    assert dt["posterior_predictive"]["y_rep"].dims == ("chain", "draw", "cell")
    assert dt["log_likelihood"]["log_lik"].dims == ("chain", "draw", "cell")
    assert list(dt["posterior"]["agent"].values) == list(data.agents)
    assert list(dt["observed_data"]["cell_task"].values) == data.cells["task_id"].tolist()
    assert set(dt["sample_stats"].data_vars) >= {"diverging", "tree_depth", "energy", "lp", "step_size"}
    assert dt["sample_stats"]["diverging"].dtype == bool
    # every sampler statistic is (chain, draw) on both backends (PyStan's used to carry <stat>_dim_0)
    assert {v.dims for v in dt["sample_stats"].data_vars.values()} == {("chain", "draw")}
    assert set(dt["sample_stats"].dims) == {"chain", "draw"}
    # y_rep never exceeds the runs of its cell
    assert np.all(dt["posterior_predictive"]["y_rep"].values <= data.cells["n_runs"].to_numpy())
    # saved and reloaded: replicates exactly, parameters and log_lik to their 4 stored significant
    # digits (horizon_zoo.fit)
    loaded, info = load_fit(tmp_path / "logistic.nc")
    np.testing.assert_array_equal(loaded["posterior_predictive"]["y_rep"].values,
                                  dt["posterior_predictive"]["y_rep"].values)
    np.testing.assert_allclose(loaded["posterior"]["alpha"].values, dt["posterior"]["alpha"].values, rtol=1e-3)
    np.testing.assert_allclose(loaded["log_likelihood"]["log_lik"].values, dt["log_likelihood"]["log_lik"].values,
                               rtol=1e-3)
    assert info["status"] == "complete" and info["backend"] == backend
    assert info["settings"]["seed"] == 3 and info["data_fingerprint"] == data.fingerprint()
    divergences = int(dt["sample_stats"]["diverging"].values.sum())
    assert info["diagnostics"]["divergences"] == divergences
    assert info["diagnostics"]["checks_made"]["no_divergences"] is (divergences == 0)


@stan
@pytest.mark.parametrize("backend", BACKENDS)
def test_thinned_fit_keeps_every_thin_th_draw(backend, tmp_path):
    data = load_runs(make_runs(n_agents=2, n_tasks=4))
    settings = SamplerSettings(chains=2, warmup=100, draws=101, seed=5, thin=4)
    fit = fit_model(resolve("logistic"), data, settings=settings, backend=backend, out_dir=tmp_path,
                    progress=False)
    assert settings.kept_draws == 26  # iterations 0, 4, ..., 100
    for group, name in [("posterior", "alpha"), ("log_likelihood", "log_lik"),
                        ("posterior_predictive", "y_rep"), ("sample_stats", "diverging")]:
        assert fit.idata[group][name].sizes["draw"] == 26, group
    assert fit.info["settings"]["thin"] == 4
    # a fit with other thinning is not reused as this one
    from horizon_zoo.api import _matching_fit
    assert _matching_fit(tmp_path, resolve("logistic"), data, settings) is not None
    assert _matching_fit(tmp_path, resolve("logistic"), data, SamplerSettings(chains=2, warmup=100, draws=101,
                                                                              seed=5)) is None


def test_thinning_is_validated_and_left_out_of_unthinned_settings():
    with pytest.raises(ValueError, match="thin"):
        SamplerSettings(thin=0)
    # fits and caches written before thinning existed carry no 'thin' and must still match
    assert "thin" not in SamplerSettings().as_dict()
    assert SamplerSettings(draws=1000, thin=3).kept_draws == 334


def test_large_pointwise_output_warns_with_a_thinning_that_fits(caplog):
    from horizon_zoo.backends import LARGE_POINTWISE_OUTPUT, _warn_if_pointwise_output_large

    cells = 20_000  # the 160,000-run scale-up: 2 x 20,000 x 4,000 values, 3.2 times the limit
    with caplog.at_level("WARNING", logger="horizon_zoo"):
        _warn_if_pointwise_output_large("logistic", cells, SamplerSettings(), "pystan")
    assert "--thin 4" in caplog.text and "20,000 cells" in caplog.text and "PyStan" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="horizon_zoo"):
        _warn_if_pointwise_output_large("logistic", cells, SamplerSettings(thin=4), "pystan")
    assert 2 * cells * 4 * 250 <= LARGE_POINTWISE_OUTPUT and caplog.text == ""


@stan
def test_same_seed_gives_identical_draws():
    data = load_runs(make_runs())
    settings = SamplerSettings(chains=2, warmup=100, draws=50, seed=11)
    a = fit_model(resolve("bradley_terry"), data, settings=settings, progress=False)
    b = fit_model(resolve("bradley_terry"), data, settings=settings, progress=False)
    np.testing.assert_array_equal(a.idata["posterior"]["theta"].values, b.idata["posterior"]["theta"].values)


def test_warmup_schedule_and_init_radius_are_validated_and_left_out_at_stans_defaults():
    # fits and caches written before these became settings must still match
    assert {"init_buffer", "metric_window", "init_radius"}.isdisjoint(SamplerSettings().as_dict())
    assert SamplerSettings(init_buffer=10, metric_window=15, init_radius=0.5).as_dict().items() >= {
        "init_buffer": 10, "metric_window": 15, "init_radius": 0.5}.items()
    for bad in ({"init_buffer": 0}, {"metric_window": 0}, {"init_radius": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SamplerSettings(**bad)


def test_pystan_path_passes_the_warmup_schedule_and_drops_the_raw_output_before_copying(monkeypatch):
    """A stand-in for PyStan's build: what the backend asks of the sampler, and that every chain's
    raw JSON (GBs at scale) is let go before the draws are copied out of the fit."""
    stan = pytest.importorskip("stan")
    from horizon_zoo import backends

    chains, draws, asked = 2, 3, {}
    model = discover()["bradley_terry"]

    class FakeFit:
        sample_and_sampler_param_names = ("lp__",)

        def __init__(self):
            self.stan_outputs = (b"chain 1 json", b"chain 2 json")

        def __getitem__(self, name):  # (*dims, draws * chains)
            assert self.stan_outputs == (), "draws copied while the raw output is still held"
            dims = model.parameter_dims.get(name, ())
            return np.zeros((*[2] * len(dims), draws * chains))

    class FakePosterior:
        def sample(self, **kwargs):
            asked.update(kwargs)
            return FakeFit()

    monkeypatch.setattr(stan, "build", lambda code, data, random_seed: FakePosterior())
    monkeypatch.setattr(backends.pystan, "variable_names", lambda m: list(m.parameter_dims)[:1])
    settings = SamplerSettings(chains=chains, warmup=5, draws=draws, init_buffer=10, metric_window=15,
                               init_radius=0.5)
    result = backends.sample(model, small_stan_data(), settings, backend="pystan", progress=False)
    assert (asked["init_buffer"], asked["window"], asked["num_warmup"], asked["init_radius"]) == (10, 15, 5, 0.5)
    assert result.stats["lp"].shape == (chains, draws)


@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_pystan_cleanup_deletes_only_this_calls_fits(monkeypatch, tmp_path):
    # Another process sampling the same program stores its fit beside ours; deleting the whole
    # fits folder made that process fail with "Fit ... not found".
    import httpstan.cache
    import httpstan.fits

    from horizon_zoo.backends.pystan import _own_fits_removed

    monkeypatch.setattr(httpstan.cache, "cache_directory", lambda: tmp_path)
    theirs = httpstan.fits.calculate_fit_name("hmc_nuts_diag_e_adapt", "models/abc", {"chain": 1})
    httpstan.cache.dump_fit(b"their draws", theirs)
    with _own_fits_removed():
        ours = httpstan.fits.calculate_fit_name("hmc_nuts_diag_e_adapt", "models/abc", {"chain": 2})
        httpstan.cache.dump_fit(b"our draws", ours)
    assert httpstan.cache.load_fit(theirs) == b"their draws"
    with pytest.raises(KeyError):
        httpstan.cache.load_fit(ours)
    assert httpstan.fits.calculate_fit_name.__name__ == "calculate_fit_name"


@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_httpstan_reads_draws_in_bulk_and_never_blocks_its_loop_long(monkeypatch, tmp_path):
    # httpstan's own loop waits up to 10 ms per chain and reads 8 KiB at a time, which stalls the
    # other chains' samplers on their full sockets.
    import select
    import socket

    import httpstan.services_stub as stub

    from horizon_zoo.backends.pystan import HANDOVER_WAIT_S, _draws_received_promptly

    waits = []
    real_select = select.select

    def recording_select(rlist, wlist, xlist, timeout=None):
        waits.append(timeout)
        return real_select(rlist, wlist, xlist, 0)

    monkeypatch.setattr(select, "select", recording_select)
    payload = bytes(range(256)) * 256  # 64 KiB: fits in the socket's buffer, so sendall returns
    with _draws_received_promptly():
        with stub.socket.socket(stub.socket.AF_UNIX, type=stub.socket.SOCK_STREAM) as server:
            server.bind(str(tmp_path / "s.sock"))
            server.listen(1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(tmp_path / "s.sock"))
                client.sendall(payload)
                conn, _ = server.accept()
                with conn:
                    assert stub.select.select([conn], [], [], 0.01)[0] == [conn]
                    assert conn.recv(8192) == payload
    assert waits == [HANDOVER_WAIT_S]
    assert (stub.select, stub.socket) == (select, socket)


@stan
@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_pystan_draws_are_the_same_whichever_way_httpstan_reads_them(monkeypatch):
    # 1,600 cells: each draw's JSON line (~80 KB) spans many reads of either size
    import contextlib

    from horizon_zoo import backends
    from horizon_zoo.contract import stan_data

    data = stan_data(load_runs(make_runs(n_agents=40, n_tasks=40, runs_per_cell=2, seed=5)))
    settings = SamplerSettings(chains=2, warmup=100, draws=40, seed=3)
    prompt = backends.sample(resolve("logistic"), data, settings, backend="pystan", progress=False)
    monkeypatch.setattr(backends.pystan, "_draws_received_promptly", contextlib.nullcontext)
    stock = backends.sample(resolve("logistic"), data, settings, backend="pystan", progress=False)
    assert prompt.variables["log_lik"].shape == (2, 40, 1600)
    for name in ("alpha", "log_lik", "y_rep"):
        np.testing.assert_array_equal(prompt.variables[name], stock.variables[name])
    np.testing.assert_array_equal(prompt.stats["lp"], stock.stats["lp"])


def small_stan_data() -> dict:
    """Contract data of 4 agents x 30 tasks, 3 runs per cell."""
    from horizon_zoo.contract import stan_data

    return stan_data(load_runs(make_runs(n_agents=4, n_tasks=30, runs_per_cell=3, seed=2)))


THREADED = sorted(name for name, model in discover().items() if model.reads("grainsize"))


def test_threads_per_chain_switches_reduce_sum_on_and_is_left_out_when_one():
    assert grainsize(1000, 1) == 0 and "threads_per_chain" not in SamplerSettings().as_dict()
    assert grainsize(1000, 2) == 125 and grainsize(5, 2) == 1  # four slices per thread, at least one cell
    assert SamplerSettings(threads_per_chain=2).as_dict()["threads_per_chain"] == 2
    with pytest.raises(ValueError, match="threads_per_chain"):
        SamplerSettings(threads_per_chain=0)


@stan
@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", THREADED)
def test_reduce_sum_slices_add_up_to_the_one_thread_likelihood(name, weighted):
    """The log density with reduce_sum (grainsize 1 and 7: many slices, on both cores) equals the
    one-call sum at random points; a slice that is misindexed or dropped changes it."""
    from horizon_zoo.backends import program_data, pystan_build

    model = resolve(name)
    data = small_stan_data()
    if weighted:
        data["weight"] = np.random.default_rng(0).uniform(0.2, 2.0, size=data["N"])

    def build(slice_size: int):
        return pystan_build(model.program, program_data(model, {**data, "grainsize": slice_size}), seed=1)

    one_thread = build(0)
    unconstrained, _ = random_points(one_thread, model)
    expected = [one_thread.log_prob(u) for u in unconstrained]
    for slice_size in (1, 7):
        threaded = build(slice_size)
        np.testing.assert_allclose([threaded.log_prob(u) for u in unconstrained], expected, rtol=1e-10)


@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_pystan_builds_run_stanc_with_O1_and_keep_its_errors():
    """Within a build, httpstan's stanc call gets --O1: the parameter vector is then stored as one
    struct of arrays (var_value<Eigen::...>), which stanc without the flag never does. A program
    stanc rejects still raises httpstan's ValueError with stanc's message. The program text
    httpstan caches by differs from an unoptimised build's."""
    import httpstan.compile

    from horizon_zoo import backends

    code = "parameters { vector[3] x; } model { x ~ normal(0, 1); }"
    plain, _ = httpstan.compile.compile(code, "plain_model")
    with backends.pystan._stanc_optimised():
        optimised, _ = httpstan.compile.compile(code, "optimised_model")
        with pytest.raises(ValueError, match='Identifier "y" not in scope'):
            httpstan.compile.compile(code.replace("x ~", "y ~"), "broken_model")
    assert "var_value<Eigen" in optimised and "var_value<Eigen" not in plain
    assert "var_value<Eigen" not in httpstan.compile.compile(code, "plain_model")[0]  # httpstan's own is back
    assert backends.pystan._pystan_program(code).startswith(code) and backends.pystan._pystan_program(code) != code


def random_points(posterior, model, chains: int = 3) -> tuple[list[list[float]], object]:
    """``chains`` random points of the unconstrained space (Stan's uniform(-2, 2) inits, where
    fixed_param starts each chain and stays) and the fit holding every variable there."""
    points = posterior.fixed_param(num_chains=chains, num_samples=1)
    params = model.info["parameters"]

    def value(name: str, chain: int) -> float | list:
        v = np.asarray(points[name])[..., chain]
        return v.item() if params[name]["dimensions"] == 0 else v.tolist()

    return [posterior.unconstrain_pars({p: value(p, c) for p in params}) for c in range(chains)], points


@stan
@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
@pytest.mark.parametrize("name", sorted(discover()))
def test_the_model_block_adds_the_likelihood_that_log_lik_reports(name):
    """Doubling every weight adds the model block's likelihood to the log density once more; at
    random points that increase equals the sum of log_lik, with or without the binomial
    coefficients (constants a model block may leave out). cumulative_surprisal writes its
    likelihood out twice (see its model block), and the two copies must agree.

    Weighted programs use the binomial kernel and unweighted ones the full lpmf, so from weights
    w != 1 (weighted both times) the increase is sum(log_lik) less sum(w * coefficients), or
    sum(log_lik); from weights 1 (unweighted, full lpmf) to 2 (kernel) it is sum(log_lik) less
    twice the coefficients, or less once, or sum(log_lik)."""
    from scipy.special import gammaln

    from horizon_zoo.backends import program_data, pystan_build

    model = resolve(name)
    base = small_stan_data()
    base["release_year"] = np.linspace(2019.0, 2025.0, base["A"])  # read by the trend model only
    n, y = np.asarray(base["n_runs"]), np.asarray(base["n_success"])
    coefficients = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    uneven = np.random.default_rng(2).uniform(0.6, 0.9, base["N"])
    for weight in (uneven, np.ones(base["N"])):
        data = program_data(model, {**base, "weight": weight, "grainsize": 0})
        once = pystan_build(model.program, data, seed=1)
        twice = pystan_build(model.program, {**data, "weight": 2.0 * weight}, seed=1)
        unconstrained, points = random_points(once, model)
        added = np.array([twice.log_prob(u) - once.log_prob(u) for u in unconstrained])
        log_lik = np.asarray(points["log_lik"]).reshape(data["N"], -1).sum(axis=0)
        assert np.all(np.isfinite(added)) and np.ptp(added) > 0  # three different points
        dropped = np.sum(weight * coefficients)
        allowed = (0, dropped) if weight is uneven else (0, dropped, 2 * dropped)
        matches = [np.allclose(added, log_lik - c, rtol=1e-9) for c in allowed]
        assert any(matches), (added, log_lik, allowed)


@pytest.mark.parametrize("model, threads, used_threads, parallel_chains",
                         [("logistic", 1, 1, 2), ("logistic", 2, 2, 1), ("bradley_terry", 2, 1, 2)])
def test_cmdstan_path_builds_with_threads_and_returns_draws_chain_major(monkeypatch, tmp_path, model, threads,
                                                                         used_threads, parallel_chains):
    """CmdStan cannot be installed here, so a stand-in for cmdstanpy checks what the backend asks
    of it (a STAN_THREADS build, threads per chain, chains sharing the cores) and how it reads
    the chain-major output back. A model without reduce_sum (bradley_terry) gets one thread per
    chain, so that its chains keep every core."""
    cmdstanpy = pytest.importorskip("cmdstanpy")
    from horizon_zoo import backends

    chains, draws, asked = 4, 5, {}

    class FakeFit:
        def stan_variable(self, name):  # (chains * draws, ...), chain-major, value = 1000 * chain + draw
            return (np.arange(chains)[:, None] * 1000 + np.arange(draws)).reshape(-1, 1) * np.ones(3)

        def method_variables(self):  # (draws, chains, 1)
            lp = np.arange(draws)[:, None] + 1000.0 * np.arange(chains)
            return {"lp__": lp[..., None], "divergent__": np.zeros((draws, chains, 1))}

    class FakeModel:
        def __init__(self, stan_file, cpp_options, stanc_options):
            asked["cpp_options"], asked["stanc_options"] = cpp_options, stanc_options

        def sample(self, **kwargs):
            asked.update(kwargs)
            return FakeFit()

    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(cmdstanpy, "CmdStanModel", FakeModel)
    monkeypatch.setattr(cmdstanpy, "cmdstan_path", lambda: str(tmp_path))
    monkeypatch.setattr(cmdstanpy, "cmdstan_version", lambda: "2.36")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    data = small_stan_data()
    settings = SamplerSettings(chains=chains, warmup=5, draws=draws, threads_per_chain=threads, init_buffer=10,
                               metric_window=15, init_radius=0.5)
    zoo_model = discover()[model]
    result = backends.sample(zoo_model, data, settings, backend="cmdstanpy", progress=False)

    assert asked["cpp_options"] == {"STAN_THREADS": "true"} and asked["stanc_options"] == {"O1": True}
    assert (asked["adapt_init_phase"], asked["adapt_metric_window"], asked["inits"]) == (10, 15, 0.5)  # radius
    assert (asked["threads_per_chain"], asked["parallel_chains"]) == (used_threads, parallel_chains)
    assert asked["data"].get("grainsize") == (grainsize(data["N"], threads) if zoo_model.reads("grainsize") else None)
    expected = np.arange(chains)[:, None] * 1000 + np.arange(draws)
    assert np.array_equal(result.variables[next(iter(zoo_model.parameter_dims))][..., 0], expected)
    assert np.array_equal(result.stats["lp"], expected)
    assert result.backend == "cmdstanpy"


def _run_with_ctrl_c_enabled(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``script`` in a new Python as at a terminal (see start_python). If it times out, its
    whole process group is killed: the chain processes of an uninterrupted fit would otherwise
    sample on for the rest of the test run."""
    proc = start_python(["-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


_CTRL_C_DURING_THE_DOWNLOAD = """
import gzip, os, signal, sys, time
import httpstan.views
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.data import load_runs
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import resolve
from tests.conftest import make_runs

sent = []
class CtrlCWhenTheDrawsAreServed:  # httpstan's gzip, as seen by its view that serves a fit
    def __getattr__(self, name):
        return getattr(gzip, name)
    def decompress(self, data):
        if not sent:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)
        return gzip.decompress(data)
httpstan.views.gzip = CtrlCWhenTheDrawsAreServed()
try:
    fit_model(resolve("logistic"), load_runs(make_runs()), settings=SamplerSettings(chains=1, warmup=100, draws=300, seed=1),
              backend="pystan", progress=False)
    sys.exit("not interrupted")
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - sent[0], 1), "s")
"""


@stan
@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_a_ctrl_c_while_pystan_receives_the_draws_takes_effect_at_once():
    """The end of every fit: PyStan downloads the draws from its in-process httpstan server. A
    Ctrl-C then left the server answering a request nobody read, and its shutdown waited for it
    twice 60 s before the KeyboardInterrupt came through (121 s measured)."""
    out = _run_with_ctrl_c_enabled(_CTRL_C_DURING_THE_DOWNLOAD)
    assert out.returncode == 0, out.stderr
    seconds = float(out.stdout.split("interrupted after ")[1].split()[0])
    assert seconds < 30, out.stdout


_INTERRUPT_THEN_FIT_AGAIN = """
import os, signal, sys, threading, time
import httpstan.services_stub as stub
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.data import load_runs
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import resolve
from tests.conftest import make_runs, still_running

data = load_runs(make_runs())
chains = []
def ctrl_c_once_a_chain_samples():
    while not chains:
        chains.extend(getattr(stub.executor, "_processes", None) or {})
        time.sleep(0.2)
    time.sleep(1)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=ctrl_c_once_a_chain_samples, daemon=True).start()
start = time.monotonic()
try:
    fit_model(resolve("logistic"), data, settings=SamplerSettings(chains=1, warmup=10**6, draws=10**6), backend="pystan",
              progress=False)
    sys.exit("not interrupted")
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - start), "s; chain processes left:", len(still_running(chains)))
fit = fit_model(resolve("logistic"), data, settings=SamplerSettings(chains=2, warmup=100, draws=50, seed=1),
                backend="pystan", progress=False)
print("then a fit of", fit.idata["posterior"].sizes["chain"], "x", fit.idata["posterior"].sizes["draw"])
"""


@stan
@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_pystan_chains_stop_at_a_ctrl_c_and_the_next_fit_in_the_process_works():
    """httpstan's chain processes ignore SIGINT: left alone, a chain of minutes samples to its end
    while the interrupted process waits. They are killed, and a fresh pool serves the next fit (a
    notebook where a fit was interrupted)."""
    out = _run_with_ctrl_c_enabled(_INTERRUPT_THEN_FIT_AGAIN)
    assert out.returncode == 0, out.stderr
    seconds = int(out.stdout.split("interrupted after ")[1].split()[0])
    assert seconds < 60 and "chain processes left: 0" in out.stdout, out.stdout
    assert "then a fit of 2 x 50" in out.stdout, out.stdout + out.stderr


@pytest.mark.stan
def test_no_progress_bar_is_written_when_stderr_is_not_a_terminal(tmp_path):
    """Issue 32 item 8: written to a log file PyStan's bar was ~1,200 lines per fit."""
    import subprocess
    import sys

    from tests.conftest import REPO

    log_file = tmp_path / "log.txt"
    with log_file.open("w") as err:
        done = subprocess.run([sys.executable, "-m", "horizon_zoo.cli", "fit", "--models", "bradley_terry",
                               "--chains", "2", "--warmup", "200", "--draws", "200", "--runs-root",
                               str(tmp_path / "runs")], cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, timeout=900)
    text = log_file.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "Sampling:" not in text and "\r" not in text
    assert len(text.splitlines()) < 40, text


def test_sampler_statistics_are_chain_by_draw_whatever_the_backend_hands_over():
    """Issue 29 bug 1: PyStan's statistics arrive as (chain, draw, 1), CmdStan's as (chain, draw)."""
    from horizon_zoo.backends.common import _cast_stats

    pystan_like = {"diverging": np.zeros((2, 5, 1)), "tree_depth": np.full((2, 5, 1), 3.0),
                   "energy": np.ones((2, 5, 1))}
    cmdstan_like = {k: v[..., 0] for k, v in pystan_like.items()}
    for stats in (pystan_like, cmdstan_like):
        out = _cast_stats(stats)
        assert {k: v.shape for k, v in out.items()} == {k: (2, 5) for k in stats}
        assert out["diverging"].dtype == bool and out["tree_depth"].dtype == np.int64


def _cmdstan_stand_in(monkeypatch, tmp_path, sample):
    """cmdstanpy replaced by a stand-in whose CmdStanModel.sample is ``sample(**kwargs)``."""
    cmdstanpy = pytest.importorskip("cmdstanpy")

    class FakeModel:
        def __init__(self, stan_file, cpp_options, stanc_options):
            import logging

            logging.getLogger("cmdstanpy").info("compiling stan file %s to exe file ...", stan_file)

        def sample(self, **kwargs):
            return sample(**kwargs)

    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cmdstanpy, "CmdStanModel", FakeModel)
    monkeypatch.setattr(cmdstanpy, "cmdstan_path", lambda: str(tmp_path))
    monkeypatch.setattr(cmdstanpy, "cmdstan_version", lambda: (2, 36))
    return cmdstanpy


def test_a_cmdstan_sampling_failure_names_its_cause(monkeypatch, tmp_path):
    """Issue 29 bug 2: the cause sat in a chain's stdout file in a folder deleted at exit, and the
    message only said to re-run with show_console=True."""
    from horizon_zoo import backends

    def sample(output_dir, **kwargs):
        (Path(output_dir) / "model-20261207-1-stdout.txt").write_text(
            "Chain [1] method = sample\nRejecting initial value:\n  Log probability evaluates to log(0)\n"
            "Initialization failed.\n")
        raise RuntimeError("Error during sampling:\nconsider re-running with show_console=True")

    _cmdstan_stand_in(monkeypatch, tmp_path, sample)
    with pytest.raises(BackendError) as info:
        backends.sample(discover()["bradley_terry"], small_stan_data(), SamplerSettings(chains=1, draws=5),
                        backend="cmdstanpy", progress=False)
    message = str(info.value)
    assert message.startswith("CmdStan sampling of bradley_terry failed: Rejecting initial value:")
    assert "Initialization failed." in message and "show_console" not in message


def test_cmdstan_backend_version_messages_and_csv_files(monkeypatch, tmp_path, caplog):
    """Issue 29 bugs 4-6: the version reads '2.36', not a tuple; CmdStan's non-fatal messages go to
    the debug log, not the terminal; no CSV files are kept beside the saved fit."""
    import logging

    from horizon_zoo import backends

    chains, draws, used = 2, 5, {}

    class FakeFit:
        def stan_variable(self, name):
            return np.zeros((chains * draws, 3))

        def method_variables(self):
            return {"lp__": np.zeros((draws, chains, 1)), "divergent__": np.zeros((draws, chains, 1))}

    def sample(output_dir, **kwargs):
        used["dir"] = Path(output_dir)
        (used["dir"] / "chain-1.csv").write_text("lp__\n0\n")
        logging.getLogger("cmdstanpy").warning("Non-fatal error during sampling:\nException: normal_lpdf ...")
        return FakeFit()

    _cmdstan_stand_in(monkeypatch, tmp_path, sample)
    with caplog.at_level("DEBUG"):
        result = backends.sample(discover()["bradley_terry"], small_stan_data(), SamplerSettings(chains=chains,
                                 draws=draws), backend="cmdstanpy", progress=False)
    assert result.backend_version.endswith("(CmdStan 2.36)")
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "Non-fatal" in r.getMessage()]
    assert warned == []
    assert any(r.levelno == logging.DEBUG and "Non-fatal" in r.getMessage() for r in caplog.records)
    # cmdstanpy's compile lines too (horizon-zoo says "compiling ... (first time only)" itself)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "compiling stan file" in r.getMessage()]
    assert not used["dir"].exists(), "CmdStan's CSV files are not kept"


@pytest.mark.skipif("pystan" not in BACKENDS, reason="PyStan is not installed")
def test_pystans_own_client_gets_no_total_timeout_and_a_prompt_server_shutdown():
    """Guard through PyStan's own code path (its HttpstanClient, as stan.build uses it): if PyStan
    stops taking aiohttp from stan.common, the patches no longer take effect and this fails. The
    default 5-minute total timeout failed first compiles on a busy machine with TimeoutError()."""
    import asyncio

    import stan.common

    from horizon_zoo.backends.pystan import HTTPSTAN_SHUTDOWN_S, _server_stops_promptly

    async def open_client():
        async with stan.common.HttpstanClient() as client:
            return client.session.timeout, client.runner

    with _server_stops_promptly():
        timeout, runner = asyncio.run(open_client())
    assert timeout.total is None and timeout.sock_connect == 30
    assert runner._shutdown_timeout == HTTPSTAN_SHUTDOWN_S
    timeout, _ = asyncio.run(open_client())  # outside the block PyStan is as it was
    assert timeout.total == 300
