"""scripts/worked_example.py: docs/worked-example.md is written from two kept runs' tables (fixture
run directories here, no Stan), so each number on the page must come from those tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def we():
    return load_script("worked_example")


def _compare(run: Path) -> Path:
    (run / "tables").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"command": "horizon-zoo compare --cv task", "backend": "pystan"}))
    pd.DataFrame({"model": ["task_effects", "logistic"], "elpd_loo": [-100.0, -130.0]}).to_csv(
        run / "tables" / "loo.csv", index=False)
    return run


def _horizons(run: Path, weights: str | None) -> Path:
    tables = run / "tables"
    tables.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({
        "command": "horizon-zoo horizons --models task_effects,logistic", "data": {"weights": weights},
        "settings": {"chains": 4, "warmup": 500, "draws": 500, "seed": 11}}))
    rows = []
    for model, curves in (("task_effects", ("marginal", "typical task")), ("logistic", ("marginal",))):
        for curve in curves:
            for agent, p50 in (("a1", "1 min [30 s, 2 min]"), ("a2", "1 h [40 min, 2 h]")):
                rows.append({"model": model, "curve": curve, "agent": agent, "p50 [95% CI]": f"{model} {curve} {p50}",
                             "p80 [95% CI]": f"{model} {curve} p80 {agent}",
                             "METR p50 [95% boot]": f"metr {agent}" if model == "logistic" else ""})
    pd.DataFrame(rows).to_csv(tables / "horizons_wide.csv", index=False)
    pd.DataFrame({"model": ["task_effects", "logistic", "other", "logistic_trend"], "q": [0.5] * 4,
                  "curve": ["marginal"] * 4, "trend": ["per-draw regression"] * 3 + ["joint"],
                  "doubling_months": [5.04, 6.0, 9.0, 4.0], "lo95_months": [2.3, 3.0, 1.0, 2.9],
                  "hi95_months": [float("inf"), 12.0, 20.0, 6.2], "agents": ["a1, a2"] * 4}).to_csv(
        tables / "doubling.csv", index=False)
    pd.DataFrame({"model": ["task_effects"], "curve": ["marginal"], "ratio": ["p80/p50"], "median": [0.987],
                  "lo95": [0.5], "hi95": [1.5], "share_both_growing": [0.93]}).to_csv(
        tables / "doubling_ratio.csv", index=False)
    pd.DataFrame({"months": [1.5], "lo95_months": [0.1], "hi95_months": [3.5], "agents": ["a1, a2"]}).to_csv(
        tables / "metr_doubling.csv", index=False)
    pd.DataFrame({"model": ["task_effects", "task_effects", "other"], "q": [0.5, 0.5, 0.5],
                  "curve": ["marginal"] * 3, "trend": ["per-draw regression"] * 3, "threshold": ["8 h", "2 d", "8 h"],
                  "median_date": ["2027-03-01", "2028-01-01", "2026-01-01"], "lo95_date": ["2026-09-01"] * 3,
                  "hi95_date": ["2031-01-01"] * 3, "far": [True, True, False]}).to_csv(
        tables / "forecasts.csv", index=False)
    return run


def test_the_page_takes_every_number_from_the_runs_tables(we, tmp_path):
    text = we.page(_compare(tmp_path / "cmp"), _horizons(tmp_path / "hor", weights=None))
    # the best model by LOO and METR's curve are the two models of the table; settings from the manifest
    assert "`task_effects` is the best model by PSIS-LOO" in text and "`logistic` is METR's curve" in text
    assert "4 chains x (500 warmup + 500 draws), seed 11, backend pystan" in text
    assert ".venv/bin/horizon-zoo compare --cv task" in text
    assert ("| a2 | task_effects marginal 1 h [40 min, 2 h] | task_effects marginal p80 a2 | "
            "task_effects typical task 1 h [40 min, 2 h] | task_effects typical task p80 a2 | "
            "logistic marginal 1 h [40 min, 2 h] | logistic marginal p80 a2 | metr a2 |") in text
    # doubling times of the two models and of a joint trend, an infinite bound written out; others left out
    assert "`task_effects`, p50 (per-draw regression): **5.0 [2.3, unbounded] months** over a1, a2" in text
    assert "`logistic_trend`, p50 (joint): **4.0 [2.9, 6.2] months**" in text and "`other`" not in text
    assert "doubling-time ratio p80/p50: 0.99 [0.50, 1.50] (1 = parallel trends; both trends grow in 93% of draws)" in text
    assert "METR's pipeline on the same unweighted runs" in text and "p50: 1.5 [0.1, 3.5] months" in text
    # only the 8-hour threshold, flagged as far
    assert "reaches a p50 of 8 h on 2027-03-01 [2026-09-01, 2031-01-01] (a far extrapolation)" in text
    assert "2 d on" not in text


def test_the_page_names_the_weights_the_runs_used(we, tmp_path):
    text = we.page(_compare(tmp_path / "cmp"), _horizons(tmp_path / "hor", weights="invsqrt"))
    assert "METR's pipeline with the run's weights `invsqrt`, p50" in text and "unweighted" not in text


def test_the_script_writes_the_page_it_prints(we, tmp_path, monkeypatch, capsys):
    out = tmp_path / "page.md"
    monkeypatch.setattr("sys.argv", ["worked_example.py", "--compare", str(_compare(tmp_path / "cmp")),
                                     "--horizons", str(_horizons(tmp_path / "hor", None)), "--write", str(out)])
    we.main()
    assert out.read_text() == capsys.readouterr().out[:-1]  # print adds one newline
