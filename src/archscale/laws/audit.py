"""Extrapolation audit: hold out the largest models (or budgets), fit the rest, predict what was held out.

This is the paper's Figure 1 procedure (fit the 200M and 700M MoE models, predict the 1.5B one) made
quantitative: the relative error of each held-out point and whether it falls inside two intervals — the
band of the fitted curve (parameter uncertainty only) and the prediction interval of a new run, which adds
the run-to-run and point noise estimated from the fit. The prediction interval claims to cover the
held-out points; the band does not, so its coverage mixes noise with misspecification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from archscale.laws.base import Law
from archscale.laws.columns import Table
from archscale.laws.curve_laws import ScheduleLaw, losses_at_final_steps
from archscale.laws.errors import LawDataError


@dataclass
class Audit:
    """Held-out predictions (``points``: inputs, observed, predicted, lower, upper, inside) and their errors."""

    column: str
    held_out: list[float]
    law: Law
    points: pd.DataFrame
    n_train: int

    @property
    def relative_errors(self) -> np.ndarray:
        return (self.points["predicted"] / self.points["observed"] - 1.0).to_numpy()

    @property
    def mean_abs_rel_error(self) -> float:
        return float(np.mean(np.abs(self.relative_errors)))

    @property
    def max_abs_rel_error(self) -> float:
        return float(np.max(np.abs(self.relative_errors)))

    @property
    def coverage(self) -> float | None:
        """Share of held-out points inside the band of the fitted curve (None without an interval)."""
        return float(self.points["inside"].mean()) if "inside" in self.points else None

    @property
    def prediction_coverage(self) -> float | None:
        """Share of held-out points inside the prediction interval of a new run (None without one)."""
        return float(self.points["inside_prediction"].mean()) if "inside_prediction" in self.points else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "held_out": self.held_out,
            "n_train": self.n_train,
            "n_test": len(self.points),
            "mean_abs_rel_error": self.mean_abs_rel_error,
            "max_abs_rel_error": self.max_abs_rel_error,
            "coverage": self.coverage,
            "prediction_coverage": self.prediction_coverage,
            "level": self.law.level_ if self.law.bootstrap_ else None,
            "no_interval": self.law.no_interval_,
            "coefficients": self.law.coefficients_,
            "intervals": {k: list(v) for k, v in self.law.intervals_.items()},
            "points": self.points.to_dict(orient="records"),
        }


def extrapolation_audit(
    law: Law,
    table: Table,
    *,
    column: str,
    n_holdout: int = 1,
) -> Audit:
    """Fit a fresh copy of ``law`` (its configuration, bootstrap included) without the ``n_holdout`` largest
    values of ``column``, and predict those rows; for a whole-curve law, each held-out run's final measured
    point (averages over a curve hide the end-point error, the one a plan bets on)."""
    frame = pd.DataFrame(table)
    if column not in frame:
        raise LawDataError(f"holdout column '{column}' is not in the table {list(frame.columns)}")
    values = frame[column].to_numpy()
    distinct = np.unique(values)
    if not 1 <= n_holdout < len(distinct):
        raise LawDataError(
            f"cannot hold out the {n_holdout} largest of {len(distinct)} distinct '{column}' value(s): "
            "keep at least one to fit on (and hold out at least one)"
        )
    held = distinct[-n_holdout:]
    test = np.isin(values, held)
    fitted = law.clone().fit(frame[~test])
    held_rows = frame[test]
    if isinstance(fitted, ScheduleLaw):
        held_rows = losses_at_final_steps(held_rows)
    scored = held_rows.dropna(subset=[fitted.target]) if isinstance(fitted, ScheduleLaw) else held_rows
    points = scored[[c for c in dict.fromkeys(("run_id", *fitted.inputs)) if c in scored]].reset_index(
        drop=True
    )
    points["observed"] = scored[fitted.target].to_numpy(dtype=float)
    points["predicted"] = fitted.predict(held_rows)
    if fitted.bootstrap_ is not None:
        observed = points["observed"]
        points["lower"], points["upper"] = fitted.predict_interval(held_rows)
        points["inside"] = (points["lower"] <= observed) & (observed <= points["upper"])
        points["prediction_lower"], points["prediction_upper"] = fitted.predict_interval(
            held_rows, new_run=True
        )
        points["inside_prediction"] = (points["prediction_lower"] <= observed) & (
            observed <= points["prediction_upper"]
        )
    train = frame[~test]
    n_train = int(train[fitted.target].notna().sum()) if isinstance(fitted, ScheduleLaw) else len(train)
    return Audit(column=column, held_out=held.tolist(), law=fitted, points=points, n_train=n_train)
