"""Grouped cross-validation: folds, the held-out weight trick, caching, and the acceptance tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cv import (
    PREDICTIVE_DRAWS,
    assemble_predictive,
    cross_validate,
    cv_compare,
    group_of_cells,
    held_out_cells,
    held_out_predictive,
    make_folds,
    verdicts,
    zero_weight_groups,
)
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
    minutes = data.tasks.set_index("task_id")["human_minutes"]
    for fold in folds:
        assert len({family[t] for t in fold.groups}) == 2  # both families in every fold
        assert len(fold.groups) == 6
        # stratified by length: within a family (12 tasks), tasks sorted by length are dealt round-robin
        # over the 4 folds, so each fold holds one task from each third of every family's lengths
        for fam in ("fam0", "fam1"):
            ranks = sorted(minutes[t] for t in family.index[family == fam])
            held = sorted(ranks.index(minutes[t]) // 4 for t in fold.groups if family[t] == fam)
            assert held == [0, 1, 2], (fold, fam, held)


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
    pointwise = cross_validate(models, data, ["task"], k=5, settings=SETTINGS, cache=tmp_path).pointwise
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
    first = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path).pointwise
    assert not first["cached"].any()

    def no_refit(*args, **kwargs):
        raise AssertionError("a cached fold was refitted")

    monkeypatch.setattr("horizon_zoo.fit.fit_model", no_refit)
    again = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path).pointwise
    assert again["cached"].all()
    pd.testing.assert_frame_equal(first.drop(columns="cached"), again.drop(columns="cached"))
    # A different setting is a different fold: it must not be served from the cache.
    with pytest.raises(AssertionError, match="refitted"):
        cross_validate(models, data, ["task"], k=2, settings=SamplerSettings(chains=2, warmup=300, draws=301, seed=4),
                       cache=tmp_path)
    # nor a different backend: the key holds the backend "auto" resolved to, not "auto" (issue 30)
    from horizon_zoo.backends import resolve_backend

    other = "pystan" if resolve_backend("auto") == "cmdstanpy" else "cmdstanpy"
    with pytest.raises(AssertionError, match="refitted"):
        cross_validate(models, data, ["task"], k=2, settings=SETTINGS, backend=other, cache=tmp_path)
    monkeypatch.setattr("horizon_zoo.backends.resolve_backend", lambda backend: other if backend == "auto" else backend)
    with pytest.raises(AssertionError, match="refitted"):
        cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path)


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
    # the calibrated residual-structure checks: both statistics from their own schemes, in-sample p beside them
    structure = pd.read_csv(out / "tables" / "checks_cv.csv")
    assert sorted(zip(structure["statistic"], structure["scheme"], strict=False)) == sorted(
        [("agent_eigen_share", "task"), ("task_block", "family")] * 2)
    assert structure["p_value"].between(0, 1).all() and structure["p_in_sample"].notna().all()
    assert "Do tasks of a family share a misfit" in sentences
    assert (out / "figures" / "residuals_cv_logistic.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.html").read_text()
    assert "Residual structure, cross-validated" in report and "href='#residual-structure-cross-validated'" in report
    assert "Residual structure, cross-validated" in (out / "summary.md").read_text()
    # what each score means is said where it is shown (issue 37 item 7)
    from horizon_zoo.compare import LOO_MEANING_NOTE
    from horizon_zoo.cv import CV_MEANING_NOTE

    markdown = (out / "report.md").read_text()
    assert LOO_MEANING_NOTE in markdown and CV_MEANING_NOTE in markdown
    assert LOO_MEANING_NOTE in (out / "summary.md").read_text()


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


def _records_of_two_folds() -> list[dict]:
    """Four cells: fold 0 holds out cells 0 and 2 (two kept draws), fold 1 cells 1 and 3 (three)."""
    return [{"cells": [0, 2], "p_mean": [0.5, 0.25], "y_rep": [[1, 0], [2, 1]]},
            {"cells": [3, 1], "p_mean": [1.0, 0.0], "y_rep": [[2, 0], [2, 0], [1, 1]]}]


def test_held_out_predictions_are_assembled_into_every_cell_once():
    pred = assemble_predictive(_records_of_two_folds(), 4)
    assert pred.p_mean.tolist() == [0.5, 0.0, 0.25, 1.0]
    # each cell's column comes from its own fold; the fold with more draws is cut to the smallest count
    assert pred.y_rep.tolist() == [[1, 0, 0, 2], [2, 0, 1, 2]]
    with pytest.raises(ValueError, match=r"^2 cells are held out by no fold \(e\.g\. \[1, 3\]\)$"):
        assemble_predictive(_records_of_two_folds()[:1], 4)
    overlapping = _records_of_two_folds() + [{"cells": [2], "p_mean": [0.1], "y_rep": [[0], [0]]}]
    with pytest.raises(ValueError, match=r"cells \[2\] are held out by two folds"):
        assemble_predictive(overlapping, 4)


def test_cross_validated_residuals_are_observed_rate_minus_the_folds_predictive_mean():
    from horizon_zoo.checks import check_data_from_runs, residual_matrix

    runs = make_runs(n_agents=2, n_tasks=2, runs_per_cell=2, seed=3)
    data = load_runs(runs)
    pred = assemble_predictive(_records_of_two_folds(), len(data.cells))
    d = check_data_from_runs(data, pred.y_rep, pred.p_mean)
    cells = data.cells
    # by hand: cell i is agent cells.agent[i] on task cells.task_id[i]; residual = successes / runs - p_mean[i]
    expected = cells["n_success"].to_numpy() / cells["n_runs"].to_numpy() - np.array([0.5, 0.0, 0.25, 1.0])
    resid = residual_matrix(d, d.y)
    for i, (agent, task) in enumerate(zip(cells["agent"], cells["task_id"], strict=False)):
        assert resid[data.agents.index(agent), list(data.tasks["task_id"]).index(task)] == pytest.approx(expected[i])
    # replicated residuals use the same predictive mean, draw by draw
    rep = residual_matrix(d, d.y_rep)
    assert rep.shape == (2, 2, 2)
    assert rep[1, data.agents.index(cells["agent"][3]), list(data.tasks["task_id"]).index(cells["task_id"][3])] \
        == pytest.approx(2 / 2 - 1.0)


def test_a_fold_keeps_its_held_out_cells_predictive_draws():
    import xarray as xr

    y_rep = np.arange(2 * 500 * 3).reshape(2, 500, 3) % 5  # chains x draws x cells, runs per cell 4
    idata = xr.DataTree.from_dict({
        "posterior_predictive": xr.Dataset({"y_rep": (("chain", "draw", "cell"), y_rep)}),
        "observed_data": xr.Dataset({"n_runs": ("cell", np.array([4, 4, 5]))}),
    })
    kept = held_out_predictive(idata, np.array([0, 2]), seed=1)
    assert kept["cells"] == [0, 2]
    flat = y_rep.reshape(1000, 3)
    assert kept["p_mean"] == pytest.approx([flat[:, 0].mean() / 4, flat[:, 2].mean() / 5])  # over all draws
    draws = np.asarray(kept["y_rep"])
    assert draws.shape == (PREDICTIVE_DRAWS, 2)
    # rows are whole draws: both cells of a kept row come from the same posterior draw
    rows = {tuple(r) for r in flat[:, [0, 2]].tolist()}
    assert all(tuple(r) in rows for r in draws.tolist())


@pytest.mark.stan
def test_cross_validated_task_block_flags_logistic_but_not_task_effects_on_family_effect_data(tmp_path):
    """Acceptance (#27): data with strong family effects. Leave-family-out residuals of logistic keep
    the families' shared difficulty, which its replicates (no family effects) never show; those of
    logistic_task_effects carry a new family's effect in the replicates too."""
    data = api.load(family_effect_runs(True))
    models = [resolve("logistic"), resolve("logistic_task_effects")]
    result = cross_validate(models, data, ["family"], k=4, settings=SETTINGS, cache=tmp_path)
    from horizon_zoo.checks import cross_validated_structure

    p = {m.name: cross_validated_structure(data, {"family": result.predictive[(m.name, "family")]})
         .table.set_index("statistic").loc["task_block", "p_value"] for m in models}
    assert p["logistic"] < 0.025, p
    assert 0.025 <= p["logistic_task_effects"] <= 0.975, p


def test_structure_verdicts_name_the_models_each_statistic_flags():
    from horizon_zoo.checks import structure_verdicts

    table = pd.DataFrame({"model": ["a", "b", "a", "b"],
                          "statistic": ["task_block", "task_block", "agent_eigen_share", "agent_eigen_share"],
                          "p_value": [0.5, 0.01, 0.98, 0.3]})
    block, eigen = structure_verdicts(table)
    assert "leave-family-out" in block and "Explained by: a (p = 0.500); left behind by: b (p = 0.010)" in block
    # 0.98 is outside [0.025, 0.975]: flagged on the high side too
    assert "leave-task-out" in eigen and "Explained by: b (p = 0.300); left behind by: a (p = 0.980)" in eigen


@pytest.mark.stan
def test_an_unreadable_fold_cache_entry_is_refitted_with_one_line(tmp_path, caplog):
    data = api.load(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    models = [resolve("logistic")]
    first = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path).pointwise
    entry = sorted(tmp_path.glob("logistic-task-0-*.json"))[0]
    entry.write_text(entry.read_text()[:40])  # a truncated write
    with caplog.at_level("WARNING", logger="horizon_zoo"):
        again = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, cache=tmp_path).pointwise
    assert [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()][0].endswith(
        "computing it again")
    assert again.set_index("fold")["cached"].to_dict() == {0: False, 1: True}
    pd.testing.assert_frame_equal(first.drop(columns="cached"), again.drop(columns="cached"))


def test_a_group_of_zero_weight_is_named_not_dropped():
    runs = make_runs(n_agents=2, n_tasks=4, runs_per_cell=2)
    runs.loc[runs["task_id"] == "fam1/task3", "equal_task_weight"] = 0.0
    data = load_runs(runs, weights="equal")
    assert zero_weight_groups(data, "task") == {"fam1/task3"} and zero_weight_groups(data, "family") == set()
    groups = sorted(data.tasks["task_id"])
    pointwise = pd.DataFrame({
        "scheme": "task", "model": ["a"] * 4 + ["b"] * 4, "group": groups * 2, "fold": 0, "verdict": "pass",
        # a zero-weight group's joint density is exp(0): elpd 0 for every model
        "elpd": [-1.0, -2.0, -1.5, 0.0, -2.0, -3.0, -2.5, 0.0], "zero_weight": [g == "fam1/task3" for g in groups] * 2})
    table = cv_compare(pointwise).set_index("model")
    assert table.loc["a", "n_groups"] == 4 and table.loc["b", "elpd"] == pytest.approx(-7.5)
    assert table.loc["a", "zero_weight_groups"] == "fam1/task3"
    assert "Groups with weight 0, scoring 0 for every model: fam1/task3." in verdicts(table.reset_index())[0]
    # a group some model cannot score is left out of the pairing, and named
    broken = pointwise.assign(elpd=pointwise["elpd"].where(~((pointwise["model"] == "b") & (pointwise["group"] == groups[0]))))
    table = cv_compare(broken).set_index("model")
    assert table.loc["a", "n_groups"] == 3 and table.loc["a", "unpaired_groups"] == groups[0]
    assert f"no finite elpd for some model: {groups[0]}" in verdicts(table.reset_index())[0]


def test_joint_elpd_is_the_log_predictive_density_of_the_weighted_likelihood():
    """One scale for LOO, reloo and CV: log E[prod p_i^w_i] from log_lik = w * HOLDOUT_WEIGHT * log p."""
    import xarray as xr

    from horizon_zoo.cv import HOLDOUT_WEIGHT, joint_elpd

    log_p = np.log(np.array([[0.5, 0.25], [0.25, 0.5]]))  # two draws x two cells
    w = np.array([2.0, 0.0])
    idata = xr.DataTree.from_dict({"log_likelihood": xr.Dataset(
        {"log_lik": (("chain", "draw", "cell"), (w * HOLDOUT_WEIGHT * log_p)[None])})})
    # by hand: draw 1 gives 0.5^2 * 0.25^0, draw 2 gives 0.25^2; their mean is 0.15625
    assert joint_elpd(idata, np.array([0, 1])) == pytest.approx(np.log((0.25 + 0.0625) / 2))
    assert joint_elpd(idata, np.array([1])) == 0.0  # weight 0: exactly 0, never 0/0


@pytest.mark.parametrize("diff, dse, decisive", [(-4.1, 2.0, True), (-3.9, 2.0, False), (-10.0, 6.0, False)])
def test_the_cv_verdict_is_decisive_only_beyond_2_se_of_the_paired_difference(diff, dse, decisive):
    """Issue 36: the verdict was tested only with dse = 0."""
    table = pd.DataFrame({"scheme": "task", "model": ["a", "b"], "rank": [0, 1], "elpd": [-10.0, -10.0 + diff],
                          "elpd_diff": [0.0, diff], "dse": [0.0, dse]})
    sentence = verdicts(table)[0]
    assert f"b is {-diff:.1f} elpd behind (dSE {dse:.1f})" in sentence
    assert ("more than 2 SE: a clear difference." in sentence) is decisive
    assert ("within 2 SE: not decisive." in sentence) is not decisive


def _fake_fitter(calls: list, rhat: float = 1.001, divergences: int = 0):
    """fit_model's stand-in: every draw predicts success with probability 0.5, and log_lik is the
    cell's weight times its binomial log density, as the zoo's programs compute it."""
    from types import SimpleNamespace

    import arviz_base as azb
    from scipy import stats

    from horizon_zoo.diagnostics import Diagnostics, _judge

    def fit_model(model, data, settings=None, backend="auto", progress=True):
        cells = data.cells
        n, y, w = (cells[c].to_numpy() for c in ("n_runs", "n_success", "weight"))
        calls.append({"model": model.name, "backend": backend, "weight": w.copy()})
        rng = np.random.default_rng(len(calls))
        ll = np.broadcast_to(w * stats.binom.logpmf(y, n, 0.5), (2, 10, len(n)))
        idata = azb.from_dict({"log_likelihood": {"log_lik": ll},
                               "posterior_predictive": {"y_rep": rng.binomial(n, 0.5, (2, 10, len(n)))},
                               "observed_data": {"n_runs": n}},
                              dims={"log_lik": ["cell"], "y_rep": ["cell"], "n_runs": ["cell"]})
        diagnostics = Diagnostics(rhat, 900.0, 900.0, divergences, 0, 1.0, 20)
        _judge(diagnostics, chains=2)
        return SimpleNamespace(idata=idata, diagnostics=diagnostics)

    return fit_model


def test_cross_validate_scores_each_held_out_group_and_caches_its_folds(tmp_path, monkeypatch, caplog):
    """Fast tier, no Stan (issue 36): the folds' held-out weights, each group's elpd, the progress
    lines, the predictions and the cache, through a stand-in fitter whose elpds are known."""
    import dataclasses
    import logging

    from scipy import stats

    from horizon_zoo.cv import HOLDOUT_WEIGHT

    data = api.load(make_runs(n_agents=2, n_tasks=6, runs_per_cell=3))
    weight = np.where(data.cells["task_id"] == data.cells["task_id"].iloc[0], 2.0, 1.0)
    data = dataclasses.replace(data, cells=data.cells.assign(weight=weight))
    calls: list = []
    monkeypatch.setattr("horizon_zoo.fit.fit_model", _fake_fitter(calls))
    models = [resolve("logistic")]
    with caplog.at_level(logging.INFO, logger="horizon_zoo"):
        result = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, backend="pystan", cache=tmp_path)
    folds = make_folds(data, "task", 2)
    assert len(calls) == 2 and {c["backend"] for c in calls} == {"pystan"}
    for fold, call in zip(folds, calls, strict=True):  # in-process: folds in order
        held = held_out_cells(data, fold)
        np.testing.assert_array_equal(call["weight"], np.where(held, weight * HOLDOUT_WEIGHT, weight))
    cells = data.cells
    own = weight * stats.binom.logpmf(cells["n_success"], cells["n_runs"], 0.5)
    expected = pd.Series(own).groupby(cells["task_id"].to_numpy()).sum()
    got = result.pointwise.set_index("group")["elpd"]
    np.testing.assert_allclose(got.sort_index().to_numpy(), expected.sort_index().to_numpy(), rtol=1e-9)
    assert not result.pointwise["cached"].any() and set(result.pointwise["verdict"]) == {"pass"}
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CV [")]
    assert messages == ["CV [1/2] logistic, task fold 0: fitted (pass)", "CV [2/2] logistic, task fold 1: fitted (pass)"]
    predictive = result.predictive[("logistic", "task")]
    assert predictive.y_rep.shape == (20, len(cells)) and np.all(predictive.y_rep <= cells["n_runs"].to_numpy())
    np.testing.assert_allclose(predictive.p_mean, predictive.y_rep.mean(axis=0) / cells["n_runs"].to_numpy())

    # the same call again is read from the cache; the backend is part of the key
    again = cross_validate(models, data, ["task"], k=2, settings=SETTINGS, backend="pystan", cache=tmp_path)
    assert len(calls) == 2 and again.pointwise["cached"].all()
    pd.testing.assert_frame_equal(again.pointwise.drop(columns="cached"), result.pointwise.drop(columns="cached"))
    cross_validate(models, data, ["task"], k=2, settings=SETTINGS, backend="cmdstanpy", cache=tmp_path)
    assert len(calls) == 4


def test_a_failing_fold_says_why_in_its_progress_line(tmp_path, monkeypatch, caplog):
    import logging

    data = api.load(make_runs(n_agents=2, n_tasks=4, runs_per_cell=2))
    monkeypatch.setattr("horizon_zoo.fit.fit_model", _fake_fitter([], rhat=1.2, divergences=3))
    with caplog.at_level(logging.INFO, logger="horizon_zoo"):
        result = cross_validate([resolve("logistic")], data, ["agent"], k=2, settings=SETTINGS, backend="pystan",
                                cache=tmp_path)
    assert set(result.pointwise["verdict"]) == {"fail"} and set(result.pointwise["divergences"]) == {3}
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("CV [1/2]"))
    assert line.endswith(": fitted (fail) - max R-hat 1.200, 3 divergences")


def test_cv_options_are_refused_with_the_names_and_counts_a_user_typed():
    from horizon_zoo.cv import SCHEMES, check_cv_options
    from horizon_zoo.errors import HorizonZooError

    check_cv_options(["task", "family"], 2)  # the fewest folds that leave something to fit on
    with pytest.raises(HorizonZooError, match=r"^--folds must be at least 2, got 1\.$"):
        check_cv_options(["task"], 1)
    with pytest.raises(HorizonZooError) as info:
        check_cv_options(["tasks", "task", "famly"], 5)
    assert str(info.value) == f"unknown --cv scheme(s) tasks, famly; use {', '.join(SCHEMES)}."


def test_a_verdict_names_the_groups_its_comparison_could_not_use():
    table = pd.DataFrame({"scheme": ["task", "task"], "model": ["a", "b"], "rank": [0, 1], "elpd_diff": [0.0, -1.0],
                          "dse": [0.0, 2.0], "zero_weight_groups": ["t1, t2", ""], "unpaired_groups": ["t9", ""]})
    (sentence,) = verdicts(table)
    assert sentence.endswith("within 2 SE: not decisive. Groups with weight 0, scoring 0 for every model: t1, t2. "
                             "Left out, no finite elpd for some model: t9.")
    (plain,) = verdicts(table.assign(zero_weight_groups="", unpaired_groups=np.nan))
    assert plain.endswith("within 2 SE: not decisive.")


def test_the_cv_command_prints_its_table_and_verdicts_and_writes_its_run(tmp_path, write_runs, monkeypatch, capsys):
    """The CLI's cv in the fast tier, through the stand-in fitter (issue 36: cli._cv had no fast test)."""
    import json

    from horizon_zoo import cli

    calls: list = []
    monkeypatch.setattr("horizon_zoo.fit.fit_model", _fake_fitter(calls))
    monkeypatch.setenv("HORIZON_ZOO_CV_CACHE", str(tmp_path / "cache"))
    runs = write_runs(make_runs(n_agents=2, n_tasks=6, runs_per_cell=2))
    out = tmp_path / "cv-run"
    assert cli.main(["cv", "--runs", str(runs), "--models", "logistic,bradley_terry", "--cv", "task", "--folds", "2",
                     "--backend", "pystan", "--jobs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert len(calls) == 4 and {c["model"] for c in calls} == {"logistic", "bradley_terry"}
    assert {c["backend"] for c in calls} == {"pystan"}
    table = pd.read_csv(out / "tables" / "cv.csv")
    assert "Cross-validation (elpd of held-out groups; elpd_diff and dse paired over groups):" in printed
    assert set(table["model"]) == {"logistic", "bradley_terry"} and set(table["scheme"]) == {"task"}
    assert (out / "cv.md").read_text() in printed
    assert printed.rstrip().endswith(f"Run directory: {out}  (start with report.html)")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["backend"] == "pystan" and manifest["folds"] == 2
    assert manifest["command"].startswith("horizon-zoo cv --runs ")


def test_the_report_command_rebuilds_a_run_directorys_report(tmp_path, capsys):
    from horizon_zoo import cli
    from tests.test_report import _fixture_run

    _fixture_run(tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'report.html'} and {tmp_path / 'report.md'}\n"
    assert "<h2 id=" in (tmp_path / "report.html").read_text()


def test_cv_compare_standard_errors_counts_and_groups_left_out_by_hand():
    """Every column of one scheme's table against its definition, computed here by hand: SEs with
    the population variance over paired groups (as loo_compare does over cells), failing folds
    counted per model, groups of weight 0 and groups without a finite elpd named; schemes keep
    the order they came in."""
    a = [-1.0, -2.0, -4.0, -1.0, 0.0]
    b = [-1.5, -2.0, -3.0, -2.0, -np.inf]  # group v: no finite elpd for b, so unpaired
    pointwise = pd.concat([
        pd.DataFrame({"scheme": "task", "model": m, "group": list("wxyzv"), "elpd": e, "fold": [0, 0, 1, 1, 2],
                      "verdict": v, "zero_weight": [False, False, False, False, True]})
        for m, e, v in (("a", a, ["pass"] * 5), ("b", b, ["fail", "fail", "pass", "fail", "pass"]))]
        + [pd.DataFrame({"scheme": "agent", "model": ["a", "b"], "group": "g", "elpd": [-1.0, -0.5], "fold": 0,
                         "verdict": "pass", "zero_weight": False})], ignore_index=True)
    table = cv_compare(pointwise)
    assert list(table["scheme"]) == ["task", "task", "agent", "agent"]
    task = table[table["scheme"] == "task"].set_index("model")
    pa, pb = np.array(a[:4]), np.array(b[:4])
    n = 4
    assert task.loc["a", "rank"] == 0 and task.loc["b", "rank"] == 1
    assert task.loc["a", "se"] == pytest.approx(np.sqrt(n * pa.var()))
    assert task.loc["b", "se"] == pytest.approx(np.sqrt(n * pb.var()))
    assert task.loc["b", "elpd_diff"] == pytest.approx((pb - pa).sum())
    assert task.loc["b", "dse"] == pytest.approx(np.sqrt(n * (pb - pa).var()))
    assert task.loc["b", "diff_over_dse"] == pytest.approx(task.loc["b", "elpd_diff"] / task.loc["b", "dse"])
    assert task.loc["a", "diff_over_dse"] == 0.0 and task.loc["a", "dse"] == 0.0
    assert list(task["n_groups"]) == [4, 4]
    assert task.loc["a", "folds_failing_diagnostics"] == 0 and task.loc["b", "folds_failing_diagnostics"] == 2
    assert set(task["zero_weight_groups"]) == {"v"} and set(task["unpaired_groups"]) == {"v"}
    agent = table[table["scheme"] == "agent"].set_index("model")
    assert agent.loc["b", "rank"] == 0 and agent.loc["a", "elpd_diff"] == -0.5
    assert agent.loc["a", "dse"] == 0.0 and agent.loc["a", "diff_over_dse"] == 0.0  # one group: no spread


def test_fold_keys_change_with_each_input_and_folds_are_numbered():
    from horizon_zoo.cv import Fold, fold_key

    data = api.load(make_runs(n_agents=3, n_tasks=8, runs_per_cell=2))
    other = api.load(make_runs(n_agents=3, n_tasks=8, runs_per_cell=2, seed=1))
    model, fold = resolve("logistic"), Fold("task", 0, ("fam0/task0",))
    key = fold_key(model, data, fold, SETTINGS, "pystan")
    assert len(key) == 24 and key == fold_key(model, data, fold, SETTINGS, "pystan")
    variants = [fold_key(resolve("bradley_terry"), data, fold, SETTINGS, "pystan"),
                fold_key(model, other, fold, SETTINGS, "pystan"),
                fold_key(model, data, Fold("family", 0, ("fam0/task0",)), SETTINGS, "pystan"),
                fold_key(model, data, Fold("task", 0, ("fam0/task1",)), SETTINGS, "pystan"),
                fold_key(model, data, fold, SamplerSettings(chains=2, warmup=300, draws=300, seed=5), "pystan"),
                fold_key(model, data, fold, SETTINGS, "cmdstanpy")]
    assert len({key, *variants}) == 7
    for scheme in ("agent", "family", "task"):
        folds = make_folds(data, scheme, 2)
        assert [f.index for f in folds] == list(range(len(folds))) and {f.scheme for f in folds} == {scheme}
    with pytest.raises(ValueError, match=r"^unknown CV scheme 'cell'; use one of task, family, agent$"):
        make_folds(data, "cell", 2)


def test_task_folds_partition_the_tasks_of_three_families():
    runs = make_runs(n_agents=2, n_tasks=9, runs_per_cell=1)
    runs["task_family"] = [f"fam{int(t.split('task')[1]) % 3}" for t in runs["task_id"]]
    data = api.load(runs)
    folds = make_folds(data, "task", 3)
    dealt = [t for f in folds for t in f.groups]
    assert sorted(dealt) == sorted(data.tasks["task_id"])  # each task in exactly one fold
    family = data.tasks.set_index("task_id")["task_family"]
    assert all(len({family[t] for t in f.groups}) == 3 for f in folds)  # every fold mixes the families
