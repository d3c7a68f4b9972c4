"""Stan backends: CmdStanPy when CmdStan is installed, PyStan otherwise.

Both backends return the same :class:`Draws` (arrays shaped ``(chain, draw, *dims)`` and the
sampler's diagnostics under ArviZ names), so everything after sampling is backend-agnostic.
Compiled programs are cached: PyStan/httpstan keys its cache by program text, and CmdStan
executables are kept under :func:`cache_dir` keyed by the program's hash. Both backends compile
with stanc's optimisation level ``--O1`` (:data:`STANC_OPTIMISATION`).
"""

from __future__ import annotations

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from horizon_zoo.errors import BackendError, DataError
from horizon_zoo.registry import STAN_INIT_RADIUS, ZooModel

log = logging.getLogger(__name__)

# Stan's recommended optimisation level. Besides removing dead code, it stores a model-block
# vector or matrix as one struct of arrays where every use allows it, which makes
# cumulative_surprisal's gradient 1.6x faster. Neither backend uses it by default.
STANC_OPTIMISATION = "O1"

BACKENDS = ("cmdstanpy", "pystan")
BackendName = Literal["auto", "cmdstanpy", "pystan"]

# Stan's sampler diagnostics under ArviZ's names, as arviz_base's converters call them.
STAT_NAMES = {
    "lp__": "lp",
    "accept_stat__": "acceptance_rate",
    "stepsize__": "step_size",
    "treedepth__": "tree_depth",
    "n_leapfrog__": "n_steps",
    "divergent__": "diverging",
    "energy__": "energy",
}
_INT_STATS = {"tree_depth", "n_steps"}


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings shared by both backends."""

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    seed: int = 20250319
    adapt_delta: float = 0.8
    max_treedepth: int = 10
    # Keep every thin-th draw. Generated quantities are computed and written only for kept draws,
    # and with thousands of cells log_lik and y_rep dominate both sampling time and memory.
    thin: int = 1
    # Threads per chain for models that sum their likelihood with reduce_sum. Pays off only when
    # cores outnumber chains: with 4 chains on 2 cores, one thread each already fills them.
    threads_per_chain: int = 1
    # Warmup iterations before the first estimate of the metric, and the first metric window (Stan's
    # defaults 75 and 25). Until that estimate NUTS moves with a unit metric, and where the data pin
    # parameters to very different scales (the 160,000-run scale-up) those ~100 iterations run to
    # the maximum tree depth and cost 40-60% of a chain's gradients. 10 and 15 took
    # agent_family_interaction's scale-up fit from 20 to 11 min but made cumulative_surprisal's
    # slower, and on the real datasets the gain is small, so Stan's schedule stays the default.
    init_buffer: int = 75
    metric_window: int = 25
    # Initial values are drawn uniformly in (-r, r) on the unconstrained scale (Stan's r is 2). A
    # model whose parameters pass through exp() can start far in a tail where its likelihood is
    # astronomically small and the chain never adapts out; such a model lowers r in its header.
    init_radius: float = STAN_INIT_RADIUS

    def __post_init__(self) -> None:
        if min(self.chains, self.draws, self.thin, self.threads_per_chain, self.init_buffer, self.metric_window) < 1 \
                or self.warmup < 0:
            raise ValueError("chains, draws, thin, threads_per_chain, init_buffer and metric_window must be >= 1 "
                             "and warmup >= 0")
        if not 0 < self.adapt_delta < 1:
            raise ValueError("adapt_delta must be in (0, 1)")
        if not self.init_radius >= 0:
            raise ValueError("init_radius must be >= 0")

    @property
    def kept_draws(self) -> int:
        """Draws per chain that are kept (Stan keeps iterations 0, thin, 2 thin, ...)."""
        return -(-self.draws // self.thin)

    def describe(self) -> str:
        """'4 chains x 1000 draws', with the thinning when there is any (for progress lines)."""
        kept = f"{self.chains} chains x {self.kept_draws} draws"
        if self.thin != 1:
            kept += f" (thinned by {self.thin} from {self.draws})"
        return kept if self.threads_per_chain == 1 else f"{kept}, {self.threads_per_chain} threads per chain"

    def as_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        # Defaults of later-added settings are left out, so fits and caches written before those
        # settings existed still match.
        defaults = SamplerSettings.__dataclass_fields__
        for key in ("thin", "threads_per_chain", "init_buffer", "metric_window", "init_radius"):
            if settings[key] == defaults[key].default:
                del settings[key]
        return settings


@dataclass
class Draws:
    """Posterior draws of every program variable, backend-independent.

    ``variables[name]`` has shape ``(chain, draw, *stan_dims)``; ``stats[name]`` has shape
    ``(chain, draw)`` and uses ArviZ names (``diverging``, ``tree_depth``, ``energy``, ...).
    """

    variables: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    backend: str
    backend_version: str
    timings: dict[str, float] = field(default_factory=dict)


def cache_dir() -> Path:
    """Where horizon-zoo keeps compiled CmdStan executables (``$HORIZON_ZOO_CACHE`` overrides)."""
    env = os.environ.get("HORIZON_ZOO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "horizon-zoo"


def cache_subdir(env_var: str, name: str) -> Path:
    """``$env_var`` when set, else ``cache_dir() / name`` (the CV fold and SBC simulation caches)."""
    env = os.environ.get(env_var)
    return Path(env) if env else cache_dir() / name


def cmdstan_available() -> bool:
    """True when CmdStanPy can find a CmdStan installation: its own (``$CMDSTAN`` or
    ``~/.cmdstan``), else the one ``horizon-zoo cmdstan build`` made for this environment."""
    return cmdstan_location() is not None


def cmdstan_location() -> str | None:
    """The CmdStan directory the cmdstanpy backend uses, pointing CmdStanPy at the offline build
    when it knows no other; None when there is none."""
    try:
        import cmdstanpy
    except ImportError:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return str(cmdstanpy.cmdstan_path())
    except Exception:  # cmdstanpy raises ValueError, or RuntimeError on a broken install
        pass
    if os.environ.get("CMDSTAN"):  # set but broken: the user asked for that one, do not replace it
        return None
    from horizon_zoo.cmdstan_offline import installed_build

    built = installed_build()
    if built is None:
        return None
    cmdstanpy.set_cmdstan_path(str(built))
    return str(built)


def pystan_available() -> bool:
    try:
        import stan  # noqa: F401

        return True
    except ImportError:
        return False


def available_backends() -> list[str]:
    """Backends usable on this machine, in order of preference."""
    return [b for b, ok in (("cmdstanpy", cmdstan_available()), ("pystan", pystan_available())) if ok]


def resolve_backend(name: str = "auto") -> str:
    """Turn ``auto`` into the preferred available backend; check a forced one is usable."""
    if name not in ("auto", *BACKENDS):
        raise BackendError(f"unknown backend '{name}'; choose auto, cmdstanpy or pystan.")
    available = available_backends()
    if name == "auto":
        if not available:
            raise BackendError("no Stan backend: install pystan (pip install pystan) or CmdStan.")
        return available[0]
    if name not in available:
        hint = (
            "CmdStan is not installed (cmdstanpy.install_cmdstan() needs internet access); "
            "use --backend pystan"
            if name == "cmdstanpy"
            else "pip install pystan (needs Python >= 3.10 on Linux or macOS)"
        )
        raise BackendError(f"backend '{name}' is not available: {hint}.")
    return name


def variable_names(model: ZooModel) -> list[str]:
    """Program variables that are saved with each draw, in declaration order."""
    info = model.info
    return [*info.get("parameters", {}), *info.get("transformed parameters", {}),
            *info.get("generated quantities", {})]


def sample(
    model: ZooModel,
    data: dict[str, Any],
    settings: SamplerSettings,
    *,
    backend: str = "auto",
    inits: list[dict[str, Any]] | None = None,
    fixed_param: bool = False,
    output_dir: Path | None = None,
    progress: bool = True,
) -> Draws:
    """Compile (cached) and sample ``model`` on ``data``.

    Parameters
    ----------
    model
        A validated zoo model.
    data
        The contract's Stan data (see :func:`horizon_zoo.contract.stan_data`).
    settings
        Chains, warmup, draws, seed, adapt_delta, max_treedepth, thin, threads_per_chain (models
        that declare ``grainsize`` sum their likelihood with ``reduce_sum`` when it is above 1;
        the others are sampled with 1), init_buffer and metric_window (warmup adaptation).
    backend
        ``auto`` (CmdStanPy if CmdStan is installed, else PyStan), ``cmdstanpy`` or ``pystan``.
    inits
        Optional initial values, one dict per chain.
    fixed_param
        Run Stan's fixed-parameter sampler from ``inits`` (for simulating from given values).
    output_dir
        CmdStan CSV directory (ignored by PyStan).
    progress
        Show the backend's progress display on stderr.
    """
    name = resolve_backend(backend)
    if settings.threads_per_chain > 1 and not model.reads("grainsize"):
        # Without reduce_sum a chain runs on one thread whatever it is given; under CmdStan more
        # threads per chain would only cut the chains run at once (cores // threads).
        settings = replace(settings, threads_per_chain=1)
    data = program_data(model, {**data, "grainsize": grainsize(int(data["N"]), settings.threads_per_chain)})
    if inits is not None and len(inits) != settings.chains:
        raise ValueError(f"need one init per chain ({settings.chains}), got {len(inits)}")
    _warn_if_pointwise_output_large(model.name, int(data["N"]), settings, name)
    if name == "cmdstanpy":
        return _sample_cmdstanpy(model, data, settings, inits, fixed_param, output_dir, progress)
    return _sample_pystan(model, data, settings, inits, fixed_param, progress)


def grainsize(cells: int, threads: int) -> int:
    """Cells per ``reduce_sum`` slice: 0 (one call sums them all) for one thread, else four
    slices per thread. Each slice copies the shared parameters onto its own autodiff stack, so
    Stan's suggested grainsize 1 (as many slices as the scheduler likes) made irt_2pl and
    agent_family_interaction, whose shared vectors have one entry per task or per agent and
    family, slower with two threads than with one on cyber-horizons (0.9x)."""
    return 0 if threads == 1 else -(-cells // (4 * threads))


# Pointwise values (log_lik and y_rep, one per cell each) kept over all draws, above which a fit
# warns: 50 million is 0.4 GB as float64 and, through PyStan's JSON, several GB in transit.
LARGE_POINTWISE_OUTPUT = 50_000_000


def _warn_if_pointwise_output_large(model_name: str, cells: int, settings: SamplerSettings, backend: str) -> None:
    values = 2 * cells * settings.chains * settings.kept_draws
    if values <= LARGE_POINTWISE_OUTPUT:
        return
    thin = -(-values // LARGE_POINTWISE_OUTPUT) * settings.thin
    transit = " (several times that in transit through PyStan's JSON output)" if backend == "pystan" else ""
    log.warning("%s keeps log_lik and y_rep for %s cells in each of %s draws: %.1f GB as arrays%s. "
                "They dominate time and memory at this size; --thin %d keeps one draw in %d.",
                model_name, f"{cells:,}", f"{settings.chains * settings.kept_draws:,}", values * 8 / 1e9,
                transit, thin, thin)


@contextlib.contextmanager
def _build_lock(key: str) -> Iterator[None]:
    """One compilation of a program at a time across processes: two commands building the same
    program at once made httpstan fail with an empty message."""
    import fcntl

    directory = cache_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{key[:24]}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def program_data(model: ZooModel, data: dict[str, Any]) -> dict[str, Any]:
    """The contract data that ``model`` declares: optional variables only when it reads them."""
    from horizon_zoo.contract import OPTIONAL_DATA

    missing = [v.name for v in OPTIONAL_DATA if model.reads(v.name) and v.name not in data]
    if missing:
        raise DataError(f"model '{model.name}' reads {', '.join(missing)}, which this data does not provide.")
    optional = {v.name for v in OPTIONAL_DATA}
    return {k: v for k, v in data.items() if k not in optional or model.reads(k)}


# --- PyStan ---------------------------------------------------------------------------------


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


def _pystan_build_once(model: ZooModel, data: dict[str, Any], seed: int) -> Any:
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


def _sample_pystan(
    model: ZooModel,
    data: dict[str, Any],
    settings: SamplerSettings,
    inits: list[dict[str, Any]] | None,
    fixed_param: bool,
    progress: bool,
) -> Draws:
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


# --- CmdStanPy ------------------------------------------------------------------------------


def _sample_cmdstanpy(
    model: ZooModel,
    data: dict[str, Any],
    settings: SamplerSettings,
    inits: list[dict[str, Any]] | None,
    fixed_param: bool,
    output_dir: Path | None,
    progress: bool,
) -> Draws:
    import cmdstanpy

    # Built with STAN_THREADS so that reduce_sum can use threads_per_chain (one build serves both).
    # The executable loads TBB from the CmdStan it was built with, so that CmdStan (path and
    # version) is part of the key: a moved or upgraded CmdStan builds afresh.
    build_dir = cache_dir() / "cmdstan" / (f"{model.name}-{model.sha256[:16]}-threads-{STANC_OPTIMISATION}-"
                                           f"{_cmdstan_identity()}")
    build_dir.mkdir(parents=True, exist_ok=True)
    stan_file = build_dir / f"{model.name}.stan"
    if not stan_file.exists():
        stan_file.write_text(model.program, encoding="utf-8")
    exe = build_dir / model.name
    cached = exe.exists()
    broken = _executable_fault(exe) if cached else ""
    if broken:
        # A cached executable that no longer starts (its CmdStan's TBB gone, a damaged file):
        # removed and built once more; a second failure is an error like any other.
        log.warning("cached CmdStan executable of %s does not run (%s): removed, rebuilding it once", model.name,
                    broken)
        exe.unlink()
        cached = False
    if not cached:
        _say(f"compiling {model.name} with CmdStan (first time only)", progress)
    start = time.perf_counter()
    try:
        with _logger_to_debug("cmdstanpy"):  # its "compiling stan file ..." lines: our own line says it
            compiled_model = cmdstanpy.CmdStanModel(stan_file=str(stan_file),
                                                    cpp_options={"STAN_THREADS": "true"},
                                                    stanc_options={STANC_OPTIMISATION: True})
    except Exception as exc:
        raise BackendError(f"CmdStan could not compile {model.name}: {exc}") from None
    compiled = time.perf_counter()
    # CmdStan writes each chain's console output beside its CSV; in a folder of our own they can be
    # read when sampling fails (cmdstanpy's own temporary folder is gone by then).
    scratch = None if output_dir else tempfile.TemporaryDirectory(prefix="horizon_zoo_cmdstan_")
    csv_dir = Path(output_dir) if output_dir else Path(scratch.name)  # type: ignore[union-attr]
    try:
        return _cmdstan_sample(model, compiled_model, data, settings, inits, fixed_param, csv_dir, progress,
                               {"compile_s": compiled - start, "compile_cached": float(cached)})
    finally:
        if scratch is not None:
            scratch.cleanup()


def _cmdstan_sample(model: ZooModel, compiled_model: Any, data: dict[str, Any], settings: SamplerSettings,
                    inits: list[dict[str, Any]] | None, fixed_param: bool, csv_dir: Path, progress: bool,
                    timings: dict[str, float]) -> Draws:
    import cmdstanpy

    start = time.perf_counter()
    try:
        with _logger_to_debug("cmdstanpy"):  # "Non-fatal error during sampling" by the page, otherwise
            fit = compiled_model.sample(
                data=_jsonable(data),
                chains=settings.chains,
                parallel_chains=max(1, min(settings.chains, (os.cpu_count() or 1) // settings.threads_per_chain)),
                threads_per_chain=settings.threads_per_chain,
                iter_warmup=settings.warmup,
                iter_sampling=settings.draws,
                # CmdStanPy refuses adaptation without warmup (PyStan just skips it): say so.
                adapt_engaged=settings.warmup > 0 and not fixed_param,
                thin=settings.thin,
                seed=settings.seed,
                adapt_delta=None if fixed_param else settings.adapt_delta,
                max_treedepth=None if fixed_param else settings.max_treedepth,
                adapt_init_phase=None if fixed_param else settings.init_buffer,
                adapt_metric_window=None if fixed_param else settings.metric_window,
                inits=[_jsonable(i) for i in inits] if inits is not None else settings.init_radius,
                fixed_param=fixed_param,
                output_dir=str(csv_dir),
                show_progress=progress and sys.stderr.isatty(),
            )
    except Exception as exc:
        reason = _cmdstan_failure_reason(csv_dir)
        raise BackendError(f"CmdStan sampling of {model.name} failed: {reason or exc}") from None
    sampled = time.perf_counter()
    chains, n_draws = settings.chains, settings.kept_draws
    variables = {}
    for name in variable_names(model):
        flat = np.asarray(fit.stan_variable(name))  # (chains * draws, *dims), chain-major
        variables[name] = flat.reshape(chains, n_draws, *flat.shape[1:])
    stats = {}
    for stan_name, values in fit.method_variables().items():  # (draws, chains[, 1])
        if stan_name in STAT_NAMES:
            stats[STAT_NAMES[stan_name]] = np.asarray(values).reshape(n_draws, chains).T
    return Draws(
        variables=_cast_ints(model, variables),
        stats=_cast_stats(stats),
        backend="cmdstanpy",
        backend_version=f"{_version('cmdstanpy')} (CmdStan {_version_text(cmdstanpy.cmdstan_version())})",
        timings={**timings, "sample_s": sampled - start},
    )


def _executable_fault(exe: Path) -> str:
    """Why a compiled CmdStan model does not start (the loader's or the system's message), or ""
    when its ``info`` method runs (a few milliseconds)."""
    import subprocess

    try:
        done = subprocess.run([str(exe), "info"], capture_output=True, text=True, timeout=60, errors="replace")
    except OSError as exc:  # e.g. "Exec format error" for a file that is not an executable
        return exc.strerror or str(exc)
    except subprocess.TimeoutExpired:
        return "its 'info' method did not answer within 60 s"
    if done.returncode == 0:
        return ""
    text = " ".join((done.stderr or done.stdout).split())
    return f"exit {done.returncode}: {text[:300]}" if text else f"exit {done.returncode}"


def _version_text(version: Any) -> str:
    """``2.36`` whether cmdstanpy reports the version as a tuple (2, 36) or a string."""
    return ".".join(map(str, version)) if isinstance(version, (tuple, list)) else str(version)


def _cmdstan_failure_reason(csv_dir: Path) -> str:
    """The lines of CmdStan's console output that say why sampling failed (e.g. "Initialization
    failed" and the exception behind it), from the chains' stdout files in ``csv_dir``."""
    keys = ("Initialization failed", "Rejecting initial value", "Exception", "Error", "error")
    lines: list[str] = []
    for path in sorted(csv_dir.glob("*stdout*.txt")):
        for line in path.read_text(errors="replace").splitlines():
            line = line.strip()
            if any(k in line for k in keys) and line not in lines:
                lines.append(line)
    return "\n".join(lines[-6:])


@contextlib.contextmanager
def _logger_to_debug(name: str) -> Iterator[None]:
    """Send what logger ``name`` says while the block runs to this module's debug log instead."""
    target = logging.getLogger(name)

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.debug("%s: %s", name, record.getMessage())

    saved = (target.propagate, list(target.handlers))
    target.propagate, target.handlers = False, [Forward()]
    try:
        yield
    finally:
        target.propagate, target.handlers = saved


# --- shared helpers -------------------------------------------------------------------------


def _cmdstan_identity() -> str:
    """A short hash of the CmdStan in use (its resolved path and version)."""
    import hashlib

    import cmdstanpy

    path = os.path.realpath(cmdstanpy.cmdstan_path())
    version = ".".join(map(str, cmdstanpy.utils.cmdstan_version() or ()))
    return hashlib.sha256(f"{path}|{version}".encode()).hexdigest()[:10]


def _cast_ints(model: ZooModel, variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Give int variables an int dtype and scalars the shape (chain, draw): backends differ."""
    info = model.info
    blocks = ("parameters", "transformed parameters", "generated quantities")
    entries = {n: v for b in blocks for n, v in info.get(b, {}).items()}
    out = {}
    for name, values in variables.items():
        if entries[name].get("dimensions") == 0:
            values = values.reshape(values.shape[:2])
        out[name] = np.rint(values).astype(np.int64) if entries[name].get("type") == "int" else values
    return out


def _cast_stats(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sampler statistics as (chain, draw) arrays of ArviZ's types, whichever backend gave them
    (PyStan's carry a trailing axis of length 1, which became an extra ``<stat>_dim_0`` dim)."""
    out = {}
    for name, values in stats.items():
        values = np.asarray(values)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if name == "diverging":
            out[name] = values.astype(bool)
        elif name in _INT_STATS:
            out[name] = np.rint(values).astype(np.int64)
        else:
            out[name] = values.astype(float)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


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


@contextlib.contextmanager
def _captured_fd2() -> Iterator[list[str]]:
    """Send file descriptor 2 (C++ compiler output) to a temporary file while the block runs.

    Yields a one-element list that holds the captured text once the block has ended.
    """
    with tempfile.NamedTemporaryFile(prefix="horizon-zoo-build-", suffix=".log", delete=False) as tmp:
        path = Path(tmp.name)
    captured = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("wb") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        captured[0] = path.read_text(errors="replace")
        path.unlink(missing_ok=True)


def _say(message: str, enabled: bool) -> None:
    if enabled:
        log.info(message)
