"""Analysis 2 (paper Table 1): the compute-optimal allocation exponents α_N, α_D of dense and MoE models.

Eq. 5 with E fixed is fitted on every model size of a family (``ChinchillaLaw(size="model_scale")``);
α_N = β/(α+β) and α_D = α/(α+β) follow (Eq. 7-8), with bootstrap intervals over runs, beside the published
rows of the laws layer's :func:`~archscale.laws.table1`. The paper's claim α_N(MoE) > α_N(dense) is
measured as the difference of the two, its interval from pairing the families' independent resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from archscale.analysis.extrapolation import POINT_COLUMNS
from archscale.analysis.points import FAMILIES, require_columns
from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.laws import (
    ALPHA_N_GAIN,
    ChinchillaLaw,
    LawDataError,
    alpha_N_gain,
    published_alpha_N_gain,
    table1,
)
from archscale.laws.bootstrap import percentile_interval
from archscale.laws.resampling import spawn_seeds

LABELS = {"dense": "Dense (this study)", "moe": "MoE (this study)"}


@dataclass
class AllocationResult(Result):
    """Table 1 rows (published, then this study's with intervals; ``this_study`` tells them apart), the fits,
    α_N(MoE) − α_N(dense), and the paper's 16.37 % quantity (``alpha_N_gain``: α_N(MoE)/α_N(dense) − 1)
    beside its published value. ``degenerate``: families whose fit ended with a coefficient on its bound
    (e.g. σ → 0): such a fit is a constraint, not a law, so its α_N is shown marked and never judged."""

    table: pd.DataFrame
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    alpha_N_difference: dict[str, float | None] | None = None
    alpha_N_gain: dict[str, Any] | None = None
    degenerate: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def compute_allocation(
    points: pd.DataFrame, *, bootstrap: int = 200, seed: int = 0, labels: dict[str, str] = LABELS
) -> AllocationResult:
    """Analysis 2 on a loss table (``loss_points(runs, curve)`` or the same columns from a CSV); ``labels``
    name each family's Table 1 row (e.g. for public data rather than this study's runs)."""
    require_columns(points, POINT_COLUMNS, "loss points")
    laws: dict[str, ChinchillaLaw] = {}
    skipped: dict[str, str] = {}
    degenerate: dict[str, str] = {}
    notes: list[str] = []
    for family, family_seed in zip(FAMILIES, spawn_seeds(seed, len(FAMILIES)), strict=True):
        rows = points[points["kind"] == family]
        if rows.empty:
            skipped[family] = f"no {family} runs"
            continue
        try:
            with recorded_warnings(notes):
                law = ChinchillaLaw(
                    size="model_scale", bootstrap=bootstrap, seed=family_seed, resample="run"
                ).fit(rows)
        except LawDataError as err:
            skipped[family] = f"Eq. 5 cannot be fitted on the {family} runs: {err}"
            continue
        laws[family] = law
        if reason := law.degenerate_:
            degenerate[family] = (
                f"the {family} Eq. 5 fit is degenerate: {reason} and its α_N is not a measurement"
            )
    table = table1({labels[f]: law for f, law in laws.items()})
    table["this_study"] = table["architecture"].isin(labels.values())
    table["degenerate"] = table["architecture"].isin([labels[f] for f in degenerate])
    result = AllocationResult(
        table=table,
        fits={family: fit_summary(law) for family, law in laws.items()},
        skipped=skipped,
        degenerate=degenerate,
        warnings=notes,
    )
    if len(laws) == 2:
        moe, dense = laws["moe"], laws["dense"]
        a_moe, a_dense = moe.derived_["alpha_N"], dense.derived_["alpha_N"]
        difference: dict[str, Any] = {"effect": a_moe - a_dense, "lower": None, "upper": None}
        gain: dict[str, Any] = {"effect": float(alpha_N_gain(a_moe, a_dense)), "lower": None, "upper": None}
        gain |= {"definition": ALPHA_N_GAIN, "paper": published_alpha_N_gain()}
        if moe.bootstrap_ is not None and dense.bootstrap_ is not None:
            draws_moe, draws_dense = (law.bootstrap_coefficients_["alpha_N"] for law in (moe, dense))
            k = min(len(draws_moe), len(draws_dense))  # independent streams: any pairing is a valid draw
            draws_moe, draws_dense = draws_moe[:k], draws_dense[:k]
            for measure, samples in (
                (difference, draws_moe - draws_dense),
                (gain, alpha_N_gain(draws_moe, draws_dense)),
            ):
                lo, hi = percentile_interval(samples, moe.level_)
                measure |= {"lower": float(lo), "upper": float(hi), "level": moe.level_}
        result.alpha_N_difference, result.alpha_N_gain = difference, gain
    return result
