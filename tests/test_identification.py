"""scripts/identification.py (issue 37, item 6): the 'before' copy is the old program under a new
name with the old includes, the shared-quantity filter keeps only variables of one meaning, and
the same-model check tells one posterior from a shifted one (synthetic draws, no sampling)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import xarray as xr

from horizon_zoo.registry import load_model
from tests.conftest import REPO, load_script


@pytest.fixture(scope="module")
def ident():
    return load_script("identification")


def _first_commit_with_includes() -> str:
    """A commit whose zoo already had stan_models/include (the copy needs that commit's includes)."""
    out = subprocess.run(["git", "log", "--format=%H", "--", "stan_models/include/data.stan"], cwd=REPO,
                         capture_output=True, text=True)
    commits = out.stdout.split()
    if out.returncode != 0 or not commits:
        pytest.skip("no git history of stan_models/include here")
    return commits[-1]


def test_the_before_copy_is_the_old_program_renamed(ident, tmp_path):
    commit = _first_commit_with_includes()
    path = ident.before_variant("logistic", commit, tmp_path)
    old = subprocess.run(["git", "show", f"{commit}:stan_models/logistic.stan"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    text = path.read_text(encoding="utf-8")
    assert text == old.replace("name: logistic\n", "name: logistic_before\n", 1) != old
    assert (tmp_path / "include" / "data.stan").is_file()
    assert load_model(path).name == "logistic_before"  # a valid zoo model with the copied includes


def _tree(p_curve: np.ndarray, **extra: np.ndarray) -> xr.DataTree:
    dims = ("chain", "draw", "agent", "grid")
    posterior = {"p_curve": (dims, p_curve), **{k: (("chain", "draw"), v) for k, v in extra.items()}}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(posterior)})


def test_the_same_model_check_tells_one_posterior_from_a_shifted_one(ident):
    rng = np.random.default_rng(7)
    shape = (4, 500, 3, 20)
    draw = lambda: 1 / (1 + np.exp(-rng.normal(0.0, 1.0, shape)))  # noqa: E731
    same = ident.p_curve_gap(_tree(draw()), _tree(draw()))
    # a shift of 0.2 posterior sd: about 0.2 / sqrt(2 / 2000) = 6 Monte Carlo SEs at every point
    shifted = ident.p_curve_gap(_tree(draw()), _tree(1 / (1 + np.exp(-rng.normal(0.2, 1.0, shape)))))
    assert same < 4.5 < shifted


def test_shared_quantities_leave_out_the_carried_intercepts(ident):
    rng = np.random.default_rng(0)
    tree = _tree(rng.uniform(size=(2, 5, 1, 3)), alpha=rng.normal(size=(2, 5)), ability=rng.normal(size=(2, 5)),
                 z_task=rng.normal(size=(2, 5)), tau_task=rng.normal(size=(2, 5)))
    assert set(ident.shared_posterior(tree).data_vars) == {"p_curve", "tau_task"}


def test_the_summary_compares_each_program_with_its_before(ident):
    import pandas as pd

    rows = []
    for model, before, now in (("m", 10.0, 15.0), ("k", 20.0, 10.0)):
        for seed in (1, 2):
            for program, ess_s in ((f"{model}_before", before), (model, now)):
                rows.append({"model": model, "program": program, "seed": seed, "max R-hat (shared)": 1.0 + seed / 100,
                             "min bulk ESS (shared)": 100 * seed, "bulk ESS / s (shared)": ess_s * seed / 1.5,
                             "divergences": seed})
    out = ident.summary(pd.DataFrame(rows)).set_index("program")
    assert out.loc["m", "ESS/s vs before"] == 1.5 and out.loc["k", "ESS/s vs before"] == 0.5
    assert out.loc["m_before", "worst R-hat (shared)"] == 1.02 and out.loc["m", "divergences"] == 3
