"""Before and after carrying the unidentified means (issue 37, item 6).

    .venv/bin/python scripts/identification.py --name metr-early --before b88a1ca \\
        --runs ../shared/data/metr-early/all_runs.jsonl --out runs/identification-metr-early

Zoo models with a direction the likelihood cannot see: raising every agent's intercept and
lowering every family (``logistic_task_effects``) or an agent's agent-by-family offsets
(``agent_family_interaction``) by the same amount (``irt_2pl``'s difficulty residuals were tried
too and reverted; its rows stay in the kept results.json). They now sample the intercept with that mean carried in it (a shift with unit Jacobian: the same model in
other coordinates). This script fits each model's program as it was at commit ``--before``
(``<model>_before``, copied with that commit's includes under ``--out``) and as it is now, with
the same runs, settings and seeds, on CmdStan, and writes ``docs/identification/<name>.md``:
per fit the largest R-hat and smallest bulk ESS over the quantities whose meaning both
programs share (the slopes, the sds and every p_curve value), divergences, sampling time and
bulk ESS per second; and, as the check that the model did not change, how far apart the two
programs' posterior means of p_curve are in units of their Monte Carlo standard error.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from horizon_zoo.api import load
from horizon_zoo.backends import SamplerSettings
from horizon_zoo.fit import fit_model
from horizon_zoo.registry import INCLUDE_DIR, load_model, resolve
from horizon_zoo.rundir import atomic_write_text, markdown_table

REPO = Path(__file__).resolve().parents[1]
MODELS = ("logistic_task_effects", "agent_family_interaction")
# Variables whose meaning changed (they now carry the means) or that are per-draw noise.
NOT_SHARED = {"alpha", "ability", "difficulty", "log_lik", "y_rep"}


def before_variant(name: str, commit: str, directory: Path) -> Path:
    """Model ``name``'s program at ``commit``, renamed ``<name>_before``, beside that commit's includes
    (``directory/include``, which today's registry searches first)."""
    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout

    includes = directory / INCLUDE_DIR
    includes.mkdir(parents=True, exist_ok=True)
    # empty before the zoo had shared includes (the programs then had none)
    listing = subprocess.run(["git", "ls-tree", "--name-only", f"{commit}:stan_models/{INCLUDE_DIR}"], cwd=REPO,
                             capture_output=True, text=True).stdout.split()
    for file in listing:
        atomic_write_text(includes / file, show(f"stan_models/{INCLUDE_DIR}/{file}"))
    code = show(f"stan_models/{name}.stan")
    if f"name: {name}\n" not in code:
        raise SystemExit(f"{name} at {commit}: its header does not say 'name: {name}'")
    path = directory / f"{name}_before.stan"
    atomic_write_text(path, code.replace(f"name: {name}\n", f"name: {name}_before\n", 1))
    return path


def shared_posterior(idata: xr.DataTree) -> xr.Dataset:
    """The posterior variables both programs define with the same meaning."""
    post = idata["posterior"].to_dataset()
    return post[[v for v in post.data_vars if v not in NOT_SHARED and not v.startswith(("z_", "r_"))]]


def fit_row(label: str, fit, shared: xr.Dataset) -> dict[str, object]:
    rhat = azs.rhat(shared)
    ess = azs.ess(shared, method="bulk")
    max_rhat = max(float(rhat[v].max()) for v in rhat.data_vars)
    min_ess = min(float(ess[v].min()) for v in ess.data_vars)
    seconds = float(fit.info["timings"]["sample_s"])
    diag = fit.diagnostics
    return {"program": label, "seed": fit.info["settings"]["seed"],
            "max R-hat (shared)": round(max_rhat, 4), "min bulk ESS (shared)": round(min_ess),
            "max R-hat (parameters)": round(diag.max_rhat, 4), "min bulk ESS (parameters)": round(diag.min_ess_bulk),
            "divergences": int(diag.divergences), "sampling s": round(seconds, 1),
            "bulk ESS / s (shared)": round(min_ess / seconds, 2)}


def p_curve_gap(a: xr.DataTree, b: xr.DataTree) -> float:
    """Largest |difference of posterior means| of p_curve between two fits, in units of the
    Monte Carlo standard error of that difference; grid points where both curves are flat at
    0 or 1 (no posterior spread) are left out."""
    pa, pb = a["posterior"]["p_curve"], b["posterior"]["p_curve"]
    se = np.sqrt(azs.mcse(pa.to_dataset(), method="mean")["p_curve"] ** 2
                 + azs.mcse(pb.to_dataset(), method="mean")["p_curve"] ** 2)
    diff = abs(pa.mean(("chain", "draw")) - pb.mean(("chain", "draw")))
    spread = (pa.std(("chain", "draw")) + pb.std(("chain", "draw"))) > 1e-6
    return float((diff / se).where(spread).max())


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and program over the seeds: the worst R-hat, the mean smallest bulk ESS and ESS per
    second of the shared quantities, all divergences; and ESS/s now over before."""
    rows = []
    for (model, program), g in table.groupby(["model", "program"], sort=False):
        rows.append({"model": model, "program": program, "seeds": len(g),
                     "worst R-hat (shared)": g["max R-hat (shared)"].max(),
                     "mean min bulk ESS (shared)": round(g["min bulk ESS (shared)"].mean()),
                     "mean bulk ESS / s (shared)": round(g["bulk ESS / s (shared)"].mean(), 1),
                     "divergences": int(g["divergences"].sum())})
    out = pd.DataFrame(rows)
    is_before = out["program"].str.endswith("_before")
    rate = out["mean bulk ESS / s (shared)"]
    before = rate[is_before].set_axis(out.loc[is_before, "model"])
    out["ESS/s vs before"] = ["" if b else round(v / before[m], 2)
                              for m, b, v in zip(out["model"], is_before, rate, strict=True)]
    return out


def page(name: str, commands: dict[str, str], before: str, table: pd.DataFrame, gaps: pd.DataFrame) -> str:
    order = {m: i for i, m in enumerate(MODELS)}

    def zoo_order(column: pd.Series) -> pd.Series:
        return column.map(order).fillna(len(order)) if column.name == "model" else column

    table = table.sort_values(["model", "seed"], key=zoo_order, kind="stable")
    gaps = gaps.sort_values(["model", "seed"], key=zoo_order, kind="stable")
    distinct = list(dict.fromkeys(commands.values()))
    # one command: named alone; several (models refitted alone): each with the models it fitted
    generated = "; ".join(f"`{c}`" + (f" ({', '.join(m for m, k in commands.items() if k == c)})"
                                       if len(distinct) > 1 else "") for c in distinct)
    return "\n".join([
        f"# Carrying the unidentified means: {name}", "",
        f"Generated by {generated} (do not edit). `<model>_before` is the program at commit `{before}`; "
        "`<model>` is today's, which samples the agent intercept with the mean the likelihood cannot "
        "see carried in it (a shift with unit Jacobian, so the posterior is the same model's). Same "
        "runs, sampler settings and seeds, CmdStan. *Shared* quantities are those with one meaning "
        "in both programs (slopes, sds and every p_curve value); *parameters* are each program's own "
        "parameters block, what `compare` diagnoses. Over the seeds:", "",
        markdown_table(summary(table)), "",
        "Each fit:", "",
        markdown_table(table), "",
        "Same model? The largest gap between the two programs' posterior means of p_curve, in Monte "
        "Carlo standard errors of the difference (|gap| < 4 is what two samplers of one posterior give "
        "over a few hundred grid points):", "",
        markdown_table(gaps), "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="dataset name: the page is docs/identification/NAME.md")
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--before", required=True, help="commit whose programs are the 'before'")
    parser.add_argument("--out", required=True, type=Path, help="directory for the copies and results.json (kept)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", default="1,2", help="comma-separated sampler seeds")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--page-only", action="store_true", help="rewrite the page from --out/results.json")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    results = args.out / "results.json"
    if not args.page_only:
        data = load(args.runs)
        rows, gaps = [], []
        for name in models:
            programs = {f"{name}_before": load_model(before_variant(name, args.before, args.out / "models")),
                        name: resolve(name)}
            for seed in (int(s) for s in args.seeds.split(",")):
                settings = SamplerSettings(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=seed)
                fits = {}
                for label, model in programs.items():
                    print(f"identification: {label} seed {seed}", file=sys.stderr, flush=True)
                    fits[label] = fit_model(model, data, settings=replace(settings), backend="cmdstanpy",
                                            progress=False)
                    rows.append({"model": name, **fit_row(label, fits[label], shared_posterior(fits[label].idata))})
                gaps.append({"model": name, "seed": seed,
                             "max p_curve gap / MCSE": round(p_curve_gap(*(f.idata for f in fits.values())), 2)})
        # a run replaces the rows of the models it fitted and keeps the others' (a model can be refitted
        # alone, e.g. after a run that shared the machine)
        kept = (json.loads(results.read_text(encoding="utf-8")) if results.exists()
                else {"fits": [], "gaps": [], "commands": {}})
        command = "python scripts/identification.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        kept = {"fits": [r for r in kept["fits"] if r["model"] not in models] + rows,
                "gaps": [g for g in kept["gaps"] if g["model"] not in models] + gaps,
                "commands": {**kept.get("commands", {}), **dict.fromkeys(models, command)}}
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(results, json.dumps(kept, indent=1))
    kept = json.loads(results.read_text(encoding="utf-8"))
    # the page shows the models asked for (a model tried and reverted keeps its rows in results.json)
    kept["fits"] = [r for r in kept["fits"] if r["model"] in models]
    kept["gaps"] = [g for g in kept["gaps"] if g["model"] in models]
    if "commands" not in kept:  # a results.json from before commands were kept: this invocation made it
        command = "python scripts/identification.py " + shlex.join(
            a for a in (argv if argv is not None else sys.argv[1:]) if a != "--page-only")
        kept["commands"] = dict.fromkeys(dict.fromkeys(r["model"] for r in kept["fits"]), command)
    commands = {m: c for m, c in kept["commands"].items() if m in models}
    text = page(args.name, commands, args.before, pd.DataFrame(kept["fits"]), pd.DataFrame(kept["gaps"]))
    print(text)
    target = REPO / "docs" / "identification" / f"{args.name}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
