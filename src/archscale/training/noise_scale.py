"""The simple gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, App. A.1).

For a mean gradient over a batch of B examples, E|G_B|² = |G|² + tr(Σ)/B, with G the true gradient and
Σ the per-example gradient covariance. Measuring |G_B|² at two batch sizes gives unbiased estimates of
both terms:

    |G|²  ≈ (B_big·|G_big|² − B_small·|G_small|²) / (B_big − B_small)
    tr(Σ) ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)

Gradient accumulation provides both for free: |G_small|² is the mean squared norm of the micro-batch
gradients, |G_big|² that of the accumulated step gradient (before clipping). Each estimate is very noisy,
so the ratio is taken of exponential moving averages (bias-corrected, as in Adam, so the first steps are
not pulled towards zero); the ratio of averages, not the average of ratios, as McCandlish et al. advise.
B_simple comes out in the units of the batch sizes passed in (sequences or tokens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def unbiased_estimates(
    small_sq_norm: float, big_sq_norm: float, b_small: float, b_big: float
) -> tuple[float, float]:
    """One step's unbiased estimates ``(|G|², tr Σ)`` from mean squared gradient norms at two batch sizes."""
    if not 0 < b_small < b_big:
        raise ValueError(f"b_small, b_big: need 0 < b_small < b_big, got b_small={b_small}, b_big={b_big}")
    g2 = (b_big * big_sq_norm - b_small * small_sq_norm) / (b_big - b_small)
    trace = (small_sq_norm - big_sq_norm) / (1 / b_small - 1 / b_big)
    return g2, trace


class NoiseScaleEstimator:
    """Running B_simple from per-step gradient norms; ``state_dict`` makes a resumed run continue exactly."""

    def __init__(self, ema: float = 0.95) -> None:
        if not 0 <= ema < 1:
            raise ValueError(f"ema: must be in [0, 1), got {ema}")
        self.ema = ema
        self.steps = 0
        self._g2 = 0.0  # uncorrected moving averages
        self._trace = 0.0

    def update(
        self, small_sq_norms: Sequence[float], big_sq_norm: float, b_small: float, b_big: float
    ) -> None:
        """Add one step: the squared norms of its micro-batch gradients (batch ``b_small`` each) and of
        their mean, the step gradient (batch ``b_big``). All gradients are of *mean* losses."""
        if len(small_sq_norms) == 0:
            raise ValueError("small_sq_norms: need the squared norm of at least one micro-batch gradient")
        g2, trace = unbiased_estimates(
            math.fsum(small_sq_norms) / len(small_sq_norms), big_sq_norm, b_small, b_big
        )
        self._g2 = self.ema * self._g2 + (1 - self.ema) * g2
        self._trace = self.ema * self._trace + (1 - self.ema) * trace
        self.steps += 1

    def _corrected(self, average: float) -> float:
        return average / (1 - self.ema**self.steps) if self.steps else math.nan

    @property
    def g2(self) -> float:
        """Smoothed estimate of |G|² (NaN before the first update)."""
        return self._corrected(self._g2)

    @property
    def trace(self) -> float:
        """Smoothed estimate of tr(Σ) (NaN before the first update)."""
        return self._corrected(self._trace)

    @property
    def value(self) -> float:
        """B_simple = tr(Σ)/|G|²; NaN until an update, and while the |G|² estimate is not positive."""
        g2 = self.g2
        return self.trace / g2 if g2 > 0 else math.nan

    def state_dict(self) -> dict[str, float | int]:
        return {"ema": self.ema, "steps": self.steps, "g2": self._g2, "trace": self._trace}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.ema, self.steps = float(state["ema"]), int(state["steps"])
        self._g2, self._trace = float(state["g2"]), float(state["trace"])
