"""MoE against dense at equal footing: the ratio of two fitted power laws at one reference input value,
with a bootstrap interval, and the overlap of their bands (the paper's 65.8 % / 76.2 %).

The reference is the geometric centre of the input range both families observed (e.g. the losses both
reached), so neither fit is extrapolated; when the ranges do not meet it is the centre of the gap between
them and the comparison says it is extrapolated. The two families are bootstrapped independently, so
pairing their k-th resamples draws from the joint sampling distribution of the ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archscale.analysis.powerfit import PowerFit
from archscale.analysis.results import Result
from archscale.laws import PowerLaw
from archscale.laws.bootstrap import percentile_interval

OVERLAP_POINTS = 64


@dataclass
class Comparison(Result):
    """``ratio`` = MoE ÷ dense of ``quantity`` at ``input`` = ``reference``, with its percentile interval.

    ``band_overlap``: mean over the shared input range of |band_MoE ∩ band_dense| / |band_MoE ∪ band_dense|,
    lengths taken in log space (None without a shared range or a bootstrap). ``range_overlap``: the same
    ratio for the two families' observed input ranges.
    """

    quantity: str
    input: str
    reference: float
    extrapolated: bool
    ratio: float
    lower: float | None
    upper: float | None
    level: float | None
    band_overlap: float | None
    range_overlap: float


def _reference(moe: tuple[float, float], dense: tuple[float, float]) -> tuple[float, bool, tuple | None]:
    lo, hi = max(moe[0], dense[0]), min(moe[1], dense[1])
    if lo <= hi:
        return math.sqrt(lo * hi), False, (lo, hi)
    return math.sqrt(lo * hi), True, None  # the centre of the gap (here hi < lo)


def _interval_overlap(lo_a, hi_a, lo_b, hi_b) -> np.ndarray:
    """|[lo_a, hi_a] ∩ [lo_b, hi_b]| / |union|, elementwise on log values (1 where both are points)."""
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)
    union = np.maximum(hi_a, hi_b) - np.minimum(lo_a, lo_b)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def ratio_at(
    moe: PowerLaw, dense: PowerLaw, at: dict[str, float]
) -> tuple[float, float | None, float | None, float | None]:
    """MoE ÷ dense of two fitted laws at the inputs ``at`` (each law reads the ones it has) → (ratio, lower,
    upper, level); no interval unless both were bootstrapped. The families' k-th refits are paired."""
    moe_at = {c: np.array([at[c]]) for c in moe.inputs}
    dense_at = {c: np.array([at[c]]) for c in dense.inputs}
    ratio = float(moe.predict(moe_at)[0] / dense.predict(dense_at)[0])
    if moe.bootstrap_ is None or dense.bootstrap_ is None:
        return ratio, None, None, None
    moe_draws, dense_draws = moe.predict_samples(moe_at)[:, 0], dense.predict_samples(dense_at)[:, 0]
    k = min(len(moe_draws), len(dense_draws))
    lo, hi = percentile_interval(moe_draws[:k] / dense_draws[:k], moe.level_)
    return ratio, float(lo), float(hi), moe.level_


def compare(
    moe: PowerLaw, dense: PowerLaw, *, moe_range: tuple[float, float], dense_range: tuple[float, float]
) -> Comparison:
    """Compare two fits of the same ``target(input)`` power law over the inputs each family observed."""
    column, quantity = moe.inputs[0], moe.target
    reference, extrapolated, shared = _reference(moe_range, dense_range)
    ratio, lower, upper, level = ratio_at(moe, dense, {column: reference})
    band_overlap = None
    if level is not None and shared is not None:
        xs = {column: np.geomspace(*shared, OVERLAP_POINTS)}
        (m_lo, m_hi), (d_lo, d_hi) = moe.predict_interval(xs), dense.predict_interval(xs)
        overlap = _interval_overlap(np.log(m_lo), np.log(m_hi), np.log(d_lo), np.log(d_hi))
        band_overlap = float(overlap.mean())
    log_ranges = np.log([*moe_range, *dense_range])
    range_overlap = float(_interval_overlap(*log_ranges))
    return Comparison(
        quantity=quantity,
        input=column,
        reference=reference,
        extrapolated=extrapolated,
        ratio=ratio,
        lower=lower,
        upper=upper,
        level=level,
        band_overlap=band_overlap,
        range_overlap=range_overlap,
    )


def compare_families(fitted: dict[str, tuple[PowerFit, PowerLaw | None]]) -> Comparison | None:
    """:func:`compare` on the ``moe`` and ``dense`` results of :func:`~archscale.analysis.powerfit.fit_power`,
    over the inputs each observed; None when either could not be fitted."""
    (moe_fit, moe), (dense_fit, dense) = fitted["moe"], fitted["dense"]
    if moe is None or dense is None:
        return None
    return compare(moe, dense, moe_range=moe_fit.x_range, dense_range=dense_fit.x_range)
