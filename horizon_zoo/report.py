"""The report a reader opens first: ``report.html`` (self-contained) and ``report.md``.

Built only from what a run directory holds (manifest, data summary, tables, figures), so
``horizon-zoo report RUN_DIR`` rebuilds it at any time and any command's run directory gets one.
Figures are embedded as base64 PNGs in the HTML; the Markdown links them.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from horizon_zoo.rundir import atomic_write_text, format_value, markdown_table

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1150px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #eee; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: .82em; margin: .8em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
tr.fail td { background: #fde8e8; } tr.warn td { background: #fff6dd; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; font-size: .9em; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.note { color: #555; font-size: .9em; }
nav a { margin-right: 1em; white-space: nowrap; }
nav { position: sticky; top: 0; background: #fff; padding: .4em 0; border-bottom: 1px solid #eee;
      display: flex; flex-wrap: wrap; row-gap: .2em; }
div.wide { overflow-x: auto; max-width: 100%; }
td { white-space: nowrap; } td:last-child { white-space: normal; min-width: 14em; }
details summary { cursor: pointer; color: #335; margin: .5em 0; }
"""


@dataclass
class _Doc:
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (anchor, text) of every level-2 heading

    def heading(self, text: str, level: int = 2) -> None:
        anchor = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        self.html.append(f"<h{level} id='{html.escape(anchor)}'>{html.escape(text)}</h{level}>")
        self.md += ["#" * level + " " + text, ""]
        if level == 2:
            self.sections.append((anchor, text))

    def para(self, text: str, note: bool = False) -> None:
        # `code` spans, as the Markdown shows them, become <code> in the HTML
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
        self.html.append(f"<p{' class=note' if note else ''}>{body}</p>")
        self.md += [text, ""]

    def code(self, text: str) -> None:
        self.html.append(f"<p><code>{html.escape(text)}</code></p>")
        self.md += [f"`{text}`", ""]

    def table(self, frame: pd.DataFrame, verdict_column: str | None = None, collapsed: str | None = None) -> None:
        """A table; with ``collapsed`` (its one-line summary) folded into <details> in the HTML."""
        rows = []
        for _, row in frame.iterrows():
            css = str(row[verdict_column]) if verdict_column and verdict_column in frame.columns else ""
            cells = "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row)
            rows.append(f"<tr class='{css}'>{cells}</tr>")
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        table = f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        if collapsed:
            table = f"<details><summary>{html.escape(collapsed)}</summary>{table}</details>"
        self.html.append(table)
        self.md += [markdown_table(frame)]

    def figure(self, run_dir: Path, path: Path, caption: str) -> None:
        data = base64.b64encode(path.read_bytes()).decode()
        self.html.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption class=note>{html.escape(caption)}</figcaption></figure>")
        self.md += [f"![{caption}]({path.relative_to(run_dir).as_posix()})", ""]


def _read(run_dir: Path, stem: str) -> pd.DataFrame | None:
    path = run_dir / "tables" / f"{stem}.csv"
    return pd.read_csv(path) if path.is_file() else None


def task_length_figure(run_dir: Path) -> Path | None:
    """Histogram of task lengths (log axis), stacked by task source: what the suite covers."""
    tasks_path = run_dir / "data" / "tasks.csv"
    if not tasks_path.is_file():
        return None
    import matplotlib.pyplot as plt

    from horizon_zoo.plots import minutes_axis, save_figure

    tasks = pd.read_csv(tasks_path)
    minutes = tasks["human_minutes"].to_numpy(dtype=float)
    bins = np.logspace(np.log10(minutes.min() / 1.2), np.log10(minutes.max() * 1.2), 30)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    groups = tasks.groupby("task_source")["human_minutes"] if "task_source" in tasks else [("tasks", tasks["human_minutes"])]
    ax.hist([g.to_numpy() for _, g in groups], bins=bins, stacked=True, label=[str(n) for n, _ in groups])
    minutes_axis(ax, bins[0], bins[-1], axis="x")
    ax.set_xlabel("human time per task")
    ax.set_ylabel("tasks")
    ax.set_title(f"Task lengths ({len(tasks)} tasks)")
    ax.legend(fontsize=7, title="task source", title_fontsize=7)
    fig.tight_layout()
    path = run_dir / "figures" / "task_lengths.png"
    save_figure(fig, path)
    return path


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for a run directory; return both paths."""
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").is_file() else {}
    summary = (json.loads((run_dir / "data" / "summary.json").read_text())
               if (run_dir / "data" / "summary.json").is_file() else {})
    doc = _Doc()
    title = f"horizon-zoo {manifest.get('run', run_dir.name)}"
    doc.heading(title, 1)
    if manifest:
        doc.para(f"Status: {manifest.get('status', '?')}; started {manifest.get('started', '?')}, finished "
                 f"{manifest.get('finished', '?')}; backend {manifest.get('backend', '?')}.", note=True)
        doc.code(str(manifest.get("command", "")))

    loo = _read(run_dir, "loo")
    best = str(loo.iloc[0]["model"]) if loo is not None and len(loo) else None
    reference = manifest.get("reference_model")  # the model the header marks as the reference
    figures = run_dir / "figures"
    if (run_dir / "headline.md").is_file():
        doc.heading("Headline")
        for line in (run_dir / "headline.md").read_text().splitlines():
            doc.para(line.lstrip("- "))
        best_horizons = _read(run_dir, "headline_horizons")
        if best_horizons is not None:
            doc.para(f"Horizons of {best} (marginal: a new task of that length), median [95% interval]:", note=True)
            doc.table(best_horizons)

    doc.heading("Data")
    if summary:
        doc.para(f"{summary.get('source')}: {summary.get('runs')} runs in {summary.get('cells')} (agent, task) cells; "
                 f"{summary.get('agents')} agents, {summary.get('tasks')} tasks in {summary.get('families')} families; "
                 f"overall success rate {summary.get('success_rate', float('nan')):.1%}; task lengths "
                 f"{summary.get('min_minutes', 0):.3g} to {summary.get('max_minutes', 0):.3g} minutes "
                 f"(median {summary.get('median_minutes', 0):.3g}).")
        if summary.get("agents_list"):
            doc.para("Agents: " + ", ".join(summary["agents_list"]) + ".")
        for warning in summary.get("warnings", []):
            doc.para("Note: " + warning, note=True)
    lengths = task_length_figure(run_dir)
    if lengths:
        doc.figure(run_dir, lengths, "Task lengths by task source")

    diagnostics = _read(run_dir, "diagnostics")
    if diagnostics is not None:
        doc.heading("Diagnostics")
        doc.para("fail: R-hat >= 1.05, any divergence or ESS < 100; warn: R-hat >= 1.01, ESS < 100 per chain, "
                 "tree-depth saturation or E-BFMI < 0.3.", note=True)
        # the worst parameters are named in `problems`; every column is in tables/diagnostics.csv
        shown = ["model", "verdict", "max_rhat", "min_ess_bulk", "divergences", "treedepth_hits", "min_ebfmi",
                 "sample_s", "problems"]
        doc.table(diagnostics[[c for c in shown if c in diagnostics.columns]], verdict_column="verdict")
    if loo is not None:
        doc.heading("Model comparison (PSIS-LOO over cells)")
        from horizon_zoo.compare import LOO_MEANING_NOTE, loo_shown

        doc.para("elpd_diff is relative to the best model; a difference smaller than about 2 dse is not "
                 "decisive. Cells with Pareto k above 0.7 make PSIS-LOO unreliable for that model.", note=True)
        doc.para(LOO_MEANING_NOTE, note=True)
        if manifest.get("data", {}).get("weighted"):
            from horizon_zoo.compare import WEIGHTED_ELPD_NOTE

            doc.para(WEIGHTED_ELPD_NOTE)
        doc.table(loo_shown(loo))
    cv = _read(run_dir, "cv")
    if cv is not None:
        doc.heading("Cross-validation: new cells, tasks, families, agents")
        if (run_dir / "cv.md").is_file():
            for line in (run_dir / "cv.md").read_text().splitlines():
                doc.para(line.lstrip("- "))
        from horizon_zoo.cv import CV_MEANING_NOTE

        doc.para(CV_MEANING_NOTE, note=True)
        doc.table(cv.drop(columns="rank", errors="ignore"))  # rows are best first; ArviZ counts from 0
        if (figures / "cv.png").is_file():
            doc.figure(run_dir, figures / "cv.png", "elpd difference from the best model, 2 SE bars")
    structure = _read(run_dir, "checks_cv")
    if structure is not None:
        from horizon_zoo.checks import CV_STRUCTURE_NOTE

        doc.heading("Residual structure, cross-validated")
        doc.para(CV_STRUCTURE_NOTE, note=True)
        doc.table(structure[[c for c in ("model", "statistic", "scheme", "observed", "replicated_median", "lo95",
                                          "hi95", "p_value", "flagged", "p_in_sample") if c in structure.columns]])
        shown = [m for m in dict.fromkeys([best, reference]) if m in set(structure["model"])]
        for model in shown:
            path = figures / f"residuals_cv_{model}.png"
            if path.is_file():
                doc.figure(run_dir, path, f"{model}: cross-validated residual structure")
    sbc = _read(run_dir, "sbc")
    if sbc is not None:
        doc.heading("Simulation-based calibration")
        doc.para("Each simulation draws parameters from the prior, simulates data on the design, fits and ranks the "
                 "true value among thinned posterior draws; calibrated posteriors give uniform ranks. A quantity is "
                 "flagged when its chi-square p-value is below 0.05 divided by the model's number of quantities; "
                 "in the figures a line leaving the grey 95% simultaneous band is red.", note=True)
        doc.table(sbc, verdict_column="verdict")
        for path in sorted(figures.glob("sbc_*.png")):
            doc.figure(run_dir, path, path.stem.replace("sbc_", "SBC of "))
    checks = _read(run_dir, "checks")
    if checks is not None:
        from horizon_zoo.checks import CHECKS_LEGEND

        doc.heading("Posterior predictive checks")
        doc.para(CHECKS_LEGEND, note=True)
        if structure is not None:
            doc.para("The task block and agent eigen share p-values here are in-sample; read the cross-validated "
                     "ones (section 'Residual structure, cross-validated') to judge residual structure.", note=True)
        doc.table(checks, collapsed=f"p-values of every check, {len(checks)} models (click to open)")
        shown = [best] if best else list(checks["model"])[:1]
        if reference in set(checks["model"]) and reference not in shown:
            shown.append(reference)
        for model in shown:
            for kind, caption in (("residuals", "residual structure"), ("calibration", "calibration by length"),
                                  ("curves", "success curves"), ("loo_pit", "LOO-PIT and Pareto k")):
                path = figures / f"{kind}_{model}.png"
                if path.is_file():
                    doc.figure(run_dir, path, f"{model}: {caption}")
        doc.para("Figures of every model: figures/<check>_<model>.png in the run directory.", note=True)

    wide = _read(run_dir, "horizons_wide")
    if wide is not None:
        doc.heading("Horizons")
        if best and "model" in wide:
            doc.para(f"Best model by elpd: {best}. Median [95% interval]; marginal = a new task of that length, "
                     "typical task = task offsets at 0.", note=True)
            wide = wide[wide["model"] == best]
        doc.table(wide)
    doubling = _read(run_dir, "doubling")
    if doubling is not None:
        doc.heading("Trend over release dates")
        from horizon_zoo.trend import doubling_text

        doubling = doubling.assign(doubling=doubling_text(doubling))
        doc.para("Months per doubling of the horizon, median [95% interval]; per-draw regression over the agents "
                 "listed, or the joint Stan trend.", note=True)
        doc.table(doubling[[c for c in ("model", "q", "curve", "trend", "doubling", "p_shrinking", "n_agents",
                                        "max_offgrid_share") if c in doubling.columns]])
        for stem, text in (("doubling_ratio", "Ratio of p80 and p50 doubling times (1 = parallel trends)"),
                           ("forecasts", "When each trend reaches each threshold (far = beyond the data's span)")):
            frame = _read(run_dir, stem)
            if frame is not None and len(frame):
                doc.heading(text, 3)
                cols = [c for c in frame.columns if c not in ("median_year", "agents", "extrapolation_years")]
                doc.table(frame[cols], collapsed=f"{len(frame)} rows (click to open)" if len(frame) > 12 else None)
        for path in sorted(figures.glob("trend_*.png")):
            doc.figure(run_dir, path, path.stem.replace("_", " "))

    for key, label in (("failed", "Models that failed"), ("skipped", "Models not fitted")):
        if manifest.get(key):
            doc.heading(label)
            for model, reason in manifest[key].items():
                doc.para(f"{model}: {reason}")
    if manifest.get("versions"):
        doc.heading("Versions and settings")
        doc.table(pd.DataFrame({"package": list(manifest["versions"]),
                                "version": [str(v) for v in manifest["versions"].values()]}))
        if manifest.get("settings"):
            doc.para("Sampler settings: " + ", ".join(f"{k}={v}" for k, v in manifest["settings"].items()))

    nav = "".join(f"<a href='#{anchor}'>{html.escape(text)}</a>" for anchor, text in doc.sections)
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><nav>{nav}</nav>" + "\n".join(doc.html) + "</body></html>\n")
    html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    atomic_write_text(html_path, page)
    atomic_write_text(md_path, "\n".join(doc.md) + "\n")
    return html_path, md_path
