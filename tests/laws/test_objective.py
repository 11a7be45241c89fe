"""The shared objective: Huber values, log-sum-exp predictions and the analytic gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archscale.laws.loss_laws import ChinchillaLaw, ClarkLaw, KaplanComputeLaw, WangLaw
from archscale.laws.objective import huber, objective_and_grad
from archscale.laws.power import PowerLaw


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    delta = 1e-3
    assert huber(np.array([5e-4]), delta)[0] == pytest.approx(0.5 * 5e-4**2)
    assert huber(np.array([-3e-3]), delta)[0] == pytest.approx(1e-3 * (3e-3 - 0.5e-3))
    at_delta = huber(np.array([delta - 1e-12, delta + 1e-12]), delta)
    assert at_delta[0] == pytest.approx(at_delta[1], rel=1e-6)  # continuous at the switch
    assert huber(np.array([0.3]), math.inf)[0] == pytest.approx(0.045)  # delta = inf: least squares


def test_predictions_equal_the_published_formulas():
    # Hoffmann et al. 2022 approach 3 at P = 1e9, D = 2e10, evaluated by hand.
    chinchilla = ChinchillaLaw.from_coefficients(
        {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}
    )
    expected = 406.4 / 1e9**0.34 + 410.7 / 2e10**0.28 + 1.69
    assert chinchilla.predict({"params": [1e9], "tokens": [2e10]})[0] == pytest.approx(expected, rel=1e-12)

    wang = WangLaw.from_coefficients(
        {"A": 300.0, "B": 800.0, "alpha": 0.3, "beta": 0.32, "gamma": 0.15, "sigma": 1.7}
    )
    expected = 300.0 / (1e9**0.3 * 8**0.15) + 800.0 / 1e10**0.32 + 1.7
    assert wang.predict({"model_scale": [1e9], "tokens": [1e10], "experts": [8]})[0] == pytest.approx(
        expected
    )

    clark = ClarkLaw.from_coefficients({"a": -0.08, "b": -0.09, "c": 0.007, "d": 1.08})
    log_n, log_e = math.log10(3e8), math.log10(64)
    expected = 10 ** (-0.08 * log_n - 0.09 * log_e + 0.007 * log_n * log_e + 1.08)
    assert clark.predict({"params": [3e8], "experts": [64]})[0] == pytest.approx(expected, rel=1e-12)

    kaplan = KaplanComputeLaw.from_coefficients({"L_inf": 1.5, "C0": 3e8, "alpha": 0.05})
    assert kaplan.predict({"compute": [1e21]})[0] == pytest.approx(1.5 + (3e8 / 1e21) ** 0.05)

    power = PowerLaw.from_coefficients(
        {"lambda": 1.21e9, "exponent": -6.24}, target="batch_size", inputs=("loss",)
    )
    assert power.predict({"loss": [2.5]})[0] == pytest.approx(1.21e9 / 2.5**6.24)


LAWS = [
    (ChinchillaLaw(), {"params": (1e7, 1e10), "tokens": (1e9, 1e11)}),
    (WangLaw(), {"model_scale": (1e7, 1e10), "tokens": (1e9, 1e11), "experts": (1, 64)}),
    (ClarkLaw(), {"params": (1e7, 1e10), "experts": (1, 512)}),
    (KaplanComputeLaw(), {"compute": (1e17, 1e22)}),
    (PowerLaw(target="y", inputs=("x", "z"), offset=True), {"x": (1, 100), "z": (1e3, 1e6)}),
]


@pytest.mark.parametrize(("law", "ranges"), LAWS, ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize("delta", [1e-3, math.inf])
def test_analytic_gradient_matches_central_differences(law, ranges, delta):
    rng = np.random.default_rng(1)
    logx = {c: np.log(rng.uniform(lo, hi, 40)) for c, (lo, hi) in ranges.items()}
    design = law._design(logx)
    theta = rng.uniform(0.1, 0.6, len(law.theta_names))
    logy = np.log(np.exp(design @ theta).sum(axis=0)) + rng.normal(
        0, 0.01, 40
    )  # residuals both sides of delta
    weights = rng.integers(0, 3, 40).astype(float)
    _, grad = objective_and_grad(theta, design, logy, weights, delta)
    step = 1e-6
    numeric = [
        (
            objective_and_grad(theta + step * e, design, logy, weights, delta)[0]
            - objective_and_grad(theta - step * e, design, logy, weights, delta)[0]
        )
        / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
