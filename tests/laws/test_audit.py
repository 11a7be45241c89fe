"""Extrapolation audit: the paper's Figure 1 procedure on curves from a known law."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.audit import extrapolation_audit
from archscale.laws.errors import LawDataError, ResamplingWarning
from archscale.laws.loss_laws import ChinchillaLaw, WangLaw


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    """Loss curves (12 token counts each) of 4 MoE sizes with 8 experts, like the paper's 200M … 1.5B."""
    rows = [
        {"run_id": f"moe-{n:.0e}", "model_scale": n, "tokens": d, "experts": 8.0}
        for n, d in itertools.product([2e8, 4e8, 1.4e9, 3e9], np.geomspace(2e9, 1e11, 12))
    ]
    table = pd.DataFrame(rows)
    table["loss"] = WangLaw.from_coefficients(WANG_TRUE).predict(table)
    return with_noise(table, 0.003, seed=5)


def test_fit_smaller_sizes_predict_the_largest(curves):
    with pytest.warns(ResamplingWarning, match="only 3 runs to resample"):
        audit = extrapolation_audit(
            ChinchillaLaw(size="model_scale"), curves, column="model_scale", bootstrap=100
        )
    assert audit.held_out == [3e9] and audit.n_train == 36 and len(audit.points) == 12
    assert audit.law.bootstrap_["resample"] == "run"
    errors = audit.points.predicted / audit.points.observed - 1
    assert audit.mean_abs_rel_error == pytest.approx(np.mean(np.abs(errors)))
    assert audit.mean_abs_rel_error < 0.01  # the law is right, so only noise and fit error remain
    assert 0.0 <= audit.coverage <= 1.0
    assert (audit.points.lower <= audit.points.upper).all()
    payload = json.loads(json.dumps(audit.to_dict()))
    assert payload["n_test"] == 12 and payload["column"] == "model_scale"
    assert {"observed", "predicted", "lower", "upper", "inside", "run_id"} <= set(payload["points"][0])


def test_audit_refuses_holdouts_that_leave_nothing(curves):
    with pytest.raises(LawDataError, match="cannot hold out the 4 largest of 4 distinct 'model_scale'"):
        extrapolation_audit(ChinchillaLaw(size="model_scale"), curves, column="model_scale", n_holdout=4)
    with pytest.raises(LawDataError, match="holdout column 'params' is not in the table"):
        extrapolation_audit(ChinchillaLaw(size="model_scale"), curves, column="params")
