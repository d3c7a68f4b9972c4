"""Load, validate, filter and aggregate METR-format run data.

A run file has one row per agent run on a task (JSONL or CSV) with the columns in
:data:`REQUIRED_COLUMNS` and optionally those in :data:`OPTIONAL_COLUMNS`.  Every problem is
reported as a :class:`~horizon_zoo.errors.DataError` naming the file, the rows (1-based line
numbers as an editor shows them) and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from horizon_zoo.errors import DataError

REQUIRED_COLUMNS = ("task_id", "task_family", "alias", "human_minutes", "score_binarized")
OPTIONAL_COLUMNS = (
    "run_id", "task_source", "human_source", "model", "equal_task_weight", "invsqrt_task_weight",
)
WEIGHT_COLUMNS = {"equal": "equal_task_weight", "invsqrt": "invsqrt_task_weight"}
DEFAULT_EXCLUDED_AGENTS = ("human",)
# Human times for one task measured by different baseliners rarely agree exactly; within this
# ratio they are merged by geometric mean (with a warning), beyond it the file is rejected.
DEFAULT_MAX_MINUTES_RATIO = 2.0
_MAX_LISTED = 5

# "equal", "invsqrt" (METR's task-weight columns by name) or the name of any numeric column
Weights = str


@dataclass(frozen=True)
class RunData:
    """Validated runs and their binomial cells, the input to every model.

    Attributes
    ----------
    runs
        One row per run with columns ``run_id, agent, task_id, task_family, task_source,
        human_source, human_minutes, success`` (plus ``weight``, and ``model`` when the file has it).
    cells
        One row per (agent, task) with ``agent, task_id, n_runs, n_success, weight``, sorted by
        agent then task in the order of ``agents`` and ``tasks``.
    tasks
        One row per task: ``task_id, task_family, task_source, human_source, human_minutes``.
    agents, families
        Names in index order (Stan index i+1 is element i).
    source
        Where the runs came from (a path, or a description of simulated data).
    warnings
        Problems that were resolved rather than rejected (e.g. merged human times).
    release_dates
        Release date per agent, when a release-dates file was joined (see
        :mod:`horizon_zoo.release_dates`); agents without one are absent.
    weights
        The ``weights`` the runs were loaded with (``None``: unweighted).
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    tasks: pd.DataFrame
    agents: tuple[str, ...]
    families: tuple[str, ...]
    source: str
    warnings: tuple[str, ...] = ()
    release_dates: Mapping[str, date] | None = None
    # the --weights the cells were built with (None: unweighted); METR's reference reads it
    weights: str | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the cells and task lengths: equal fingerprints give equal Stan data.

        Release dates are left out: only trend models read them, and their fits record the
        dates they used (sidecar ``release_dates``).
        """
        h = hashlib.sha256()
        h.update(self.cells.to_csv(index=False).encode())
        h.update(self.tasks[["task_id", "task_family", "human_minutes"]].to_csv(index=False).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        """Counts that a reader checks first."""
        minutes = self.tasks["human_minutes"]
        return {
            "source": self.source,
            "runs": len(self.runs),
            "cells": len(self.cells),
            "agents": len(self.agents),
            "tasks": len(self.tasks),
            "families": len(self.families),
            "success_rate": float(self.runs["success"].mean()),
            "min_minutes": float(minutes.min()),
            "median_minutes": float(minutes.median()),
            "max_minutes": float(minutes.max()),
        }


def read_runs(path: str | Path) -> pd.DataFrame:
    """Read a JSONL or CSV run file without validating it.

    Adds a ``_line`` column with the 1-based line number of each row in the file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such run file.")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a .jsonl or .csv run file.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise DataError(f"{path}: unknown run-file type '{suffix}'; expected .jsonl or .csv.")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict] = []
    lines: list[int] = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                        f"{exc.start}). A run file is JSON lines or CSV, in UTF-8; is this the right file?") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            where = f"column {exc.colno}" if exc.msg.endswith(" at") else f"at column {exc.colno}"
            raise DataError(
                f"{path}, line {number}: not valid JSON ({exc.msg} {where}). "
                "Each line must be one JSON object (a truncated file?)."
            ) from None
        except RecursionError:
            raise DataError(f"{path}, line {number}: JSON nested too deeply to be a run.") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}.")
        records.append(record)
        lines.append(number)
    if not records:
        raise DataError(f"{path}: the file has no runs (it is empty).")
    frame = pd.DataFrame.from_records(records)
    frame["_line"] = lines
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no runs (it is empty).") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}). A run "
                        "file is JSON lines or CSV, in UTF-8; is this the right file?") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot parse as CSV ({exc}).") from None
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no runs.")
    frame["_line"] = np.arange(2, len(frame) + 2)
    return frame


def load_runs(
    path: str | Path | pd.DataFrame,
    *,
    include_agents: Sequence[str] | None = None,
    exclude_agents: Sequence[str] = DEFAULT_EXCLUDED_AGENTS,
    task_sources: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    weights: Weights | None = None,
    max_minutes_ratio: float = DEFAULT_MAX_MINUTES_RATIO,
    source: str | None = None,
) -> RunData:
    """Load, validate and filter runs, and aggregate them into binomial cells.

    Parameters
    ----------
    path
        A ``.jsonl``/``.csv`` run file, or a DataFrame in the same format.
    include_agents
        Keep only these agents (``alias`` values). Unknown names are an error.
    exclude_agents
        Drop these agents (case-insensitive); human baselines by default.
    task_sources, families
        Keep only runs on tasks from these sources / families.
    weights
        ``"equal"`` or ``"invsqrt"`` to weight the likelihood with METR's task weights
        (``equal_task_weight`` / ``invsqrt_task_weight``), or the name of any numeric column of
        the file (finite, >= 0, not all 0 for any agent); ``None`` (default) for an unweighted
        likelihood. Each agent's cell weights are scaled so that its weighted run count equals
        its real run count (see :func:`_aggregate`); ``runs["weight"]`` keeps them as given.
    max_minutes_ratio
        Largest max/min ratio of ``human_minutes`` tolerated within one task; such tasks get
        the geometric mean and a warning. ``1`` makes any disagreement an error.
    source
        Label for where the runs came from (defaults to the path).

    Raises
    ------
    DataError
        With a message naming the file, rows and expectation, for any invalid input.
    """
    if isinstance(path, pd.DataFrame):
        raw = path.copy()
        if "_line" not in raw:
            raw["_line"] = np.arange(1, len(raw) + 1)
        label = source or "<DataFrame>"
        if raw.empty:
            raise DataError(f"{label}: no runs (the table is empty).")
    else:
        raw = read_runs(path)
        label = source or str(path)
    runs = _validate(raw, label, weights)
    runs, warnings = _reconcile_minutes(runs, label, max_minutes_ratio)
    runs = _filter(runs, label, include_agents, exclude_agents, task_sources, families)
    return replace(_aggregate(runs, label, tuple(warnings)), weights=weights)


def _rows(frame: pd.DataFrame, mask: pd.Series | np.ndarray) -> str:
    lines = frame.loc[mask, "_line"].tolist()
    shown = ", ".join(str(x) for x in lines[:_MAX_LISTED])
    more = f" and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _examples(values: Iterable[object]) -> str:
    # distinct by their text, so unhashable values (a list where a name belongs) can be listed too
    values = list({repr(v): v for v in values}.values())
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    return shown + (f" (+{len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else "")


def _validate(raw: pd.DataFrame, label: str, weights: Weights | None) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        present = [c for c in raw.columns if c != "_line"]
        raise DataError(
            f"{label}: missing required column(s) {', '.join(missing)}. A METR run file needs "
            f"{', '.join(REQUIRED_COLUMNS)}; this file has {', '.join(present) or 'no columns'}."
        )
    out = pd.DataFrame({"_line": raw["_line"].to_numpy()})
    for column in ("task_id", "task_family", "alias"):
        values = raw[column]
        ok = values.map(lambda v: isinstance(v, str) and v.strip() != "")
        if not ok.all():
            raise DataError(
                f"{label}: column '{column}' must be a non-empty string; bad value(s) "
                f"{_examples(values[~ok])} at {_rows(raw, ~ok)}."
            )
        out[column] = values.map(str.strip).to_numpy()
    out = out.rename(columns={"alias": "agent"})

    minutes = _numbers(raw["human_minutes"])
    bad = minutes.isna() | ~np.isfinite(minutes) | (minutes <= 0)
    if bad.any():
        raise DataError(
            f"{label}: column 'human_minutes' must be a finite number > 0; got "
            f"{_examples(raw.loc[bad, 'human_minutes'])} at {_rows(raw, bad)}."
        )
    out["human_minutes"] = minutes.to_numpy(dtype=float)

    score = raw["score_binarized"].map(_as_binary)
    bad = score.isna()
    if bad.any():
        raise DataError(
            f"{label}: column 'score_binarized' must be 0 or 1; got "
            f"{_examples(raw.loc[bad, 'score_binarized'])} at {_rows(raw, bad)}."
        )
    out["success"] = score.to_numpy(dtype=int)

    if "run_id" in raw.columns:
        run_id = raw["run_id"].map(lambda v: None if _is_missing(v) else str(v))
        dup = run_id.notna() & run_id.duplicated(keep=False)
        if dup.any():
            raise DataError(
                f"{label}: run_id must be unique; {_examples(run_id[dup])} repeat at "
                f"{_rows(raw, dup)}."
            )
        out["run_id"] = run_id.fillna(pd.Series(raw["_line"].map(lambda n: f"line-{n}"))).to_numpy()
    else:
        out["run_id"] = raw["_line"].map(lambda n: f"line-{n}").to_numpy()

    # ``model`` (the provider's model id) is kept only to join release dates keyed by it.
    if "model" in raw.columns:
        out["model"] = raw["model"].map(lambda v: None if _is_missing(v) else str(v).strip()).to_numpy()
    for column, default in (("task_source", "unknown"), ("human_source", "unknown")):
        if column in raw.columns:
            out[column] = raw[column].map(lambda v, d=default: d if _is_missing(v) else str(v)).to_numpy()
        else:
            out[column] = default

    if weights is not None:
        column = WEIGHT_COLUMNS.get(weights, weights)
        if column not in raw.columns or column.startswith("_"):
            numeric = [c for c in raw.columns if not c.startswith("_")
                       and _numbers(raw[c]).notna().all()]
            raise DataError(f"{label}: --weights {weights} needs the column '{column}', which is absent. Use "
                            f"{' or '.join(WEIGHT_COLUMNS)} (METR's task weights) or a numeric column of the file: "
                            f"{', '.join(numeric) or 'none'}.")
        w = _numbers(raw[column])
        bad = w.isna() | ~np.isfinite(w) | (w < 0)
        if bad.any():
            raise DataError(
                f"{label}: column '{column}' must be a finite number >= 0; got "
                f"{_examples(raw.loc[bad, column])} at {_rows(raw, bad)}."
            )
        out["weight"] = w.to_numpy(dtype=float)
    else:
        out["weight"] = 1.0

    families = out.groupby("task_id")["task_family"].nunique()
    clash = families[families > 1].index
    if len(clash):
        mask = out["task_id"].isin(clash)
        raise DataError(
            f"{label}: each task must belong to one task_family; {_examples(clash)} appear with "
            f"several families at {_rows(out, mask)}."
        )
    return out


def _numbers(values: pd.Series) -> pd.Series:
    """Each value as a float: numbers and numeric strings; NaN for anything else (None, bools,
    lists, objects, text), which the caller reports."""
    def one(v: object) -> float:
        if isinstance(v, (bool, np.bool_)):
            return math.nan
        if isinstance(v, (int, float, np.integer, np.floating)):
            try:
                return float(v)
            except OverflowError:  # an integer beyond float's range
                return math.nan
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return math.nan
        return math.nan

    return values.map(one).astype(float)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_binary(value: object) -> float:
    """0/1 from ints, floats, bools or their string forms; NaN for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if value in (0, 1) else math.nan
    if isinstance(value, str) and value.strip() in ("0", "1", "0.0", "1.0"):
        return float(value.strip()[0])
    return math.nan


def _reconcile_minutes(runs: pd.DataFrame, label: str, max_ratio: float) -> tuple[pd.DataFrame, list[str]]:
    spread = runs.groupby("task_id")["human_minutes"].agg(["min", "max"])
    conflicting = spread[spread["max"] > spread["min"] * (1 + 1e-9)]
    if conflicting.empty:
        return runs, []
    ratio = conflicting["max"] / conflicting["min"]
    too_far = ratio[ratio > max_ratio]
    if len(too_far):
        mask = runs["task_id"].isin(too_far.index)
        detail = "; ".join(
            f"{t}: {spread.loc[t, 'min']:.4g} to {spread.loc[t, 'max']:.4g} min"
            for t in too_far.index[:_MAX_LISTED]
        )
        raise DataError(
            f"{label}: human_minutes must be the same for every run of a task, but "
            f"{len(too_far)} task(s) differ by more than a factor {max_ratio:g} ({detail}) at "
            f"{_rows(runs, mask)}. Fix the file, or raise --max-minutes-ratio to merge them by "
            "geometric mean."
        )
    geo = runs.groupby("task_id")["human_minutes"].transform(lambda m: float(np.exp(np.log(m).mean())))
    # the models need one length per task; METR's per-run regression (horizon_zoo.metr) uses each
    # run's own, so it is kept
    runs = runs.assign(recorded_minutes=runs["human_minutes"],
                       human_minutes=np.where(runs["task_id"].isin(conflicting.index), geo, runs["human_minutes"]))
    warning = (
        f"{label}: {len(conflicting)} task(s) had different human_minutes across runs (at most a "
        f"factor {ratio.max():.2f}); merged by geometric mean: {_examples(conflicting.index)}."
    )
    return runs, [warning]


def _filter(
    runs: pd.DataFrame,
    label: str,
    include_agents: Sequence[str] | None,
    exclude_agents: Sequence[str],
    task_sources: Sequence[str] | None,
    families: Sequence[str] | None,
) -> pd.DataFrame:
    for column, wanted, option in (
        ("agent", include_agents, "--agents"),
        ("task_source", task_sources, "--task-sources"),
        ("task_family", families, "--families"),
    ):
        if wanted is None:
            continue
        known = set(runs[column])
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise DataError(
                f"{label}: {option} names {_examples(unknown)}, which the file does not have. "
                f"Known {column} values: {_examples(sorted(known))}."
            )
    mask = pd.Series(True, index=runs.index)
    if include_agents is not None:
        mask &= runs["agent"].isin(include_agents)
    excluded = {a.casefold() for a in exclude_agents}
    mask &= ~runs["agent"].str.casefold().isin(excluded)
    if task_sources is not None:
        mask &= runs["task_source"].isin(task_sources)
    if families is not None:
        mask &= runs["task_family"].isin(families)
    kept = runs[mask]
    if kept.empty:
        by_exclusion = runs["agent"].str.casefold().isin(excluded)
        if by_exclusion.all():
            default = tuple(exclude_agents) == DEFAULT_EXCLUDED_AGENTS
            raise DataError(
                f"{label}: no runs are left after filtering: every run is by an agent that --exclude-agents "
                f"leaves out ({_examples(sorted(set(runs['agent'])))})"
                + (f", {_examples(exclude_agents)} by default since human baseline runs are not an agent's. "
                   "Pass --exclude-agents '' to keep them." if default else "."))
        raise DataError(f"{label}: no runs are left after filtering (agents, task sources, families).")
    if include_agents is not None:
        lost = [a for a in include_agents if a not in set(kept["agent"])]
        if lost:
            raise DataError(
                f"{label}: agent(s) {_examples(lost)} have no runs left after filtering (excluded "
                "agents, task sources, families); drop them from --agents or widen the filters."
            )
    return kept.reset_index(drop=True)


def _aggregate(runs: pd.DataFrame, label: str, warnings: tuple[str, ...]) -> RunData:
    agents = tuple(sorted(runs["agent"].unique()))
    families = tuple(sorted(runs["task_family"].unique()))
    tasks = (
        runs.groupby("task_id", sort=True)
        .agg(task_family=("task_family", "first"), task_source=("task_source", "first"),
             human_source=("human_source", "first"), human_minutes=("human_minutes", "first"))
        .reset_index()
    )
    cells = (
        runs.groupby(["agent", "task_id"], sort=True)
        .agg(n_runs=("success", "size"), n_success=("success", "sum"), weight=("weight", "mean"))
        .reset_index()
    )
    # A cell of n runs with per-run weight w contributes w * n Bernoulli terms. Each agent's weights
    # are rescaled so that its weighted run count equals its real run count: weights then say how
    # an agent's runs share its evidence (tasks counted equally, families by diversity), never how
    # much evidence an agent has. Rescaled over the whole dataset instead, an agent with few runs
    # would count as many as one with many (on metr-early under invsqrt davinci-002's 68 runs
    # counted 10x, o1-preview's 0.74x): point estimates survive, posterior widths do not.
    weighted = (cells["weight"] * cells["n_runs"]).groupby(cells["agent"]).transform("sum")
    runs_per_agent = cells["n_runs"].groupby(cells["agent"]).transform("sum")
    weightless = sorted(set(cells.loc[weighted <= 0, "agent"]))
    if weightless:
        raise DataError(f"{label}: every task weight of {_examples(weightless)} is 0 after filtering, so the "
                        f"agent has nothing to fit; drop it (--exclude-agents) or fix its weights.")
    cells["weight"] = cells["weight"] * runs_per_agent / weighted
    cells["n_runs"] = cells["n_runs"].astype(int)
    cells["n_success"] = cells["n_success"].astype(int)
    lengths = tasks["human_minutes"].unique()
    if len(lengths) < 2:
        raise DataError(
            f"{label}: every task ({len(tasks)} of them) has the same length, {lengths[0]:g} human minutes; "
            f"how success falls with task length cannot be estimated from one length. Give tasks of at least "
            f"two different lengths (check the filters --task-sources / --families).")
    return RunData(
        runs=runs.drop(columns="_line"),
        cells=cells,
        tasks=tasks,
        agents=agents,
        families=families,
        source=label,
        warnings=warnings + _one_sided_agents(runs),
    )


def _one_sided_agents(runs: pd.DataFrame) -> tuple[str, ...]:
    """Warnings for agents that succeeded on every run or failed every run: the data bound their
    horizon on one side only, so its interval comes from the prior and the other agents."""
    out = []
    for agent, group in runs.groupby("agent", sort=True):
        rate = group["success"].mean()
        if rate in (0.0, 1.0):
            minutes = group["human_minutes"]
            out.append(
                f"agent '{agent}' {'succeeded on every one' if rate == 1 else 'failed every one'} of its "
                f"{len(group)} runs (tasks of {minutes.min():.3g} to {minutes.max():.3g} minutes): its horizon is "
                f"only bounded {'below by the longest' if rate == 1 else 'above by the shortest'} task, and its "
                "interval leans on the prior and the other agents.")
    return tuple(out)

