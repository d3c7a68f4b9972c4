"""scripts/mutation_report.py: the score per module and the generated blocks (issue 36)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_script

report = load_script("mutation_report")


def test_score_counts_equivalents_apart_and_no_tests_as_not_killed():
    statuses = {"horizon_zoo/a.py": {"a.x__mutmut_1": "killed", "a.x__mutmut_2": "survived",
                                     "a.x__mutmut_3": "no tests", "a.x__mutmut_4": "survived",
                                     "a.x__mutmut_5": "timeout", "a.x__mutmut_6": "not checked"}}
    (row,) = report.scores(statuses, {"a.x__mutmut_4": "same value"})
    assert (row["mutants"], row["killed"], row["survived"], row["no tests"], row["equivalent"]) == (6, 2, 1, 1, 1)
    assert row["score"] == pytest.approx(2 / 4)  # killed / (6 - 1 equivalent - 1 not checked)


def test_write_renders_the_kept_results_and_names_stale_equivalents(tmp_path, monkeypatch):
    results, page, readme, equivalent = tmp_path / "testing", tmp_path / "testing.md", tmp_path / "README.md", \
        tmp_path / "eq.toml"
    results.mkdir()
    (results / "mutation.json").write_text(json.dumps(
        {"machine": "m", "tool": "mutmut 3.8.1", "runs": [{"measured": "2026-12-08 01:00 UTC", "command": "c",
                                                            "wall_min": 9.5}],
         "statuses": {"horizon_zoo/a.py": {"k1": "killed", "k2": "killed", "k3": "survived", "k4": "survived",
                                           "k5": "not checked"}}}))
    (results / "tiers.json").write_text(json.dumps(
        {"fast": {"measured": "t", "machine": "m", "wall_min": 0.6, "passed": 330, "skipped": 1, "command": "pytest"}}))
    equivalent.write_text('k4 = "only the log message changes"\ngone = "old"\n')
    page.write_text("x\n<!-- tiers -->\nold\n<!-- end tiers -->\n<!-- mutation -->\n<!-- end mutation -->\ny\n")
    readme.write_text("a\n<!-- tiers -->\n<!-- end tiers -->\nb\n")
    for name, value in {"RESULTS": results, "PAGE": page, "README": readme, "EQUIVALENT": equivalent}.items():
        monkeypatch.setattr(report, name, value)
    report.write()
    text = page.read_text()
    assert "| horizon_zoo/a.py | 5 | 2 | 1 | 0 | 1 | 1 | 66.7% (below target) |" in text
    assert "- 2026-12-08 01:00 UTC, 9.5 min: `c`" in text
    assert "- `k4`: only the log message changes" in text and "no longer generated" in text and "`gone`" in text
    assert "old\n" not in text and text.endswith("<!-- end mutation -->\ny\n")
    assert "| fast | `pytest` | 330 passed, 1 skipped | 0.6 min |" in text
    assert "Measured run times: fast 0.6 min" in readme.read_text()
