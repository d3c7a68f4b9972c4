"""The model contract: the one definition of what every zoo Stan program reads and exposes.

Every program in ``stan_models/`` declares exactly the data variables in :data:`DATA` and
exposes at least the generated quantities in :data:`GENERATED`.  Everything downstream
(fitting, horizons, checks, comparison) relies only on this contract, so adding a model needs
no Python change.  ``stan_models/README.md`` embeds :func:`contract_markdown`; a test keeps the
two identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from horizon_zoo.data import RunData


@dataclass(frozen=True)
class Variable:
    """One variable of the contract, as Stan declares it and as ArviZ labels it."""

    name: str
    declaration: str
    base_type: Literal["int", "real"]
    dims: tuple[str, ...]
    meaning: str

    @property
    def ndim(self) -> int:
        return len(self.dims)


# Dimension names are shared by Stan sizes and ArviZ dims: ``cell`` has size N, etc.
SIZE_OF_DIM = {"cell": "N", "agent": "A", "task": "T", "family": "F", "grid": "G"}

DATA: tuple[Variable, ...] = (
    Variable("N", "int<lower=1> N", "int", (), "number of binomial cells (agent x task pairs with runs)"),
    Variable("A", "int<lower=1> A", "int", (), "number of agents"),
    Variable("T", "int<lower=1> T", "int", (), "number of tasks"),
    Variable("F", "int<lower=1> F", "int", (), "number of task families"),
    Variable("agent", "array[N] int<lower=1, upper=A> agent", "int", ("cell",), "agent of each cell"),
    Variable("task", "array[N] int<lower=1, upper=T> task", "int", ("cell",), "task of each cell"),
    Variable("family", "array[T] int<lower=1, upper=F> family", "int", ("task",), "family of each task"),
    Variable("log_minutes", "vector[T] log_minutes", "real", ("task",),
             "natural log of the human time for each task, in minutes"),
    Variable("n_runs", "array[N] int<lower=1> n_runs", "int", ("cell",), "runs in each cell"),
    Variable("n_success", "array[N] int<lower=0> n_success", "int", ("cell",),
             "successful runs in each cell (score_binarized = 1)"),
    Variable("weight", "vector<lower=0>[N] weight", "real", ("cell",),
             "likelihood weight of each cell: all 1 unless METR task weights are asked for; "
             "all 0 samples the prior"),
    Variable("G", "int<lower=1> G", "int", (), "number of grid points for curves"),
    Variable("log_minutes_grid", "vector[G] log_minutes_grid", "real", ("grid",),
             "natural log of task length in minutes at each grid point, increasing"),
)

# Optional data: Python provides them when it can; only the models that need them declare them,
# and fitting such a model without them is an error that names what is missing.
OPTIONAL_DATA: tuple[Variable, ...] = (
    Variable("release_year", "vector[A] release_year", "real", ("agent",),
             "release date of each agent in decimal years (2024.5 is early July 2024); only models "
             "of the trend over release dates declare it (needs --release-dates)"),
    Variable("grainsize", "int<lower=0> grainsize", "int", (),
             "cells per `reduce_sum` slice when chains run with several threads "
             "(`threads_per_chain` > 1); 0 sums the likelihood in one thread. Set by the backend "
             "layer from the sampler settings, read only by the models that thread their likelihood"),
)

GENERATED: tuple[Variable, ...] = (
    Variable("log_lik", "vector[N] log_lik", "real", ("cell",),
             "weighted binomial log likelihood of each cell (for PSIS-LOO)"),
    Variable("y_rep", "array[N] int y_rep", "int", ("cell",),
             "replicated successes of each cell (posterior predictive)"),
    Variable("p_curve", "matrix[A, G] p_curve", "real", ("agent", "grid"),
             "agent's success probability on a new task of each grid length, marginal over "
             "task-level random effects where the model has them"),
)

# Optional generated quantities that downstream code uses when a model provides them.
OPTIONAL_GENERATED: tuple[Variable, ...] = (
    Variable("p_curve_typical", "matrix[A, G] p_curve_typical", "real", ("agent", "grid"),
             "success probability on a typical task (all task-level offsets 0)"),
)

SECONDS_PER_MINUTE = 60.0
DEFAULT_GRID_MIN_MINUTES = 1.0 / SECONDS_PER_MINUTE  # one second
DEFAULT_GRID_MAX_MINUTES = 30.0 * 24.0 * 60.0  # one month of wall-clock time
DEFAULT_GRID_SIZE = 121


def default_grid(
    size: int = DEFAULT_GRID_SIZE,
    lo_minutes: float = DEFAULT_GRID_MIN_MINUTES,
    hi_minutes: float = DEFAULT_GRID_MAX_MINUTES,
) -> np.ndarray:
    """Return the log-minute grid for ``p_curve``: ``size`` points evenly spaced in log length.

    The default spans one second to one month, about 5.7 points per doubling.
    """
    if size < 2 or not (0 < lo_minutes < hi_minutes):
        raise ValueError("grid needs at least 2 points and 0 < lo_minutes < hi_minutes")
    return np.linspace(np.log(lo_minutes), np.log(hi_minutes), size)


def stan_data(run_data: RunData, grid: np.ndarray | None = None) -> dict[str, Any]:
    """Build the Stan data dictionary of the contract from aggregated run data.

    Parameters
    ----------
    run_data
        Validated, aggregated runs from :func:`horizon_zoo.data.load_runs`.
    grid
        Natural-log minutes for ``p_curve``; defaults to :func:`default_grid`.

    Returns
    -------
    dict
        One entry per variable of :data:`DATA`, as plain Python/NumPy values, plus
        ``release_year`` when every agent of ``run_data`` has a release date.
    """
    grid = default_grid() if grid is None else np.asarray(grid, dtype=float)
    cells, tasks = run_data.cells, run_data.tasks
    agent_index = {a: i + 1 for i, a in enumerate(run_data.agents)}
    task_index = {t: i + 1 for i, t in enumerate(tasks["task_id"])}
    family_index = {f: i + 1 for i, f in enumerate(run_data.families)}
    data = {
        "N": len(cells),
        "A": len(run_data.agents),
        "T": len(tasks),
        "F": len(run_data.families),
        "agent": cells["agent"].map(agent_index).to_numpy(dtype=int),
        "task": cells["task_id"].map(task_index).to_numpy(dtype=int),
        "family": tasks["task_family"].map(family_index).to_numpy(dtype=int),
        "log_minutes": np.log(tasks["human_minutes"].to_numpy(dtype=float)),
        "n_runs": cells["n_runs"].to_numpy(dtype=int),
        "n_success": cells["n_success"].to_numpy(dtype=int),
        "weight": cells["weight"].to_numpy(dtype=float),
        "G": len(grid),
        "log_minutes_grid": grid,
    }
    dates = run_data.release_dates or {}
    if dates and all(a in dates for a in run_data.agents):
        from horizon_zoo.release_dates import decimal_year

        data["release_year"] = np.array([decimal_year(dates[a]) for a in run_data.agents])
    check_stan_data(data)
    return data


def check_stan_data(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``data`` does not have the contract's names, types and sizes."""
    missing = [v.name for v in DATA if v.name not in data]
    extra = sorted(set(data) - {v.name for v in DATA + OPTIONAL_DATA})
    if missing or extra:
        raise ValueError(f"Stan data: missing {missing}, unexpected {extra}")
    for var in DATA + tuple(v for v in OPTIONAL_DATA if v.name in data):
        value = np.asarray(data[var.name])
        expected = tuple(int(data[SIZE_OF_DIM[d]]) for d in var.dims)
        if value.shape != expected:
            raise ValueError(f"Stan data: {var.name} has shape {value.shape}, expected {expected}")
        if var.base_type == "int" and value.size and not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"Stan data: {var.name} must be integer, got {value.dtype}")
    if np.any(np.asarray(data["n_success"]) > np.asarray(data["n_runs"])):
        raise ValueError("Stan data: n_success exceeds n_runs in some cell")
    if np.any(np.diff(np.asarray(data["log_minutes_grid"])) <= 0):
        raise ValueError("Stan data: log_minutes_grid must be strictly increasing")


def check_program_interface(info: dict[str, Any]) -> list[str]:
    """Compare a program's ``stanc --info`` output with the contract.

    Returns a list of human-readable problems; empty when the program complies.
    """
    problems: list[str] = []
    inputs = info.get("inputs", {})
    contract_names = {v.name for v in DATA + OPTIONAL_DATA}
    for var in DATA + OPTIONAL_DATA:
        if var.name not in inputs:
            if var in OPTIONAL_DATA:
                continue
            problems.append(f"data block lacks `{var.declaration};` ({var.meaning})")
            continue
        got = inputs[var.name]
        if got.get("type") != var.base_type or got.get("dimensions") != var.ndim:
            problems.append(
                f"data variable `{var.name}` is {_describe(got)}, the contract declares "
                f"`{var.declaration}`"
            )
    for name in sorted(set(inputs) - contract_names):
        problems.append(
            f"data block declares `{name}`, which the contract does not provide "
            f"(allowed: {', '.join(v.name for v in DATA + OPTIONAL_DATA)})"
        )
    gq = info.get("generated quantities", {})
    for var in GENERATED + OPTIONAL_GENERATED:
        required = var in GENERATED
        if var.name not in gq:
            if required:
                problems.append(f"generated quantities lack `{var.declaration};` ({var.meaning})")
            continue
        got = gq[var.name]
        if got.get("type") != var.base_type or got.get("dimensions") != var.ndim:
            problems.append(
                f"generated quantity `{var.name}` is {_describe(got)}, the contract declares "
                f"`{var.declaration}`"
            )
    return problems


def _describe(stanc_entry: dict[str, Any]) -> str:
    return f"{stanc_entry.get('type')} with {stanc_entry.get('dimensions')} dimension(s)"


def expected_shape(var: Variable, data: dict[str, Any]) -> tuple[int, ...]:
    """Shape of one draw of ``var`` for the given Stan data."""
    return tuple(int(data[SIZE_OF_DIM[d]]) for d in var.dims)


def contract_markdown() -> str:
    """The contract as Markdown tables (embedded verbatim in ``stan_models/README.md``)."""
    lines = ["| data variable | Stan declaration | required | meaning |", "|---|---|---|---|"]
    lines += [f"| `{v.name}` | `{v.declaration}` | {'yes' if v in DATA else 'optional'} | {v.meaning} |"
              for v in DATA + OPTIONAL_DATA]
    lines += ["", "| generated quantity | Stan declaration | ArviZ dims | required | meaning |",
              "|---|---|---|---|---|"]
    for v in GENERATED + OPTIONAL_GENERATED:
        required = "yes" if v in GENERATED else "optional"
        lines.append(f"| `{v.name}` | `{v.declaration}` | {', '.join(v.dims)} | {required} | {v.meaning} |")
    return "\n".join(lines) + "\n"
