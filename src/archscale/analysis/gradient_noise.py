"""Analysis 4: the measured gradient noise scale B_simple against the loss, dense beside MoE.

The paper argues (§5.1) that B_opt ≈ B_noise and that MoE models have the smaller noise scale at equal
loss. Here B_simple (McCandlish et al. 2018; the trainer's EMA-smoothed estimate, in tokens) is paired
with the smoothed training loss at the same step, sampled log-spaced in tokens after the warm-up, and a
power law B_simple = λ·L^exponent is fitted per family with a bootstrap over runs. The MoE/dense ratio at
a loss both families reached answers the question with an interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from archscale.analysis.compare import Comparison, compare_families
from archscale.analysis.points import (
    SMOOTHING_WINDOW,
    finished_runs,
    log_spaced_rows,
    require_columns,
    smooth,
    usable_from,
)
from archscale.analysis.powerfit import PowerFit, fit_families
from archscale.analysis.results import Result
from archscale.quantities import law_names


@dataclass
class NoiseScaleResult(Result):
    """The (loss, B_simple) points, one power-law fit per family and the MoE/dense ratio at equal loss.

    ``dropped``: estimates left out because they were not positive (tr Σ estimated below zero early on).
    """

    skipped: str | None = None
    points: pd.DataFrame | None = None
    fits: dict[str, PowerFit] = field(default_factory=dict)
    comparison: Comparison | None = None
    dropped: int = 0


def noise_scale_vs_loss(
    runs: pd.DataFrame,
    curve: pd.DataFrame,
    *,
    points_per_run: int = 24,
    bootstrap: int = 200,
    seed: int = 0,
    window: int = SMOOTHING_WINDOW,
) -> NoiseScaleResult:
    """Analysis 4 over the store's runs and curves (``noise_scale`` per step, NaN when not measured)."""
    runs = finished_runs(runs)
    require_columns(curve, ("run_id", "step", "tokens", "lm_loss"), "curve")
    if "noise_scale" not in curve:
        return NoiseScaleResult(skipped="the curve table has no noise_scale column")
    curve = curve[curve["run_id"].isin(runs["run_id"])]
    measured = np.isfinite(curve["noise_scale"].to_numpy(dtype=float))
    if not measured.any():
        return NoiseScaleResult(
            skipped="no run measured the noise scale: it needs 2 or more micro-batches per step "
            "(a sweep's micro_batch_size below its batch sizes)"
        )
    smoothed = smooth(curve[curve["run_id"].isin(curve.loc[measured, "run_id"])], window)
    start = usable_from(smoothed, window)
    smoothed = smoothed[np.isfinite(smoothed["noise_scale"].to_numpy(dtype=float))]
    rows = log_spaced_rows(smoothed, points_per_run, start)
    positive = rows["noise_scale"] > 0
    points = rows.loc[positive, ["run_id", "tokens", "lm_loss", "noise_scale"]].merge(
        runs[["run_id", "kind"]]
    )
    points = points.rename(columns=law_names("curve", "lm_loss"))
    result = NoiseScaleResult(points=points, dropped=int((~positive).sum()))
    fitted = fit_families(points, target="noise_scale", input="loss", bootstrap=bootstrap, seed=seed)
    result.fits = {family: fit for family, (fit, _) in fitted.items()}
    result.comparison = compare_families(fitted)
    return result
