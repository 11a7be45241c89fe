"""Whole-curve laws: each recovers the coefficients of curves made with its own formula (computed here by
literal loops, not by the code under test), predicts held-out schedules, and refuses tables it cannot read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archscale.laws import law_class
from archscale.laws.curve_laws import AnnealingLaw, MultiPowerLaw
from archscale.laws.errors import LawDataError

STEPS, WARMUP, PEAK = 2000, 100, 3e-3


def _schedule(kind: str) -> np.ndarray:
    """η_1 … η_T of a few schedule shapes, all with the same linear warm-up."""
    tau = np.arange(1, STEPS + 1)
    eta = np.full(STEPS, PEAK)
    if kind == "cosine":
        eta = 3e-4 + 0.5 * (PEAK - 3e-4) * (1 + np.cos(np.pi * (tau - WARMUP) / (STEPS - WARMUP)))
    elif kind == "step":
        eta[tau > 1000] = 9e-4
    elif kind == "wsd":
        eta[tau > 1600] = PEAK + (3e-4 - PEAK) * (tau[tau > 1600] - 1600) / 400
    eta[:WARMUP] = PEAK * tau[:WARMUP] / WARMUP
    return eta


def _multipower(eta: np.ndarray, t: int, L0, A, alpha, B, C, beta, gamma) -> float:
    """Luo et al.'s Eq. 1 as written, with a literal loop (η_0 the peak: sums start after the warm-up)."""
    drop = 0.0
    for k in range(WARMUP + 1, t + 1):
        s_k = eta[k - 1 : t].sum()
        drop += (eta[k - 2] - eta[k - 1]) * (1 - (C * eta[k - 1] ** -gamma * s_k + 1) ** -beta)
    return L0 + A * eta[:t].sum() ** -alpha - B * drop


def _annealing(eta: np.ndarray, t: int, L0, A, alpha, C, decay=0.999) -> float:
    m = s2 = 0.0
    for i in range(1, t + 1):
        m = decay * m + (eta[i - 2] - eta[i - 1] if i > WARMUP else 0.0)
        s2 += m
    return L0 + A * eta[:t].sum() ** -alpha - C * s2


def _table(law, truth: dict, kinds, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for kind in kinds:
        eta = _schedule(kind)
        loss = np.full(STEPS, np.nan)
        for t in range(150, STEPS + 1, 50):
            loss[t - 1] = law(eta, t, **truth) * np.exp(noise * rng.standard_normal())
        frames.append(
            pd.DataFrame({"run_id": kind, "step": np.arange(1, STEPS + 1), "lr": eta, "loss": loss})
        )
    return pd.concat(frames, ignore_index=True)


MPL_TRUTH = {"L0": 2.5, "A": 0.6, "alpha": 0.45, "B": 200.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
ANNEALING_TRUTH = {"L0": 2.5, "A": 0.6, "alpha": 0.45, "C": 0.5}


def test_multipower_recovers_its_coefficients_and_predicts_held_out_schedules() -> None:
    train = _table(_multipower, MPL_TRUTH, ["cosine", "constant", "step"], noise=1e-4, seed=0)
    law = MultiPowerLaw(block=1).fit(train)
    for name, value in MPL_TRUTH.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=0.05), name
    held_out = _table(_multipower, MPL_TRUTH, ["wsd"], noise=0.0, seed=1)
    truth = held_out["loss"].dropna().to_numpy()
    np.testing.assert_allclose(law.predict(held_out), truth, rtol=2e-3)


def test_the_annealing_law_recovers_its_coefficients() -> None:
    train = _table(_annealing, ANNEALING_TRUTH, ["cosine", "constant", "step"], noise=1e-4, seed=2)
    law = AnnealingLaw().fit(train)
    for name, value in ANNEALING_TRUTH.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=0.05), name
    held_out = _table(_annealing, ANNEALING_TRUTH, ["wsd"], noise=0.0, seed=3)
    np.testing.assert_allclose(law.predict(held_out), held_out["loss"].dropna(), rtol=1e-3)


@pytest.mark.parametrize("law", [MultiPowerLaw(), AnnealingLaw()], ids=["multipower", "annealing"])
def test_under_a_constant_rate_each_law_is_a_power_law_in_the_area(law) -> None:
    fitted = type(law).from_coefficients(MPL_TRUTH if law.name == "multipower" else ANNEALING_TRUTH)
    eta = _schedule("constant")
    table = pd.DataFrame({"run_id": "c", "step": np.arange(1, STEPS + 1), "lr": eta})
    expected = 2.5 + 0.6 * np.cumsum(eta) ** -0.45
    np.testing.assert_allclose(fitted.predict(table), expected, rtol=1e-12)


def test_both_laws_are_registered_and_round_trip_through_json() -> None:
    law = MultiPowerLaw.from_coefficients(MPL_TRUTH)
    again = law_class("multipower").from_dict(law.to_dict() | {"config": law.config()})
    assert again.coefficients_ == pytest.approx(MPL_TRUTH)
    assert law_class("annealing") is AnnealingLaw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="lr"), r"needs the column\(s\) \['lr'\]"),
        (lambda t: t[t["step"] > 1], "steps must be whole numbers from 1 up"),
        (lambda t: t.assign(lr=-t["lr"]), "finite rate >= 0"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "each once"),
    ],
    ids=["no-lr", "no-step-1", "negative-lr", "repeated-step"],
)
def test_tables_a_curve_law_cannot_read_are_refused(change, message) -> None:
    table = _table(_annealing, ANNEALING_TRUTH, ["cosine"], noise=0.0, seed=4)
    with pytest.raises(LawDataError, match=message):
        AnnealingLaw().fit(change(table))
