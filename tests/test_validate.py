"""Adding a model: the template appears in the zoo; validate-model names what is broken."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from horizon_zoo.cli import main
from horizon_zoo.registry import expand_includes
from tests.conftest import REPO, small_default

# self-contained (includes expanded), so an edit of the data block below is seen by stanc
LOGISTIC = expand_includes((REPO / "stan_models" / "logistic.stan").read_text(), REPO / "stan_models" / "logistic.stan")


def _broken(kind: str) -> str:
    code = LOGISTIC.replace("name: logistic", "name: broken")
    if kind == "missing log_lik":
        code = code.replace("  vector[N] log_lik;\n", "")
        return code.replace("    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | "
                            "n_runs[n], eta[n]);\n", "")
    if kind == "wrong p_curve shape":
        code = code.replace("matrix[A, G] p_curve;", "matrix[G, A] p_curve;")
        return code.replace("for (a in 1:A) p_curve[a] = inv_logit(alpha[a] + beta[a] * x_grid)';",
                            "for (a in 1:A) p_curve[:, a] = inv_logit(alpha[a] + beta[a] * x_grid);")
    if kind == "syntax error":
        return code.replace("beta ~ normal(-0.7, 0.7);", "beta ~ normal(-0.7, 0.7)")
    if kind == "wrong data name":
        return re.sub(r"\blog_minutes\b", "log_mins", code)
    if kind == "no header":
        return code[code.index("--- */") + len("--- */"):]
    if kind == "unfinished header":
        return code.replace("title: ", "title: 'TODO: one line' # was: ", 1)
    if kind == "prior not in the program":
        return code.replace("alpha ~ normal(0, 2.5);", "alpha ~ normal(0, 5);")
    raise ValueError(kind)


FAST_CASES = {
    "missing log_lik": r"generated quantities lack `vector\[N\] log_lik;`",
    "syntax error": r"does not compile \(stanc\):.*line \d+",
    "wrong data name": r"data block lacks `vector\[T\] log_minutes;`.*declares `log_mins`",
    "no header": r"no header block",
    "unfinished header": r"header 'title' still says TODO",
    "prior not in the program": r"the header's prior of alpha, normal\(0, 2.5\), is not in the program",
}


@pytest.mark.parametrize("kind", sorted(FAST_CASES))
def test_validate_model_names_each_problem(kind, tmp_path, capsys):
    path = tmp_path / "broken.stan"
    path.write_text(_broken(kind))
    assert main(["validate-model", str(path)]) == 3
    out = capsys.readouterr().out
    assert "[FAIL] header and contract" in out
    assert re.search(FAST_CASES[kind], out, re.S), out


def test_each_problem_has_its_own_message(tmp_path):
    from horizon_zoo.validate import validate_model

    messages = set()
    for kind in FAST_CASES:
        path = tmp_path / f"{kind.replace(' ', '_')}" / "broken.stan"
        path.parent.mkdir()
        path.write_text(_broken(kind))
        messages.add(validate_model(path, fit=False)[-1].detail)
    assert len(messages) == len(FAST_CASES)


@pytest.mark.stan
def test_wrong_p_curve_shape_is_caught_in_the_prior_draw(tmp_path, capsys):
    path = tmp_path / "broken.stan"
    path.write_text(_broken("wrong p_curve shape"))
    assert main(["validate-model", str(path), "--no-fit"]) == 3
    out = capsys.readouterr().out
    assert "[ok] header and contract" in out and "[ok] compile and sample the prior" in out
    assert re.search(r"\[FAIL\] contract outputs of a prior draw: `p_curve` has shape \(121, 4\) per draw, "
                     r"the contract needs \(4, 121\) = agent \(4\) x grid \(121\)", out), out


@pytest.mark.parametrize("name", ["My_idea", "my-idea", "9idea", "my idea", "_idea"])
def test_new_model_refuses_names_that_are_not_lower_case_identifiers(name, tmp_path, capsys):
    assert main(["--models-dir", str(tmp_path), "new-model", name]) == 3
    assert f"model name '{name}' must be lower-case letters, digits and _ , starting with a letter" in \
        capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_new_model_refuses_to_overwrite(tmp_path, capsys):
    assert main(["--models-dir", str(tmp_path), "new-model", "idea"]) == 0
    assert main(["--models-dir", str(tmp_path), "new-model", "idea"]) == 3
    assert "--force" in capsys.readouterr().err


@pytest.mark.stan
def test_a_template_model_joins_list_models_and_compare_without_python_changes(tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["--models-dir", str(models), "new-model", "my_idea", "--from", "bradley_terry"]) == 0
    assert main(["--models-dir", str(models), "list-models"]) == 0
    assert re.search(r"^my_idea\s+A\s+TODO", capsys.readouterr().out, re.M)
    (models / "logistic.stan").write_text(LOGISTIC)
    runs = tmp_path / "runs.csv"
    small_default(n_agents=3, n_tasks=20).to_csv(runs, index=False)
    out = tmp_path / "run"
    assert main(["-q", "--models-dir", str(models), "compare", "--runs", str(runs), "--chains", "2", "--warmup",
                 "200", "--draws", "200", "--out", str(out)]) == 0
    loo = pd.read_csv(out / "tables" / "loo.csv")
    assert set(loo["model"]) == {"my_idea", "logistic"}
    # the template is a model at once, but not a finished one: validate-model says what is left to write
    assert main(["validate-model", str(models / "my_idea.stan")]) == 3
    assert "header 'title' still says TODO" in capsys.readouterr().out
    finished = (models / "my_idea.stan").read_text().replace("'TODO: one line (copied from bradley_terry)'",
                                                             "My idea").replace("TODO: what my_idea claims, "
                                                                                "replacing bradley_terry's:", "")
    (models / "my_idea.stan").write_text(finished)
    assert main(["validate-model", str(models / "my_idea.stan")]) == 0
    assert "satisfies the model contract" in capsys.readouterr().out
