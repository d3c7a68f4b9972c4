"""Loading, validating, filtering and aggregating run data."""

from __future__ import annotations

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
