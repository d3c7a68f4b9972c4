"""The user-facing operations as plain functions (the CLI is a thin layer over these).

``load`` reads runs (or simulates the embedded default), ``fit`` fits one model, ``compare``
fits several and writes a run directory with the LOO comparison, horizon and diagnostics tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from horizon_zoo import __version__, defaults
from horizon_zoo.backends import SamplerSettings, resolve_backend
from horizon_zoo.checks import CHECKS_LEGEND
from horizon_zoo.compare import LOO_MEANING_NOTE, WEIGHTED_ELPD_NOTE, loo_compare, loo_shown
from horizon_zoo.contract import default_grid
from horizon_zoo.cv import DEFAULT_FOLDS
from horizon_zoo.data import DEFAULT_EXCLUDED_AGENTS, DEFAULT_MAX_MINUTES_RATIO, RunData, Weights, load_runs
from horizon_zoo.errors import DataError, HorizonZooError
from horizon_zoo.fit import Fit, fit_model, settings_for
from horizon_zoo.horizons import DEFAULT_QS, check_qs, horizon_table, wide_horizon_table
from horizon_zoo.metr import DEFAULT_BOOTSTRAP, DEFAULT_REGULARIZATION, MetrReference
from horizon_zoo.registry import ZooModel, discover, reference_model, resolve
from horizon_zoo.release_dates import match_release_dates, read_release_dates
from horizon_zoo.rundir import atomic_write_text, new_run_dir, write_table
from horizon_zoo.simulate import DEFAULT_SEED, default_release_dates, default_runs

if TYPE_CHECKING:
    import arviz_stats as azs

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
    skipped: dict[str, str] = field(default_factory=dict)
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    metr: MetrReference | None = None
    doubling: pd.DataFrame = field(default_factory=pd.DataFrame)


def load(
    runs: str | Path | pd.DataFrame | None = None,
    *,
    agents: Sequence[str] | None = None,
    exclude_agents: Sequence[str] = DEFAULT_EXCLUDED_AGENTS,
    task_sources: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    weights: Weights | None = None,
    max_minutes_ratio: float = DEFAULT_MAX_MINUTES_RATIO,
    release_dates: str | Path | Mapping[str, date] | None = None,
    skip_undated: bool = False,
) -> RunData:
    """Load a METR-format run file, or the embedded default dataset when ``runs`` is None.

    ``release_dates`` (a file in METR's ``release_dates.yaml`` format or a CSV, or a mapping)
    is joined to the agents; every agent needs a date unless ``skip_undated``. The embedded
    default dataset carries its own release dates.
    """
    filters = dict(include_agents=agents, exclude_agents=exclude_agents, task_sources=task_sources,
                   families=families, weights=weights, max_minutes_ratio=max_minutes_ratio)
    if runs is None:
        data = load_runs(default_runs(), source=f"embedded default dataset (seed {DEFAULT_SEED})", **filters)
        if release_dates is None:
            release_dates = default_release_dates()
    else:
        data = load_runs(runs, **filters)
    if release_dates is None:
        return data
    return with_release_dates(data, release_dates, skip_undated=skip_undated)


def with_release_dates(data: RunData, release_dates: str | Path | Mapping[str, date], *,
                       skip_undated: bool = False) -> RunData:
    """``data`` with a release-dates file (or mapping) joined to its agents, notes added to its warnings."""
    if not isinstance(release_dates, Mapping):
        release_dates = read_release_dates(release_dates)
    matched, notes = match_release_dates(data, release_dates, skip_missing=skip_undated)
    return dataclasses.replace(data, release_dates=matched, warnings=(*data.warnings, *notes))


def select_models(models: Sequence[str] | None = None, models_dir: str | Path | None = None) -> list[ZooModel]:
    """Zoo models by name or ``.stan`` path; all of the zoo when ``models`` is empty."""
    if not models:
        found = list(discover(models_dir).values())
        if not found:
            raise HorizonZooError(f"no .stan models found in {models_dir or 'stan_models/'}.")
        return found
    return [resolve(m, models_dir) for m in models]


def fit(
    model: str | ZooModel = defaults.MODEL,
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
    cv: Sequence[str] = (),
    folds: int = DEFAULT_FOLDS,
    jobs: int = 1,
    reloo_max: int = 0,
    metr_boot: int | None = DEFAULT_BOOTSTRAP,
    metr_regularization: float = DEFAULT_REGULARIZATION,
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
    reloo_max
        Refit exactly the cells whose Pareto k exceeds 0.7 when a model has at most this many.
    cv, folds
        Grouped cross-validation schemes to add (``task``, ``family``, ``agent``; see
        :mod:`horizon_zoo.cv`) and folds per scheme.
    jobs
        Models (and CV folds) fitted this many at a time in separate processes. The results are
        those of ``jobs=1``: a fit's draws depend only on model, data, settings and seed.
    metr_boot, metr_regularization
        METR's reference beside the horizons (:func:`metr_reference`): bootstrap resamples
        (``None``: no reference) and penalty.
    """
    check_qs(qs)
    if cv:
        from horizon_zoo.cv import check_cv_options

        check_cv_options(cv, folds)
    settings = settings or SamplerSettings()
    backend = resolve_backend(backend)
    data = runs if isinstance(runs, RunData) else load(runs)
    for warning in data.warnings:
        log.warning(warning)
    zoo = select_models(models, models_dir)
    zoo, skipped = _models_the_data_can_feed(zoo, data, explicit=bool(models))
    run_dir = new_run_dir(run_name, runs_root, out) if write else None
    manifest = _begin_run(run_dir, run_name, command, data, zoo, settings, backend, skipped=skipped)
    fits: dict[str, Fit] = {}
    errors: dict[str, HorizonZooError] = {}
    with _marked_if_interrupted(run_dir, manifest, completed=fits):
        _fit_zoo(zoo, data, settings, backend, run_dir, fits, errors, jobs=jobs, progress=progress)
    fits = {m.name: fits[m.name] for m in zoo if m.name in fits}  # zoo order, however the fits finished
    failed = {name: str(exc) for name, exc in errors.items()}
    if not fits:
        # exit with the failures' own code (4 when the backend failed every time, as documented)
        kinds = {type(exc) for exc in errors.values()}
        error_type = kinds.pop() if len(kinds) == 1 else HorizonZooError
        raise error_type("every model failed: "
                         + "; ".join(f"{name}: {message.splitlines()[0]}" for name, message in failed.items()))
    loos, checks = _compare_checks(fits, data, run_dir)
    loo_table = loo_compare({n: f.idata for n, f in fits.items()}, refit=_refitters(fits, data, settings, backend),
                            max_refits=reloo_max, loos=loos)
    horizons = pd.concat(
        [horizon_table(f.idata, qs).assign(model=n) for n, f in fits.items()], ignore_index=True
    )[lambda t: ["model", *[c for c in t.columns if c != "model"]]]
    diagnostics = diagnostics_table(fits)
    result = CompareResult(run_dir, data, fits, loo_table, horizons, diagnostics, failed, skipped, checks,
                           metr=metr_reference(data, qs, n_boot=metr_boot, regularization=metr_regularization)
                           if metr_boot is not None else None)
    if cv:
        result.cv = run_cv([f.model for f in fits.values()], data, cv, loo_table, folds=folds, jobs=jobs,
                           settings=settings, backend=backend, run_dir=run_dir, in_sample_checks=checks)
    if run_dir:
        best = str(loo_table.iloc[0]["model"])
        try:
            trend = trend_outputs({n: f.idata for n, f in fits.items()}, data, qs, horizons, run_dir=run_dir,
                                  figure_models=[m for m in (best, reference_model(zoo)) if m])
        except ValueError as exc:  # the fits and tables above stay valid without the trend
            log.error("trend over release dates failed: %s", exc)
            trend = {}
        result.doubling = trend.get("doubling", pd.DataFrame())
        for stem in ("doubling", "doubling_ratio", "forecasts"):
            if stem in trend and not trend[stem].empty:
                write_table(trend[stem], run_dir / "tables", stem)
        _write_tables(result, run_name, manifest["command"])
        _end_run(run_dir, manifest, sorted(fits), failed=failed)
    return result


def headline(result: CompareResult) -> tuple[list[str], pd.DataFrame]:
    """What a reader wants first: the best model (by PSIS-LOO, and by grouped CV where it ran),
    the diagnostics verdict of every fit, the doubling time of the p50 horizon, and the best
    model's per-agent p50 and p80 (with METR's p50 beside them). Sentences and a table; the
    summary, the report and the terminal all show these."""
    loo, lines = result.loo, []
    best = str(loo.iloc[0]["model"])
    if len(loo) > 1:
        second = loo.iloc[1]
        lines.append(f"Best model by PSIS-LOO over cells: {best}, {-second['elpd_diff']:.1f} elpd ahead of "
                     f"{second['model']} (dSE {second['dse']:.1f}).")
    else:
        lines.append(f"One model fitted: {best}.")
    if not result.cv.empty:
        from horizon_zoo.cv import QUESTIONS

        for scheme, t in result.cv[result.cv["scheme"] != "cell"].groupby("scheme", sort=False):
            t = t.sort_values("rank")
            ahead = (f", {-t.iloc[1]['elpd_diff']:.1f} elpd ahead of {t.iloc[1]['model']} "
                     f"(dSE {t.iloc[1]['dse']:.1f})" if len(t) > 1 else "")
            lines.append(f"Best at predicting {QUESTIONS[scheme]} (grouped CV): {t.iloc[0]['model']}{ahead}.")
    d = result.diagnostics
    verdicts = [f"{v} ({', '.join(d.loc[d['verdict'] == v, 'model'])})" for v in ("warn", "fail")
                if (d["verdict"] == v).any()]
    lines.append(f"Diagnostics: {int((d['verdict'] == 'pass').sum())} of {len(d)} fits pass"
                 + ("; " + "; ".join(verdicts) if verdicts else "") + ".")
    if not result.doubling.empty:
        from horizon_zoo.trend import months_text

        rows = result.doubling[(result.doubling["q"] == 0.5) & (result.doubling["curve"] == "marginal")]
        for model in dict.fromkeys(m for m in (best, reference_model(f.model for f in result.fits.values()
                                                                       if f is not None)) if m):
            r = rows[rows["model"] == model]
            if len(r):
                r = r.iloc[0]
                lines.append(f"The p50 horizon doubles every {months_text(r.doubling_months, r.lo95_months, r.hi95_months)}"
                             f" months ({model}, {r.trend} over {r.agents}).")
    wide = wide_horizon_table(result.horizons[result.horizons["model"] == best],
                              result.metr.table if result.metr else None)
    wide = wide[wide["curve"] == "marginal"].drop(columns="curve")
    keep = [c for c in wide.columns if c == "agent" or c.startswith(("p50", "p80", "METR p50"))]
    return lines, wide[keep]


def _fit_zoo(zoo: list[ZooModel], data: RunData, settings: SamplerSettings, backend: str,
             run_dir: Path | None, fits: dict[str, Fit], failed: dict[str, HorizonZooError], *, jobs: int,
             progress: bool) -> None:
    """Fit each model into ``fits`` (or its error into ``failed``), reusing completed fits in ``run_dir``.

    With ``jobs`` > 1 the models are fitted in that many local processes at once. On two cores this
    pays although each fit already runs its chains in parallel: a fit leaves the cores idle while its
    last chains finish and while the backend hands the draws over (serial: 30-40 s of a PyStan fit
    on cyber-horizons), and another model's sampling fills them.
    """
    from horizon_zoo.parallel import run_all

    position = {m.name: i for i, m in enumerate(zoo, start=1)}
    todo = []
    for model in zoo:
        saved = _saved_fit(run_dir, model, data, settings) if run_dir else None
        if saved is not None:
            log.info("[%d/%d] %s: reusing the completed fit in %s", position[model.name], len(zoo),
                     model.name, run_dir / "fits")
            fits[model.name] = saved
        else:
            todo.append(model)
    workers = min(jobs, len(todo))
    if workers <= 1:
        for model in todo:
            log.info("[%d/%d] %s: %s (%s)", position[model.name], len(zoo), model.name, settings.describe(),
                     backend)
            _record_fit(*_fit_or_error(model, data, settings, backend, run_dir, progress), position, fits,
                        failed)
        return
    log.info("fitting %d models, %d at a time in separate processes (%s, %s); each is reported when it "
             "finishes", len(todo), workers, settings.describe(), backend)
    # no progress bars from the workers: interleaved on one terminal they would be unreadable
    calls = [(model, data, settings, backend, run_dir, False) for model in todo]
    outcomes = run_all(_fit_or_error, calls, jobs=workers, writes_into=[run_dir / "fits"] if run_dir else [])
    with contextlib.closing(outcomes):  # on Ctrl-C, the workers stop before the run is marked interrupted
        for outcome in outcomes:
            _record_fit(*outcome, position, fits, failed)


def _fit_or_error(model: ZooModel, data: RunData, settings: SamplerSettings, backend: str,
                  run_dir: Path | None, progress: bool) -> tuple[ZooModel, Fit | HorizonZooError, float]:
    """One model's fit (saved into ``run_dir``), or its error message when it fails (one broken
    model should not sink the comparison), with the seconds it took. Top level so that worker
    processes can run it."""
    start = time.perf_counter()
    try:
        result: Fit | HorizonZooError = fit_model(model, data, settings=settings, backend=backend,
                                                  out_dir=run_dir / "fits" if run_dir else None, progress=progress)
    except HorizonZooError as exc:
        result = exc
    return model, result, time.perf_counter() - start


def _record_fit(model: ZooModel, result: Fit | HorizonZooError, seconds: float, position: Mapping[str, int],
                fits: dict[str, Fit], failed: dict[str, HorizonZooError]) -> None:
    i, n = position[model.name], len(position)
    if isinstance(result, HorizonZooError):
        failed[model.name] = result
        log.error("%s failed: %s", model.name, result)
        return
    fits[model.name] = result
    d = result.diagnostics
    log.info("[%d/%d] %s: done in %.0f s; diagnostics %s (max R-hat %.3f, min bulk ESS %.0f, "
             "%d divergences)%s", i, n, model.name, seconds, d.verdict, d.max_rhat, d.min_ess_bulk,
             d.divergences, "" if not d.problems else ": " + "; ".join(d.problems))


def cv(
    runs: str | Path | RunData | None = None,
    *,
    models: Sequence[str] = defaults.CV_MODELS,
    models_dir: str | Path | None = None,
    schemes: Sequence[str] = ("task",),
    folds: int = DEFAULT_FOLDS,
    jobs: int = 1,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    command: str | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Grouped cross-validation only (no full fits), in a new run directory; see :func:`run_cv`."""
    from horizon_zoo.cv import check_cv_options

    check_cv_options(schemes, folds)
    settings = settings or SamplerSettings()
    data = runs if isinstance(runs, RunData) else load(runs)
    zoo = select_models(models, models_dir)
    run_dir = new_run_dir("cv", runs_root, out)
    manifest = _begin_run(run_dir, "cv", command, data, zoo, settings, backend, cv=list(schemes), folds=folds)
    with _marked_if_interrupted(run_dir, manifest):
        table = run_cv(zoo, data, schemes, folds=folds, jobs=jobs, settings=settings, backend=backend,
                       run_dir=run_dir)
    _end_run(run_dir, manifest, [m.name for m in zoo])
    return run_dir, table


def sbc(
    runs: str | Path | RunData | None = None,
    *,
    models: Sequence[str],  # required, as in the CLI: each model is refitted once per simulation
    models_dir: str | Path | None = None,
    sims: int = defaults.SBC_SIMS,
    max_agents: int | None = defaults.SBC_MAX_AGENTS,
    max_tasks: int | None = defaults.SBC_MAX_TASKS,
    ranks: int | None = None,
    jobs: int = 1,
    executor: Any = None,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    seed: int | None = None,
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    command: str | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Simulation-based calibration of each model on the design of ``runs`` (default: the embedded
    dataset) cut to ``max_agents`` x ``max_tasks``; see :mod:`horizon_zoo.sbc`. Writes rank and test
    tables, ECDF figures and the report into a new run directory; returns it and the summary table.
    Simulations are cached, so an interrupted SBC resumes where it stopped."""
    from horizon_zoo import sbc as sbc_module

    sbc_module.check_sims(sims)
    settings = settings or sbc_module.DEFAULT_SETTINGS
    seed = settings.seed if seed is None else seed  # as the CLI's --seed: the same simulations
    data = runs if isinstance(runs, RunData) else load(runs)
    design = sbc_module.design_subset(data, max_agents, max_tasks)
    zoo = select_models([] if list(models) == ["all"] else models, models_dir)
    zoo, skipped = _models_the_data_can_feed(zoo, design, explicit=list(models) != ["all"])
    run_dir = new_run_dir("sbc", runs_root, out)
    manifest = _begin_run(run_dir, "sbc", command, design, zoo, settings, backend, sims=sims, skipped=skipped)
    with _marked_if_interrupted(run_dir, manifest):
        ranks_table = sbc_module.sbc_models(zoo, design, sims, settings=settings, backend=backend,
                                            ranks=ranks or sbc_module.DEFAULT_RANKS, jobs=jobs, executor=executor,
                                            seed=seed)
        summary = sbc_module.write_sbc_outputs(ranks_table, run_dir)
    _end_run(run_dir, manifest, [m.name for m in zoo])
    return run_dir, summary


@contextlib.contextmanager
def _marked_if_interrupted(run_dir: Path | None, manifest: dict[str, Any],
                           completed: Mapping[str, Any] | None = None) -> Iterator[None]:
    """On Ctrl-C, record ``status: interrupted`` in the manifest of ``run_dir`` (if any) with the
    names in ``completed`` as the work that is kept, then re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        if run_dir:
            extra = {"completed": sorted(completed)} if completed is not None else {}
            _write_manifest(run_dir, {**manifest, "status": "interrupted", **extra, "finished": _now()})
        raise


def _refitters(fits: dict[str, Fit], data: RunData, settings: SamplerSettings, backend: str) -> dict[str, Any]:
    """For each fit, a function that refits with given cells held out (for exact LOO of high-k cells)."""
    from horizon_zoo.cv import holdout

    def make(model: ZooModel) -> Any:
        def refit(mask: np.ndarray) -> xr.DataTree:
            log.info("reloo: refitting %s without %s", model.name, ", ".join(
                f"{a} x {t}" for a, t in data.cells.loc[mask, ["agent", "task_id"]].itertuples(index=False)))
            return fit_model(model, holdout(data, mask), settings=settings, backend=backend, progress=False).idata
        return refit

    return {name: make(f.model) for name, f in fits.items()}


def run_cv(models: Sequence[ZooModel], data: RunData, schemes: Sequence[str], loo_table: pd.DataFrame | None = None,
           *, folds: int = DEFAULT_FOLDS, jobs: int = 1, settings: SamplerSettings | None = None, backend: str = "auto",
           run_dir: Path | None = None, in_sample_checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Grouped CV of ``models``; with ``run_dir`` writes ``tables/cv*.csv``, ``figures/cv.png``, the
    cross-validated residual-structure checks (``tables/checks_cv.csv``, ``figures/residuals_cv_<model>.png``)
    and ``cv.md`` (one sentence per question: who wins, by how many SE, and which models leave
    residual structure). Returns the comparison table, PSIS-LOO over cells included as scheme
    ``cell`` when ``loo_table`` is given. ``in_sample_checks`` (compare's checks summary) puts the
    in-sample p-values beside the cross-validated ones."""
    from horizon_zoo.cv import cross_validate, cv_compare, verdicts
    from horizon_zoo.plots import plot_cv, save_figure

    result = cross_validate(models, data, schemes, k=folds, settings=settings, backend=backend, jobs=jobs)
    table = cv_compare(result.pointwise)
    if loo_table is not None:
        cell = loo_table.assign(scheme="cell", elpd=loo_table["elpd_loo"],
                                n_groups=len(data.cells))[["scheme", "model", "rank", "elpd", "se", "elpd_diff",
                                                           "dse", "n_groups", "diff_over_dse"]]
        table = pd.concat([cell, table], ignore_index=True)
    structure = _cv_structure(models, data, result.predictive, in_sample_checks, run_dir)
    sentences = verdicts(table)
    if not structure.empty:
        from horizon_zoo.checks import structure_verdicts

        sentences += structure_verdicts(structure)
    if run_dir:
        write_table(result.pointwise, run_dir / "tables", "cv_pointwise")
        write_table(table, run_dir / "tables", "cv")
        save_figure(plot_cv(table), run_dir / "figures" / "cv.png")
        atomic_write_text(run_dir / "cv.md", "\n".join(f"- {v}" for v in sentences) + "\n")
    for sentence in sentences:
        log.info(sentence)
    return table


def _cv_structure(models: Sequence[ZooModel], data: RunData, predictive: Mapping[tuple[str, str], Any],
                  in_sample_checks: pd.DataFrame | None, run_dir: Path | None) -> pd.DataFrame:
    """Cross-validated residual-structure checks of every model whose needed schemes were run
    (with its in-sample p-value when given); figures into ``run_dir``."""
    from horizon_zoo.check_plots import plot_residual_structure
    from horizon_zoo.checks import STRUCTURE_LABELS, cross_validated_structure
    from horizon_zoo.plots import save_figure

    frames = []
    for model in models:
        found = cross_validated_structure(data, {s: p for (m, s), p in predictive.items() if m == model.name})
        if found is None:
            continue
        frame = found.table.assign(model=model.name)
        if in_sample_checks is not None and model.name in set(in_sample_checks["model"]):
            row = in_sample_checks.set_index("model").loc[model.name]
            frame["p_in_sample"] = [row.get(STRUCTURE_LABELS[stat], "n/a") for stat in frame["statistic"]]
        frames.append(frame)
        if run_dir:
            save_figure(plot_residual_structure(found.data, found.structure, model.name, agent_order(data),
                                                residuals="observed minus cross-validated predictive mean: "
                                                "agents from leave-task-out, tasks from leave-family-out folds"),
                        run_dir / "figures" / f"residuals_cv_{model.name}.png")
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    table = table[["model", *[c for c in table.columns if c != "model"]]]
    if run_dir:
        write_table(table, run_dir / "tables", "checks_cv")
    return table


def _compare_checks(fits: dict[str, Fit], data: RunData, run_dir: Path | None
                    ) -> tuple[dict[str, azs.ELPDData], pd.DataFrame]:
    """PSIS-LOO and the posterior predictive checks of every fit, from one PSIS per fit (LOO and
    LOO-PIT share its weights); figures and per-model tables into the run directory."""
    from horizon_zoo.check_plots import write_check_outputs
    from horizon_zoo.checks import checks_summary, run_checks
    from horizon_zoo.compare import loo, psis

    results, loos = {}, {}
    for name, f in fits.items():
        log.info("checking %s", name)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            weights = psis(f.idata)
            loos[name] = loo(f.idata, weights)
        results[name] = run_checks(f.idata, name, weights=weights)
        del weights  # as large as log_lik; one model's at a time
        if run_dir:
            write_check_outputs(results[name], f.idata, run_dir, agent_order(data))
    return loos, checks_summary(results)


def _models_the_data_can_feed(zoo: list[ZooModel], data: RunData, *, explicit: bool
                              ) -> tuple[list[ZooModel], dict[str, str]]:
    """Leave out trend models when agents lack release dates (an error if they were asked for)."""
    dated = bool(data.release_dates) and all(a in data.release_dates for a in data.agents)
    needs = [m.name for m in zoo if m.reads("release_year")]
    if dated or not needs:
        return zoo, {}
    reason = "needs a release date for every agent (--release-dates FILE)"
    if explicit:
        raise DataError(f"{', '.join(needs)} {reason}.")
    log.info("skipping %s: %s", ", ".join(needs), reason)
    return [m for m in zoo if m.name not in needs], {n: reason for n in needs}


# The diagnostics columns a terminal or summary shows (tables/diagnostics.csv has them all).
DIAGNOSTICS_SHOWN = ["model", "verdict", "max_rhat", "min_ess_bulk", "divergences", "treedepth_hits", "min_ebfmi"]


def diagnostics_table(fits: dict[str, Fit]) -> pd.DataFrame:
    """One row per model: verdict, worst R-hat / ESS and where they sit, divergences, tree depth,
    E-BFMI, time."""
    rows = []
    for name, f in fits.items():
        d = f.diagnostics
        rows.append({"model": name, "verdict": d.verdict, "max_rhat": d.max_rhat, "max_rhat_at": d.max_rhat_at,
                     "min_ess_bulk": d.min_ess_bulk, "min_ess_bulk_at": d.min_ess_bulk_at,
                     "min_ess_tail": d.min_ess_tail,
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
    ref = result.metr.table if result.metr else None
    wide = pd.concat([wide_horizon_table(result.horizons[result.horizons["model"] == m], ref).assign(model=m)
                      for m in result.fits], ignore_index=True)
    write_table(wide[["model", *[c for c in wide.columns if c != "model"]]], tables, "horizons_wide")
    if result.metr:
        _write_metr_tables(result.metr, tables)
    from horizon_zoo.rundir import markdown_table

    sentences, best_horizons = headline(result)
    atomic_write_text(result.run_dir / "headline.md", "\n".join(f"- {line}" for line in sentences) + "\n")
    write_table(best_horizons, tables, "headline_horizons")
    summary = [
        f"# horizon-zoo {run_name}", "", "## Headline", "", *[f"- {line}" for line in sentences], "",
        f"Horizons of {best} (marginal: a new task of that length), median [95% interval]:", "",
        markdown_table(best_horizons), f"Command: `{command}`", "",
        f"Data: {result.data.source}: {len(result.data.runs)} runs, {len(result.data.agents)} agents, "
        f"{len(result.data.tasks)} tasks, {len(result.data.families)} families.", "",
        "## PSIS-LOO over (agent, task) cells", "", LOO_MEANING_NOTE, "",
        *([WEIGHTED_ELPD_NOTE, ""] if not np.allclose(result.data.cells["weight"], 1.0) else []),
        markdown_table(loo_shown(result.loo)),
        "## Diagnostics", "", markdown_table(result.diagnostics),
        f"## Horizons of the best model by elpd ({best}), median [95% interval]", "",
        markdown_table(wide[wide["model"] == best].drop(columns="model")),
    ]
    if not result.cv.empty:
        # cv.md holds run_cv's sentences: who predicts best, and which models leave residual structure
        sentences = (result.run_dir / "cv.md").read_text().splitlines()
        from horizon_zoo.cv import CV_MEANING_NOTE

        summary += ["## Cross-validation: new cells, tasks, families, agents", "", *sentences, "", CV_MEANING_NOTE, "",
                    markdown_table(result.cv.drop(columns=[c for c in ("diff_over_dse",) if c in result.cv])),
                    "![cv](figures/cv.png)", ""]
        structure_path = tables / "checks_cv.csv"
        if structure_path.is_file():
            from horizon_zoo.checks import CV_STRUCTURE_NOTE

            summary += ["## Residual structure, cross-validated", "", CV_STRUCTURE_NOTE, "",
                        markdown_table(pd.read_csv(structure_path)), ""]
    if not result.checks.empty:
        write_table(result.checks, tables, "checks")
        summary += ["## Posterior predictive checks", "", CHECKS_LEGEND, "", markdown_table(result.checks),
                    "Per model: `tables/checks_<model>.csv`, `tables/calibration_<model>.csv` and "
                    "`figures/{calibration,curves,residuals,loo_pit}_<model>.png`.", ""]
    if result.failed:
        summary += ["## Models that failed", ""] + [f"- {m}: {e}" for m, e in result.failed.items()]
    if result.skipped:
        summary += ["", "## Models not fitted", ""] + [f"- {m}: {e}" for m, e in result.skipped.items()]
    atomic_write_text(result.run_dir / "summary.md", "\n".join(summary) + "\n")


def _begin_run(run_dir: Path | None, name: str, command: str | None, data: RunData, zoo: list[ZooModel],
               settings: SamplerSettings, backend: str, **extra: Any) -> dict[str, Any]:
    """Manifest of a run (status ``running``) and the data summary, written before any fit. The
    manifest names the backend that runs the fits ("auto" resolved), as the fit caches' keys do."""
    if backend != "none":
        backend = resolve_backend(backend)
    manifest = {**_manifest(command, data, zoo, settings, backend), "run": name, **extra}
    if run_dir:
        _write_data_summary(data, run_dir)
        _write_manifest(run_dir, manifest)
        log.info("writing to %s", run_dir)
    return manifest


def _end_run(run_dir: Path, manifest: dict[str, Any], completed: list[str], **extra: Any) -> None:
    """Mark the run complete and write report.html / report.md, the files a reader opens first."""
    from horizon_zoo.report import write_report

    _write_manifest(run_dir, {**manifest, "status": "complete", "completed": completed, **extra,
                              "finished": _now()})
    html_path, _ = write_report(run_dir)
    log.info("report: %s", html_path)


def _write_data_summary(data: RunData, run_dir: Path) -> None:
    write_table(data.cells, run_dir / "data", "cells")
    write_table(data.tasks, run_dir / "data", "tasks")
    summary = {**data.summary(), "fingerprint": data.fingerprint(), "warnings": list(data.warnings),
               "agents_list": list(data.agents)}
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
        "data": {"source": data.source, "fingerprint": data.fingerprint(),
                 "weighted": bool(not np.allclose(data.cells["weight"], 1.0)), "weights": data.weights},
        "models": {m.name: m.sha256 for m in zoo},
        "reference_model": reference_model(zoo),
        "backend": backend,
        "settings": settings.as_dict(),
        "grid_minutes": [float(x) for x in np.exp(default_grid()[[0, -1]])],
        "versions": versions,
    }


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class HorizonsResult:
    """What ``horizons`` produced: per-model horizon draws summarised, trends and forecasts."""

    run_dir: Path | None
    data: RunData
    fits: dict[str, xr.DataTree]
    horizons: pd.DataFrame
    doubling: pd.DataFrame
    doubling_ratio: pd.DataFrame
    horizon_ratio: pd.DataFrame
    forecasts: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    metr: MetrReference | None = None
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)


def horizons(
    runs: str | Path | RunData | None = None,
    *,
    models: Sequence[str] = (defaults.MODEL,),
    models_dir: str | Path | None = None,
    release_dates: str | Path | Mapping[str, date] | None = None,
    qs: Sequence[float] = DEFAULT_QS,
    trend_agents: str | Sequence[str] = "frontier",
    thresholds: Mapping[str, float] | None = None,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    fits_dir: str | Path | None = None,
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    command: str | None = None,
    metr_boot: int | None = DEFAULT_BOOTSTRAP,
    metr_regularization: float = DEFAULT_REGULARIZATION,
) -> HorizonsResult:
    """Posterior q-horizons per agent and, with release dates, their trend and forecasts.

    Parameters
    ----------
    runs
        A run file, a :class:`RunData` (its ``release_dates`` are used) or None for the
        embedded default dataset (which carries release dates).
    models
        Model names or ``.stan`` paths; with several, an overlay figure compares their trends.
    release_dates
        METR-format ``release_dates.yaml``, a CSV, or a mapping; overrides the data's own.
    qs
        Success probabilities, e.g. ``(0.5, 0.8)``.
    trend_agents
        ``"frontier"`` (agents better than every earlier release), ``"all"``, or names.
    thresholds
        Forecast thresholds ``{label: minutes}`` (default: work-day, -week, -month).
    fits_dir
        A run directory's ``fits/`` (e.g. from ``compare``): a saved fit is reused when its
        model hash and data fingerprint match; otherwise the model is fitted afresh.
    metr_boot, metr_regularization
        METR's reference beside the horizons (:func:`metr_reference`): bootstrap resamples
        (``None``: no reference) and penalty.
    """
    check_qs(qs)
    settings = settings or SamplerSettings()
    if isinstance(runs, RunData):
        data = runs if release_dates is None else with_release_dates(runs, release_dates)
    else:
        data = load(runs, release_dates=release_dates)
    for warning in data.warnings:
        log.warning(warning)
    zoo = select_models(models, models_dir)
    zoo, _ = _models_the_data_can_feed(zoo, data, explicit=True)
    run_dir = new_run_dir("horizons", runs_root, out) if write else None
    manifest = _begin_run(run_dir, "horizons", command, data, zoo, settings, backend)
    fitted = _fits_or_saved(zoo, data, settings, backend, fits_dir, run_dir, progress)
    fits = {name: f.idata for name, f in fitted.items()}
    table = pd.concat([horizon_table(idata, qs).assign(model=name) for name, idata in fits.items()],
                      ignore_index=True)[lambda t: ["model", *[c for c in t.columns if c != "model"]]]
    trend = trend_outputs(fits, data, qs, table, trend_agents=trend_agents, thresholds=thresholds,
                          run_dir=run_dir)
    ref = metr_reference(data, qs, n_boot=metr_boot, regularization=metr_regularization) \
        if metr_boot is not None else None
    result = HorizonsResult(run_dir, data, fits, table, trend["doubling"], trend["doubling_ratio"],
                            trend["horizon_ratio"], trend["forecasts"], trend["figures"], ref,
                            diagnostics_table(fitted))
    if run_dir:
        _write_horizon_tables(result, manifest["command"])
        _end_run(run_dir, manifest, sorted(fits))
    return result


def trend_outputs(fits: Mapping[str, xr.DataTree], data: RunData, qs: Sequence[float], table: pd.DataFrame, *,
                  trend_agents: str | Sequence[str] = "frontier", thresholds: Mapping[str, float] | None = None,
                  run_dir: Path | None = None, figure_models: Sequence[str] | None = None) -> dict[str, Any]:
    """Doubling times, p80/p50 ratios, forecasts (tables) and trend figures for fitted models.

    ``table`` is the horizon table of the fits; figures are drawn for ``figure_models``
    (default: all) when ``run_dir`` is given, with an overlay when there are several.
    """
    from horizon_zoo.plots import plot_trend, plot_trend_overlay, save_figure
    from horizon_zoo.trend import (
        all_trends,
        doubling_ratio_table,
        doubling_table,
        forecast_table,
        horizon_ratio_table,
    )

    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("doubling", "doubling_ratio", "horizon_ratio",
                                                          "forecasts")}
    trends_by_model = {}
    dates = data.release_dates or {}
    dated = len([a for a in data.agents if a in dates]) >= 2
    if not dated:
        log.warning("no release dates: horizons only (give --release-dates FILE for the trend)")
    for name, idata in fits.items():
        parts["horizon_ratio"].append(horizon_ratio_table(idata).assign(model=name))
        if not dated:
            continue
        trends = all_trends(idata, dates, qs, agents=trend_agents)
        trends_by_model[name] = trends
        parts["doubling"].append(doubling_table(trends).assign(model=name))
        parts["doubling_ratio"].append(doubling_ratio_table(trends).assign(model=name))
        parts["forecasts"].append(forecast_table(trends, thresholds).assign(model=name))
    out: dict[str, Any] = {k: _model_first(pd.concat(v, ignore_index=True)) if v else pd.DataFrame()
                           for k, v in parts.items()}
    out["figures"] = []
    if run_dir and trends_by_model:
        grid = tuple(float(x) for x in np.exp(default_grid()[[0, -1]]))
        drawn = {n: t for n, t in trends_by_model.items() if figure_models is None or n in figure_models}
        for name, trends in drawn.items():
            fig = plot_trend(table[table["model"] == name], trends, dates, grid, f"{name}: {data.source}")
            path = run_dir / "figures" / f"trend_{name}.png"
            save_figure(fig, path)
            out["figures"].append(path)
        if len(drawn) > 1:
            for q in qs:
                fig = plot_trend_overlay({n: (table[table["model"] == n], t) for n, t in drawn.items()},
                                         dates, grid, q)
                path = run_dir / "figures" / f"trend_models_p{round(q * 100)}.png"
                save_figure(fig, path)
                out["figures"].append(path)
    return out


def _matching_fit(fits_dir: Path, model: ZooModel, data: RunData, settings: SamplerSettings | None = None
                  ) -> tuple[xr.DataTree, dict[str, Any]] | None:
    """A saved, complete fit of this model source and data in ``fits_dir`` (and of these sampler
    settings, when given); None when there is none or it cannot be read."""
    from horizon_zoo.fit import load_fit

    path = fits_dir / f"{model.name}.nc"
    if not path.is_file() or not path.with_suffix(".json").is_file():
        return None
    try:
        idata, info = load_fit(path)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if (info.get("status") != "complete" or info.get("model_sha256") != model.sha256
            or info.get("data_fingerprint") != data.fingerprint()):
        return None
    if settings is not None:
        if info.get("settings") != settings_for(model, settings).as_dict():
            return None
    return idata, info


def _saved_fit(run_dir: Path, model: ZooModel, data: RunData, settings: SamplerSettings) -> Fit | None:
    """A completed fit of this exact model, data and settings already in ``run_dir`` (resuming a run)."""
    from horizon_zoo.diagnostics import diagnose

    found = _matching_fit(run_dir / "fits", model, data, settings)
    if found is None:
        return None
    idata, info = found
    diagnostics = diagnose(idata, list(model.info.get("parameters", {})), settings.max_treedepth)
    return Fit(model=model, idata=idata, diagnostics=diagnostics, info=info)


def _fits_or_saved(zoo: list[ZooModel], data: RunData, settings: SamplerSettings, backend: str,
                   fits_dir: str | Path | None, run_dir: Path | None, progress: bool) -> dict[str, Fit]:
    """Each model's fit: reused from ``fits_dir`` when model hash and data match, else sampled;
    either way with its diagnostics, and a verdict line per model."""
    from horizon_zoo.diagnostics import diagnose

    fits: dict[str, Fit] = {}
    for i, model in enumerate(zoo, start=1):
        if fits_dir:
            found = _matching_fit(Path(fits_dir), model, data)
            if found is not None:
                log.info("[%d/%d] %s: reusing %s", i, len(zoo), model.name, Path(fits_dir) / f"{model.name}.nc")
                idata, info = found
                diagnostics = diagnose(idata, list(model.info.get("parameters", {})),
                                       int(info.get("settings", {}).get("max_treedepth", settings.max_treedepth)))
                fits[model.name] = Fit(model=model, idata=idata, diagnostics=diagnostics, info=info)
                _say_verdict(model.name, fits[model.name])
                continue
            if (Path(fits_dir) / f"{model.name}.nc").is_file():
                log.info("[%d/%d] %s: the saved fit in %s is of other data or another version of the model; "
                         "refitting", i, len(zoo), model.name, fits_dir)
        log.info("[%d/%d] %s: %s", i, len(zoo), model.name, settings.describe())
        fits[model.name] = fit_model(model, data, settings=settings, backend=backend,
                                     out_dir=run_dir / "fits" if run_dir else None, progress=progress)
        _say_verdict(model.name, fits[model.name])
    return fits


def _say_verdict(name: str, fit: Fit) -> None:
    d = fit.diagnostics
    level = logging.WARNING if d.verdict == "fail" else logging.INFO
    log.log(level, "%s: diagnostics %s (max R-hat %.3f, min bulk ESS %.0f, %d divergences)%s", name, d.verdict,
            d.max_rhat, d.min_ess_bulk, d.divergences,
            "" if not d.problems else ": " + "; ".join(d.problems) + (": read its results with care"
                                                                     if d.verdict == "fail" else ""))


def agent_order(data: RunData) -> list[str]:
    """Agents by release date when every agent has one, else by overall success rate."""
    dates = data.release_dates or {}
    if all(a in dates for a in data.agents):
        return sorted(data.agents, key=lambda a: (dates[a], a))
    rate = data.runs.groupby("agent")["success"].mean()
    return sorted(data.agents, key=lambda a: (float(rate.get(a, 0.0)), a))


@dataclass
class CheckRunResult:
    """What ``check`` produced: per-model check results and the summary table."""

    run_dir: Path | None
    data: RunData
    results: dict[str, Any]
    summary: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)


def check(
    runs: str | Path | RunData | None = None,
    *,
    models: Sequence[str] = (defaults.MODEL,),
    models_dir: str | Path | None = None,
    settings: SamplerSettings | None = None,
    backend: str = "auto",
    fits_dir: str | Path | None = None,
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    command: str | None = None,
) -> CheckRunResult:
    """Posterior predictive checks of each model (see :mod:`horizon_zoo.checks`).

    Fits the models (or reuses saved fits from ``fits_dir``), runs every check and writes the
    p-value tables, calibration tables and figures, plus ``summary.md`` with the model x statistic
    table. Returns the :class:`horizon_zoo.checks.CheckResult` of each model.
    """
    from horizon_zoo.check_plots import write_check_outputs
    from horizon_zoo.checks import checks_summary, run_checks

    settings = settings or SamplerSettings()
    data = runs if isinstance(runs, RunData) else load(runs)
    for warning in data.warnings:
        log.warning(warning)
    zoo = select_models(models, models_dir)
    zoo, _ = _models_the_data_can_feed(zoo, data, explicit=True)
    run_dir = new_run_dir("check", runs_root, out) if write else None
    manifest = _begin_run(run_dir, "check", command, data, zoo, settings, backend)
    fitted = _fits_or_saved(zoo, data, settings, backend, fits_dir, run_dir, progress)
    fits = {name: f.idata for name, f in fitted.items()}
    results, figures = {}, []
    for name, idata in fits.items():
        log.info("checking %s", name)
        results[name] = run_checks(idata, name)
        if run_dir:
            figures += write_check_outputs(results[name], idata, run_dir, agent_order(data))
    summary = checks_summary(results)
    result = CheckRunResult(run_dir, data, results, summary, figures, diagnostics_table(fitted))
    if run_dir:
        from horizon_zoo.rundir import markdown_table

        write_table(summary, run_dir / "tables", "checks")
        write_table(result.diagnostics, run_dir / "tables", "diagnostics")
        lines = ["# horizon-zoo check", "", f"Command: `{manifest['command']}`", "",
                 f"Data: {data.source}: {len(data.runs)} runs, {len(data.agents)} agents, {len(data.tasks)} tasks, "
                 f"{len(data.families)} families.", "", "## Diagnostics", "",
                 markdown_table(result.diagnostics[DIAGNOSTICS_SHOWN]),
                 "## Checks", "", CHECKS_LEGEND, "", markdown_table(summary)]
        for name, r in results.items():
            lines += [f"## {name}", "", markdown_table(r.p_values[r.p_values["kind"] != "family"])]
            lines += [f"![{p.stem}](figures/{p.name})" for p in figures if p.stem.endswith("_" + name)]
            lines.append("")
        atomic_write_text(run_dir / "summary.md", "\n".join(lines) + "\n")
        _end_run(run_dir, manifest, sorted(fits))
    return result


def _model_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["model", *[c for c in table.columns if c != "model"]]]


def metr_reference(data: RunData, qs: Sequence[float] = DEFAULT_QS, *, n_boot: int = DEFAULT_BOOTSTRAP,
                   regularization: float = DEFAULT_REGULARIZATION, seed: int = 0) -> MetrReference:
    """METR's frequentist horizons of ``data`` (:mod:`horizon_zoo.metr`), with the weights the
    data was loaded with and its release dates for the doubling time."""
    from horizon_zoo.metr import reference

    log.info("METR reference: per-agent penalised logistic (regularization %g), %d bootstrap resamples",
             regularization, n_boot)
    return reference(data, qs, weights=data.weights, regularization=regularization, n_boot=n_boot, seed=seed,
                     release_dates=data.release_dates)


def metr(
    runs: str | Path | RunData | None = None,
    *,
    qs: Sequence[float] = DEFAULT_QS,
    n_boot: int = DEFAULT_BOOTSTRAP,
    regularization: float = DEFAULT_REGULARIZATION,
    seed: int = 0,
    out: str | Path | None = None,
    runs_root: str | Path | None = None,
    command: str | None = None,
) -> tuple[Path, MetrReference]:
    """METR's table on its own (no Stan fit), in a new run directory: ``tables/metr.csv`` and
    ``tables/metr_doubling.csv``, ``summary.md`` and the report."""
    check_qs(qs)
    data = runs if isinstance(runs, RunData) else load(runs)
    run_dir = new_run_dir("metr", runs_root, out)
    manifest = _begin_run(run_dir, "metr", command, data, [], SamplerSettings(), "none")
    with _marked_if_interrupted(run_dir, manifest):
        ref = metr_reference(data, qs, n_boot=n_boot, regularization=regularization, seed=seed)
    _write_metr_tables(ref, run_dir / "tables")
    from horizon_zoo.rundir import markdown_table

    lines = ["# horizon-zoo metr: METR's reference horizons", "", f"Command: `{manifest['command']}`", "",
             f"Settings: {ref.settings}; {ref.seconds:.1f} s.", "", metr_table_markdown(ref)]
    if not ref.doubling.empty:
        lines += ["## Doubling time of p50 along the frontier (months, bootstrap 95%)", "",
                  markdown_table(ref.doubling)]
    atomic_write_text(run_dir / "summary.md", "\n".join(lines) + "\n")
    _end_run(run_dir, manifest, [])
    return run_dir, ref


def metr_table_markdown(ref: MetrReference) -> str:
    """METR's horizons, one row per agent and one ``pXX [95% boot]`` column per q."""
    from horizon_zoo.horizons import format_reference_minutes as fmt
    from horizon_zoo.rundir import markdown_table

    t = ref.table.assign(text=[f"{fmt(h)} [{fmt(lo)}, {fmt(hi)}]"
                               for h, lo, hi in zip(ref.table["horizon_min"], ref.table["lo95_min"],
                                                    ref.table["hi95_min"], strict=True)])
    wide = t.pivot_table(index="agent", columns="q", values="text", aggfunc="first")
    wide.columns = [f"p{round(q * 100)} [95% boot]" for q in wide.columns]
    slopes = t.drop_duplicates("agent").set_index("agent")[["slope", "intercept"]]
    return markdown_table(wide.join(slopes).reset_index())


def _write_metr_tables(ref: MetrReference, tables: Path) -> None:
    write_table(ref.table, tables, "metr")
    if not ref.doubling.empty:
        write_table(ref.doubling, tables, "metr_doubling")


def _write_horizon_tables(result: HorizonsResult, command: str) -> None:
    from horizon_zoo.rundir import markdown_table
    from horizon_zoo.trend import doubling_text

    assert result.run_dir is not None
    tables = result.run_dir / "tables"
    write_table(result.horizons, tables, "horizons")
    ref = result.metr.table if result.metr else None
    wide = pd.concat([wide_horizon_table(result.horizons[result.horizons["model"] == m], ref).assign(model=m)
                      for m in result.fits], ignore_index=True)
    wide = _model_first(wide)
    write_table(wide, tables, "horizons_wide")
    if result.metr:
        _write_metr_tables(result.metr, tables)
    write_table(result.diagnostics, tables, "diagnostics")
    lines = ["# horizon-zoo horizons", "", f"Command: `{command}`", "",
             f"Data: {result.data.source}: {len(result.data.runs)} runs, {len(result.data.agents)} agents.", "",
             "## Diagnostics", "", markdown_table(result.diagnostics[DIAGNOSTICS_SHOWN]),
             "## Horizons, median [95% interval]", "", markdown_table(wide)]
    named = {"doubling": result.doubling, "doubling_ratio": result.doubling_ratio,
             "horizon_ratio": result.horizon_ratio, "forecasts": result.forecasts}
    for stem, frame in named.items():
        if not frame.empty:
            write_table(frame, tables, stem)
    if not result.doubling.empty:
        d = result.doubling
        shown = d.assign(doubling=doubling_text(d))
        lines += ["## Doubling time of the horizon in months, median [95% interval]", "",
                  markdown_table(shown[["model", "q", "curve", "trend", "doubling", "p_shrinking", "n_agents",
                                        "max_offgrid_share", "agents"]])]
    if not result.doubling_ratio.empty:
        lines += ["## Ratio of the p80 and p50 doubling times (1 = parallel trends)", "",
                  markdown_table(result.doubling_ratio)]
    lines += ["## Each agent's p80 / p50 horizon ratio (a constant hazard predicts 0.32)", "",
              markdown_table(result.horizon_ratio)]
    if not result.forecasts.empty:
        f = result.forecasts
        lines += ["## When the trend reaches each threshold (median [95% interval]; far = beyond the data's "
                  "own span of dates)", "",
                  markdown_table(f[["model", "q", "curve", "trend", "threshold", "median_date", "lo95_date",
                                    "hi95_date", "p_never", "far"]])]
    lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in result.figures]
    atomic_write_text(result.run_dir / "summary.md", "\n".join(lines) + "\n")
