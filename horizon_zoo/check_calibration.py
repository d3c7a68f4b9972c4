"""Is a posterior predictive check calibrated? Run it on data simulated from the model itself.

A check's p-value is evidence only if, on data the model really generated, it is close to
uniform. :func:`calibration_study` takes a fit of a model to real data, uses the replicated
data ``y_rep`` of randomly chosen posterior draws as simulated datasets (the real design, the
model's own parameters), and on each one reruns the residual-structure checks both ways:

* **in-sample**: fit the simulated data, residuals against the posterior-mean prediction and
  replicates from the same fit (what ``check`` and ``compare`` report);
* **cross-validated**: the task block from leave-family-out and the agent eigen share from
  leave-task-out residuals (:func:`horizon_zoo.checks.cross_validated_structure`).

Each simulation's in-sample result and every CV fold are cached (a rerun or an interrupted study
reuses them), so the tables and figures can be rebuilt from the cache by running the same
command again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from horizon_zoo.backends import SamplerSettings, cache_subdir, resolve_backend
from horizon_zoo.checks import CV_SCHEME_OF, check_data, residual_structure
from horizon_zoo.cv import DEFAULT_FOLDS, assemble_predictive, make_folds, run_fold
from horizon_zoo.data import RunData
from horizon_zoo.registry import ZooModel

log = logging.getLogger(__name__)

CACHE_ENV = "HORIZON_ZOO_CALIBRATION_CACHE"
KINDS = ("in-sample", "cross-validated")


def default_cache_dir() -> Path:
    """``$HORIZON_ZOO_CALIBRATION_CACHE``, else ``~/.cache/horizon-zoo/calibration``."""
    return cache_subdir(CACHE_ENV, "calibration")


def simulated_datasets(y_rep: np.ndarray, data: RunData, sims: int, seed: int, source: str
                       ) -> list[tuple[int, RunData]]:
    """``sims`` datasets on ``data``'s design: the replicated successes of randomly chosen draws
    (without replacement) of a fit's ``y_rep`` (draws x cells), each with its draw's index."""
    from horizon_zoo.simulate import with_successes

    y_rep = y_rep.reshape(-1, y_rep.shape[-1])
    if sims > len(y_rep):
        raise ValueError(f"{sims} simulations need at least as many posterior draws; the fit has {len(y_rep)}")
    picks = np.sort(np.random.default_rng(seed).choice(len(y_rep), sims, replace=False))
    return [(int(s), with_successes(data, y_rep[s], f"{source}, posterior draw {s}")) for s in picks]


def in_sample_structure(model: ZooModel, data: RunData, settings: SamplerSettings, backend: str, cache: Path
                        ) -> dict[str, dict[str, float]]:
    """Fit ``data`` and return the in-sample residual-structure statistics: observed value and
    p-value per statistic (cached by model, data, settings and backend)."""
    spec = json.dumps({"model": model.sha256, "data": data.fingerprint(), "settings": settings.as_dict(),
                       "backend": backend}, sort_keys=True)
    path = cache / f"{model.name}-insample-{hashlib.sha256(spec.encode()).hexdigest()[:24]}.json"
    from horizon_zoo.rundir import atomic_write_text, read_cached_record

    cached = read_cached_record(path, "calibration")
    if cached is not None:
        return cached
    from horizon_zoo.fit import fit_model

    fit = fit_model(model, data, settings=settings, backend=backend, progress=False)
    s = residual_structure(check_data(fit.idata))
    record = {stat: {"observed": s.observed[stat], "p_value": s.p_values[stat],
                     "verdict": fit.diagnostics.verdict} for stat in s.observed}
    atomic_write_text(path, json.dumps(record) + "\n")
    return record


def calibration_study(
    model: ZooModel,
    data: RunData,
    y_rep: np.ndarray,
    *,
    sims: int = 20,
    folds: int = 5,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    jobs: int = 1,
    seed: int = 0,
    cache: Path | None = None,
) -> pd.DataFrame:
    """P-values of both residual-structure statistics, in-sample and cross-validated, on ``sims``
    datasets simulated from the posterior draws whose replicated data are ``y_rep``.

    Returns one row per (simulation, statistic, kind): ``model, sim, draw, statistic, kind,
    observed, p_value``. Every fit of every simulation (one in-sample fit, ``folds`` folds per
    CV scheme) is sent to ``jobs`` processes at once.
    """
    from horizon_zoo.checks import cross_validated_structure
    from horizon_zoo.parallel import run_all

    settings = settings or SamplerSettings()
    backend = resolve_backend(backend)
    cache = cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    datasets = simulated_datasets(y_rep, data, sims, seed, f"simulated from {model.name}")
    schemes = sorted(set(CV_SCHEME_OF.values()))
    fold_calls = [(model, sim, fold, settings, backend, cache)
                  for _, sim in datasets for scheme in schemes for fold in make_folds(sim, scheme, folds, seed)]
    records: dict[str, list[dict]] = {}
    for i, record in enumerate(run_all(_fold_with_data_key, fold_calls, jobs=jobs, writes_into=[cache]), start=1):
        records.setdefault(record["data_key"], []).append(record)
        if i % 10 == 0 or i == len(fold_calls):
            log.info("calibration of %s: %d/%d CV folds", model.name, i, len(fold_calls))
    in_sample = list(run_all(in_sample_structure, [(model, sim, settings, backend, cache) for _, sim in datasets],
                             jobs=jobs, writes_into=[cache]))
    rows = []
    for i, ((draw, sim), fitted) in enumerate(zip(datasets, in_sample, strict=True)):
        recs = records[sim.fingerprint()]
        predictive = {s: assemble_predictive([r for r in recs if r["scheme"] == s], len(sim.cells)) for s in schemes}
        cv_table = cross_validated_structure(sim, predictive).table.set_index("statistic")
        for stat in CV_SCHEME_OF:
            base = {"model": model.name, "sim": i, "draw": draw, "statistic": stat}
            rows.append({**base, "kind": "in-sample", "observed": fitted[stat]["observed"],
                         "p_value": fitted[stat]["p_value"]})
            rows.append({**base, "kind": "cross-validated", "observed": cv_table.loc[stat, "observed"],
                         "p_value": cv_table.loc[stat, "p_value"]})
    return pd.DataFrame(rows)


def _fold_with_data_key(model: ZooModel, data: RunData, fold: object, settings: SamplerSettings, backend: str,
                        cache: Path) -> dict:
    """:func:`horizon_zoo.cv.run_fold`, tagged with the dataset it belongs to (top level, for workers)."""
    return {**run_fold(model, data, fold, settings, backend, cache), "data_key": data.fingerprint()}


def uniformity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model, statistic and kind: how far the p-values are from uniform.

    Columns: ``sims``; ``ks_p`` (Kolmogorov-Smirnov test against uniform(0, 1): small means not
    uniform); ``share_flagged`` (p outside [0.025, 0.975]: 0.05 when calibrated); ``mean_p``
    (0.5 when calibrated); ``min_p`` and ``max_p``.
    """
    from scipy import stats

    out = []
    for (model, stat, kind), t in rows.groupby(["model", "statistic", "kind"], sort=False):
        p = t["p_value"].to_numpy(dtype=float)
        p = p[np.isfinite(p)]
        iqr = float(np.subtract(*np.quantile(p, [0.75, 0.25]))) if p.size else np.nan
        out.append({"model": model, "statistic": stat, "kind": kind, "sims": int(p.size),
                    "ks_p": float(stats.kstest(p, "uniform").pvalue) if p.size else np.nan,
                    "share_flagged": float(np.mean((p < 0.025) | (p > 0.975))) if p.size else np.nan,
                    "mean_p": float(p.mean()) if p.size else np.nan, "iqr_p": iqr,
                    "min_p": float(p.min()) if p.size else np.nan, "max_p": float(p.max()) if p.size else np.nan,
                    "shape": shape_of(p)})
    return pd.DataFrame(out)


def shape_of(p: np.ndarray) -> str:
    """How p-values simulated under the model depart from uniform, in words: ``uniform`` (a KS test
    at 5% finds nothing), ``conservative`` (bunched in the middle: flags rarer than nominal, so a
    flag is strong evidence and its absence weak), ``pinned high`` / ``pinned low`` (most beyond
    0.9 / below 0.1: the check cannot see what it tests), else ``skewed``."""
    from scipy import stats

    p = p[np.isfinite(p)]
    if p.size == 0:
        return "n/a"
    if stats.kstest(p, "uniform").pvalue >= 0.05:
        return "uniform"
    if np.mean(p > 0.9) > 0.5:
        return "pinned high"
    if np.mean(p < 0.1) > 0.5:
        return "pinned low"
    if np.subtract(*np.quantile(p, [0.75, 0.25])) < 0.5 and np.mean((p < 0.025) | (p > 0.975)) <= 0.05:
        return "conservative"
    return "skewed"


def plot_p_value_histograms(rows: pd.DataFrame) -> Figure:
    """One panel per (model, statistic): histograms of the in-sample and cross-validated p-values
    on the simulated datasets, against the flat line a calibrated check gives."""
    import matplotlib.pyplot as plt

    panels = list(rows.groupby(["model", "statistic"], sort=False))
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), squeeze=False)
    bins = np.linspace(0, 1, 11)
    for ax, ((model, stat), t) in zip(axes[:, 0], panels, strict=True):
        for kind, colour, style in zip(KINDS, ("tab:red", "tab:blue"), ("bar", "step"), strict=True):
            p = t.loc[t["kind"] == kind, "p_value"].dropna().to_numpy()
            ax.hist(p, bins=bins, histtype=style, alpha=0.45 if style == "bar" else 1.0, lw=2.2, color=colour,
                    label=f"{kind} ({p.size} sims)")
        n = t.loc[t["kind"] == KINDS[1], "p_value"].notna().sum()
        ax.axhline(n / (len(bins) - 1), color="0.3", ls="--", lw=1, label="uniform (calibrated)")
        ax.set_xlim(0, 1)
        ax.set_title(f"{model}: {stat.replace('_', ' ')}", fontsize=9)
        ax.set_ylabel("simulations")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("posterior predictive p-value on data simulated from the model")
    fig.tight_layout()
    return fig


def study_models(models: Sequence[ZooModel], data: RunData, *, source_settings: SamplerSettings, sims: int,
                 folds: int = DEFAULT_FOLDS, settings: SamplerSettings, backend: str = "auto", jobs: int = 1,
                 seed: int = 0, cache: Path | None = None) -> pd.DataFrame:
    """:func:`calibration_study` of each model, after fitting it to ``data`` with ``source_settings``
    (its posterior draws generate the simulated datasets)."""
    frames = []
    for model in models:
        y_rep = source_replicates(model, data, source_settings, resolve_backend(backend), cache or default_cache_dir())
        frames.append(calibration_study(model, data, y_rep, sims=sims, folds=folds, settings=settings,
                                        backend=backend, jobs=jobs, seed=seed, cache=cache))
    return pd.concat(frames, ignore_index=True)


def source_replicates(model: ZooModel, data: RunData, settings: SamplerSettings, backend: str, cache: Path
                      ) -> np.ndarray:
    """The replicated data ``y_rep`` (draws x cells) of ``model`` fitted to ``data``: the pool the
    simulated datasets are drawn from. Cached like the rest of the study, so rebuilding its tables
    fits nothing."""
    from horizon_zoo.fit import fit_model

    spec = json.dumps({"model": model.sha256, "data": data.fingerprint(), "settings": settings.as_dict(),
                       "backend": backend}, sort_keys=True)
    path = cache / f"{model.name}-source-{hashlib.sha256(spec.encode()).hexdigest()[:24]}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError) as exc:
            log.warning("calibration cache entry %s cannot be read (%s); computing it again", path, exc)
    log.info("calibration of %s: fitting the source posterior (%s)", model.name, settings.describe())
    fit = fit_model(model, data, settings=settings, backend=backend, progress=False)
    y_rep = fit.idata["posterior_predictive"]["y_rep"].values.astype(np.int16)
    from horizon_zoo.rundir import atomic_path

    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, y_rep)
    return y_rep
