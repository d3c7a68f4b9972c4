"""Property-based tests of the run-file loader (issue 36): whatever a file holds, ``load_runs``
returns valid data or raises the project's DataError with a message; nothing else, no hang, no
file written. Seeded (derandomised) and bounded so the fast tier stays fast."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horizon_zoo.data import RunData, load_runs
from horizon_zoo.errors import DataError

FUZZ = settings(max_examples=150, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

COLUMNS = ["task_id", "task_family", "alias", "human_minutes", "score_binarized", "run_id", "task_source",
           "human_source", "model", "equal_task_weight", "invsqrt_task_weight"]

# values of every JSON type, including the extreme ones a loader must survive
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["0", "1", "1.0", "nan", "inf", "-1", "1e308", "", " ", "human", "∞"]))
values = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=6)
good_row = st.fixed_dictionaries({
    "task_id": st.sampled_from(["f/t1", "f/t2", "g/t3"]), "task_family": st.sampled_from(["f", "g"]),
    "alias": st.sampled_from(["a", "b", "human"]), "human_minutes": st.sampled_from([0.5, 2.0, 30.0, 600.0]),
    "score_binarized": st.sampled_from([0, 1])})
# rows that are mostly right, with fields dropped, added, retyped or pushed to extremes
mutated_row = st.builds(lambda row, drop, extra, retype: {**{k: v for k, v in row.items() if k not in drop},
                                                          **extra, **retype},
                        good_row, st.sets(st.sampled_from(COLUMNS[:5]), max_size=2),
                        st.dictionaries(st.sampled_from(COLUMNS[5:] + ["x", "_line", "weight"]), values, max_size=2),
                        st.dictionaries(st.sampled_from(COLUMNS), values, max_size=2))


def _check(path: Path, **options: object) -> None:
    before = set(path.parent.iterdir())
    try:
        data = load_runs(path, **options)
    except DataError as exc:
        assert str(exc).strip(), "a DataError must say what is wrong"
    else:
        assert isinstance(data, RunData) and len(data.cells) > 0
        assert data.cells["n_success"].between(0, data.cells["n_runs"]).all()
        assert all(math.isfinite(m) and m > 0 for m in data.tasks["human_minutes"])
    assert set(path.parent.iterdir()) == before, "the loader must not write files"


@FUZZ
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    directory = tmp_path_factory.mktemp("bytes")
    for suffix in (".jsonl", ".csv"):
        path = directory / f"runs{suffix}"
        path.write_bytes(raw)
        _check(path)


@FUZZ
@given(rows=st.lists(st.one_of(mutated_row, good_row, st.dictionaries(st.text(max_size=8), values, max_size=4),
                               values), min_size=0, max_size=8),
       weights=st.sampled_from([None, "equal", "invsqrt", "x"]))
def test_arbitrary_json_lines(tmp_path_factory: pytest.TempPathFactory, rows: list, weights: str | None) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "runs.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    _check(path, weights=weights)


@FUZZ
@given(rows=st.lists(mutated_row, min_size=1, max_size=8))
def test_arbitrary_csv_rows(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    import csv
    import io

    header = sorted({k for r in rows for k in r})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    path = tmp_path_factory.mktemp("csv") / "runs.csv"
    path.write_text(buffer.getvalue())
    _check(path)
