"""The user-facing operations as plain functions (the CLI is a thin layer over these).

``load`` reads runs (or simulates the embedded default), ``fit`` fits one model, ``compare``
fits several and writes a run directory with the LOO comparison, horizon and diagnostics tables.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from horizon_zoo import __version__
from horizon_zoo.backends import SamplerSettings, resolve_backend
from horizon_zoo.compare import loo_compare
from horizon_zoo.contract import default_grid
from horizon_zoo.data import DEFAULT_EXCLUDED_AGENTS, DEFAULT_MAX_MINUTES_RATIO, RunData, Weights, load_runs
from horizon_zoo.errors import HorizonZooError
from horizon_zoo.fit import Fit, fit_model
from horizon_zoo.horizons import DEFAULT_QS, horizon_table, wide_horizon_table
from horizon_zoo.registry import ZooModel, discover, resolve
from horizon_zoo.rundir import atomic_write_text, new_run_dir, write_table
from horizon_zoo.simulate import DEFAULT_SEED, default_runs

log = logging.getLogger(__name__)


@dataclass
class CompareResult:
    """What ``compare`` produced: fits, tables, and where they were written."""

    run_dir: Path | None
    data: RunData
    fits: dict[str, Fit]
    loo: pd.DataFrame
    horizons: pd.DataFrame
    diagnostics: pd.DataFrame
    failed: dict[str, str] = field(default_factory=dict)


def load(
    runs: str | Path | None = None,
    *,
    agents: Sequence[str] | None = None,
    exclude_agents: Sequence[str] = DEFAULT_EXCLUDED_AGENTS,
    task_sources: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    weights: Weights | None = None,
    max_minutes_ratio: float = DEFAULT_MAX_MINUTES_RATIO,
) -> RunData:
    """Load a METR-format run file, or the embedded default dataset when ``runs`` is None."""
    filters = dict(include_agents=agents, exclude_agents=exclude_agents, task_sources=task_sources,
                   families=families, weights=weights, max_minutes_ratio=max_minutes_ratio)
    if runs is None:
        return load_runs(default_runs(), source=f"embedded default dataset (seed {DEFAULT_SEED})", **filters)
    return load_runs(runs, **filters)


def select_models(models: Sequence[str] | None = None, models_dir: str | Path | None = None) -> list[ZooModel]:
    """Zoo models by name or ``.stan`` path; all of the zoo when ``models`` is empty."""
    if not models:
        found = list(discover(models_dir).values())
        if not found:
            raise HorizonZooError(f"no .stan models found in {models_dir or 'stan_models/'}.")
        return found
    return [resolve(m, models_dir) for m in models]


def fit(
    model: str | ZooModel = "logistic",
    runs: str | Path | RunData | None = None,
    *,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> Fit:
    """Fit one model (name, path or :class:`ZooModel`) to runs (path, RunData or the default)."""
    zoo_model = model if isinstance(model, ZooModel) else resolve(model)
    data = runs if isinstance(runs, RunData) else load(runs)
    return fit_model(zoo_model, data, settings=settings, backend=backend,
                     out_dir=Path(out_dir) if out_dir else None, progress=progress)


def compare(
    runs: str | Path | RunData | None = None,
    *,
    models: Sequence[str] | None = None,
    models_dir: str | Path | None = None,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    qs: Sequence[float] = DEFAULT_QS,
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    command: str | None = None,
    run_name: str = "compare",
) -> CompareResult:
    """Fit every selected model and compare them: LOO table, horizons and diagnostics.

    Parameters
    ----------
    runs
        A run file, a :class:`RunData`, or None for the embedded default dataset.
    models, models_dir
        Model names or ``.stan`` paths (default: the whole zoo) and where to find the zoo.
    settings, backend
        Sampler settings and Stan backend (``auto``, ``cmdstanpy`` or ``pystan``).
    qs
        Success probabilities for the horizon table.
    out, runs_root, write, run_name
        Run directory (``out``), or a new ``<runs_root>/<timestamp>-<run_name>``;
        ``write=False`` keeps everything in memory.
    progress, command
        Show progress on stderr; the command line recorded in ``manifest.json``.
    """
    settings = settings or SamplerSettings()
    backend = resolve_backend(backend)
    data = runs if isinstance(runs, RunData) else load(runs)
    for warning in data.warnings:
        log.warning(warning)
    zoo = select_models(models, models_dir)
    run_dir = new_run_dir(run_name, runs_root, out) if write else None
    manifest = _manifest(command, data, zoo, settings, backend)
    if run_dir:
        _write_data_summary(data, run_dir)
        _write_manifest(run_dir, manifest)
        log.info("writing to %s", run_dir)
    fits: dict[str, Fit] = {}
    failed: dict[str, str] = {}
    try:
        for i, model in enumerate(zoo, start=1):
            log.info("[%d/%d] %s: %d chains x %d draws (%s)", i, len(zoo), model.name,
                     settings.chains, settings.draws, backend)
            start = time.perf_counter()
            try:
                result = fit_model(model, data, settings=settings, backend=backend,
                                   out_dir=run_dir / "fits" if run_dir else None, progress=progress)
            except HorizonZooError as exc:  # one broken model should not sink the comparison
                failed[model.name] = str(exc)
                log.error("%s failed: %s", model.name, exc)
                continue
            fits[model.name] = result
            d = result.diagnostics
            log.info("[%d/%d] %s: done in %.0f s; diagnostics %s (max R-hat %.3f, min bulk ESS %.0f, "
                     "%d divergences)%s", i, len(zoo), model.name, time.perf_counter() - start, d.verdict,
                     d.max_rhat, d.min_ess_bulk, d.divergences,
                     "" if not d.problems else ": " + "; ".join(d.problems))
    except KeyboardInterrupt:
        if run_dir:
            _write_manifest(run_dir, {**manifest, "status": "interrupted", "completed": sorted(fits)})
        raise
    if not fits:
        raise HorizonZooError("every model failed; see the messages above.")
    loo_table = loo_compare({n: f.idata for n, f in fits.items()})
    horizons = pd.concat(
        [horizon_table(f.idata, qs).assign(model=n) for n, f in fits.items()], ignore_index=True
    )[lambda t: ["model", *[c for c in t.columns if c != "model"]]]
    diagnostics = diagnostics_table(fits)
    result = CompareResult(run_dir, data, fits, loo_table, horizons, diagnostics, failed)
    if run_dir:
        _write_tables(result, run_name, manifest["command"])
        _write_manifest(run_dir, {**manifest, "status": "complete", "completed": sorted(fits),
                                  "failed": failed, "finished": _now()})
    return result


def diagnostics_table(fits: dict[str, Fit]) -> pd.DataFrame:
    """One row per model: verdict, worst R-hat / ESS, divergences, tree depth, E-BFMI, time."""
    rows = []
    for name, f in fits.items():
        d = f.diagnostics
        rows.append({"model": name, "verdict": d.verdict, "max_rhat": d.max_rhat,
                     "min_ess_bulk": d.min_ess_bulk, "min_ess_tail": d.min_ess_tail,
                     "divergences": d.divergences, "treedepth_hits": d.treedepth_hits,
                     "min_ebfmi": d.min_ebfmi, "sample_s": f.info["timings"].get("sample_s"),
                     "problems": "; ".join(d.problems)})
    return pd.DataFrame(rows)


def _write_tables(result: CompareResult, run_name: str, command: str) -> None:
    assert result.run_dir is not None
    tables = result.run_dir / "tables"
    write_table(result.loo, tables, "loo")
    write_table(result.diagnostics, tables, "diagnostics")
    write_table(result.horizons, tables, "horizons")
    best = str(result.loo.iloc[0]["model"])
    wide = pd.concat([wide_horizon_table(result.horizons[result.horizons["model"] == m]).assign(model=m)
                      for m in result.fits], ignore_index=True)
    write_table(wide[["model", *[c for c in wide.columns if c != "model"]]], tables, "horizons_wide")
    from horizon_zoo.rundir import markdown_table

    loo_cols = ["model", "rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "n_high_k"]
    summary = [
        f"# horizon-zoo {run_name}", "", f"Command: `{command}`", "",
        f"Data: {result.data.source}: {len(result.data.runs)} runs, {len(result.data.agents)} agents, "
        f"{len(result.data.tasks)} tasks, {len(result.data.families)} families.", "",
        "## PSIS-LOO over (agent, task) cells", "", markdown_table(result.loo[loo_cols]),
        "## Diagnostics", "", markdown_table(result.diagnostics),
        f"## Horizons of the best model by elpd ({best}), median [95% interval]", "",
        markdown_table(wide[wide["model"] == best].drop(columns="model")),
    ]
    if result.failed:
        summary += ["## Models that failed", ""] + [f"- {m}: {e}" for m, e in result.failed.items()]
    atomic_write_text(result.run_dir / "summary.md", "\n".join(summary) + "\n")


def _write_data_summary(data: RunData, run_dir: Path) -> None:
    write_table(data.cells, run_dir / "data", "cells")
    write_table(data.tasks, run_dir / "data", "tasks")
    summary = {**data.summary(), "fingerprint": data.fingerprint(), "warnings": list(data.warnings),
               "agents": list(data.agents)}
    atomic_write_text(run_dir / "data" / "summary.json", json.dumps(summary, indent=2) + "\n")


def _manifest(command: str | None, data: RunData, zoo: list[ZooModel], settings: SamplerSettings,
              backend: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "horizon_zoo": __version__}
    for package in ("arviz", "arviz-base", "arviz-stats", "pystan", "httpstan", "cmdstanpy", "numpy",
                    "pandas", "xarray"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "status": "running",
        "command": command or " ".join(sys.argv),
        "started": _now(),
        "data": {"source": data.source, "fingerprint": data.fingerprint()},
        "models": {m.name: m.sha256 for m in zoo},
        "backend": backend,
        "settings": settings.as_dict(),
        "grid_minutes": [float(x) for x in np.exp(default_grid()[[0, -1]])],
        "versions": versions,
    }


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
