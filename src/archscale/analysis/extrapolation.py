"""Analysis 1 (paper Figure 1): fit Eq. 5 on the smaller models' curves, predict the largest model's curve.

Dense and MoE are fitted separately — with E fixed, Eq. 5 is Eq. 1 in the model scale N, i.e.
``ChinchillaLaw(size="model_scale")`` — and jointly with the expert count E (``WangLaw``). The largest
model of each family is held out; the law fitted on the others predicts its whole (smoothed) curve with
two intervals — the band of the fitted curve (parameters only) and the prediction interval of a new run
(adding the run-to-run and point noise estimated from the fitted runs) — and the error and the coverage of
each say how well it extrapolates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archscale.analysis.points import FAMILIES, require_columns
from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.laws import ChinchillaLaw, CurveLadderLaw, Law, LawDataError, WangLaw, extrapolation_audit
from archscale.laws.resampling import spawn_seeds

POINT_COLUMNS: tuple[str, ...] = ("run_id", "kind", "model_scale", "experts", "tokens", "loss")


@dataclass
class CurveFit(Result):
    """One run's observed (smoothed) loss at its sampled token counts, and the law's prediction; ``lower``
    and ``upper`` (the band of the fitted curve) and ``prediction_lower`` / ``prediction_upper`` (a new
    run's prediction interval) only for the held-out run."""

    run_id: str
    kind: str
    model_scale: float
    experts: float
    role: str  # "fit" or "held out"
    tokens: list[float]
    observed: list[float]
    predicted: list[float]
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    prediction_lower: list[float] = field(default_factory=list)
    prediction_upper: list[float] = field(default_factory=list)


@dataclass
class CurveLawOverlay(Result):
    """The curve-ladder law (:class:`~archscale.laws.CurveLadderLaw`, schedule-aware) fitted on the whole
    curves of the runs Eq. 5 was fitted on and its prediction of the held-out largest model's whole curve
    under that run's own schedule: per held-out run its final point (``run_id``, ``step``, ``tokens``,
    ``observed``, ``predicted``, ``error`` = predicted / observed − 1), the largest final-point |error| of it
    and of Eq. 5 side by side, and its predicted curves (thinned, for Figure 1). ``skipped``: why it could
    not be fitted."""

    skipped: str | None = None
    law: dict[str, Any] | None = None
    final_points: list[dict[str, Any]] = field(default_factory=list)
    final_abs_rel_error: float | None = None
    eq5_final_abs_rel_error: float | None = None
    curves: list[CurveFit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Extrapolation(Result):
    """The law fitted without the largest model(s) of ``family`` (``dense``, ``moe`` or ``joint``) and how
    well it predicts them: mean/max |relative error| and the share of points inside the band (``coverage``)
    and inside the prediction interval (``prediction_coverage``); ``no_interval`` says why there are none.
    ``curve_law``: the whole-curve law's prediction of the same held-out model, when the runs' schedules
    were given."""

    family: str
    skipped: str | None = None
    law: dict[str, Any] | None = None
    held_out: list[str] = field(default_factory=list)
    n_train: int = 0
    mean_abs_rel_error: float | None = None
    max_abs_rel_error: float | None = None
    coverage: float | None = None
    prediction_coverage: float | None = None
    no_interval: str | None = None
    degenerate: str | None = None  # why the fitted law is a constraint rather than a law (on a bound)
    curves: list[CurveFit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    curve_law: CurveLawOverlay | None = None


@dataclass
class LossLawResult(Result):
    """Analysis 1 for ``dense``, ``moe`` and ``joint``; ``skipped`` only when none of them could run."""

    extrapolations: dict[str, Extrapolation]
    bootstrap: int
    skipped: str | None = None


def _curve_fits(rows: pd.DataFrame, role: str, predicted: np.ndarray, bands=None) -> list[CurveFit]:
    """One :class:`CurveFit` per run of ``rows``; ``bands``: the audit's points table with its intervals."""
    interval_columns = ("lower", "upper", "prediction_lower", "prediction_upper")
    fits = []
    for run_id, index in rows.groupby("run_id", sort=False).indices.items():
        run = rows.iloc[index]
        fits.append(
            CurveFit(
                run_id=str(run_id),
                kind=str(run["kind"].iloc[0]),
                model_scale=float(run["model_scale"].iloc[0]),
                experts=float(run["experts"].iloc[0]),
                role=role,
                tokens=run["tokens"].tolist(),
                observed=run["loss"].tolist(),
                predicted=predicted[index].tolist(),
                **{c: [] if bands is None else bands[c].to_numpy()[index].tolist() for c in interval_columns},
            )
        )
    return fits


def _extrapolate(law: Law, points: pd.DataFrame, family: str, bootstrap: int, seed: int) -> Extrapolation:
    result = Extrapolation(family=family)
    sizes = points.groupby("kind")["model_scale"].nunique()
    if family == "joint" and len(sizes) < 2:
        result.skipped = "the joint fit needs both dense and MoE runs"
    elif points.empty:
        result.skipped = f"no {family} runs"
    elif (sizes < 3).any():
        few = ", ".join(f"{kind}: {n}" for kind, n in sizes.items() if n < 3)
        result.skipped = (
            f"needs at least 3 model sizes per family (two or more to fit, the largest to predict); "
            f"have {few}"
        )
    if result.skipped:
        return result
    points = points.sort_values(["run_id", "tokens"]).reset_index(drop=True)
    largest = points["model_scale"] == points.groupby("kind")["model_scale"].transform("max")
    points["largest"] = largest.astype(int)
    try:
        with recorded_warnings(result.warnings):
            configured = dataclasses.replace(law, bootstrap=bootstrap, seed=seed)
            audit = extrapolation_audit(configured, points, column="largest")
    except LawDataError as err:
        result.skipped = f"the law cannot be fitted on the smaller models: {err}"
        return result
    train, test = points[~largest].reset_index(drop=True), points[largest].reset_index(drop=True)
    bands = audit.points if audit.law.bootstrap_ is not None else None
    result.law = fit_summary(audit.law)
    result.held_out = sorted(test["run_id"].unique().tolist())
    result.n_train = audit.n_train
    result.mean_abs_rel_error = audit.mean_abs_rel_error
    result.max_abs_rel_error = audit.max_abs_rel_error
    result.coverage, result.prediction_coverage = audit.coverage, audit.prediction_coverage
    result.no_interval = audit.law.no_interval_
    if reason := audit.law.degenerate_:
        result.degenerate = (
            f"degenerate fit: {reason}; its extrapolation is a curve through the points, not a measured law"
        )
    result.curves = _curve_fits(train, "fit", audit.law.predict(train)) + _curve_fits(
        test, "held out", audit.points["predicted"].to_numpy(), bands
    )
    return result


OVERLAY_POINTS = 64  # log-spaced steps of each predicted whole curve kept for Figure 1


def _thinned(run: pd.DataFrame) -> pd.DataFrame:
    """``run`` (one run's step rows) with its loss kept at ``OVERLAY_POINTS`` log-spaced measured steps,
    the last one always among them."""
    measured = np.flatnonzero(run["loss"].notna().to_numpy())
    picks = np.unique(np.geomspace(1, len(measured), OVERLAY_POINTS).round().astype(int)) - 1
    return run.assign(loss=run["loss"].where(np.isin(np.arange(len(run)), measured[picks])))


def curve_law_overlay(steps: pd.DataFrame, largest: float, eq5: list[CurveFit]) -> CurveLawOverlay:
    """Fit the curve-ladder law on ``steps`` (a whole-curve table of one family: ``run_id``, ``kind``,
    ``model_scale``, ``step``, ``tokens``, ``lr``, ``loss``) below model scale ``largest`` and predict the
    runs at ``largest`` under their own schedules; ``eq5``: Eq. 5's curves of the same held-out model, whose
    final points are set beside."""
    result = CurveLawOverlay()
    steps = steps[steps["loss"].notna().groupby(steps["run_id"]).transform("any")]
    train, test = steps[steps["model_scale"] < largest], steps[steps["model_scale"] == largest]
    sizes = train["model_scale"].nunique()
    if test.empty:
        result.skipped = "the held-out model has no measured whole curve"
    elif sizes < 3:
        result.skipped = (
            f"the curve-ladder law needs the whole curves of at least 3 smaller model sizes to fit its size "
            f"exponent; have {sizes}"
        )
    if result.skipped:
        return result
    try:
        with recorded_warnings(result.warnings):
            law = CurveLadderLaw(size="model_scale").fit(train)
    except LawDataError as err:
        result.skipped = f"the curve-ladder law cannot be fitted on the smaller models' curves: {err}"
        return result
    result.law = fit_summary(law)
    for run_id, run in test.groupby("run_id", sort=False):
        shown = _thinned(run.sort_values("step"))
        measured = shown[shown["loss"].notna()]
        predicted = law.predict(shown)
        observed = measured["loss"].to_numpy()
        result.final_points.append(
            {"run_id": str(run_id), "step": int(measured["step"].iloc[-1]),
             "tokens": float(measured["tokens"].iloc[-1]), "observed": float(observed[-1]),
             "predicted": float(predicted[-1]), "error": float(predicted[-1] / observed[-1] - 1)}
        )  # fmt: skip
        result.curves.append(
            CurveFit(run_id=str(run_id), kind=str(run["kind"].iloc[0]), model_scale=largest,
                     experts=eq5[0].experts, role="held out", tokens=measured["tokens"].tolist(),
                     observed=observed.tolist(), predicted=predicted.tolist())
        )  # fmt: skip
    result.final_abs_rel_error = max(abs(p["error"]) for p in result.final_points)
    result.eq5_final_abs_rel_error = max(abs(c.predicted[-1] / c.observed[-1] - 1) for c in eq5)
    return result


def loss_law_extrapolation(
    points: pd.DataFrame, *, bootstrap: int = 200, seed: int = 0, steps: pd.DataFrame | None = None
) -> LossLawResult:
    """Analysis 1 on a loss table (``loss_points(runs, curve)``, or any table with columns
    ``run_id, kind, model_scale, experts, tokens, loss``): per family and jointly, fit the law on all but
    the largest model and predict the largest one's curve. With ``steps``, the whole curves of the same runs
    (:func:`~archscale.analysis.suite.ladder_steps`), each family's curve-ladder law too
    (:func:`curve_law_overlay`), to show beside Eq. 5 what a schedule-aware law predicts."""
    require_columns(points, POINT_COLUMNS, "loss points")
    laws: dict[str, tuple[Law, pd.DataFrame]] = {
        family: (ChinchillaLaw(size="model_scale"), points[points["kind"] == family]) for family in FAMILIES
    }
    laws["joint"] = (WangLaw(), points)
    seeds = spawn_seeds(seed, len(laws))  # the dense, MoE and joint fits are resampled independently
    extrapolations = {
        family: _extrapolate(law, table, family, bootstrap, family_seed)
        for (family, (law, table)), family_seed in zip(laws.items(), seeds, strict=True)
    }
    if steps is not None:
        require_columns(
            steps, ("run_id", "kind", "model_scale", "step", "tokens", "lr", "loss"), "whole curves"
        )
        for family, extrapolation in extrapolations.items():
            if extrapolation.skipped:
                continue
            if family == "joint":
                extrapolation.curve_law = CurveLawOverlay(
                    skipped="the curve-ladder law has no expert-count input: it is fitted per family"
                )
                continue
            held_out = [c for c in extrapolation.curves if c.role == "held out"]
            extrapolation.curve_law = curve_law_overlay(
                steps[steps["kind"] == family], held_out[0].model_scale, held_out
            )
    skipped = None
    if all(e.skipped for e in extrapolations.values()):
        skipped = "; ".join(f"{family}: {e.skipped}" for family, e in extrapolations.items())
    return LossLawResult(extrapolations=extrapolations, bootstrap=bootstrap, skipped=skipped)
