"""Shared fixtures: small synthetic run tables, and fits compiled once per session."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from horizon_zoo.simulate import default_runs

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _restore_package_log_level() -> Iterable[None]:
    """cli.main sets the package logger's level for the process; restore it after each test, so a
    test that reads the debug log does not depend on whether a CLI test ran before it (it did under
    mutmut, which runs the suite twice in one process)."""
    import logging

    logger = logging.getLogger("horizon_zoo")
    level = logger.level
    yield
    logger.setLevel(level)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--real-data", action="store_true",
                     help="also run the full-length fits on ../shared/data (several minutes)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--real-data"):
        return
    skip = pytest.mark.skip(reason="full-length real-data fit: pass --real-data")
    for item in items:
        if "real_data" in item.keywords:
            item.add_marker(skip)


def start_python(args: list[str], sigint: signal.Handlers = signal.SIG_DFL, **popen: Any) -> subprocess.Popen:
    """Start ``python *args`` in the repository as at a terminal, for tests that interrupt it.

    In a session of its own, so that a signal to its process group reaches it and everything it
    starts, as a Ctrl-C does. And with SIGINT set explicitly (its default unless ``sigint`` says
    otherwise): a child inherits an ignored SIGINT (a test run started as a background job of a
    script; earlier tests in this process, the Dask cluster, may leave it ignored), and then no
    Ctrl-C would reach it.
    """
    return subprocess.Popen([sys.executable, *args], cwd=REPO, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint), **popen)


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` has stopped (it no longer exists, or is a zombie awaiting its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def still_running(pids: Iterable[int], timeout: float = 10) -> list[int]:
    """Those of ``pids`` still running after up to ``timeout`` seconds (a kill takes a moment)."""
    pids, deadline = list(pids), time.monotonic() + timeout
    while (alive := [pid for pid in pids if not process_gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of ``pid``, mapped to its parent's pid (read from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found.update({child: parents[child] for child in frontier})
    return found


def load_script(name: str) -> Any:
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_runs(n_agents: int = 3, n_tasks: int = 6, runs_per_cell: int = 2, seed: int = 0) -> pd.DataFrame:
    """A small valid METR-format run table."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_agents):
        for t in range(n_tasks):
            for r in range(runs_per_cell):
                rows.append({
                    "run_id": f"a{a}-t{t}-{r}", "task_id": f"fam{t % 2}/task{t}", "task_family": f"fam{t % 2}",
                    "task_source": "src" + str(t % 3), "alias": f"agent{a}", "human_minutes": float(2.0 ** t),
                    "score_binarized": int(rng.random() < 0.5), "human_source": "baseline",
                    "equal_task_weight": 1.0 / (n_tasks * runs_per_cell),
                    "invsqrt_task_weight": 1.0 / (n_tasks * runs_per_cell),
                })
    return pd.DataFrame(rows)


@pytest.fixture
def write_runs(tmp_path: Path) -> Callable[..., Path]:
    """Write a run table (DataFrame or list of dicts / raw lines) to JSONL or CSV; return its path."""

    def write(rows: pd.DataFrame | list, fmt: str = "jsonl", name: str = "runs") -> Path:
        path = tmp_path / f"{name}.{fmt}"
        if isinstance(rows, pd.DataFrame):
            if fmt == "csv":
                rows.to_csv(path, index=False)
            else:
                path.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dict("records")))
        else:
            path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return path

    return write


def small_default(n_agents: int = 6, n_tasks: int = 40) -> pd.DataFrame:
    """A subset of the embedded default dataset: evenly spaced agents, the first tasks."""
    runs = default_runs()
    agents = sorted(runs["alias"].unique())
    keep_agents = agents[:: max(1, len(agents) // n_agents)][:n_agents]
    tasks = sorted(runs["task_id"].unique())[:n_tasks]
    return runs[runs["alias"].isin(keep_agents) & runs["task_id"].isin(tasks)].reset_index(drop=True)


def family_effect_runs(effects: bool = True, seed: int = 7) -> pd.DataFrame:
    """METR-format runs, 8 agents x 64 tasks in 16 families x 4 runs, with strong family (sd 1.5)
    and task (sd 0.7) difficulty effects, or none."""
    rng = np.random.default_rng(seed)
    family = np.repeat(np.arange(16), 4)
    log2_minutes = rng.uniform(-2, 9, family.size)
    offset = rng.normal(0, 1.5, 16)[family] + rng.normal(0, 0.7, family.size) if effects else np.zeros(family.size)
    rows = []
    for a, h50 in enumerate(np.linspace(0, 7, 8)):
        p = 1 / (1 + np.exp(-(-0.8 * (log2_minutes - h50) + offset)))
        for t in range(family.size):
            for r in range(4):
                rows.append({"task_id": f"fam{family[t]}/t{t}", "task_family": f"fam{family[t]}", "alias": f"agent{a}",
                             "human_minutes": float(2 ** log2_minutes[t]), "score_binarized": int(rng.random() < p[t]),
                             "run_id": f"{a}-{t}-{r}"})
    return pd.DataFrame(rows)
