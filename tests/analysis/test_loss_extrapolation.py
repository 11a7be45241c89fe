"""Analysis 1: Eq. 5 fitted on the smaller models' curves predicts the largest model's curve."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import DENSE_LAW, LADDER_SIZES, MOE_LAW, WANG, ladder, make_study, wang_law

from archscale.analysis import AnalysisError, loss_law_extrapolation, loss_points


@pytest.fixture(scope="module")
def result(points):
    return loss_law_extrapolation(points, bootstrap=30)


@pytest.mark.parametrize(("family", "law"), [("dense", DENSE_LAW), ("moe", MOE_LAW)])
def test_each_family_recovers_its_law_and_predicts_the_largest(result, family, law):
    e = result.extrapolations[family]
    assert e.skipped is None
    fitted = e.law["coefficients"]
    assert fitted["alpha"] == pytest.approx(law["alpha"], abs=0.02)
    assert fitted["beta"] == pytest.approx(law["beta"], abs=0.02)
    assert fitted["sigma"] == pytest.approx(law["sigma"], abs=0.05)
    assert e.mean_abs_rel_error < 0.003 and e.max_abs_rel_error < 0.006  # 0.3 % noise per step, smoothed
    held = [c for c in e.curves if c.role == "held out"]
    assert len(held) == 1 and held[0].model_scale == max(LADDER_SIZES) and held[0].kind == family
    assert e.held_out == [held[0].run_id]
    assert len(held[0].lower) == len(held[0].prediction_lower) == len(held[0].tokens) == 24
    band = np.array([held[0].lower, held[0].upper])
    prediction = np.array([held[0].prediction_lower, held[0].prediction_upper])
    assert (band[0] <= held[0].predicted).all() and (held[0].predicted <= band[1]).all()
    assert (prediction[1] - prediction[0] >= band[1] - band[0]).all()  # a new run adds its own noise
    observed, predicted = np.array(held[0].observed), np.array(held[0].predicted)
    assert np.mean(np.abs(predicted / observed - 1)) == pytest.approx(e.mean_abs_rel_error)
    # The law is right, so only noise is left: the band (parameters only) misses much of the held-out curve
    # (measured 46 % / 38 %), the prediction interval, which adds the noise, holds most of it (96 % / 88 %).
    assert e.prediction_coverage >= 0.8 and e.prediction_coverage > e.coverage + 0.3
    assert len([c for c in e.curves if c.role == "fit"]) == 5 and e.n_train == 5 * 24


def test_joint_fit_recovers_the_expert_exponent():
    runs, curve, _ = make_study(ladder(law=wang_law), seed=1)
    joint = loss_law_extrapolation(loss_points(runs, curve), bootstrap=0).extrapolations["joint"]
    assert joint.law["coefficients"]["gamma"] == pytest.approx(WANG["gamma"], abs=0.02)
    assert joint.law["coefficients"]["alpha"] == pytest.approx(WANG["alpha"], abs=0.02)
    assert joint.mean_abs_rel_error < 0.003
    assert sorted(c.kind for c in joint.curves if c.role == "held out") == ["dense", "moe"]
    assert joint.coverage is None and joint.curves[0].lower == []  # no bootstrap, no band


def test_result_is_json_safe(result):
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(payload["extrapolations"]) == {"dense", "moe", "joint"}
    assert payload["extrapolations"]["moe"]["law"]["intervals"]["alpha_N"][0] is not None


def test_too_few_sizes_are_skipped_with_the_reason(points):
    two_sizes = points[points["model_scale"] <= 2e6]
    result = loss_law_extrapolation(two_sizes, bootstrap=0)
    assert result.skipped is not None
    assert "needs at least 3 model sizes per family" in result.extrapolations["dense"].skipped
    assert "have dense: 2" in result.extrapolations["dense"].skipped
    dense_only = loss_law_extrapolation(points[points["kind"] == "dense"], bootstrap=0)
    assert dense_only.skipped is None
    assert dense_only.extrapolations["moe"].skipped == "no moe runs"
    assert dense_only.extrapolations["joint"].skipped == "the joint fit needs both dense and MoE runs"


def test_missing_columns_are_named(points):
    with pytest.raises(AnalysisError, match=r"loss points table lacks column\(s\) \['experts'\]"):
        loss_law_extrapolation(points.drop(columns="experts"))


def test_a_fit_on_a_bound_is_marked_degenerate(result):
    """Curves with no irreducible loss drive σ onto its lower bound: the extrapolation says the fit is a
    constraint, not a law, where a well-posed fit (the synthetic ladder, σ = 1.5) is not marked."""
    sizes, tokens = np.geomspace(1e6, 3.2e7, 6), np.geomspace(1e6, 2e7, 8)
    noise = np.random.default_rng(3).normal(0.0, 0.01, len(sizes) * len(tokens))
    rows = [
        {"run_id": f"r{i}", "kind": "dense", "model_scale": n, "experts": 1.0, "tokens": d,
         "loss": (40.0 / n**0.3 + 60.0 / d**0.3) * np.exp(noise[i * len(tokens) + j])}
        for i, n in enumerate(sizes) for j, d in enumerate(tokens)
    ]  # fmt: skip
    degenerate = loss_law_extrapolation(pd.DataFrame(rows), bootstrap=0).extrapolations["dense"]
    assert degenerate.degenerate is not None and "log_sigma" in degenerate.degenerate
    assert result.extrapolations["dense"].degenerate is None
