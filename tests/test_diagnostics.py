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
    assert d.min_ess_bulk_at == "sigma" and d.max_rhat_at == "sigma"
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
