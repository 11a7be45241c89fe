"""One family's power law y = λ·x^a (B_opt(L), lr_opt(L), B_simple(L), test loss(C)) with its band.

The fit itself is the laws layer's :class:`~archscale.laws.PowerLaw` (least squares in logs); this module
only turns it into a result: the coefficients with intervals and the fitted curve with its bootstrap band
over the observed range, ready to plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archscale.analysis.points import FAMILIES
from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.laws import LawDataError, PowerLaw
from archscale.laws.resampling import spawn_seeds

BAND_POINTS = 50


@dataclass
class PowerFit(Result):
    """``target = λ · input^exponent`` for one family; ``x`` spans the observed inputs, ``lower``/``upper``
    are the percentile band of the fitted curve (empty without a bootstrap)."""

    family: str
    target: str
    input: str
    skipped: str | None = None
    fit: dict[str, Any] | None = None
    x: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def x_range(self) -> tuple[float, float] | None:
        return (self.x[0], self.x[-1]) if self.x else None


def fit_power(
    points: pd.DataFrame, *, family: str, target: str, input: str, bootstrap: int, seed: int
) -> tuple[PowerFit, PowerLaw | None]:
    """Fit ``target`` against ``input`` over ``points``; the bootstrap resamples whole runs (``run_id``:
    points of one run are not independent), and is left out when the runs cannot calibrate an interval.

    Returns the result and the fitted law (None when the data cannot support a fit: the result's
    ``skipped`` then says why).
    """
    result = PowerFit(family=family, target=target, input=input)
    if points.empty:
        result.skipped = f"no {family} points"
        return result, None
    try:
        with recorded_warnings(result.warnings):
            law = PowerLaw(
                target=target, inputs=(input,), loss="squared", bootstrap=bootstrap, seed=seed, resample="run"
            ).fit(points)
    except LawDataError as err:
        result.skipped = f"{family}: {err}"
        return result, None
    x = np.geomspace(points[input].min(), points[input].max(), BAND_POINTS)
    result.fit, result.x, result.predicted = fit_summary(law), x.tolist(), law.predict({input: x}).tolist()
    if law.bootstrap_ is not None:
        lower, upper = law.predict_interval({input: x})
        result.lower, result.upper = lower.tolist(), upper.tolist()
    return result, law


def fit_families(
    points: pd.DataFrame, *, target: str, input: str, bootstrap: int, seed: int
) -> dict[str, tuple[PowerFit, PowerLaw | None]]:
    """:func:`fit_power` on each family's rows of ``points`` (column ``kind``), each family with its own
    random stream derived from ``seed``: the families are independent experiments."""
    return {
        family: fit_power(
            points[points["kind"] == family],
            family=family,
            target=target,
            input=input,
            bootstrap=bootstrap,
            seed=family_seed,
        )
        for family, family_seed in zip(FAMILIES, spawn_seeds(seed, len(FAMILIES)), strict=True)
    }
