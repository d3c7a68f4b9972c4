"""scripts/prior_sensitivity.py: the wide-prior copies change the intercept's prior and nothing
else, and the page's tables come from the horizons run's tables (fixture tables, no Stan)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo.registry import load_model
from tests.conftest import REPO, load_script


@pytest.fixture(scope="module")
def ps():
    return load_script("prior_sensitivity")


def test_every_model_with_the_intercept_prior_is_studied(ps):
    found = set(ps.models_with_the_prior())
    assert {"logistic", "irt_2pl", "agent_family_interaction", "logistic_task_effects"} <= found
    assert not {"bradley_terry", "cumulative_surprisal", "weibull"} & found


@pytest.mark.parametrize("name", ["logistic", "agent_family_interaction"])
def test_the_wide_copy_differs_in_the_prior_only(ps, tmp_path, name):
    path = ps.wide_variant(name, 10, tmp_path)
    wide = load_model(path)  # a valid zoo model: header, contract, stanc
    base = load_model(REPO / "stan_models" / f"{name}.stan")
    assert wide.name == f"{name}_wide" and wide.parameter_dims == base.parameter_dims
    changed = [(a, b) for a, b in zip(base.program.splitlines(), wide.program.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1] == changed[0][0].replace("normal(0, 2.5)", "normal(0, 10)")


def _tables(tmp_path):
    rows = []
    for model, factor in (("m", 1.0), ("m_wide", 1.1)):
        for agent, minutes in (("weak", 0.5), ("mid", 10.0), ("strong", 100.0)):
            rows.append({"model": model, "curve": "marginal", "agent": agent, "q": 0.5,
                         "median_min": minutes * factor, "lo95_min": minutes / 2, "hi95_min": minutes * 2})
    rows.append({**rows[0], "curve": "typical task", "median_min": 1e6})  # another curve: ignored
    pd.DataFrame(rows).to_csv(tmp_path / "horizons.csv", index=False)
    pd.DataFrame({"model": ["m", "m_wide"], "q": [0.5, 0.5], "curve": ["marginal"] * 2,
                  "doubling_months": [6.0, 6.6], "lo95_months": [3.0, 3.3], "hi95_months": [12.0, 13.2]}).to_csv(
        tmp_path / "doubling.csv", index=False)
    return tmp_path


def test_the_tables_pair_each_model_with_its_wide_copy(ps, tmp_path):
    table = ps.sensitivity_table(_tables(tmp_path), ["m"], 10)
    assert table["intercept prior"].tolist() == ["normal(0, 2.5)", "normal(0, 10)"]
    assert table["p50 doubling, months"].tolist() == ["6.0 [3.0, 12.0]", "6.6 [3.3, 13.2]"]
    assert table["weakest agent"].tolist() == ["weak"] * 2 and table["strongest agent"].tolist() == ["strong"] * 2
    assert table["strongest p50"].tolist() == ["1.7 h [50 min, 3.3 h]", "1.8 h [50 min, 3.3 h]"]
    shift = ps.shifts(tmp_path, ["m"]).iloc[0]
    # a 10% move of a median whose interval spans a factor 4: log(1.1) / log(4)
    assert shift["largest p50 shift / interval"] == pytest.approx(np.log(1.1) / np.log(4))
    assert shift["doubling shift / interval"] == pytest.approx(np.log(1.1) / np.log(4))
