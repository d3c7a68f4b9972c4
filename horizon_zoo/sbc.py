"""Simulation-based calibration (SBC) of a zoo model on a given design.

Each simulation draws parameters from the model's prior and data from its likelihood on the
design (the same Stan program, :func:`horizon_zoo.simulate.draw_from_prior`), fits the model to
those data and records, for every checked quantity, the rank of the true value among ``L``
evenly thinned posterior draws. If the sampler and the program are right, ranks are uniform on
``0..L`` (Talts et al. 2018, arXiv:1804.06788; Modrak et al. 2023 for the ECDF view).

Checked quantities: every scalar parameter, every element of agent-level parameters, and each
agent's 50% horizon (read off ``p_curve`` exactly as the reports do). Task-level parameters are
left out: hundreds of them per model add multiple testing, not information about the horizons.

Each simulation is cached as one JSON file keyed by model source, design, settings and seed,
so an interrupted SBC resumes where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from horizon_zoo import defaults
from horizon_zoo.backends import SamplerSettings, cache_subdir, resolve_backend
from horizon_zoo.data import RunData, load_runs
from horizon_zoo.errors import HorizonZooError
from horizon_zoo.registry import ZooModel

log = logging.getLogger(__name__)

DEFAULT_RANKS = defaults.SBC_RANKS
DEFAULT_SETTINGS = SamplerSettings(chains=2, warmup=500, draws=500)
SBC_CACHE_ENV = "HORIZON_ZOO_SBC_CACHE"
ALPHA = 0.05  # family-wise level over a model's quantities (Bonferroni)


def design_subset(data: RunData, max_agents: int | None, max_tasks: int | None) -> RunData:
    """The design cut to ``max_agents`` agents (evenly spaced in the data's order) and
    ``max_tasks`` tasks (evenly spaced in length, so the range of lengths is kept); ``None`` or 0
    keeps all. Release dates are kept. SBC refits the model once per simulation, so the design
    sets its cost."""
    from horizon_zoo.simulate import runs_table

    agents = list(data.agents)
    if max_agents and len(agents) > max_agents:
        agents = [agents[i] for i in np.linspace(0, len(agents) - 1, max_agents).round().astype(int)]
    tasks = data.tasks.sort_values("human_minutes")["task_id"].tolist()
    if max_tasks and len(tasks) > max_tasks:
        tasks = [tasks[i] for i in np.linspace(0, len(tasks) - 1, max_tasks).round().astype(int)]
    runs = runs_table(data)
    runs = runs[runs["alias"].isin(agents) & runs["task_id"].isin(tasks)]
    subset = load_runs(runs.reset_index(drop=True), exclude_agents=(),
                       source=f"{data.source} ({len(agents)} agents x {len(tasks)} tasks)")
    return replace(subset, release_dates=data.release_dates)


def checked_quantities(model: ZooModel) -> list[str]:
    """Parameters whose every element SBC ranks: scalars and agent-level vectors."""
    dims = model.dims()
    return [name for name in model.info.get("parameters", {}) if dims.get(name, []) in ([], ["agent"])]


def default_cache_dir() -> Path:
    """``$HORIZON_ZOO_SBC_CACHE``, else ``~/.cache/horizon-zoo/sbc``."""
    return cache_subdir(SBC_CACHE_ENV, "sbc")


def sim_key(model: ZooModel, design: RunData, settings: SamplerSettings, backend: str, seed: int, ranks: int) -> str:
    """Cache key of one simulation: any change to model, design or settings misses the cache."""
    spec = json.dumps({"model": model.sha256, "design": design.fingerprint(), "settings": settings.as_dict(),
                       "backend": backend, "seed": seed, "ranks": ranks}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:24]


def rank_of(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each true value among draws (draw axis first), ties split uniformly at random.

    Ties are real here: an off-grid horizon is -inf or +inf in the truth and in many draws.
    """
    truth = np.asarray(truth, dtype=float)
    below = (draws < truth).sum(axis=0)
    ties = (draws == truth).sum(axis=0)
    return below + rng.integers(0, ties + 1)


def thin(values: np.ndarray, ranks: int) -> np.ndarray:
    """``ranks`` draws evenly spaced over chains x draws (draw axis first in the result)."""
    flat = values.reshape(-1, *values.shape[2:])
    if flat.shape[0] < ranks:
        raise HorizonZooError(f"SBC needs at least {ranks} posterior draws; the settings give {flat.shape[0]}.")
    return flat[np.linspace(0, flat.shape[0] - 1, ranks).round().astype(int)]


def run_simulation(model: ZooModel, design: RunData, sim: int, seed: int, settings: SamplerSettings,
                   backend: str, ranks: int, cache: Path) -> dict[str, Any]:
    """One SBC simulation (or its cached result): ranks of every checked quantity and the fit's
    diagnostics. A fit that raises is recorded with its error, not raised."""
    path = cache / f"{model.name}-{sim}-{sim_key(model, design, settings, backend, seed, ranks)}.json"
    from horizon_zoo.rundir import atomic_write_text, read_cached_record

    cached = read_cached_record(path, "SBC simulation")
    if cached is not None:
        return {**cached, "cached": True}
    from horizon_zoo.fit import fit_model
    from horizon_zoo.horizons import crossing_log_minutes
    from horizon_zoo.simulate import draw_from_prior

    record: dict[str, Any] = {"model": model.name, "sim": sim, "seed": seed, "L": ranks}
    try:
        truth, simulated = draw_from_prior(model, design, seed=seed, backend=backend, extra=("p_curve",))
        fit = fit_model(model, simulated, settings=replace(settings, seed=seed), backend=backend, progress=False)
    except HorizonZooError as exc:
        record["error"] = str(exc)
    else:
        rng = np.random.default_rng(seed)
        post = fit.idata["posterior"]
        agents = list(design.agents)
        result: dict[str, int] = {}
        for name in checked_quantities(model):
            r = np.atleast_1d(rank_of(truth[name], thin(post[name].values, ranks), rng))
            labels = [name] if np.ndim(truth[name]) == 0 else [f"{name}[{a}]" for a in agents]
            result.update({label: int(v) for label, v in zip(labels, r, strict=True)})
        log_grid = np.log(post["grid"].values)
        true_h50 = crossing_log_minutes(truth["p_curve"], log_grid, 0.5)
        draws_h50 = crossing_log_minutes(thin(post["p_curve"].transpose("chain", "draw", "agent", "grid").values,
                                              ranks), log_grid, 0.5)
        result.update({f"h50[{a}]": int(v) for a, v in zip(agents, rank_of(true_h50, draws_h50, rng), strict=True)})
        d = fit.diagnostics
        record.update(ranks=result, divergences=d.divergences, max_rhat=d.max_rhat, min_ess_bulk=d.min_ess_bulk,
                      verdict=d.verdict)
    atomic_write_text(path, json.dumps(record) + "\n")
    return {**record, "cached": False}


def check_sims(sims: int) -> None:
    """Refuse fewer than one simulation (before any run directory or fit is made)."""
    if sims < 1:
        raise HorizonZooError(f"--sims must be at least 1, got {sims}.")


def run_sbc(
    model: ZooModel,
    design: RunData,
    sims: int,
    *,
    settings: SamplerSettings = DEFAULT_SETTINGS,
    backend: str = "auto",
    ranks: int = DEFAULT_RANKS,
    jobs: int = 1,
    executor: Executor | None = None,
    cache: Path | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Run ``sims`` simulations of ``model`` on ``design``; one row per (simulation, quantity).

    Columns: ``model, sim, quantity, rank, L, divergences, max_rhat, verdict``; simulations whose
    fit failed appear once with ``quantity`` NaN and their ``error``.
    """
    from horizon_zoo.parallel import run_all

    check_sims(sims)
    backend = resolve_backend(backend)
    cache = cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    # seeds far apart per simulation, reproducible from one seed
    seeds = np.random.default_rng(seed).integers(1, 2**31 - 1, sims)
    calls = [(model, design, i, int(s), settings, backend, ranks, cache) for i, s in enumerate(seeds)]
    rows = []
    for done, record in enumerate(
            run_all(run_simulation, calls, jobs=jobs, executor=executor, writes_into=[cache]), start=1):
        log.info("SBC %s [%d/%d] simulation %d: %s", model.name, done, sims, record["sim"],
                 "cached" if record["cached"] else
                 (f"failed: {record['error']}" if "error" in record else
                  f"fitted ({record['verdict']}, {record['divergences']} divergences)"))
        base = {k: record.get(k) for k in ("model", "sim", "L", "divergences", "max_rhat", "verdict", "error")}
        if "error" in record:
            rows.append({**base, "quantity": None, "rank": None})
        rows.extend({**base, "quantity": q, "rank": r} for q, r in record.get("ranks", {}).items())
    return pd.DataFrame(rows).sort_values(["sim", "quantity"], na_position="first", ignore_index=True)


def uniformity(ranks: pd.DataFrame, bins: int | None = None) -> pd.DataFrame:
    """Per quantity: chi-square test that ranks are uniform on ``0..L`` (p-value from the
    statistic's simulated null distribution).

    ``bins`` defaults to about one bin per 5 simulations (5 to 25 bins, a divisor of L + 1 so each
    bin is equally likely). Columns: ``model, quantity, sims, bins, chi2, p_value, flagged``, where
    ``flagged`` applies Bonferroni over the model's quantities at level 0.05.
    """
    rows = []
    for (model, quantity), group in ranks.dropna(subset=["quantity"]).groupby(["model", "quantity"], sort=False):
        n_values = int(group["L"].iloc[0]) + 1
        n = len(group)
        b = bins or max(b for b in (5, 10, 20, 25) if b <= max(5, n // 5) and n_values % b == 0)
        counts = np.bincount((group["rank"].to_numpy(int) * b) // n_values, minlength=b)
        chi2 = stats.chisquare(counts).statistic
        p = float(np.mean(_null_chi2(n, b) >= chi2 - 1e-9))
        rows.append({"model": model, "quantity": quantity, "sims": n, "bins": b, "chi2": float(chi2),
                     "p_value": float(p)})
    table = pd.DataFrame(rows)
    if len(table):
        per_model = table.groupby("model")["quantity"].transform("size")
        table["flagged"] = table["p_value"] < ALPHA / per_model
    return table


@functools.cache
def _null_chi2(n: int, bins: int, reps: int = 20000) -> np.ndarray:
    """Chi-square statistics of ``reps`` sets of ``n`` uniform ranks: an exact-by-simulation null,
    because with tens of simulations the expected counts per bin are too small for the
    chi-square approximation (and the Bonferroni threshold sits far in its tail)."""
    counts = np.random.default_rng(n * 1000 + bins).multinomial(n, np.full(bins, 1 / bins), reps)
    expected = n / bins
    return ((counts - expected) ** 2 / expected).sum(axis=1)


def sbc_summary(ranks: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """One row per model: simulations, quantities, smallest p-value, flagged quantities, the
    share of simulations whose fit diverged or failed, and a verdict."""
    rows = []
    for model, group in ranks.groupby("model", sort=False):
        fits = group.drop_duplicates("sim")
        t = tests[tests["model"] == model]
        flagged = t.loc[t["flagged"], "quantity"].tolist() if len(t) else []
        failed = int(fits["error"].notna().sum()) if "error" in fits else 0
        diverged = int((fits["divergences"].fillna(0) > 0).sum())
        rows.append({"model": model, "sims": len(fits), "failed fits": failed,
                     "fits with divergences": diverged, "quantities": len(t),
                     "min p": float(t["p_value"].min()) if len(t) else float("nan"),
                     "flagged": ", ".join(flagged),
                     "verdict": "fail" if flagged else ("warn" if failed or diverged > 0.05 * len(fits) else "pass")})
    return pd.DataFrame(rows)


def ecdf_band(n_sims: int, n_values: int, level: float = 0.95, reps: int = 2000, seed: int = 1) -> np.ndarray:
    """Half-width of a simultaneous ``level`` band for the ECDF difference of ``n_sims`` uniform
    ranks on ``0..n_values-1``, at z = 1/n_values ... (n_values-1)/n_values, found by simulation
    (the pointwise binomial sd scaled by the quantile of the largest standardised deviation)."""
    rng = np.random.default_rng(seed)
    z = np.arange(1, n_values) / n_values
    sd = np.sqrt(z * (1 - z) / n_sims)
    sims = rng.integers(0, n_values, (reps, n_sims))
    ecdf = np.stack([(sims < k).mean(axis=1) for k in range(1, n_values)], axis=1)
    scale = np.quantile(np.max(np.abs(ecdf - z) / sd, axis=1), level)
    return scale * sd


def plot_sbc(ranks: pd.DataFrame, tests: pd.DataFrame, model: str):
    """Rank ECDF minus the uniform CDF per parameter (agent elements overlaid), with the 95%
    simultaneous band; a line leaving the band is drawn red. Returns a matplotlib figure."""
    import matplotlib.pyplot as plt

    data = ranks[(ranks["model"] == model)].dropna(subset=["quantity"])
    if data.empty:
        raise HorizonZooError(f"no SBC ranks for {model}: every simulation failed.")
    n_values = int(data["L"].iloc[0]) + 1
    base = data["quantity"].str.replace(r"\[.*\]$", "", regex=True)  # alpha[agent] -> alpha
    groups = sorted(base.unique(), key=lambda g: (g == "h50", g))
    ncol = min(4, len(groups))
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False, sharex=True)
    z = np.arange(1, n_values) / n_values
    p_values = dict(zip(tests["quantity"], tests["p_value"], strict=True)) if len(tests) else {}
    for ax, group in zip(axes.flat, groups, strict=False):
        members = data[base == group]
        n_sims = members.groupby("quantity").size().min()
        band = ecdf_band(int(n_sims), n_values)
        ax.fill_between(z, -band, band, color="0.85", lw=0)
        worst = 1.0
        for quantity, q in members.groupby("quantity"):
            ecdf = np.array([(q["rank"].to_numpy() < k).mean() for k in range(1, n_values)])
            outside = bool(np.any(np.abs(ecdf - z) > band))
            ax.plot(z, ecdf - z, color="tab:red" if outside else "tab:blue", lw=1.4 if outside else 0.9,
                    alpha=0.9 if outside else 0.6)
            worst = min(worst, p_values.get(quantity, 1.0))
        label = f"{group}" + (f" ({members['quantity'].nunique()} agents)" if members["quantity"].nunique() > 1 else "")
        ax.set_title(f"{label}\nmin p = {worst:.2g}", fontsize=9)
        ax.axhline(0, color="0.4", lw=0.6)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("fractional rank")
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF - uniform")
    fig.suptitle(f"SBC of {model}: {data['sim'].nunique()} simulations, grey = 95% simultaneous band", fontsize=10)
    fig.tight_layout()
    return fig


def write_sbc_outputs(ranks: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Write rank, test and summary tables and one figure per model; return the summary."""
    from horizon_zoo.plots import save_figure
    from horizon_zoo.rundir import write_table

    tests = uniformity(ranks)
    summary = sbc_summary(ranks, tests)
    write_table(ranks, run_dir / "tables", "sbc_ranks")
    write_table(tests, run_dir / "tables", "sbc_tests")
    write_table(summary, run_dir / "tables", "sbc")
    for model in summary["model"]:
        if ranks.loc[ranks["model"] == model, "quantity"].notna().any():
            save_figure(plot_sbc(ranks, tests[tests["model"] == model], model), run_dir / "figures" / f"sbc_{model}.png")
    return summary


def sbc_models(models: Sequence[ZooModel], design: RunData, sims: int, **kwargs: Any) -> pd.DataFrame:
    """:func:`run_sbc` for each model; the rank rows of all of them."""
    return pd.concat([run_sbc(m, design, sims, **kwargs) for m in models], ignore_index=True)
