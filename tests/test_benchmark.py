"""The benchmark script's bookkeeping: results merged per model, targets judged from them."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.conftest import load_script


@pytest.fixture
def bench(tmp_path, monkeypatch):
    module = load_script("benchmark")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(module, "REPORT", tmp_path / "benchmarks.md")
    return module


def _fit_row(model: str, wall_s: float, mem: float, ess: float) -> dict:
    return {"model": model, "dataset": "scaleup", "wall_s": wall_s, "peak_mem_gib": mem, "min_ess_bulk": ess,
            "verdict": "pass", "max_rhat": 1.004}


def test_results_of_one_model_replace_only_that_models_row(bench, capsys):
    bench.store("fits_scaleup_thin4", pd.DataFrame([_fit_row("a", 100, 1, 500)]), "cmd a", sampler="thinned by 4")
    bench.store("fits_scaleup_thin4", pd.DataFrame([_fit_row("b", 200, 2, 600)]), "cmd b", sampler="thinned by 4")
    bench.store("fits_scaleup_thin4", pd.DataFrame([_fit_row("a", 300, 3, 700)]), "cmd a", sampler="thinned by 4")
    stored = json.loads((bench.RESULTS / "fits_scaleup_thin4.json").read_text())
    assert [(r["model"], r["wall_s"]) for r in stored["rows"]] == [("a", 300), ("b", 200)]
    assert stored["commands"] == ["cmd b", "cmd a"]
    # SBC of one more model keeps the others' rows
    bench.store("sbc", pd.DataFrame([{"model": "a", "sims": 50}, {"model": "b", "sims": 50}]), "sbc all")
    bench.store("sbc", pd.DataFrame([{"model": "b", "sims": 100}]), "sbc b")
    stored = json.loads((bench.RESULTS / "sbc.json").read_text())
    assert [(r["model"], r["sims"]) for r in stored["rows"]] == [("a", 50), ("b", 100)]
    # a section that is not per model is replaced whole
    bench.store("compare_metr", pd.DataFrame([{"dataset": "metr", "wall_min": 9.0}]), "c1")
    bench.store("compare_metr", pd.DataFrame([{"dataset": "metr", "wall_min": 8.0}]), "c2")
    assert json.loads((bench.RESULTS / "compare_metr.json").read_text())["rows"][0]["wall_min"] == 8.0
    capsys.readouterr()


def test_targets_are_judged_from_the_stored_results(bench, capsys):
    bench.store("fits_scaleup_thin4", pd.DataFrame([
        _fit_row("fast", 600, 2.5, 700), _fit_row("slow", 1000, 2.5, 700),
        _fit_row("heavy", 600, 4.5, 700), _fit_row("short", 600, 2.5, 399),
        # summed RSS counts pages the forked chain workers share with their parent once per process
        _fit_row("shared", 600, 4.5, 700) | {"peak_pss_gib": 3.6},
        _fit_row("heavy_pss", 600, 4.5, 700) | {"peak_pss_gib": 4.1}]), "cmd", sampler="thinned by 4")
    bench.store("compare_cyber", pd.DataFrame([{"dataset": "cyber", "wall_min": 33.4}]), "cmd")
    bench.store("compare_metr", pd.DataFrame([{"dataset": "metr", "wall_min": 8.5}]), "cmd")
    bench.store("compare_cyber_jobs2", pd.DataFrame([{"dataset": "cyber", "jobs": 2, "wall_min": 9.5}]),
                "cmd")
    bench.store("compare_cyber_jobs2_cmdstan", pd.DataFrame([{"dataset": "cyber", "backend": "cmdstanpy", "jobs": 2,
                                                              "wall_min": 12.5}]), "cmd")
    capsys.readouterr()
    targets = bench.targets_table()
    met = dict(zip(targets["measured on"], targets["met"], strict=True))
    from horizon_zoo.registry import discover

    unmeasured = {m: False for m in discover()}  # zoo models without a scale-up row are listed as not met
    assert met == {"cyber, pystan": False, "cyber, 2 models at a time, pystan": True, "metr, pystan": True,
                   "cyber, 2 models at a time, cmdstanpy": False,
                   "fast (thinned by 4)": True, "slow (thinned by 4)": False,
                   "heavy (thinned by 4)": False, "short (thinned by 4)": False, "shared (thinned by 4)": True,
                   "heavy_pss (thinned by 4)": False, **unmeasured}
    bench.write_report()
    report = bench.REPORT.read_text()
    assert report.index("## Targets") < report.index("## Fits") and "33.4 min" in report
    assert "3.60 GiB (PSS; summed RSS 4.50)" in report and "2.50 GiB (summed RSS)" in report


def test_every_zoo_model_can_be_cut_to_its_sampling_part(bench):
    from horizon_zoo.registry import discover

    for name, model in discover().items():
        bare = bench.without_gq(model)
        assert not bare.info.get("generated quantities"), name
        assert bare.info["parameters"] == model.info["parameters"], name
        assert bare.info.get("transformed parameters") == model.info.get("transformed parameters"), name
        declared = re.compile(r"\blog_lik\b")  # the variable, not cells_log_lik
        assert len(bare.program) < len(model.program) and declared.search(model.program) and not declared.search(bare.program), name


def test_gq_rows_pair_with_fits_of_the_same_sampler_only(bench, monkeypatch):
    monkeypatch.setattr(bench, "in_fresh_process", lambda fn, model, dataset, settings: {
        "model": model, "dataset": dataset, "sample_s_without_gq": 30.0})
    settings = {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 1, "thin": 1}
    bench.store("fits_cyber", pd.DataFrame([{"model": "a", "sample_s": 120.0}]), "cmd", sampler="4 x 1000")
    paired = bench.section_gq(["a", "b"], "cyber", settings, sampler="4 x 1000")
    assert paired.set_index("model").loc["a", "gq_share"] == pytest.approx(0.75)
    assert pd.isna(paired.set_index("model").loc["b", "gq_share"])  # b has no full fit stored
    other = bench.section_gq(["a"], "cyber", settings, sampler="4 x 500")
    assert "gq_share" not in other


def test_threads_section_runs_one_chain_each_way_and_skips_unthreaded_models(bench, monkeypatch):
    calls = []

    def fake_fit(fn, model, dataset, settings):
        calls.append((model, settings["chains"], settings.get("threads_per_chain", 1)))
        threaded = settings.get("threads_per_chain", 1) > 1
        return {"cells": 10, "sample_s": 50.0 if threaded else 80.0, "ess_per_s": 8.0 if threaded else 5.0,
                "leapfrog_steps": 1100 if threaded else 1000,
                "peak_mem_gib": 1.0, "posterior": {"alpha": [0.3 if threaded else 0.2, 0.5]}}

    monkeypatch.setattr(bench, "in_fresh_process", fake_fit)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    settings = {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 1, "thin": 1}
    table = bench.section_threads(["logistic", "bradley_terry"], "default", settings).set_index("model")
    assert calls == [("logistic", 1, 1), ("logistic", 1, 2)]  # bradley_terry declares no grainsize
    assert table.loc["logistic", "speed-up"] == pytest.approx(1.6)
    assert table.loc["logistic", "leapfrog steps ratio"] == pytest.approx(1.1)
    assert table.loc["logistic", "max |mean diff| / sd"] == pytest.approx(0.2)


def test_report_tables_keep_their_columns_when_a_header_holds_a_pipe(bench):
    frame = pd.DataFrame({"model": ["logistic"], "max |mean diff| / sd": [0.2], "note": ["a|b"]})
    header, rule, row = bench._markdown(frame).strip().splitlines()
    # An unescaped pipe would split a column in two; GitHub counts only unescaped ones.
    assert [len(re.split(r"(?<!\\)\|", line)) for line in (header, rule, row)] == [5, 5, 5]


def test_runs_with_other_sampler_settings_keep_their_own_result_file(bench, monkeypatch):
    """A result file has one sampler line: a run with other chains, warmup, draws, thinning, warmup
    schedule or tree depth written into the default file would relabel every other model's row."""
    asked = []
    monkeypatch.setattr(bench, "REPO", bench.REPORT.parent)  # main() names the report relative to the repo
    monkeypatch.setattr(bench, "section_fits", lambda models, datasets, settings: asked.append(settings) or
                        pd.DataFrame([_fit_row(models[0], 100, 1, 500)]))
    bench.main(["--datasets", "scaleup", "--models", "logistic", "--thin", "4"])
    bench.main(["--datasets", "scaleup", "--models", "weibull", "--thin", "6", "--draws", "1500"])
    bench.main(["--datasets", "scaleup", "--models", "irt_2pl", "--thin", "4", "--init-buffer", "10",
                "--metric-window", "15"])
    bench.main(["--datasets", "scaleup", "--models", "cumulative_surprisal", "--thin", "4",
                "--max-treedepth", "7"])
    bench.main(["--datasets", "scaleup", "--models", "logistic", "--thin", "4", "--warmup", "500"])
    bench.main(["--datasets", "scaleup", "--models", "logistic", "--thin", "4", "--chains", "2"])
    files = {p.stem: json.loads(p.read_text()) for p in bench.RESULTS.glob("fits_*.json")}
    assert sorted(files) == ["fits_scaleup_thin4", "fits_scaleup_thin4_chains2", "fits_scaleup_thin4_ib10w15",
                             "fits_scaleup_thin4_td7", "fits_scaleup_thin4_warmup500",
                             "fits_scaleup_thin6_draws1500"]
    assert files["fits_scaleup_thin4_warmup500"]["sampler"].startswith("4 chains x 500 warmup")
    assert files["fits_scaleup_thin4"]["sampler"].startswith("4 chains x 1000 warmup")
    assert files["fits_scaleup_thin4_td7"]["sampler"].endswith("maximum tree depth 7")
    assert asked[3]["max_treedepth"] == 7 and "max_treedepth" not in asked[0]
    assert files["fits_scaleup_thin4_ib10w15"]["sampler"].endswith("first metric after 10 + 15 warmup iterations")
    assert "first metric" not in files["fits_scaleup_thin4"]["sampler"]
    assert asked[2] | {"init_buffer": 10, "metric_window": 15} == asked[2] and "init_buffer" not in asked[0]
    assert "scaleup_thin4_ib10w15" in bench.REPORT.read_text()
