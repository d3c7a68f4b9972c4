"""Fits spread over executors: in-process, local processes, and a Dask cluster."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import distributed
import pytest

from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cv import cross_validate
from horizon_zoo.data import load_runs
from horizon_zoo.parallel import run_all
from horizon_zoo.registry import resolve
from horizon_zoo.rundir import atomic_path
from tests.conftest import make_runs, start_python, still_running


def _square(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x * x


def test_run_all_gives_every_result_on_any_executor():
    calls = [(i,) for i in range(6)]
    assert list(run_all(_square, calls)) == [0, 1, 4, 9, 16, 25]  # in-process keeps the order
    with ThreadPoolExecutor(2) as pool:
        assert sorted(run_all(_square, calls, executor=pool)) == [0, 1, 4, 9, 16, 25]
    with pytest.raises(ValueError, match="negative"):
        list(run_all(_square, [(1,), (-1,)], jobs=2))


@pytest.mark.stan
def test_cv_folds_run_on_a_dask_local_cluster(tmp_path):
    data = load_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    settings = SamplerSettings(chains=1, warmup=150, draws=100, seed=3)
    model = resolve("logistic")
    # PyStan runs chains in child processes, which Dask's default daemonic workers cannot start
    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = cross_validate([model], data, ["task"], k=3, settings=settings, executor=client.get_executor(),
                                 cache=tmp_path / "dask").pointwise
    in_process = cross_validate([model], data, ["task"], k=3, settings=settings, cache=tmp_path / "local").pointwise
    key = ["scheme", "model", "group"]
    a = on_dask.sort_values(key).reset_index(drop=True)
    b = in_process.sort_values(key).reset_index(drop=True)
    assert len(a) == 8 and not a["cached"].any()
    # same seed, same fits: identical elpds whichever machine ran each fold
    assert a["elpd"].tolist() == b["elpd"].tolist()


@pytest.mark.stan
def test_folds_in_local_processes_finish_and_the_pool_exits(tmp_path):
    """A worker process that sampled with PyStan must exit (httpstan's workers used to keep it alive)."""
    import threading

    data = load_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    settings = SamplerSettings(chains=2, warmup=150, draws=100, seed=3)
    result = {}

    def run():
        result["table"] = cross_validate([resolve("logistic")], data, ["task"], k=2, settings=settings, jobs=2,
                                         cache=tmp_path).pointwise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the process pool did not shut down after the folds finished"
    assert len(result["table"]) == 8


def _stubborn(pid_dir: str, out_dir: str) -> None:
    """A worker that will not stop when asked, has started a process of its own (as a PyStan fit
    has its chains) and is writing a file: it ignores SIGINT and SIGTERM and sleeps mid-write."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _busy(pid_dir, out_dir)


def _busy(pid_dir: str, out_dir: str) -> None:
    """A worker that has started a process of its own and sleeps while writing a file."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with atomic_path(Path(out_dir) / f"{os.getpid()}.nc") as tmp:
        tmp.write_text("half a fit")
        (Path(pid_dir) / str(os.getpid())).write_text(str(child.pid))
        time.sleep(600)


def _large_result(marker: str) -> bytes:
    """A result that takes a second or more to pass through the pipe, as a fit's draws do."""
    result = b"x" * 600_000_000
    Path(marker).write_text(str(os.getpid()))
    return result


def _run_all_in_a_terminal(fn: str, calls: list[tuple], writes_into: Sequence[str] = ()) -> subprocess.Popen:
    """A process running ``run_all(fn, calls, jobs=2, writes_into=...)`` as a terminal command would: in a
    session of its own (so a signal to its group is a Ctrl-C) with SIGINT at its default. It exits
    130 on KeyboardInterrupt and prints "got" for each result."""
    driver = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from horizon_zoo.parallel import run_all
        from tests.test_parallel import {fn}
        try:
            for _ in run_all({fn}, {calls!r}, jobs=2, writes_into=[Path(d) for d in {list(writes_into)!r}]):
                print("got", flush=True)
        except KeyboardInterrupt:
            sys.exit(130)
        """)
    return start_python(["-c", driver], stdout=subprocess.PIPE)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline and proc.poll() is None, f"{what} never happened"
        time.sleep(0.01)


def _written(directory: Path) -> dict[str, str]:
    """The files of ``directory`` that already hold a whole line of text, by name."""
    files = {p.name: p.read_text() for p in directory.iterdir()}
    return {name: text for name, text in files.items() if text.strip().isdigit()}


def _read_bytes(pid: int) -> int:
    return int(dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())["rchar"])


@contextlib.contextmanager
def _two_workers_mid_write(tmp_path: Path, fn: str) -> Iterator[tuple[subprocess.Popen, list[int], Path]]:
    """Run ``fn`` (``_stubborn`` or ``_busy``) in two workers under :func:`_run_all_in_a_terminal`;
    once both are mid-write, yield the process, the pids of the workers and of their children,
    and the directory they write into. Whatever the test does, nothing is left running."""
    started, out = tmp_path / "started", tmp_path / "out"
    started.mkdir()
    proc = _run_all_in_a_terminal(fn, [(str(started), str(out))] * 2, writes_into=[str(out)])
    pids: list[int] = []
    try:
        # A worker creates its pid file before it writes it: wait for the content, not the file (the
        # read of an empty file failed under load: int('')).
        _wait_for(lambda: len(_written(started)) == 2, proc, "both workers starting")
        pids = [int(name) for name in _written(started)] + [int(text) for text in _written(started).values()]
        yield proc, pids, out
    finally:
        for pid in [proc.pid, *pids]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_ctrl_c_stops_local_workers_and_their_children_at_once(tmp_path):
    with _two_workers_mid_write(tmp_path, "_stubborn") as (proc, pids, out):
        assert len(list(out.glob(".*.part"))) == 2
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130  # before the fix: hung in the pool's shutdown
        assert still_running(pids) == [], "processes outlived the Ctrl-C"
        assert list(out.iterdir()) == [], "the killed workers' unfinished writes were left behind"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_ctrl_c_while_a_worker_sends_its_result_does_not_hang(tmp_path):
    marker = tmp_path / "sending"
    proc = _run_all_in_a_terminal("_large_result", [(str(marker),)])
    try:
        _wait_for(lambda: marker.exists() and marker.read_text().strip().isdigit(), proc,
                  "the worker finishing its call")
        before = _read_bytes(proc.pid)
        # a sixth of the result has arrived: the worker is partway through sending it
        _wait_for(lambda: _read_bytes(proc.pid) - before > 100_000_000, proc, "the result arriving")
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)  # hung for good before kill_workers closed the pipe
        assert proc.returncode == 130 and "got" not in out
        assert still_running([int(marker.read_text())]) == []
    finally:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_workers_and_their_children_stop_when_the_main_process_is_killed(tmp_path):
    with _two_workers_mid_write(tmp_path, "_busy") as (proc, pids, _):
        proc.kill()  # no chance to clean up: the workers must notice by themselves
        proc.wait(timeout=10)
        assert still_running(pids, timeout=15) == [], "workers outlived the main process"
