"""What both backends share: the sampler settings, the backend-independent draws, the cache
directory, the contract data a program reads, and the conversions of either backend's output."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from horizon_zoo.errors import DataError

log = logging.getLogger("horizon_zoo.backends")

# Stan's default init radius: initial values uniform in (-2, 2) on the unconstrained scale.
STAN_INIT_RADIUS = 2.0

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


class Program(Protocol):
    """What a backend needs of a model: the registry's ZooModel is one. Named here, not imported,
    so that the backends do not depend on the registry (which depends on them for stanc)."""

    name: str
    info: dict[str, Any]  # stanc --info of the program

    @property
    def program(self) -> str:
        """The Stan program as compiled (includes expanded)."""
        ...

    @property
    def sha256(self) -> str:
        """The compile cache's key of the program."""
        ...

    def reads(self, variable: str) -> bool:
        """Whether the program declares data variable ``variable``."""
        ...


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


def variable_names(model: Program) -> list[str]:
    """Program variables that are saved with each draw, in declaration order."""
    info = model.info
    return [*info.get("parameters", {}), *info.get("transformed parameters", {}),
            *info.get("generated quantities", {})]


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


def program_data(model: Program, data: dict[str, Any]) -> dict[str, Any]:
    """The contract data that ``model`` declares: optional variables only when it reads them."""
    from horizon_zoo.contract import OPTIONAL_DATA

    missing = [v.name for v in OPTIONAL_DATA if model.reads(v.name) and v.name not in data]
    if missing:
        raise DataError(f"model '{model.name}' reads {', '.join(missing)}, which this data does not provide.")
    optional = {v.name for v in OPTIONAL_DATA}
    return {k: v for k, v in data.items() if k not in optional or model.reads(k)}


def _cast_ints(model: Program, variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
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
