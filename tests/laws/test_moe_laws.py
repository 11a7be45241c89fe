"""The MoE design-space laws (issue 15) recover known coefficients from synthetic data."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from laws_helpers import with_noise

from archscale.laws import GranularityLaw

# synthetic truth of Krajewski et al.'s form, magnitudes of a small-model study (not the published fit)
GRANULARITY_TRUE = {"a": 20.0, "b": 30.0, "c": 0.5, "g": 3.0, "alpha": 0.12, "beta": 0.15, "gamma": 0.6}


@pytest.fixture(scope="module")
def granularity_grid() -> pd.DataFrame:
    """5 sizes × 4 token counts × 5 granularities, with the law's exact loss."""
    grid = pd.DataFrame(
        list(
            itertools.product(
                np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4), [1.0, 2.0, 4.0, 8.0, 16.0]
            )
        ),
        columns=["params", "tokens", "granularity"],
    )
    grid["loss"] = GranularityLaw.from_coefficients(GRANULARITY_TRUE).predict(grid)
    return grid


def test_granularity_law_recovers_its_coefficients(granularity_grid):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean fit: no bound hits, converged
        law = GranularityLaw().fit(granularity_grid)
    assert law.converged_
    for name, value in GRANULARITY_TRUE.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=1e-3), name


def test_granularity_law_terms_match_a_hand_computation(granularity_grid):
    row = granularity_grid.iloc[7]
    t = GRANULARITY_TRUE
    by_hand = t["c"] + (t["g"] / row.granularity ** t["gamma"] + t["a"]) / row.params ** t["alpha"]
    by_hand += t["b"] / row.tokens ** t["beta"]
    assert row.loss == pytest.approx(by_hand, rel=1e-12)


def test_granularity_law_with_noise_keeps_gamma_within_its_interval(granularity_grid):
    noisy = with_noise(granularity_grid, 0.003, seed=0)
    law = GranularityLaw(bootstrap=50, seed=2).fit(noisy)
    low, high = law.intervals_["gamma"]
    assert low < GRANULARITY_TRUE["gamma"] < high
    assert law.coefficients_["gamma"] == pytest.approx(GRANULARITY_TRUE["gamma"], rel=0.25)


def test_granularity_law_needs_several_granularities(granularity_grid):
    from archscale.laws.errors import LawDataError

    with pytest.raises(LawDataError, match="several granularities"):
        GranularityLaw().fit(granularity_grid.assign(granularity=1.0))
