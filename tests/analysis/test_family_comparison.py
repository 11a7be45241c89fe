"""MoE ÷ dense at a shared reference, and the overlap measure of the paper's Figures 3 and 5."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from archscale.analysis import compare
from archscale.analysis.compare import compare_families
from archscale.analysis.powerfit import fit_families
from archscale.laws import PowerLaw


def _fit(lam: float, exponent: float, losses: np.ndarray, noise: float, seed: int) -> PowerLaw:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {"loss": losses, "batch_size": lam * losses**exponent * np.exp(rng.normal(0, noise, len(losses)))}
    )
    return PowerLaw(target="batch_size", inputs=("loss",), loss="squared", bootstrap=200, seed=seed).fit(
        table
    )


def test_ratio_at_the_centre_of_the_shared_range():
    moe = PowerLaw.from_coefficients(
        {"lambda": 600.0, "exponent": -2.0}, target="batch_size", inputs=("loss",)
    )
    dense = PowerLaw.from_coefficients(
        {"lambda": 1000.0, "exponent": -1.0}, target="batch_size", inputs=("loss",)
    )
    c = compare(moe, dense, moe_range=(2.0, 8.0), dense_range=(4.0, 16.0))
    assert c.reference == pytest.approx(math.sqrt(4.0 * 8.0)) and not c.extrapolated
    assert c.ratio == pytest.approx(0.6 * c.reference**-1)  # (600 L^-2) / (1000 L^-1)
    assert c.lower is None and c.band_overlap is None  # no bootstrap, no interval
    assert c.range_overlap == pytest.approx(math.log(2) / math.log(8))  # log-length of [4, 8] over [2, 16]
    apart = compare(moe, dense, moe_range=(1.0, 2.0), dense_range=(8.0, 16.0))
    assert apart.extrapolated and apart.reference == pytest.approx(4.0) and apart.range_overlap == 0.0


def test_band_overlap_is_high_for_one_law_and_zero_for_distinct_laws():
    losses = np.geomspace(2.5, 6.0, 30)
    a, b = _fit(1000.0, -2.0, losses, 0.05, seed=1), _fit(1000.0, -2.0, losses, 0.05, seed=2)
    same = compare(a, b, moe_range=(2.5, 6.0), dense_range=(2.5, 6.0))
    assert same.band_overlap > 0.3 and same.lower < 1.0 < same.upper
    far = compare(_fit(500.0, -2.0, losses, 0.05, seed=3), b, moe_range=(2.5, 6.0), dense_range=(2.5, 6.0))
    assert far.band_overlap == 0.0 and far.upper < 1.0
    assert far.ratio == pytest.approx(0.5, rel=0.1)


def test_families_fitted_with_one_seed_are_not_paired_by_accident():
    """4 runs per family, a size-dependent offset shared by both, MoE exactly 0.9819 × dense: were the two
    families' resamples drawn from one stream, every resample would give the ratio 0.9819 exactly and the
    interval would collapse to that point (and the verdict to "supported")."""
    compute = np.geomspace(1e15, 1e18, 6)
    offsets = np.array([0.01, -0.012, 0.006, -0.004])  # one per run, the same for dense and MoE
    rows = [
        {
            "run_id": f"{kind}{run}",
            "kind": kind,
            "compute": c,
            "loss": scale * 20 * c**-0.05 * math.exp(offset),
        }
        for kind, scale in (("dense", 1.0), ("moe", 0.9819))
        for run, offset in enumerate(offsets)
        for c in compute * 3.0**run
    ]
    fitted = fit_families(pd.DataFrame(rows), target="loss", input="compute", bootstrap=200, seed=0)
    comparison = compare_families(fitted)
    assert comparison.ratio == pytest.approx(0.9819)
    assert comparison.upper - comparison.lower > 0.005
    assert comparison.lower < 0.9819 < comparison.upper
