"""The ``horizon-zoo`` command line.

Exit codes: 0 success; 2 bad input data or arguments; 3 a model breaks the contract; 4 the Stan
backend failed; 5 ``--strict`` and some fit failed its diagnostics; 130 interrupted (Ctrl-C); 143
terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from horizon_zoo import __version__, defaults
from horizon_zoo.backends import SamplerSettings, available_backends
from horizon_zoo.data import DEFAULT_EXCLUDED_AGENTS, DEFAULT_MAX_MINUTES_RATIO
from horizon_zoo.errors import HorizonZooError
from horizon_zoo.metr import DEFAULT_BOOTSTRAP, DEFAULT_REGULARIZATION
from horizon_zoo.rundir import DEFAULT_RUNS_ROOT

EXIT_DIAGNOSTICS = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM

EPILOG = """\
exit codes:
  0    success
  2    bad input data or arguments (the message names the file, rows and expectation)
  3    a Stan model breaks the model contract or does not compile
  4    the Stan backend failed (not installed, compilation or sampling error)
  5    --strict was given and some fit failed its diagnostics
  130  interrupted (Ctrl-C); completed fits stay in the run directory
  143  terminated (SIGTERM, e.g. kill or a job scheduler's time limit); as for 130
"""


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _qs(text: str) -> list[float]:
    """``--q`` in percent (``50,80``), as fractions for the API."""
    try:
        percents = [float(x) for x in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--q takes percentages such as 50,80; got {text!r}") from None
    if not percents or any(not 1 <= v <= 99 for v in percents):
        hint = (" (percentages: 50 is the 50% horizon; the fraction 0.5 would mean half a percent)"
                if any(0 < v < 1 for v in percents) else "")
        raise argparse.ArgumentTypeError(f"--q takes percentages from 1 to 99, such as 50,80; got {text!r}{hint}")
    return [v / 100 for v in percents]


_UNITS = {"s": 1 / 60, "sec": 1 / 60, "min": 1.0, "m": 1.0, "h": 60.0, "d": 1440.0, "w": 10080.0}


def _thresholds(text: str) -> dict[str, float]:
    """``8h,40h,167h`` -> {label: minutes}."""
    import re

    out = {}
    for item in _csv_list(text):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d|w)", item.lower())
        if not match:
            raise argparse.ArgumentTypeError(
                f"--thresholds takes lengths such as 8h,40h,167h (units s, min, h, d, w); got {item!r}")
        out[f"{match.group(1)} {match.group(2)}"] = float(match.group(1)) * _UNITS[match.group(2)]
    if not out:
        raise argparse.ArgumentTypeError("--thresholds needs at least one length")
    return out


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--runs", type=Path, metavar="FILE",
                   help="METR-format runs (.jsonl or .csv); default: the embedded simulated dataset")
    g.add_argument("--agents", type=_csv_list, metavar="A,B",
                   help="keep only these agents (alias values, comma-separated)")
    g.add_argument("--exclude-agents", type=_csv_list, default=list(DEFAULT_EXCLUDED_AGENTS), metavar="A,B",
                   help="drop these agents, case-insensitive (default: %(default)s; pass '' to keep all)")
    g.add_argument("--task-sources", type=_csv_list, metavar="S,T", help="keep only these task sources")
    g.add_argument("--families", type=_csv_list, metavar="F,G", help="keep only these task families")
    g.add_argument("--weights", default=None, metavar="equal|invsqrt|COLUMN",
                   help="weight the likelihood with METR's task weights (equal, invsqrt) or any numeric "
                        "column of the run file; each agent's weights are scaled to its run count "
                        "(default: unweighted)")
    g.add_argument("--max-minutes-ratio", type=float, default=DEFAULT_MAX_MINUTES_RATIO, metavar="R",
                   help="merge a task's differing human_minutes by geometric mean when max/min <= R, "
                        "else reject the file (default: %(default)s; 1 rejects any disagreement)")
    g.add_argument("--release-dates", type=Path, metavar="FILE",
                   help="agents' release dates: METR's release_dates.yaml format or a CSV (agent/alias/model, "
                        "release_date); matched by alias, then model id, then name without a trailing "
                        "'(...)'; needed for trends and trend models")
    g.add_argument("--skip-undated", action="store_true",
                   help="leave agents without a release date out of the trend instead of stopping")


def _add_sampler_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--backend", choices=["auto", "cmdstanpy", "pystan"], default="auto",
                   help="Stan backend; auto uses CmdStanPy when CmdStan is installed, else PyStan")
    d = SamplerSettings()
    g.add_argument("--chains", type=int, default=d.chains, help="MCMC chains (default: %(default)s)")
    g.add_argument("--warmup", type=int, default=d.warmup, help="warmup iterations per chain (default: %(default)s)")
    g.add_argument("--draws", type=int, default=d.draws, help="post-warmup draws per chain (default: %(default)s)")
    g.add_argument("--thin", type=int, default=d.thin,
                   help="keep every THIN-th draw (default: %(default)s); with tens of thousands of cells the "
                   "pointwise log_lik and y_rep of every kept draw dominate time and memory")
    g.add_argument("--threads-per-chain", type=int, default=d.threads_per_chain,
                   help="threads per chain for the models that sum their likelihood with reduce_sum "
                   "(default: %(default)s); worth it only when cores outnumber chains")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    g.add_argument("--adapt-delta", type=float, default=d.adapt_delta,
                   help="target acceptance rate of NUTS adaptation (default: %(default)s)")
    g.add_argument("--max-treedepth", type=int, default=d.max_treedepth,
                   help="NUTS maximum tree depth (default: %(default)s)")
    g.add_argument("--init-buffer", type=int, default=d.init_buffer,
                   help="warmup iterations before the first metric estimate (default: %(default)s, Stan's); "
                   "with very large data 10, with --metric-window 15, can save much of warmup (time it per model)")
    g.add_argument("--metric-window", type=int, default=d.metric_window,
                   help="warmup iterations of the first metric window, which later windows double "
                   "(default: %(default)s, Stan's)")
    g.add_argument("--init-radius", type=float, default=d.init_radius,
                   help="random initial values in (-R, R) on the unconstrained scale (default: %(default)s, "
                   "Stan's); a model's header may narrow it")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Data, sampling and output options: every command that fits models takes all three."""
    _add_data_options(p)
    _add_sampler_options(p)
    _add_output_options(p)


def _add_metr_options(p: argparse.ArgumentParser, optional: bool = True) -> None:
    g = p.add_argument_group("METR's reference (per-agent penalised logistic with a hierarchical bootstrap)")
    if optional:
        g.add_argument("--no-metr", action="store_true", help="leave METR's reference column out of the horizons")
    g.add_argument("--metr-boot", type=int, default=DEFAULT_BOOTSTRAP, metavar="N",
                   help="bootstrap resamples for METR's intervals (default: %(default)s; 0: point estimates only)")
    g.add_argument("--metr-regularization", type=float, default=DEFAULT_REGULARIZATION, metavar="R",
                   help="L2 penalty on the slope, scikit-learn's 1/C (default: %(default)s, METR's published "
                        "setting; 0: unpenalised)")


def _add_fits_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fits", type=Path, metavar="DIR",
                   help="reuse saved fits from this directory (a run directory's fits/) when model and data match")


def _add_cv_options(p: argparse.ArgumentParser, default: list[str]) -> None:
    g = p.add_argument_group("cross-validation")
    g.add_argument("--cv", type=_csv_list, default=default, metavar="task,family,agent",
                   help="grouped CV schemes: leave tasks out (K folds stratified by family and length), leave "
                        f"families out, leave one agent out (default: {','.join(default) or 'none'})")
    g.add_argument("--folds", type=int, default=defaults.FOLDS, metavar="K", help="folds per scheme (default: %(default)s)")
    g.add_argument("--reloo-max", type=int, default=0, metavar="N",
                   help="refit exactly the cells with Pareto k > 0.7 when a model has at most N of them; "
                        "each refit costs a full fit (default: %(default)s, off: the table then flags "
                        "models whose PSIS estimate is unreliable)")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, metavar="DIR", help="write into exactly this run directory")
    g.add_argument("--runs-root", type=Path, default=DEFAULT_RUNS_ROOT, metavar="DIR",
                   help="parent of new run directories <timestamp>-<command> (default: %(default)s)")
    g.add_argument("--q", type=_qs, default=list(defaults.QS), metavar="50,80",
                   help="success probabilities (percent) for horizon tables (default: 50,80)")
    g.add_argument("--strict", action="store_true", help="exit with code 5 if any fit fails its diagnostics")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="horizon-zoo",
        description="Competing Stan models of how AI agents' success falls with task length.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"horizon-zoo {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print debugging detail")
    parser.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="directory of .stan models (default: the repository's stan_models/)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="option defaults from a TOML file (default: ./horizon-zoo.toml if present); "
                             "sections [data], [sampling], [output] or a command name")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compare", help="fit every zoo model and compare them (the main job)",
                       description="Fit every zoo model (or --models) to the runs, then write a run "
                                   "directory with a PSIS-LOO comparison, per-agent horizons and "
                                   "diagnostics. Without --runs it uses the embedded simulated dataset.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, metavar="M,N",
                   help="model names or .stan paths (default: every model in the zoo; --model is the same option)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="models fitted J at a time in separate processes, each reported when it "
                        "finishes, and CV folds likewise (default: %(default)s; 2 on two cores: 11%% "
                        "faster on cyber-horizons)")
    _add_cv_options(p, default=[])
    _add_run_options(p)
    _add_metr_options(p)

    p = sub.add_parser("cv", help="grouped cross-validation only: new tasks, families, agents",
                       description="Refit each model once per fold with the held-out cells' weight at 1e-9 "
                                   "(their effects then come from the model's hierarchy) and compare the "
                                   "models' predictive elpd for new tasks, families or agents, with SEs of "
                                   "paired differences. Folds are cached and resume after an interruption.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, metavar="M,N",
                   default=list(defaults.CV_MODELS),
                   help="model names or .stan paths (default: logistic,logistic_task_effects; --model is the same "
                        "option)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="folds fitted in parallel processes (default: %(default)s)")
    _add_cv_options(p, default=["task"])
    _add_run_options(p)

    p = sub.add_parser("fit", help="fit one model and write its diagnostics and horizons",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, required=True, metavar="NAME[,NAME]",
                   help="zoo model names or .stan paths (--model is the same option)")
    _add_run_options(p)

    p = sub.add_parser("horizons", help="per-agent horizons, their trend over release date and forecasts",
                       description="Fit one or more models (or reuse fits with --fits) and report each agent's "
                                   "q-horizon with intervals; with release dates, the doubling time of the "
                                   "horizon (per posterior draw, so uncertainty propagates), the p80/p50 "
                                   "comparison and when the trend crosses --thresholds. Writes tables (CSV + "
                                   "Markdown), figures and summary.md.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, default=[defaults.MODEL], metavar="NAME[,NAME]",
                   help="model names or .stan paths; several give an overlay figure (default: logistic; --model "
                        "is the same option)")
    p.add_argument("--trend-agents", default="frontier", metavar="frontier|all|A,B",
                   help="agents the trend is fitted to: those better than every earlier release (default), "
                        "all dated agents, or a list")
    p.add_argument("--thresholds", type=_thresholds, metavar="8h,40h,167h",
                   help="forecast when the trend reaches these lengths (default: work-day 8h, work-week 40h, "
                        "work-month 167h)")
    _add_fits_option(p)
    _add_run_options(p)
    _add_metr_options(p)

    p = sub.add_parser("metr", help="METR's own horizons: per-agent penalised logistic, hierarchical bootstrap",
                       description="METR's frequentist time-horizon pipeline on the runs, no Stan fit: per agent a "
                                   "weighted logistic regression on log2 minutes with an L2 penalty on the slope "
                                   "(scikit-learn's, METR's setting by default), horizons for --q, intervals from "
                                   "the hierarchical bootstrap over families, tasks and runs, and with release "
                                   "dates the frontier's doubling time. Weights: --weights as for the models "
                                   "(a column as given; equal/invsqrt computed per agent to sum to 1, as METR "
                                   "does); none: every run of an agent alike.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_options(p)
    _add_output_options(p)
    _add_metr_options(p, optional=False)

    p = sub.add_parser("check", help="posterior predictive checks: what structure each model misses",
                       description="Fit one or more models (or reuse fits with --fits) and run the posterior "
                                   "predictive checks: calibration by task length, success curves over binned "
                                   "rates, agent and task residual correlation structure with block statistics, "
                                   "LOO-PIT and Pareto k, and test statistics with p-values. Writes figures, "
                                   "tables of p-values and summary.md.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, default=[defaults.MODEL], metavar="NAME[,NAME]",
                   help="model names or .stan paths (default: logistic; --model is the same option)")
    _add_fits_option(p)
    _add_run_options(p)

    p = sub.add_parser("sbc", help="simulation-based calibration: is each model's posterior trustworthy?",
                       description="For each simulation: draw parameters from the model's prior, simulate data on "
                                   "the design of --runs (default: the embedded dataset) cut to --max-agents x "
                                   "--max-tasks, fit, and rank the true value of every scalar and agent-level "
                                   "parameter and of each agent's 50% horizon among thinned posterior draws. "
                                   "Uniform ranks mean a calibrated posterior. Writes rank histograms as ECDF "
                                   "difference plots with 95% simultaneous bands, chi-square uniformity tests "
                                   "and a summary; simulations are cached and resume after an interruption.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, required=True, metavar="NAME[,NAME]|all",
                   help="model names or .stan paths, or 'all' for the whole zoo (--model is the same option)")
    p.add_argument("--sims", type=int, default=defaults.SBC_SIMS, metavar="N", help="simulations per model (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="simulations fitted in parallel processes (default: %(default)s)")
    p.add_argument("--max-agents", type=int, default=defaults.SBC_MAX_AGENTS, metavar="A",
                   help="design: agents kept, evenly spaced (default: %(default)s; 0 keeps all)")
    p.add_argument("--max-tasks", type=int, default=defaults.SBC_MAX_TASKS, metavar="T",
                   help="design: tasks kept, evenly spaced in length (default: %(default)s; 0 keeps all)")
    p.add_argument("--ranks", type=int, default=defaults.SBC_RANKS, metavar="L",
                   help="posterior draws each true value is ranked among (default: %(default)s)")
    _add_run_options(p)
    p.set_defaults(chains=2, warmup=500, draws=500)

    p = sub.add_parser("simulate", help="simulate runs from a zoo model (prior draw or given values)",
                       description="Simulate successes from any zoo model on the design (agents, tasks, "
                                   "runs per cell) of --runs or of the embedded default dataset, at "
                                   "parameter values drawn from the model's prior or given with --values. "
                                   "Writes METR-format runs (JSONL) and the true values (JSON).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "--model", dest="models", type=_csv_list, required=True, metavar="NAME|PATH.stan",
                   help="one zoo model name or .stan path (--model is the same option)")
    p.add_argument("--values", type=Path, metavar="FILE.json",
                   help="parameter values as JSON {name: number or list}; default: one draw from the prior")
    p.add_argument("--output", type=Path, required=True, metavar="FILE.jsonl", help="where to write the runs")
    p.add_argument("--seed", type=int, default=SamplerSettings().seed, help="random seed (default: %(default)s)")
    p.add_argument("--backend", choices=["auto", "cmdstanpy", "pystan"], default="auto", help="Stan backend")
    p.add_argument("--runs", type=Path, metavar="FILE", help="design to simulate on (default: embedded dataset)")
    p.add_argument("--release-dates", type=Path, metavar="FILE",
                   help="agents' release dates, for trend models (the embedded dataset has its own)")

    p = sub.add_parser("new-model", help="write a commented template for a new model",
                       description="Copy a zoo model (--from) to <models dir>/NAME.stan with TODO markers and a "
                                   "guide comment. The copy is a valid model at once: it appears in list-models "
                                   "and compare; edit it, then run validate-model.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="model name: lower-case letters, digits and _ (the file name)")
    p.add_argument("--from", dest="source", default=defaults.MODEL, metavar="MODEL",
                   help="zoo model to start from (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = sub.add_parser("validate-model", help="check a Stan program: contract, compile, prior draw, recovery fit",
                       description="Check a .stan file end to end and say precisely what is wrong: header and "
                                   "model contract, compilation, shapes and ranges of log_lik / y_rep / p_curve "
                                   "in a prior draw, and a short parameter-recovery fit on data simulated from "
                                   "that draw. Exit code 0 when every step passes, 3 otherwise.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="the .stan file (or a zoo model name)")
    p.add_argument("--no-fit", action="store_true", help="skip the recovery fit (the slowest step)")
    p.add_argument("--backend", choices=["auto", "cmdstanpy", "pystan"], default="auto", help="Stan backend")

    p = sub.add_parser("report", help="rebuild report.html and report.md of a run directory",
                       description="Rebuild the self-contained report.html (figures embedded) and report.md "
                                   "from the files of a run directory (every command writes them at the end).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run directory written by compare, fit, check or horizons")

    p = sub.add_parser("cache", help="where horizon-zoo's caches live and how much they hold; clear them",
                       description="info: every cache (compiled programs per backend, CV folds, SBC simulations, "
                                   "the checks' calibration study), its folder, entries and size. clear: delete "
                                   "their entries (all, --only some, or those unused for --older-than days); "
                                   "whatever is needed again is rebuilt or refitted.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("info", "clear"))
    p.add_argument("--only", type=_csv_list, metavar="NAME[,NAME]", help="only these caches (names as in info)")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="clear only entries unused for DAYS days")

    p = sub.add_parser("cmdstan", help="build a real CmdStan offline (CmdStan's source + PyStan's toolchain)",
                       description="build: assemble CmdStan from its release source archive (cmdstan-X.Y.Z.tar.gz, "
                                   "no Stan inside) and the Stan headers, libraries and stanc that PyStan's httpstan "
                                   "wheel ships; nothing is downloaded. About 10 minutes on 2 cores, once per "
                                   "environment; --backend auto then finds it. info: which CmdStan the cmdstanpy "
                                   "backend would use. With internet access, cmdstanpy.install_cmdstan() is the "
                                   "usual route instead.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("build", "info"))
    p.add_argument("--archive", type=Path, metavar="TAR.GZ", help="CmdStan's release source archive (build)")
    p.add_argument("--jobs", type=int, default=2, help="parallel make jobs (default 2)")
    p.add_argument("--force", action="store_true", help="rebuild even when a finished build exists")

    sub.add_parser("list-models", help="list the zoo: name, hypothesis, free parameters",
                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def _apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Defaults from --config FILE, else ./horizon-zoo.toml when present (command line still wins)."""
    from horizon_zoo.config import DEFAULT_CONFIG, apply_config, read_config

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(argv)
    path = known.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if path is None:
        return
    if not path.is_file():
        raise HorizonZooError(f"config file {path} not found.")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    command = next((a for a in rest if a in subparsers), None)
    if command is not None:
        apply_config(dict(subparsers), command, read_config(path), path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``horizon-zoo`` console script; returns the exit code."""
    parser = build_parser()
    try:
        _apply_config_file(parser, argv)
    except HorizonZooError as exc:
        print(f"horizon-zoo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    # Only our own logger speaks at INFO; libraries (ArviZ, PyStan) stay at WARNING.
    logging.basicConfig(level=logging.WARNING, format="horizon-zoo: %(message)s", stream=sys.stderr, force=True)
    logging.getLogger("horizon_zoo").setLevel(
        logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_about_the_interruption)
    with _sigterm_as_ctrl_c() as terminated:
        try:
            return _dispatch(args, argv)
        except HorizonZooError as exc:
            print(f"horizon-zoo: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            # PyStan turns a KeyboardInterrupt into a None fit, so the signal is known by the flag.
            cause = "terminated (SIGTERM)" if terminated else "interrupted"
            print(f"horizon-zoo: {cause}; completed fits are kept in the run directory.", file=sys.stderr)
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def _not_about_the_interruption(record: logging.LogRecord) -> bool:
    """False for what PyStan's machinery logs while an interruption cancels it (pages of
    tracebacks); the interruption is reported once, in main()."""
    from horizon_zoo.backends.pystan import is_interruption_noise

    return not is_interruption_noise(record)


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[list[int]]:
    """Stop on SIGTERM (kill, a scheduler's time limit) as on Ctrl-C: workers killed, no partial
    files, the run's manifest marked interrupted. Yields a list that holds the signal once received.

    By default SIGTERM ends the process at once, leaving the manifest at ``running``.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signal handlers are main-thread only
        yield received
        return

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if callable(signal.getsignal(signal.SIGINT)):
            # A Ctrl-C of this process, so that whoever handles SIGINT (asyncio in PyStan cancels
            # its tasks cleanly) handles this alike.
            signal.raise_signal(signal.SIGINT)
        else:  # SIGINT ignored (a background job of a script)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from horizon_zoo import api

    if args.command == "list-models":
        return _list_models(args)
    if args.command == "new-model":
        from horizon_zoo.validate import new_model

        path = new_model(args.name, args.source, args.models_dir, force=args.force)
        print(f"wrote {path} (from {args.source}); edit it, then: horizon-zoo validate-model {path}")
        return 0
    if args.command == "validate-model":
        return _validate_model(args)
    if args.command == "report":
        from horizon_zoo.report import write_report

        if not (args.run_dir / "manifest.json").is_file():
            raise HorizonZooError(f"{args.run_dir} is not a run directory (it has no manifest.json).")
        html_path, md_path = write_report(args.run_dir)
        print(f"wrote {html_path} and {md_path}")
        return 0
    if getattr(args, "models", None):
        _check_model_names(args.models, args.models_dir)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "cache":
        return _cache(args)
    if args.command == "cmdstan":
        return _cmdstan(args)
    if args.command == "metr":
        return _metr(args, argv)
    try:
        settings = SamplerSettings(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
                                   adapt_delta=args.adapt_delta, max_treedepth=args.max_treedepth,
                                   thin=args.thin, threads_per_chain=args.threads_per_chain,
                                   init_buffer=args.init_buffer, metric_window=args.metric_window,
                                   init_radius=args.init_radius)
    except ValueError as exc:
        raise HorizonZooError(f"invalid sampler setting: {exc}") from None
    data = _load(args)
    command = _command_line(argv)
    if args.command == "check":
        checked = api.check(data, models=args.models, models_dir=args.models_dir, settings=settings,
                            backend=args.backend, fits_dir=args.fits, out=args.out, runs_root=args.runs_root,
                            progress=not args.quiet, command=command)
        from horizon_zoo.rundir import markdown_table

        print("\nDiagnostics:\n")
        print(markdown_table(checked.diagnostics[api.DIAGNOSTICS_SHOWN]))
        print("Posterior predictive checks (p-values; * outside [0.025, 0.975]):\n")
        print(markdown_table(checked.summary))
        if checked.run_dir:
            print(f"Run directory: {checked.run_dir}  (start with summary.md)")
        return 0
    if args.command == "horizons":
        agents = args.trend_agents if args.trend_agents in ("frontier", "all") else _csv_list(args.trend_agents)
        horizons = api.horizons(data, models=args.models, models_dir=args.models_dir, qs=args.q,
                                trend_agents=agents, thresholds=args.thresholds, settings=settings,
                                backend=args.backend, fits_dir=args.fits, out=args.out, runs_root=args.runs_root,
                                progress=not args.quiet, command=command, metr_boot=_metr_boot(args),
                                metr_regularization=args.metr_regularization)
        _print_horizons(horizons)
        return 0
    if args.command == "cv":
        return _cv(args, data, settings, command)
    if args.command == "sbc":
        return _sbc(args, data, settings, command)
    models = args.models
    cv_options = (dict(cv=args.cv, folds=args.folds, jobs=args.jobs, reloo_max=args.reloo_max,
                       metr_boot=_metr_boot(args), metr_regularization=args.metr_regularization)
                  if args.command == "compare" else {"metr_boot": None})
    result = api.compare(data, models=models, models_dir=args.models_dir, settings=settings,
                         backend=args.backend, qs=args.q, out=args.out, runs_root=args.runs_root,
                         progress=not args.quiet, command=command, run_name=args.command, **cv_options)
    _print_result(result)
    failed_diagnostics = [n for n, f in result.fits.items() if f.diagnostics.verdict == "fail"]
    if args.strict and (failed_diagnostics or result.failed):
        print(f"horizon-zoo: --strict: diagnostics failed for {', '.join(failed_diagnostics + list(result.failed))}",
              file=sys.stderr)
        return EXIT_DIAGNOSTICS
    return 0


def _check_model_names(names: Sequence[str], models_dir: Path | None) -> None:
    """Refuse model names the zoo does not have before any data is read (exit 2), with the
    closest names; paths to .stan files are checked when they are loaded."""
    import difflib

    from horizon_zoo.registry import model_paths

    zoo = [p.stem for p in model_paths(models_dir)]
    unknown = [n for n in names if n != "all" and not n.endswith(".stan") and "/" not in n and n not in zoo]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, zoo, n=2, cutoff=0.6)
            hints.append(f"'{name}'" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
        raise HorizonZooError(f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(hints)}. The zoo: "
                              f"{', '.join(zoo)} (horizon-zoo list-models).")


def _load(args: argparse.Namespace) -> Any:
    from horizon_zoo import api

    return api.load(args.runs, agents=args.agents, exclude_agents=args.exclude_agents,
                    task_sources=args.task_sources, families=args.families, weights=args.weights,
                    max_minutes_ratio=args.max_minutes_ratio, release_dates=args.release_dates,
                    skip_undated=args.skip_undated)


def _command_line(argv: Sequence[str] | None) -> str:
    return "horizon-zoo " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))


def _metr_boot(args: argparse.Namespace) -> int | None:
    """Bootstrap resamples for METR's reference column; None leaves the column out."""
    if args.metr_boot < 0:
        raise HorizonZooError(f"--metr-boot must be 0 or more, got {args.metr_boot}.")
    if args.metr_regularization < 0:
        raise HorizonZooError(f"--metr-regularization must be 0 or more, got {args.metr_regularization:g}.")
    return None if getattr(args, "no_metr", False) else args.metr_boot


def _metr(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from horizon_zoo import api

    n_boot = _metr_boot(args)
    assert n_boot is not None
    run_dir, ref = api.metr(_load(args), qs=args.q, n_boot=n_boot, regularization=args.metr_regularization,
                            out=args.out, runs_root=args.runs_root, command=_command_line(argv))
    print(f"\nMETR's horizons ({ref.settings}):\n")
    print(api.metr_table_markdown(ref))
    if not ref.doubling.empty:
        from horizon_zoo.rundir import markdown_table

        print("Doubling time of p50 along the frontier, months:\n")
        print(markdown_table(ref.doubling))
    print(f"Run directory: {run_dir}  (start with summary.md)")
    return 0


def _print_result(result: api.CompareResult) -> None:  # noqa: F821
    from horizon_zoo.api import DIAGNOSTICS_SHOWN, headline
    from horizon_zoo.compare import loo_shown
    from horizon_zoo.horizons import wide_horizon_table
    from horizon_zoo.rundir import markdown_table

    print("\nPSIS-LOO comparison (best first):\n")
    print(markdown_table(loo_shown(result.loo)))
    print("Diagnostics:\n")
    print(markdown_table(result.diagnostics[DIAGNOSTICS_SHOWN]))
    best = str(result.loo.iloc[0]["model"])
    print(f"Horizons, {best} (median [95% interval]):\n")
    print(markdown_table(wide_horizon_table(result.horizons[result.horizons["model"] == best],
                                            result.metr.table if result.metr else None)))
    if not result.checks.empty:
        print("Posterior predictive checks (p-values; * outside [0.025, 0.975]):\n")
        print(markdown_table(result.checks))
    sentences, best_horizons = headline(result)
    print(f"Headline\n\n{markdown_table(best_horizons)}" + "\n".join(f"- {line}" for line in sentences))
    if result.run_dir:
        print(f"\nRun directory: {result.run_dir}  (start with summary.md or report.html)")


def _cv(args: argparse.Namespace, data: object, settings: SamplerSettings, command: str) -> int:
    from horizon_zoo import api
    from horizon_zoo.rundir import markdown_table

    run_dir, table = api.cv(data, models=args.models, models_dir=args.models_dir, schemes=args.cv, folds=args.folds,
                            jobs=args.jobs, settings=settings, backend=args.backend, out=args.out,
                            runs_root=args.runs_root, command=command)
    print("\nCross-validation (elpd of held-out groups; elpd_diff and dse paired over groups):\n")
    print(markdown_table(table))
    print((run_dir / "cv.md").read_text())
    print(f"Run directory: {run_dir}  (start with report.html)")
    return 0


def _sbc(args: argparse.Namespace, data: object, settings: SamplerSettings, command: str) -> int:
    from horizon_zoo import api
    from horizon_zoo.rundir import markdown_table

    run_dir, summary = api.sbc(data, models=args.models, models_dir=args.models_dir, sims=args.sims,
                               max_agents=args.max_agents, max_tasks=args.max_tasks, ranks=args.ranks,
                               jobs=args.jobs, settings=settings, backend=args.backend, seed=args.seed,
                               out=args.out, runs_root=args.runs_root, command=command)
    print("\nSimulation-based calibration (chi-square uniformity of ranks; flagged = p below 0.05 / quantities):\n")
    print(markdown_table(summary))
    print(f"Run directory: {run_dir}  (start with report.html)")
    return 0


def _print_horizons(result: api.HorizonsResult) -> None:  # noqa: F821
    from horizon_zoo.api import DIAGNOSTICS_SHOWN
    from horizon_zoo.horizons import wide_horizon_table
    from horizon_zoo.rundir import markdown_table
    from horizon_zoo.trend import doubling_text

    print("\nDiagnostics:\n")
    print(markdown_table(result.diagnostics[DIAGNOSTICS_SHOWN]))
    for model in result.fits:
        print(f"\nHorizons, {model} (median [95% interval]):\n")
        print(markdown_table(wide_horizon_table(result.horizons[result.horizons["model"] == model],
                                                result.metr.table if result.metr else None)))
    if result.metr is not None and not result.metr.doubling.empty:
        print(f"METR's doubling time of p50 ({result.metr.settings['n_boot']} bootstrap resamples), months:\n")
        print(markdown_table(result.metr.doubling))
    if not result.doubling.empty:
        d = result.doubling
        print("Doubling time of the horizon, months (median [95% interval]):\n")
        print(markdown_table(d.assign(doubling=doubling_text(d))[
            ["model", "q", "curve", "trend", "doubling", "n_agents", "agents"]]))
    if not result.doubling_ratio.empty:
        print("p80 / p50 doubling-time ratio:\n")
        print(markdown_table(result.doubling_ratio))
    if not result.forecasts.empty:
        f = result.forecasts
        print("Forecasts (date the trend reaches each threshold):\n")
        print(markdown_table(f[["model", "q", "curve", "trend", "threshold", "median_date", "lo95_date",
                                "hi95_date", "far"]]))
    if result.run_dir:
        print(f"Run directory: {result.run_dir}  (start with summary.md)")


def _cache(args: argparse.Namespace) -> int:
    from horizon_zoo import caches

    if args.action == "clear":
        if args.older_than is not None and args.older_than < 0:
            raise HorizonZooError(f"--older-than must be 0 or more days, got {args.older_than:g}.")
        removed = caches.clear(args.only, args.older_than)
        for name, n in removed.items():
            print(f"{name}: removed {n} entr{'y' if n == 1 else 'ies'}")
        return 0
    import pandas as pd

    from horizon_zoo.rundir import markdown_table

    rows = pd.DataFrame(caches.info(args.only))
    rows.insert(3, "size", [f"{b / 1e6:.1f} MB" for b in rows["bytes"]])
    print(markdown_table(rows))
    return 0


def _cmdstan(args: argparse.Namespace) -> int:
    from horizon_zoo import backends, cmdstan_offline

    if args.action == "build":
        if args.archive is None:
            raise HorizonZooError("cmdstan build needs --archive cmdstan-X.Y.Z.tar.gz (CmdStan's release source).")
        if args.jobs < 1:
            raise HorizonZooError(f"--jobs must be 1 or more, got {args.jobs}.")
        path = cmdstan_offline.build_offline(args.archive, jobs=args.jobs, force=args.force,
                                             say=lambda m: print(f"horizon-zoo: {m}", file=sys.stderr, flush=True))
        print(path)
        return 0
    location = backends.cmdstan_location()
    if location is None:
        print("no CmdStan: build one offline with `horizon-zoo cmdstan build --archive cmdstan-X.Y.Z.tar.gz`, "
              "or online with cmdstanpy.install_cmdstan().")
        return 1
    print(location)
    record = Path(location) / cmdstan_offline.MARKER
    if record.is_file():
        import json

        built = json.loads(record.read_text())
        print(f"built offline by horizon-zoo on {built['built']} in {built['seconds'] / 60:.1f} min "
              f"from CmdStan {built['cmdstan']} and {built['httpstan']}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from horizon_zoo import api
    from horizon_zoo.registry import resolve
    from horizon_zoo.rundir import atomic_write_text
    from horizon_zoo.simulate import draw_from_prior, runs_table, simulate_at

    if len(args.models) != 1:
        raise HorizonZooError(f"simulate draws from one model; got {len(args.models)}: {', '.join(args.models)}.")
    model = resolve(args.models[0], args.models_dir)
    design = api.load(args.runs, release_dates=args.release_dates)
    if args.values:
        try:
            values = json.loads(args.values.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HorizonZooError(f"{args.values}: cannot read parameter values as JSON ({exc}).") from None
        simulated = simulate_at(model, design, values, seed=args.seed, backend=args.backend)
    else:
        values, simulated = draw_from_prior(model, design, seed=args.seed, backend=args.backend)
    table = runs_table(simulated)
    atomic_write_text(args.output, "".join(json.dumps(r) + "\n" for r in table.to_dict("records")))
    truth = {k: np.asarray(v).tolist() for k, v in values.items()}
    truth_path = args.output.with_suffix(".truth.json")
    atomic_write_text(truth_path, json.dumps({"model": model.name, "seed": args.seed, "agents": list(design.agents),
                                              "values": truth}, indent=2) + "\n")
    print(f"wrote {len(table)} runs to {args.output} and the true values to {truth_path}")
    return 0


def _validate_model(args: argparse.Namespace) -> int:
    from horizon_zoo.errors import ModelError
    from horizon_zoo.registry import resolve
    from horizon_zoo.validate import validate_model

    path = args.path
    if not path.endswith(".stan"):
        path = str(resolve(path, args.models_dir).path)
    steps = validate_model(path, backend=args.backend, fit=not args.no_fit)
    for step in steps:
        print(f"[{'ok' if step.ok else 'FAIL'}] {step.name}: {step.detail}")
    if not all(s.ok for s in steps):
        return ModelError.exit_code
    print(f"{path} satisfies the model contract.")
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from horizon_zoo.registry import discover

    zoo = discover(args.models_dir)
    width = max((len(n) for n in zoo), default=4)
    pwidth = max((len(m.parameter_count()) for m in zoo.values()), default=10)
    print(f"{'name':<{width}}  {'parameters':<{pwidth}}  hypothesis")
    for name, model in zoo.items():
        hypothesis = textwrap.shorten(model.hypothesis, 100)
        print(f"{name:<{width}}  {model.parameter_count():<{pwidth}}  {hypothesis}")
    print(f"\n{len(zoo)} models in {args.models_dir or 'stan_models/'}; backends available: "
          f"{', '.join(available_backends()) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
