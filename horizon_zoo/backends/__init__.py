"""Stan backends: CmdStanPy when CmdStan is installed, PyStan otherwise.

Both backends return the same :class:`Draws` (arrays shaped ``(chain, draw, *dims)`` and the
sampler's diagnostics under ArviZ names), so everything after sampling is backend-agnostic.
Compiled programs are cached: PyStan/httpstan keys its cache by program text, and CmdStan
executables are kept under :func:`cache_dir` keyed by the program's hash. Both backends compile
with stanc's optimisation level ``--O1`` (:data:`STANC_OPTIMISATION`).

``common`` holds what both share, ``cmdstanpy`` and ``pystan`` one backend each (every use of
PyStan's and httpstan's internals is in ``pystan``), ``toolchain`` where httpstan's wheel keeps
the Stan compiler and libraries.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from horizon_zoo.backends import cmdstanpy, pystan
from horizon_zoo.backends.cmdstanpy import cmdstan_available, cmdstan_location
from horizon_zoo.backends.common import (
    BACKENDS,
    LARGE_POINTWISE_OUTPUT,
    STAN_INIT_RADIUS,
    STANC_OPTIMISATION,
    STAT_NAMES,
    BackendName,
    Draws,
    Program,
    SamplerSettings,
    _warn_if_pointwise_output_large,
    cache_dir,
    cache_subdir,
    grainsize,
    program_data,
    variable_names,
)
from horizon_zoo.backends.pystan import pystan_available, pystan_build
from horizon_zoo.errors import BackendError

__all__ = [
    "BACKENDS", "LARGE_POINTWISE_OUTPUT", "STAN_INIT_RADIUS", "STANC_OPTIMISATION", "STAT_NAMES", "BackendName",
    "Draws", "SamplerSettings", "available_backends", "cache_dir", "cache_subdir", "cmdstan_available",
    "cmdstan_location", "grainsize", "program_data", "pystan_available", "pystan_build", "resolve_backend",
    "sample", "variable_names",
]


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


def sample(
    model: Program,
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
        return cmdstanpy.sample(model, data, settings, inits, fixed_param, output_dir, progress)
    return pystan.sample(model, data, settings, inits, fixed_param, progress)
