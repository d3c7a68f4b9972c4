"""The CmdStanPy backend: CmdStan executables cached per program, threading and CmdStan."""

from __future__ import annotations

import contextlib
import io
import logging
import os
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
    _cast_ints,
    _cast_stats,
    _jsonable,
    _say,
    _version,
    cache_dir,
    log,
    variable_names,
)
from horizon_zoo.errors import BackendError


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




def sample(
    model: Program,
    data: dict[str, Any],
    settings: SamplerSettings,
    inits: list[dict[str, Any]] | None,
    fixed_param: bool,
    output_dir: Path | None,
    progress: bool,
) -> Draws:
    """Compile (cached under :func:`cache_dir`) and sample ``model`` with CmdStan; see :func:`horizon_zoo.backends.sample`."""
    import cmdstanpy

    build_dir = build_dir_of(model)
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


def _cmdstan_sample(model: Program, compiled_model: Any, data: dict[str, Any], settings: SamplerSettings,
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




def build_dir_of(model: Program) -> Path:
    """The cache folder of ``model``'s CmdStan executable. Built with STAN_THREADS so that
    reduce_sum can use threads_per_chain (one build serves both). The executable loads TBB from
    the CmdStan it was built with, so that CmdStan (path and version) is part of the key: a moved
    or upgraded CmdStan builds afresh."""
    return cache_dir() / "cmdstan" / (f"{model.name}-{model.sha256[:16]}-threads-{STANC_OPTIMISATION}-"
                                      f"{_cmdstan_identity()}")


def _cmdstan_identity() -> str:
    """A short hash of the CmdStan in use (its resolved path and version)."""
    import hashlib

    import cmdstanpy

    path = os.path.realpath(cmdstanpy.cmdstan_path())
    version = ".".join(map(str, cmdstanpy.utils.cmdstan_version() or ()))
    return hashlib.sha256(f"{path}|{version}".encode()).hexdigest()[:10]
