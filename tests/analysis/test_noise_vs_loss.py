"""Analysis 4: measured B_simple against the loss; MoE ÷ dense at equal loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_synthetic import NOISE_C, NOISE_EXPONENT, ladder, make_study

from archscale.analysis import noise_scale_vs_loss


@pytest.fixture(scope="module")
def result(study):
    runs, curve, _ = study
    return noise_scale_vs_loss(runs, curve, bootstrap=30)


def test_power_law_and_ratio_are_recovered(result):
    for family in ("dense", "moe"):
        coefficients = result.fits[family].fit["coefficients"]
        assert coefficients["exponent"] == pytest.approx(-NOISE_EXPONENT, abs=0.1)
        assert coefficients["lambda"] == pytest.approx(NOISE_C[family], rel=0.1)
    c = result.comparison
    assert c.ratio == pytest.approx(0.6, abs=0.01)  # NOISE_C moe / dense
    assert c.lower <= c.ratio <= c.upper < 1.0
    assert result.dropped == 0
    assert set(result.points["kind"]) == {"dense", "moe"}
    json.dumps(result.to_dict(), allow_nan=False)


def test_non_positive_estimates_are_dropped_and_counted(study):
    runs, curve, _ = study
    curve = curve.copy()
    first_ladder_run = runs.loc[runs["D"] == 2**21, "run_id"].iloc[0]
    curve.loc[curve["run_id"] == first_ladder_run, "noise_scale"] *= -1
    result = noise_scale_vs_loss(runs, curve, bootstrap=0)
    assert result.dropped == 24 and first_ladder_run not in set(result.points["run_id"])


def test_without_noise_scale_data_the_analysis_says_why():
    runs, curve, _ = make_study(ladder(), noise_scale=False)
    assert "needs 2 or more micro-batches per step" in noise_scale_vs_loss(runs, curve).skipped
    missing = noise_scale_vs_loss(runs, curve.drop(columns="noise_scale"))
    assert missing.skipped == "the curve table has no noise_scale column"
    only_dense = curve.assign(noise_scale=np.where(curve["run_id"].str.startswith("dense"), 100.0, np.nan))
    result = noise_scale_vs_loss(runs, only_dense, bootstrap=0)
    assert result.fits["moe"].skipped == "no moe points" and result.comparison is None
