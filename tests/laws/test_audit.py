"""Extrapolation audit: the paper's Figure 1 procedure on curves from a known law."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.audit import extrapolation_audit
from archscale.laws.errors import IntervalWarning, LawDataError
from archscale.laws.loss_laws import ChinchillaLaw, WangLaw

SIZES = [2e8, 4e8, 7e8, 1.4e9, 2e9, 3e9]


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    """Loss curves (12 token counts each) of 6 MoE sizes with 8 experts, like the paper's 200M … 3B, with a
    run effect of 1 % shared by each curve's points and 0.1 % point noise."""
    rows = [
        {"run_id": f"moe-{n:.0e}", "model_scale": n, "tokens": d, "experts": 8.0}
        for n, d in itertools.product(SIZES, np.geomspace(2e9, 1e11, 12))
    ]
    table = pd.DataFrame(rows)
    run_effect = dict(zip(SIZES, np.random.default_rng(1).normal(0.0, 0.01, len(SIZES)), strict=True))
    table["loss"] = WangLaw.from_coefficients(WANG_TRUE).predict(table)
    table["loss"] *= np.exp(table["model_scale"].map(run_effect))
    return with_noise(table, 0.001, seed=5)


def test_fit_smaller_sizes_predict_the_largest(curves):
    audit = extrapolation_audit(
        ChinchillaLaw(size="model_scale", bootstrap=100), curves, column="model_scale"
    )
    assert audit.held_out == [3e9] and audit.n_train == 60 and len(audit.points) == 12
    assert audit.law.bootstrap_.resample == "run" and audit.law.bootstrap_.noise["n_groups"] == 5
    errors = audit.points.predicted / audit.points.observed - 1
    assert audit.mean_abs_rel_error == pytest.approx(np.mean(np.abs(errors)))
    # The run effect of the held-out curve is a shift the fitted curve cannot know: the prediction interval
    # of a new run adds the run-to-run noise estimated from the five fitted curves (~1 %), so it is wider
    # than the curve's band at every point and holds the whole held-out curve.
    assert audit.prediction_coverage == 1.0
    points = audit.points
    assert (points.prediction_upper - points.prediction_lower > points.upper - points.lower).all()
    payload = json.loads(json.dumps(audit.to_dict()))
    assert payload["n_test"] == 12 and payload["column"] == "model_scale"
    assert payload["prediction_coverage"] == 1.0
    assert {"observed", "predicted", "lower", "upper", "inside", "inside_prediction"} <= set(
        payload["points"][0]
    )


def test_too_few_sizes_give_no_interval_and_say_why(curves):
    four = curves[curves["model_scale"] <= 1.4e9]
    with pytest.warns(
        IntervalWarning, match="no interval, it needs more runs at distinct inputs .* this fit has 3"
    ):
        audit = extrapolation_audit(
            ChinchillaLaw(size="model_scale", bootstrap=50), four, column="model_scale"
        )
    assert audit.coverage is None and audit.prediction_coverage is None
    assert "this fit has 3" in audit.to_dict()["no_interval"]
    five = curves[curves["model_scale"] <= 2e9]  # four to fit: ~1 degree of freedom, still too few
    with pytest.warns(IntervalWarning, match="needs >= 5 runs at distinct inputs and this fit has 4"):
        extrapolation_audit(ChinchillaLaw(size="model_scale", bootstrap=50), five, column="model_scale")


def test_audit_refuses_holdouts_that_leave_nothing(curves):
    with pytest.raises(LawDataError, match="cannot hold out the 6 largest of 6 distinct 'model_scale'"):
        extrapolation_audit(ChinchillaLaw(size="model_scale"), curves, column="model_scale", n_holdout=6)
    with pytest.raises(LawDataError, match="holdout column 'params' is not in the table"):
        extrapolation_audit(ChinchillaLaw(size="model_scale"), curves, column="params")
