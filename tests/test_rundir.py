"""Run directories, atomic writes, cached records and Markdown tables (fast tier; issue 36)."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import rundir
from horizon_zoo.rundir import (
    markdown_table,
    new_run_dir,
    read_cached_record,
    remove_partial_files,
    write_table,
)


def test_run_directories_are_stamped_and_never_reused(tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 8, 1, 2, 3)

    monkeypatch.setattr(rundir, "datetime", Frozen)
    first = new_run_dir("compare", root=tmp_path / "deep" / "runs")  # parents are made
    second = new_run_dir("compare", root=tmp_path / "deep" / "runs")  # the same second
    third = new_run_dir("compare", root=tmp_path / "deep" / "runs")
    assert [p.name for p in (first, second, third)] == ["20261208-010203-compare", "20261208-010203-compare-2",
                                                       "20261208-010203-compare-3"]
    assert all(p.is_dir() and p.parent == tmp_path / "deep" / "runs" for p in (first, second, third))
    monkeypatch.chdir(tmp_path)
    assert new_run_dir("cv") == rundir.DEFAULT_RUNS_ROOT / "20261208-010203-cv" and (tmp_path / "runs").is_dir()
    out = tmp_path / "given" / "exactly"
    assert new_run_dir("cv", root=tmp_path / "ignored", out=out) == out and out.is_dir()
    assert new_run_dir("cv", out=out) == out  # an existing --out is written into, not renamed
    assert not (tmp_path / "ignored").exists()


def test_a_cached_record_is_read_or_recomputed_with_one_warning(tmp_path, caplog):
    missing = tmp_path / "none.json"
    assert read_cached_record(missing, "CV fold") is None and not caplog.records
    good = tmp_path / "good.json"
    good.write_text('{"elpd": -1.5}')
    assert read_cached_record(good, "CV fold") == {"elpd": -1.5}
    for name, text, reason in (("cut.json", '{"elpd": -1', "Expecting"), ("list.json", "[1, 2]", "not a JSON object")):
        path = tmp_path / name
        path.write_text(text)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="horizon_zoo"):
            assert read_cached_record(path, "SBC simulation") is None
        (record,) = caplog.records
        assert record.name == "horizon_zoo"
        assert re.fullmatch(rf"SBC simulation cache entry {re.escape(str(path))} cannot be read \({reason}.*\); "
                            "computing it again", record.getMessage())


def test_partial_files_of_killed_writers_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".loo.csv.abc123.part").write_text("half")
    (tmp_path / "loo.csv").write_text("whole")
    (tmp_path / "notes.part").write_text("a user's file, not ours (no leading dot)")
    remove_partial_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loo.csv", "notes.part"]


def test_markdown_tables_escape_pipes_and_show_missing_values_as_empty_cells():
    frame = pd.DataFrame({"model": ["a|b", "c"], "elpd": [-1.23456, np.nan]}, index=pd.Index(["x", "y"], name="k"))
    assert markdown_table(frame) == "| model | elpd |\n|---|---|\n| a\\|b | -1.235 |\n| c |  |\n"
    assert markdown_table(frame, index=True) == ("| k | model | elpd |\n|---|---|---|\n| x | a\\|b | -1.235 |\n"
                                                 "| y | c |  |\n")


@pytest.mark.parametrize("index", [False, True])
def test_a_table_is_written_as_csv_and_markdown_side_by_side(tmp_path, index):
    frame = pd.DataFrame({"model": ["a"], "elpd": [-2.0]}, index=pd.Index(["r0"], name="row"))
    write_table(frame, tmp_path / "tables", "loo", index=index)
    csv = (tmp_path / "tables" / "loo.csv").read_text()
    md = (tmp_path / "tables" / "loo.md").read_text()
    assert csv == ("row,model,elpd\nr0,a,-2.0\n" if index else "model,elpd\na,-2.0\n")
    assert md == markdown_table(frame, index=index) and md.startswith("| row |" if index else "| model |")
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["loo.csv", "loo.md"]  # no .part left


def test_a_table_leaves_its_row_labels_out_unless_asked(tmp_path):
    write_table(pd.DataFrame({"model": ["a"]}, index=["r0"]), tmp_path, "t")
    assert (tmp_path / "t.csv").read_text() == "model\na\n" and (tmp_path / "t.md").read_text().startswith("| model |")
