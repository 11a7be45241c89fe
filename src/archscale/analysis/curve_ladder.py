"""Which law identifies α_N on a ladder: Eq. 5 fitted on curve points, or one whole-curve law across sizes?

Eq. 5 reads each point of a curve as if it were a finished run, blind to the learning-rate schedule; on a
ladder of WSD or cosine runs its σ often ends on its bound and α_N's interval spans most of [0, 1]. The
``curve-ladder`` law (:class:`~archscale.laws.CurveLadderLaw`) models the schedule, so every point of every
curve constrains the same size term. Both are fitted per family on the same runs and their α_N set side by
side; a law *identifies* α_N here when its fit has an interval for it and no coefficient on a bound (and, for
the curve law, whose α_N reads S1 as the data term, when the runs share one peak rate and batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.laws import CurveLadderLaw, LawDataError
from archscale.laws.resampling import spawn_seeds

EQ5 = "Eq. 5 on curve points"
CURVE_LADDER = "curve-ladder (whole curves)"


@dataclass
class AlphaIdentification(Result):
    """α_N of each family by each law (``rows``), the curve-ladder fits and why a family was skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _row(family: str, law: str, fit: dict[str, Any]) -> dict[str, Any]:
    lower, upper = fit["intervals"].get("alpha_N", (None, None))
    return {
        "family": family,
        "law": law,
        "alpha_N": fit["derived"]["alpha_N"],
        "lower": lower,
        "upper": upper,
        "on_bound": fit["on_bound"],
        "identified": lower is not None and not fit["on_bound"],
        "no_interval": fit["no_interval"],
    }


def alpha_identification(
    steps: pd.DataFrame,
    eq5: dict[str, dict[str, Any]],
    *,
    size: str = "model_scale",
    bootstrap: int = 200,
    seed: int = 0,
) -> AlphaIdentification:
    """Fit the curve-ladder law per family (``kind``) on ``steps`` (a whole-curve table with a ``size``
    column, e.g. :func:`~archscale.analysis.curve_tables.step_table`) and set its α_N beside Eq. 5's fit of
    the same family (``eq5``: family → :func:`fit_summary` of the Eq. 5 fit, as the allocation analysis
    keeps them)."""
    result = AlphaIdentification()
    families = sorted(set(steps["kind"]) | set(eq5))
    for family, family_seed in zip(families, spawn_seeds(seed, len(families)), strict=True):
        if family in eq5:
            result.rows.append(_row(family, EQ5, eq5[family]))
        rows = steps[steps["kind"] == family]
        if rows["loss"].notna().sum() == 0:
            result.skipped[family] = f"no {family} curves to fit the curve-ladder law on"
            continue
        try:
            with recorded_warnings(result.warnings):
                law = CurveLadderLaw(size=size, bootstrap=bootstrap, seed=family_seed).fit(rows)
        except LawDataError as error:
            result.skipped[family] = f"the curve-ladder law cannot be fitted on the {family} runs: {error}"
            continue
        result.fits[family] = fit_summary(law)
        row = _row(family, CURVE_LADDER, result.fits[family])
        mixed = _mixed_settings(rows)
        if mixed:  # its α_N reads S1 as D, which holds only at one peak rate and batch
            row["identified"] = False
            result.skipped[family] = (
                f"the curve-ladder law's α_N assumes one peak rate and batch; the {family} runs {mixed}"
            )
        result.rows.append(row)
    return result


def _mixed_settings(rows: pd.DataFrame) -> str | None:
    """How the runs' peak learning rates or tokens per step differ, if they do (None when all agree)."""
    per_run = rows.groupby("run_id")
    peaks = per_run["lr"].max()
    if peaks.max() > peaks.min() * (1 + 1e-9):
        return f"peak at {peaks.min():g} to {peaks.max():g}"
    if "tokens" in rows:
        batches = (rows["tokens"] / rows["step"]).groupby(rows["run_id"]).first()
        if batches.max() > batches.min() * (1 + 1e-9):
            return f"train on {batches.min():g} to {batches.max():g} tokens per step"
    return None
