"""Markdown tables of a comparison run for the docs: LOO with diagnostics, residual checks, and
(for ``compare --cv``) grouped-CV tables and the cross-validated residual-structure checks.

    .venv/bin/python scripts/results_table.py RUN_DIR [--checks CHECK_RUN_DIR] [--figures DIR]
        [--readme FILE --name NAME]

RUN_DIR is a ``horizon-zoo compare`` run directory; checks are read from its tables or from a
separate ``horizon-zoo check`` run directory. Prints the tables ``stan_models/README.md`` shows;
``--figures DIR`` copies the cross-validated residual figures of METR's logistic and of the
models the verdict names into DIR (for the docs).
``--readme FILE --name NAME`` replaces the block between ``<!-- results: NAME -->`` and
``<!-- end results: NAME -->`` of FILE with the same tables, the run's settings and the
generated verdict sentences, so that no number of the block is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from horizon_zoo.rundir import markdown_table

PLURAL = {"family": "families"}


def loo_with_diagnostics(run_dir: Path) -> pd.DataFrame:
    loo = pd.read_csv(run_dir / "tables" / "loo.csv")
    diag = pd.read_csv(run_dir / "tables" / "diagnostics.csv").set_index("model")
    rows = []
    for r in loo.itertuples():
        d = diag.loc[r.model]
        # the model's header may raise adapt_delta above the run's; the fit records what was used
        settings = json.loads((run_dir / "fits" / f"{r.model}.json").read_text())["settings"]
        rows.append({
            "model": r.model, "elpd_loo (SE)": f"{r.elpd_loo:.0f} ({r.se:.0f})",
            "elpd_diff (dSE)": "0" if r.elpd_diff == 0 else f"{r.elpd_diff:.0f} ({r.dse:.0f})",
            "p_loo": f"{r.p_loo:.0f}", "Pareto k > 0.7": int(r.n_high_k),
            "max R-hat": f"{d.max_rhat:.3f}", "min bulk ESS": f"{d.min_ess_bulk:.0f}",
            "divergences": int(d.divergences), "adapt_delta": settings["adapt_delta"],
            "sampling (s)": f"{d.sample_s:.0f}",
        })
    return pd.DataFrame(rows)


def residual_checks(check_dir: Path, order: list[str]) -> pd.DataFrame:
    rows = []
    for name in order:
        path = check_dir / "tables" / f"checks_{name}.csv"
        if not path.is_file():
            continue
        t = pd.read_csv(path).set_index("statistic")
        row = {"model": name}
        for stat, label in (("agent residual eigen share", "agent eigen share"),
                            ("task block (within - between family)", "task block")):
            s = t.loc[stat]
            row[f"{label}: observed"] = f"{s.observed:.2f}"
            row[f"{label}: replicated [95%]"] = f"{s.replicated_median:.2f} [{s.lo95:.2f}, {s.hi95:.2f}]"
            row[f"{label}: p"] = f"{s.p_value:.3f}" + (" *" if s.flagged else "")
        rows.append(row)
    return pd.DataFrame(rows)


def structure_table(run_dir: Path, order: list[str]) -> pd.DataFrame:
    """Cross-validated residual-structure checks per model (``tables/checks_cv.csv``), with the
    in-sample p-value beside each."""
    path = run_dir / "tables" / "checks_cv.csv"
    if not path.is_file():
        return pd.DataFrame()
    t = pd.read_csv(path)
    rows = []
    for name in [m for m in order if m in set(t["model"])]:
        row = {"model": name}
        for stat, label in (("agent_eigen_share", "agent eigen share (task folds)"),
                            ("task_block", "task block (family folds)")):
            r = t[(t["model"] == name) & (t["statistic"] == stat)]
            if r.empty:
                continue
            r = r.iloc[0]
            row[f"{label}: observed"] = f"{r.observed:.2f}"
            row[f"{label}: replicated [95%]"] = f"{r.replicated_median:.2f} [{r.lo95:.2f}, {r.hi95:.2f}]"
            row[f"{label}: p (CV)"] = f"{r.p_value:.3f}" + (" *" if r.flagged else "")
            if "p_in_sample" in r:
                row[f"{label}: p (in-sample)"] = r.p_in_sample
        rows.append(row)
    return pd.DataFrame(rows)


def structure_sentence(run_dir: Path) -> str:
    """Which models' cross-validated p-values both lie in [0.025, 0.975]; if none, the closest
    (largest smaller p)."""
    return structure_verdict(run_dir)[0]


def structure_verdict(run_dir: Path) -> tuple[str, list[str]]:
    """The sentence of :func:`structure_sentence` and the models it names."""
    t = pd.read_csv(run_dir / "tables" / "checks_cv.csv")
    t = t[t["statistic"].isin(["task_block", "agent_eigen_share"])]
    wide = t.pivot_table(index="model", columns="statistic", values="p_value")
    if set(wide.columns) != {"task_block", "agent_eigen_share"}:
        return "Both cross-validated statistics were not computed (needs --cv task,family).", []
    # distance of a p-value from the accepted band [0.025, 0.975]: 0 inside it
    worst = wide.apply(lambda col: col.map(lambda p: max(0.025 - p, p - 0.975, 0.0))).max(axis=1)
    inside = sorted(worst.index[worst == 0])
    if inside:
        return ("Models whose cross-validated p-values for both statistics lie in [0.025, 0.975]: "
                + ", ".join(f"`{m}`" for m in inside) + "."), inside
    closest = str(worst.idxmin())
    return (f"No model has both cross-validated p-values in [0.025, 0.975]; the closest is `{closest}` "
            f"(task block p = {wide.loc[closest, 'task_block']:.3f}, agent eigen share p = "
            f"{wide.loc[closest, 'agent_eigen_share']:.3f})."), [closest]


def cv_tables(run_dir: Path, reference: str = "logistic") -> dict[str, pd.DataFrame]:
    """Per CV scheme: each model's elpd (SE), difference from the best and from ``reference``
    (METR's logistic) with the SEs of the paired group-wise differences, and failing folds."""
    path = run_dir / "tables" / "cv.csv"
    if not path.is_file():
        return {}
    cv = pd.read_csv(path)
    pointwise = pd.read_csv(run_dir / "tables" / "cv_pointwise.csv")
    out = {}
    for scheme, t in cv[cv["scheme"] != "cell"].groupby("scheme", sort=False):
        wide = pointwise[pointwise["scheme"] == scheme].pivot_table(index="group", columns="model", values="elpd")
        rows = []
        for r in t.sort_values("rank").itertuples():
            row = {"model": r.model, "elpd (SE)": f"{r.elpd:.1f} ({r.se:.1f})",
                   "elpd_diff (dSE)": "0" if r.elpd_diff == 0 else f"{r.elpd_diff:.1f} ({r.dse:.1f})"}
            if reference in wide:
                diff = (wide[r.model] - wide[reference]).dropna()
                row[f"vs {reference} (dSE)"] = ("0" if r.model == reference else
                                                f"{diff.sum():+.1f} ({np.sqrt(len(diff) * diff.var(ddof=0)):.1f})")
            row["groups"] = int(r.n_groups)
            row["folds failing diagnostics"] = int(r.folds_failing_diagnostics)
            rows.append(row)
        out[str(scheme)] = pd.DataFrame(rows)
    return out


def settings_line(run_dir: Path) -> str:
    """How the run was made, from its manifest and one fit's record."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    st = manifest["settings"]
    fits = sorted((run_dir / "fits").glob("*.json"))
    first = json.loads(fits[0].read_text()) if fits else {}
    return (f"Run `{run_dir.name}`, {str(manifest.get('started', ''))[:10]}: "
            f"{st['chains']} chains x ({st['warmup']} warmup + {st['draws']} draws), seed {st['seed']}, "
            f"`adapt_delta` from each header (at least {st['adapt_delta']}), backend "
            f"{first.get('backend', manifest.get('backend'))} {first.get('backend_version', '')}. "
            f"Command: `{manifest['command']}`.")


def diagnostics_sentence(table: pd.DataFrame) -> str:
    """Which fits warn, from the LOO-with-diagnostics table."""
    rhat = table["max R-hat"].astype(float)
    ess = table["min bulk ESS"].astype(float)
    warn = table[(rhat >= 1.01) | (ess < 400) | (table["divergences"] > 0)]
    text = (f"Divergences: {int(table['divergences'].sum())} in all. Min bulk ESS ranges from {ess.min():.0f} "
            f"to {ess.max():.0f}; max R-hat from {rhat.min():.3f} to {rhat.max():.3f}.")
    if not warn.empty:
        text += (" Fits at R-hat >= 1.01 or bulk ESS < 400 (diagnostics `warn`; their tables are usable "
                 "but a longer run should confirm them): "
                 + ", ".join(f"`{r['model']}` (R-hat {r['max R-hat']}, ESS {r['min bulk ESS']})"
                             for _, r in warn.iterrows()) + ".")
    return text


def block(run_dir: Path, checks_dir: Path | None = None) -> str:
    """The generated markdown block of one run: settings, LOO and diagnostics, grouped CV, and the
    cross-validated structure checks with their verdict sentence."""
    table = loo_with_diagnostics(run_dir)
    parts = [settings_line(run_dir), "", "PSIS-LOO over (agent, task) cells, with each fit's diagnostics:", "",
             markdown_table(table), diagnostics_sentence(table), ""]
    for scheme, cv in cv_tables(run_dir).items():
        parts += [f"Grouped CV, a new {scheme} (elpd of the held-out {PLURAL.get(scheme, scheme + 's')}' runs, summed over groups; "
                  "`vs logistic` pairs each group with METR's per-agent logistic):", "", markdown_table(cv)]
    structure = structure_table(run_dir, list(table["model"]))
    if not structure.empty:
        parts += ["Residual structure, cross-validated (p-values with `*` outside [0.025, 0.975]; the "
                  "in-sample p beside each):", "", markdown_table(structure), structure_sentence(run_dir), ""]
    else:
        checks = residual_checks(checks_dir or run_dir, list(table["model"]))
        if not checks.empty:
            parts += ["Residual structure, in-sample:", "", markdown_table(checks)]
    return "\n".join(parts).rstrip() + "\n"


def replace_block(path: Path, name: str, text: str) -> None:
    """Put ``text`` between FILE's ``<!-- results: NAME -->`` and ``<!-- end results: NAME -->``."""
    start, end = f"<!-- results: {name} -->", f"<!-- end results: {name} -->"
    content = path.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{path} has no '{start}' ... '{end}' block")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n<!-- generated by scripts/results_table.py; do not edit -->\n\n"
                    f"{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checks", type=Path, help="a 'horizon-zoo check' run directory (default: RUN_DIR)")
    parser.add_argument("--figures", type=Path, help="copy the cross-validated residual figures here")
    parser.add_argument("--readme", type=Path, help="replace the NAME results block of this markdown file")
    parser.add_argument("--name", help="the block's name (with --readme)")
    args = parser.parse_args()
    text = block(args.run_dir, args.checks)
    print(text)
    if args.readme:
        if not args.name:
            parser.error("--readme needs --name")
        replace_block(args.readme, args.name, text)
        print(f"wrote the '{args.name}' block of {args.readme}")
    if args.figures:
        for path in copy_figures(args.run_dir, args.figures):
            print(f"copied {path}")


def copy_figures(run_dir: Path, target: Path, reference: str = "logistic") -> list[Path]:
    """The cross-validated residual figures of the reference model and of the models the verdict
    names, as ``target/<run>-residuals_cv_<model>.png``."""
    from PIL import Image

    target.mkdir(parents=True, exist_ok=True)
    models = [reference, *structure_verdict(run_dir)[1]] if (run_dir / "tables" / "checks_cv.csv").is_file() else []
    copied = []
    for model in dict.fromkeys(models):
        source = run_dir / "figures" / f"residuals_cv_{model}.png"
        if source.is_file():
            copied.append(target / f"{run_dir.name}-{source.name}")
            # a 256-colour palette: a task x task heatmap of a large suite is ~800 KB as rendered and
            # a quarter of that quantised, with no difference to see (the repository keeps them)
            with Image.open(source) as image:
                image.convert("RGB").quantize(256).save(copied[-1], optimize=True)
    return copied


if __name__ == "__main__":
    main()
