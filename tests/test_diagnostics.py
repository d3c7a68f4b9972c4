"""Diagnostics verdicts on synthetic draws with known pathologies."""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pytest

from horizon_zoo.diagnostics import diagnose


def fake_fit(offset: float = 0.0, divergent: int = 0, seed: int = 0):
    rng = np.random.default_rng(seed)
    chains, draws = 4, 1000
    mu = rng.normal(size=(chains, draws)) + offset * np.arange(chains)[:, None]
    energy = rng.normal(size=(chains, draws))
    diverging = np.zeros((chains, draws), dtype=bool)
    diverging.flat[:divergent] = True
    return azb.from_dict({
        "posterior": {"mu": mu},
        "sample_stats": {"energy": energy, "diverging": diverging, "tree_depth": np.full((chains, draws), 3)},
    })


def test_independent_chains_pass():
    d = diagnose(fake_fit(), ["mu"], max_treedepth=10)
    assert d.verdict == "pass", d.problems
    assert d.max_rhat < 1.01 and d.divergences == 0


def test_separated_chains_fail_on_rhat():
    d = diagnose(fake_fit(offset=2.0), ["mu"], max_treedepth=10)
    assert d.verdict == "fail" and d.max_rhat > 1.1
    assert any("R-hat" in p for p in d.problems)


def test_divergences_fail_and_treedepth_warns():
    d = diagnose(fake_fit(divergent=3), ["mu"], max_treedepth=10)
    assert d.verdict == "fail" and d.divergences == 3
    d = diagnose(fake_fit(), ["mu"], max_treedepth=3)
    assert d.verdict == "warn" and d.treedepth_hits == 4000


def test_the_worst_element_is_named_by_its_coordinate():
    rng = np.random.default_rng(1)
    chains, draws = 4, 1000

    def fit(separated: bool, ar: float):
        theta = rng.normal(size=(chains, draws, 3))
        if separated:  # only agent "b" has separated chains
            theta[:, :, 1] += 2.0 * np.arange(chains)[:, None]
        sigma = np.zeros((chains, draws))
        for i in range(1, draws):
            sigma[:, i] = ar * sigma[:, i - 1] + rng.normal(size=chains)
        idata = azb.from_dict({"posterior": {"theta": theta, "sigma": sigma},
                               "sample_stats": {"diverging": np.zeros((chains, draws), dtype=bool)}},
                              dims={"theta": ["agent"]}, coords={"agent": ["a", "b", "c"]})
        return diagnose(idata, ["theta", "sigma"], max_treedepth=10)

    d = fit(separated=True, ar=0.0)
    assert d.max_rhat_at == "theta[agent=b]" and d.min_ess_bulk_at == "theta[agent=b]"
    assert any(p.startswith("R-hat") and p.endswith("(theta[agent=b])") for p in d.problems)
    d = fit(separated=False, ar=0.9)  # AR(1) draws: bulk ESS ~200 of 4000, every theta ~4000
    assert d.min_ess_bulk_at == "sigma" and d.max_rhat_at == "sigma" and d.min_ess_tail_at == "sigma"
    assert any(p.startswith("bulk ESS") and p.endswith("(sigma)") for p in d.problems)


def _judged(**values):
    """A Diagnostics with given numbers, judged for 4 chains (the default)."""
    from horizon_zoo.diagnostics import Diagnostics, _judge

    base = dict(max_rhat=1.001, min_ess_bulk=5000.0, min_ess_tail=5000.0, divergences=0, treedepth_hits=0,
                min_ebfmi=1.0, draws=4000)
    d = Diagnostics(**{**base, **values})
    _judge(d, chains=4)
    return d




@pytest.mark.parametrize("values, verdict, fragment", [
    ({"max_rhat": 1.0099}, "pass", None),
    ({"max_rhat": 1.0100}, "warn", "R-hat 1.010 >= 1.01"),
    ({"max_rhat": 1.0499}, "warn", "R-hat 1.050 >= 1.01"),
    ({"max_rhat": 1.0500}, "fail", "R-hat 1.050 >= 1.05"),
    ({"min_ess_bulk": 400.0}, "pass", None),  # 100 per chain x 4 chains
    ({"min_ess_bulk": 399.0}, "warn", "bulk ESS 399 < 400"),
    ({"min_ess_tail": 399.0}, "warn", "tail ESS 399 < 400"),
    ({"min_ess_bulk": 100.0}, "warn", "bulk ESS 100 < 400"),
    ({"min_ess_bulk": 99.0}, "fail", "bulk ESS 99 < 100"),
    ({"min_ess_tail": 99.0}, "fail", "tail ESS 99 < 100"),
    ({"divergences": 1}, "fail", "1 divergent transitions"),
    ({"treedepth_hits": 1}, "warn", "1 transitions hit the maximum tree depth"),
    ({"min_ebfmi": 0.30}, "pass", None),
    ({"min_ebfmi": 0.29}, "warn", "E-BFMI 0.29 < 0.3"),
], ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_each_threshold_changes_the_verdict_exactly_at_its_boundary(values, verdict, fragment):
    """Issue 36: the verdict was tested only far from its thresholds (an R-hat of 2.28)."""
    d = _judged(**values)
    assert d.verdict == verdict, d.problems
    if fragment is None:
        assert d.problems == []
    else:
        assert any(p.startswith(fragment) for p in d.problems), d.problems


def _by_hand_ebfmi(energy: np.ndarray) -> float:
    """E-BFMI per chain from its definition (Betancourt 2016): mean squared energy change over
    the energy's variance; the fit's value is the smallest chain's."""
    return float(min(np.sum(np.diff(e) ** 2) / np.sum((e - e.mean()) ** 2) for e in energy))


def test_diagnose_reads_every_sampler_statistic_and_counts_every_draw():
    rng = np.random.default_rng(3)
    chains, draws = 3, 400
    energy = rng.normal(size=(chains, draws))
    energy[1] = np.cumsum(rng.normal(size=draws))  # a random walk: E-BFMI far below 0.3 in chain 1
    diverging = np.zeros((chains, draws), dtype=bool)
    diverging[2, :5] = True
    depth = np.full((chains, draws), 4)
    depth[0, :7] = 10  # at the limit: counted
    depth[0, 7:9] = 9  # below it: not counted
    idata = azb.from_dict({"posterior": {"mu": rng.normal(size=(chains, draws)),
                                         "ignored": np.arange(chains)[:, None] * np.ones((chains, draws))},
                           "sample_stats": {"energy": energy, "diverging": diverging, "tree_depth": depth}})
    d = diagnose(idata, ["mu"], max_treedepth=10)
    assert (d.divergences, d.treedepth_hits, d.draws) == (5, 7, chains * draws)
    assert d.min_ebfmi == pytest.approx(_by_hand_ebfmi(energy), rel=1e-6) and d.min_ebfmi < 0.3
    assert d.max_rhat < 1.01  # "ignored" (chains apart) is not a parameter listed
    import arviz_stats as azs

    post = idata["posterior"].to_dataset()[["mu"]]
    assert d.min_ess_bulk == float(azs.ess(post, method="bulk")["mu"])
    assert d.min_ess_tail == float(azs.ess(post, method="tail")["mu"]) != d.min_ess_bulk
    assert d.verdict == "fail"
    assert d.problems[0] == "5 divergent transitions"
    assert "7 transitions hit the maximum tree depth" in d.problems
    assert any(p.startswith(f"E-BFMI {d.min_ebfmi:.2f} < 0.3") for p in d.problems)


def test_diagnose_without_sampler_statistics_or_a_second_chain():
    rng = np.random.default_rng(4)
    idata = azb.from_dict({"posterior": {"mu": rng.normal(size=(1, 2000))}, "sample_stats": {}})
    d = diagnose(idata, ["mu"], max_treedepth=10)
    # one chain: no R-hat (nan, no location), no divergences or tree-depth hits counted, no E-BFMI
    assert np.isnan(d.max_rhat) and d.max_rhat_at == ""
    assert (d.divergences, d.treedepth_hits) == (0, 0) and np.isnan(d.min_ebfmi)
    assert d.verdict == "pass" and d.problems == [] and d.draws == 2000


def test_an_element_without_a_coordinate_is_named_by_its_index_and_all_nan_gives_no_location():
    import xarray as xr

    from horizon_zoo.diagnostics import _worst

    values = np.array([[1.0, 1.3, 1.1]])
    ds = xr.Dataset({"z": (("row", "col"), values)})  # no coordinates on either dimension
    assert _worst(ds, np.nanargmax) == (1.3, "z[row=0, col=1]")
    ds = xr.Dataset({"z": (("col",), [1.0, 1.3, 1.1])}, coords={"col": ["p", "q", "r"]})
    assert _worst(xr.DataTree(ds), np.nanargmin) == (1.0, "z[col=p]")
    value, where = _worst(xr.Dataset({"z": (("col",), [np.nan, np.nan])}), np.nanargmax)
    assert np.isnan(value) and where == ""


def test_a_missing_bulk_ess_does_not_skip_the_tail_check():
    d = _judged(min_ess_bulk=float("nan"), min_ess_tail=50.0)
    assert d.verdict == "fail" and d.problems == ["tail ESS 50 < 100 ()"]


@pytest.mark.parametrize("values, check, expected", [
    ({"max_rhat": 1.0099}, "r_hat_below_1_01", True),
    ({"max_rhat": 1.0100}, "r_hat_below_1_01", False),
    ({"divergences": 0}, "no_divergences", True),
    ({"divergences": 1}, "no_divergences", False),
    ({"treedepth_hits": 0}, "no_max_treedepth", True),
    ({"treedepth_hits": 1}, "no_max_treedepth", False),
    ({"min_ess_bulk": 100.0}, "ess_bulk_ok", True),  # a warn, not a fail
    ({"min_ess_bulk": 99.0}, "ess_bulk_ok", False),
    ({"divergences": 1, "min_ess_bulk": 5000.0}, "ess_bulk_ok", False),  # any failing fit
    ({"min_ebfmi": 0.30}, "ebfmi_ok", True),
    ({"min_ebfmi": 0.29}, "ebfmi_ok", False),
])
def test_checks_made_as_stored_beside_the_draws(values, check, expected):
    d = _judged(**values)
    assert d.checks_made()[check] is expected
    stored = d.as_dict()
    assert stored["checks_made"] == d.checks_made() and stored["verdict"] == d.verdict
    assert {k: stored[k] for k in values} == values


def test_two_chains_are_enough_for_r_hat():
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(2, 500)) + np.array([[0.0], [3.0]])  # two chains far apart
    d = diagnose(azb.from_dict({"posterior": {"mu": mu}, "sample_stats": {}}), ["mu"], max_treedepth=10)
    assert d.max_rhat > 1.5 and d.max_rhat_at == "mu" and d.verdict == "fail"
