"""The PyStan backend, and every use of PyStan's and httpstan's internals.

PyStan has no settings for several things the zoo needs (stanc's optimisation level, a prompt
shutdown of its in-process server, reading the draws as they arrive, not keeping every fit on
disk), so the functions here replace attributes that PyStan and httpstan look up at call time,
for the duration of one call. pyproject.toml pins both packages to the releases these patches
were written for; ``tests/test_pystan_guards.py`` goes through their own code and fails if a
patch stops taking effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
import select
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from horizon_zoo.backends.common import (
    STANC_OPTIMISATION,
    STAT_NAMES,
    Draws,
    Program,
    SamplerSettings,
    _build_lock,
    _captured_fd2,
    _cast_ints,
    _cast_stats,
    _jsonable,
    _say,
    _version,
    log,
    variable_names,
)
from horizon_zoo.errors import BackendError


def pystan_available() -> bool:
    try:
        import stan  # noqa: F401

        return True
    except ImportError:
        return False




@contextlib.contextmanager
def _canonical_executable() -> Iterator[None]:
    """Let httpstan see one name per environment while it names a compiled model.

    httpstan hashes ``sys.executable`` into the model name, so ``.venv/bin/python`` (pytest)
    and ``.venv/bin/python3.12`` (the console script) would compile every program twice.
    """
    original = sys.executable
    # The environment, not the interpreter binary: a compiled module finds httpstan's libraries
    # through the environment that built it, so two environments must not share it (resolving
    # the symlink to the base interpreter made every venv of one Python share every module, and
    # deleting the venv that built them broke them all); .venv/bin/python and python3.12 agree.
    sys.executable = os.path.join(os.path.realpath(sys.prefix), "bin", "python")
    try:
        yield
    finally:
        sys.executable = original


@contextlib.contextmanager
def _own_fits_removed() -> Iterator[None]:
    """Delete the fits this process's PyStan call stores, and only those.

    httpstan caches every seeded fit on disk forever (our run directory keeps the draws). Removing
    the model's whole ``fits`` folder instead would delete the result of another process that is
    sampling the same program at that moment (parallel folds, a second terminal): it then fails
    with "Fit ... not found". So record the names httpstan gives this call's fits.
    """
    import httpstan.cache
    import httpstan.fits

    names: list[str] = []
    original = httpstan.fits.calculate_fit_name

    def recording(*args: Any, **kwargs: Any) -> str:
        name = original(*args, **kwargs)
        names.append(name)
        return name

    httpstan.fits.calculate_fit_name = recording
    try:
        yield
    finally:
        httpstan.fits.calculate_fit_name = original
        for name in names:
            with contextlib.suppress(KeyError, OSError):
                httpstan.cache.delete_fit(name)


def pystan_build(code: str, data: dict[str, Any], seed: int | None = None) -> Any:
    """PyStan's ``stan.build`` of ``code`` on ``data``, compiled with ``stanc --O1`` (cached).

    Tests that need PyStan's log density build through here too, so that they reuse the
    backend's compiled program instead of compiling a second, unoptimised one.
    """
    import stan

    with _canonical_executable(), _stanc_optimised(), _server_stops_promptly():
        return stan.build(_pystan_program(code), data=_jsonable(data), random_seed=seed)


def _pystan_program(code: str) -> str:
    """The program text handed to httpstan: ``code`` plus a comment naming the stanc level, because
    httpstan keys its compiled-model cache by program text and must not reuse an unoptimised build."""
    return f"{code.rstrip()}\n// compiled by horizon-zoo with stanc --{STANC_OPTIMISATION}\n"


@contextlib.contextmanager
def _stanc_optimised() -> Iterator[None]:
    """Let httpstan run stanc with ``--O1``; it has no setting for stanc's arguments.

    httpstan calls ``httpstan.compile.compile`` through the module, so replacing that function
    for the duration of a build adds the flag without touching anything else it does.
    """
    import subprocess

    import httpstan.compile

    original = httpstan.compile.compile

    def compile_optimised(program_code: str, stan_model_name: str) -> tuple[str, str]:
        with tempfile.TemporaryDirectory(prefix="horizon_zoo_stanc_") as tmp:
            stan_file = Path(tmp) / f"{stan_model_name}.stan"
            stan_file.write_text(program_code, encoding="utf-8")
            stanc = Path(httpstan.compile.__file__).with_name("stanc")
            done = subprocess.run([str(stanc), f"--{STANC_OPTIMISATION}", "--name", stan_model_name,
                                   "--warn-pedantic", "--print-cpp", str(stan_file)],
                                  capture_output=True, timeout=60)
        stderr = done.stderr.decode().strip()
        if done.returncode != 0:
            raise ValueError(stderr)  # what httpstan's own compile raises, reported the same way
        return done.stdout.decode().strip(), stderr

    httpstan.compile.compile = compile_optimised
    try:
        yield
    finally:
        httpstan.compile.compile = original


# How long PyStan's in-process httpstan server waits for a request still being answered when it
# stops (see _server_stops_promptly); aiohttp's default is 60 s.
HTTPSTAN_SHUTDOWN_S = 1.0


@contextlib.contextmanager
def _server_stops_promptly() -> Iterator[None]:
    """Let a Ctrl-C during PyStan's download of the draws take effect at once, not after 2 minutes.

    Each PyStan call starts an httpstan server in this process and stops it when the call ends.
    A Ctrl-C cancels PyStan's request while the server is still sending the draws; nobody reads
    the rest, and aiohttp's shutdown waits for that response twice, 60 s by default each time
    (measured: 121 s from Ctrl-C to KeyboardInterrupt). PyStan awaits every request it makes, so
    a request is only ever left unanswered after an interruption, when its answer is not wanted.

    Also: PyStan's client session keeps aiohttp's default total timeout of 5 minutes per request,
    and a build is one request, so a first compile on a busy machine failed with a bare
    ``TimeoutError()`` (seen here: five models at 335-595 s with other fits running). The session
    has no total timeout here; connecting still times out after 30 s.
    """
    import aiohttp
    import aiohttp.web
    import stan.common

    runner = functools.partial(aiohttp.web.AppRunner, shutdown_timeout=HTTPSTAN_SHUTDOWN_S)
    session = functools.partial(aiohttp.ClientSession, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
    original = stan.common.aiohttp
    stan.common.aiohttp = _ModuleWith(aiohttp, web=_ModuleWith(aiohttp.web, AppRunner=runner), ClientSession=session)
    try:
        yield
    finally:
        stan.common.aiohttp = original


# How httpstan's event loop receives each chain's draws (see _draws_received_promptly).
HANDOVER_READ_BYTES = 1 << 20
HANDOVER_WAIT_S = 0.001


class _BulkReadSocket(socket.socket):
    """A socket whose reads take up to HANDOVER_READ_BYTES, and whose accepted connections do too."""

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        return _BulkReadSocket(self.family, self.type, self.proto, fileno=fd), address

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return super().recv(max(bufsize, HANDOVER_READ_BYTES), flags)


class _ModuleWith:
    """A stand-in for a module, with some of its attributes replaced."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module, self._replaced = module, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


@contextlib.contextmanager
def _draws_received_promptly() -> Iterator[None]:
    """Let httpstan drain every chain's socket as the draws arrive.

    httpstan receives each chain's output in a coroutine of its own, on one event loop. That
    coroutine waits in a blocking ``select`` of up to 10 ms and reads 8 KiB per wake-up, so while
    it waits, no other chain's socket is read; their buffers fill and those samplers stall in
    ``send``. With thousands of cells (log_lik and y_rep are ~1.1 GB of JSON per cyber-horizons
    fit) the chains then spend much of the sampling phase waiting: logistic's four chains on
    cyber-horizons finished after ~80 s instead of ~57. Waiting at most 1 ms (the coroutine then
    sleeps 1 ms itself, giving the loop to the others) and reading up to 1 MiB at a time removes
    most of that; idle polling costs under a tenth of a core. The draws are the same bytes in the
    same order; only when they are read changes.
    """
    import httpstan.services_stub as stub

    def select_briefly(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
        return select.select(rlist, wlist, xlist, HANDOVER_WAIT_S)

    originals = stub.select, stub.socket
    stub.select = _ModuleWith(select, select=select_briefly)
    stub.socket = _ModuleWith(socket, socket=_BulkReadSocket)
    try:
        yield
    finally:
        stub.select, stub.socket = originals


def _pystan_build_once(model: Program, data: dict[str, Any], seed: int) -> Any:
    """:func:`pystan_build` of ``model``, its failure as a :class:`BackendError` whose message is
    one paragraph: PyStan's own words and the compiler's or loader's line that says why."""
    try:
        # The C++ compiler writes pages of warnings straight to file descriptor 2, and httpstan's
        # server logs a failed request's traceback there too.
        with _build_lock(model.sha256), _captured_fd2() as compiler_log, \
                contextlib.redirect_stderr(io.StringIO()), _quiet_server_errors() as server_errors:
            return pystan_build(model.program, data, seed)
    except Exception as exc:  # PyStan raises ValueError/RuntimeError with the compiler output
        output = [*compiler_log[0].splitlines(), *server_errors]
        raise BackendError(f"PyStan could not build {model.name}: {_build_failure_reason(exc, output)}") from None


def _build_failure_reason(exc: Exception, output: list[str]) -> str:
    """Why a build failed, in a paragraph: a loader's error line (a cached module that cannot be
    imported) or the compiler's error lines; PyStan's own message when neither is there."""
    loader = [line.strip() for line in output if line.strip().startswith(("ImportError", "OSError"))]
    if loader:
        return loader[-1]
    compiler = [line.strip() for line in output if " error: " in line or line.strip().startswith("Error")]
    text = str(exc).strip()
    if compiler:
        return (text + "\n" if text and "unexpected content" not in text else "") + "\n".join(compiler[-10:])
    return text or "no message; the build's output ended with:\n" + "\n".join(output[-10:])


@contextlib.contextmanager
def _quiet_server_errors() -> Iterator[list[str]]:
    """Collect, instead of printing, the tracebacks httpstan's in-process server logs for a failed
    request (a model that cannot be imported): the last line of each is the reason."""
    caught: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                caught.append(f"{type(exc).__name__}: {exc}")

    loggers = [logging.getLogger(name) for name in ("aiohttp.server", "aiohttp.web", "httpstan")]
    saved = [(lg, lg.propagate, list(lg.handlers)) for lg in loggers]
    handler = Collect()
    for lg in loggers:
        lg.propagate, lg.handlers = False, [handler]
    try:
        yield caught
    finally:
        for lg, propagate, handlers in saved:
            lg.propagate, lg.handlers = propagate, handlers


def _pystan_model_directory(code: str) -> Path:
    """httpstan's cache folder of the compiled ``code``."""
    import httpstan.cache
    import httpstan.models

    with _canonical_executable():
        return httpstan.cache.model_directory(httpstan.models.calculate_model_name(_pystan_program(code)))


def _pystan_is_compiled(code: str) -> bool:
    import httpstan.cache
    import httpstan.models

    with _canonical_executable():
        name = httpstan.models.calculate_model_name(_pystan_program(code))
    return name.split("/")[-1] in {n.split("/")[-1] for n in httpstan.cache.list_model_names()}


@functools.cache
def _stop_httpstan_workers_at_exit() -> None:
    """Stop httpstan's chain workers when this process exits.

    httpstan keeps a module-level pool of forked, non-daemonic workers. When a process started by
    ``multiprocessing`` (a CV fold or SBC worker) finishes, it joins its children before exiting,
    and those workers never finish: the fold's result is delivered, then the worker hangs forever
    and so does the pool waiting for it. A multiprocessing finalizer with priority >= 0 runs
    before that join.
    """
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _stop_httpstan_workers, exitpriority=10)


def _stop_httpstan_workers() -> None:
    """Kill httpstan's chain workers at once and give httpstan a new pool for any later fit.

    Killed, not asked to stop: they were forked from a process with threads, and a graceful
    shutdown can leave them blocked on their queue's lock. And they ignore SIGINT (httpstan's
    choice), so after a Ctrl-C or SIGTERM reached only this process a chain would otherwise
    sample to its end while the interpreter's exit waits for it.
    """
    import concurrent.futures
    import multiprocessing

    import httpstan.services_stub as stub

    from horizon_zoo.parallel import kill_workers

    kill_workers(stub.executor)
    stub.executor.shutdown(wait=False, cancel_futures=True)
    stub.executor = concurrent.futures.ProcessPoolExecutor(  # as httpstan makes it
        mp_context=multiprocessing.get_context("fork"), initializer=stub.init_worker)


def sample(
    model: Program,
    data: dict[str, Any],
    settings: SamplerSettings,
    inits: list[dict[str, Any]] | None,
    fixed_param: bool,
    progress: bool,
) -> Draws:
    """Compile (httpstan's cache) and sample ``model`` with PyStan; see :func:`horizon_zoo.backends.sample`."""
    _stop_httpstan_workers_at_exit()
    cached = _pystan_is_compiled(model.program)
    if not cached:
        _say(f"compiling {model.name} with PyStan (first time only, under a minute)", progress)
    start = time.perf_counter()
    try:
        posterior = _pystan_build_once(model, data, settings.seed)
    except BackendError as exc:
        if not cached:
            raise
        # A cached build that is unusable - a module that no longer loads (built in an environment
        # since deleted, a damaged file) or one whose build was cut off after the module was written
        # (a client timeout: httpstan then fails every later request for want of its stderr.log):
        # remove it and build again, once; only a second failure is an error.
        folder = _pystan_model_directory(model.program)
        log.warning("the compiled %s in %s is unusable (%s); removing it and rebuilding", model.name,
                    folder, exc.args[0].split(": ", 1)[-1].splitlines()[0])
        shutil.rmtree(folder, ignore_errors=True)
        _say(f"compiling {model.name} with PyStan (rebuilding the cached copy)", progress)
        try:
            posterior = _pystan_build_once(model, data, settings.seed)
        except BackendError as again:
            raise BackendError(f"{again.args[0]} (after removing its cached copy in {folder}; the PyStan cache "
                               "can be cleared with 'horizon-zoo cache clear --only pystan-models')") from None
        log.info("rebuilt %s", model.name)
    if posterior is None:  # PyStan swallows a Ctrl-C during the build and returns None
        raise KeyboardInterrupt
    compiled = time.perf_counter()
    # PyStan prints its progress bar, then every informational message of every chain; keep the
    # bar and send the messages to the debug log.
    # A progress bar redrawn in place is useful at a terminal only: written to a log file it is
    # ~1,200 lines per fit (the fit's start and end are logged either way).
    quiet = _ProgressOnly() if progress and sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO())
    if settings.threads_per_chain not in (1, os.cpu_count()):
        # httpstan never sizes Stan's TBB thread pool, so TBB uses what the machine offers.
        log.warning("PyStan cannot set threads per chain: %s's reduce_sum uses all %s cores "
                    "in each chain, not %d", model.name, os.cpu_count(), settings.threads_per_chain)
    kwargs: dict[str, Any] = {"num_chains": settings.chains, "num_samples": settings.draws,
                              "num_thin": settings.thin}
    if inits is not None:
        kwargs["init"] = [_jsonable(i) for i in inits]
    try:
        with quiet, _own_fits_removed(), _draws_received_promptly(), _server_stops_promptly():
            if fixed_param:
                fit = posterior.fixed_param(**kwargs)
            else:
                fit = posterior.sample(
                    num_warmup=settings.warmup,
                    delta=settings.adapt_delta,
                    max_depth=settings.max_treedepth,
                    init_buffer=settings.init_buffer,
                    window=settings.metric_window,
                    init_radius=settings.init_radius,
                    **kwargs,
                )
    except Exception as exc:
        if "daemonic processes are not allowed to have children" in str(exc):
            raise BackendError(
                f"PyStan could not sample {model.name}: it runs chains in child processes, and this process is "
                "a daemon that may not start any (a Dask worker by default). For Dask, set the config "
                "distributed.worker.daemon to false before starting the workers, e.g. "
                "dask.config.set({'distributed.worker.daemon': False}).") from None
        raise BackendError(f"PyStan sampling of {model.name} failed: {exc}") from None
    except KeyboardInterrupt:
        _stop_httpstan_workers()
        raise
    if fit is None:  # PyStan swallows Ctrl-C (and our SIGTERM) and returns None
        _stop_httpstan_workers()
        raise KeyboardInterrupt
    sampled = time.perf_counter()
    chains, n_draws = settings.chains, settings.kept_draws

    def reshape(flat: np.ndarray) -> np.ndarray:
        # PyStan stacks draws as index d * chains + c in the last axis.
        stacked = flat.reshape(*flat.shape[:-1], n_draws, chains)
        return np.moveaxis(np.moveaxis(stacked, -1, 0), -1, 1)

    # The fit holds every chain's raw JSON output besides the parsed draws: ~40 bytes per value,
    # 2 GB for 1,000 draws of the scale-up's log_lik and y_rep. Dropped before the draws are copied
    # out, so that the JSON and the copies never share the peak.
    fit.stan_outputs = ()
    variables = {name: reshape(np.asarray(fit[name])) for name in variable_names(model)}
    stats = {}
    for stan_name, az_name in STAT_NAMES.items():
        if stan_name in fit.sample_and_sampler_param_names:
            stats[az_name] = reshape(np.asarray(fit[stan_name]))
    del fit
    return Draws(
        variables=_cast_ints(model, variables),
        stats=_cast_stats(stats),
        backend="pystan",
        backend_version=_version("pystan"),
        timings={"compile_s": compiled - start, "sample_s": sampled - compiled, "compile_cached": float(cached)},
    )


class _ProgressOnly(contextlib.AbstractContextManager["_ProgressOnly"], io.TextIOBase):
    """A stderr stand-in that passes PyStan's progress bar and holds back its chain messages."""

    MARKER = "Messages received during sampling"

    def __init__(self) -> None:
        self._target = sys.stderr
        self._muted = False
        self._held: list[str] = []

    def __enter__(self) -> _ProgressOnly:
        self._target = sys.stderr
        sys.stderr = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stderr = self._target
        if self._held:
            log.debug("PyStan messages:\n%s", "".join(self._held))

    def write(self, text: str) -> int:
        if self.MARKER in text:
            self._muted = True
        if self._muted:
            self._held.append(text)
        else:
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()


def is_interruption_noise(record: logging.LogRecord) -> bool:
    """True for what httpstan and asyncio log while PyStan's tasks are cancelled by a Ctrl-C or
    SIGTERM (pages of tracebacks), which the CLI reports once itself."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return True
    text = record.getMessage()
    return (record.name.startswith(("httpstan", "asyncio"))
            and ("KeyboardInterrupt()" in text or "cancelled before finishing" in text))


def pystan_models_directory() -> Path | None:
    """httpstan's folder of compiled programs, or None without PyStan."""
    try:
        import httpstan.cache
    except ImportError:
        return None
    return httpstan.cache.cache_directory() / "models"
