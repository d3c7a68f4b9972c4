"""Discover zoo models from ``stan_models/*.stan`` and validate their headers and interface.

A model is one ``.stan`` file whose name (the file stem) is the model name.  It opens with a
header comment holding YAML between ``/* ---`` and ``--- */`` lines::

    /* ---
    name: logistic
    title: One-line title
    hypothesis: What the model claims about how success falls with task length.
    source: Paper or post the hypothesis comes from.
    keywords: [logistic, metr]
    parameters:
      log2_h50[agent]: "meaning"
      beta[agent]: "meaning"
    priors:
      log2_h50: "normal(3, 6): why"
      beta: "normal(-0.7, 0.7): why"
    --- */

``parameters`` lists every variable of the ``parameters`` block with its ArviZ dims in
brackets (dims of the contract, such as ``agent``, ``task`` and ``family``, or new names);
``priors`` gives each one's prior and its justification.  An optional ``generated`` mapping
documents extra transformed parameters and generated quantities the same way
(``log2_h50[agent]: "meaning"``) so they get named dims.  An optional ``adapt_delta`` (at
most 0.95) raises NUTS's target acceptance rate for a model whose posterior has a hard corner
that no reparameterisation removes; the sampler uses the larger of it and the user's setting.
An optional ``init_radius`` (above 0, below Stan's 2) narrows the range of random initial values
for a model that can start stuck in a far tail; the sampler uses the smaller of it and the user's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from horizon_zoo.backends.common import STAN_INIT_RADIUS
from horizon_zoo.backends.toolchain import stanc_path
from horizon_zoo.contract import SIZE_OF_DIM, check_program_interface
from horizon_zoo.errors import ModelError

# Stan's range of random initial values, (-2, 2) on the unconstrained scale; a header may narrow it.

HEADER_RE = re.compile(r"\A\s*/\*\s*---\s*\n(?P<yaml>.*?)\n\s*---\s*\*/", re.DOTALL)
# ``#include name.stan`` on a line of its own (quotes or angle brackets optional, as stanc allows):
# the zoo's shared pieces (the data block, the weighted likelihood, quadrature constants) live in
# ``stan_models/include/`` and are pasted in before anything sees the program, so both backends,
# the hash and ``stanc --info`` meet one self-contained program.
INCLUDE_RE = re.compile(r'^[ \t]*#include[ \t]+[<"]?(?P<name>[^\s">]+)[">]?[ \t]*$', re.MULTILINE)
INCLUDE_DIR = "include"
# Header keys that change how a program is sampled, so they are part of its hash.
SAMPLER_HEADER_KEYS = ("adapt_delta", "init_radius")
REQUIRED_HEADER_KEYS = ("name", "title", "hypothesis", "source", "keywords", "parameters", "priors")
PARAM_KEY_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_]*)(?:\[(?P<dims>[A-Za-z_][A-Za-z0-9_, ]*)\])?$")
MODELS_DIR_ENV = "HORIZON_ZOO_MODELS"


@dataclass(frozen=True)
class ZooModel:
    """A validated zoo model: its file, header and program interface."""

    name: str
    path: Path
    code: str  # the file as written, #include lines and all
    header: dict[str, Any]
    parameter_dims: dict[str, tuple[str, ...]]
    generated_dims: dict[str, tuple[str, ...]]
    info: dict[str, Any] = field(repr=False)
    expanded: str = field(repr=False)  # the file with its #include lines replaced

    @property
    def program(self) -> str:
        """The Stan program the backends compile: the file with its includes expanded and its
        header comment blanked out (the same number of lines, so compiler messages keep their
        line numbers up to the first include). A header edit within the header's lines, such as a
        reworded prior, then neither recompiles the program nor invalidates cached fits; one that
        changes the number of lines does both once, and so does an edit of an included file."""
        match = HEADER_RE.match(self.expanded)
        if match is None:
            return self.expanded
        return "\n" * self.expanded.count("\n", 0, match.end()) + self.expanded[match.end():]

    @property
    def sha256(self) -> str:
        """Hash of the program and of the header keys that change how it is sampled; compiled
        programs, fits, CV folds and SBC simulations are keyed by it."""
        sampling = {k: self.header[k] for k in SAMPLER_HEADER_KEYS if k in self.header}
        spec = self.program + ("\n// " + json.dumps(sampling, sort_keys=True) if sampling else "")
        return hashlib.sha256(spec.encode()).hexdigest()

    @property
    def min_adapt_delta(self) -> float:
        """The model's own lower bound on adapt_delta (header ``adapt_delta``), else 0."""
        return float(self.header.get("adapt_delta", 0.0))

    @property
    def max_init_radius(self) -> float:
        """The model's own upper bound on the init radius (header ``init_radius``), else Stan's 2."""
        return float(self.header.get("init_radius", STAN_INIT_RADIUS))

    def reads(self, name: str) -> bool:
        """Whether the program's data block declares ``name`` (for the contract's optional
        variables, such as ``release_year`` or ``grainsize``)."""
        return name in self.info.get("inputs", {})

    @property
    def title(self) -> str:
        return str(self.header["title"])

    @property
    def hypothesis(self) -> str:
        return " ".join(str(self.header["hypothesis"]).split())

    def parameter_count(self) -> str:
        """Number of free parameters as a formula in the contract's sizes, e.g. ``2A + 1``.

        A ``sum_to_zero_vector`` has one free parameter fewer than its length.
        """
        zero_sum = set(re.findall(r"\bsum_to_zero_vector\s*\[[^\]]*\]\s*(\w+)", self.program))
        counts: dict[str, int] = {}
        for name, dims in self.parameter_dims.items():
            key = "·".join(SIZE_OF_DIM.get(d, d) for d in dims) or "1"
            counts[key] = counts.get(key, 0) + 1
            if name in zero_sum:
                counts["1"] = counts.get("1", 0) - 1
        terms = [f"{n}{k}" if k != "1" and n > 1 else k if k != "1" else str(n)
                 for k, n in sorted(counts.items(), key=lambda kv: (kv[0] == "1", kv[0])) if n]
        return " + ".join(terms).replace("+ -", "- ")

    def dims(self) -> dict[str, list[str]]:
        """ArviZ dims for every named variable of the model (parameters and contract outputs)."""
        from horizon_zoo.contract import GENERATED, OPTIONAL_GENERATED

        declared = {**self.generated_dims, **self.parameter_dims}
        out = {name: list(d) for name, d in declared.items() if d}
        for var in GENERATED + OPTIONAL_GENERATED:
            out[var.name] = list(var.dims)
        return out


# The keyword that marks the zoo's reference model (METR's logistic): the model every report shows
# beside the best one and every comparison is read against. A header says it, not the Python.
REFERENCE_KEYWORD = "reference"


def reference_model(models: Iterable[ZooModel]) -> str | None:
    """The name of the model whose header keywords include ``reference``, if one of ``models`` does."""
    marked = [m.name for m in models if REFERENCE_KEYWORD in m.header.get("keywords", [])]
    return marked[0] if marked else None


def default_models_dir() -> Path:
    """The zoo directory: ``$HORIZON_ZOO_MODELS`` if set, else the repository's ``stan_models/``."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "stan_models"


def model_paths(models_dir: str | Path | None = None) -> list[Path]:
    """All ``.stan`` files of the zoo, sorted by name (never a hand-kept list)."""
    directory = Path(models_dir) if models_dir else default_models_dir()
    if not directory.is_dir():
        raise ModelError(
            f"model directory {directory} does not exist; pass --models-dir or set "
            f"${MODELS_DIR_ENV} (a pip install must be editable: pip install -e .)."
        )
    return sorted(directory.glob("*.stan"))


def discover(models_dir: str | Path | None = None) -> dict[str, ZooModel]:
    """Load and validate every model of the zoo; raise on the first invalid one."""
    return {path.stem: load_model(path) for path in model_paths(models_dir)}


ZOO_TABLE = ("<!-- zoo table -->", "<!-- end zoo table -->")


def zoo_markdown(zoo: dict[str, ZooModel]) -> str:
    """The zoo's table (model, title, free parameters), written from the headers alone."""
    rows = ["| model | title | free parameters |", "|---|---|---|"]
    rows += [f"| `{name}` | {m.title.replace('|', '/')} | {m.parameter_count()} |" for name, m in zoo.items()]
    return "\n".join(rows) + "\n"


def write_zoo_table(models_dir: str | Path | None = None) -> Path | None:
    """Rewrite the zoo table between the ``ZOO_TABLE`` markers of the zoo's README.md from the
    headers; ``new-model`` and ``validate-model`` call it, so a new or edited model needs no
    hand-kept row. Returns the README's path, or None when the folder has no README with markers
    (a user's own model folder). A model that does not load leaves the table as it is."""
    directory = Path(models_dir) if models_dir else default_models_dir()
    readme = directory / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    start, end = ZOO_TABLE
    if start not in text or end not in text:
        return None
    try:
        table = zoo_markdown(discover(directory))
    except ModelError:
        return None
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    updated = f"{head}{start}\n{table}{end}{tail}"
    if updated != text:
        from horizon_zoo.rundir import atomic_write_text

        atomic_write_text(readme, updated)
    return readme


def resolve(spec: str, models_dir: str | Path | None = None) -> ZooModel:
    """A model by name (looked up in the zoo) or by path to a ``.stan`` file."""
    if spec.endswith(".stan") or os.sep in spec:
        return load_model(Path(spec))
    paths = {p.stem: p for p in model_paths(models_dir)}
    if spec not in paths:
        raise ModelError(f"no model named '{spec}' in the zoo; known models: {', '.join(paths) or 'none'}.")
    return load_model(paths[spec])


def load_model(path: str | Path) -> ZooModel:
    """Read one ``.stan`` file, validate its header and its data/output interface."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such Stan file.")
    code = path.read_text(encoding="utf-8")
    header = parse_header(code, path)
    expanded = expand_includes(code, path)
    info = program_info(expanded, str(path))
    problems = check_program_interface(info)
    declared = dims_from_keys(header["parameters"], path)
    generated = dims_from_keys(header.get("generated") or {}, path)
    # Derived quantities may live in transformed parameters (when the model block needs them too)
    # or in generated quantities; the header documents both the same way.
    gq = {**info.get("transformed parameters", {}), **info.get("generated quantities", {})}
    for name in sorted(set(generated) - set(gq)):
        problems.append(
            f"header 'generated' names {name}, which neither transformed parameters nor "
            "generated quantities declare")
    stan_params = set(info.get("parameters", {}))
    undocumented = sorted(stan_params - set(declared))
    unknown = sorted(set(declared) - stan_params)
    if undocumented:
        problems.append(f"header 'parameters' does not document {', '.join(undocumented)}")
    if unknown:
        problems.append(f"header 'parameters' names {', '.join(unknown)}, which the parameters block lacks")
    for name, dims in [*declared.items(), *generated.items()]:
        entry = info.get("parameters", {}).get(name) or gq.get(name)
        if entry is not None and entry["dimensions"] != len(dims):
            problems.append(
                f"header gives {name} {len(dims)} dim(s) {list(dims)}, the program declares "
                f"{entry['dimensions']}"
            )
    no_prior = sorted(set(declared) - set(header["priors"]))
    if no_prior:
        problems.append(f"header 'priors' does not state the prior of {', '.join(no_prior)}")
    if problems:
        raise ModelError(f"{path} breaks the model contract:\n  - " + "\n  - ".join(problems))
    return ZooModel(name=path.stem, path=path, code=code, header=header, parameter_dims=declared,
                    generated_dims=generated, info=info, expanded=expanded)


def include_dirs(path: Path) -> list[Path]:
    """Where a program's ``#include`` files are found: ``include/`` beside the program, then the
    zoo's ``stan_models/include/`` (so a model written anywhere can use the zoo's pieces)."""
    dirs = [path.parent / INCLUDE_DIR, default_models_dir() / INCLUDE_DIR]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def expand_includes(code: str, path: Path) -> str:
    """``code`` (the program at ``path``) with every ``#include`` line replaced by the file it
    names, recursively; included files are looked up where ``path``'s own includes are."""
    dirs = include_dirs(path)

    def expand(text: str, chain: tuple[Path, ...]) -> str:
        def paste(match: re.Match[str]) -> str:
            name = match.group("name")
            found = next((d / name for d in dirs if (d / name).is_file()), None)
            if found is None:
                raise ModelError(f"{path}: '#include {name}' names no file in {', '.join(map(str, dirs))}.")
            if found in chain:
                loop = " -> ".join(p.name for p in (*chain, found))
                raise ModelError(f"{path}: '#include {name}' includes itself ({loop}).")
            return expand(found.read_text(encoding="utf-8").rstrip("\n"), (*chain, found))

        return INCLUDE_RE.sub(paste, text)

    return expand(code, ())


def parse_header(code: str, path: Path) -> dict[str, Any]:
    """Parse and check the YAML header block at the top of a Stan program."""
    match = HEADER_RE.match(code)
    if not match:
        raise ModelError(
            f"{path}: no header block. A zoo model must start with a comment '/* ---' ... '--- */' "
            "holding YAML with " + ", ".join(REQUIRED_HEADER_KEYS) + "."
        )
    try:
        header = yaml.safe_load(match.group("yaml"))
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: the header block is not valid YAML: {exc}") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: the header block must be a YAML mapping.")
    problems = [f"missing '{k}'" for k in REQUIRED_HEADER_KEYS if k not in header]
    if "name" in header and header["name"] != path.stem:
        problems.append(f"name '{header['name']}' differs from the file name '{path.stem}'")
    for key in ("title", "hypothesis", "source"):
        if key in header and not (isinstance(header[key], str) and header[key].strip()):
            problems.append(f"'{key}' must be non-empty text")
    if "keywords" in header and not (
        isinstance(header["keywords"], list) and all(isinstance(k, str) for k in header["keywords"])
    ):
        problems.append("'keywords' must be a list of strings")
    for key in ("parameters", "priors"):
        if key in header and not (isinstance(header[key], dict) and header[key]):
            problems.append(f"'{key}' must be a non-empty mapping")
    if "adapt_delta" in header and not (
        isinstance(header["adapt_delta"], float) and 0.8 <= header["adapt_delta"] <= 0.95
    ):
        problems.append("'adapt_delta' must be a number from 0.8 to 0.95 (reparameterise rather than go higher)")
    if "init_radius" in header and not (
        isinstance(header["init_radius"], float) and 0 < header["init_radius"] < STAN_INIT_RADIUS
    ):
        problems.append(f"'init_radius' must be a number above 0 and below {STAN_INIT_RADIUS:g} (Stan's default)")
    if problems:
        raise ModelError(f"{path}: invalid header: " + "; ".join(problems) + ".")
    return header


def dims_from_keys(entries: dict[str, Any], path: Path) -> dict[str, tuple[str, ...]]:
    """Map each documented variable to its dims, from keys such as ``z_task[task]``."""
    if not isinstance(entries, dict):
        raise ModelError(f"{path}: header 'generated' must be a mapping of name[dims] to meaning.")
    out: dict[str, tuple[str, ...]] = {}
    for key in entries:
        match = PARAM_KEY_RE.match(str(key).strip())
        if not match:
            raise ModelError(f"{path}: header entry '{key}' must look like name or name[dim, ...].")
        dims = tuple(d.strip() for d in (match.group("dims") or "").split(",") if d.strip())
        out[match.group("name")] = dims
    return out


@functools.lru_cache(maxsize=256)
def program_info(code: str, label: str = "<program>") -> dict[str, Any]:
    """``stanc --info`` of a program: its data, parameters and generated quantities by type.

    Syntax and type errors are raised as :class:`ModelError` with stanc's own message.
    """
    result = subprocess.run(
        [str(stanc_path()), "--info", "-"], input=code, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        message = result.stderr.strip().replace("in 'stdin'", f"in '{label}'").replace(
            "in file 'stdin'", f"in file '{label}'")
        raise ModelError(f"{label} does not compile (stanc):\n{message}")
    return json.loads(result.stdout)


if __name__ == "__main__":  # python -m horizon_zoo.registry: the zoo table for a model added by hand
    print(write_zoo_table() or "no zoo table to write")
