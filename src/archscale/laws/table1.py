"""The paper's Table 1 (allocation exponents α_N, α_D), regenerated with the user's own fits beside it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from archscale.laws.base import Law
from archscale.laws.catalogue import table1_rows
from archscale.laws.errors import LawDataError
from archscale.laws.isoflop import IsoFlopFit
from archscale.laws.loss_laws import ChinchillaLaw

_NAN_INTERVAL = (np.nan, np.nan)


def _fitted_row(label: str, fit: Law | IsoFlopFit) -> dict[str, object]:
    if isinstance(fit, IsoFlopFit):
        values = {"alpha_N": fit.alpha_N, "alpha_D": fit.alpha_D}
        intervals = {
            n: law.intervals_.get("exponent", _NAN_INTERVAL)
            for n, law in (("alpha_N", fit.size_law), ("alpha_D", fit.tokens_law))
        }
        source = f"IsoFLOP fit on {len(fit.optima)} budgets"
    elif isinstance(fit, ChinchillaLaw):
        values, intervals = fit.derived_, fit.intervals_
        source = f"{fit.name} law fit on {fit.n_points_} points"
    else:
        raise LawDataError(
            f"Table 1 needs a chinchilla/wang law or an IsoFLOP fit for '{label}', got {fit.name}"
        )
    row: dict[str, object] = {"architecture": label, "source": source}
    for name in ("alpha_D", "alpha_N"):
        lo, hi = intervals.get(name, _NAN_INTERVAL)
        row |= {name: values[name], f"{name}_lo": lo, f"{name}_hi": hi}
    return row


ALPHA_N_GAIN = "α_N(MoE) / α_N(dense) − 1"
"""The paper's "16.37 % improvement in data utilization" is exactly the ratio of its Table 1 α_N values,
0.590 / 0.507 − 1; a compute-equivalent gain (extra compute dense needs for MoE's loss) is another quantity."""


def alpha_N_gain(moe: float | np.ndarray, dense: float | np.ndarray) -> float | np.ndarray:
    """The paper's data-efficiency figure from two allocation exponents: ``α_N(MoE) / α_N(dense) − 1``."""
    return moe / dense - 1.0


def published_alpha_N() -> dict[str, float]:
    """α_N of the paper's own Table 1 rows, by family: dense 0.507, MoE 0.590."""
    rows = {entry.table1_label: entry.allocation[0] for entry in table1_rows()}
    return {"dense": rows["Dense Model"], "moe": rows["MoE Model"]}


def published_alpha_N_gain() -> float:
    """:func:`alpha_N_gain` of the paper's own Table 1 rows (16.37 %)."""
    alpha = published_alpha_N()
    return float(alpha_N_gain(alpha["moe"], alpha["dense"]))


def table1(fits: Mapping[str, Law | IsoFlopFit] | None = None) -> pd.DataFrame:
    """Published rows of the paper's Table 1, then one row per fit (``label → fitted law``) with intervals."""
    rows = [
        {
            "architecture": entry.table1_label,
            "source": entry.source,
            "alpha_D": entry.allocation[1],
            "alpha_D_lo": np.nan,
            "alpha_D_hi": np.nan,
            "alpha_N": entry.allocation[0],
            "alpha_N_lo": np.nan,
            "alpha_N_hi": np.nan,
        }
        for entry in table1_rows()
    ]
    rows += [_fitted_row(label, fit) for label, fit in (fits or {}).items()]
    columns = [
        "architecture",
        "alpha_D",
        "alpha_D_lo",
        "alpha_D_hi",
        "alpha_N",
        "alpha_N_lo",
        "alpha_N_hi",
        "source",
    ]
    return pd.DataFrame(rows)[columns]


def format_table1(table: pd.DataFrame) -> str:
    """Markdown rendering: value with its interval when there is one."""

    def cell(row: pd.Series, name: str) -> str:
        value = f"{row[name]:.3f}"
        if np.isfinite(row[f"{name}_lo"]):
            value += f" [{row[f'{name}_lo']:.3f}, {row[f'{name}_hi']:.3f}]"
        return value

    lines = ["| Model Architecture | α_D | α_N | source |", "|---|---|---|---|"]
    lines += [
        f"| {row['architecture']} | {cell(row, 'alpha_D')} | {cell(row, 'alpha_N')} | {row['source']} |"
        for _, row in table.iterrows()
    ]
    return "\n".join(lines)
