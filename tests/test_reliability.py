"""Reliability: extreme task lengths, degenerate but valid data, interruption and resume, and
reproducibility of whole runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from horizon_zoo import api
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cli import main
from horizon_zoo.data import load_runs
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import discover
from horizon_zoo.simulate import default_release_dates
from tests.conftest import REPO, descendants, make_runs, start_python, still_running

ZOO = discover()


def extreme_runs(seed: int = 3) -> pd.DataFrame:
    """4 agents with 50% horizons from 1 minute to a week, on 12 tasks from 0.01 to 100,000 minutes."""
    rng = np.random.default_rng(seed)
    agents = list(default_release_dates())[:4]
    minutes = np.logspace(-2, 5, 12)
    rows = []
    for a, h50 in zip(agents, [1.0, 30.0, 600.0, 10_000.0], strict=True):
        for t, m in enumerate(minutes):
            p = 1 / (1 + np.exp(0.8 * (np.log(m) - np.log(h50))))
            for r in range(3):
                rows.append({"run_id": f"{a}-{t}-{r}", "task_id": f"f{t % 4}/t{t}", "task_family": f"f{t % 4}",
                             "task_source": "s", "alias": a, "human_minutes": float(m), "human_source": "baseline",
                             "score_binarized": int(rng.random() < p)})
    return pd.DataFrame(rows)


@pytest.mark.stan
@pytest.mark.parametrize("name", sorted(ZOO))
def test_extreme_task_lengths_do_not_overflow(name):
    import dataclasses

    data = dataclasses.replace(load_runs(extreme_runs()), release_dates=default_release_dates())
    fit = fit_model(ZOO[name], data, settings=SamplerSettings(chains=1, warmup=150, draws=100, seed=2), progress=False)
    log_lik = fit.idata["log_likelihood"]["log_lik"].values
    p_curve = fit.idata["posterior"]["p_curve"].values
    assert np.isfinite(log_lik).all() and (log_lik <= 0).all()
    assert np.isfinite(p_curve).all() and ((p_curve >= 0) & (p_curve <= 1)).all()
    assert np.isfinite(fit.idata["sample_stats"]["lp"].values).all()


@pytest.mark.stan
def test_valid_but_degenerate_data_fit_with_warnings(tmp_path, capsys, write_runs):
    """Unicode names, an agent that never fails, a single agent: accepted, warned about, reported."""
    runs = make_runs(n_agents=2, n_tasks=6, runs_per_cell=3)
    runs.loc[runs["alias"] == "agent0", "alias"] = "Claude 🐙 Ünïcødé (新)"
    runs.loc[runs["alias"] == "agent1", "score_binarized"] = 1
    path = write_runs(runs)
    fast = ["--chains", "1", "--warmup", "150", "--draws", "100"]
    assert main(["fit", "--model", "logistic", "--runs", str(path), "--out", str(tmp_path / "both"), *fast]) == 0
    captured = capsys.readouterr()
    assert "agent 'agent1' succeeded on every one of its 18 runs" in captured.err
    report = (tmp_path / "both" / "report.md").read_text(encoding="utf-8")
    assert "Claude 🐙 Ünïcødé (新)" in report and "succeeded on every one" in report
    horizons = pd.read_csv(tmp_path / "both" / "tables" / "horizons.csv")
    assert "Claude 🐙 Ünïcødé (新)" in set(horizons["agent"])
    # agent1 never fails: its data bound its horizon from below only, so its p50 lies above the
    # longest task it succeeded on (the posterior's upper tail is the prior's); the lower bound holds
    longest = runs.loc[runs["alias"] == "agent1", "human_minutes"].max()
    row = horizons[(horizons["agent"] == "agent1") & (horizons["q"] == 0.5) & (horizons["curve"] == "marginal")].iloc[0]
    assert row["median_min"] > longest and row["lo95_min"] > longest / 4
    assert main(["fit", "--model", "logistic", "--runs", str(path), "--agents", "agent1",
                 "--out", str(tmp_path / "one"), *fast]) == 0
    single = pd.read_csv(tmp_path / "one" / "tables" / "horizons.csv")
    assert set(single["agent"]) == {"agent1"}


# One chain of 20,000 + 20,000 iterations: seconds per fit on any machine, so a Ctrl-C sent when
# a fit starts arrives while it samples (short chains finished before the signal arrived).
SLOW = ["--chains", "1", "--warmup", "20000", "--draws", "20000"]


def _start(args: list[str], env: dict[str, str], sigint: signal.Handlers = signal.SIG_DFL) -> subprocess.Popen:
    return start_python(["-m", "horizon_zoo.cli", *args], sigint, env=env, stderr=subprocess.PIPE,
                        stdout=subprocess.DEVNULL)


def _interrupt_after(proc: subprocess.Popen, marker: str, timeout: float = 600) -> str:
    """Read stderr until ``marker`` appears, then Ctrl-C the process group; return all stderr."""
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(seen)
    _, rest = proc.communicate(timeout=120)
    return "".join(seen) + rest


def _no_partial_files(*dirs) -> None:
    for d in dirs:
        assert not [p for p in d.rglob("*.part")], f"half-written files left in {d}"


@pytest.mark.stan
def test_interrupted_cv_leaves_a_consistent_run_and_resumes_from_finished_folds(tmp_path, write_runs):
    env = {**os.environ, "HORIZON_ZOO_CV_CACHE": str(tmp_path / "cache")}
    path = write_runs(make_runs(n_agents=3, n_tasks=12, runs_per_cell=3))
    # long chains on purpose: the Ctrl-C must land while a later fold is still sampling
    args = ["cv", "--runs", str(path), "--models", "logistic", "--folds", "4", *SLOW]
    proc = _start([*args, "--out", str(tmp_path / "first")], env)
    err = _interrupt_after(proc, "CV [1/4]")
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    _no_partial_files(tmp_path / "first", tmp_path / "cache")
    done = len(list((tmp_path / "cache").glob("*.json")))
    assert 1 <= done < 4

    second = subprocess.run([sys.executable, "-m", "horizon_zoo.cli", *args, "--out", str(tmp_path / "second")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count(": cached") == done
    assert json.loads((tmp_path / "second" / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.stan
def test_interrupted_compare_resumes_from_completed_fits(tmp_path, write_runs):
    path = write_runs(make_runs(n_agents=3, n_tasks=12, runs_per_cell=3))
    args = ["compare", "--runs", str(path), "--models", "logistic,logistic_shared_slope", *SLOW,
            "--out", str(tmp_path / "run")]
    proc = _start(args, dict(os.environ))
    err = _interrupt_after(proc, "[2/2] logistic_shared_slope")
    assert proc.returncode == 130, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["completed"] == ["logistic"]
    _no_partial_files(tmp_path / "run")

    second = subprocess.run([sys.executable, "-m", "horizon_zoo.cli", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "logistic: reusing the completed fit" in second.stderr
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "complete"


def _sampling(tree: dict[int, int], main: int, jobs: int) -> bool:
    """Whether every fit of a compare samples, from its process tree (pid -> parent): PyStan's chain
    processes are children of the main process, or with --jobs 2 of each of the two workers."""
    if jobs == 1:
        return bool(tree)
    return len(set(tree.values()) - {main}) == jobs


@pytest.mark.stan
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process tree from /proc")
@pytest.mark.parametrize(("how", "jobs"), [("ctrl-c", 1), ("ctrl-c", 2), ("sigterm", 1), ("sigterm", 2),
                                         ("sigterm, SIGINT ignored", 1)])
def test_a_stopped_compare_stops_its_processes_at_once_and_marks_the_run(tmp_path, write_runs, how, jobs):
    """Ctrl-C at the terminal (the process group), or SIGTERM to the main process alone (kill, a
    scheduler's time limit; also in a script's background job, which ignores SIGINT), while chains
    sample: an interrupted run at once, no process left. The chains would sample for minutes."""
    path = write_runs(make_runs(n_agents=3, n_tasks=12, runs_per_cell=3))
    long = ["--chains", "1", "--warmup", "1000000", "--draws", "1000000"]
    proc = _start(["compare", "--runs", str(path), "--models", "logistic,logistic_shared_slope", *long,
                   "--jobs", str(jobs), "--out", str(tmp_path / "run")], dict(os.environ),
                  signal.SIG_IGN if "ignored" in how else signal.SIG_DFL)
    seen, tree = [], {}
    try:
        for line in proc.stderr:
            seen.append(line)
            if "[1/2]" in line or "2 at a time in separate processes" in line:
                break
        deadline = time.monotonic() + 300
        while not _sampling(tree, proc.pid, jobs):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)
            time.sleep(0.2)
            tree = descendants(proc.pid)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)  # a hang, or a wait for the chain to end, fails here
        err = "".join(seen) + rest
        expected = (130, "interrupted") if how == "ctrl-c" else (143, "terminated (SIGTERM)")
        assert (proc.returncode, expected[1] in err) == (expected[0], True), err
        assert not re.search("traceback|KeyboardInterrupt", err, re.IGNORECASE), err
        assert still_running(tree) == [], "processes outlived the signal"
    finally:
        for pid in [proc.pid, *tree]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["completed"] == []
    _no_partial_files(tmp_path / "run")


@pytest.mark.stan
def test_same_seed_gives_identical_tables_whether_models_are_fitted_in_turn_or_at_once(tmp_path, write_runs):
    path = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    settings = SamplerSettings(chains=2, warmup=150, draws=100, seed=11)
    tables = []
    for name, jobs in (("a", 1), ("b", 2)):
        api.compare(path, models=["logistic", "constant_hazard"], settings=settings, out=tmp_path / name,
                    progress=False, jobs=jobs)
        tables.append({stem: (tmp_path / name / "tables" / f"{stem}.csv").read_text()
                       for stem in ("loo", "horizons", "checks", "calibration_logistic")})
        # everything but the wall-clock sampling time
        tables[-1]["diagnostics"] = pd.read_csv(tmp_path / name / "tables" / "diagnostics.csv").drop(
            columns="sample_s").to_csv(index=False)
    assert tables[0] == tables[1]
    other = SamplerSettings(chains=2, warmup=150, draws=100, seed=12)
    api.compare(path, models=["logistic", "constant_hazard"], settings=other, out=tmp_path / "c", progress=False)
    assert (tmp_path / "c" / "tables" / "horizons.csv").read_text() != tables[0]["horizons"]


@pytest.mark.stan
def test_a_model_failing_in_a_worker_process_is_reported_and_the_others_are_compared(tmp_path, write_runs,
                                                                                    caplog):
    path = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    broken = REPO / "tests" / "stan_programs" / "never_initialises.stan"
    settings = SamplerSettings(chains=2, warmup=150, draws=100, seed=11)
    with caplog.at_level("INFO", logger="horizon_zoo"):
        result = api.compare(path, models=["logistic", str(broken)], settings=settings, out=tmp_path / "run",
                             progress=False, jobs=2)
    assert "fitting 2 models, 2 at a time in separate processes" in caplog.text
    assert list(result.fits) == ["logistic"] and result.loo["model"].tolist() == ["logistic"]
    assert list(result.failed) == ["never_initialises"]
    assert "Initialization failed" in result.failed["never_initialises"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["completed"] == ["logistic"]
    assert manifest["failed"] == result.failed
