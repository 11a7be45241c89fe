"""IsoFLOP analysis (Chinchilla approach 2): the loss-minimising model size at each compute budget.

Per budget, fit loss against log size and take its minimum; then fit N_opt(C) and D_opt(C) as power laws
(least squares in log space). A budget whose lowest loss is at the smallest or largest size has no interior
minimum: it is skipped and the reason reported, never extrapolated.

``method="akima"`` interpolates with an Akima spline (Porian et al. 2024's choice, robust on wide grids);
``method="parabola"`` fits a parabola to the lowest point and ``window`` neighbours each side
(Hoffmann et al. 2022 fit a parabola to each IsoFLOP curve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.interpolate import Akima1DInterpolator

from archscale.laws.columns import Table
from archscale.laws.errors import LawDataError
from archscale.laws.power import PowerLaw
from archscale.laws.resampling import spawn_seeds


@dataclass
class IsoFlopFit:
    """Per-budget optima and the fitted N_opt(C) = k_N C^alpha_N, D_opt(C) = k_D C^alpha_D."""

    size: str
    optima: pd.DataFrame
    size_law: PowerLaw
    tokens_law: PowerLaw
    skipped: list[str] = field(default_factory=list)

    @property
    def alpha_N(self) -> float:
        return self.size_law.coefficients_["exponent"]

    @property
    def alpha_D(self) -> float:
        return self.tokens_law.coefficients_["exponent"]

    def to_dict(self) -> dict[str, Any]:
        intervals = {
            name: list(law.intervals_["exponent"])
            for name, law in (("alpha_N", self.size_law), ("alpha_D", self.tokens_law))
            if law.intervals_
        }
        return {
            "size": self.size,
            "alpha_N": self.alpha_N,
            "alpha_D": self.alpha_D,
            "intervals": intervals,
            "size_law": self.size_law.to_dict(),
            "tokens_law": self.tokens_law.to_dict(),
            "optima": self.optima.to_dict(orient="records"),
            "skipped": self.skipped,
        }


def _budgets(compute: np.ndarray, rtol: float) -> np.ndarray:
    """Group label per row: budgets within ``rtol`` of each other (6·N·D rarely hits a budget exactly)."""
    order = np.argsort(compute)
    logs = np.log(compute[order])
    labels = np.empty(len(compute), dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(logs) > math.log1p(rtol))])
    return labels


def _minimum(log_size: np.ndarray, loss: np.ndarray, method: str, window: int) -> tuple[float, float] | None:
    """(log size, loss) at the minimum of the fitted curve, or None when it has no interior minimum."""
    i = int(np.argmin(loss))
    if i in (0, len(loss) - 1):
        return None
    if method == "akima":
        spline = Akima1DInterpolator(log_size, loss)
        lo, hi = log_size[i - 1], log_size[i + 1]
        stationary = spline.derivative().roots(extrapolate=False)
        candidates = np.concatenate([[log_size[i]], stationary[(stationary > lo) & (stationary < hi)]])
        at = candidates[np.argmin(spline(candidates))]
        return float(at), float(spline(at))
    lo, hi = max(0, i - window), min(len(loss), i + window + 1)
    curvature, slope, intercept = np.polyfit(log_size[lo:hi], loss[lo:hi], 2)
    vertex = -slope / (2 * curvature)
    if curvature <= 0 or not log_size[lo] < vertex < log_size[hi - 1]:
        return None
    return float(vertex), float(intercept - slope**2 / (4 * curvature))


def isoflop_fit(
    table: Table,
    *,
    size: str = "params",
    method: Literal["akima", "parabola"] = "akima",
    window: int = 2,
    rtol: float = 1e-3,
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> IsoFlopFit:
    """IsoFLOP analysis on columns ``compute``, ``size``, ``tokens`` and ``loss``.

    Bootstrap intervals of the exponents resample budgets (their optima), not the points behind them.
    """
    if method not in ("akima", "parabola"):
        raise LawDataError(f"method must be 'akima' or 'parabola', got {method!r}")
    frame = pd.DataFrame({c: table[c] for c in ("compute", size, "tokens", "loss") if c in table})
    missing = sorted({"compute", size, "tokens", "loss"} - set(frame))
    if missing:
        raise LawDataError(
            f"IsoFLOP analysis needs column(s) {missing}; rename yours (CLI: --map COLUMN=YOURS)"
        )
    values = frame.to_numpy(dtype=float)
    if not (np.isfinite(values) & (values > 0)).all():
        raise LawDataError("IsoFLOP columns must be finite and > 0; drop rows with missing or zero values")
    frame["budget"] = _budgets(frame["compute"].to_numpy(), rtol)
    rows, skipped = [], []
    for _, group in frame.groupby("budget"):
        budget = float(group["compute"].median())
        curve = group.groupby(size, as_index=False)[["tokens", "loss"]].mean().sort_values(size)
        if len(curve) < 3:
            skipped.append(
                f"compute {budget:.4g}: only {len(curve)} model size(s); an IsoFLOP minimum needs 3+"
            )
            continue
        log_size = np.log(curve[size].to_numpy())
        loss = curve["loss"].to_numpy()
        minimum = _minimum(log_size, loss, method, window)
        if minimum is None:
            edge = (
                "smallest"
                if np.argmin(loss) == 0
                else "largest"
                if np.argmin(loss) == len(loss) - 1
                else "fitted"
            )
            skipped.append(
                f"compute {budget:.4g}: no interior minimum (lowest loss at the {edge} {size}); "
                "extend the size grid past the minimum"
            )
            continue
        best, best_loss = minimum
        log_tokens = np.interp(best, log_size, np.log(curve["tokens"].to_numpy()))
        rows.append(
            {"compute": budget, size: math.exp(best), "tokens": math.exp(log_tokens), "loss": best_loss}
        )
    if len(rows) < 2:
        raise LawDataError(
            f"IsoFLOP analysis needs 2+ budgets with an interior minimum, found {len(rows)}: "
            + "; ".join(skipped)
        )
    optima = pd.DataFrame(rows)
    fits = [
        PowerLaw(
            target=target,
            inputs=("compute",),
            loss="squared",
            bootstrap=bootstrap,
            seed=target_seed,
            resample="point",
            level=level,
        ).fit(optima)
        for target, target_seed in zip((size, "tokens"), spawn_seeds(seed, 2), strict=True)
    ]
    return IsoFlopFit(size=size, optima=optima, size_law=fits[0], tokens_law=fits[1], skipped=skipped)
