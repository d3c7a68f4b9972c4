"""The model contract: Stan data built from runs, and programs checked against it."""

from __future__ import annotations

import numpy as np
import pytest

from horizon_zoo.contract import DATA, check_program_interface, check_stan_data, contract_markdown, stan_data
from horizon_zoo.data import load_runs
from horizon_zoo.registry import expand_includes, program_info
from tests.conftest import REPO, make_runs


def test_stan_data_matches_the_contract_and_the_runs():
    runs = make_runs(n_agents=3, n_tasks=5, runs_per_cell=2)
    data = stan_data(load_runs(runs))
    assert set(data) == {v.name for v in DATA}
    assert (data["N"], data["A"], data["T"], data["F"]) == (15, 3, 5, 2)
    assert np.sum(data["n_runs"]) == len(runs)
    assert np.sum(data["n_success"]) == runs["score_binarized"].sum()
    np.testing.assert_allclose(np.sort(np.exp(data["log_minutes"])), 2.0 ** np.arange(5))
    # agent / task indices point back to the right names
    d = load_runs(runs)
    for n in range(data["N"]):
        assert d.agents[data["agent"][n] - 1] == d.cells["agent"].iloc[n]
        assert d.tasks["task_id"].iloc[data["task"][n] - 1] == d.cells["task_id"].iloc[n]


def test_check_stan_data_rejects_wrong_shapes():
    data = stan_data(load_runs(make_runs()))
    data["n_runs"] = data["n_runs"][:-1]
    with pytest.raises(ValueError, match="n_runs has shape"):
        check_stan_data(data)


def test_stan_models_readme_embeds_the_contract_verbatim():
    readme = (REPO / "stan_models" / "README.md").read_text()
    assert contract_markdown() in readme


# the program as the backends see it: its #include lines (the data block among them) expanded
LOGISTIC = expand_includes((REPO / "stan_models" / "logistic.stan").read_text(), REPO / "stan_models" / "logistic.stan")


@pytest.mark.parametrize("edit, fragment", [
    (("vector[N] log_lik;", "vector[N] log_lik_cells;"), "generated quantities lack `vector[N] log_lik;`"),
    (("array[N] int y_rep;", "array[N] real y_rep;"), "`y_rep` is real with 1 dimension(s)"),
    (("matrix[A, G] p_curve;", "vector[G] p_curve;"), "`p_curve` is real with 1 dimension(s)"),
    (("vector[T] log_minutes;", "vector[T] log_mins;"), "data block declares `log_mins`"),
], ids=["no log_lik", "y_rep real", "p_curve vector", "renamed data"])
def test_interface_problems_are_named(edit, fragment):
    code = LOGISTIC.replace(*edit)
    if edit[0] == "matrix[A, G] p_curve;":
        code = code.replace("p_curve[a] = inv_logit(alpha[a] + beta[a] * x_grid)';", "p_curve = inv_logit(alpha[1] + beta[1] * x_grid);")
    if edit[0] == "vector[N] log_lik;":
        code = code.replace("log_lik[n] =", "log_lik_cells[n] =")
    if edit[0] == "vector[T] log_minutes;":
        code = code.replace("log_minutes)", "log_mins)").replace("log_minutes /", "log_mins /")
    problems = check_program_interface(program_info(code))
    assert any(fragment in p for p in problems), problems


def test_every_zoo_model_complies():
    for path in sorted((REPO / "stan_models").glob("*.stan")):
        assert check_program_interface(program_info(expand_includes(path.read_text(), path), str(path))) == [], path
