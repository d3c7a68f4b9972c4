"""Grouped K-fold cross-validation by refitting: new tasks, new task families, new agents.

PSIS-LOO over cells answers "one more (agent, task) cell". The questions users ask are "a task
never seen" (``task``: K folds of whole tasks, stratified by family and length), "a family never
seen" (``family``) and "an agent never seen" (``agent``: one fold per agent).

How held-out cells are predicted without any change to the models: each fold refits the model
on all cells, with the held-out cells' likelihood weight set to ``HOLDOUT_WEIGHT`` (1e-9). Their
pull on the posterior is a billionth of a cell, so their task, family or agent effects are drawn
from the model's hierarchy (or prior), exactly the prediction for something new; and since the
contract defines ``log_lik = weight * log p``, ``log_lik / weight`` is each held-out cell's
predictive log density in every draw. A held-out group's elpd is the log of the posterior mean
of the *joint* density of its cells (they share the new effect):
``log mean_s exp(sum_{i in group} log p(y_i | draw s))``.

Each fold also keeps its held-out cells' posterior predictive draws (``y_rep``, thinned to
``PREDICTIVE_DRAWS``) and predictive mean success rate. Assembled over the folds of a scheme
(:func:`assemble_predictive`), every cell has a prediction from a fit that never saw its
group: the cross-validated residuals that make the residual-structure checks calibrated
(:func:`horizon_zoo.checks.cross_validated_structure`).

Folds are cached on disk keyed by model source, data, fold and sampler settings, so an
interrupted or repeated run reuses every finished fold; they run in parallel on any
``concurrent.futures.Executor`` (local processes by default, ``--jobs``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from horizon_zoo import defaults
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.data import RunData
from horizon_zoo.registry import ZooModel

log = logging.getLogger(__name__)

HOLDOUT_WEIGHT = 1e-9
# Predictive draws kept per held-out cell: p-values in steps of 1/400, as the in-sample checks'.
PREDICTIVE_DRAWS = 400
# Bumped when a fold's cached record changes shape, so older entries are refitted, not misread.
RECORD_FORMAT = 2
SCHEMES = ("task", "family", "agent")
DEFAULT_FOLDS = defaults.FOLDS
CV_CACHE_ENV = "HORIZON_ZOO_CV_CACHE"


@dataclass(frozen=True)
class Fold:
    """One refit: which scheme, its index, and the groups (tasks, families or agents) held out."""

    scheme: str
    index: int
    groups: tuple[str, ...]


def make_folds(data: RunData, scheme: str, k: int = DEFAULT_FOLDS, seed: int = 0) -> list[Fold]:
    """Folds of whole groups. ``task`` folds are stratified: within each family (in random
    order) tasks sorted by length are dealt round-robin, so every fold mixes families and lengths."""
    rng = np.random.default_rng(seed)
    if scheme == "agent":
        return [Fold("agent", i, (a,)) for i, a in enumerate(data.agents)]
    if scheme == "family":
        families = list(data.families)
        rng.shuffle(families)
        k = min(k, len(families))
        return [Fold("family", i, tuple(sorted(families[i::k]))) for i in range(k)]
    if scheme == "task":
        tasks = data.tasks.sort_values(["task_family", "human_minutes", "task_id"])
        k = min(k, len(tasks))
        order = list(data.families)
        rng.shuffle(order)
        dealt: list[list[str]] = [[] for _ in range(k)]
        position = int(rng.integers(k))
        for family in order:
            for task in tasks.loc[tasks["task_family"] == family, "task_id"]:
                dealt[position % k].append(str(task))
                position += 1
        return [Fold("task", i, tuple(sorted(g))) for i, g in enumerate(dealt) if g]
    raise ValueError(f"unknown CV scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


def held_out_cells(data: RunData, fold: Fold) -> np.ndarray:
    """Boolean mask over ``data.cells`` of the cells the fold holds out."""
    cells = data.cells
    if fold.scheme == "agent":
        return cells["agent"].isin(fold.groups).to_numpy()
    if fold.scheme == "task":
        return cells["task_id"].isin(fold.groups).to_numpy()
    family_of = data.tasks.set_index("task_id")["task_family"]
    return cells["task_id"].map(family_of).isin(fold.groups).to_numpy()


def group_of_cells(data: RunData, scheme: str) -> np.ndarray:
    """The group label (agent, task or family) of every cell."""
    cells = data.cells
    if scheme == "agent":
        return cells["agent"].to_numpy(dtype=str)
    if scheme == "task":
        return cells["task_id"].to_numpy(dtype=str)
    return cells["task_id"].map(data.tasks.set_index("task_id")["task_family"]).to_numpy(dtype=str)


def fold_key(model: ZooModel, data: RunData, fold: Fold, settings: SamplerSettings, backend: str) -> str:
    """Cache key: a changed model, dataset, fold or setting never reuses a stale fold."""
    spec = json.dumps({"model": model.sha256, "data": data.fingerprint(), "scheme": fold.scheme,
                       "groups": list(fold.groups), "settings": settings.as_dict(), "backend": backend,
                       "holdout_weight": HOLDOUT_WEIGHT, "format": RECORD_FORMAT}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """``$HORIZON_ZOO_CV_CACHE``, else ``~/.cache/horizon-zoo/cv``."""
    from horizon_zoo.backends import cache_subdir

    return cache_subdir(CV_CACHE_ENV, "cv")


def holdout(data: RunData, mask: np.ndarray) -> RunData:
    """``data`` with the cells in ``mask`` carrying ``HOLDOUT_WEIGHT`` times their weight."""
    cells = data.cells.copy()
    cells.loc[mask, "weight"] = cells.loc[mask, "weight"] * HOLDOUT_WEIGHT
    return replace(data, cells=cells)


def joint_elpd(idata: xr.DataTree, cells: np.ndarray) -> float:
    """Log predictive density of ``cells`` (indices) together, from a fit of :func:`holdout` data.

    The one definition of a weighted elpd, used by CV, reloo and (through ArviZ on the weighted
    ``log_lik``) PSIS-LOO alike: for a set S of cells, ``log E[prod_{i in S} p(y_i)^{w_i}]``, the
    log predictive density of the weighted likelihood of S, with ``w_i`` a cell's weight before
    holding out (``log_lik / HOLDOUT_WEIGHT = w_i log p(y_i)``). With all weights 1 it is the
    usual elpd; a set whose weights are all 0 scores exactly 0 for every model.
    """
    ll = idata["log_likelihood"]["log_lik"].values
    joint = (ll.reshape(-1, ll.shape[-1])[:, cells] / HOLDOUT_WEIGHT).sum(axis=1)
    return float(logsumexp(joint) - np.log(joint.size))


def run_fold(model: ZooModel, data: RunData, fold: Fold, settings: SamplerSettings, backend: str,
             cache: Path) -> dict[str, object]:
    """Fit one fold (or read it from the cache); return per-group elpds and diagnostics."""
    path = cache / f"{model.name}-{fold.scheme}-{fold.index}-{fold_key(model, data, fold, settings, backend)}.json"
    from horizon_zoo.rundir import atomic_write_text, read_cached_record

    cached = read_cached_record(path, "CV fold")
    if cached is not None:
        return {**cached, "cached": True}
    from horizon_zoo.fit import fit_model

    mask = held_out_cells(data, fold)
    fit = fit_model(model, holdout(data, mask), settings=settings, backend=backend, progress=False)
    groups = group_of_cells(data, fold.scheme)
    elpd = {str(g): joint_elpd(fit.idata, np.flatnonzero(mask & (groups == g)))
            for g in np.unique(groups[mask])}
    d = fit.diagnostics
    record = {"model": model.name, "scheme": fold.scheme, "fold": fold.index, "elpd": elpd,
              "n_cells": int(mask.sum()), "max_rhat": d.max_rhat, "divergences": d.divergences,
              "verdict": d.verdict, **held_out_predictive(fit.idata, np.flatnonzero(mask), seed=fold.index)}
    atomic_write_text(path, json.dumps(record) + "\n")
    return {**record, "cached": False}


def held_out_predictive(idata: xr.DataTree, cells: np.ndarray, seed: int = 0) -> dict[str, list]:
    """The held-out ``cells``' predictive mean success rate (over all draws) and up to
    ``PREDICTIVE_DRAWS`` of their replicated success counts (the same draws for every cell, so
    cells that share a new group's effect keep sharing it), as JSON-ready lists."""
    y_rep = idata["posterior_predictive"]["y_rep"].values
    y_rep = y_rep.reshape(-1, y_rep.shape[-1])[:, cells]
    n_runs = idata["observed_data"]["n_runs"].values[cells]
    keep = np.arange(len(y_rep))
    if len(keep) > PREDICTIVE_DRAWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), PREDICTIVE_DRAWS, replace=False))
    return {"cells": cells.tolist(), "p_mean": (y_rep.mean(axis=0) / n_runs).tolist(),
            "y_rep": y_rep[keep].tolist()}


@dataclass(frozen=True)
class Predictive:
    """Cross-validated predictions of every cell under one scheme: ``p_mean`` (N,) is each cell's
    predictive mean success rate and ``y_rep`` (S, N) replicated successes, each from the fold
    that held the cell's group out."""

    p_mean: np.ndarray
    y_rep: np.ndarray


def assemble_predictive(records: Sequence[dict[str, object]], n_cells: int) -> Predictive:
    """Join the held-out predictions of one (model, scheme)'s folds into arrays over all cells.

    Folds partition the groups, so every cell must be held out exactly once; a gap or an overlap
    means the records are not one scheme's complete set, and is an error. Folds with different
    numbers of kept draws are cut to the smallest.
    """
    owner = np.full(n_cells, -1)
    for i, r in enumerate(records):
        cells = np.asarray(r["cells"], dtype=int)
        if (owner[cells] >= 0).any():
            raise ValueError(f"cells {cells[owner[cells] >= 0][:5].tolist()} are held out by two folds")
        owner[cells] = i
    if (owner < 0).any():
        raise ValueError(f"{int((owner < 0).sum())} cells are held out by no fold (e.g. {np.flatnonzero(owner < 0)[:5].tolist()})")
    draws = min(len(r["y_rep"]) for r in records)
    p_mean = np.empty(n_cells)
    y_rep = np.empty((draws, n_cells), dtype=int)
    for r in records:
        cells = np.asarray(r["cells"], dtype=int)
        p_mean[cells] = r["p_mean"]
        y_rep[:, cells] = np.asarray(r["y_rep"], dtype=int)[:draws]
    return Predictive(p_mean, y_rep)


@dataclass
class CVResult:
    """What :func:`cross_validate` returns: per-group elpds (``pointwise``: one row per scheme,
    model and group) and the cross-validated predictions per (model, scheme)."""

    pointwise: pd.DataFrame
    predictive: dict[tuple[str, str], Predictive]


def zero_weight_groups(data: RunData, scheme: str) -> set[str]:
    """Groups of ``scheme`` whose cells all have weight 0 (they score 0 for every model)."""
    weights = pd.Series(data.cells["weight"].to_numpy(), index=group_of_cells(data, scheme))
    return {str(g) for g, w in weights.groupby(level=0) if (w == 0).all()}


def check_cv_options(schemes: Sequence[str], folds: int) -> None:
    """Refuse unknown scheme names and fewer than 2 folds (before any run directory or fit is made)."""
    from horizon_zoo.errors import HorizonZooError

    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise HorizonZooError(f"unknown --cv scheme(s) {', '.join(unknown)}; use {', '.join(SCHEMES)}.")
    if folds < 2:
        raise HorizonZooError(f"--folds must be at least 2, got {folds}.")


def cross_validate(
    models: Sequence[ZooModel],
    data: RunData,
    schemes: Sequence[str] = ("task",),
    *,
    k: int = DEFAULT_FOLDS,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    jobs: int = 1,
    executor: Executor | None = None,
    cache: Path | None = None,
    seed: int = 0,
) -> CVResult:
    """Run every (model, scheme, fold): per-group elpds and each cell's held-out predictions.

    ``pointwise`` columns: ``scheme, model, group, elpd, fold, max_rhat, divergences, verdict,
    cached``; ``predictive`` maps (model, scheme) to :class:`Predictive`.
    ``executor`` may be any ``concurrent.futures.Executor`` (e.g. a Dask ``Client``'s
    ``get_executor()``); by default ``jobs`` local processes, or in-process when ``jobs`` is 1.
    """
    from horizon_zoo.backends import resolve_backend

    settings = settings or SamplerSettings()
    backend = resolve_backend(backend)
    cache = cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    check_cv_options(schemes, k)
    from horizon_zoo.parallel import run_all

    calls = [(m, data, f, settings, backend, cache) for s in schemes for f in make_folds(data, s, k, seed) for m in models]
    records = []
    for i, record in enumerate(run_all(run_fold, calls, jobs=jobs, executor=executor, writes_into=[cache]),
                               start=1):
        records.append(record)
        _progress(i, len(calls), record)
    weightless = {s: zero_weight_groups(data, s) for s in schemes}
    rows = [{"scheme": r["scheme"], "model": r["model"], "group": g, "elpd": e, "fold": r["fold"],
             "max_rhat": r["max_rhat"], "divergences": r["divergences"], "verdict": r["verdict"],
             "cached": r["cached"], "zero_weight": g in weightless[r["scheme"]]}
            for r in records for g, e in r["elpd"].items()]
    predictive = {(m.name, scheme): assemble_predictive(
        [r for r in records if r["model"] == m.name and r["scheme"] == scheme], len(data.cells))
        for m in models for scheme in schemes}
    return CVResult(pd.DataFrame(rows), predictive)


def _progress(i: int, n: int, record: dict[str, object]) -> None:
    log.info("CV [%d/%d] %s, %s fold %s: %s%s", i, n, record["model"], record["scheme"], record["fold"],
             "cached" if record["cached"] else f"fitted ({record['verdict']})",
             "" if record["verdict"] != "fail" else f" - max R-hat {record['max_rhat']:.3f}, "
             f"{record['divergences']} divergences")


def cv_compare(pointwise: pd.DataFrame) -> pd.DataFrame:
    """Per scheme: each model's summed elpd with SE, and its difference from the best with the SE
    of the paired group-wise differences (as ``loo_compare`` does for cells)."""
    rows = []
    for scheme, table in pointwise.groupby("scheme", sort=False):
        wide = table.pivot_table(index="group", columns="model", values="elpd", aggfunc="first", dropna=False)
        # A group some model has no finite elpd for cannot be paired; it is left out and named.
        unpaired = sorted(map(str, wide.index[~np.isfinite(wide.to_numpy()).all(axis=1)]))
        wide = wide[np.isfinite(wide.to_numpy()).all(axis=1)]
        weightless = sorted(set(table.loc[table["zero_weight"].astype(bool), "group"].astype(str))) \
            if "zero_weight" in table else []
        n = len(wide)
        totals = wide.sum().sort_values(ascending=False)
        best = totals.index[0]
        for rank, (model, total) in enumerate(totals.items()):
            diff = wide[model] - wide[best]
            model_rows = table[table["model"] == model]
            rows.append({
                "scheme": scheme, "model": model, "rank": rank, "elpd": float(total),
                "se": float(np.sqrt(n * wide[model].var(ddof=0))), "elpd_diff": float(diff.sum()),
                "dse": float(np.sqrt(n * diff.var(ddof=0))), "n_groups": n,
                "folds_failing_diagnostics": int(model_rows.loc[model_rows["verdict"] == "fail", "fold"].nunique()),
                "zero_weight_groups": ", ".join(weightless), "unpaired_groups": ", ".join(unpaired),
            })
    out = pd.DataFrame(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["diff_over_dse"] = np.where(out["dse"] > 0, out["elpd_diff"] / out["dse"], 0.0)
    return out


CV_MEANING_NOTE = ("Leave-tasks-out and leave-families-out refit the model with the held-out cells' weight at "
                   "1e-9, so their effects come from the hierarchy; a group's elpd is the log predictive density "
                   "of all its cells together. elpd_diff and dse are paired over groups. Leave-agent-out: a model "
                   "whose agents share no hierarchy (per-agent intercepts with fixed priors, as in logistic) "
                   "predicts a held-out agent from its prior alone, so the agent scheme scores that prior.")

QUESTIONS = {"task": "a task it has never seen", "family": "a task family it has never seen",
             "agent": "an agent it has never seen", "cell": "one more (agent, task) cell"}


def verdicts(table: pd.DataFrame) -> list[str]:
    """One sentence per scheme: who wins, and whether by more than 2 SE of the difference."""
    out = []
    for scheme, t in table.groupby("scheme", sort=False):
        t = t.sort_values("rank")
        best = t.iloc[0]
        if len(t) == 1:
            out.append(f"{QUESTIONS.get(scheme, scheme)}: only {best['model']} was cross-validated.")
            continue
        second = t.iloc[1]
        decisive = second["elpd_diff"] < -2 * second["dse"]
        out.append(f"Predicting {QUESTIONS.get(scheme, scheme)}: {best['model']} is best; the runner-up "
                   f"{second['model']} is {-second['elpd_diff']:.1f} elpd behind (dSE {second['dse']:.1f}), "
                   + ("more than 2 SE: a clear difference." if decisive else "within 2 SE: not decisive.")
                   + _left_out(best))
    return out


def _left_out(row: pd.Series) -> str:
    """The groups a scheme's comparison could not use, named (never dropped silently)."""
    text = ""
    if isinstance(row.get("zero_weight_groups"), str) and row["zero_weight_groups"]:
        text += f" Groups with weight 0, scoring 0 for every model: {row['zero_weight_groups']}."
    if isinstance(row.get("unpaired_groups"), str) and row["unpaired_groups"]:
        text += f" Left out, no finite elpd for some model: {row['unpaired_groups']}."
    return text
