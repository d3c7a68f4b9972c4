"""The command line: help, list-models, and clean failures on bad input."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from horizon_zoo.cli import main
from tests.conftest import REPO, make_runs
from tests.test_data import BAD_INPUTS


@pytest.mark.parametrize("command", ["compare", "fit", "list-models"])
def test_help_explains_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes" in out
    if command != "list-models":
        assert "--runs" in out and "--backend" in out and "--seed" in out


def test_list_models_prints_name_hypothesis_and_parameter_count(capsys):
    assert main(["list-models"]) == 0
    out = capsys.readouterr().out
    assert "logistic" in out and "2A" in out and "bradley_terry" in out


_OPTIONS = {"include_agents": "--agents", "exclude_agents": "--exclude-agents",
            "task_sources": "--task-sources", "families": "--families", "weights": "--weights"}


def _cli_args(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        args += [_OPTIONS[key], ",".join(value) if isinstance(value, list) else value]
    return args


@pytest.mark.parametrize("case, rows, options, fragments", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_the_message_and_writes_nothing(case, rows, options, fragments, write_runs,
                                                                 tmp_path, capsys):
    path = write_runs(rows)
    runs_root = tmp_path / "runs-root"
    code = main(["fit", "--model", "logistic", "--runs", str(path), "--runs-root", str(runs_root),
                 *_cli_args(options)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("horizon-zoo: error: ")
    for fragment in fragments:
        assert fragment in err
    assert "Traceback" not in err
    assert not runs_root.exists(), "nothing may be written for rejected input"


def test_a_real_process_shows_no_traceback(write_runs):
    path = write_runs(['{"task_id": "t", "task_family": "f", "alias": "a", "human_minutes": -1, "score_binarized": 1}'])
    result = subprocess.run([sys.executable, "-m", "horizon_zoo.cli", "compare", "--runs", str(path)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert "human_minutes" in result.stderr and "line 1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option", ["--model", "--models"])
def test_an_unknown_model_name_exits_2_before_any_data_is_read_with_the_closest_names(option, capsys):
    """Issue 32 item 6: one spelling (--models, --model an alias), a misspelling refused up front."""
    assert main(["fit", option, "logistik", "--runs", "/nowhere/runs.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'logistik' (did you mean 'logistic'" in err and "list-models" in err
    assert "no such run file" not in err  # refused before the data is read
    assert main(["horizons", "--models", "logistic,irt_2p", "--runs", "/nowhere/runs.jsonl"]) == 2
    assert "unknown model 'irt_2p' (did you mean 'irt_2pl'?)" in capsys.readouterr().err


def test_q_is_percent_on_the_command_line_and_a_fraction_in_the_api(capsys):
    from horizon_zoo import api
    from horizon_zoo.cli import _qs
    from horizon_zoo.errors import HorizonZooError

    assert _qs("50,80") == [0.5, 0.8] and _qs("1,97.5") == [0.01, 0.975]
    for text in ("0.5", "0", "100", "150", "fifty"):
        with pytest.raises(Exception, match="--q takes percentages"):
            _qs(text)
    with pytest.raises(Exception, match="the fraction 0.5 would mean half a percent"):
        _qs("0.5")
    for qs in ([50], [0.5, 1.0], []):
        with pytest.raises(HorizonZooError, match=r"fractions strictly between 0 and 1 \(0.5 for the 50% horizon"):
            api.horizons(qs=qs, write=False)


def test_bad_sampler_setting_exits_2(capsys):
    assert main(["fit", "--model", "logistic", "--adapt-delta", "1.5"]) == 2
    assert "adapt_delta" in capsys.readouterr().err


@pytest.mark.parametrize("lines, fragment", [
    ([], "the file has no runs (it is empty)"),
    (['{"task_id": "a", "task_family": "f", "alias": "x", "human_minutes": 1, "score_bin'], "line 1: not valid JSON"),
], ids=["empty file", "truncated line"])
def test_unreadable_files_exit_2_with_the_line(lines, fragment, write_runs, capsys):
    assert main(["compare", "--runs", str(write_runs(lines))]) == 2
    assert fragment in capsys.readouterr().err


# --- horizon-zoo.toml ------------------------------------------------------------------------


def _parsed(argv):
    from horizon_zoo.cli import _apply_config_file, build_parser

    parser = build_parser()
    _apply_config_file(parser, argv)
    return parser.parse_args(argv)


def test_config_file_sets_defaults_and_the_command_line_wins(tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text('[sampling]\nchains = 2\ndraws = 300\n[output]\nq = [50, 80, 90]\n'
                      '[compare]\nmodels = ["logistic", "bradley_terry"]\n[horizons]\ntrend-agents = "all"\n')
    args = _parsed(["--config", str(config), "compare", "--draws", "100"])
    assert (args.chains, args.draws, args.q, args.models) == (2, 100, [0.5, 0.8, 0.9], ["logistic", "bradley_terry"])
    assert _parsed(["--config", str(config), "horizons"]).trend_agents == "all"


def test_config_file_in_the_working_directory_is_read(tmp_path, monkeypatch):
    (tmp_path / "horizon-zoo.toml").write_text("[sampling]\nseed = 7\n")
    monkeypatch.chdir(tmp_path)
    assert _parsed(["fit", "--model", "logistic"]).seed == 7


@pytest.mark.parametrize("text, message", [
    ("[sampling]\nchain = 2\n", r"\[sampling\] chain is not an option of 'compare'; valid: .*chains"),
    ("[sampling]\nchains = 'many'\n", r"chains = 'many'"),
    ("[plots]\ndpi = 3\n", r"unknown section\(s\) plots"),
    ("[sampling\n", r"cannot read the config file"),
    ("[output]\nq = [50, 150]\n", r"--q takes percentages from 1 to 99"),
])
def test_bad_config_files_are_named(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["--config", str(config), "compare"]) == 2
    assert re.search(message, capsys.readouterr().err)


# --- hostile commands: every one a one-paragraph message, its exit code, nothing written -----------


def _broken_model(tmp_path):
    text = (REPO / "stan_models" / "logistic.stan").read_text().replace("name: logistic\n", "name: broken\n")
    path = tmp_path / "broken.stan"
    path.write_text(text.replace("model {", "model {\n  real slope = no_such_variable;", 1))
    return str(path)


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (case, argv built from tmp_path, exit code, fragments of the message); argparse's own usage errors
# (exit 2) are included because a user meets them the same way.
HOSTILE_COMMANDS = [
    ("model that does not compile", lambda t: ["fit", "--model", _broken_model(t)], 3,
     ["does not compile", "no_such_variable", "line"]),
    ("model file missing", lambda t: ["fit", "--model", str(t / "nowhere.stan")], 3, ["nowhere.stan"]),
    ("release dates missing agents", lambda t: ["horizons", "--release-dates", _file(t, "d.yaml", "sim-2019-02: 2019-02-14\n")],
     2, ["no release date for 11 of 12 agents", "--skip-undated"]),
    ("release dates not a date", lambda t: ["horizons", "--release-dates", _file(t, "d.yaml", "sim-2019-02: soon\n")],
     2, ["soon"]),
    ("release dates file missing", lambda t: ["horizons", "--release-dates", str(t / "none.yaml")], 2, ["none.yaml"]),
    ("q outside 0-100", lambda t: ["horizons", "--q", "150"], 2, ["--q takes percentages from 1 to 99"]),
    ("q given as a fraction", lambda t: ["horizons", "--q", "0.5,0.8"], 2, ["--q", "half a percent"]),
    ("misspelt model", lambda t: ["compare", "--models", "logistic,weibul"], 2, ["did you mean 'weibull'"]),
    ("threshold without unit", lambda t: ["horizons", "--thresholds", "8"], 2, ["--thresholds", "'8'"]),
    ("sbc with no simulations", lambda t: ["sbc", "--model", "logistic", "--sims", "0"], 2, ["--sims must be at least 1"]),
    ("cv with one fold", lambda t: ["cv", "--folds", "1"], 2, ["--folds must be at least 2"]),
    ("unknown cv scheme", lambda t: ["cv", "--cv", "runs", "--folds", "2"], 2, ["unknown --cv scheme", "runs"]),
    ("compare with an unknown cv scheme", lambda t: ["compare", "--cv", "cells"], 2, ["unknown --cv scheme", "cells"]),
    ("report of a non-run directory", lambda t: ["report", str(t)], 2, ["not a run directory"]),
    ("simulate with unreadable values", lambda t: ["simulate", "--model", "logistic", "--output", str(t / "o.jsonl"),
                                                   "--values", _file(t, "v.json", "{alpha: 1")], 2, ["v.json", "JSON"]),
    ("new model with a bad name", lambda t: ["--models-dir", str(t), "new-model", "My Model"], 3, ["My Model"]),
    ("unknown weights scheme", lambda t: ["fit", "--model", "logistic", "--weights", "heavy"], 2,
     ["--weights heavy needs the column 'heavy'"]),
    ("thinning of zero", lambda t: ["fit", "--model", "logistic", "--thin", "0"], 2,
     ["invalid sampler setting", "thin"]),
    ("zero threads per chain", lambda t: ["fit", "--model", "logistic", "--threads-per-chain", "0"], 2,
     ["invalid sampler setting", "threads_per_chain"]),
    ("empty first metric window", lambda t: ["fit", "--model", "logistic", "--metric-window", "0"], 2,
     ["invalid sampler setting", "metric_window"]),
    ("negative init radius", lambda t: ["fit", "--model", "logistic", "--init-radius", "-1"], 2,
     ["invalid sampler setting", "init_radius"]),
]


@pytest.mark.parametrize("case, argv, code, fragments", HOSTILE_COMMANDS, ids=[c[0] for c in HOSTILE_COMMANDS])
def test_hostile_commands_exit_with_a_message_and_write_nothing(case, argv, code, fragments, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default runs root is ./runs
    args = argv(tmp_path)
    try:
        result = main(args)
    except SystemExit as exc:  # argparse usage errors
        result = exc.code
    err = capsys.readouterr().err
    assert result == code, err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1] if err.startswith("usage") else err
    for fragment in fragments:
        assert fragment in message, (fragment, err)
    assert not (tmp_path / "runs").exists(), "nothing may be written for a rejected command"


# --- exit codes 4 and 5 (issue 36: no test checked them) ------------------------------------------


def test_a_backend_that_is_not_available_exits_4(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("horizon_zoo.backends.cmdstan_available", lambda: False)
    assert main(["fit", "--models", "logistic", "--backend", "cmdstanpy"]) == 4
    err = capsys.readouterr().err
    assert "backend 'cmdstanpy' is not available: CmdStan is not installed" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.stan
def test_every_model_failing_in_the_backend_exits_4_with_each_cause(tmp_path, write_runs, capsys):
    broken = REPO / "tests" / "stan_programs" / "never_initialises.stan"
    runs = write_runs(make_runs(n_agents=3, n_tasks=8, runs_per_cell=3))
    code = main(["fit", "--models", str(broken), "--runs", str(runs), "--chains", "1", "--warmup", "50", "--draws", "50",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "every model failed: never_initialises:" in err and "Initialization failed" in err


@pytest.mark.stan
def test_strict_exits_5_when_a_fit_fails_its_diagnostics_and_0_without_strict(tmp_path, write_runs, capsys):
    # one chain of 30 draws: bulk ESS far below 100, a failing verdict
    runs = write_runs(make_runs(n_agents=2, n_tasks=6, runs_per_cell=2))
    argv = ["fit", "--models", "bradley_terry", "--runs", str(runs), "--chains", "1", "--warmup", "30", "--draws", "30"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*argv, "--strict", "--out", str(tmp_path / "b")]) == 5
    assert "--strict: diagnostics failed for bradley_terry" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("8h,40h,167h", {"8 h": 480.0, "40 h": 2400.0, "167 h": 10020.0}),
    ("90s,30min,2d,1w", {"90 s": 1.5, "30 min": 30.0, "2 d": 2880.0, "1 w": 10080.0}),
    ("1.5h, 45 m", {"1.5 h": 90.0, "45 m": 45.0}),
])
def test_forecast_thresholds_are_read_in_their_units(text, expected):
    """Issue 36: the horizons test checked the thresholds' labels, not their minutes."""
    from horizon_zoo.cli import _thresholds

    assert _thresholds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["8", "8 hours", "h", "-2h", ""])
def test_forecast_thresholds_without_a_unit_are_refused(text):
    import argparse

    from horizon_zoo.cli import _thresholds

    with pytest.raises(argparse.ArgumentTypeError, match="--thresholds"):
        _thresholds(text)


@pytest.mark.parametrize("argv, dest, function, parameter", [
    (["cv"], "models", "cv", "models"), (["cv"], "folds", "cv", "folds"), (["compare"], "folds", "compare", "folds"),
    (["sbc", "--models", "m"], "sims", "sbc", "sims"), (["sbc", "--models", "m"], "max_agents", "sbc", "max_agents"),
    (["sbc", "--models", "m"], "max_tasks", "sbc", "max_tasks"), (["horizons"], "models", "horizons", "models"),
    (["horizons"], "q", "horizons", "qs"), (["compare"], "q", "compare", "qs"), (["check"], "models", "check", "models"),
])
def test_the_cli_and_the_api_share_each_default(argv, dest, function, parameter):
    """Issue 30: defaults in one place (horizon_zoo.defaults), read by both."""
    import inspect

    from horizon_zoo import api
    from horizon_zoo.cli import build_parser

    cli_default = getattr(build_parser().parse_args(argv), dest)
    api_default = inspect.signature(getattr(api, function)).parameters[parameter].default
    assert list(cli_default) == list(api_default) if isinstance(api_default, tuple) else cli_default == api_default


def test_sbc_ranks_default_is_the_modules_and_sbc_names_its_models_in_both():
    import inspect

    from horizon_zoo import api, defaults, sbc
    from horizon_zoo.cli import build_parser

    assert build_parser().parse_args(["sbc", "--models", "m"]).ranks == sbc.DEFAULT_RANKS == defaults.SBC_RANKS == 99
    assert inspect.signature(api.sbc).parameters["models"].default is inspect.Parameter.empty
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sbc"])
