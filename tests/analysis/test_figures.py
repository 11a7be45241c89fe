"""Every figure writes a PNG, from real results and from skipped ones; what a figure draws is read back
from its Matplotlib objects and compared with the results it was drawn from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archscale.analysis import (
    AllocationResult,
    GeneralisationResult,
    HyperparamResult,
    LossLawResult,
    NoiseScaleResult,
    PowerFit,
)
from archscale.laws import table1
from archscale.report import figures

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 5_000


def test_write_figures_draws_every_figure(analyses, tmp_path):
    paths = figures.write_figures(analyses, tmp_path / "figs")
    assert set(paths) == {
        "loss_extrapolation", "allocation", "batch_heatmap", "lr_heatmap", "batch_size_law", "lr_law",
        "noise_scale", "generalisation",
    }  # fmt: skip
    assert all(_is_png(path) and path.parent == tmp_path / "figs" for path in paths.values())


@pytest.mark.parametrize(
    ("function", "result"),
    [
        (
            figures.loss_extrapolation_figure,
            LossLawResult(extrapolations={}, bootstrap=0, skipped="one model size"),
        ),
        (
            figures.allocation_figure,
            AllocationResult(table=table1().assign(this_study=False), skipped={"moe": "x"}),
        ),
        (figures.batch_heatmap_figure, HyperparamResult(method="contour", skipped="no grid")),
        (figures.lr_heatmap_figure, HyperparamResult(method="contour", skipped="no grid")),
        (figures.batch_size_law_figure, HyperparamResult(method="contour", skipped="no grid")),
        (figures.lr_law_figure, HyperparamResult(method="minicpm", skipped="no grid")),
        (figures.noise_scale_figure, NoiseScaleResult(skipped="no noise scale")),
        (figures.generalisation_figure, GeneralisationResult(skipped="no evals")),
        (  # grids that sweep the other hyperparameter only: no optimum along this axis
            figures.lr_law_figure,
            HyperparamResult(
                method="contour",
                lr_fits={"dense": PowerFit(family="dense", target="lr", input="loss", skipped="no sweep")},
            ),
        ),
    ],
)
def test_skipped_results_still_give_a_figure(function, result, tmp_path):
    assert _is_png(function(result, tmp_path / "skipped.png"))


@pytest.fixture
def drawn(monkeypatch):
    """Every Figure the figure functions save, captured on its way to the PNG."""
    captured = {}
    save = figures._save

    def keep(figure, path):
        captured[Path(path).stem] = figure
        return save(figure, path)

    monkeypatch.setattr(figures, "_save", keep)
    return captured


def _visible_tick_labels(ax, axis: str) -> list[str]:
    """The non-empty tick labels (major and minor) inside the axis's view."""
    which = ax.yaxis if axis == "y" else ax.xaxis
    low, high = sorted(which.get_view_interval())
    ticks = [*which.get_major_ticks(), *which.get_minor_ticks()]
    return [t.label1.get_text() for t in ticks if t.label1.get_text() and low <= t.get_loc() <= high]


def test_every_plotted_axis_carries_at_least_two_tick_labels(analyses, tmp_path, drawn):
    """Figure 5's y axis once had none (its range under a decade on a log scale)."""
    figures.write_figures(analyses, tmp_path)
    for name, figure in drawn.items():
        figure.canvas.draw()
        for ax in figure.axes:
            if not ax.axison or (not ax.lines and not ax.collections):
                continue
            for axis in ("x", "y"):
                if ax.get_label() == "<colorbar>":
                    continue
                labels = _visible_tick_labels(ax, axis)
                minor = [
                    t.get_text()
                    for t in (ax.yaxis if axis == "y" else ax.xaxis).get_minorticklabels()
                    if t.get_text()
                ]
                assert len(labels) + len(minor) >= 2, (name, axis, labels, minor)


def test_the_optimum_law_figure_draws_the_optima_and_fits_it_was_given(analyses, tmp_path, drawn):
    h = analyses.hyperparams
    figures.batch_size_law_figure(h, tmp_path / "batch.png")
    ax = drawn["batch"].axes[0]
    for family, label in (("dense", "dense"), ("moe", "MoE")):
        inside = [
            (o["loss"], o["batch_size"]) for o in h.batch_optima if o["kind"] == family and not o["at_edge"]
        ]
        scatter = next(c for c in ax.collections if c.get_label() == f"{label} optima")
        np.testing.assert_allclose(scatter.get_offsets(), inside)
        fit = h.batch_fits[family]
        line = next(ln for ln in ax.lines if ln.get_label().startswith(f"{label} fit"))
        np.testing.assert_allclose(line.get_xdata(), fit.x)
        np.testing.assert_allclose(line.get_ydata(), fit.predicted)
        assert f"exponent {fit.fit['coefficients']['exponent']:.3g}" in line.get_label()


def test_the_extrapolation_figure_draws_the_held_out_curve_and_its_prediction(analyses, tmp_path, drawn):
    figures.loss_extrapolation_figure(analyses.loss_law, tmp_path / "extrapolation.png")
    lines = [ln for ax in drawn["extrapolation"].axes for ln in ax.lines]
    for family in ("dense", "moe"):
        held = [c for c in analyses.loss_law.extrapolations[family].curves if c.role == "held out"]
        for curve in held:
            observed = next(
                ln for ln in lines if ln.get_label() == f"held out {curve.kind}, N={curve.model_scale:.3g}"
            )
            np.testing.assert_allclose(observed.get_xdata(), curve.tokens)
            np.testing.assert_allclose(observed.get_ydata(), curve.observed)
            assert any(
                np.allclose(ln.get_ydata(), curve.predicted) for ln in lines if ln.get_label() == "prediction"
            )
