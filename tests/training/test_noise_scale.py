"""The two-batch-size noise-scale estimator on linear regression, where B_simple is known in closed form.

Model: y = x·w* + ε with x ~ N(0, I_d), ε ~ N(0, σ²), per-example loss ½(x·w − y)², evaluated at a fixed
w with δ = w − w*. The per-example gradient is g = x(x·δ − ε), so the true gradient is G = E[x xᵀ] δ = δ
and, by Isserlis' theorem, E[g gᵀ] = |δ|² I + 2 δδᵀ + σ² I. Hence Σ = (|δ|² + σ²) I + δδᵀ and

    B_simple = tr Σ / |G|² = (d (|δ|² + σ²) + |δ|²) / |δ|².
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from archscale.training.noise_scale import NoiseScaleEstimator, unbiased_estimates

B_SMALL, N_MICRO = 8, 8
B_BIG = B_SMALL * N_MICRO
STEPS = 2000


def simulate(d: int, delta_norm: float, sigma2: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step: squared norms of the N_MICRO micro-batch mean gradients and of the whole-batch mean."""
    rng = np.random.default_rng(seed)
    delta = np.zeros(d)
    delta[0] = delta_norm
    x = rng.standard_normal((STEPS, B_BIG, d))
    eps = rng.standard_normal((STEPS, B_BIG)) * math.sqrt(sigma2)
    g = x * (x @ delta - eps)[..., None]
    small = g.reshape(STEPS, N_MICRO, B_SMALL, d).mean(axis=2)
    return (small**2).sum(-1), (g.mean(axis=1) ** 2).sum(-1)


CASES = [  # (d, |δ|, σ², closed-form |G|², tr Σ)
    (16, 1.0, 1.0, 1.0, 16 * 2.0 + 1.0),  # B_simple = 33
    (4, 2.0, 3.0, 4.0, 4 * 7.0 + 4.0),  # B_simple = 8
]


@pytest.mark.parametrize(("d", "delta_norm", "sigma2", "g2_true", "trace_true"), CASES)
def test_per_step_estimates_are_unbiased(d, delta_norm, sigma2, g2_true, trace_true):
    small_sq, big_sq = simulate(d, delta_norm, sigma2, seed=0)
    g2, trace = unbiased_estimates(small_sq.mean(axis=1), big_sq, B_SMALL, B_BIG)
    # The mean of 2000 independent per-step estimates must sit within 4 standard errors of the truth.
    for estimate, truth in ((g2, g2_true), (trace, trace_true)):
        standard_error = estimate.std(ddof=1) / math.sqrt(STEPS)
        assert abs(estimate.mean() - truth) < 4 * standard_error
        assert standard_error < 0.03 * truth  # and the test is sharp enough to notice a 12 % bias


@pytest.mark.parametrize(("d", "delta_norm", "sigma2", "g2_true", "trace_true"), CASES)
def test_estimator_recovers_the_closed_form_noise_scale(d, delta_norm, sigma2, g2_true, trace_true):
    small_sq, big_sq = simulate(d, delta_norm, sigma2, seed=1)
    est = NoiseScaleEstimator(ema=0.999)  # averages ~1000 effective steps
    for step in range(STEPS):
        est.update(small_sq[step], big_sq[step], B_SMALL, B_BIG)
    # Over 20 seeds the spread (std) of each of the three was at most 1.5 %: 5 % is over 3 sigma.
    assert est.value == pytest.approx(trace_true / g2_true, rel=0.05)
    assert est.g2 == pytest.approx(g2_true, rel=0.05)
    assert est.trace == pytest.approx(trace_true, rel=0.05)


def test_no_gradient_noise_gives_zero_trace():
    est = NoiseScaleEstimator()
    est.update([2.5, 2.5, 2.5], 2.5, 4, 12)  # every micro-batch has the true gradient
    assert (est.g2, est.trace, est.value) == (pytest.approx(2.5), pytest.approx(0.0), pytest.approx(0.0))


def test_moving_averages_are_bias_corrected_by_hand():
    est = NoiseScaleEstimator(ema=0.5)
    assert math.isnan(est.value)
    # b_small=1, b_big=2: |G|² = 2·big − small, tr Σ = 2·(small − big)
    est.update([3.0, 5.0], 3.0, 1, 2)  # |G|² = 2, tr Σ = 2
    assert (est.g2, est.trace) == (pytest.approx(2.0), pytest.approx(2.0))
    est.update([6.0], 4.0, 1, 2)  # |G|² = 2, tr Σ = 4
    # (0.25·a1 + 0.5·a2) / (1 − 0.25) = (a1 + 2·a2) / 3
    assert (est.g2, est.trace, est.value) == (pytest.approx(2.0), pytest.approx(10 / 3), pytest.approx(5 / 3))


def test_non_positive_g2_gives_nan():
    est = NoiseScaleEstimator()
    est.update([1.0], 1.0, 1, 2)  # |G|² = 2·1 − 1 = 1 > 0
    est2 = NoiseScaleEstimator()
    est2.update([4.0], 1.0, 1, 2)  # |G|² = 2·1 − 4 < 0: noise swamps the signal
    assert est.value == pytest.approx(0.0) and math.isnan(est2.value)


def test_state_dict_resumes_exactly():
    rng = np.random.default_rng(0)
    updates = [(list(rng.random(4) + 1), float(rng.random() + 0.5)) for _ in range(10)]
    straight, first = NoiseScaleEstimator(), NoiseScaleEstimator()
    for small, big in updates:
        straight.update(small, big, 2, 8)
    for small, big in updates[:4]:
        first.update(small, big, 2, 8)
    resumed = NoiseScaleEstimator()
    resumed.load_state_dict(first.state_dict())
    for small, big in updates[4:]:
        resumed.update(small, big, 2, 8)
    assert resumed.state_dict() == straight.state_dict() and resumed.value == straight.value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: NoiseScaleEstimator(ema=1.0), r"^ema:"),
        (lambda: NoiseScaleEstimator().update([], 1.0, 1, 2), r"^small_sq_norms:"),
        (lambda: NoiseScaleEstimator().update([1.0], 1.0, 4, 4), r"^b_small, b_big:"),
    ],
)
def test_bad_arguments_name_the_field(call, message):
    with pytest.raises(ValueError, match=message):
        call()
