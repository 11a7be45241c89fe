"""Analysis 3: the contour procedure recovers B_opt = λ_B / L^α_B and lr_opt = λ / L^α from a grid."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import (
    ALPHA_B,
    ALPHA_LR,
    GRID_BATCHES,
    GRID_LRS,
    LAMBDA_B,
    LAMBDA_LR,
    grid,
    ladder,
    make_study,
)

from archscale.analysis import AnalysisError, optimal_hyperparameters
from archscale.analysis.hyperparams import refine


def test_refine_finds_the_parabola_vertex_in_log_space():
    values = pd.Series(
        [0.04 * (np.log(b) - np.log(700.0)) ** 2 + 3.0 for b in (256, 512, 1024, 2048)],
        index=[256, 512, 1024, 2048],
    )
    best, score, at_edge = refine(values)
    assert best == pytest.approx(700.0) and score == pytest.approx(3.0) and not at_edge
    edge = refine(pd.Series([3.0, 3.1, 3.2], index=[1, 2, 4]))
    assert edge == (1.0, 3.0, True)  # a minimum on the grid's edge only bounds the optimum
    beside_gap = refine(pd.Series([3.2, 3.0, np.nan], index=[1, 2, 4]))
    assert beside_gap == (2.0, 3.0, True)


@pytest.fixture(scope="module")
def contour(study):
    runs, curve, _ = study
    return optimal_hyperparameters(runs, curve, bootstrap=30)


@pytest.mark.parametrize("family", ["dense", "moe"])
def test_contour_recovers_both_laws(contour, family):
    batch, lr = contour.batch_fits[family].fit, contour.lr_fits[family].fit
    assert batch["coefficients"]["exponent"] == pytest.approx(-ALPHA_B, abs=0.08)
    assert batch["coefficients"]["lambda"] == pytest.approx(LAMBDA_B[family], rel=0.1)
    assert lr["coefficients"]["exponent"] == pytest.approx(-ALPHA_LR, abs=0.08)
    assert lr["coefficients"]["lambda"] == pytest.approx(LAMBDA_LR[family], rel=0.1)
    lo, hi = batch["intervals"]["exponent"]
    assert lo < batch["coefficients"]["exponent"] < hi
    assert batch["bootstrap"]["resample"] == "run"  # whole grids (model sizes) are resampled


def test_contour_compares_the_families_at_equal_loss(contour):
    assert contour.batch_comparison.ratio == pytest.approx(0.6, abs=0.02)  # LAMBDA_B moe / dense
    assert contour.lr_comparison.ratio == pytest.approx(1.5, abs=0.03)
    assert contour.batch_comparison.upper < 1.0 < contour.lr_comparison.lower
    assert contour.batch_comparison.band_overlap == 0.0  # the bands are narrow and 40 % apart
    assert not contour.batch_comparison.extrapolated


def test_one_optimum_per_token_count_and_the_heatmaps(contour):
    assert len(contour.grids) == 6 and all(g["skipped"] is None for g in contour.grids)
    assert contour.grids[0]["batch_sizes"] == [128, 256, 512, 1024, 2048] and contour.grids[0]["runs"] == 20
    optima = pd.DataFrame(contour.batch_optima)
    assert (optima.groupby("grid").size() == 12).all()
    assert not optima["at_edge"].any()
    maps = contour.heatmaps
    assert sorted((h.kind, h.axis) for h in maps).count(("dense", "batch_size")) == 3
    heat = next(h for h in maps if h.axis == "lr")
    assert np.asarray(heat.loss).shape == (4, 12) and heat.fixed in (128, 256, 512, 1024, 2048)
    assert len(heat.optimum) == len(heat.tokens) == 12
    json.dumps(contour.to_dict(), allow_nan=False)


def test_minicpm_variant_recovers_the_batch_size_law(study):
    runs, curve, _ = study
    result = optimal_hyperparameters(runs, curve, method="minicpm", bootstrap=30)
    optima = pd.DataFrame(result.batch_optima)
    assert (optima["loss"] == optima["level"]).all()  # L is the loss level itself
    assert result.batch_fits["dense"].fit["coefficients"]["exponent"] == pytest.approx(-ALPHA_B, abs=0.1)
    assert result.batch_comparison.ratio == pytest.approx(0.6, abs=0.03)
    assert result.lr_comparison.ratio == pytest.approx(1.5, abs=0.06)


def test_without_a_grid_the_analysis_says_why():
    runs, curve, _ = make_study(ladder(), noise_scale=False)
    result = optimal_hyperparameters(runs, curve)
    assert result.skipped.startswith("no batch-size × LR grid")
    assert result.batch_fits == {} and result.heatmaps == []


def test_optima_on_the_edge_are_not_fitted():
    above = [
        replace(r, batch_tokens=4 * r.batch_tokens) for r in grid(kinds=("dense",)) if r.batch_tokens >= 512
    ]
    runs, curve, _ = make_study(above, noise_scale=False)  # batches 2048-8192 tokens, all above B_opt
    result = optimal_hyperparameters(runs, curve, bootstrap=0)
    assert result.skipped is None
    assert "lie on the edge of the batch-size grid" in result.batch_fits["dense"].skipped
    assert result.batch_fits["moe"].skipped == "no moe grid" and result.batch_comparison is None
    assert result.lr_fits["dense"].skipped is None  # the LR grid still brackets its optimum


def test_a_sweep_of_two_values_is_named_as_the_reason():
    runs, curve, _ = make_study(
        [r for r in grid(kinds=("dense",)) if r.batch_tokens >= 1024], noise_scale=False
    )
    result = optimal_hyperparameters(runs, curve, bootstrap=0)
    assert "varies the batch-size over 3 or more values" in result.batch_fits["dense"].skipped
    assert result.lr_fits["dense"].skipped is None


def test_a_cross_shaped_design_recovers_the_optima():
    """A batch-size sweep at one LR and an LR sweep at one batch size, as the micro study runs them: each
    axis is read along its own sweep (the synthetic penalty is separable, so the optimum along a slice is
    the true one)."""
    cross = [r for r in grid() if r.lr == GRID_LRS[2] or r.batch_tokens == GRID_BATCHES[2]]
    runs, curve, _ = make_study(cross, noise_scale=False)
    result = optimal_hyperparameters(runs, curve, bootstrap=0)
    for family in ("dense", "moe"):
        batch, lr = result.batch_fits[family].fit, result.lr_fits[family].fit
        assert batch["coefficients"]["exponent"] == pytest.approx(-ALPHA_B, abs=0.25)
        assert lr["coefficients"]["exponent"] == pytest.approx(-ALPHA_LR, abs=0.25)
    assert result.batch_comparison.ratio == pytest.approx(0.6, rel=0.1)
    assert result.lr_comparison.ratio == pytest.approx(1.5, rel=0.1)
    assert {m.axis: m.fixed for m in result.heatmaps if m.kind == "dense"} == {
        "batch_size": GRID_LRS[2], "lr": GRID_BATCHES[2]
    }  # fmt: skip


def test_bad_options_are_refused(study):
    runs, curve, _ = study
    with pytest.raises(AnalysisError, match="method must be one of"):
        optimal_hyperparameters(runs, curve, method="isoflop")
    with pytest.raises(AnalysisError, match=r"runs table lacks column\(s\) \['batch_tokens'\]"):
        optimal_hyperparameters(runs.drop(columns="batch_tokens"), curve)
