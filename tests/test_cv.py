"""Grouped cross-validation: folds, the held-out weight trick, caching, and the acceptance tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cv import (cross_validate, cv_compare, group_of_cells, held_out_cells, make_folds, verdicts)
from horizon_zoo.data import load_runs
from horizon_zoo.registry import resolve
from tests.conftest import family_effect_runs, make_runs

SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=4)


def test_task_folds_partition_tasks_and_mix_families_and_lengths():
    data = load_runs(make_runs(n_agents=2, n_tasks=24))
    folds = make_folds(data, "task", k=4, seed=1)
    held = [t for f in folds for t in f.groups]
    assert sorted(held) == sorted(data.tasks["task_id"]) and len(held) == len(set(held))
    family = data.tasks.set_index("task_id")["task_family"]
    for fold in folds:
        assert len({family[t] for t in fold.groups}) == 2  # both families in every fold
        assert len(fold.groups) == 6


def test_family_and_agent_folds_and_cell_masks():
    data = load_runs(make_runs(n_agents=3, n_tasks=6))
    agent_folds = make_folds(data, "agent")
    assert [f.groups for f in agent_folds] == [("agent0",), ("agent1",), ("agent2",)]
    mask = held_out_cells(data, agent_folds[1])
    assert set(data.cells.loc[mask, "agent"]) == {"agent1"}
    family_folds = make_folds(data, "family", k=10)
    assert len(family_folds) == 2  # never more folds than families
    groups = group_of_cells(data, "family")
    for fold in family_folds:
        assert set(groups[held_out_cells(data, fold)]) == set(fold.groups)


def test_cv_compare_pairs_differences_over_groups():
    pointwise = pd.DataFrame({
        "scheme": "task", "model": ["a"] * 4 + ["b"] * 4, "group": list("wxyz") * 2,
        "elpd": [-1.0, -2.0, -1.5, -1.0, -2.0, -3.0, -2.5, -2.0], "fold": 0, "verdict": "pass"})
    table = cv_compare(pointwise).set_index("model")
    assert table.loc["a", "rank"] == 0 and table.loc["b", "elpd_diff"] == pytest.approx(-4.0)
    assert table.loc["b", "dse"] == pytest.approx(0.0)  # b is exactly 1 worse on every group
    assert "more than 2 SE" in verdicts(table.reset_index())[0]


@pytest.mark.stan
@pytest.mark.parametrize("effects", [True, False], ids=["task effects", "no task effects"])
def test_leave_tasks_out_prefers_task_effects_only_when_they_exist(effects, tmp_path):
    data = api.load(family_effect_runs(effects))
    models = [resolve("logistic"), resolve("logistic_task_effects")]
    pointwise = cross_validate(models, data, ["task"], k=5, settings=SETTINGS, cache=tmp_path)
    table = cv_compare(pointwise).set_index("model")
    diff = table.loc["logistic", "elpd"] - table.loc["logistic_task_effects", "elpd"]
    dse = max(table.loc["logistic", "dse"], table.loc["logistic_task_effects", "dse"])
    if effects:
        assert diff < -2 * dse, table
    else:
        assert abs(diff) < 2 * dse, table


@pytest.mark.stan
def test_cached_folds_are_reused_without_refitting(tmp_path, monkeypatch):
    data = api.load(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    models = [resolve("logistic")]
    first = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path)
    assert not first["cached"].any()

    def no_refit(*args, **kwargs):
        raise AssertionError("a cached fold was refitted")

    monkeypatch.setattr("horizon_zoo.fit.fit_model", no_refit)
    again = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path)
    assert again["cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns="cached"), again.drop(columns="cached"))
    # A different setting is a different fold: it must not be served from the cache.
    with pytest.raises(AssertionError, match="refitted"):
        cross_validate(models, data, ["task"], k=2, settings=SamplerSettings(chains=2, warmup=300, draws=301, seed=4),
                       cache=tmp_path)


@pytest.mark.stan
def test_compare_runs_every_cv_scheme_and_reports_them(tmp_path, write_runs, monkeypatch):
    from horizon_zoo.cli import main

    monkeypatch.setenv("HORIZON_ZOO_CV_CACHE", str(tmp_path / "cache"))
    runs = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    out = tmp_path / "run"
    assert main(["-q", "compare", "--runs", str(runs), "--models", "logistic,bradley_terry", "--cv",
                 "task,family,agent", "--folds", "2", "--chains", "2", "--warmup", "200", "--draws", "200",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "tables" / "cv.csv")
    assert set(table["scheme"]) == {"cell", "task", "family", "agent"}
    assert set(table["model"]) == {"logistic", "bradley_terry"}
    pointwise = pd.read_csv(out / "tables" / "cv_pointwise.csv")
    assert pointwise.groupby("scheme")["group"].nunique().to_dict() == {"agent": 3, "family": 2, "task": 8}
    sentences = (out / "cv.md").read_text()
    assert sentences.count("Predicting") == 4 and "never seen" in sentences
    assert (out / "figures" / "cv.png").read_bytes()[:4] == b"\x89PNG"
    assert "Cross-validation" in (out / "report.html").read_text()


@pytest.mark.stan
def test_cv_command_writes_its_own_run_directory(tmp_path, write_runs, monkeypatch, capsys):
    from horizon_zoo.cli import main

    monkeypatch.setenv("HORIZON_ZOO_CV_CACHE", str(tmp_path / "cache"))
    runs = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    assert main(["cv", "--runs", str(runs), "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["-q", "cv", "--runs", str(runs), "--models", "logistic,bradley_terry", "--folds", "2",
                 "--chains", "2", "--warmup", "200", "--draws", "200", "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "tables" / "cv.csv")["scheme"]) == {"task"}
    assert (out / "report.html").is_file() and "Predicting a task it has never seen" in (out / "cv.md").read_text()
