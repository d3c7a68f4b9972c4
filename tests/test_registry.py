"""Model discovery, header validation and zoo integrity."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from horizon_zoo.errors import ModelError
from horizon_zoo.registry import discover, load_model, resolve
from tests.conftest import REPO

ZOO = REPO / "stan_models"


def test_discovery_is_by_file_name_and_headers_are_valid():
    zoo = discover()
    assert {"logistic", "constant_hazard", "bradley_terry"} <= set(zoo)
    assert set(zoo) == {p.stem for p in ZOO.glob("*.stan")}
    for name, model in zoo.items():
        assert model.header["name"] == name
        assert isinstance(model.header["keywords"], list)
        assert set(model.parameter_dims) == set(model.info["parameters"])


def test_no_two_models_share_code():
    codes = [m.code for m in discover().values()]
    assert len(set(codes)) == len(codes)


def test_parameter_count_formula():
    assert resolve("logistic").parameter_count() == "2A"
    assert resolve("bradley_terry").parameter_count() == "A"


def test_a_new_model_file_appears_in_the_zoo(tmp_path):
    shutil.copy(ZOO / "logistic.stan", tmp_path / "logistic.stan")
    code = (ZOO / "bradley_terry.stan").read_text().replace("name: bradley_terry", "name: my_model")
    (tmp_path / "my_model.stan").write_text(code)
    assert set(discover(tmp_path)) == {"logistic", "my_model"}


@pytest.mark.parametrize("edit, fragment", [
    (lambda c: c[c.index("--- */") + 6:], "no header block"),
    (lambda c: c.replace("name: logistic", "name: other"), "differs from the file name"),
    (lambda c: c.replace("keywords: [logistic, metr, per-agent, reference]", "keywords: logistic"),
     "'keywords' must be a list"),
    (lambda c: c.replace("  beta[agent]:", "  slope[agent]:"), "does not document beta"),
    (lambda c: c.replace("  beta: >-", "  gamma: >-"), "does not state the prior of beta"),
    (lambda c: c.replace("alpha ~ normal(0, 2.5);", "alpha ~ normal(0, 2.5)"), "does not compile"),
    (lambda c: c.replace("title: METR", "titel: METR"), "missing 'title'"),
    (lambda c: c.replace("keywords: [", "adapt_delta: 0.99\nkeywords: ["), "'adapt_delta' must be a number from 0.8 to 0.95"),
    (lambda c: c.replace("keywords: [", "init_radius: 2.5\nkeywords: ["), "'init_radius' must be a number above 0"),
], ids=["no header", "name mismatch", "keywords string", "undocumented parameter", "missing prior",
        "syntax error", "missing title", "adapt_delta too high", "init_radius too wide"])
def test_invalid_models_are_rejected_precisely(tmp_path, edit, fragment):
    path = tmp_path / "logistic.stan"
    path.write_text(edit((ZOO / "logistic.stan").read_text()))
    with pytest.raises(ModelError, match=fragment):
        load_model(path)


def test_unknown_model_name_lists_the_zoo():
    with pytest.raises(ModelError, match="known models: .*logistic"):
        resolve("no_such_model")


def _zoo_table(models_dir: Path) -> str:
    from horizon_zoo.registry import ZOO_TABLE

    text = (models_dir / "README.md").read_text()
    return text.split(ZOO_TABLE[0] + "\n", 1)[1].split(ZOO_TABLE[1], 1)[0]


def test_stan_models_readme_lists_every_model_with_its_parameter_count():
    from horizon_zoo.registry import zoo_markdown

    assert _zoo_table(ZOO) == zoo_markdown(discover()), (
        "stan_models/README.md's zoo table is not the headers' (python -m horizon_zoo.registry rewrites it)")
    assert "| `logistic` | METR per-agent logistic curve in log2 minutes | 2A |" in _zoo_table(ZOO)


def test_a_model_added_by_new_model_needs_no_edit_elsewhere(tmp_path):
    """Issue 30: new-model in a copy of the zoo, then the README check above holds for the copy, and
    again once the model's title is written and validate-model's table step has run."""

    from horizon_zoo.registry import write_zoo_table, zoo_markdown
    from horizon_zoo.validate import new_model

    zoo = tmp_path / "zoo"
    shutil.copytree(ZOO, zoo, ignore=shutil.ignore_patterns("*.hpp"))
    path = new_model("my_idea", "bradley_terry", models_dir=zoo)
    assert "| `my_idea` | TODO: one line (copied from bradley_terry) | A |" in _zoo_table(zoo)
    assert _zoo_table(zoo) == zoo_markdown(discover(zoo))
    path.write_text(path.read_text().replace("'TODO: one line (copied from bradley_terry)'", "My idea"))
    assert write_zoo_table(zoo) == zoo / "README.md"
    assert "| `my_idea` | My idea | A |" in _zoo_table(zoo) and _zoo_table(zoo) == zoo_markdown(discover(zoo))


def test_a_header_raises_adapt_delta_and_narrows_the_init_radius_but_never_the_other_way():
    from horizon_zoo.backends import SamplerSettings
    from horizon_zoo.fit import settings_for

    weibull, irt = resolve("weibull"), resolve("irt_2pl")
    assert settings_for(weibull, SamplerSettings()).init_radius == weibull.header["init_radius"] < 2
    assert settings_for(weibull, SamplerSettings(init_radius=0.1)).init_radius == 0.1
    assert settings_for(resolve("logistic"), SamplerSettings()).init_radius == 2.0
    assert settings_for(irt, SamplerSettings()).adapt_delta == irt.header["adapt_delta"] > 0.8
    assert settings_for(irt, SamplerSettings(adapt_delta=0.99)).adapt_delta == 0.99


def test_the_compiled_program_is_the_file_without_its_header_and_header_prose_changes_no_hash(tmp_path):
    code = (ZOO / "logistic.stan").read_text()
    model = load_model(ZOO / "logistic.stan")
    program = model.program
    assert "hypothesis:" not in program and "alpha ~ normal(0, 2.5);" in program
    # the header blanked to as many lines, so a compiler message's line number points into the
    # file with its includes expanded
    assert program.count("\n") == model.expanded.count("\n")
    line = next(i for i, text in enumerate(model.expanded.splitlines()) if "alpha ~ normal(0, 2.5);" in text)
    assert program.splitlines()[line] == model.expanded.splitlines()[line]
    path = tmp_path / "logistic.stan"
    path.write_text(code.replace("weakly informative", "a reworded reason"))
    reworded = load_model(path)
    assert reworded.code != model.code and reworded.sha256 == model.sha256
    # a header key that changes the sampler does change the hash, and so does the program
    path.write_text(code.replace("keywords: [", "adapt_delta: 0.9\nkeywords: ["))
    assert load_model(path).sha256 != model.sha256
    path.write_text(code.replace("alpha ~ normal(0, 2.5);", "alpha ~ normal(0, 3);"))
    assert load_model(path).sha256 != model.sha256


def test_the_reference_model_is_marked_by_its_header_not_by_python(tmp_path):
    from horizon_zoo.registry import reference_model

    assert reference_model(discover().values()) == "logistic"
    code = (ZOO / "bradley_terry.stan").read_text().replace("name: bradley_terry", "name: other")
    (tmp_path / "other.stan").write_text(code.replace("keywords: [", "keywords: [reference, ", 1))
    (tmp_path / "logistic.stan").write_text((ZOO / "logistic.stan").read_text().replace(", reference]", "]"))
    assert reference_model(discover(tmp_path).values()) == "other"


def test_shared_pieces_are_pasted_in_and_an_edit_of_one_changes_the_hash(tmp_path):
    """#include lines name files in include/ beside the program, else in the zoo's include/; the
    backends, stanc --info and the hash all see the expanded program."""
    zoo_logistic = resolve("logistic")
    assert "#include data.stan" in zoo_logistic.code and "#include" not in zoo_logistic.program
    assert "vector<lower=0>[N] weight;" in zoo_logistic.program and "binomial_logit_weighted(" in zoo_logistic.program
    models = tmp_path / "models"
    shutil.copytree(ZOO / "include", models / "include")
    shutil.copy(ZOO / "logistic.stan", models / "logistic.stan")
    assert load_model(models / "logistic.stan").sha256 == zoo_logistic.sha256
    shared = models / "include" / "binomial_logit_weighted.stan"
    shared.write_text(shared.read_text().replace("return dot_product(w,", "return 1 * dot_product(w,"))
    edited = load_model(models / "logistic.stan")
    assert "return 1 * dot_product(w," in edited.program and edited.sha256 != zoo_logistic.sha256
    # a program elsewhere, without include/ of its own, uses the zoo's pieces
    shutil.copy(ZOO / "bradley_terry.stan", tmp_path / "bradley_terry.stan")
    assert load_model(tmp_path / "bradley_terry.stan").sha256 == resolve("bradley_terry").sha256


def test_every_zoo_model_reads_the_shared_data_block():
    data_block = (ZOO / "include" / "data.stan").read_text()
    for name, model in discover().items():
        assert "#include data.stan" in model.code, name
        assert model.program.count(data_block.rstrip("\n")) == 1, name


@pytest.mark.parametrize("include, fragment", [
    ("#include nowhere.stan", "'#include nowhere.stan' names no file in"),
    ("#include loop.stan", "'#include loop.stan' includes itself (loop.stan -> loop.stan)"),
], ids=["missing", "cycle"])
def test_a_broken_include_is_named(tmp_path, include, fragment):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "loop.stan").write_text("#include loop.stan\n")
    code = (ZOO / "logistic.stan").read_text().replace("#include data.stan", include)
    (tmp_path / "logistic.stan").write_text(code)
    with pytest.raises(ModelError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_model(tmp_path / "logistic.stan")
