"""The matched comparisons on Step Law's released grids (../shared/data/steplaw): recorded outcomes, and
the fits checked against numpy's least squares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archscale.analysis.public import steplaw_fair_comparisons
from archscale.analysis.verdicts import NOT_SUPPORTED, NOT_TESTED, SUPPORTED


@pytest.fixture(scope="module")
def fair(shared_data):
    return steplaw_fair_comparisons(shared_data / "steplaw", bootstrap=100, seed=0)


def comparisons(fair, target, estimator):
    found = next(v for v in fair.verdicts if v.target == target and v.estimator == estimator)
    return {m.label: m for m in found.comparisons}, found.verdict


def test_the_fits_and_r2_equal_numpys_least_squares(fair):
    """lr_opt = c·N^a·D^b on dense's interior smoothed optima, and its R², by hand with numpy."""
    optima = pd.DataFrame(fair.optima)
    rows = optima[(optima["kind"] == "dense") & (optima["estimator"] == "smoothed") & ~optima["edge_lr"]]
    design = np.column_stack([np.ones(len(rows)), np.log(rows["N_active"]), np.log(rows["tokens"])])
    logy = np.log(rows["lr"].to_numpy())
    coef, residual, *_ = np.linalg.lstsq(design, logy, rcond=None)
    fit = next(
        f
        for f in fair.fits
        if (f.family, f.target, f.estimator, f.basis) == ("dense", "lr", "smoothed", "(b)")
    )
    assert [fit.fit["coefficients"][k] for k in ("exponent_N_active", "exponent_tokens")] == pytest.approx(
        coef[1:]
    )
    assert fit.r2 == pytest.approx(1 - residual[0] / np.sum((logy - logy.mean()) ** 2))


def test_size_and_tokens_explain_the_optima_that_loss_does_not(fair):
    """The issue's finding: loss alone explains little of dense's lr_opt, (N, D) most of it."""
    fits = {(f.basis, f.estimator): f for f in fair.fits if (f.family, f.target) == ("dense", "lr")}
    for estimator in ("cell", "smoothed"):
        assert fits["(a)", estimator].r2 < 0.1 and fits["(b)", estimator].r2 > 0.75


def test_no_verdict_at_matched_total_size(fair):
    """Every MoE has 2.15B total parameters, dense at most 1.07B: (d) would extrapolate, so it is not judged."""
    for found in fair.verdicts:
        total = {m.label: m for m in found.comparisons}["(d)"]
        assert (
            total.verdict == NOT_TESTED
            and total.reference is None
            and "N ranges do not overlap" in total.note
        )


def test_recorded_step_law_outcome(fair):
    """Recorded: at equal loss the smoothed B_opt ratio is the panel's 0.49; matched on active parameters and
    tokens it moves toward 1; the lr_opt claim fails under every comparison the data allow. The smoothed
    optima never sit on a grid edge; the cell and smoothed optima lie within a factor 1.7 of each other."""
    batch, _ = comparisons(fair, "batch_size", "smoothed")
    assert batch["(a)"].ratio == pytest.approx(0.49, abs=0.02) and batch["(a)"].verdict == SUPPORTED
    assert batch["(a)"].ratio < batch["(b)"].ratio < 1.0
    lr, combined = comparisons(fair, "lr", "smoothed")
    assert all(lr[k].verdict == NOT_SUPPORTED for k in ("(a)", "(b)", "(c)"))
    assert combined.verdict == NOT_SUPPORTED
    assert fair.edges["smoothed"] == {"batch_size": [0, 33], "lr": [0, 33]}
    assert max(fair.apart["lr"]["max"], fair.apart["batch_size"]["max"]) < 1.7
