"""The main job end to end through the CLI (compiles Stan), and on the real datasets (opt-in)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from horizon_zoo.cli import main
from horizon_zoo.fit import load_fit
from tests.conftest import REPO, SHARED_DATA, small_default

# The main job in CI fits the whole zoo; here three models cover both kinds of horizon curve.
MODELS = ["logistic", "logistic_task_effects", "constant_hazard"]


@pytest.mark.stan
def test_compare_writes_a_complete_run_directory(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    small_default(n_agents=4, n_tasks=30).to_csv(runs, index=False)
    out = tmp_path / "run"
    code = main(["compare", "--runs", str(runs), "--chains", "2", "--warmup", "300", "--draws", "300",
                 "--out", str(out), "--q", "50,80", "--models", ",".join(MODELS)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "PSIS-LOO comparison" in printed and "Run directory" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    zoo = set(manifest["models"])
    assert zoo == set(MODELS) and set(manifest["completed"]) == zoo
    loo = pd.read_csv(out / "tables" / "loo.csv")
    assert set(loo["model"]) == zoo and loo["elpd_loo"].is_monotonic_decreasing
    horizons = pd.read_csv(out / "tables" / "horizons.csv")
    marginal = horizons[horizons["curve"] == "marginal"]
    assert len(marginal) == len(zoo) * 4 * 2  # models x agents x q
    typical = {n for n in zoo if "p_curve_typical" in (REPO / "stan_models" / f"{n}.stan").read_text()}
    assert set(horizons.loc[horizons["curve"] == "typical task", "model"]) == typical
    assert (horizons["lo95_min"] <= horizons["median_min"]).all()
    assert (horizons["median_min"] <= horizons["hi95_min"]).all()
    diagnostics = pd.read_csv(out / "tables" / "diagnostics.csv")
    assert set(diagnostics["verdict"]) <= {"pass", "warn", "fail"}
    for name in zoo:
        idata, info = load_fit(out / "fits" / f"{name}.nc")
        assert info["model"] == name and "log_lik" in idata["log_likelihood"]
    assert (out / "summary.md").read_text().startswith("# horizon-zoo compare")
    assert not list(out.rglob("*.part")), "no temporary files may remain"
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 3
    # Re-running into the same directory resumes: completed fits of the same model, data and
    # settings are reused, not resampled.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "fits").glob("*.nc")}
    assert main(["-q", "compare", "--runs", str(runs), "--chains", "2", "--warmup", "300", "--draws", "300",
                 "--out", str(out), "--q", "50,80", "--models", ",".join(MODELS)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "fits").glob("*.nc")} == stamps
    # the reused fits' log_lik keeps 4 significant digits on disk: the same table to within 1e-3
    # (relative; stacking weights near 0 to within 1e-8)
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "loo.csv"), loo, check_exact=False, rtol=1e-3)


REAL = [SHARED_DATA / "metr-early" / "all_runs.jsonl", SHARED_DATA / "cyber-horizons" / "all_runs.jsonl"]


@pytest.mark.real_data
@pytest.mark.parametrize("path", REAL, ids=["metr-early", "cyber-horizons"])
def test_every_model_converges_on_real_data(path, tmp_path, capsys):
    if not path.exists():
        pytest.skip(f"{path} not present")
    out = tmp_path / "run"
    dates = path.parent / "release_dates.yaml"  # so the trend model is fitted too
    assert main(["compare", "--runs", str(path), "--release-dates", str(dates), "--out", str(out)]) == 0
    diagnostics = pd.read_csv(out / "tables" / "diagnostics.csv")
    assert (diagnostics["max_rhat"] < 1.01).all(), diagnostics
    assert (diagnostics["divergences"] == 0).all(), diagnostics


@pytest.mark.stan
def test_simulate_at_given_values_writes_loadable_runs(tmp_path, capsys):
    from horizon_zoo.data import load_runs

    design = tmp_path / "design.csv"
    small_default(n_agents=3, n_tasks=30).to_csv(design, index=False)
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"theta": [-3.0, 2.0, 8.0]}))  # agents in name order
    out = tmp_path / "sim.jsonl"
    assert main(["simulate", "--model", "bradley_terry", "--runs", str(design), "--values", str(values),
                 "--output", str(out), "--seed", "4"]) == 0
    runs = load_runs(out)
    rates = runs.runs.groupby("agent")["success"].mean().loc[list(runs.agents)].to_numpy()
    assert rates[0] < rates[1] < rates[2]
    truth = json.loads(out.with_suffix(".truth.json").read_text())
    assert truth["values"]["theta"] == [-3.0, 2.0, 8.0] and truth["agents"] == list(runs.agents)


@pytest.mark.real_data
def test_horizons_on_cyber_horizons_with_its_own_weights_show_metrs_reference(tmp_path, capsys):
    """Issue 35's acceptance command: the run file's 'weight' column, METR's reference column beside
    the posterior, and METR's published p50s in it (Claude 3.5 Haiku 1.393 min, O3 3.695 min)."""
    path = REAL[1]
    if not path.exists():
        pytest.skip(f"{path} not present")
    out = tmp_path / "run"
    assert main(["horizons", "--model", "logistic", "--runs", str(path), "--weights", "weight", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "METR p50 [95% boot]" in printed and "METR outside 95%" in printed
    metr = pd.read_csv(out / "tables" / "metr.csv").set_index(["agent", "q"])
    assert metr.loc[("Claude 3.5 Haiku", 0.5), "horizon_min"] == pytest.approx(1.393, rel=1e-3)
    assert metr.loc[("O3", 0.5), "horizon_min"] == pytest.approx(3.695, rel=1e-3)
