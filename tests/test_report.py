"""The report and the headline, rendered from a fixture run directory in the fast tier (no Stan)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from horizon_zoo.api import CompareResult, headline
from horizon_zoo.report import write_report
from horizon_zoo.rundir import write_table


def _horizons(models: list[str]) -> pd.DataFrame:
    rows = []
    for m_i, model in enumerate(models):
        for a_i, agent in enumerate(["old", "new"]):
            for q, scale in ((0.5, 1.0), (0.8, 0.25)):
                med = (4.0 + 20 * a_i) * scale * (1 + m_i)
                rows.append({"model": model, "curve": "marginal", "agent": agent, "q": q, "median_min": med,
                             "lo95_min": med / 2, "hi95_min": med * 2, "lo50_min": med / 1.3, "hi50_min": med * 1.3,
                             "below_grid": 0.0, "above_grid": 0.0, "undefined": 0.0,
                             "horizon": f"{med:.2g} min [{med / 2:.2g} min, {med * 2:.2g} min]"})
    return pd.DataFrame(rows)


def _result(run_dir: Path | None) -> CompareResult:
    loo = pd.DataFrame({"model": ["best_model", "logistic"], "rank": [0, 1], "elpd_loo": [-100.0, -130.0],
                        "se": [10.0, 11.0], "elpd_diff": [0.0, -30.0], "dse": [0.0, 6.0], "p_loo": [20.0, 8.0],
                        "weight": [1.0, 2.03e-13], "n_high_k": [3, 0], "loo_method": ["PSIS", "PSIS"]})
    diagnostics = pd.DataFrame({"model": ["best_model", "logistic"], "verdict": ["pass", "warn"],
                                "max_rhat": [1.003, 1.012], "min_ess_bulk": [900.0, 380.0], "divergences": [0, 0],
                                "problems": ["", "R-hat 1.012 >= 1.01 (alpha[agent=old])"]})
    cv = pd.DataFrame({"scheme": ["task", "task"], "model": ["logistic", "best_model"], "rank": [0, 1],
                       "elpd": [-50.0, -52.0], "se": [5.0, 5.0], "elpd_diff": [0.0, -2.0], "dse": [0.0, 3.0],
                       "n_groups": [20, 20]})
    doubling = pd.DataFrame({"model": ["best_model"], "q": [0.5], "curve": ["marginal"], "trend": ["per-draw regression"],
                             "doubling_months": [6.0], "lo95_months": [4.0], "hi95_months": [9.5], "agents": ["old, new"]})
    return CompareResult(run_dir, data=None, fits={"best_model": None, "logistic": None}, loo=loo,
                         horizons=_horizons(["best_model", "logistic"]), diagnostics=diagnostics, cv=cv,
                         doubling=doubling)


def test_the_headline_names_the_best_model_each_verdict_the_doubling_time_and_the_horizons():
    sentences, table = headline(_result(None))
    assert sentences[0] == "Best model by PSIS-LOO over cells: best_model, 30.0 elpd ahead of logistic (dSE 6.0)."
    assert sentences[1] == ("Best at predicting a task it has never seen (grouped CV): logistic, 2.0 elpd ahead of "
                            "best_model (dSE 3.0).")
    assert sentences[2] == "Diagnostics: 1 of 2 fits pass; warn (logistic)."
    assert sentences[3] == ("The p50 horizon doubles every 6.0 [4.0, 9.5] months (best_model, per-draw regression "
                            "over old, new).")
    assert list(table.columns) == ["agent", "p50 [95% CI]", "p80 [95% CI]"]
    assert table["p50 [95% CI]"].tolist() == ["4 min [2 min, 8 min]", "24 min [12 min, 48 min]"]


def _fixture_run(run_dir: Path) -> None:
    """A run directory as compare writes it, with every table the report reads."""
    result = _result(run_dir)
    tables = run_dir / "tables"
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"run": "compare", "status": "complete", "command": "horizon-zoo "
                                                       "compare", "versions": {"horizon-zoo": "0"}}))
    (run_dir / "data" / "summary.json").write_text(json.dumps({"source": "fixture", "runs": 10, "cells": 4, "agents": 2,
                                                               "tasks": 2, "families": 1, "success_rate": 0.5,
                                                               "min_minutes": 1, "max_minutes": 60,
                                                               "median_minutes": 8}))
    sentences, best = headline(result)
    (run_dir / "headline.md").write_text("".join(f"- {s}\n" for s in sentences))
    write_table(best, tables, "headline_horizons")
    write_table(result.loo, tables, "loo")
    write_table(result.diagnostics, tables, "diagnostics")
    write_table(result.cv, tables, "cv")
    (run_dir / "cv.md").write_text("- Predicting a task it has never seen: logistic is best.\n")
    write_table(pd.DataFrame({"model": ["logistic"], "statistic": ["task_block"], "scheme": ["family"],
                              "observed": [0.1], "replicated_median": [0.0], "lo95": [-0.05], "hi95": [0.05],
                              "p_value": [0.001], "flagged": [True], "p_in_sample": ["0.000 *"]}), tables, "checks_cv")
    write_table(pd.DataFrame({"model": ["logistic"], "task block (within - between family)": ["0.000 *"]}), tables,
                "checks")
    write_table(pd.DataFrame({"curve": ["marginal"], "agent": ["old"], "p50 [95% CI]": ["4 min"], "model": ["logistic"]}),
                tables, "horizons_wide")
    write_table(result.doubling, tables, "doubling")


def test_the_report_opens_with_the_headline_and_links_every_section_from_the_nav(tmp_path):
    _fixture_run(tmp_path)
    html_path, md_path = write_report(tmp_path)
    page = html_path.read_text()
    headings = re.findall(r"<h2 id='([^']+)'>([^<]+)</h2>", page)
    assert [text for _, text in headings][:2] == ["Headline", "Data"]
    assert {"Diagnostics", "Cross-validation: new cells, tasks, families, agents", "Residual structure, cross-validated",
            "Posterior predictive checks", "Horizons", "Trend over release dates"} <= {t for _, t in headings}
    nav = re.search(r"<nav>(.*?)</nav>", page).group(1)
    assert re.findall(r"href='#([^']+)'", nav) == [anchor for anchor, _ in headings]
    # Markdown code spans render as code, long tables fold, and NaN prints as nothing in report.md
    assert "<code>" in page and "`" not in re.sub(r"<code>.*?</code>", "", page.split("<body>")[1])
    assert "<details><summary>p-values of every check" in page
    assert "nan" not in md_path.read_text()
    # the comparison tables are listed best first without ArviZ's 0-based rank (issue 32)
    assert "<th>rank</th>" not in page and "| rank |" not in md_path.read_text()
    # a stacking weight of 2e-13 is a weight of 0 and reads so
    logistic_row = re.search(r"<tr class=''><td>logistic</td>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td>([^<]*)</td>", logistic_row)[5] == "0" and "e-13" not in page
