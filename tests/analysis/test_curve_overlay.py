"""Figure 1's whole-curve overlay: the curve-ladder law fitted on the smaller models' whole curves predicts the
largest model's curve under its own schedule, beside Eq. 5; with too few smaller sizes the reason is kept."""

from __future__ import annotations

import json
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from archscale.analysis.extrapolation import loss_law_extrapolation
from archscale.report import figures
from archscale.report.figures import loss_extrapolation_figure
from archscale.report.page import _extrapolation

STEPS, WARMUP, PEAK, TOKENS_PER_STEP = 1200, 60, 3e-3, 4096
TRUTH = {"sigma": 1.8, "A": 40.0, "alpha": 0.25, "B": 0.6, "beta": 0.45, "C": 0.5}
SIZES = (2e7, 5e7, 1.2e8, 3e8)


def _cosine() -> np.ndarray:
    tau = np.arange(1, STEPS + 1)
    eta = 3e-4 + 0.5 * (PEAK - 3e-4) * (1 + np.cos(np.pi * (tau - WARMUP) / (STEPS - WARMUP)))
    return np.where(tau <= WARMUP, PEAK * tau / WARMUP, eta)


def _curve(eta: np.ndarray, n: float) -> np.ndarray:
    """The curve-ladder law at every step, by a literal loop (momentum from the end of the warm-up)."""
    c, momentum, annealed, losses = TRUTH, 0.0, 0.0, []
    for t in range(1, STEPS + 1):
        momentum = 0.999 * momentum + (eta[t - 2] - eta[t - 1] if t > WARMUP else 0.0)
        annealed += momentum
        losses.append(c["sigma"] + c["A"] * n ** -c["alpha"] + c["B"] * eta[:t].sum() ** -c["beta"]
                      - c["C"] * annealed)  # fmt: skip
    return np.asarray(losses)


def _ladder(sizes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole-curve table (one cosine run per size, losses after the warm-up) and Eq. 5's points: 24
    log-spaced steps of each curve."""
    eta, step = _cosine(), np.arange(1, STEPS + 1)
    curves = []
    for n in sizes:
        loss = np.where(step > WARMUP, _curve(eta, n), np.nan)
        curves.append(pd.DataFrame({"run_id": f"dense-{n:.0e}", "kind": "dense", "model_scale": n, "step": step,
                                    "tokens": step * TOKENS_PER_STEP, "lr": eta, "loss": loss}))  # fmt: skip
    steps = pd.concat(curves, ignore_index=True)
    picks = np.unique(np.geomspace(WARMUP + 1, STEPS, 24).round().astype(int))
    points = steps[steps["step"].isin(picks)].assign(experts=1.0)
    return steps, points[["run_id", "kind", "model_scale", "experts", "tokens", "loss"]].reset_index(
        drop=True
    )


def _assert_the_figure_draws_the_overlay(result, path, monkeypatch) -> None:
    """The purple curve drawn is the largest model's true curve (to the law's 0.5 %) at its own steps' tokens,
    and the PNG read back is the figure's size in pixels with that curve's colour in it."""
    drawn = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure) or save(figure, path))
    png = figures.loss_extrapolation_figure(result, path)
    [figure] = drawn
    lines = [
        ln for ax in figure.axes for ln in ax.lines if ln.get_label() == "curve-ladder law (own schedule)"
    ]
    [line] = lines
    steps = np.asarray(line.get_xdata()) / TOKENS_PER_STEP
    assert np.all(steps == steps.round()) and steps.max() == STEPS
    truth = _curve(_cosine(), SIZES[-1])[steps.astype(int) - 1]
    np.testing.assert_allclose(line.get_ydata(), truth, rtol=5e-3)
    pixels = mpimg.imread(png)
    assert pixels.shape[:2] == tuple(round(v * figures.DPI) for v in figure.get_size_inches()[::-1])
    purple = np.all(np.abs(pixels[..., :3] - to_rgb("tab:purple")) < 0.02, axis=-1)
    assert purple.sum() > 50


def test_the_curve_law_predicts_the_largest_models_whole_curve(tmp_path, monkeypatch) -> None:
    steps, points = _ladder(SIZES)
    result = loss_law_extrapolation(points, bootstrap=0, steps=steps)
    dense = result.extrapolations["dense"]
    overlay = dense.curve_law
    assert overlay is not None and overlay.skipped is None, overlay
    [final] = overlay.final_points
    truth = _curve(_cosine(), SIZES[-1])[-1]
    assert (final["run_id"], final["step"], final["tokens"]) == (
        "dense-3e+08",
        STEPS,
        STEPS * TOKENS_PER_STEP,
    )
    assert final["observed"] == pytest.approx(truth, rel=1e-12)
    assert abs(final["error"]) < 5e-3 and overlay.final_abs_rel_error == abs(final["error"])
    held_out = next(c for c in dense.curves if c.role == "held out")
    assert overlay.eq5_final_abs_rel_error == pytest.approx(abs(held_out.predicted[-1] / truth - 1), rel=1e-9)
    assert overlay.curves[0].tokens[-1] == STEPS * TOKENS_PER_STEP and len(overlay.curves[0].tokens) <= 64
    assert result.extrapolations["joint"].curve_law is None  # skipped with the MoE family: no MoE runs
    saved = json.loads(json.dumps(result.to_dict()))["extrapolations"]["dense"]["curve_law"]
    assert saved["final_abs_rel_error"] == pytest.approx(abs(final["error"]))
    _assert_the_figure_draws_the_overlay(result, tmp_path / "loss_extrapolation.png", monkeypatch)
    html = _extrapolation(SimpleNamespace(loss_law=result))
    assert "final point |error|: curve-ladder" in html and f"{100 * abs(final['error']):.1f} %" in html


def test_with_three_sizes_the_reason_is_recorded(tmp_path) -> None:
    steps, points = _ladder(SIZES[:3])
    result = loss_law_extrapolation(points, bootstrap=0, steps=steps)
    dense = result.extrapolations["dense"]
    assert dense.skipped is None and dense.mean_abs_rel_error is not None  # Eq. 5 as before
    assert "at least 3 smaller model sizes to fit its size exponent; have 2" in dense.curve_law.skipped
    assert dense.curve_law.final_points == []
    assert loss_extrapolation_figure(result, tmp_path / "f.png").exists()
    assert "curve-ladder law not fitted: the curve-ladder law needs" in _extrapolation(
        SimpleNamespace(loss_law=result)
    )


def test_without_schedules_the_result_is_eq5_alone() -> None:
    _, points = _ladder(SIZES)
    result = loss_law_extrapolation(points, bootstrap=0)
    assert all(e.curve_law is None for e in result.extrapolations.values())
    assert "curve-ladder" not in _extrapolation(SimpleNamespace(loss_law=result))
