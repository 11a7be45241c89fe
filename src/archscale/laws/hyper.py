"""Hyperparameter laws from grids of runs: pick the near-optimal runs, fit a power law through them.

- Paper Eq. 12 / 15 (after Hu et al. 2024): per (size, tokens) cell, the lowest-loss run gives (L, B_opt) and
  (L, lr_opt); fit ``B_opt = λ_B · L^exponent`` (the paper's α_B = −exponent).
- DeepSeek LLM: runs within a tolerance of the best loss at each compute budget; fit B_opt(C), lr_opt(C).
- Step Law: runs within 0.25 % of the best loss per (N, D); fit lr(N, D) and B(D) by least squares in logs.

A grid's optimum is read either as its lowest cell (:func:`cell_optimum`) or as the vertex of a quadratic in
(log lr, log batch size) around it (:func:`quadratic_optimum`), each flagged when it only bounds the optimum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from archscale.laws.base import _MIN_SPREAD as MIN_SPREAD
from archscale.laws.columns import Table
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


def varying_inputs(table: Table, inputs: Sequence[str]) -> tuple[str, ...]:
    """The ``inputs`` that vary enough across ``table`` to fit an exponent (the laws' own rule): a family
    run at one total size (Step Law's MoE) can still fit its optima on the tokens alone."""
    frame = pd.DataFrame(table)
    return tuple(c for c in inputs if frame[c].max() >= frame[c].min() * MIN_SPREAD)


def explained_variance(law: PowerLaw, table: Table) -> float:
    """R² of the fitted law on the log of its target: the share of the optima's log variance the inputs
    explain, so forms on different inputs (loss alone, or size and tokens) can be set side by side."""
    frame = pd.DataFrame(table)
    logy = np.log(frame[law.target].to_numpy(float))
    residual = logy - np.log(law.predict(frame))
    total = float(np.sum((logy - logy.mean()) ** 2))
    return 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")


def _quadratic_design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])


def cell_optimum(cells: pd.Series) -> dict[str, float | bool]:
    """The grid's lowest cell (``cells``: loss indexed by ``batch_size`` and ``lr``) with, per axis, whether
    it sits at the end of its slice (the cells sharing its other hyperparameter): there it only bounds the
    optimum."""
    cells = cells.dropna()
    batch, lr = cells.idxmin()
    lrs = cells.xs(batch, level="batch_size").index
    batches = cells.xs(lr, level="lr").index
    return {
        "batch_size": float(batch),
        "lr": float(lr),
        "loss": float(cells.min()),
        "edge_batch": bool(batch in (batches.min(), batches.max())),
        "edge_lr": bool(lr in (lrs.min(), lrs.max())),
    }


def quadratic_optimum(cells: pd.Series, *, window: int = 2) -> dict[str, float | bool | str | None]:
    """The vertex of a quadratic in (log lr, log batch size), cross term included, fitted by least squares to
    the cells within ``window`` grid steps of the lowest one: a smoothed optimum that uses the neighbouring
    cells' losses instead of snapping to the grid. An axis whose vertex falls beyond the cells fitted (the
    window, or the grid where it ends first) is flagged ``edge_*`` and the value kept at the window's end: a
    bound, like an edge cell, since the quadratic is not trusted past the cells it was fitted on. ``skipped`` says why
    there is no vertex (cells that do not determine the quadratic, as on a cross-shaped sweep, or a loss
    that is not bowl-shaped there); the values are then NaN."""
    cells = cells.dropna()
    batches = np.sort(cells.index.get_level_values("batch_size").unique().to_numpy(float))
    lrs = np.sort(cells.index.get_level_values("lr").unique().to_numpy(float))
    batch, lr = cells.idxmin()
    i, j = np.searchsorted(batches, batch), np.searchsorted(lrs, lr)
    near_b = batches[max(i - window, 0) : i + window + 1]
    near_l = lrs[max(j - window, 0) : j + window + 1]
    keys = cells.index.to_frame(index=False)
    near = cells[(keys["batch_size"].isin(near_b) & keys["lr"].isin(near_l)).to_numpy()]
    missing: dict[str, float | bool | str | None] = {
        "batch_size": float("nan"), "lr": float("nan"), "loss": float("nan"),
        "edge_batch": False, "edge_lr": False,
    }  # fmt: skip
    x = np.log(near.index.get_level_values("lr").to_numpy(float))
    y = np.log(near.index.get_level_values("batch_size").to_numpy(float))
    design = _quadratic_design(x, y)
    if np.linalg.matrix_rank(design) < design.shape[1]:  # e.g. a cross-shaped sweep: no cross term
        return missing | {
            "skipped": f"the {len(near)} cells near the best one do not pin a quadratic with its cross term "
            "(it needs a 3 × 3 block of cells; a cross-shaped sweep has none)"
        }
    c = np.linalg.lstsq(design, near.to_numpy(float), rcond=None)[0]
    hessian = np.array([[2 * c[3], c[5]], [c[5], 2 * c[4]]])
    if np.any(np.linalg.eigvalsh(hessian) <= 0):
        return missing | {
            "skipped": "the loss near the best cell is not bowl-shaped (no minimum of the quadratic)"
        }
    vertex = np.linalg.solve(hessian, -c[1:3])
    lo, hi = np.log([near_l.min(), near_b.min()]), np.log([near_l.max(), near_b.max()])
    edge = (vertex < lo) | (vertex > hi)
    vertex = np.clip(vertex, lo, hi)
    return {
        "batch_size": float(np.exp(vertex[1])),
        "lr": float(np.exp(vertex[0])),
        "loss": float((_quadratic_design(vertex[:1], vertex[1:]) @ c)[0]),
        "edge_batch": bool(edge[1]),
        "edge_lr": bool(edge[0]),
        "skipped": None,
    }
