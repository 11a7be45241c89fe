"""Every figure writes a PNG, from real results and from skipped ones."""

from __future__ import annotations

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
