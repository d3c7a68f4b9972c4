"""Every number a model header states about a prior is recomputed here from the prior in the code.

Each claim names the model, the header's prior entry, the sampling statement the number is
computed from (it must be in the compiled program, so a changed prior fails here until the header
is updated), and the phrase the header must contain, formatted from the computation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from scipy import stats

from horizon_zoo.registry import resolve

Z = stats.norm.ppf(0.975)  # 95% central interval
LN2 = math.log(2)


def _halfnormal_95(scale: float) -> float:
    return float(stats.halfnorm.ppf(0.95, scale=scale))


def _bt_horizon() -> str:  # p = inv_logit(theta - ln minutes): the 50% horizon is exp(theta) minutes
    lo, hi = math.exp(2 - Z * 4), math.exp(2 + Z * 4)
    return f"{math.exp(2):.0f} minutes at the centre; 95% between {lo * 60:.1f} seconds and {hi / 1440:.0f} days"


def _weibull_horizon() -> str:
    lo, hi = math.exp(2 - Z * 4), math.exp(2 + Z * 4)
    return f"{math.exp(2):.0f} minutes at the centre, 95% between {lo * 60:.1f} seconds and {hi / 1440:.0f} days"


def _weibull_shape() -> str:
    return f"95% between {math.exp(-Z * 0.5):.1f} and {math.exp(Z * 0.5):.1f}"


def _constant_hazard() -> str:  # half-life ln 2 / lambda minutes
    centre, lo, hi = LN2 * math.exp(2.5), LN2 * math.exp(2.5 - Z * 4), LN2 * math.exp(2.5 + Z * 4)
    return (f"a half-life of {centre:.0f} minutes at the centre; 95% of prior half-lives lie between\n    "
            f"{lo * 60:.1f} seconds and {hi / 1440:.0f} days")


def _mixture_hazard() -> str:
    centre, lo, hi = LN2 * math.exp(6), LN2 * math.exp(6 - Z * 3), LN2 * math.exp(6 + Z * 3)
    return (f"half-life of {centre / 60:.1f} hours at the centre", f"95% between {lo:.1f} minutes and {hi / 1440:.0f} days")


def _surprisal() -> str:  # p = exp(-H), log H ~ normal(0, 3)
    top = math.exp(-math.exp(-Z * 3))
    log10_bottom = -math.exp(Z * 3) / math.log(10)
    below = stats.norm.sf(math.log(-math.log(0.002)) / 3)  # P(success < 0.2%)
    return (f"cumulative hazard 1\n    (success {math.exp(-1):.0%}) at the centre",
            f"(-{Z * 3:.1f} to {Z * 3:.1f})\n    runs from success {top:.1%} down to 1e{log10_bottom:.0f}",
            f"{below:.0%} of the prior mass is on success below 0.2%")


def _trend_level() -> str:
    return (f"within 5 doublings (x{2 ** 5}) of the typical task with prior probability "
            f"{stats.norm.cdf(1) - stats.norm.cdf(-1):.0%}, within {Z * 5:.1f} with 95%")


def _trend_slope() -> str:
    return f"doubling every {12 / (Z * 2):.0f} months to halving every {12 / (Z * 2):.0f} months\n    within 95%"


def _trend_scatter() -> str:
    return f"mean {2 / 2:.0f} doubling", f"95%\n    below {stats.gamma.ppf(0.95, 2, scale=1 / 2):.1f}"


def _logistic_slope() -> str:
    lo, hi = -0.7 - Z * 0.7, -0.7 + Z * 0.7
    assert lo < 2 * -0.7 and lo < 0 < hi  # "keeps 0 and slopes twice as steep inside 95%"
    return "keeps 0 and slopes twice as steep inside 95%"


def _ceiling() -> tuple[str, str]:  # beta(20, 1) and beta(1, 20); the truncation at 0.5 holds 0.5^20 of the mass
    return f"(prior mean {stats.beta(20, 1).mean():.2f})", f"(prior mean {stats.beta(1, 20).mean():.2f})"


def _family_sd(name: str) -> Callable[[], str]:
    return lambda: f"({_halfnormal_95(0.5):.2f} is\n    the prior's 95th percentile of {name})"


def _discrimination_factor() -> str:
    return f"exp(+-{Z:.2f} * {_halfnormal_95(0.5):.2f}),\n    about {math.exp(Z * _halfnormal_95(0.5)):.0f}"


CLAIMS: list[tuple[str, str, str, Callable[[], str | tuple[str, ...]]]] = [
    ("bradley_terry", "theta", "theta ~ normal(2, 4);", _bt_horizon),
    ("weibull", "mu_h50", "mu_h50 ~ normal(2, 4);", _weibull_horizon),
    ("weibull", "mu_shape", "mu_shape ~ normal(0, 0.5);", _weibull_shape),
    ("constant_hazard", "log_lambda", "log_lambda ~ normal(-2.5, 4);", _constant_hazard),
    ("hazard_bt_mixture", "log_lambda", "log_lambda ~ normal(-6, 3);", _mixture_hazard),
    ("cumulative_surprisal", "mu_agent", "mu_agent - tau_task * z_task_mean ~ normal(0, 3);", _surprisal),
    ("logistic_trend", "trend_level", "trend_level ~ normal(centre, 5);", _trend_level),
    ("logistic_trend", "trend_slope", "trend_slope ~ normal(0, 2);", _trend_slope),
    ("logistic_trend", "sigma_agent", "sigma_agent ~ gamma(2, 2);", _trend_scatter),
    ("logistic", "beta", "beta ~ normal(-0.7, 0.7);", _logistic_slope),
    ("logistic_ceiling", "ceiling", "ceiling ~ beta(20, 1);", lambda: _ceiling()[0]),
    ("logistic_ceiling", "guess", "guess ~ beta(1, 20);", lambda: _ceiling()[1]),
    ("bradley_terry_noisy_duration", "sigma_dur", "sigma_dur ~ normal(0, 1);",
     lambda: f"below {_halfnormal_95(1):.2f} with prior probability 95%, an sd of offsets up to a factor "
             f"e^{_halfnormal_95(1):.2f}, about {math.exp(_halfnormal_95(1)):.0f}"),
    ("family_discrimination", "tau_disc", "tau_disc ~ normal(0, 0.5);", _family_sd("tau_disc")),
    ("family_discrimination", "tau_disc", "tau_disc ~ normal(0, 0.5);", _discrimination_factor),
]


@pytest.mark.parametrize("model, entry, statement, phrase", CLAIMS,
                         ids=[f"{m}.{e}.{f.__name__}" for m, e, _, f in CLAIMS])
def test_a_headers_prior_numbers_are_what_its_prior_gives(model, entry, statement, phrase):
    zoo_model = resolve(model)
    assert statement in zoo_model.program, f"{model}: the prior the header's numbers come from has changed"
    raw = zoo_model.code[:zoo_model.code.index("--- */")]
    text = raw[raw.index("\npriors:"):]
    text = text[text.index(f"\n  {entry}:"):]
    text = " ".join(text.split())  # line breaks in the YAML are not part of the claim
    expected = phrase()
    for fragment in (expected if isinstance(expected, tuple) else (expected,)):
        fragment = " ".join(fragment.split())
        assert fragment in text, f"{model}.{entry}: header should say {fragment!r}"
