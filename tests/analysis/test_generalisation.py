"""Analysis 5: test loss against compute, the MoE/dense loss ratio and the data-efficiency gain."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from analysis_synthetic import TEST_EXPONENT, TEST_FACTOR, ladder, make_study

from archscale.analysis import (
    AllocationResult,
    AnalysisError,
    HyperparamResult,
    NoiseScaleResult,
    generalisation_vs_compute,
    replication_verdicts,
)


@pytest.fixture(scope="module")
def result(study):
    runs, _, evals = study
    return generalisation_vs_compute(runs, evals, bootstrap=50)


def test_known_advantage_of_moe_is_recovered(result):
    gain = result.data_efficiency_gain
    assert gain["value"] == pytest.approx(TEST_FACTOR["moe"] - 1, abs=0.03)  # 0.2: 1.2x the compute
    assert gain["lower"] < gain["value"] < gain["upper"] and gain["lower"] > 0
    ratio = result.loss_ratio
    assert ratio.ratio == pytest.approx(TEST_FACTOR["moe"] ** TEST_EXPONENT, abs=0.002)  # 0.9819
    assert ratio.upper < 1.0 and ratio.reference == pytest.approx(gain["compute"])
    assert result.fits["dense"].fit["coefficients"]["exponent"] == pytest.approx(TEST_EXPONENT, abs=0.005)
    json.dumps(result.to_dict(), allow_nan=False)


def test_stable_interval_keeps_the_last_four_halvings(result):
    points = result.points
    assert points.groupby("run_id").size().eq(7).all()  # evals at D/64 ... D
    assert points.groupby("run_id")["stable"].sum().eq(4).all()  # D/8, D/4, D/2, D
    assert points["run_id"].nunique() == 12  # one run per model: the ladder's, not the grid's


def test_without_evals_the_analysis_says_why(study):
    runs, _, evals = study
    assert generalisation_vs_compute(runs, evals, split="validation").skipped.startswith(
        "no 'validation' evals"
    )
    with pytest.raises(AnalysisError, match="stable_from must be a fraction"):
        generalisation_vs_compute(runs, evals, stable_from=1.5)


def test_one_run_per_family_gives_no_interval_and_no_verdict():
    runs, _, evals = make_study(ladder(sizes=(1e6,)), noise_scale=False)
    result = generalisation_vs_compute(runs, evals, bootstrap=50)
    assert result.loss_ratio.ratio < 1.0 and result.loss_ratio.lower is None
    assert result.data_efficiency_gain["lower"] is None
    assert any("no interval" in w and "this fit has 1" in w for w in result.fits["moe"].warnings)
    verdict = replication_verdicts(
        result, AllocationResult(table=pd.DataFrame()), HyperparamResult("contour"), NoiseScaleResult()
    )
    assert verdict.rows[0].verdict == "not tested" and "this fit has 1" in verdict.rows[0].note
