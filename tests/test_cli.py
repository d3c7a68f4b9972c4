"""The command line: help, list-models, and clean failures on bad input."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from horizon_zoo.cli import main
from tests.conftest import REPO
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


def test_unknown_model_exits_3(capsys):
    assert main(["fit", "--model", "no_such_model"]) == 3
    assert "no model named 'no_such_model'" in capsys.readouterr().err


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
    ("[output]\nq = [50, 150]\n", r"--q values must lie strictly between 0 and 100"),
])
def test_bad_config_files_are_named(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["--config", str(config), "compare"]) == 2
    assert re.search(message, capsys.readouterr().err)
