"""Fit one zoo model to run data: sample, label, diagnose and save with provenance.

A saved fit is two files in a run directory: ``<model>.nc`` (the ArviZ DataTree) and
``<model>.json`` (a sidecar with model hash, data fingerprint, backend, seed, settings, timings,
diagnostics and named ``checks_made``), written atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import arviz_base as azb
import numpy as np
import xarray as xr

from horizon_zoo import __version__
from horizon_zoo.backends import Draws, SamplerSettings, sample
from horizon_zoo.contract import stan_data
from horizon_zoo.data import RunData
from horizon_zoo.diagnostics import Diagnostics, diagnose
from horizon_zoo.errors import DataError
from horizon_zoo.registry import ZooModel
from horizon_zoo.rundir import atomic_path, atomic_write_text


@dataclass
class Fit:
    """A fitted model: the labelled draws, their diagnostics and provenance."""

    model: ZooModel
    idata: xr.DataTree
    diagnostics: Diagnostics
    info: dict[str, Any]


def settings_for(model: ZooModel, settings: SamplerSettings) -> SamplerSettings:
    """The settings ``model`` is sampled with: adapt_delta raised to its header's minimum, and the
    init radius lowered to its header's maximum."""
    return replace(settings, adapt_delta=max(settings.adapt_delta, model.min_adapt_delta),
                   init_radius=min(settings.init_radius, model.max_init_radius))


def fit_model(
    model: ZooModel,
    run_data: RunData,
    *,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    grid: np.ndarray | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
    inits: list[dict[str, Any]] | None = None,
) -> Fit:
    """Sample ``model`` on ``run_data`` and diagnose the fit; save it when ``out_dir`` is given.

    ``inits`` optionally gives one dict of initial values per chain.
    """
    settings = settings_for(model, settings or SamplerSettings())
    data = stan_data(run_data, grid)
    if model.reads("release_year") and "release_year" not in data:
        undated = [a for a in run_data.agents if a not in (run_data.release_dates or {})]
        raise DataError(
            f"model '{model.name}' reads release_year: it needs a release date for every agent "
            f"(give --release-dates FILE); missing for {len(undated)} agent(s): {', '.join(undated[:8])}"
            + (" ..." if len(undated) > 8 else "") + ".")
    start = time.perf_counter()
    # CmdStan's CSV files are not kept: the saved DataTree holds the draws (keeping both doubled a
    # run directory's size)
    draws = sample(model, data, settings, backend=backend, progress=progress, inits=inits)
    idata = to_datatree(draws, model, data, run_data)
    diagnostics = diagnose(idata, list(model.info.get("parameters", {})), settings.max_treedepth)
    info = {
        "status": "complete",
        "model": model.name,
        "model_path": str(model.path),
        "model_sha256": model.sha256,
        "data_source": run_data.source,
        "data_fingerprint": run_data.fingerprint(),
        "backend": draws.backend,
        "backend_version": draws.backend_version,
        "settings": settings.as_dict(),
        "timings": {**draws.timings, "total_s": time.perf_counter() - start},
        "diagnostics": diagnostics.as_dict(),
        "release_dates": ({a: d.isoformat() for a, d in run_data.release_dates.items()}
                          if "release_year" in data and run_data.release_dates else None),
        "horizon_zoo_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    result = Fit(model=model, idata=idata, diagnostics=diagnostics, info=info)
    if out_dir is not None:
        save_fit(result, out_dir)
    return result


def to_datatree(draws: Draws, model: ZooModel, data: dict[str, Any], run_data: RunData) -> xr.DataTree:
    """Label backend draws as an ArviZ DataTree with the contract's dims and coordinates.

    Both backends go through this one function, so their outputs have identical groups, names,
    dims and coordinates.
    """
    posterior = {k: v for k, v in draws.variables.items() if k not in ("log_lik", "y_rep")}
    cells = run_data.cells
    coords = {
        "agent": list(run_data.agents),
        "task": run_data.tasks["task_id"].tolist(),
        "family": list(run_data.families),
        "cell": np.arange(data["N"]),
        "grid": np.exp(np.asarray(data["log_minutes_grid"])),
    }
    dims = {
        **model.dims(),
        "n_success": ["cell"], "n_runs": ["cell"], "weight": ["cell"],
        "log_minutes": ["task"], "log_minutes_grid": ["grid"],
        "agent_index": ["cell"], "task_index": ["cell"], "family_index": ["task"],
    }
    groups = {
        "posterior": posterior,
        "posterior_predictive": {"y_rep": draws.variables["y_rep"].astype(np.int32)},
        "log_likelihood": {"log_lik": draws.variables["log_lik"]},
        "sample_stats": draws.stats,
        "observed_data": {"n_success": np.asarray(data["n_success"]), "n_runs": np.asarray(data["n_runs"])},
        "constant_data": {
            "agent_index": np.asarray(data["agent"]), "task_index": np.asarray(data["task"]),
            "family_index": np.asarray(data["family"]), "log_minutes": np.asarray(data["log_minutes"]),
            "weight": np.asarray(data["weight"]), "log_minutes_grid": np.asarray(data["log_minutes_grid"]),
        },
    }
    if "release_year" in data:
        groups["constant_data"]["release_year"] = np.asarray(data["release_year"])
        dims["release_year"] = ["agent"]
    attrs = {"model": model.name, "backend": draws.backend, "backend_version": draws.backend_version}
    idata = azb.from_dict(groups, coords=coords, dims=dims)
    idata.attrs.update(attrs)
    # Readers of per-cell output want to know whose cell it is without a join.
    cell_coords = {"cell_agent": ("cell", cells["agent"].to_numpy(dtype=str)),
                   "cell_task": ("cell", cells["task_id"].to_numpy(dtype=str))}
    for group in ("posterior_predictive", "log_likelihood", "observed_data"):
        idata[group] = idata[group].to_dataset().assign_coords(cell_coords)
    idata["constant_data"] = idata["constant_data"].to_dataset().assign_coords(
        task_family=("task", run_data.tasks["task_family"].to_numpy(dtype=str)))
    return idata


def save_fit(result: Fit, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<model>.nc`` and its JSON sidecar atomically; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    nc = out_dir / f"{result.model.name}.nc"
    sidecar = out_dir / f"{result.model.name}.json"
    with atomic_path(nc) as tmp:
        result.idata.to_netcdf(tmp, engine="netcdf4", encoding=_compression(result.idata))
    atomic_write_text(sidecar, json.dumps(result.info, indent=2, default=_json_default) + "\n")
    return nc, sidecar


def load_fit(nc_path: str | Path) -> tuple[xr.DataTree, dict[str, Any]]:
    """Read a saved fit and its sidecar."""
    nc_path = Path(nc_path)
    with xr.open_datatree(nc_path, engine="netcdf4") as saved:  # closed: the file may be rewritten later
        idata = saved.load()
    info = json.loads(nc_path.with_suffix(".json").read_text())
    return idata, info


# Pointwise and curve draws dominate a fit's file (one log_lik and y_rep per cell per draw, one
# curve point per agent per grid point per draw), and models with effects per task or per agent
# and family add parameter draws of the same order. Floats are stored as float32 quantised to the
# significant digits they need: log_lik 4 (a PSIS-LOO elpd moves by about 1e-3, far below its SE),
# the curves 3 (a horizon moves by a small fraction of its interval: tests/test_trend.py bounds it
# at 1% of the interval's width), other posterior draws 4 (R-hat and ESS are unchanged to their
# printed digits); y_rep in the smallest unsigned integer that holds it; sampler statistics and
# data as they are. Compression: zlib level 4 with the byte shuffle (integers and quantised floats
# then have runs of zero bytes), and bzip2 for the curves, which are smooth along the grid, and for
# y_rep, whose small counts it packs tighter than zlib. Each chunk holds every chain and draw of a
# few cells (or grid points): one cell's draws share sign and exponent, so a chunk of them
# compresses better than HDF5's default chunks, which cut across cells (log_lik -7%, y_rep -34%,
# curves -19% on a logistic fit of the embedded data; 512 KB chunks beat 1 and 2 MB ones). Sizes and
# timings before and after, and the elpd change, on real fits: docs/benchmarks.md, "Disk per saved
# fit".
_SIGNIFICANT_DIGITS = {"log_lik": 4, "p_curve": 3, "p_curve_typical": 3}
_POSTERIOR_DIGITS = 4
_BZIP2 = ("p_curve", "p_curve_typical", "y_rep")
_CHUNK_BYTES = 2**19


def _compression(idata: xr.DataTree) -> dict[str, dict[str, dict[str, Any]]]:
    import netCDF4

    # Level 4: half the size gain of level 9 at a tenth of its time; level 1 was 7% larger.
    zlib = {"zlib": True, "complevel": 4, "shuffle": True}
    # bzip2 is an HDF5 plugin that netCDF4's wheels ship; where it is missing, zlib serves
    bzip2 = {"compression": "bzip2", "complevel": 9} if netCDF4.__has_bzip2_support__ else zlib
    encoding = {}
    for node in idata.subtree:
        if not node.has_data:
            continue
        encoding[node.path] = {}
        for name, var in node.data_vars.items():
            enc: dict[str, Any] = dict(bzip2 if name in _BZIP2 else zlib)
            digits = _SIGNIFICANT_DIGITS.get(name) or (_POSTERIOR_DIGITS if node.path == "/posterior" else None)
            if digits and np.issubdtype(var.dtype, np.floating):
                enc.update(dtype="float32", quantize_mode="GranularBitRound", significant_digits=digits)
            elif name == "y_rep":
                top = int(var.max()) if var.size else 0
                enc["dtype"] = "uint8" if top < 2**8 else "uint16" if top < 2**16 else "int32"
            if var.dims[:2] == ("chain", "draw") and var.ndim >= 3 and var.size:
                itemsize = np.dtype(enc.get("dtype", var.dtype)).itemsize
                per_cell = var.shape[0] * var.shape[1] * itemsize
                last = max(1, min(var.shape[-1], _CHUNK_BYTES // per_cell))
                enc["chunksizes"] = (*var.shape[:2], *[1] * (var.ndim - 3), last)
            encoding[node.path][name] = enc
    return encoding


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
