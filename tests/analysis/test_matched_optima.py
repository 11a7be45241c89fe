"""Matched comparisons of MoE and dense optima: on synthetic families whose lr_opt(N_active, D) is known,
the comparisons that hold size and tokens fixed find the architecture effect (or its absence) where the
equal-loss comparison is fooled by where each family's grids sit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archscale.analysis.matched import Matched, combine, fair_comparisons, optima_table, shared_reference
from archscale.analysis.verdicts import DEPENDS, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, SUPPORTED
from archscale.laws.hyper import cell_optimum, quadratic_optimum
from archscale.laws.resampling import spawn_seeds

LR_CURVE, BATCH_CURVE, NOISE = 0.02, 0.01, 4e-4  # loss per (log lr)², per (log batch)²; loss noise s.d.
LR_EXPONENTS = (-0.7, 0.3)  # lr_opt ∝ N_active^-0.7 · D^0.3 in both families (Step Law's law)
EXPERTS = 8  # MoE total parameters = 8 × active


def true_lr(n_active: float, tokens: float, effect: float) -> float:
    return 3e-4 * (n_active / 1e8) ** LR_EXPONENTS[0] * (tokens / 1e10) ** LR_EXPONENTS[1] * effect


def true_batch(tokens: float) -> float:
    return 2e5 * (tokens / 1e10) ** 0.5


def cells_of(lrs, batches, lr_opt, batch_opt, floor, noise) -> pd.Series:
    """Loss over a (batch_size, lr) grid: a bowl in logs around the true optimum, plus noise."""
    index = pd.MultiIndex.from_product([batches, lrs], names=["batch_size", "lr"])
    b, lr = (index.get_level_values(k).to_numpy(float) for k in ("batch_size", "lr"))
    loss = floor + LR_CURVE * np.log(lr / lr_opt) ** 2 + BATCH_CURVE * np.log(b / batch_opt) ** 2
    return pd.Series(loss + noise, index=index)


def families(effect: float, seed: int) -> pd.DataFrame:
    """Dense: 1e8–8e8 parameters at 20–180 tokens per parameter; MoE: 2e8–1.6e9 active (8× that in total) at
    5–45 tokens per active parameter and ``effect`` × dense's lr_opt. Each grid is 9 lrs × 7 batch sizes
    centred near the truth (as a sweep is), at a random offset so the optimum falls between cells."""
    layout = {
        "dense": [(n, n * r) for n in (1e8, 2e8, 4e8, 8e8) for r in (20, 60, 180)],
        "moe": [(n, n * r) for n in (2e8, 4e8, 8e8, 1.6e9) for r in (5, 15, 45)],
    }
    grids = []
    rng = np.random.default_rng(spawn_seeds(seed, 1)[0])
    for kind, pairs in layout.items():
        for n_active, tokens in pairs:
            lr_opt = true_lr(n_active, tokens, effect if kind == "moe" else 1.0)
            batch_opt = true_batch(tokens)
            lrs = lr_opt * np.sqrt(2.0) ** (np.arange(9) - 4 + rng.uniform(-0.5, 0.5))
            batches = batch_opt * 2.0 ** (np.arange(7) - 3 + rng.uniform(-0.5, 0.5))
            scale = 3.0 * n_active if kind == "moe" else n_active  # MoE: a lower loss at equal active size
            floor = 1.7 + 400 / scale**0.34 + 400 / tokens**0.28
            cells = cells_of(lrs, batches, lr_opt, batch_opt, floor, rng.normal(0, NOISE, 63))
            total = n_active * (EXPERTS if kind == "moe" else 1)
            info = {"grid": len(grids), "kind": kind, "N": total, "N_active": n_active, "tokens": tokens}
            grids.append((info, cells))
    return optima_table(grids)


@pytest.fixture(scope="module")
def no_effect():
    return fair_comparisons(families(1.0, seed=1), bootstrap=200, seed=2)


@pytest.fixture(scope="module")
def doubled():
    return fair_comparisons(families(2.0, seed=3), bootstrap=200, seed=4)


def verdict(result, target="lr", estimator="smoothed"):
    return next(v for v in result.verdicts if v.target == target and v.estimator == estimator)


def test_the_quadratic_finds_the_vertex_between_cells():
    """A bowl with a cross term: the vertex solves the 2 × 2 system by hand; the lowest cell is the nearest."""
    lrs, batches = 1e-3 * 2.0 ** np.arange(7), 1e5 * 2.0 ** np.arange(7)
    index = pd.MultiIndex.from_product([batches, lrs], names=["batch_size", "lr"])
    x = np.log(index.get_level_values("lr") / 5.1e-3)
    y = np.log(index.get_level_values("batch_size") / 1.3e6)
    cells = pd.Series(2.0 + 0.03 * x**2 + 0.02 * y**2 + 0.01 * x * y, index=index)
    smoothed = quadratic_optimum(cells)
    # ∂/∂x: 0.06x + 0.01y = 0, ∂/∂y: 0.04y + 0.01x = 0 → x = y = 0: the vertex is (5.1e-3, 1.3e6), loss 2.
    assert smoothed["lr"] == pytest.approx(5.1e-3, rel=1e-9)
    assert smoothed["batch_size"] == pytest.approx(1.3e6, rel=1e-9)
    assert smoothed["loss"] == pytest.approx(2.0, abs=1e-12) and smoothed["skipped"] is None
    cell = cell_optimum(cells)
    assert (cell["lr"], cell["batch_size"]) == (4e-3, 1.6e6)  # the nearest cell in log space on each axis
    assert not (cell["edge_lr"] or cell["edge_batch"] or smoothed["edge_lr"] or smoothed["edge_batch"])


def test_an_optimum_beyond_the_grid_is_flagged_and_left_out_of_the_fits():
    """lr_opt above the largest lr: both estimators flag the lr axis (not the batch axis), and the
    comparisons drop that grid's lr optimum but keep its batch optimum."""
    lrs, batches = 1e-3 * 2.0 ** np.arange(6), 1e5 * 2.0 ** np.arange(6)
    cells = cells_of(lrs, batches, lr_opt=0.1, batch_opt=5e5, floor=2.0, noise=0.0)
    cell, smoothed = cell_optimum(cells), quadratic_optimum(cells)
    assert cell["edge_lr"] and smoothed["edge_lr"] and cell["lr"] == lrs.max()
    assert smoothed["lr"] == pytest.approx(lrs.max())  # kept at the end it bounds
    assert not cell["edge_batch"] and not smoothed["edge_batch"]
    optima = families(1.0, seed=1)
    edge_grid = optima["grid"].max() + 1
    extra = optima_table(
        [({"grid": edge_grid, "kind": "dense", "N": 1e8, "N_active": 1e8, "tokens": 2e9}, cells)]
    )
    result = fair_comparisons(pd.concat([optima, extra], ignore_index=True), bootstrap=0)
    assert result.edges["smoothed"]["lr"] == [1, 25] and result.edges["smoothed"]["batch_size"] == [0, 25]
    dense = {(f.target, f.basis): f for f in result.fits if f.family == "dense" and f.estimator == "smoothed"}
    assert dense["lr", "(b)"].n_edge == 1 and dense["lr", "(b)"].fit["n_points"] == 12
    assert dense["batch_size", "(b)"].n_edge == 0 and dense["batch_size", "(b)"].fit["n_points"] == 13


def test_without_an_effect_equal_loss_is_fooled_and_matched_sizes_are_not(no_effect):
    """No architecture effect, but MoE's grids sit at more active parameters and fewer tokens per
    parameter: at equal loss its lr_opt looks smaller; matched on active parameters and tokens the ratio is
    1 within its interval, so the claim depends on the comparison."""
    for estimator in ("cell", "smoothed"):
        found = verdict(no_effect, estimator=estimator)
        equal, active = found.comparisons[0], found.comparisons[1]
        assert equal.verdict == NOT_SUPPORTED and equal.upper < 0.9
        assert active.verdict == INCONCLUSIVE and active.lower < 1.0 < active.upper
        assert active.ratio == pytest.approx(1.0, abs=0.1)
        assert found.verdict.verdict == DEPENDS and f"{INCONCLUSIVE} under (b)" in found.verdict.note


def test_a_known_effect_is_recovered_when_sizes_and_tokens_are_matched(doubled):
    """MoE's lr_opt is twice dense's at every (N_active, D): matched comparison (b) finds 2 inside its
    interval and supports the claim, while equal loss, confounded by placement, does not."""
    found = verdict(doubled)
    equal, active = found.comparisons[0], found.comparisons[1]
    assert active.ratio == pytest.approx(2.0, rel=0.1) and active.lower < 2.0 < active.upper
    assert active.verdict == SUPPORTED
    assert equal.verdict != SUPPORTED and equal.ratio < 1.3
    assert found.verdict.verdict == DEPENDS


def test_the_optima_laws_recover_the_exponents_and_explain_more_than_loss(no_effect):
    """lr_opt = c·N_active^a·D^b recovers (−0.7, 0.3) within its interval and explains nearly all of the log
    optima's variance; the fit on loss alone explains less."""
    fits = {(f.family, f.basis): f for f in no_effect.fits if f.target == "lr" and f.estimator == "smoothed"}
    for family in ("dense", "moe"):
        active = fits[family, "(b)"]
        for name, truth in zip(("exponent_N_active", "exponent_tokens"), LR_EXPONENTS, strict=True):
            lo, hi = active.fit["intervals"][name]
            assert lo < truth < hi and active.fit["coefficients"][name] == pytest.approx(truth, abs=0.08)
        assert active.r2 > 0.95 and fits[family, "(a)"].r2 < active.r2 - 0.1


def test_a_comparison_outside_the_shared_range_gets_no_verdict(no_effect):
    """MoE's total parameters (1.6e9–1.3e10) start above dense's largest (8e8): (d) is never evaluated."""
    for found in no_effect.verdicts:
        total = found.comparisons[3]
        assert total.label == "(d)" and total.reference is None and total.ratio is None
        assert total.verdict == NOT_TESTED and total.note.startswith("needs extrapolation")
        assert "N ranges do not overlap" in total.note and "(d)" in found.verdict.note


def test_the_shared_region_keeps_to_both_hulls():
    """Dense at 20–180 tokens per parameter, MoE at 5–45 at 1e8 parameters but 1–9 at 1e9: the hulls meet
    only at the small end, where the boxes' centre (N 3.2e8, D/N 13) lies outside dense's hull; the
    reference is inside both. Bands that never meet give no reference."""
    n = np.array([1e8, 1e8, 1e9, 1e9])
    dense = pd.DataFrame({"N_active": n, "tokens": n * np.array([20, 180, 20, 180])})
    moe = pd.DataFrame({"N_active": n, "tokens": n * np.array([5, 45, 1, 9])})
    reference, _ = shared_reference(moe, dense, ("N_active", "tokens"))
    n_ref, d_ref = reference["N_active"], reference["tokens"]
    assert 1e8 <= n_ref < 3e8 and d_ref >= 20 * n_ref  # inside dense's band …
    assert d_ref <= 4.5e9 * (n_ref / 1e8) ** np.log10(2)  # … and below MoE's upper edge (4.5e9 → 9e9)
    far = pd.DataFrame({"N_active": n, "tokens": n * np.array([1, 4, 1, 4])})
    reference, reason = shared_reference(far, dense, ("N_active", "tokens"))
    assert reference is None and reason.startswith("needs extrapolation: no point lies inside both")


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ((SUPPORTED, SUPPORTED, SUPPORTED, NOT_TESTED), SUPPORTED),
        ((SUPPORTED, SUPPORTED, INCONCLUSIVE, NOT_TESTED), DEPENDS),
        ((NOT_SUPPORTED, NOT_SUPPORTED, NOT_SUPPORTED, NOT_SUPPORTED), NOT_SUPPORTED),
        ((NOT_TESTED, SUPPORTED, SUPPORTED, SUPPORTED), NOT_TESTED),
        ((SUPPORTED, NOT_TESTED, NOT_TESTED, NOT_TESTED), SUPPORTED),
    ],
)
def test_supported_only_when_every_possible_comparison_agrees(verdicts, expected):
    rows = [
        Matched(label=f"({c})", basis=c, verdict=v, note="why") for c, v in zip("abcd", verdicts, strict=True)
    ]
    found, reason = combine(rows)
    assert found == expected
    if expected == SUPPORTED and verdicts[1] == NOT_TESTED:
        assert reason.startswith("only the equal-loss comparison is possible")


def test_a_vertex_past_the_fitted_window_but_inside_the_grid_is_flagged():
    """A flat, noisy batch direction can put the quadratic's vertex past the ±2-step window it was fitted on,
    though inside the grid: it is kept at the window's end and flagged, not counted as an interior optimum."""
    lrs, batches = 2.0 ** np.arange(-12, -3), 2.0 ** np.arange(10, 19)
    index = pd.MultiIndex.from_product([batches, lrs], names=["batch_size", "lr"])
    lr, batch = index.get_level_values("lr"), index.get_level_values("batch_size")
    loss = 3 + 0.5 * np.log(lr / 2.0**-8) ** 2 + 0.01 * np.log(batch / 2.0**17) ** 2
    loss = loss - 0.065 * ((batch == 2.0**13) & (lr == 2.0**-8)) + 0.1 * (batch > 2.0**15)
    smoothed = quadratic_optimum(pd.Series(np.asarray(loss), index=index))
    assert smoothed["batch_size"] == pytest.approx(2.0**15)  # the window's end: best cell 2^13 + 2 steps
    assert smoothed["edge_batch"] and not smoothed["edge_lr"]


def test_a_flat_hull_holds_only_its_segment():
    """Grids at one tokens-per-parameter ratio lie on a line in (log N, log D): a point off that line, or past
    its ends, is outside the region they cover (it used to count as inside)."""
    from archscale.analysis.matched import _inside

    line = np.log([[1e8, 2e9], [2e8, 4e9], [4e8, 8e9]])  # 20 tokens per parameter
    points = np.log([[2e8, 4e9], [2e8, 1e9], [1e9, 2e10]])  # on it; 5 tokens per parameter; past its end
    assert _inside(points, line).tolist() == [True, False, False]
