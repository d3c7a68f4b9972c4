"""Fits spread over executors: in-process, local processes, and a Dask cluster."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dask
import distributed
import pytest

from horizon_zoo.backends import SamplerSettings
from horizon_zoo.cv import cross_validate
from horizon_zoo.data import load_runs
from horizon_zoo.parallel import run_all
from horizon_zoo.registry import resolve
from tests.conftest import make_runs


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
                                 cache=tmp_path / "dask")
    in_process = cross_validate([model], data, ["task"], k=3, settings=settings, cache=tmp_path / "local")
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
                                         cache=tmp_path)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the process pool did not shut down after the folds finished"
    assert len(result["table"]) == 8
