"""Intervals of the whole-curve laws: the 95 % new-run interval of a held-out schedule's final loss holds a
fresh run's final at about the nominal rate, on curves made by the annealing law's formula (computed here by
a literal loop) times a run effect and AR(1) point noise along each curve."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from archscale.laws import AnnealingLaw, Law
from archscale.laws.errors import IntervalWarning, LawDataError, NotFittedError
from archscale.laws.resampling import NoiseModel

STEPS, WARMUP, PEAK, END = 400, 40, 3e-3, 3e-4
EVALUATED = np.arange(40, STEPS + 1, 12)  # 31 evaluations per run
TRUTH = {"L0": 2.5, "A": 0.6, "alpha": 0.45, "C": 0.5}
TRAIN, HELD_OUT = ("constant", "cosine", "wsd", "wsd-half"), "two-stage"
TAU, S, PHI = 0.01, 0.003, 0.6  # run effect and point noise (log sd), lag-1 correlation along a curve


def _schedule(kind: str) -> np.ndarray:
    t = np.arange(1, STEPS + 1)
    eta = np.full(STEPS, PEAK)
    if kind == "cosine":
        eta = END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (t - WARMUP) / (STEPS - WARMUP)))
    elif kind in ("wsd", "wsd-half"):
        start = 320 if kind == "wsd" else 200
        eta[t > start] = PEAK + (END - PEAK) * (t[t > start] - start) / (STEPS - start)
    elif kind == "two-stage":
        eta[t > 240] = 6e-4
    eta[:WARMUP] = PEAK * t[:WARMUP] / WARMUP
    return eta


def _true_curve(eta: np.ndarray, decay: float = 0.999) -> np.ndarray:
    """Tissue et al.'s Eq. 3 at every step, by a literal loop: L0 + A·S1^−α − C·S2."""
    s1 = s2 = m = 0.0
    loss = np.empty(len(eta))
    for i in range(1, len(eta) + 1):
        s1 += eta[i - 1]
        m = decay * m + (eta[i - 2] - eta[i - 1] if i > WARMUP else 0.0)
        s2 += m
        loss[i - 1] = TRUTH["L0"] + TRUTH["A"] * s1 ** -TRUTH["alpha"] - TRUTH["C"] * s2
    return loss[EVALUATED - 1]


MEANS = {kind: _true_curve(_schedule(kind)) for kind in (*TRAIN, HELD_OUT)}


def _table(kind: str, loss: np.ndarray) -> pd.DataFrame:
    full = np.full(STEPS, np.nan)
    full[EVALUATED - 1] = loss
    steps = np.arange(1, STEPS + 1)
    return pd.DataFrame({"run_id": kind, "step": steps, "lr": _schedule(kind), "loss": full})


def _noisy_runs(kinds, rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for kind in kinds:
        point = np.empty(len(EVALUATED))
        point[0] = rng.standard_normal()
        for i in range(1, len(point)):
            point[i] = PHI * point[i - 1] + np.sqrt(1 - PHI**2) * rng.standard_normal()
        frames.append(_table(kind, MEANS[kind] * np.exp(TAU * rng.standard_normal() + S * point)))
    return pd.concat(frames, ignore_index=True)


def _coverage(replicates: int, refits: int) -> float:
    """Share of replicates whose 95 % new-run interval of the held-out final holds a fresh run's final."""
    rng = np.random.default_rng(2026)
    held_out = _table(HELD_OUT, MEANS[HELD_OUT])
    hits = []
    for replicate in range(replicates):
        train = _noisy_runs(TRAIN, rng)
        observed = MEANS[HELD_OUT][-1] * np.exp(TAU * rng.standard_normal() + S * rng.standard_normal())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refit on a bound now and then: counted, not our subject
            law = AnnealingLaw(bootstrap=refits, seed=replicate).fit(train)
        lo, hi = law.predict_interval(held_out, new_run=True)
        hits.append(lo[-1] <= observed <= hi[-1])
    return float(np.mean(hits))


def test_the_new_run_interval_of_a_held_out_final_covers_at_the_nominal_rate() -> None:
    # 150 replicates: a binomial sd of 1.8 points around 95 %
    assert 0.90 <= _coverage(replicates=150, refits=100) <= 0.98


def test_without_the_run_effect_the_intervals_would_undercover(monkeypatch) -> None:
    """The same simulation with τ set to 0 in the estimate: the run effect (1 %, three times the point noise)
    is then neither simulated in the refits nor added to the new run, and coverage collapses."""
    estimate = NoiseModel.from_residuals
    monkeypatch.setattr(
        NoiseModel, "from_residuals", classmethod(lambda cls, *a: dataclasses.replace(estimate(*a), tau=0.0))
    )
    assert _coverage(replicates=40, refits=50) < 0.75


@pytest.mark.parametrize("kinds", [("cosine",), ("constant", "cosine")], ids=["one-run", "two-runs"])
def test_too_few_runs_give_no_interval_and_say_why(kinds) -> None:
    train = _noisy_runs(kinds, np.random.default_rng(0))
    with pytest.warns(IntervalWarning, match="no interval"):
        law = AnnealingLaw(bootstrap=20).fit(train)
    assert "no interval" in law.no_interval_ and law.bootstrap_ is None and law.intervals_ == {}
    with pytest.raises(NotFittedError):
        law.predict_interval(_table(HELD_OUT, MEANS[HELD_OUT]), new_run=True)


def test_run_resampling_is_refused_for_whole_curves() -> None:
    with pytest.raises(LawDataError, match="simulate whole runs"):
        AnnealingLaw(bootstrap=20, method="resample").fit(_noisy_runs(TRAIN, np.random.default_rng(0)))


def test_a_bootstrapped_curve_fit_round_trips_through_json_with_its_intervals() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = AnnealingLaw(bootstrap=30, seed=3).fit(_noisy_runs(TRAIN, np.random.default_rng(1)))
    assert law.bootstrap_.n == 30 and law.bootstrap_.resample == "run"
    assert law.bootstrap_.noise["n_groups"] == len(TRAIN) and 0 < law.bootstrap_.noise["phi"] < 1
    again = Law.from_dict(json.loads(json.dumps(law.to_dict())))
    held_out = _table(HELD_OUT, MEANS[HELD_OUT])
    for new_run in (False, True):
        np.testing.assert_array_equal(
            again.predict_interval(held_out, new_run=new_run), law.predict_interval(held_out, new_run=new_run)
        )
    assert again.intervals_ == law.intervals_ and set(law.intervals_) == set(TRUTH)
    lo, hi = law.predict_interval(held_out, new_run=True)
    band_lo, band_hi = law.predict_interval(held_out)
    assert (lo < band_lo).all() and (hi > band_hi).all()  # a new run adds its own effect and noise
