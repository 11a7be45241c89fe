"""Compute-optimal allocation of a fitted loss law (paper §4.2, App. C), with a numeric cross-check.

For L = A/(S^α E^γ) + B/D^β + σ under C = k·S·D, setting dL/dS = 0 gives

    S_opt = (αA / (βB E^γ))^{1/(α+β)} · (C/k)^{β/(α+β)},    D_opt = C / (k·S_opt),

with k = 1 for the model scale N (C = N·D, the paper's convention) and k = 6 for parameters P (C = 6·P·D).
The paper's Eq. 7-8 print the factor as "B E γ"; App. C's derivation gives B·E^γ, used here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from archscale.laws.base import Law
from archscale.laws.bootstrap import percentile_interval
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw


@dataclass(frozen=True)
class Allocation:
    """N_opt (in the law's size column), D_opt and the loss reached, with percentile intervals."""

    compute: float
    experts: float
    size: str
    n_opt: float
    d_opt: float
    loss: float
    alpha_N: float
    alpha_D: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    """``N_opt``, ``D_opt`` and ``loss`` of every bootstrap fit at its own optimum (none without a bootstrap):
    what the intervals are percentiles of, and what a plan chains laws through."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "compute": self.compute,
            "experts": self.experts,
            "size": self.size,
            "N_opt": self.n_opt,
            "D_opt": self.d_opt,
            "loss": self.loss,
            "alpha_N": self.alpha_N,
            "alpha_D": self.alpha_D,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
        }


def check_budget(compute: float, experts: float) -> None:
    """Refuse a compute or expert count no law can plan for (the laws work on logarithms)."""
    if not (math.isfinite(compute) and compute > 0):
        raise LawDataError(f"compute must be a finite number of FLOPs > 0 (--compute), got {compute!r}")
    if not (math.isfinite(experts) and experts >= 1):
        raise LawDataError(f"experts must be a finite number >= 1 (--experts; dense = 1), got {experts!r}")


def rounded_up(value: float) -> float:
    """``value`` rounded up to 3 significant digits: a printed lower bound that is itself allowed."""
    step = 10.0 ** (math.floor(math.log10(value)) - 2)
    return math.ceil(value / step) * step


def _allocating(law: Law, compute: float, experts: float) -> ChinchillaLaw:
    if not isinstance(law, ChinchillaLaw):
        raise LawDataError(
            f"allocation needs a loss law A/(S^alpha E^gamma) + B/D^beta + sigma (chinchilla or wang); got {law.name}"
        )
    check_budget(compute, experts)
    smallest = smallest_compute(law, experts)
    if compute < smallest:
        raise LawDataError(
            f"compute (--compute) {compute:.4g} FLOPs is too small for the {law.name} law: its optimum would "
            f"have {law.size} < 1 or tokens < 1; the smallest plannable compute is "
            f"{rounded_up(smallest):g} FLOPs"
        )
    return law


def _optimum_curve(c: Mapping[str, Any], experts: float) -> tuple[Any, Any]:
    """(s, p) of the optimal size S_opt = s·(C/k)^p (scalars, or arrays of bootstrap coefficients)."""
    alpha, beta, gamma = c["alpha"], c["beta"], c.get("gamma", 0.0)
    scale = (alpha * c["A"] / (beta * c["B"] * experts**gamma)) ** (1.0 / (alpha + beta))
    return scale, beta / (alpha + beta)


def _closed_form(c: Mapping[str, Any], compute: float, experts: float, flops_factor: float):
    scale, power = _optimum_curve(c, experts)
    n_opt = scale * (compute / flops_factor) ** power
    return n_opt, compute / (flops_factor * n_opt)


def smallest_compute(law: ChinchillaLaw, experts: float = 1.0) -> float:
    """The least compute whose optimum has S_opt ≥ 1 and D_opt ≥ 1: below it the allocation is no model,
    and the numeric check has no interval [1, C/k] to search."""
    scale, power = _optimum_curve(law.coefficients_, experts)
    # S_opt = s·x^p ≥ 1 and D_opt = x^(1-p)/s ≥ 1, with x = C/k
    return law.flops_factor * max(scale ** (-1.0 / power), scale ** (1.0 / (1.0 - power)))


def _points(law: ChinchillaLaw, n: Any, d: Any, experts: float) -> dict[str, np.ndarray]:
    n, d = np.atleast_1d(n), np.atleast_1d(d)
    return {law.size: n, "tokens": d, "experts": np.full_like(n, experts)}


def optimal_allocation(law: Law, compute: float, experts: float = 1.0) -> Allocation:
    """Closed-form N_opt, D_opt and loss at compute ``compute``; intervals when the law was bootstrapped.

    Each bootstrap fit is allocated at its own optimum, so the loss interval is that of the best loss
    reachable at this compute.
    """
    law = _allocating(law, compute, experts)
    n_opt, d_opt = _closed_form(law.coefficients_, compute, experts, law.flops_factor)
    derived = law.derived_
    intervals, samples = {}, {}
    if law.bootstrap_ is not None:
        samples = law.bootstrap_coefficients_
        ns, ds = _closed_form(samples, compute, experts, law.flops_factor)
        losses = law.predict_paired(_points(law, ns, ds, experts))
        samples = {"N_opt": np.asarray(ns, dtype=float), "D_opt": np.asarray(ds, dtype=float), "loss": losses}
        for name, values in samples.items():
            lo, hi = percentile_interval(values, law.level_)
            intervals[name] = (float(lo), float(hi))
        intervals |= {k: v for k, v in law.intervals_.items() if k in ("alpha_N", "alpha_D")}
    return Allocation(
        compute=float(compute),
        experts=float(experts),
        size=law.size,
        n_opt=float(n_opt),
        d_opt=float(d_opt),
        loss=float(law.predict(_points(law, n_opt, d_opt, experts))[0]),
        alpha_N=derived["alpha_N"],
        alpha_D=derived["alpha_D"],
        intervals=intervals,
        samples=samples,
    )


def numeric_allocation(law: Law, compute: float, experts: float = 1.0) -> tuple[float, float]:
    """N_opt, D_opt by minimising the law's own prediction along C = k·S·D (checks the closed form)."""
    law = _allocating(law, compute, experts)
    k = law.flops_factor

    def log_loss(log_n: float) -> float:
        n = math.exp(log_n)
        return float(np.log(law.predict(_points(law, n, compute / (k * n), experts))[0]))

    # The loss is convex in log S along the constraint, so a bounded Brent search over S in [1, C/k] is safe.
    best = minimize_scalar(
        log_loss, bounds=(0.0, math.log(compute / k)), method="bounded", options={"xatol": 1e-12}
    )
    n_opt = math.exp(best.x)
    return n_opt, compute / (k * n_opt)
