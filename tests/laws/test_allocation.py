"""Compute-optimal allocation: the closed form against a numeric optimum, and its invariants."""

from __future__ import annotations

import math

import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.compute_optimal import numeric_allocation, optimal_allocation
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw, ClarkLaw, WangLaw

HOFFMANN = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}
EPOCH = {"A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658, "sigma": 1.8172}


@pytest.mark.parametrize(
    ("law", "experts"),
    [
        (ChinchillaLaw.from_coefficients(HOFFMANN), 1.0),
        (ChinchillaLaw.from_coefficients(EPOCH), 1.0),
        (ChinchillaLaw.from_coefficients(EPOCH, size="model_scale"), 1.0),
        (WangLaw.from_coefficients(WANG_TRUE), 1.0),
        (WangLaw.from_coefficients(WANG_TRUE), 8.0),
        (WangLaw.from_coefficients(WANG_TRUE | {"gamma": 0.6}), 64.0),
    ],
)
@pytest.mark.parametrize("compute", [1e18, 5.76e23, 1e25])
def test_closed_form_equals_numeric_optimum(law, experts, compute):
    closed = optimal_allocation(law, compute, experts)
    n_numeric, d_numeric = numeric_allocation(law, compute, experts)
    assert closed.n_opt == pytest.approx(n_numeric, rel=1e-6)
    assert closed.d_opt == pytest.approx(d_numeric, rel=1e-6)


def test_allocation_honours_the_flops_convention_and_exponents():
    params_law = ChinchillaLaw.from_coefficients(HOFFMANN)
    plan = optimal_allocation(params_law, 5.76e23)
    assert 6 * plan.n_opt * plan.d_opt == pytest.approx(5.76e23)  # C = 6·P·D
    scale_law = ChinchillaLaw.from_coefficients(HOFFMANN, size="model_scale")
    plan_n = optimal_allocation(scale_law, 5.76e23)
    assert plan_n.n_opt * plan_n.d_opt == pytest.approx(5.76e23)  # C = N·D
    # N_opt ∝ C^{β/(α+β)}: ten times the compute multiplies N_opt by 10^0.4516…
    ratio = optimal_allocation(params_law, 5.76e24).n_opt / plan.n_opt
    assert math.log10(ratio) == pytest.approx(0.28 / 0.62, rel=1e-12)
    assert plan.alpha_N == pytest.approx(0.28 / 0.62) and plan.alpha_D == pytest.approx(0.34 / 0.62)
    assert plan.loss == pytest.approx(406.4 / plan.n_opt**0.34 + 410.7 / plan.d_opt**0.28 + 1.69)


def test_experts_shift_the_optimum_by_e_to_the_gamma():
    # From App. C: N_opt ∝ (E^γ)^{-1/(α+β)} at fixed compute (the paper's Eq. 7-8 misprint "B E γ" aside).
    law = WangLaw.from_coefficients(WANG_TRUE)
    dense, moe = optimal_allocation(law, 1e21, 1.0), optimal_allocation(law, 1e21, 8.0)
    expected = 8.0 ** (-WANG_TRUE["gamma"] / (WANG_TRUE["alpha"] + WANG_TRUE["beta"]))
    assert moe.n_opt / dense.n_opt == pytest.approx(expected, rel=1e-12)
    assert moe.loss < dense.loss


def test_bootstrapped_law_gives_intervals_around_the_plan(wang_grid):
    law = WangLaw(bootstrap=40).fit(with_noise(wang_grid, 0.01, seed=0))
    plan = optimal_allocation(law, 1e21, 8.0)
    assert set(plan.intervals) == {"N_opt", "D_opt", "loss", "alpha_N", "alpha_D"}
    for name, (lo, hi) in plan.intervals.items():
        assert lo < hi, name
    lo, hi = plan.intervals["loss"]
    assert lo <= plan.loss <= hi
    assert plan.to_dict()["N_opt"] == plan.n_opt


def test_allocation_refuses_laws_and_budgets_it_cannot_use():
    with pytest.raises(LawDataError, match="chinchilla or wang"):
        optimal_allocation(ClarkLaw.from_coefficients({"a": -0.08, "b": -0.1, "c": 0.01, "d": 1.1}), 1e21)
    with pytest.raises(LawDataError, match="compute must be"):
        optimal_allocation(ChinchillaLaw.from_coefficients(HOFFMANN), -1.0)
    with pytest.raises(LawDataError, match="experts must be"):
        optimal_allocation(WangLaw.from_coefficients(WANG_TRUE), 1e21, 0.5)
