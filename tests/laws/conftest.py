"""Fixtures of the laws tests: synthetic tables with known laws, and the public data sets."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE

from archscale.laws.loss_laws import WangLaw


@pytest.fixture(scope="session")
def wang_grid() -> pd.DataFrame:
    """5 model scales × 4 token counts × 3 expert counts, with the exact Wang-law loss."""
    grid = pd.DataFrame(
        list(itertools.product(np.geomspace(1e7, 3e9, 5), np.geomspace(1e9, 1e11, 4), [1.0, 4.0, 16.0])),
        columns=["model_scale", "tokens", "experts"],
    )
    grid["loss"] = WangLaw.from_coefficients(WANG_TRUE).predict(grid)
    return grid


@pytest.fixture(scope="session")
def clark_final(shared_data) -> pd.DataFrame:
    """Clark et al. 2022 final-step validation losses, one row per run (223 runs)."""
    curves = pd.read_csv(shared_data / "clark2022_routing" / "curves.csv.gz")
    return curves.loc[curves.groupby("hyper_id")["step"].idxmax()]
