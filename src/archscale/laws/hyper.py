"""Hyperparameter laws from grids of runs: pick the near-optimal runs, fit a power law through them.

- Paper Eq. 12 / 15 (after Hu et al. 2024): per (size, tokens) cell, the lowest-loss run gives (L, B_opt) and
  (L, lr_opt); fit ``B_opt = λ_B · L^exponent`` (the paper's α_B = −exponent).
- DeepSeek LLM: runs within a tolerance of the best loss at each compute budget; fit B_opt(C), lr_opt(C).
- Step Law: runs within 0.25 % of the best loss per (N, D); fit lr(N, D) and B(D) by least squares in logs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from archscale.laws.base import Table
from archscale.laws.errors import LawDataError
from archscale.laws.power import PowerLaw
from archscale.laws.resampling import spawn_seeds


def select_optima(
    table: Table, by: Sequence[str], *, loss: str = "loss", tolerance: float = 0.0
) -> pd.DataFrame:
    """Rows whose ``loss`` is within ``(1 + tolerance)`` of the lowest in their ``by`` group (0: the best only)."""
    frame = pd.DataFrame(table)
    missing = [c for c in (*by, loss) if c not in frame]
    if missing:
        raise LawDataError(f"selecting optima needs column(s) {missing}; the table has {list(frame.columns)}")
    if tolerance < 0:
        raise LawDataError(f"tolerance must be >= 0 (a fraction of the best loss), got {tolerance}")
    best = frame.groupby(list(by))[loss].transform("min")
    return frame[frame[loss] <= best * (1.0 + tolerance)]


def fit_optimum_law(
    table: Table,
    *,
    target: str,
    inputs: Sequence[str],
    by: Sequence[str],
    loss: str = "loss",
    tolerance: float = 0.0,
    law_loss: str = "squared",
    bootstrap: int = 0,
    seed: int = 0,
) -> PowerLaw:
    """Power law of the hyperparameter ``target`` against ``inputs``, over the near-optimal runs of each group.

    E.g. paper Eq. 12: ``target="batch_size", inputs=("loss",), by=("params", "tokens")``.
    """
    optima = select_optima(table, by, loss=loss, tolerance=tolerance)
    law = PowerLaw(
        target=target, inputs=tuple(inputs), loss=law_loss, bootstrap=bootstrap, seed=seed, resample="point"
    )
    return law.fit(optima)


def fit_step_law(
    table: Table, *, tolerance: float = 0.0025, bootstrap: int = 0, seed: int = 0
) -> tuple[PowerLaw, PowerLaw]:
    """Step Law's procedure: ``lr = λ·params^a·tokens^b`` and ``batch_size = λ·tokens^c`` (batch in tokens)."""
    lr_seed, batch_seed = spawn_seeds(seed, 2)  # two fits, two independent resampling streams
    common = {"by": ("params", "tokens"), "tolerance": tolerance, "bootstrap": bootstrap}
    lr = fit_optimum_law(table, target="lr", inputs=("params", "tokens"), seed=lr_seed, **common)
    batch = fit_optimum_law(table, target="batch_size", inputs=("tokens",), seed=batch_seed, **common)
    return lr, batch
