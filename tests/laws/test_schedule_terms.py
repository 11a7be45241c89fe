"""The learning-rate sums of the whole-curve laws against literal transcriptions of the papers' formulas
(Luo et al. 2025 Eq. for LD(t); Tissue et al. 2024 for S2): an off-by-one in S1, S_k or the momentum
recursion changes these sums and fails here."""

from __future__ import annotations

import numpy as np
import pytest

from archscale.laws.schedule_terms import RunSchedule, decay_terms, loss_drop


def _warmup_cosine(steps: int, warmup: int = 20, peak: float = 3e-3, end: float = 3e-4) -> np.ndarray:
    """η_1 … η_T: linear warm-up to the peak at step ``warmup``, then cosine to ``end``."""
    tau = np.arange(1, steps + 1)
    eta = end + 0.5 * (peak - end) * (1 + np.cos(np.pi * (tau - warmup) / (steps - warmup)))
    eta[:warmup] = peak * tau[:warmup] / warmup
    return eta


def _literal_drop(eta: np.ndarray, t: int, C: float, beta: float, gamma: float) -> float:
    """Σ_{k=W+1..t} (η_{k−1} − η_k)·(1 − (C·η_k^−γ·S_k(t) + 1)^−β), S_k(t) = Σ_{τ=k..t} η_τ, 1-based."""
    w = int(np.argmax(eta)) + 1
    total = 0.0
    for k in range(w + 1, t + 1):
        s_k = sum(eta[tau - 1] for tau in range(k, t + 1))
        total += (eta[k - 2] - eta[k - 1]) * (1 - (C * eta[k - 1] ** -gamma * s_k + 1) ** -beta)
    return total


def _literal_s2(eta: np.ndarray, t: int, decay: float) -> float:
    w = int(np.argmax(eta)) + 1
    m, total = 0.0, 0.0
    for i in range(1, t + 1):
        m = decay * m + ((eta[i - 2] - eta[i - 1]) if i > w else 0.0)
        total += m
    return total


@pytest.fixture(scope="module")
def schedule() -> RunSchedule:
    eta = _warmup_cosine(300)
    eta[150:] = np.minimum(eta[150:], 1e-3)  # a drop the cosine reaches later: a step change too
    return RunSchedule(eta, np.array([1, 20, 21, 22, 77, 151, 299, 300]))


def test_the_forward_area_sums_the_first_t_rates(schedule) -> None:
    expected = [schedule.eta[:t].sum() for t in schedule.steps]
    np.testing.assert_allclose(schedule.area, expected, rtol=1e-13)


def test_the_loss_drop_equals_the_literal_sum(schedule) -> None:
    C, beta, gamma = 2.0, 0.6, 0.6
    (terms,) = decay_terms([schedule], block=1)
    drop, _ = loss_drop(terms, C, beta, gamma)
    expected = [_literal_drop(schedule.eta, int(t), C, beta, gamma) for t in schedule.steps]
    np.testing.assert_allclose(drop, expected, rtol=1e-12, atol=1e-15)
    assert drop[0] == drop[1] == 0  # nothing has decayed by the end of the warm-up (W = 20)


def test_blocks_far_from_the_point_change_the_drop_by_a_negligible_amount() -> None:
    long = RunSchedule(_warmup_cosine(20_000, warmup=500), np.array([1_000, 7_000, 20_000]))
    exact = loss_drop(next(decay_terms([long], block=1)), 2.0, 0.6, 0.6)[0]
    blocked = loss_drop(next(decay_terms([long], block=64)), 2.0, 0.6, 0.6)[0]
    # the drop enters the loss times B (hundreds): 1e-8 here is under 1e-5 in loss, a hundredth of the noise
    np.testing.assert_allclose(blocked, exact, rtol=0, atol=1e-8)
    assert len(next(decay_terms([long], block=64)).gap) < len(next(decay_terms([long], block=1)).gap) / 10


def test_chunks_add_up_to_the_whole(schedule) -> None:
    whole = loss_drop(next(decay_terms([schedule, schedule], block=1)), 2.0, 0.6, 0.6)[0]
    parts = sum(
        loss_drop(t, 2.0, 0.6, 0.6)[0] for t in decay_terms([schedule, schedule], block=1, max_pairs=50)
    )
    np.testing.assert_allclose(parts, whole, rtol=1e-13)


def test_the_gradient_matches_finite_differences(schedule) -> None:
    (terms,) = decay_terms([schedule], block=1)
    point = np.array([np.log(2.0), 0.6, 0.6])  # log C, beta, gamma

    def drop(p):
        return loss_drop(terms, np.exp(p[0]), p[1], p[2])[0]

    _, grads = loss_drop(terms, 2.0, 0.6, 0.6, gradient=True)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        numeric = (drop(point + step) - drop(point - step)) / 2e-6
        np.testing.assert_allclose(grads[i], numeric, rtol=1e-5, atol=1e-12)


def test_the_annealing_area_follows_the_momentum_recursion(schedule) -> None:
    expected = [_literal_s2(schedule.eta, int(t), 0.99) for t in schedule.steps]
    np.testing.assert_allclose(schedule.annealing_area(0.99), expected, rtol=1e-12, atol=1e-15)


def test_a_constant_schedule_has_no_decay_terms() -> None:
    """After its warm-up a constant rate never falls: both laws reduce to a power law in S1."""
    eta = np.minimum(np.arange(1, 101) / 10, 1.0) * 1e-3
    constant = RunSchedule(eta, np.array([5, 50, 100]))
    (terms,) = decay_terms([constant])
    assert len(terms.gap) == 0 and not loss_drop(terms, 2.0, 0.6, 0.6)[0].any()
    assert not constant.annealing_area(0.999).any()
