"""Reading curves: the paper's Gaussian smoothing, the warm-up cut, log-spaced sampling, run selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import LADDER_SIZES

from archscale.analysis import AnalysisError, loss_points, smooth
from archscale.analysis.points import budget_labels, log_spaced_rows, representative_runs, usable_from


def _curve(values, run_id="a") -> pd.DataFrame:
    steps = np.arange(1, len(values) + 1)
    return pd.DataFrame({"run_id": run_id, "step": steps, "tokens": steps * 100, "lm_loss": values})


def test_smoothing_kernel_is_a_gaussian_over_the_window():
    spike = np.zeros(101)
    spike[50] = 1.0
    out = smooth(_curve(spike), window=10)["lm_loss"].to_numpy()
    kernel = np.exp(-0.5 * (np.arange(-5, 6) / 2.5) ** 2)  # offsets ±window/2, sigma = window/4
    assert out[50] == pytest.approx(1 / kernel.sum())
    assert out[52] == pytest.approx(np.exp(-0.5 * (2 / 2.5) ** 2) / kernel.sum())
    assert out[44] == 0.0 and out[56] == 0.0  # nothing leaks beyond the window
    assert out.sum() == pytest.approx(1.0)  # away from the ends the kernel is normalised


def test_smoothing_keeps_constants_and_lines_and_reduces_noise():
    assert np.allclose(smooth(_curve(np.full(30, 3.0)))["lm_loss"], 3.0)  # ends renormalised: no droop
    line = np.linspace(5.0, 2.0, 60)
    assert np.allclose(smooth(_curve(line))["lm_loss"].to_numpy()[5:-5], line[5:-5])
    noise = np.random.default_rng(0).normal(0.0, 1.0, 20_000)
    kernel = np.exp(-0.5 * (np.arange(-5, 6) / 2.5) ** 2)
    expected = np.sqrt((kernel**2).sum()) / kernel.sum()
    assert smooth(_curve(noise))["lm_loss"].std() == pytest.approx(expected, rel=0.03)
    assert np.array_equal(smooth(_curve(line), window=1)["lm_loss"], line)


def test_smoothing_stays_within_a_run_and_keeps_missing_values():
    two = pd.concat([_curve(np.full(20, 1.0), "a"), _curve(np.full(20, 9.0), "b")])
    out = smooth(two.sample(frac=1.0, random_state=0))  # order does not matter
    assert np.allclose(out.loc[out.run_id == "a", "lm_loss"], 1.0)
    assert np.allclose(out.loc[out.run_id == "b", "lm_loss"], 9.0)
    gap = np.full(20, 2.0)
    gap[7] = np.nan
    result = smooth(_curve(gap))["lm_loss"].to_numpy()
    assert np.isnan(result[7]) and np.allclose(np.delete(result, 7), 2.0)
    original = _curve(np.arange(20.0))
    smooth(original)
    assert np.array_equal(original["lm_loss"], np.arange(20.0))  # the input is not modified


def test_smoothing_refuses_bad_input():
    with pytest.raises(AnalysisError, match="window must be a whole number of steps >= 1"):
        smooth(_curve(np.ones(5)), window=0)
    with pytest.raises(AnalysisError, match=r"lacks column\(s\) \['lm_loss'\]"):
        smooth(_curve(np.ones(5)).drop(columns="lm_loss"))


def test_usable_from_skips_the_warm_up_and_the_truncated_window():
    curve = _curve(np.ones(100))
    curve["lr"] = np.minimum(np.arange(1, 101) / 20, 1.0) * 1e-3  # peak reached at step 20
    assert usable_from(curve)["a"] == 2000
    assert usable_from(curve, min_steps=30)["a"] == 3100  # 30 steps after the first
    assert usable_from(curve.drop(columns="lr"), min_steps=10)["a"] == 1100


def test_log_spaced_rows_are_even_in_log_tokens():
    curve = _curve(np.ones(10_000))
    rows = log_spaced_rows(curve, 5, pd.Series({"a": 100.0}))
    assert rows["tokens"].tolist() == [100, 1000, 10_000, 100_000, 1_000_000]
    with pytest.raises(AnalysisError, match="points_per_run must be >= 2"):
        log_spaced_rows(curve, 1, pd.Series(dtype=float))


def test_budget_labels_group_budgets_within_ten_percent():
    labels = budget_labels(pd.Series([1_000_000, 999_424, 4_000_000, 1_040_000, 3_900_000]))
    assert labels.tolist() == [999_424, 999_424, 3_900_000, 999_424, 3_900_000]


def test_representative_run_is_the_longest_then_the_best():
    runs = pd.DataFrame({"run_id": list("abcd"), "kind": "dense", "N": [1e6, 1e6, 1e6, 2e6], "n_experts": 1})
    finals = pd.DataFrame(
        {"run_id": list("abcd"), "tokens": [1e6, 4e6, 3.9e6, 1e6], "loss": [2.0, 3.1, 3.0, 4.0]}
    )
    assert representative_runs(runs, finals)["run_id"].tolist() == ["c", "d"]


def test_loss_points_take_one_run_per_model_after_the_warm_up(study, points):
    runs, curve, _ = study
    assert sorted(points["model_scale"].unique()) == list(LADDER_SIZES)
    assert (points.groupby("run_id").size() == 24).all()
    ladder_ids = runs.loc[runs["D"] == 2**21, "run_id"]
    assert set(points["run_id"]) == set(ladder_ids)  # the longer ladder runs, not the grid's
    first = curve.groupby("run_id")["tokens"].min()
    # 2048 steps of 1024 tokens: 5 % warm-up ends at step 102
    assert (points.groupby("run_id")["tokens"].min() >= 102 * 1024).all()
    assert (points.groupby("run_id")["tokens"].min() > first[points["run_id"].unique()]).all()
    unfinished = runs.assign(status=np.where(runs["run_id"] == ladder_ids.iloc[0], "failed", "finished"))
    assert ladder_ids.iloc[0] not in set(loss_points(unfinished, curve)["run_id"])
