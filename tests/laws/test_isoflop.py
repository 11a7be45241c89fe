"""IsoFLOP analysis on profiles drawn from a known loss law: the exponents it implies are recovered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archscale.laws.compute_optimal import optimal_allocation
from archscale.laws.errors import LawDataError
from archscale.laws.isoflop import isoflop_fit
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.table1 import table1

EPOCH = ChinchillaLaw.from_coefficients(
    {"A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658, "sigma": 1.8172}
)


def _profiles(budgets, sizes=np.geomspace(1e7, 1e11, 25)) -> pd.DataFrame:
    rows = [{"compute": c, "params": n, "tokens": c / (6 * n)} for c in budgets for n in sizes]
    table = pd.DataFrame(rows)
    table["loss"] = EPOCH.predict(table)
    return table


@pytest.mark.parametrize("method", ["akima", "parabola"])
def test_recovers_the_allocation_exponents_of_the_law(method):
    fit = isoflop_fit(_profiles(np.geomspace(1e18, 1e22, 9)), method=method)
    assert fit.skipped == []
    assert fit.alpha_N == pytest.approx(0.3658 / (0.3478 + 0.3658), abs=0.005)
    assert fit.alpha_D == pytest.approx(0.3478 / (0.3478 + 0.3658), abs=0.005)
    # Each budget's optimum sits where the closed form puts it (the size grid is spaced ×1.47).
    for _, row in fit.optima.iterrows():
        assert row.params == pytest.approx(optimal_allocation(EPOCH, row.compute).n_opt, rel=0.03)


def test_budgets_without_an_interior_minimum_are_skipped_with_the_reason():
    table = _profiles(np.geomspace(1e18, 1e21, 4))
    optimum = optimal_allocation(EPOCH, 1e18).n_opt
    table = table[(table.compute > 1e18) | (table.params > 2 * optimum)]  # 1e18: only sizes past the optimum
    table.loc[table.compute == 1e21, "compute"] *= 1.0004  # budgets are grouped within 0.1 %
    fit = isoflop_fit(table)
    assert len(fit.optima) == 3
    assert fit.skipped == [
        "compute 1e+18: no interior minimum (lowest loss at the smallest params); extend the size grid past the minimum"
    ]


def test_refuses_when_fewer_than_two_budgets_have_a_minimum():
    with pytest.raises(LawDataError, match="needs 2\\+ budgets with an interior minimum, found 1"):
        isoflop_fit(_profiles([1e19]))
    with pytest.raises(LawDataError, match="needs column\\(s\\) \\['tokens'\\]"):
        isoflop_fit(_profiles([1e19, 1e20]).drop(columns="tokens"))


def test_isoflop_fit_adds_a_table1_row_with_intervals():
    rng = np.random.default_rng(0)
    table = _profiles(np.geomspace(1e18, 1e22, 9))
    table["loss"] *= np.exp(rng.normal(0, 0.002, len(table)))
    fit = isoflop_fit(table, bootstrap=100)
    row = table1({"ours (IsoFLOP)": fit}).iloc[-1]
    assert row.alpha_N == pytest.approx(fit.alpha_N) and row.alpha_N_lo < row.alpha_N < row.alpha_N_hi
    assert row.source == "IsoFLOP fit on 9 budgets"
