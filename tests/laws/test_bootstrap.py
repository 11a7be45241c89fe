"""Bootstrap: reproducible, run-level by default, and calibrated on data from a known law."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import WangLaw
from archscale.laws.optimize import resample_weights


def test_resample_weights_keep_runs_together():
    groups = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    weights = resample_weights(groups, 200, np.random.default_rng(0))
    assert weights.shape == (200, 10)
    for run in range(4):
        members = weights[:, groups == run]
        assert (members == members[:, :1]).all()  # every point of a run drawn equally often
    # Each resample draws 4 runs: the per-run counts sum to 4.
    per_run = np.stack([weights[:, groups == run][:, 0] for run in range(4)], axis=1)
    assert (per_run.sum(axis=1) == 4).all()


def test_same_seed_same_intervals_and_run_resampling_by_default(wang_grid):
    table = with_noise(wang_grid, 0.01, seed=0)
    table["run_id"] = (np.arange(len(table)) // 4).astype(str)  # 15 "curves" of 4 points
    first = WangLaw().fit(table, bootstrap=30, seed=7)
    again = WangLaw().fit(table, bootstrap=30, seed=7)
    other = WangLaw().fit(table, bootstrap=30, seed=8)
    assert first.bootstrap_["resample"] == "run"
    assert first.intervals_ == again.intervals_
    assert first.intervals_ != other.intervals_
    assert WangLaw().fit(table, bootstrap=5, resample="point").bootstrap_["resample"] == "point"
    with pytest.raises(LawDataError, match="needs a 'run_id' column"):
        WangLaw().fit(table.drop(columns="run_id"), bootstrap=5, resample="run")


@pytest.mark.slow
def test_intervals_cover_the_true_coefficients_in_most_seeds(wang_grid):
    """Calibration: 20 noisy data sets from a known law; 95 % intervals should cover the truth ~95 % of the time."""
    truth = WANG_TRUE | {"alpha_N": WANG_TRUE["beta"] / (WANG_TRUE["alpha"] + WANG_TRUE["beta"])}
    seeds = range(20)
    covered = dict.fromkeys(truth, 0)
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = WangLaw().fit(with_noise(wang_grid, 0.01, seed), bootstrap=100, seed=seed)
        for name, value in truth.items():
            lo, hi = law.intervals_[name]
            covered[name] += lo <= value <= hi
    coverage = {name: count / len(seeds) for name, count in covered.items()}
    print("coverage of 95 % intervals over 20 seeds:", coverage)
    assert min(coverage.values()) >= 0.8, coverage
    assert np.mean(list(coverage.values())) >= 0.9, coverage
