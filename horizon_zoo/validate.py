"""Adding a model: write a template (``new-model``) and check a program end to end (``validate-model``).

``validate_model`` runs the checks in the order a model author meets the problems: header and
contract (no compiler needed beyond ``stanc``), compilation, a prior draw on a small design
(shapes and ranges of every contract output), then a short recovery fit on data simulated
from that draw. Each step reports precisely what is wrong and the first failing step stops.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from horizon_zoo import defaults
from horizon_zoo.errors import HorizonZooError, ModelError
from horizon_zoo.registry import ZooModel

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def new_model(name: str, source: str = defaults.MODEL, models_dir: str | Path | None = None,
              force: bool = False) -> Path:
    """Write ``<models_dir>/<name>.stan``: a copy of zoo model ``source`` marked up to edit.

    The copy is a valid zoo model from the start (it appears in ``list-models`` and
    ``compare``), with TODO markers in the header and a comment saying what to change.
    """
    from horizon_zoo.registry import default_models_dir, resolve

    if not NAME_RE.match(name):
        raise ModelError(f"model name '{name}' must be lower-case letters, digits and _ , starting with a letter "
                         "(it is the file name and the name in compare tables).")
    directory = Path(models_dir) if models_dir else default_models_dir()
    target = directory / f"{name}.stan"
    if target.exists() and not force:
        raise ModelError(f"{target} exists; choose another name or pass --force to overwrite it.")
    template = resolve(source)
    code = template.code
    code = re.sub(r"^name: .*$", f"name: {name}", code, count=1, flags=re.M)
    code = re.sub(r"^title: .*$", f"title: 'TODO: one line (copied from {template.name})'", code, count=1, flags=re.M)
    code = re.sub(r"^hypothesis: >-\n", f"hypothesis: >-\n  TODO: what {name} claims, replacing {template.name}'s:\n",
                  code, count=1, flags=re.M)
    guide = (
        f"// horizon-zoo model template, copied from {template.name}.stan. To make it yours:\n"
        "//  1. header: title, hypothesis, source; every parameter under 'parameters' with its dims and\n"
        "//     under 'priors' with its prior and why; derived quantities under 'generated'.\n"
        "//  2. parameters, model, generated quantities. Keep the data block exactly as it is (the contract)\n"
        "//     and keep log_lik, y_rep and p_curve in generated quantities (stan_models/README.md). The\n"
        "//     #include lines paste the zoo's shared pieces from stan_models/include/.\n"
        f"//  3. horizon-zoo validate-model {target}  (header, compile, prior draw, recovery fit)\n"
    )
    end = code.index("--- */") + len("--- */")
    code = code[:end] + "\n" + guide + code[end:].lstrip("\n")
    directory.mkdir(parents=True, exist_ok=True)
    from horizon_zoo.rundir import atomic_write_text

    atomic_write_text(target, code)
    from horizon_zoo.registry import write_zoo_table

    write_zoo_table(directory)  # the zoo's table lists the new model (its title still TODO)
    return target


# A prior stated as a call, e.g. "normal(0, 2.5): why" or "half-normal(0, 1): why" (flat arguments only).
_PRIOR_CALL = re.compile(r"^\s*(?:half-)?([a-z_]+)\(([^()]*)\)")


def header_problems(model: ZooModel) -> list[str]:
    """What a finished header must not have: TODO placeholders (``new-model`` writes them), and
    priors stated as a call that the program does not contain.

    A prior entry that starts with a distribution call (``normal(0, 2.5): ...``; ``half-normal``
    is ``normal`` on a positive parameter) must appear with those arguments in the program text,
    so a changed prior cannot leave its header behind. Entries in words (``through ...``, ``none
    of its own``) or with nested calls are not checked: matching those exactly is not reasonable.
    """
    problems = []

    def walk(value: object, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str) and "TODO" in value:
            problems.append(f"header '{where}' still says TODO: {' '.join(value.split())[:80]}")

    walk(model.header, "")
    program = " ".join(model.program.split())
    for name, text in model.header.get("priors", {}).items():
        match = _PRIOR_CALL.match(str(text))
        if match and f"{match.group(1)}({' '.join(match.group(2).split())})" not in program:
            problems.append(f"the header's prior of {name}, {match.group(0).strip()}, is not in the program: state "
                            "the prior the model block uses")
    return problems


@dataclass
class Step:
    """One validation step: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str


def validate_model(path: str | Path, *, backend: str = "auto", seed: int = 1, fit: bool = True) -> list[Step]:
    """Check a Stan program against the contract, compile it, draw from it and recover a draw.

    Returns the steps run; the last one failed if any did.
    """
    from horizon_zoo.backends import SamplerSettings, sample
    from horizon_zoo.contract import GENERATED, OPTIONAL_GENERATED, expected_shape, stan_data
    from horizon_zoo.data import load_runs
    from horizon_zoo.registry import load_model
    from horizon_zoo.simulate import default_release_dates, default_runs, with_successes

    steps: list[Step] = []
    try:
        model = load_model(path)
    except ModelError as exc:
        return [Step("header and contract", False, str(exc))]
    unfinished = header_problems(model)
    if unfinished:
        return [Step("header and contract", False, "; ".join(unfinished))]
    from horizon_zoo.registry import write_zoo_table

    table = write_zoo_table(Path(path).parent)  # the header is final: its row in the zoo's table too
    steps.append(Step("header and contract", True,
                      f"{model.name}: {len(model.parameter_dims)} parameter blocks ({model.parameter_count()} free "
                      "parameters), data block and outputs match the contract"
                      + (f"; its row in {table} written from the header" if table else "")))

    runs = default_runs()
    agents = sorted(runs["alias"].unique())[::3]
    tasks = sorted(runs["task_id"].unique())[:40]
    design = load_runs(runs[runs["alias"].isin(agents) & runs["task_id"].isin(tasks)], source="validation design")
    design = dataclasses.replace(design, release_dates=default_release_dates())
    data = stan_data(design)
    prior = dict(data, weight=np.zeros(data["N"]))
    try:
        draws = sample(model, prior, SamplerSettings(chains=1, warmup=200, draws=100, seed=seed), backend=backend,
                       progress=False)
    except HorizonZooError as exc:
        steps.append(Step("compile and sample the prior", False, str(exc)))
        return steps
    steps.append(Step("compile and sample the prior", True, f"compiled with {draws.backend}"))

    problems = []
    for var in GENERATED + OPTIONAL_GENERATED:
        if var.name not in draws.variables:
            continue
        got = draws.variables[var.name].shape[2:]
        want = expected_shape(var, data)
        if got != want:
            dims = " x ".join(f"{d} ({data[s]})" for d, s in
                              ((d, {'cell': 'N', 'agent': 'A', 'task': 'T', 'family': 'F', 'grid': 'G'}[d])
                               for d in var.dims))
            problems.append(f"`{var.name}` has shape {got} per draw, the contract needs {want} = {dims}: "
                            f"declare it as `{var.declaration}` and fill it in that order")
    if not problems:
        y_rep = draws.variables["y_rep"]
        if np.any(y_rep < 0) or np.any(y_rep > np.asarray(data["n_runs"])):
            problems.append("`y_rep` has values outside 0..n_runs: draw it with binomial_rng(n_runs, p)")
        p = draws.variables["p_curve"]
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            problems.append("`p_curve` has values outside [0, 1] or not finite: it must be a success probability")
        if not np.all(np.isfinite(draws.variables["log_lik"])):
            problems.append("`log_lik` is not finite: it must be weight[n] * binomial_logit_lpmf(...) of each cell")
    if problems:
        steps.append(Step("contract outputs of a prior draw", False, "; ".join(problems)))
        return steps
    steps.append(Step("contract outputs of a prior draw", True,
                      "log_lik, y_rep and p_curve have the contract's shapes; y_rep within 0..n_runs; "
                      "p_curve in [0, 1]"))
    if not fit:
        return steps

    from horizon_zoo.fit import fit_model

    truth = {name: draws.variables[name][0, -1] for name in model.info.get("parameters", {})}
    simulated = with_successes(design, draws.variables["y_rep"][0, -1], f"prior draw of {model.name}")
    result = fit_model(model, simulated, settings=SamplerSettings(chains=2, warmup=300, draws=300, seed=seed),
                       backend=backend, progress=False)
    inside, total = 0, 0
    for name, value in truth.items():
        post = result.idata["posterior"][name].values
        post = post.reshape(-1, *post.shape[2:])
        lo, hi = np.quantile(post, [0.025, 0.975], axis=0)
        inside += int(np.sum((lo <= value) & (value <= hi)))
        total += int(np.size(value))
    d = result.diagnostics
    detail = (f"{inside}/{total} true values inside their 95% intervals; max R-hat {d.max_rhat:.3f}, "
              f"{d.divergences} divergences (2 chains x 300 draws)")
    ok = inside >= 0.8 * total and d.max_rhat < 1.1
    if not ok:
        detail += (". Recovery is poor: check that the priors in the header are the ones in the model block, "
                   "and that every parameter is identified by the data")
    steps.append(Step("recovery fit on data simulated from the prior draw", ok, detail))
    return steps
