"""The bootstrap is a result asked for at a level: ``law.bootstrap_.intervals(level)`` and
``prediction_interval(table, level)`` from the stored refits, the law's own at its fitted level."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    """6 sizes × 4 token counts of L = 400/N^0.34 + 410/D^0.28 + 1.69, 1 % noise, one run per point."""
    sizes, tokens = np.meshgrid(np.geomspace(1e7, 1e9, 6), np.geomspace(1e9, 3e10, 4))
    table = pd.DataFrame({"params": sizes.ravel(), "tokens": tokens.ravel()})
    noise = np.exp(np.random.default_rng(0).normal(0.0, 0.01, len(table)))
    table["loss"] = (400 / table.params**0.34 + 410 / table.tokens**0.28 + 1.69) * noise
    table["run_id"] = np.arange(len(table))
    return table


@pytest.fixture(scope="module")
def law(ladder) -> ChinchillaLaw:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChinchillaLaw(bootstrap=40, seed=1).fit(ladder)


def test_intervals_at_any_level_come_from_the_stored_refits(law) -> None:
    boot = law.bootstrap_
    assert boot.level == law.level_ == 0.95 and boot.intervals(0.95) == boot.intervals() == law.intervals_
    half = boot.intervals(0.5)
    assert set(half) == set(law.intervals_)
    for name, (lo, hi) in half.items():
        wide_lo, wide_hi = law.intervals_[name]
        assert wide_lo <= lo <= hi <= wide_hi
    column = dict(zip(law.theta_names, boot.theta.T, strict=True))
    by_hand = {"alpha": column["alpha"], "beta": column["beta"], "A": np.exp(column["log_A"])}
    for name, samples in by_hand.items():
        assert half[name] == tuple(np.percentile(samples, [25.0, 75.0]))
    with pytest.raises(LawDataError, match="level must lie in"):
        boot.intervals(95)


def test_the_prediction_interval_at_the_fitted_level_is_the_laws(law, ladder) -> None:
    boot, rows = law.bootstrap_, ladder.iloc[::5]
    for new_run in (False, True):
        np.testing.assert_array_equal(
            boot.prediction_interval(rows, 0.95, new_run=new_run), law.predict_interval(rows, new_run=new_run)
        )
    wide_lo, wide_hi = boot.prediction_interval(rows, 0.95)
    lo, hi = boot.prediction_interval(rows, 0.5)
    assert ((wide_lo <= lo) & (lo <= hi) & (hi <= wide_hi)).all()
    np.testing.assert_array_equal((lo, hi), np.percentile(law.predict_samples(rows), [25.0, 75.0], axis=0))


def test_a_saved_fit_gives_the_same_intervals_at_any_level(law, ladder) -> None:
    saved = json.loads(json.dumps(law.to_dict()))
    again = Law.from_dict(saved)
    assert again.bootstrap_.intervals(0.5) == law.bootstrap_.intervals(0.5)
    np.testing.assert_array_equal(
        again.bootstrap_.prediction_interval(ladder, 0.8, new_run=True),
        law.bootstrap_.prediction_interval(ladder, 0.8, new_run=True),
    )
    saved["bootstrap"]["level"] = 0.5  # a fit made at 50 %: the law's own intervals are then the 50 % ones
    assert Law.from_dict(saved).intervals_ == law.bootstrap_.intervals(0.5)
