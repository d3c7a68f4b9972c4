"""Loading, validating, filtering and aggregating run data."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from horizon_zoo.data import load_runs
from horizon_zoo.errors import DataError
from tests.conftest import make_runs


def test_cells_aggregate_runs_exactly(write_runs):
    runs = make_runs(n_agents=2, n_tasks=4, runs_per_cell=3)
    data = load_runs(write_runs(runs))
    assert len(data.cells) == 2 * 4
    expected = runs.groupby(["alias", "task_id"])["score_binarized"].agg(["size", "sum"])
    for cell in data.cells.itertuples():
        assert cell.n_runs == expected.loc[(cell.agent, cell.task_id), "size"]
        assert cell.n_success == expected.loc[(cell.agent, cell.task_id), "sum"]
    assert data.agents == ("agent0", "agent1")
    assert np.all(data.cells["weight"] == 1.0)


def test_csv_and_jsonl_give_identical_cells(write_runs):
    runs = make_runs()
    a = load_runs(write_runs(runs, "jsonl"))
    b = load_runs(write_runs(runs, "csv"))
    assert a.fingerprint() == b.fingerprint()


def test_human_baselines_are_excluded_by_default(write_runs):
    runs = make_runs()
    runs.loc[runs["alias"] == "agent0", "alias"] = "human"
    data = load_runs(write_runs(runs))
    assert "human" not in data.agents
    assert "human" in load_runs(write_runs(runs), exclude_agents=()).agents


@pytest.mark.parametrize("option, value, column", [
    ("include_agents", ["agent1"], "agent"),
    ("task_sources", ["src0"], "task_source"),
    ("families", ["fam1"], "task_family"),
])
def test_filters_keep_only_the_named_values(write_runs, option, value, column):
    data = load_runs(write_runs(make_runs()), **{option: value})
    assert set(data.runs[column]) == set(value)


def test_small_human_time_disagreements_are_merged_with_a_warning(write_runs):
    runs = make_runs()
    first = runs.index[runs["task_id"] == "fam0/task2"][0]
    runs.loc[first, "human_minutes"] = 4.0 * 1.5
    data = load_runs(write_runs(runs))
    minutes = data.tasks.set_index("task_id").loc["fam0/task2", "human_minutes"]
    n = (runs["task_id"] == "fam0/task2").sum()
    assert minutes == pytest.approx(np.exp(((n - 1) * np.log(4.0) + np.log(6.0)) / n))
    assert any("fam0/task2" in w for w in data.warnings)


def test_weights_are_rescaled_to_the_run_count(write_runs):
    runs = make_runs(n_tasks=4)
    runs["invsqrt_task_weight"] = np.where(runs["task_id"].str.endswith("0"), 3.0, 1.0)
    data = load_runs(write_runs(runs), weights="invsqrt")
    assert (data.cells["weight"] * data.cells["n_runs"]).sum() == pytest.approx(data.cells["n_runs"].sum())
    heavy = data.cells[data.cells["task_id"].str.endswith("0")]["weight"].iloc[0]
    light = data.cells[~data.cells["task_id"].str.endswith("0")]["weight"].iloc[0]
    assert heavy / light == pytest.approx(3.0)


def _bad(runs, column, row, value):
    runs = runs.copy()
    runs[column] = runs[column].astype(object)
    runs.at[row, column] = value
    return runs


# (case id, rows or DataFrame, load_runs options, fragments the message must contain)
BAD_INPUTS = [
    ("missing column", make_runs().drop(columns="human_minutes"), {}, ["missing required column", "human_minutes"]),
    ("zero minutes", _bad(make_runs(), "human_minutes", 3, 0.0), {}, ["human_minutes", "> 0", "line 4"]),
    ("negative minutes", _bad(make_runs(), "human_minutes", 0, -5.0), {}, ["human_minutes", "-5.0", "line 1"]),
    ("nan minutes", _bad(make_runs(), "human_minutes", 5, float("nan")), {}, ["human_minutes", "finite", "line 6"]),
    ("text minutes", _bad(make_runs(), "human_minutes", 2, "ten"), {}, ["human_minutes", "'ten'", "line 3"]),
    ("score one half", _bad(make_runs(), "score_binarized", 7, 0.5), {}, ["score_binarized", "0 or 1", "0.5", "line 8"]),
    ("score yes", _bad(make_runs(), "score_binarized", 1, "yes"), {}, ["score_binarized", "'yes'", "line 2"]),
    ("duplicate run id", _bad(make_runs(), "run_id", 4, "a0-t0-0"), {}, ["run_id must be unique", "a0-t0-0", "lines 1, 5"]),
    ("empty agent", _bad(make_runs(), "alias", 2, " "), {}, ["alias", "non-empty", "line 3"]),
    ("task in two families", _bad(make_runs(), "task_family", 0, "famX"), {}, ["one task_family", "fam0/task0"]),
    ("inconsistent minutes", _bad(make_runs(), "human_minutes", 1, 100.0), {}, ["same for every run", "fam0/task0", "more than a factor 2 ("]),
    ("unknown agent filter", make_runs(), {"include_agents": ["agent9"]}, ["--agents", "agent9", "agent0"]),
    ("agent loses all runs", make_runs(), {"include_agents": ["agent0"], "task_sources": ["src9"]}, ["--task-sources", "src9"]),
    ("agent with no runs after filtering", make_runs(),
     {"include_agents": ["agent0", "agent1"], "exclude_agents": ["agent1"]}, ["agent1", "no runs left after filtering"]),
    ("nothing left", make_runs(), {"exclude_agents": ["agent0", "agent1", "agent2"]}, ["no runs are left"]),
    ("weights column absent", make_runs().drop(columns="equal_task_weight"), {"weights": "equal"}, ["equal_task_weight"]),
    ("infinite minutes", _bad(make_runs(), "human_minutes", 4, float("inf")), {}, ["human_minutes", "finite", "inf", "line 5"]),
    ("agent name is a number", _bad(make_runs(), "alias", 6, 7), {}, ["alias", "non-empty string", "7", "line 7"]),
    ("score is a list", _bad(make_runs(), "score_binarized", 3, [1]), {}, ["score_binarized", "line 4"]),
    ("single task", make_runs().query("task_id == 'fam0/task0'"), {}, ["same length", "at least two different lengths"]),
    ("one length after filtering", make_runs(n_tasks=3), {"task_sources": ["src0"]}, ["same length", "--task-sources"]),
]


@pytest.mark.parametrize("case, rows, options, fragments", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_with_a_specific_message(write_runs, case, rows, options, fragments):
    path = write_runs(rows)
    with pytest.raises(DataError) as info:
        load_runs(path, **options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


@pytest.mark.parametrize("lines, fragment", [
    ([], "empty"),
    (['{"task_id": "a", "task_family": "f", "alias": "x", "human_minutes": 1, "score_bin'], "line 1: not valid JSON"),
    (['[1, 2]'], "expected a JSON object"),
], ids=["empty file", "truncated line", "not an object"])
def test_unreadable_jsonl_names_the_line(write_runs, lines, fragment):
    with pytest.raises(DataError, match=fragment):
        load_runs(write_runs(lines))


def test_empty_csv_and_header_only_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_runs(empty)
    header = tmp_path / "header.csv"
    header.write_text("task_id,task_family,alias,human_minutes,score_binarized\n")
    with pytest.raises(DataError, match="no runs"):
        load_runs(header)


def test_unknown_file_type_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such run file"):
        load_runs(tmp_path / "absent.jsonl")
    other = tmp_path / "runs.parquet"
    other.write_text("x")
    with pytest.raises(DataError, match="unknown run-file type"):
        load_runs(other)


def test_each_agent_keeps_its_own_run_count_under_weights(write_runs):
    """Issue 35: two agents with unequal runs; weights rescaled per agent, not over the whole dataset."""
    many = make_runs(n_agents=1, n_tasks=4, runs_per_cell=6)
    few = make_runs(n_agents=1, n_tasks=4, runs_per_cell=1).assign(alias="sparse")
    few["run_id"] = "sparse-" + few["run_id"]
    runs = pd.concat([many, few], ignore_index=True)
    # as in METR's files, each agent's weights sum to about the same total whatever its run count
    runs["equal_task_weight"] = (np.where(runs["task_id"].str.endswith("0"), 0.3, 0.1)
                                 / runs.groupby("alias")["alias"].transform("size"))
    data = load_runs(write_runs(runs), weights="equal")
    cells = data.cells.assign(weighted=data.cells["weight"] * data.cells["n_runs"])
    per_agent = cells.groupby("agent")[["weighted", "n_runs"]].sum()
    assert per_agent.loc["agent0", "weighted"] == pytest.approx(24.0) and per_agent.loc["agent0", "n_runs"] == 24
    assert per_agent.loc["sparse", "weighted"] == pytest.approx(4.0) and per_agent.loc["sparse", "n_runs"] == 4
    # within an agent the weights keep their ratios
    sparse = cells[cells["agent"] == "sparse"].set_index("task_id")["weight"]
    assert sparse["fam0/task0"] / sparse["fam1/task1"] == pytest.approx(3.0)


def test_any_numeric_column_can_weight_and_is_validated(write_runs):
    runs = make_runs(n_agents=2, n_tasks=4)
    runs["my_weight"] = np.where(runs["task_id"].str.endswith("0"), 2.0, 1.0)
    data = load_runs(write_runs(runs), weights="my_weight")
    assert data.runs["weight"].max() == 2.0  # runs keep the weights as given
    cells = data.cells.set_index(["agent", "task_id"])["weight"]
    assert cells["agent0", "fam0/task0"] / cells["agent0", "fam1/task1"] == pytest.approx(2.0)
    with pytest.raises(DataError, match=r"--weights nope needs the column 'nope'.*numeric column of the file: .*my_weight"):
        load_runs(write_runs(runs), weights="nope")
    for value, fragment in ((-1.0, "finite number >= 0"), (np.nan, "finite number >= 0"), ("heavy", "finite number >= 0")):
        with pytest.raises(DataError, match=fragment):
            load_runs(write_runs(_bad(runs, "my_weight", 3, value)), weights="my_weight")
    zero = runs.assign(my_weight=np.where(runs["alias"] == "agent1", 0.0, 1.0))
    with pytest.raises(DataError, match=r"every task weight of 'agent1' is 0"):
        load_runs(write_runs(zero), weights="my_weight")


def test_a_binary_file_a_human_only_file_and_a_truncated_line_get_one_clear_paragraph(tmp_path, capsys):
    """Issue 32 item 9: exit 2 and a message naming the cause, never a traceback."""
    from horizon_zoo.cli import main

    binary = tmp_path / "runs.jsonl"
    binary.write_bytes(b'{"task_id": "a"}\n' + bytes(range(128, 256)))
    assert main(["compare", "--runs", str(binary)]) == 2
    err = capsys.readouterr().err
    assert "line 2: not UTF-8 text (byte 0x80" in err and "Traceback" not in err
    binary_csv = tmp_path / "runs.csv"
    binary_csv.write_bytes(b"task_id,alias\n\xff\xfe,x\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_runs(binary_csv)
    humans = make_runs(n_agents=1).assign(alias="Human")
    with pytest.raises(DataError, match=r"every run is by an agent that --exclude-agents leaves out \('Human'\), "
                                        r"'human' by default.*--exclude-agents ''"):
        load_runs(humans)
    truncated = tmp_path / "cut.jsonl"
    truncated.write_text('{"task_id": "a", "alias": "b\n')
    with pytest.raises(DataError, match=r"line 1: not valid JSON \(Unterminated string starting at column 27\)"):
        load_runs(truncated)


def test_values_of_the_wrong_json_type_are_data_errors_not_tracebacks(write_runs):
    """Found by the loader's property test (tests/test_loader_fuzz.py), kept as a regular test: a list
    where a name belongs made pandas raise 'unhashable type: list'; a list, a bool or an integer too
    large for a float where a number belongs is refused the same way."""
    row = {"task_id": "f/t1", "task_family": "f", "alias": "a", "human_minutes": 2.0, "score_binarized": 1}
    with pytest.raises(DataError, match=r"column 'task_id' must be a non-empty string; bad value\(s\) \[\]"):
        load_runs(write_runs([{**row, "task_id": []}]))
    for bad in ([1.5], True, 10**309):
        with pytest.raises(DataError, match="column 'human_minutes' must be a finite number > 0"):
            load_runs(write_runs([{**row, "human_minutes": bad}]))


def test_the_default_minutes_ratio_merges_up_to_a_factor_2_and_rejects_beyond(write_runs):
    """Issue 36: the default --max-minutes-ratio at its boundary (a message fragment alone also
    matched a ten times looser ratio)."""
    runs = make_runs(n_agents=1, n_tasks=4, runs_per_cell=2)
    first = runs.index[runs["task_id"] == "fam0/task2"][0]
    base = runs.loc[first, "human_minutes"]
    merged = runs.copy()
    merged.loc[first, "human_minutes"] = base * 2.0  # exactly the default ratio: merged, with a warning
    data = load_runs(write_runs(merged))
    assert data.tasks.set_index("task_id").loc["fam0/task2", "human_minutes"] == pytest.approx(base * 2 ** 0.5)
    assert any("fam0/task2" in w for w in data.warnings)
    beyond = runs.copy()
    beyond.loc[first, "human_minutes"] = base * 2.02
    with pytest.raises(DataError, match=r"1 task\(s\) differ by more than a factor 2 \(fam0/task2"):
        load_runs(write_runs(beyond))
    assert len(load_runs(write_runs(beyond), max_minutes_ratio=2.1).tasks) == 4


def test_an_agent_that_always_fails_or_always_succeeds_is_named_with_the_side_its_horizon_is_bounded_on(write_runs):
    runs = make_runs(n_agents=3, n_tasks=4, runs_per_cell=2)
    runs.loc[runs["alias"] == "agent0", "score_binarized"] = 0
    runs.loc[runs["alias"] == "agent2", "score_binarized"] = 1
    runs.loc[runs["alias"] == "agent1", "score_binarized"] = [0, 1] * 4
    data = load_runs(write_runs(runs))
    assert data.warnings == (
        "agent 'agent0' failed every one of its 8 runs (tasks of 1 to 8 minutes): its horizon is only bounded "
        "above by the shortest task, and its interval leans on the prior and the other agents.",
        "agent 'agent2' succeeded on every one of its 8 runs (tasks of 1 to 8 minutes): its horizon is only "
        "bounded below by the longest task, and its interval leans on the prior and the other agents.",
    )


def test_long_lists_of_bad_values_and_lines_are_cut_with_a_count(write_runs):
    runs = make_runs(n_agents=1, n_tasks=4, runs_per_cell=2)
    runs["score_binarized"] = [2, 3, 4, 5, 6, 7, 8, 0]  # seven bad values on lines 1-7
    with pytest.raises(DataError) as info:
        load_runs(write_runs(runs))
    assert "2, 3, 4, 5, 6 (+2 more) at lines 1, 2, 3, 4, 5 and 2 more." in str(info.value)
    runs["score_binarized"] = [2, 3, 4, 5, 6, 0, 0, 0]  # exactly as many as are listed: no count
    with pytest.raises(DataError) as info:
        load_runs(write_runs(runs))
    assert str(info.value).endswith("2, 3, 4, 5, 6 at lines 1, 2, 3, 4, 5.")
    runs["score_binarized"] = [2, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(DataError, match=r"2 at line 1\.$"):
        load_runs(write_runs(runs))


def test_csv_keeps_names_that_look_missing_or_numeric_as_text(write_runs):
    runs = make_runs(n_agents=2, n_tasks=2, runs_per_cell=1)
    runs["task_family"] = ["NA", "null", "NA", "null"]  # North America, a family called null
    runs["task_id"] = ["007", "7", "007", "7"]
    data = load_runs(write_runs(runs, fmt="csv"))
    assert sorted(data.families) == ["NA", "null"] and sorted(data.tasks["task_id"]) == ["007", "7"]
    runs.loc[2, "human_minutes"] = np.nan  # an empty CSV field is missing, reported by its line
    with pytest.raises(DataError, match=r"human_minutes.* at line 4\."):
        load_runs(write_runs(runs, fmt="csv"))


def test_jsonl_reading_skips_blank_lines_and_names_the_line_of_each_problem(tmp_path):
    rows = make_runs(n_agents=2, n_tasks=2, runs_per_cell=1).to_dict("records")
    import json

    lines = [json.dumps(rows[0]), "", "   ", *[json.dumps(r) for r in rows[1:]]]
    path = tmp_path / "runs.json"  # .json is read as JSON lines too
    path.write_text("\n".join(lines) + "\n")
    assert len(load_runs(path).runs) == 4  # the rows after the blank lines are read
    path.write_text(json.dumps(rows[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"runs\.json, line 2: expected a JSON object, got list\.$"):
        load_runs(path)
    path.write_text(json.dumps(rows[0]) + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"runs\.json, line 2: JSON nested too deeply to be a run\.$"):
        load_runs(path)
    path.write_text('{"run_id": "x",\n')
    with pytest.raises(DataError) as info:
        load_runs(path)
    assert str(info.value).endswith("Each line must be one JSON object (a truncated file?).")
    with pytest.raises(DataError, match=r"is a directory; pass a \.jsonl or \.csv run file\.$"):
        load_runs(tmp_path)


def test_a_non_utf8_csv_says_what_a_run_file_is(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes("run_id,task_id\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        load_runs(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: not UTF-8 text \(byte 0xe9 at offset \d+\)\. A run file is JSON "
                        r"lines or CSV, in UTF-8; is this the right file\?", str(info.value))
    path.write_text('run_id,task_id\n"1,2\n')
    with pytest.raises(DataError, match=r"runs\.csv: cannot parse as CSV \(.+\)\.$"):
        load_runs(path)


def test_summary_counts_and_a_fingerprint_that_ignores_the_row_labels(write_runs):
    runs = make_runs(n_agents=2, n_tasks=3, runs_per_cell=2)
    data = load_runs(write_runs(runs))
    assert data.summary() == {"source": data.source, "runs": 12, "cells": 6, "agents": 2, "tasks": 3, "families": 2,
                              "success_rate": float(runs["score_binarized"].mean()), "min_minutes": 1.0,
                              "median_minutes": 2.0, "max_minutes": 4.0}
    import dataclasses

    relabelled = dataclasses.replace(data, cells=data.cells.set_axis(data.cells.index + 100),
                                     tasks=data.tasks.set_axis(data.tasks.index + 100))
    assert relabelled.fingerprint() == data.fingerprint()
    changed = dataclasses.replace(data, cells=data.cells.assign(n_success=data.cells["n_success"] + 1))
    assert changed.fingerprint() != data.fingerprint()
