"""Guards for the PyStan and httpstan patches of ``horizon_zoo.backends``.

Each patch replaces an attribute that PyStan or httpstan look up at call time. The other tests
call the replacements directly, so they would still pass if an upgrade looked the attribute up
elsewhere and the patch silently stopped taking effect. These tests go through PyStan's and
httpstan's own code instead, and fail when a patch no longer reaches it (the server and session
timeouts have theirs in tests/test_backends.py, through PyStan's HttpstanClient). pyproject.toml
pins pystan and httpstan to the releases they were written for.
"""

from __future__ import annotations

import asyncio
import select

import numpy as np
import pytest

from horizon_zoo import backends
from horizon_zoo.backends import SamplerSettings, pystan_available
from horizon_zoo.backends.pystan import (
    HANDOVER_WAIT_S,
    _pystan_model_directory,
    _pystan_program,
    _stanc_optimised,
)
from horizon_zoo.data import load_runs
from horizon_zoo.registry import resolve
from tests.conftest import make_runs

stan = pytest.mark.stan

pytestmark = pytest.mark.skipif(not pystan_available(), reason="PyStan is not installed")


def test_httpstan_builds_its_cpp_with_our_stanc_flags(monkeypatch, tmp_path):
    """httpstan's own model build (``httpstan.models.build_services_extension_module``) writes
    the C++ that stanc --O1 makes: a parameter vector stored as one struct of arrays."""
    import httpstan.build_ext
    import httpstan.models

    class Stop(Exception):
        pass

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise Stop  # the C++ is written by then; compiling it would take a minute

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # httpstan's cache, for this test only
    monkeypatch.setattr(httpstan.build_ext, "run_build_ext", no_compiler)
    code = _pystan_program("parameters { vector[3] x; } model { x ~ normal(0, 1); }")
    with _stanc_optimised(), pytest.raises(Stop):
        asyncio.run(httpstan.models.build_services_extension_module(code))
    (cpp,) = tmp_path.rglob("*.cpp")
    assert "var_value<Eigen" in cpp.read_text()


@stan
def test_a_pystan_fit_reads_draws_promptly_and_leaves_no_fit_in_httpstans_cache(monkeypatch):
    """Through a real PyStan fit: httpstan's services stub waits HANDOVER_WAIT_S in its select
    (not its own 10 ms), and the fit httpstan stores on disk is deleted afterwards."""
    waits: list[float | None] = []
    real_select = select.select

    def recording(rlist, wlist, xlist, timeout=None):  # noqa: ANN001, ANN202
        waits.append(timeout)
        return real_select(rlist, wlist, xlist, timeout)

    monkeypatch.setattr(select, "select", recording)
    model = resolve("logistic")
    directory = _pystan_model_directory(model.program)
    fits_before = set((directory / "fits").glob("*")) if (directory / "fits").is_dir() else set()
    from horizon_zoo.contract import stan_data

    data = stan_data(load_runs(make_runs(n_agents=3, n_tasks=10, runs_per_cell=2, seed=1)))
    draws = backends.sample(model, data, SamplerSettings(chains=1, warmup=50, draws=20, seed=2),
                            backend="pystan", progress=False)
    assert np.isfinite(draws.variables["alpha"]).all()
    assert HANDOVER_WAIT_S in waits and 0.01 not in waits
    assert directory.is_dir()  # the model's folder is httpstan's, so the fits were looked for there
    fits_after = set((directory / "fits").glob("*")) if (directory / "fits").is_dir() else set()
    assert fits_after == fits_before, sorted(map(str, fits_after - fits_before))
