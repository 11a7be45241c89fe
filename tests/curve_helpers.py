"""A synthetic ladder following the curve-ladder law exactly, shared by the laws and analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

STEPS, WARMUP, PEAK = 1200, 60, 3e-3
TRUTH = {"sigma": 1.8, "A": 40.0, "alpha": 0.25, "B": 0.6, "beta": 0.45, "C": 0.5}


def eta(kind: str) -> np.ndarray:
    tau = np.arange(1, STEPS + 1)
    eta = np.full(STEPS, PEAK)
    if kind == "cosine":
        eta = 3e-4 + 0.5 * (PEAK - 3e-4) * (1 + np.cos(np.pi * (tau - WARMUP) / (STEPS - WARMUP)))
    elif kind == "wsd":
        eta[tau > 960] = PEAK + (3e-4 - PEAK) * (tau[tau > 960] - 960) / 240
    eta[:WARMUP] = PEAK * tau[:WARMUP] / WARMUP
    return eta


def curve_loss(eta: np.ndarray, t: int, n: float, sigma, A, alpha, B, beta, C, decay=0.999) -> float:
    """The ladder law written out with a literal loop over steps (momentum from the end of the warm-up)."""
    m = s2 = 0.0
    for i in range(1, t + 1):
        m = decay * m + (eta[i - 2] - eta[i - 1] if i > WARMUP else 0.0)
        s2 += m
    return sigma + A * n**-alpha + B * eta[:t].sum() ** -beta - C * s2


def ladder(sizes, kinds, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for n in sizes:
        for kind in kinds:
            rates = eta(kind)
            loss = np.full(STEPS, np.nan)
            for t in range(100, STEPS + 1, 50):
                loss[t - 1] = curve_loss(rates, t, n, **TRUTH) * np.exp(noise * rng.standard_normal())
            frames.append(pd.DataFrame({"run_id": f"{n:.0e}-{kind}", "params": n,
                                        "step": np.arange(1, STEPS + 1), "lr": rates, "loss": loss}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


SIZES = [2e7, 5e7, 1.2e8, 3e8]
