"""MCMC diagnostics of one fit, summarised as a pass / warn / fail verdict.

Thresholds follow Vehtari et al. (2021), "Rank-normalization, folding, and localization: an
improved R-hat", and Stan's own warnings (divergences, tree depth, E-BFMI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import xarray as xr

RHAT_PASS, RHAT_FAIL = 1.01, 1.05
ESS_PER_CHAIN_PASS, ESS_FAIL = 100, 100  # bulk/tail ESS: pass >= 100 per chain, fail below 100 total
EBFMI_WARN = 0.3


@dataclass
class Diagnostics:
    """Worst-case convergence numbers over all parameters of one fit."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    treedepth_hits: int
    min_ebfmi: float
    draws: int
    verdict: str = "pass"
    problems: list[str] = field(default_factory=list)
    # Where the worst values sit, e.g. "tau_shape" or "z_disc[task=t17]": the first thing to know
    # when reparameterising a model that mixes slowly.
    max_rhat_at: str = ""
    min_ess_bulk_at: str = ""
    min_ess_tail_at: str = ""

    def checks_made(self) -> dict[str, bool]:
        """Named booleans stored beside the draws, as posteriordb does."""
        return {
            "r_hat_below_1_01": bool(self.max_rhat < RHAT_PASS),
            "no_divergences": self.divergences == 0,
            "no_max_treedepth": self.treedepth_hits == 0,
            "ess_bulk_ok": self.verdict != "fail" and bool(self.min_ess_bulk >= ESS_FAIL),
            "ebfmi_ok": bool(self.min_ebfmi >= EBFMI_WARN),
        }

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checks_made"] = self.checks_made()
        return out


def diagnose(idata: xr.DataTree, parameters: list[str], max_treedepth: int) -> Diagnostics:
    """Compute R-hat, bulk/tail ESS, divergences, tree-depth saturation and E-BFMI.

    Parameters
    ----------
    idata
        A fit with ``posterior`` and ``sample_stats`` groups.
    parameters
        Names of the variables to check (the program's ``parameters`` block).
    max_treedepth
        The sampler's tree-depth limit; transitions that reach it are counted.
    """
    post = idata["posterior"].to_dataset()[parameters]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    max_rhat, rhat_at = _worst(azs.rhat(post), np.nanargmax) if chains > 1 else (float("nan"), "")
    ess_bulk, bulk_at = _worst(azs.ess(post, method="bulk"), np.nanargmin)
    ess_tail, tail_at = _worst(azs.ess(post, method="tail"), np.nanargmin)
    stats = idata["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    hits = int((stats["tree_depth"] >= max_treedepth).sum()) if "tree_depth" in stats else 0
    ebfmi = float(np.min(azs.bfmi(idata).to_dataset()["energy"])) if "energy" in stats else float("nan")
    diag = Diagnostics(max_rhat, ess_bulk, ess_tail, divergences, hits, ebfmi, chains * draws,
                       max_rhat_at=rhat_at, min_ess_bulk_at=bulk_at, min_ess_tail_at=tail_at)
    _judge(diag, chains)
    return diag


def _worst(result: xr.Dataset | xr.DataTree, pick: Any) -> tuple[float, str]:
    """The worst value over every element of every variable (``pick`` is np.nanargmax or
    np.nanargmin) and the element's label, ``name[dim=coordinate, ...]``."""
    ds = result.to_dataset() if isinstance(result, xr.DataTree) else result
    candidates = []  # each variable's worst element: (value, variable, index)
    for var in ds.data_vars.values():
        values = np.asarray(var.values, dtype=float)
        if np.isfinite(values).any():
            index = np.unravel_index(int(pick(values)), values.shape)
            candidates.append((float(values[index]), var, index))
    if not candidates:
        return float("nan"), ""
    value, var, index = candidates[int(pick([c[0] for c in candidates]))]
    where = ", ".join(f"{dim}={var[dim].values[i]}" if dim in var.coords else f"{dim}={i}"
                      for dim, i in zip(var.dims, index, strict=True))
    return value, f"{var.name}[{where}]" if where else str(var.name)


def _judge(diag: Diagnostics, chains: int) -> None:
    fail, warn = [], []
    if np.isfinite(diag.max_rhat):
        if diag.max_rhat >= RHAT_FAIL:
            fail.append(f"R-hat {diag.max_rhat:.3f} >= {RHAT_FAIL} ({diag.max_rhat_at})")
        elif diag.max_rhat >= RHAT_PASS:
            warn.append(f"R-hat {diag.max_rhat:.3f} >= {RHAT_PASS} ({diag.max_rhat_at})")
    for label, value, at in (("bulk", diag.min_ess_bulk, diag.min_ess_bulk_at),
                             ("tail", diag.min_ess_tail, diag.min_ess_tail_at)):
        if not np.isfinite(value):
            continue
        if value < ESS_FAIL:
            fail.append(f"{label} ESS {value:.0f} < {ESS_FAIL} ({at})")
        elif value < ESS_PER_CHAIN_PASS * chains:
            warn.append(f"{label} ESS {value:.0f} < {ESS_PER_CHAIN_PASS * chains} ({at})")
    if diag.divergences:
        fail.append(f"{diag.divergences} divergent transitions")
    if diag.treedepth_hits:
        warn.append(f"{diag.treedepth_hits} transitions hit the maximum tree depth")
    if np.isfinite(diag.min_ebfmi) and diag.min_ebfmi < EBFMI_WARN:
        warn.append(f"E-BFMI {diag.min_ebfmi:.2f} < {EBFMI_WARN}")
    diag.problems = fail + warn
    diag.verdict = "fail" if fail else "warn" if warn else "pass"
