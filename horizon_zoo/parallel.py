"""Run many independent fits (CV folds, SBC simulations, a comparison's models) in-process, in local
processes, or on any ``concurrent.futures.Executor`` such as a Dask ``Client.get_executor()``."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

from horizon_zoo.rundir import remove_partial_files

R = TypeVar("R")


def run_all(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]], *, jobs: int = 1,
            executor: Executor | None = None, writes_into: Sequence[Path] = ()) -> Iterator[R]:
    """Yield ``fn(*args)`` for every ``args`` in ``calls``, in completion order.

    With ``executor`` the calls go there; otherwise ``jobs`` local processes (started with spawn:
    PyStan's event loop and worker pools do not survive a fork), or the calling process when
    ``jobs`` is 1, which keeps tracebacks and Ctrl-C simple. On Ctrl-C or an error, calls not yet
    started are cancelled and local worker processes are stopped at once, with every process they
    started, and the temporary files of their unfinished writes into the directories ``writes_into``
    are removed; results already yielded stay with the caller. A caller that keeps the iterator in a
    variable should close it on error (``contextlib.closing``) so this happens before it goes on.
    """
    if executor is None and jobs <= 1:
        for args in calls:
            yield fn(*args)
        return
    own = executor is None
    pool = executor
    futures: list[Future[R]] = []
    finished = False
    try:
        with _ctrl_c_held_back() if own else contextlib.nullcontext():
            if own:
                pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_worker, initargs=(os.getpid(),))
            assert pool is not None
            for args in calls:  # the pool starts its workers as calls arrive
                futures.append(pool.submit(fn, *args))
        for future in as_completed(futures):
            yield future.result()
        finished = True
    finally:
        for future in futures:
            future.cancel()
        if own and isinstance(pool, ProcessPoolExecutor):
            if not finished:
                # Stop the running calls instead of waiting for them: a fit takes minutes, and
                # waiting on an interrupted worker could hang (see kill_workers).
                kill_workers(pool)
                for directory in writes_into:
                    remove_partial_files(directory)
            pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _ctrl_c_held_back() -> Iterator[None]:
    """Hold SIGINT back from this thread, and so from the processes it starts, which inherit the
    mask: a new worker is in the terminal's process group until its initializer runs, and a Ctrl-C
    then would print its bootstrap traceback. A Ctrl-C that arrives meanwhile is delivered after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(parent: int) -> None:
    """Worker initializer. A session of its own, so a Ctrl-C at the terminal reaches only the parent
    (which stops the workers), and the worker's pid names a process group holding every process it
    starts (PyStan's chains), so that one signal stops them all. And a watch on the parent."""
    if hasattr(os, "setsid"):
        os.setsid()
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()


def _stop_when_orphaned(parent: int) -> None:
    """Kill this worker and its process group once ``parent`` is gone. A parent killed outright
    (SIGKILL, a closed terminal, a job scheduler's limit) cannot stop its workers, which would
    otherwise sample on for minutes outside the terminal's process group."""
    while os.getppid() == parent:
        time.sleep(1)
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers and what they started, and let its manager thread see them go.

    Uses two private attributes, the pool's only handles on these: ``_processes`` (its workers)
    and ``_result_queue`` (the pipe results come back through).
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # None once shut down
    for process in processes:
        if hasattr(os, "killpg"):
            with contextlib.suppress(OSError):  # gone already, or not yet a group leader
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            process.kill()
    for process in processes:
        process.join()
    # A worker killed while sending its result (a fit is tens of MB) leaves half a message in the
    # pipe, and the manager thread would wait for the rest forever, hanging shutdown() and the
    # interpreter's exit. Closing our own write end, the last one open once the workers are gone,
    # ends that read instead.
    queue = getattr(pool, "_result_queue", None)
    if queue is not None:
        with contextlib.suppress(OSError):
            queue._writer.close()
