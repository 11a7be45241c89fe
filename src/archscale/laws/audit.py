"""Extrapolation audit: hold out the largest models (or budgets), fit the rest, predict what was held out.

This is the paper's Figure 1 procedure (fit the 200M and 700M MoE models, predict the 1.5B one) made
quantitative: the relative error of each held-out point and whether it falls inside the bootstrap interval.
The interval is that of the fitted curve, so coverage below the nominal level also flags run-to-run noise
and misspecification, which no curve interval includes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from archscale.laws.base import Law, Table
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
        """Share of held-out points inside the interval (None without a bootstrap)."""
        return float(self.points["inside"].mean()) if "inside" in self.points else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "held_out": self.held_out,
            "n_train": self.n_train,
            "n_test": len(self.points),
            "mean_abs_rel_error": self.mean_abs_rel_error,
            "max_abs_rel_error": self.max_abs_rel_error,
            "coverage": self.coverage,
            "level": self.law.level_ if self.law.bootstrap_ else None,
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
    bootstrap: int = 200,
    seed: int = 0,
    resample: Literal["auto", "run", "point"] = "auto",
    level: float = 0.95,
) -> Audit:
    """Fit a fresh copy of ``law`` without the ``n_holdout`` largest values of ``column``, predict those rows."""
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
    fitted = law.clone().fit(frame[~test], bootstrap=bootstrap, seed=seed, resample=resample, level=level)
    held_rows = frame[test]
    points = held_rows[[c for c in (*fitted.inputs, "run_id") if c in held_rows]].reset_index(drop=True)
    points["observed"] = held_rows[fitted.target].to_numpy(dtype=float)
    points["predicted"] = fitted.predict(held_rows)
    if bootstrap:
        points["lower"], points["upper"] = fitted.predict_interval(held_rows)
        points["inside"] = (points["lower"] <= points["observed"]) & (points["observed"] <= points["upper"])
    return Audit(column=column, held_out=held.tolist(), law=fitted, points=points, n_train=int((~test).sum()))
