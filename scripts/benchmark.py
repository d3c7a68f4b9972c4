#!/usr/bin/env python
"""Benchmarks of horizon-zoo on this machine: prints tables and writes docs/benchmarks.md.

Sections (``--sections``, comma-separated; each one's results are kept in
``docs/benchmark-results/<section>.json`` (fits, gq and compare: ``<section>_<dataset>[_thin<K>].json``,
and a fits, gq, cold or sbc run replaces only the rows of the models it measured) so sections can be run at
different times, and docs/benchmarks.md is rebuilt from all of them with the commands that
produced each):

  fits       every model on every dataset, each fit in a fresh process: compile time (cached),
             warmup + sampling time, min bulk ESS per second, divergences, R-hat, total wall time
             and peak memory of the whole process tree (PyStan samples chains in child processes)
  cold       first-time compile of every model (an empty httpstan cache per model)
  bernoulli  the binomial-cell likelihood against one Bernoulli term per run, same program and
             posterior: wall time, ESS/s and agreement of the posteriors
  bootstrap  time to per-agent p50 intervals: the logistic model vs METR's recipe (horizon_zoo.metr),
             a logistic regression per agent with 1,000 hierarchical bootstrap resamples (families,
             tasks within families, runs within tasks); and whether the intervals agree
  compare    wall time of a full `compare` (all zoo models, cell PSIS-LOO, checks, report) and the
             size of the run directory it writes
  gq         sampling time of each model with its generated quantities block removed (same data,
             settings and backend as `fits`): what the pointwise outputs (log_lik, y_rep, one per
             cell per draw) and the curves cost; under PyStan every value travels as JSON
  sbc        simulation-based calibration of every model (cached simulations; see `horizon-zoo sbc`)
  threads    within-chain parallelism: one chain with one thread against one chain with a thread per
             core (reduce_sum), for the models that declare grainsize; wall time, ESS/s, same posterior
  weighted   one grouped-CV fold (task scheme, fold 1: held-out cells at weight 1e-9) sampled with each
             model's program as at --weighted-before (the weighted likelihood as a loop of scalar
             lpmfs) and as it is now (one dot_product): sampling time per 1,000 leapfrog steps

Datasets (``--datasets``): default (embedded), metr (../shared/data/metr-early), cyber
(../shared/data/cyber-horizons), scaleup (synthetic 40 agents x 500 tasks x 8 runs = 160,000 runs),
or the path of any METR-format run file.

Needs the bench extras: pip install -e ".[bench]" (psutil).

Examples:
  python scripts/benchmark.py --sections fits --datasets metr,cyber
  python scripts/benchmark.py --sections fits --datasets scaleup --models logistic,weibull --thin 4
  python scripts/benchmark.py --sections bernoulli,bootstrap --datasets metr
  python scripts/benchmark.py --sections threads --datasets cyber
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "docs" / "benchmark-results"
REPORT = REPO / "docs" / "benchmarks.md"
DATASETS = {"default": None, "metr": SHARED / "metr-early" / "all_runs.jsonl",
            "cyber": SHARED / "cyber-horizons" / "all_runs.jsonl", "scaleup": "scaleup"}
SCALEUP = {"agents": 40, "tasks": 500, "families": 100, "runs": 8, "seed": 7}
DATASET_NOTES = {"scaleup": f"Scale-up: {SCALEUP['agents']} agents x {SCALEUP['tasks']} tasks in {SCALEUP['families']} "
                 f"families x {SCALEUP['runs']} runs = {SCALEUP['agents'] * SCALEUP['tasks'] * SCALEUP['runs']:,} "
                 f"runs in {SCALEUP['agents'] * SCALEUP['tasks']:,} cells (synthetic_runs, seed {SCALEUP['seed']}). "
                 "Each model in a fresh process with nothing else running; peak memory is the summed RSS of "
                 "the process tree (peak_mem_gib) and its summed PSS (peak_pss_gib, recorded since 2026-12-03), "
                 "which counts the pages PyStan's forked chain workers share with their parent once; the "
                 "memory target is judged on PSS where it was recorded. Thinning keeps 1,000 draws: log_lik "
                 "and y_rep of every kept draw, not the gradient, dominate time and memory at this size "
                 "(unthinned, logistic needed 9.2 GiB). With 250 draws per chain R-hat is noisier; where it "
                 "is 1.01-1.02 ('warn'), more draws at a higher thinning (--draws 2000 --thin 8) keep the "
                 "same output."}
SECTIONS = ("fits", "cold", "bernoulli", "bootstrap", "compare", "gq", "sbc", "threads", "storage", "backends",
            "weighted")
MERGED_PER_MODEL = ("fits", "gq", "cold", "sbc", "threads", "backends", "storage", "weighted")  # one row per model: a run replaces its models' rows only
PER_DATASET = ("fits", "compare", "gq", "threads", "backends", "storage", "weighted")  # one result file per dataset, so datasets can be measured at different times


# --- data ----------------------------------------------------------------------------------------


def scaleup_release_dates() -> dict[str, str]:
    """40 agents released evenly between 2019-02 and 2025-06 (the default dataset's span)."""
    start, end = date(2019, 2, 14), date(2025, 6, 5)
    n = SCALEUP["agents"]
    return {f"scale-{i:02d}": (start + timedelta(days=round(i * (end - start).days / (n - 1)))).isoformat()
            for i in range(n)}


def load_dataset(name: str) -> Any:
    """RunData for a dataset name or path, with release dates where the dataset has them."""
    from horizon_zoo import api
    from horizon_zoo.data import load_runs
    from horizon_zoo.simulate import synthetic_runs

    if name == "scaleup":
        dates = scaleup_release_dates()
        runs = synthetic_runs(dates, SCALEUP["tasks"], SCALEUP["families"], SCALEUP["runs"], SCALEUP["seed"])
        data = load_runs(runs, source="synthetic scale-up (40 agents x 500 tasks x 8 runs)")
        return dataclasses.replace(data, release_dates={a: date.fromisoformat(d) for a, d in dates.items()})
    path = DATASETS.get(name, name)
    if path is None:
        return api.load(None)
    dates = Path(path).parent / "release_dates.yaml"
    return api.load(path, release_dates=dates if dates.is_file() else None, skip_undated=True)


def per_run(data: Any) -> Any:
    """The same data with one cell per run (n_runs = 1): the per-run Bernoulli likelihood."""
    runs = data.runs
    cells = pd.DataFrame({"agent": runs["agent"].to_numpy(), "task_id": runs["task_id"].to_numpy(),
                          "n_runs": 1, "n_success": runs["success"].astype(int).to_numpy(), "weight": 1.0})
    order = {a: i for i, a in enumerate(data.agents)}
    task_order = {t: i for i, t in enumerate(data.tasks["task_id"])}
    cells = cells.assign(_a=cells["agent"].map(order), _t=cells["task_id"].map(task_order)).sort_values(
        ["_a", "_t"], kind="stable").drop(columns=["_a", "_t"]).reset_index(drop=True)
    return dataclasses.replace(data, cells=cells, source=f"{data.source} (one Bernoulli term per run)")


# --- measuring one fit in a fresh process ----------------------------------------------------------


class PeakMemory:
    """Largest summed memory of this process and all its descendants, sampled every 0.2 s.

    ``peak`` sums RSS, which counts a page once for every process that maps it: PyStan's chain
    workers are forked from this process and share its pages copy-on-write, so the sum overstates
    what the tree takes from the machine. ``peak_pss`` sums the proportional set size (a shared
    page split among its sharers), which adds up to the memory actually used.
    """

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            rss = pss = 0
            for p in [self._proc, *self._proc.children(recursive=True)]:
                try:
                    full = p.memory_full_info()  # smaps_rollup on Linux: cheap
                    rss, pss = rss + full.rss, pss + getattr(full, "pss", full.rss)
                except psutil.Error:
                    pass
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fit_worker(model_name: str, dataset: str, settings: dict[str, Any], bernoulli: bool = False) -> dict[str, Any]:
    """Fit one model to one dataset and measure it (runs in its own process)."""
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.fit import fit_model
    from horizon_zoo.registry import resolve

    data = load_dataset(dataset)
    if bernoulli:
        data = per_run(data)
    model = resolve(model_name)
    start = time.perf_counter()
    with PeakMemory() as memory:  # with the sampler's progress bar: a fit can take half an hour
        fit = fit_model(model, data, settings=SamplerSettings(**settings), progress=True)
    wall = time.perf_counter() - start
    t, d = fit.info["timings"], fit.diagnostics
    post = fit.idata["posterior"]
    summary = {name: [float(post[name].mean()), float(post[name].std())]
               for name in model.info.get("parameters", {}) if post[name].ndim == 2} | {
        f"{name}[{i}]": [float(v.mean()), float(v.std())]
        for name in model.info.get("parameters", {}) if post[name].ndim == 3
        for i, v in enumerate(np.moveaxis(post[name].values, 2, 0)[:50])}
    return {"model": model_name, "dataset": dataset, "cells": int(len(data.cells)), "runs": int(len(data.runs)),
            "compile_s": t.get("compile_s"), "compile_cached": bool(t.get("compile_cached")),
            "sample_s": t.get("sample_s"), "wall_s": wall, "min_ess_bulk": d.min_ess_bulk,
            "min_ess_bulk_at": d.min_ess_bulk_at,
            "ess_per_s": d.min_ess_bulk / t["sample_s"] if t.get("sample_s") else None, "divergences": d.divergences,
            "max_rhat": d.max_rhat, "max_rhat_at": d.max_rhat_at, "verdict": d.verdict,
            "peak_mem_gib": memory.peak / 2**30, "peak_pss_gib": memory.peak_pss / 2**30,
            "adapt_delta": fit.info["settings"]["adapt_delta"], "posterior": summary,
            "leapfrog_steps": int(fit.idata["sample_stats"]["n_steps"].sum())}


def without_gq(model: Any) -> Any:
    """``model`` with its generated quantities block cut off (the last block of a Stan program)."""
    import re

    from horizon_zoo.registry import program_info

    code = re.split(r"^generated quantities\s*\{", model.program, flags=re.MULTILINE)[0]
    return dataclasses.replace(model, code=code, expanded=code, info=program_info(code, model.name))


def without_gq_worker(model_name: str, dataset: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Sample one model with its generated quantities block cut off (runs in its own process)."""
    from horizon_zoo.backends import SamplerSettings, sample
    from horizon_zoo.contract import stan_data
    from horizon_zoo.fit import settings_for
    from horizon_zoo.registry import resolve

    model = resolve(model_name)
    with PeakMemory() as memory:
        draws = sample(without_gq(model), stan_data(load_dataset(dataset)),
                       settings_for(model, SamplerSettings(**settings)), progress=True)
    return {"model": model_name, "dataset": dataset, "sample_s_without_gq": draws.timings["sample_s"],
            "compile_s": draws.timings["compile_s"], "compile_cached": bool(draws.timings.get("compile_cached")),
            "peak_mem_gib": memory.peak / 2**30}


def cold_compile_worker(model_name: str) -> dict[str, Any]:
    """Compile one model into an empty httpstan cache (set by the parent) and time it."""
    from horizon_zoo.backends import SamplerSettings, sample
    from horizon_zoo.contract import stan_data
    from horizon_zoo.registry import resolve
    from horizon_zoo.sbc import design_subset
    from horizon_zoo.simulate import default_release_dates

    data = design_subset(dataclasses.replace(load_dataset("default"), release_dates=default_release_dates()), 3, 10)
    draws = sample(resolve(model_name), stan_data(data), SamplerSettings(chains=1, warmup=20, draws=20),
                   progress=False)
    return {"model": model_name, "cold_compile_s": draws.timings["compile_s"],
            "was_cached": bool(draws.timings.get("compile_cached"))}


def backend_worker(model_name: str, dataset: str, settings: dict[str, Any], backend: str) -> dict[str, Any]:
    """Compile (into the empty caches the parent set) and fit one model on one backend."""
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.fit import fit_model
    from horizon_zoo.registry import resolve

    model = resolve(model_name)
    fit = fit_model(model, load_dataset(dataset), settings=SamplerSettings(**settings), backend=backend,
                    progress=False)
    t = fit.info["timings"]
    post = fit.idata["posterior"]
    return {"compile_s": t.get("compile_s"), "compile_cached": bool(t.get("compile_cached")),
            "sample_s": t.get("sample_s"), "verdict": fit.diagnostics.verdict,
            "backend_version": fit.info.get("backend_version"),
            "draws": {name: post[name].values for name in model.info.get("parameters", {})},
            "n_steps": fit.idata["sample_stats"]["n_steps"].values}


def in_fresh_process(fn: Any, *args: Any, env: dict[str, str] | None = None) -> Any:
    """Run ``fn(*args)`` in a new spawned process (clean memory, optional environment)."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
            return pool.submit(fn, *args).result()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- sections --------------------------------------------------------------------------------------


def section_fits(models: list[str], datasets: list[str], settings: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        for model in models:
            print(f"fits: {model} on {dataset} ...", file=sys.stderr, flush=True)
            try:
                r = in_fresh_process(fit_worker, model, dataset, settings)
            except Exception as exc:  # noqa: BLE001 - a failed fit is a result of the benchmark
                rows.append({"dataset": dataset, "model": model, "error": str(exc)[:200]})
                continue
            r.pop("posterior")
            rows.append(r)
            print(f"  {r['wall_s']:.0f} s, min ESS/s {r['ess_per_s']:.1f}, {r['divergences']} div, "
                  f"{r['peak_mem_gib']:.2f} GiB", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def section_gq(models: list[str], dataset: str, settings: dict[str, Any], sampler: str) -> pd.DataFrame:
    """Sampling without the generated quantities, beside the full program's sampling time when
    the fits section has measured it with the same sampler settings."""
    fits_file = RESULTS / f"fits_{_dataset_label(dataset)}{_settings_suffix(settings)}.json"
    fits = json.loads(fits_file.read_text()) if fits_file.is_file() else {}
    full = {r["model"]: r.get("sample_s") for r in fits.get("rows", [])} if fits.get("sampler") == sampler else {}
    rows = []
    for model in models:
        print(f"gq: {model} on {dataset} without generated quantities ...", file=sys.stderr, flush=True)
        r = in_fresh_process(without_gq_worker, model, dataset, settings)
        if full.get(model):
            r["sample_s_full"] = full[model]
            r["gq_share"] = 1 - r["sample_s_without_gq"] / full[model]
        rows.append(r)
        print(f"  {r['sample_s_without_gq']:.0f} s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def section_cold(models: list[str]) -> pd.DataFrame:
    rows = []
    for model in models:
        with tempfile.TemporaryDirectory() as cache:
            print(f"cold: compiling {model} ...", file=sys.stderr, flush=True)
            rows.append(in_fresh_process(cold_compile_worker, model, env={"XDG_CACHE_HOME": cache}))
    return pd.DataFrame(rows)


def section_backends(models: list[str], dataset: str, settings: dict[str, Any]) -> pd.DataFrame:
    """Each model compiled into empty caches and fitted with the same seed on PyStan, then on
    CmdStan, one at a time in fresh processes: compile and sampling times, and how far apart the
    two backends' draws are (CmdStan's CSV files keep 6 significant digits)."""
    rows = []
    for model in models:
        fits = {}
        for backend in ("pystan", "cmdstanpy"):
            print(f"backends: {model} on {backend} (cold compile, then sampling) ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as cache:
                fits[backend] = in_fresh_process(backend_worker, model, dataset, settings, backend,
                                                 env={"XDG_CACHE_HOME": cache, "HORIZON_ZOO_CACHE": cache})
        py, cmd = fits["pystan"], fits["cmdstanpy"]
        rel = max(float(np.max(np.abs(cmd["draws"][k] - v) / np.maximum(np.abs(v), 1e-300)))
                  for k, v in py["draws"].items())
        rows.append({"model": model, "dataset": dataset,
                     "pystan compile s": py["compile_s"], "cmdstan compile s": cmd["compile_s"],
                     "compile ratio": cmd["compile_s"] / py["compile_s"],
                     "pystan sample s": py["sample_s"], "cmdstan sample s": cmd["sample_s"],
                     "sample ratio": cmd["sample_s"] / py["sample_s"],
                     "max relative draw difference": rel,
                     "same leapfrog steps": bool(np.array_equal(py["n_steps"], cmd["n_steps"])),
                     "verdicts": f"{py['verdict']} / {cmd['verdict']}",
                     "versions": f"{py['backend_version']}; {cmd['backend_version']}"})
    return pd.DataFrame(rows)


def max_mean_diff(reference: dict[str, Any], other: dict[str, Any]) -> float:
    """Largest difference of posterior means between two fit_worker results, in posterior sds of
    ``reference``: the same posterior gives Monte Carlo error only."""
    return max(abs(reference["posterior"][k][0] - other["posterior"][k][0]) / reference["posterior"][k][1]
               for k in reference["posterior"])


def section_bernoulli(datasets: list[str], settings: dict[str, Any], model: str = "logistic") -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        print(f"bernoulli: {model} on {dataset}, cells then runs ...", file=sys.stderr, flush=True)
        cell = in_fresh_process(fit_worker, model, dataset, settings)
        run = in_fresh_process(fit_worker, model, dataset, settings, True)
        rows.append({"dataset": dataset, "model": model, "cells": cell["cells"], "runs": run["cells"],
                     "cell wall_s": cell["wall_s"], "per-run wall_s": run["wall_s"],
                     "wall ratio (run/cell)": run["wall_s"] / cell["wall_s"],
                     "cell ESS/s": cell["ess_per_s"], "per-run ESS/s": run["ess_per_s"],
                     "ESS/s ratio (cell/run)": cell["ess_per_s"] / run["ess_per_s"],
                     "max |mean diff| / sd": max_mean_diff(cell, run)})
    return pd.DataFrame(rows)


def bootstrap_p50(data: Any, n_boot: int = 1000, seed: int = 0,
                  regularization: float = 0.0) -> tuple[pd.DataFrame, float]:
    """METR's recipe (horizon_zoo.metr, the one implementation): per agent, a logistic regression of
    success on log2 minutes, here unweighted and by default unpenalised (the maximum-likelihood fit the
    posterior of the unweighted logistic is compared with), over ``n_boot`` hierarchical resamples
    (families, then tasks within families, then runs within tasks). Returns per agent the point p50
    (``boot_median_min``: METR reports the point fit), the bootstrap 95% interval, the share of
    resamples where the agent had one outcome only, and the seconds it took."""
    from horizon_zoo.metr import reference

    ref = reference(data, [0.5], weights=None, regularization=regularization, n_boot=n_boot, seed=seed)
    table = ref.table.rename(columns={"horizon_min": "boot_median_min", "lo95_min": "boot_lo95_min",
                                      "hi95_min": "boot_hi95_min", "boot_skipped": "boot_off_scale"})
    return table[["agent", "boot_median_min", "boot_lo95_min", "boot_hi95_min", "boot_off_scale"]], ref.seconds


def section_bootstrap(datasets: list[str], settings: dict[str, Any], n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.fit import fit_model
    from horizon_zoo.horizons import horizon_table
    from horizon_zoo.registry import resolve

    summary, per_agent = [], []
    for dataset in datasets:
        data = load_dataset(dataset)
        print(f"bootstrap: logistic on {dataset} ...", file=sys.stderr, flush=True)
        fit_model(resolve("logistic"), data, settings=SamplerSettings(chains=1, warmup=10, draws=10), progress=False)
        start = time.perf_counter()  # compile cached: the time a user waits for the intervals
        fit = fit_model(resolve("logistic"), data, settings=SamplerSettings(**settings), progress=False)
        bayes = horizon_table(fit.idata, [0.5])
        bayes_s = time.perf_counter() - start
        print(f"bootstrap: {n_boot} resamples on {dataset} ...", file=sys.stderr, flush=True)
        boot, boot_s = bootstrap_p50(data, n_boot)
        joined = bayes.merge(boot, on="agent")
        lo, hi = joined["lo95_min"], joined["hi95_min"]
        med_in = (joined["boot_median_min"] >= lo) & (joined["boot_median_min"] <= hi)
        overlap = (joined["boot_lo95_min"] <= hi) & (joined["boot_hi95_min"] >= lo)
        width = np.log2(hi / lo) / np.log2(joined["boot_hi95_min"] / joined["boot_lo95_min"])
        per_agent.append(joined.assign(dataset=dataset, boot_median_inside=med_in, intervals_overlap=overlap,
                                       width_ratio=width))
        finite = np.isfinite(width)
        summary.append({"dataset": dataset, "agents": len(joined), "Bayesian logistic s": bayes_s,
                        f"bootstrap ({n_boot}) s": boot_s, "speed-up": boot_s / bayes_s,
                        "bootstrap median inside Bayes 95%": f"{int(med_in.sum())}/{len(joined)}",
                        "95% intervals overlap": f"{int(overlap.sum())}/{len(joined)}",
                        "median width ratio (Bayes/boot, log scale)": float(np.median(width[finite]))
                        if finite.any() else float("nan")})
    return pd.DataFrame(summary), pd.concat(per_agent, ignore_index=True)


def storage_worker(model_name: str, dataset: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One fresh fit, held in memory as the sampler hands it over (float64 draws, int y_rep), written
    twice: with the previous encoding (values as computed, float64 log_lik and curves, int32 y_rep;
    zlib level 1) and with the compact one of horizon_zoo.fit (quantised float32 log_lik and
    curves, the smallest integer y_rep). A saved fit cannot serve: it is already quantised, which
    flatters the previous encoding. Runs in its own process."""
    import tempfile

    import xarray as xr

    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.compare import loo
    from horizon_zoo.fit import _compression, fit_model
    from horizon_zoo.registry import resolve

    def old_encoding(idata: Any) -> dict[str, Any]:
        def one(name: str, var: Any) -> dict[str, Any]:
            enc = {"zlib": True, "complevel": 1, "shuffle": name != "log_lik"}
            if np.issubdtype(var.dtype, np.floating):
                enc["dtype"] = "float64"
            elif name == "y_rep":
                enc["dtype"] = "int32"
            return enc

        return {node.path: {name: one(name, var) for name, var in node.data_vars.items()}
                for node in idata.subtree if node.has_data}

    idata = fit_model(resolve(model_name), load_dataset(dataset), settings=SamplerSettings(**settings),
                      progress=True).idata
    if idata["log_likelihood"]["log_lik"].dtype != np.float64:
        raise RuntimeError(f"{model_name}: the fit's log_lik is {idata['log_likelihood']['log_lik'].dtype}, "
                           "not the sampler's float64")
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, encoding in (("previous", old_encoding(idata)), ("compact", _compression(idata))):
            out = Path(tmp) / f"{label}.nc"
            start = time.perf_counter()
            idata.to_netcdf(out, engine="netcdf4", encoding=encoding)
            sizes[label] = (out.stat().st_size / 1e6, time.perf_counter() - start)
        with xr.open_datatree(Path(tmp) / "compact.nc", engine="netcdf4") as f:
            back = f.load()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            delta = abs(loo(back).elpd - loo(idata).elpd)
    log_lik = idata["log_likelihood"]
    return {"dataset": dataset, "model": model_name, "cells": log_lik.sizes["cell"],
            "draws": log_lik.sizes["chain"] * log_lik.sizes["draw"],
            "previous MB": sizes["previous"][0], "compact MB": sizes["compact"][0],
            "ratio": sizes["compact"][0] / sizes["previous"][0],
            "previous write s": sizes["previous"][1], "compact write s": sizes["compact"][1],
            "elpd_loo change": delta}


def section_storage(models: list[str], datasets: list[str], settings: dict[str, Any]) -> pd.DataFrame:
    """Disk per saved fit, previous encoding against the compact one, for each model and dataset
    (fresh fits: see storage_worker), with the total per dataset."""
    rows = []
    for dataset in datasets:
        for model in models:
            print(f"storage: {model} on {dataset} ...", file=sys.stderr, flush=True)
            rows.append(in_fresh_process(storage_worker, model, dataset, settings))
    table = pd.DataFrame(rows)
    totals = table.groupby("dataset")[["previous MB", "compact MB"]].sum().reset_index()
    return pd.concat([table, totals.assign(model="(all fits)")], ignore_index=True)


def weighted_worker(program: str, dataset: str, settings: dict[str, Any], backend: str) -> dict[str, Any]:
    """Sample the Stan file ``program`` on one grouped-CV fold of ``dataset`` (task scheme, fold 1,
    held-out cells at weight 1e-9, as ``cv`` refits it). Runs in its own process."""
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.cv import held_out_cells, holdout, make_folds
    from horizon_zoo.fit import fit_model
    from horizon_zoo.registry import load_model

    data = load_dataset(dataset)
    fold = make_folds(data, "task")[0]
    fit = fit_model(load_model(program), holdout(data, held_out_cells(data, fold)),
                    settings=SamplerSettings(**settings), backend=backend, progress=False)
    steps = int(fit.idata["sample_stats"]["n_steps"].sum())
    return {"sample_s": fit.info["timings"]["sample_s"], "leapfrog_steps": steps}


def section_weighted(models: list[str], dataset: str, settings: dict[str, Any], before: str,
                     backend: str) -> pd.DataFrame:
    """Each model's weighted fold sampled with its program at commit ``before`` and now (same seed)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from identification import before_variant

    from horizon_zoo.registry import resolve

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            old = before_variant(model, before, Path(tmp))
            measured = {}
            for label, program in (("before", str(old)), ("now", str(resolve(model).path))):
                print(f"weighted: {model} ({label}) on {dataset} ...", file=sys.stderr, flush=True)
                measured[label] = in_fresh_process(weighted_worker, program, dataset, settings, backend)
            per_k = {k: 1000 * v["sample_s"] / v["leapfrog_steps"] for k, v in measured.items()}
            rows.append({"model": model, "dataset": dataset, "before commit": before,
                         "before sample s": measured["before"]["sample_s"], "now sample s": measured["now"]["sample_s"],
                         "before s / 1000 steps": per_k["before"], "now s / 1000 steps": per_k["now"],
                         "ratio (now / before)": per_k["now"] / per_k["before"]})
    return pd.DataFrame(rows)


def section_compare(datasets: list[str], settings: dict[str, Any], keep: Path | None = None,
                    jobs: int = 1, backend: str = "pystan") -> pd.DataFrame:
    """Time a full compare per dataset, fitting ``jobs`` models at a time; with ``keep`` its run
    directory stays at keep/<dataset> (the tables of stan_models/README.md are made from one),
    else it is thrown away."""
    from horizon_zoo import api
    from horizon_zoo.backends import SamplerSettings

    rows = []
    for dataset in datasets:
        data = load_dataset(dataset)
        print(f"compare: all models on {dataset}, {jobs} at a time ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            out = keep / _dataset_label(dataset) if keep else Path(scratch) / "run"
            start = time.perf_counter()
            result = api.compare(data, settings=SamplerSettings(**settings), out=out, progress=False,
                                 jobs=jobs, backend=backend)
            wall = time.perf_counter() - start
            run_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
            fits_mb = sum(f.stat().st_size for f in (out / "fits").glob("*") if f.is_file()) / 1e6
        d = result.diagnostics
        rows.append({"dataset": dataset, "backend": backend, "models": len(result.fits), "jobs": jobs,
                     "wall_min": wall / 60,
                     "sum of sampling min": float(d["sample_s"].sum()) / 60,
                     "models failing diagnostics": int((d["verdict"] == "fail").sum()),
                     "failing": ", ".join(d.loc[d["verdict"] == "fail", "model"]),
                     "best model": str(result.loo.iloc[0]["model"]),
                     "run dir MB": run_mb, "of which fits MB": fits_mb,
                     "slowest samplers (s)": ", ".join(f"{m} {s:.0f}" for m, s in
                                                       d.set_index("model")["sample_s"].nlargest(3).items())})
    return pd.DataFrame(rows)


def section_threads(models: list[str], dataset: str, settings: dict[str, Any]) -> pd.DataFrame:
    """One chain sampled with one thread, then with one thread per core (reduce_sum slices the
    likelihood), for each model that declares grainsize."""
    from horizon_zoo.registry import resolve

    threads = os.cpu_count() or 1
    rows = []
    for model in models:
        if not resolve(model).reads("grainsize"):
            print(f"threads: {model} does not thread its likelihood (no grainsize); skipped", file=sys.stderr)
            continue
        print(f"threads: {model} on {dataset}, 1 chain with 1 then {threads} threads ...", file=sys.stderr, flush=True)
        one = in_fresh_process(fit_worker, model, dataset, {**settings, "chains": 1})
        many = in_fresh_process(fit_worker, model, dataset, {**settings, "chains": 1, "threads_per_chain": threads})
        rows.append({"model": model, "dataset": dataset, "cells": one["cells"], "threads": threads,
                     "sample_s 1 thread": one["sample_s"], f"sample_s {threads} threads": many["sample_s"],
                     "speed-up": one["sample_s"] / many["sample_s"],
                     # rounding differs between the two, so trajectories (and step counts) do too
                     "leapfrog steps ratio": many["leapfrog_steps"] / one["leapfrog_steps"],
                     "ESS/s 1 thread": one["ess_per_s"], f"ESS/s {threads} threads": many["ess_per_s"],
                     "max |mean diff| / sd": max_mean_diff(one, many), "peak_mem_gib": many["peak_mem_gib"]})
        print(f"  {rows[-1]['speed-up']:.2f}x", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def section_sbc(models: list[str], sims: int, jobs: int) -> pd.DataFrame:
    from horizon_zoo import api

    with tempfile.TemporaryDirectory() as out:
        run_dir, summary = api.sbc(None, models=models, sims=sims, jobs=jobs, out=Path(out) / "sbc")
        tests = pd.read_csv(run_dir / "tables" / "sbc_tests.csv")
    worst = tests.sort_values("p_value").groupby("model").head(1).set_index("model")["quantity"]
    return summary.assign(**{"worst quantity": summary["model"].map(worst)})


# --- report ------------------------------------------------------------------------------------------


def _markdown(frame: pd.DataFrame) -> str:
    from horizon_zoo.rundir import markdown_table

    def fmt(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""  # not measured, e.g. a column added after older rows were stored
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return v

    return markdown_table(frame.map(fmt))


TITLES = {"fits": "Fits: time, ESS/s, memory per model and dataset",
          "cold": "First-time compilation (empty cache)",
          "bernoulli": "Binomial cells vs one Bernoulli term per run (logistic)",
          "bootstrap": "Per-agent p50 intervals: Bayesian logistic vs METR's hierarchical bootstrap",
          "bootstrap_agents": "Per-agent comparison of the p50 intervals",
          "compare": "Full compare (all zoo models)",
          "gq": "Sampling without the generated quantities (their cost)",
          "sbc": "Simulation-based calibration",
          "threads": "Within-chain threads (reduce_sum)",
          "storage": "Disk per saved fit: the compact encoding against the previous one",
          "backends": "PyStan and CmdStan side by side: compile, sample, same draws",
          "weighted": "A weighted CV fold: scalar-lpmf loop against one dot_product"}


# How to read a section's table (rendered with every result file of the section).
SECTION_NOTES = {
    "storage": "Each model fitted afresh and held in memory as the sampler hands it over, then written "
               "twice: the previous encoding (float64 draws, int32 y_rep) and the compact one that fits are "
               "saved with now. elpd_loo change is PSIS-LOO's elpd from the compact file minus the in-memory "
               "one. The (all fits) row sums the models measured.",
    "backends": "Each model compiled into empty caches, then sampled with the same seed and settings, on "
                "PyStan (httpstan's Stan) and on the CmdStan built by `horizon-zoo cmdstan build` from the "
                "same Stan headers and stanc; one backend at a time, nothing else running. ratio = CmdStan / "
                "PyStan. max relative draw difference is over every draw of every parameter: CmdStan's CSV "
                "files keep 6 significant digits, so ~5e-6 means the same chains; same leapfrog steps "
                "compares every draw's step count.",
    "weighted": "Every grouped-CV refit is a weighted fit (held-out cells at weight 1e-9). Each model's "
                "fold (task scheme, fold 1 of 10) is sampled twice with the same seed and settings, in "
                "fresh processes: with the program as at the before commit, whose weighted likelihood "
                "summed a scalar binomial_logit_lpmf per cell, and with today's, which calls "
                "binomial_logit_weighted (one dot_product of the kernel; three of today's programs also carry "
                "the means of issue 37's item 6, a few additions per gradient). The two programs' rounding "
                "differs, so their trajectories do too: time per 1,000 leapfrog steps (one gradient "
                "each, plus the generated quantities of the kept draws) is the comparable figure.",
    "gq": "Each model sampled with its generated quantities block cut off (the stripped program is "
          "compiled first: compile_s), in a fresh process. sample_s_full is the fits section's "
          "sampling time with the same sampler settings, gq_share = 1 - sample_s_without_gq / "
          "sample_s_full: the share of sampling spent computing and handing over log_lik, y_rep "
          "(one value per cell each) and the curves for every kept draw.",
    "threads": "One chain, so that the machine's other cores are free for the chain's extra threads: "
               "the same program sampled with grainsize 0 (one call sums the likelihood) and with "
               "reduce_sum (grainsize = cells / (4 x threads)) over every core (threads_per_chain = "
               "cores; PyStan cannot set the count, TBB takes every core). A full fit runs 4 chains: "
               "threads pay off only where cores outnumber chains. speed-up is the ratio of sampling "
               "times (warmup, draws and generated quantities, which stay in one thread); leapfrog "
               "steps ratio (threaded / one thread, post-warmup only: warmup steps are not counted) "
               "shows that the two runs adapted differently (rounding differs between them, so "
               "trajectories do too) and did different amounts of work. ESS/s of one chain is noisy "
               "(min over all parameters). max |mean diff| / sd compares posterior means (parameters' "
               "first 50 elements) in units of the posterior sd; one chain each, so Monte Carlo "
               "error alone gives ~0.1-0.2.",
}


# The performance targets (issue 7), checked against whatever results are stored.
COMPARE_MAX_MIN = 10
SCALEUP_MAX_S, SCALEUP_MAX_GIB, SCALEUP_MIN_ESS = 15 * 60, 4, 400
SCALEUP_TARGET = f"scale-up: < {SCALEUP_MAX_S // 60} min, < {SCALEUP_MAX_GIB} GiB, ESS >= {SCALEUP_MIN_ESS}"


def targets_table() -> pd.DataFrame:
    """One row per stored measurement that a target speaks about, with whether it meets it."""
    rows = []
    for path in sorted(RESULTS.glob("compare_*.json")):
        for r in json.loads(path.read_text())["rows"]:
            jobs = r.get("jobs", 1)  # rows stored before compare took jobs fitted one model at a time
            rows.append({"target": f"full compare under {COMPARE_MAX_MIN} min",
                         "measured on": r["dataset"] + (f", {jobs} models at a time" if jobs > 1 else "")
                         + f", {r.get('backend', 'pystan')}",  # rows stored before the column were PyStan's
                         "result": f"{r['wall_min']:.1f} min", "met": r["wall_min"] < COMPARE_MAX_MIN})
    measured = set()
    for path in sorted(RESULTS.glob("fits_scaleup*.json")):
        stored = json.loads(path.read_text())
        for r in stored["rows"]:
            measured.add(r["model"])
            if "wall_s" not in r:  # a fit that failed
                rows.append({"target": SCALEUP_TARGET, "measured on": f"{r['model']} ({path.stem})",
                             "result": r.get("error", "failed"), "met": False})
                continue
            # Rows measured before PSS was recorded carry only the summed RSS, an upper bound.
            pss = r.get("peak_pss_gib")  # null where rows of both kinds share a file
            memory = r["peak_mem_gib"] if pss is None else pss
            met = r["wall_s"] < SCALEUP_MAX_S and memory < SCALEUP_MAX_GIB and r["min_ess_bulk"] >= SCALEUP_MIN_ESS
            rows.append({"target": SCALEUP_TARGET, "measured on": f"{r['model']} ({stored.get('sampler')})",
                         "result": f"{r['wall_s'] / 60:.1f} min, "
                                   + (f"{pss:.2f} GiB (PSS; summed RSS {r['peak_mem_gib']:.2f})"
                                      if pss is not None else f"{r['peak_mem_gib']:.2f} GiB (summed RSS)")
                                   + f", ESS {r['min_ess_bulk']:.0f}"
                                   f"; diagnostics {r['verdict']} (max R-hat {r['max_rhat']:.3f})",
                         "met": met})
    from horizon_zoo.registry import discover

    for model in sorted(set(discover()) - measured):
        rows.append({"target": SCALEUP_TARGET, "measured on": model, "result": "not measured yet", "met": False})
    if (RESULTS / "bootstrap.json").is_file():
        for r in json.loads((RESULTS / "bootstrap.json").read_text())["rows"]:
            rows.append({"target": "logistic p50 intervals faster than the 1,000-resample bootstrap",
                         "measured on": r["dataset"], "result": f"{r['speed-up']:.1f}x faster",
                         "met": r["speed-up"] > 1})
    return pd.DataFrame(rows)


def write_report() -> None:
    parts = ["# Benchmarks\n",
             "Written by `scripts/benchmark.py` (run it again to refresh; each section below gives the command "
             "that produced it). Machine: see each section's header line. Sampling times are wall-clock with "
             "4 chains sharing the machine's cores unless stated.\n"]
    targets = targets_table()
    if not targets.empty:
        parts += ["## Targets\n", "Each stored measurement that a performance target speaks about "
                  "(the sections below give the details).\n", _markdown(targets)]
    paths = [p for section in (*SECTIONS, "bootstrap_agents")
             for p in sorted(RESULTS.glob(f"{section}.json")) + sorted(RESULTS.glob(f"{section}_*.json"))
             if not (section == "bootstrap" and p.stem == "bootstrap_agents")]
    for path in paths:
        stored = json.loads(path.read_text())
        section, dataset = _section_of(path.stem)
        parts.append(f"## {TITLES[section]}{': ' + dataset if dataset else ''}\n")
        sampler = f"; {stored['sampler']}" if stored.get("sampler") else ""
        commands = "  \n".join(f"`{c}`" for c in stored.get("commands", [stored["command"]]))
        parts.append(f"{commands}  \n{stored['when']}; {stored['machine']}{sampler}\n")
        for note in (SECTION_NOTES.get(section), stored.get("note")):
            if note:
                parts.append(note + "\n")
        parts.append(_markdown(pd.DataFrame(stored["rows"])))
    REPORT.write_text("\n".join(parts))


def _dataset_label(dataset: str) -> str:
    return dataset if dataset in DATASETS else Path(dataset).stem


def _settings_suffix(settings: dict[str, Any]) -> str:
    """What sets a run's result file apart from the default settings' one: a result file has one
    sampler line, so runs with other chains, warmup, draws, thinning, warmup schedule or tree depth
    must not share it."""
    from horizon_zoo.backends import SamplerSettings

    default = SamplerSettings()
    suffix = ""
    for name in ("thin", "chains", "warmup", "draws"):
        if settings.get(name, getattr(default, name)) != getattr(default, name):
            suffix += f"_{name}{settings[name]}"
    if "init_buffer" in settings or "metric_window" in settings:
        suffix += (f"_ib{settings.get('init_buffer', default.init_buffer)}"
                   f"w{settings.get('metric_window', default.metric_window)}")
    if settings.get("max_treedepth", default.max_treedepth) != default.max_treedepth:
        suffix += f"_td{settings['max_treedepth']}"
    return suffix


def _section_of(stem: str) -> tuple[str, str]:
    """(section, dataset) of a result file's stem: 'fits_metr' -> ('fits', 'metr')."""
    section, _, dataset = stem.partition("_")
    return (section, dataset) if section in PER_DATASET else (stem, "")


def store(section: str, table: pd.DataFrame, command: str, note: str = "", sampler: str = "") -> None:
    """Write a section's results; in the per-model sections (MERGED_PER_MODEL) a run replaces only its
    own models' rows, so models can be measured one command at a time (each command is listed)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{section}.json"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = json.loads(table.assign(measured=when).to_json(orient="records"))
    commands = [command]
    if _section_of(section)[0] in MERGED_PER_MODEL and path.is_file() and "model" in table:
        before = json.loads(path.read_text())
        rows = sorted([r for r in before["rows"] if r.get("model") not in set(table["model"])] + rows,
                      key=lambda r: r.get("model", ""))
        commands = [c for c in before.get("commands", [before["command"]]) if c != command] + commands
    path.write_text(json.dumps({"command": " ; ".join(commands), "commands": commands, "when": when,
                                "machine": machine, "sampler": sampler, "note": note, "rows": rows}, indent=1) + "\n")
    print(f"\n## {TITLES[_section_of(section)[0]]}\n\n{_markdown(table)}")


def main(argv: list[str] | None = None) -> int:
    from horizon_zoo.backends import SamplerSettings

    default = SamplerSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="fits", help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--datasets", default="default,metr,cyber", help="default, metr, cyber, scaleup or paths")
    parser.add_argument("--models", default="all", help="comma-separated zoo models (default: all)")
    parser.add_argument("--chains", type=int, default=default.chains)
    parser.add_argument("--warmup", type=int, default=default.warmup)
    parser.add_argument("--draws", type=int, default=default.draws)
    parser.add_argument("--thin", type=int, default=default.thin,
                        help="keep every THIN-th draw (default: %(default)s)")
    parser.add_argument("--init-buffer", type=int, default=default.init_buffer,
                        help="warmup iterations before the first metric estimate (default: %(default)s, Stan's)")
    parser.add_argument("--metric-window", type=int, default=default.metric_window,
                        help="first metric window of warmup (default: %(default)s, Stan's)")
    parser.add_argument("--max-treedepth", type=int, default=default.max_treedepth,
                        help="NUTS maximum tree depth (default: %(default)s, Stan's)")
    parser.add_argument("--seed", type=int, default=20250319)
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--sims", type=int, default=100, help="SBC simulations per model (default: 100)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="SBC simulations, and compare's model fits, run this many at a time "
                             "(default: 2)")
    parser.add_argument("--backend", default="auto", choices=("auto", "pystan", "cmdstanpy"),
                        help="fits, compare: the Stan backend (auto: CmdStan when installed); results on "
                             "CmdStan keep their own file")
    parser.add_argument("--weighted-before", default="9e8b8c7^", metavar="COMMIT",
                        help="weighted: the commit whose programs are the 'before' (default: the one before "
                             "the vectorised weighted likelihood)")
    parser.add_argument("--keep-runs", type=Path, metavar="DIR",
                        help="keep each compare run directory as DIR/<dataset> (default: thrown away)")
    args = parser.parse_args(argv)
    from horizon_zoo.backends import resolve_backend
    from horizon_zoo.registry import discover

    backend = resolve_backend(args.backend)

    models = sorted(discover()) if args.models == "all" else args.models.split(",")
    datasets = args.datasets.split(",")
    settings = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "seed": args.seed,
                "thin": args.thin}
    if (args.init_buffer, args.metric_window) != (default.init_buffer, default.metric_window):
        settings |= {"init_buffer": args.init_buffer, "metric_window": args.metric_window}
    if args.max_treedepth != default.max_treedepth:
        settings["max_treedepth"] = args.max_treedepth
    sampler = (f"{args.chains} chains x {args.warmup} warmup + {args.draws} draws"
               + (f", thinned by {args.thin}" if args.thin != default.thin else "")
               + (f", first metric after {args.init_buffer} + {args.metric_window} warmup iterations"
                  if "init_buffer" in settings else "")
               + (f", maximum tree depth {args.max_treedepth}" if "max_treedepth" in settings else ""))
    command = "python scripts/benchmark.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    run_section = {"fits": lambda dataset: section_fits(models, [dataset], settings),
                   "compare": lambda dataset: section_compare([dataset], settings, args.keep_runs, args.jobs, backend),
                   "gq": lambda dataset: section_gq(models, dataset, settings, sampler),
                   "threads": lambda dataset: section_threads(models, dataset, settings),
                   "backends": lambda dataset: section_backends(models, dataset, settings),
                   "storage": lambda dataset: section_storage(models, [dataset], settings),
                   "weighted": lambda dataset: section_weighted(models, dataset, settings, args.weighted_before,
                                                                backend)}
    for section in args.sections.split(","):
        if section in PER_DATASET:
            for dataset in datasets:
                # runs with other sampler settings than the defaults keep their own file
                one_chain = section == "threads"  # its note says why
                # a compare fitting models in parallel keeps its own file beside the one-at-a-time run
                jobs = f"_jobs{args.jobs}" if section == "compare" and args.jobs != 1 else ""
                jobs += "_cmdstan" if section == "compare" and backend == "cmdstanpy" else ""
                store(f"{section}_{_dataset_label(dataset)}{_settings_suffix(settings)}{jobs}",
                      run_section[section](dataset), command,
                      note="" if one_chain else DATASET_NOTES.get(dataset, ""),
                      sampler=sampler.replace(f"{args.chains} chains", "1 chain") if one_chain else sampler)
        elif section == "cold":
            store("cold", section_cold(models), command)
        elif section == "bernoulli":
            store("bernoulli", section_bernoulli(datasets, settings), command, sampler=sampler)
        elif section == "bootstrap":
            summary, agents = section_bootstrap(datasets, settings, args.boot)
            store("bootstrap", summary, command, note="Bayesian time includes sampling (4 chains), GQs and the "
                  "horizon table, with the program already compiled.", sampler=sampler)
            store("bootstrap_agents", agents[["dataset", "agent", "median_min", "lo95_min", "hi95_min",
                                              "boot_median_min", "boot_lo95_min", "boot_hi95_min",
                                              "boot_off_scale", "intervals_overlap"]], command, sampler=sampler)
        elif section == "sbc":
            store("sbc", section_sbc(models, args.sims, args.jobs), command,
                  note=f"Design: the embedded dataset cut to 6 agents x 40 tasks; 2 chains x 500 draws per fit, "
                  f"ranks among 99 thinned draws; {args.sims} simulations per model.")
        else:
            parser.error(f"unknown section {section!r}; use {', '.join(SECTIONS)}")
    write_report()
    print(f"\nwrote {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
