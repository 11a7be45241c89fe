"""Analysis 5 (paper Figure 6): held-out test loss against training compute, dense beside MoE.

Each model size contributes its representative run (the longest budget, lowest final test loss) and its
evals (``subset="all"`` of ``split="test"``) in the **stable interval**: at or after ``stable_from`` of its
trained tokens (default 1/8 — past the 5 % warm-up and the steep first descent; with the default
log-spaced evals at D/64 … D that keeps D/8, D/4, D/2 and D). A power law L = λ·C^exponent is fitted per
family (compute C = N·D) with a bootstrap over runs.

Two measures at the reference compute C* (the geometric centre of the compute range both families cover):

- **test-loss ratio** L_MoE(C*) / L_dense(C*) (below 1: MoE generalises better at equal compute);
- **compute-equivalent gain** C_dense(L*) / C* − 1 with L* = L_MoE(C*): how much more compute — at the same
  model scale N, that is how many more tokens — the dense fit needs to reach the test loss MoE reaches
  at C*. The paper publishes no number defined this way: its "16.37 % improvement in data utilization" is
  the ratio of its Table 1 α_N values (see :func:`archscale.laws.alpha_N_gain`, reported by the
  allocation analysis), so the two are never set side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from archscale.analysis.compare import Comparison, compare_families
from archscale.analysis.errors import AnalysisError
from archscale.analysis.points import (
    final_points,
    finished_runs,
    representative_runs,
    require_columns,
)
from archscale.analysis.powerfit import PowerFit, fit_families
from archscale.analysis.results import Result
from archscale.laws import PowerLaw
from archscale.laws.bootstrap import percentile_interval
from archscale.quantities import law_names

STABLE_FROM = 1 / 8


@dataclass
class GeneralisationResult(Result):
    """Eval points (``stable`` marks the fitted ones), the fits, and the two MoE-vs-dense measures."""

    skipped: str | None = None
    stable_from: float = STABLE_FROM
    points: pd.DataFrame | None = None
    fits: dict[str, PowerFit] = field(default_factory=dict)
    loss_ratio: Comparison | None = None
    data_efficiency_gain: dict[str, float | None] | None = None


def _compute_for_loss(coefficients: dict[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
    """Invert L = λ·C^exponent: the compute at which the fit reaches ``loss``."""
    return (loss / coefficients["lambda"]) ** (1.0 / coefficients["exponent"])


def _gain(moe: PowerLaw, dense: PowerLaw, compute: float) -> dict[str, float | None]:
    at = {"compute": np.array([compute])}
    loss = moe.predict(at)
    value = float(_compute_for_loss(dense.coefficients_, loss)[0] / compute - 1.0)
    gain: dict[str, float | None] = {"value": value, "lower": None, "upper": None, "compute": compute}
    gain["loss"] = float(loss[0])
    if moe.bootstrap_ is not None and dense.bootstrap_ is not None:
        losses = moe.predict_samples(at)[:, 0]
        draws = dense.bootstrap_coefficients_
        k = min(len(losses), len(draws["lambda"]))
        samples = _compute_for_loss({n: v[:k] for n, v in draws.items()}, losses[:k]) / compute - 1.0
        lo, hi = percentile_interval(samples, moe.level_)
        gain |= {"lower": float(lo), "upper": float(hi), "level": moe.level_}
    return gain


def generalisation_vs_compute(
    runs: pd.DataFrame,
    evals: pd.DataFrame,
    *,
    stable_from: float = STABLE_FROM,
    split: str = "test",
    bootstrap: int = 200,
    seed: int = 0,
) -> GeneralisationResult:
    """Analysis 5 over the store's runs and evals (``run_id, tokens, loss``; ``split``/``subset`` filter
    when present)."""
    if not 0 <= stable_from < 1:
        raise AnalysisError(
            f"stable_from must be a fraction of each run's tokens in [0, 1), got {stable_from}"
        )
    runs = finished_runs(runs)
    require_columns(evals, ("run_id", "tokens", "loss"), "evals")
    if "split" in evals:
        evals = evals[evals["split"] == split]
    if "subset" in evals:
        evals = evals[evals["subset"] == "all"]
    evals = evals[evals["run_id"].isin(runs["run_id"]) & (evals["tokens"] > 0)]
    if evals.empty:
        return GeneralisationResult(skipped=f"no '{split}' evals (subset 'all') of finished runs")
    chosen = representative_runs(runs, final_points(evals, "loss"))
    points = evals[["run_id", "tokens", "loss"]].merge(chosen[["run_id", "kind", "N"]])
    points = points.rename(columns=law_names("runs", "N"))
    points["compute"] = points["model_scale"] * points["tokens"]
    points["stable"] = points["tokens"] >= stable_from * points.groupby("run_id")["tokens"].transform("max")
    result = GeneralisationResult(stable_from=stable_from, points=points)
    stable = points[points["stable"]]
    fitted = fit_families(stable, target="loss", input="compute", bootstrap=bootstrap, seed=seed)
    result.fits = {family: fit for family, (fit, _) in fitted.items()}
    result.loss_ratio = compare_families(fitted)
    if result.loss_ratio is not None:
        moe, dense = fitted["moe"][1], fitted["dense"][1]
        result.data_efficiency_gain = _gain(moe, dense, result.loss_ratio.reference)
    return result
