"""Run many independent fits (CV folds, SBC simulations) in-process, in local processes, or on
any ``concurrent.futures.Executor`` such as a Dask ``Client.get_executor()``."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

R = TypeVar("R")


def run_all(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]], *, jobs: int = 1,
            executor: Executor | None = None) -> Iterator[R]:
    """Yield ``fn(*args)`` for every ``args`` in ``calls``, in completion order.

    With ``executor`` the calls go there; otherwise ``jobs`` local processes (started with spawn:
    PyStan's event loop and worker pools do not survive a fork), or the calling process when
    ``jobs`` is 1, which keeps tracebacks and Ctrl-C simple. On Ctrl-C or an error, calls not yet
    started are cancelled; results already yielded stay with the caller (who caches them).
    """
    if executor is None and jobs <= 1:
        for args in calls:
            yield fn(*args)
        return
    own = executor is None
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) if own else executor
    futures = [pool.submit(fn, *args) for args in calls]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()
        if own:
            pool.shutdown(cancel_futures=True)
