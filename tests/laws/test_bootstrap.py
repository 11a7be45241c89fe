"""Bootstrap: reproducible, run-level by default, and calibrated on data from a known law."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError, ResamplingWarning
from archscale.laws.loss_laws import ChinchillaLaw, WangLaw
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
    first = WangLaw(bootstrap=30, seed=7).fit(table)
    again = WangLaw(bootstrap=30, seed=7).fit(table)
    other = WangLaw(bootstrap=30, seed=8).fit(table)
    assert first.bootstrap_.resample == "run"
    assert first.intervals_ == again.intervals_
    assert first.intervals_ != other.intervals_
    assert WangLaw(bootstrap=5, resample="point").fit(table).bootstrap_.resample == "point"
    with pytest.raises(LawDataError, match="needs a 'run_id' column"):
        WangLaw(bootstrap=5, resample="run").fit(table.drop(columns="run_id"))


@pytest.mark.slow
def test_a_clone_and_a_saved_fit_refit_to_the_same_intervals(wang_grid):
    """The estimator holds its whole configuration (bootstrap, seed, resample, level, method): a clone, and
    a law rebuilt from its saved JSON, refit the table to exactly the same coefficients and intervals."""
    table = with_noise(wang_grid, 0.01, seed=0)
    table["run_id"] = (np.arange(len(table)) // 4).astype(str)
    law = WangLaw(bootstrap=25, seed=3, resample="point", level=0.9, method="resample").fit(table)
    saved = json.loads(json.dumps(law.to_dict()))
    for again in (law.clone().fit(table), Law.from_dict(saved).clone().fit(table)):
        assert again.config() == law.config()
        assert again.intervals_ == law.intervals_ and again.coefficients_ == law.coefficients_
    assert law.bootstrap_.level == 0.9 and law.bootstrap_.resample == "point"
    assert law.intervals_ != WangLaw(bootstrap=25, seed=3).fit(table).intervals_  # the config matters
    with pytest.raises(LawDataError, match="level must lie in"):
        WangLaw(level=95)


def test_intervals_cover_the_true_coefficients_in_most_seeds(wang_grid):
    """Calibration: 20 noisy data sets from a known law; 95 % intervals should cover the truth ~95 % of the time."""
    truth = WANG_TRUE | {"alpha_N": WANG_TRUE["beta"] / (WANG_TRUE["alpha"] + WANG_TRUE["beta"])}
    seeds = range(20)
    covered = dict.fromkeys(truth, 0)
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = WangLaw(bootstrap=100, seed=seed).fit(with_noise(wang_grid, 0.01, seed))
        for name, value in truth.items():
            lo, hi = law.intervals_[name]
            covered[name] += lo <= value <= hi
    coverage = {name: count / len(seeds) for name, count in covered.items()}
    print("coverage of 95 % intervals over 20 seeds:", coverage)
    assert min(coverage.values()) >= 0.8, coverage
    assert np.mean(list(coverage.values())) >= 0.9, coverage


def test_refits_that_end_on_a_bound_are_counted_and_reported(wang_grid):
    """With no irreducible loss in the data (σ → 0), the fit and many refits end on σ's lower bound: the
    count comes with the interval, in the summary and the JSON, and a warning says the interval is rough."""
    table = wang_grid.copy()
    table["loss"] = WangLaw.from_coefficients(WANG_TRUE | {"sigma": 1e-12}).predict(table)
    table = with_noise(table, 0.01, seed=3)
    with pytest.warns(ResamplingWarning, match=r"ended on a bound \(\{'log_sigma': \d+\}\)"):
        law = WangLaw(bootstrap=40, seed=0).fit(table)
    hits = law.bootstrap_.on_bound["log_sigma"]
    assert 2 <= hits <= 40
    assert f"on a bound: {{'log_sigma': {hits}}}" in law.summary()
    assert law.to_dict()["bootstrap"]["on_bound"] == {"log_sigma": hits}


def test_parametric_noise_model_recovers_a_known_run_effect():
    """Simulated curves with a 1 % run effect and 0.2 % point noise: the noise model estimates both."""
    rng = np.random.default_rng(11)
    sizes, tokens = np.geomspace(1e7, 1e9, 12), np.geomspace(1e8, 1e10, 20)
    table = pd.DataFrame(
        [{"run_id": i, "model_scale": n, "tokens": d} for i, n in enumerate(sizes) for d in tokens]
    )
    law = ChinchillaLaw.from_coefficients(
        {"A": 300.0, "B": 800.0, "alpha": 0.3, "beta": 0.32, "sigma": 1.7}, size="model_scale"
    )
    effect = rng.normal(0.0, 0.01, len(sizes))[table["run_id"]]
    table["loss"] = law.predict(table) * np.exp(effect + rng.normal(0.0, 0.002, len(table)))
    fitted = ChinchillaLaw(size="model_scale", bootstrap=20, seed=1).fit(table)
    noise = fitted.bootstrap_.noise
    assert noise["n_groups"] == 12 and noise["df_between"] == pytest.approx(12 - 3, abs=0.3)
    assert noise["tau"] == pytest.approx(0.01, rel=0.5)  # 9 degrees of freedom: ±~25 % sampling error
    assert noise["s"] == pytest.approx(0.002, rel=0.15)  # ~230 degrees of freedom, but a robust fit
