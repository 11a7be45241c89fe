"""Hyperparameter laws from grids of runs (paper Eq. 12 / 15, DeepSeek, Step Law selection rules)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from archscale.laws.errors import LawDataError
from archscale.laws.hyper import fit_optimum_law, select_optima


@pytest.fixture(scope="module")
def batch_grid() -> pd.DataFrame:
    """Per (params, tokens) cell a batch-size sweep whose best loss L sits at B_opt = 2e9 · L^-5 exactly."""
    rows = []
    for n, d in itertools.product([1e8, 3e8, 1e9], [1e9, 1e10, 1e11]):
        best_loss = 1.8 + 60 / n**0.2 + 300 / d**0.25
        b_opt = 2e9 * best_loss**-5.0
        for factor in (0.25, 0.5, 1.0, 2.0, 4.0):  # loss grows quadratically in log B away from B_opt
            rows.append(
                {
                    "params": n,
                    "tokens": d,
                    "batch_size": b_opt * factor,
                    "loss": best_loss + 0.01 * np.log(factor) ** 2,
                }
            )
    return pd.DataFrame(rows)


def test_eq12_recovers_the_batch_size_law(batch_grid):
    law = fit_optimum_law(batch_grid, target="batch_size", inputs=("loss",), by=("params", "tokens"))
    assert law.n_points_ == 9
    assert law.coefficients_["lambda"] == pytest.approx(2e9, rel=1e-6)
    assert law.coefficients_["exponent"] == pytest.approx(-5.0, abs=1e-6)  # the paper's alpha_B = 5


def test_tolerance_keeps_near_optimal_runs(batch_grid):
    best = select_optima(batch_grid, ("params", "tokens"))
    assert len(best) == 9 and (best.groupby(["params", "tokens"]).size() == 1).all()
    # 0.01·ln(2)² = 0.0048 above the best: within 0.25 % of a loss near 2-3, so both neighbours are kept.
    near = select_optima(batch_grid, ("params", "tokens"), tolerance=0.0025)
    assert len(near) == 27
    with pytest.raises(LawDataError, match="needs column\\(s\\) \\['compute'\\]"):
        select_optima(batch_grid, ("compute",))
    with pytest.raises(LawDataError, match="tolerance must be >= 0"):
        select_optima(batch_grid, ("params",), tolerance=-0.1)
