"""The two-step downstream laws (Bhagia et al. 2024) and loss-to-loss (Brandfonbrener et al. 2024)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from archscale.laws import Law
from archscale.laws.downstream_laws import (
    AccuracyLaw,
    LadderTruth,
    LossToLossLaw,
    TaskLossLaw,
    TwoStepLaw,
    final_values,
    step2_points,
    trailing_mean,
)
from archscale.laws.errors import IntervalWarning, LawDataError
from archscale.laws.resampling import spawn_seeds

SIZES = 20e6 * 2.0 ** np.arange(6)  # 20M … 640M, × 4 token counts (1xC, 2xC, 5xC, 10xC): 24 runs
TARGET = pd.DataFrame({"params": [6.4e9], "tokens": [400 * 6.4e9]})  # 10× the largest size, 400 tokens/param


def _run(run_id: str, steps: list[int], loss: list[float], accuracy: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"run_id": run_id, "params": 1e8, "tokens": [1e6 * s for s in steps], "step": steps,
                         "task_loss": loss, "accuracy": accuracy})  # fmt: skip


def test_final_value_is_the_mean_of_the_last_five_evaluations_by_step():
    steps = [7, 1, 3, 9, 5, 2, 8, 4, 6]  # shuffled: the last five are steps 5-9
    table = _run("r", steps, [float(s) for s in steps], [s / 100 for s in steps])
    row = final_values(table).iloc[0]
    assert row["task_loss"] == pytest.approx((5 + 6 + 7 + 8 + 9) / 5)  # last 4: 7.5, last 6: 6.5
    assert row["accuracy"] == pytest.approx(0.07)
    assert row["tokens"] == 9e6 and row["evaluations"] == 5


def test_step2_drops_the_first_tenth_rounded_up_then_smooths_the_task_loss_trailing():
    # 11 checkpoints: ceil(1.1) = 2 dropped (int() or round() would drop 1)
    steps = list(range(1, 12))
    points = step2_points(_run("r", steps, [float(s) for s in steps], [s / 100 for s in steps]))
    assert points["step"].tolist() == list(range(3, 12))
    # losses 3, 4, 5, ...: trailing means over up to 5 values, the first four over what exists
    expected = [3, 3.5, 4, 4.5, 5, 6, 7, 8, 9]
    assert points["task_loss"].to_numpy() == pytest.approx(expected)
    assert points["accuracy"].to_numpy() == pytest.approx([s / 100 for s in range(3, 12)])  # not smoothed


def test_trailing_mean_matches_a_convolution_inside_the_series():
    values = np.random.default_rng(0).normal(size=30)
    inner = np.convolve(values, np.ones(5) / 5, mode="valid")  # the mean of values[i-4 .. i] at i >= 4
    assert trailing_mean(values, 5)[4:] == pytest.approx(inner)
    assert trailing_mean(values, 5)[1] == pytest.approx(values[:2].mean())


def test_step1_recovers_a_known_task_loss_law():
    truth = LadderTruth()
    grid = pd.DataFrame([(n, m * 20 * n) for n in SIZES for m in (1, 2, 5, 10)], columns=["params", "tokens"])
    grid["task_loss"] = truth.task_loss(grid["params"].to_numpy(), grid["tokens"].to_numpy())
    fitted = TaskLossLaw().fit(grid).coefficients_
    for name, value in truth.step1.items():
        assert fitted["sigma" if name == "E" else name] == pytest.approx(value, rel=1e-4)


def test_step2_recovers_a_known_sigmoid():
    truth = LadderTruth(run_sd=0.0, checkpoint_sd=0.0, accuracy_sd=0.0)
    law = AccuracyLaw(window=1, anchor=False).fit(truth.ladder(SIZES))
    assert law.coefficients_ == pytest.approx(dict(truth.step2), rel=1e-5)


def test_the_anchor_point_enters_the_least_squares_fit():
    # a task whose ceiling is 0.8, so the (0, 1) anchor pulls the fit away from the checkpoints' own optimum
    truth = LadderTruth(step2={"a": -0.55, "L0": 0.9, "k": 5.0, "b": 0.8}, run_sd=0.0, checkpoint_sd=0.0)
    table = truth.ladder(SIZES)
    points = step2_points(table)
    x, y = points["task_loss"].to_numpy(), points["accuracy"].to_numpy()

    def sigmoid(loss, a, l0, k, b):
        return a / (1 + np.exp(-k * (loss - l0))) + b

    bounds = ([-1.0, 0.0, 0.0, 0.0], [0.0, np.inf, np.inf, 1.0])  # the authors' curve_fit, their start
    with_anchor = curve_fit(
        sigmoid, np.append(x, 0.0), np.append(y, 1.0), p0=[-0.75, 0.9, 3, 1], bounds=bounds
    )[0]
    without = curve_fit(sigmoid, x, y, p0=[-0.75, 0.9, 3, 1], bounds=bounds)[0]
    fitted = np.array(list(AccuracyLaw().fit(table).coefficients_.values()))
    assert fitted == pytest.approx(with_anchor, rel=1e-3)
    assert not np.allclose(fitted, without, rtol=1e-2)


def test_the_chain_recovers_a_noise_free_truth():
    truth = LadderTruth(run_sd=0.0, checkpoint_sd=0.0, accuracy_sd=0.0)
    law = TwoStepLaw().fit(truth.ladder(SIZES))
    true = truth.accuracy(truth.task_loss(TARGET["params"].to_numpy(), TARGET["tokens"].to_numpy()))
    # the last-5 mean (B × 1.03 here) and the trailing smoothing's lag are the method's own biases
    assert law.predict(TARGET) == pytest.approx(true, abs=0.005)


def _refused(table: pd.DataFrame, reason: str) -> None:
    with pytest.warns(IntervalWarning, match=reason):
        law = TwoStepLaw(bootstrap=20, chance=0.25).fit(table)
    assert law.bootstrap_ is None and reason in law.no_interval_
    with pytest.raises(LawDataError, match=reason):
        law.predict_interval(TARGET, new_run=True)


def test_a_task_at_chance_gets_no_interval():
    chance = LadderTruth(step2={"a": 0.0, "L0": 0.9, "k": 5.0, "b": 0.25})
    _refused(chance.ladder(SIZES, seed=3), "at chance")


def test_a_flat_task_above_chance_gets_no_interval():
    flat = LadderTruth(step2={"a": -0.01, "L0": 0.9, "k": 5.0, "b": 0.6})
    _refused(flat.ladder(SIZES, seed=4), "slope is not identified")


def test_too_few_sizes_get_no_interval():
    with pytest.warns(IntervalWarning, match="2 model size.*calibrated from 3"):
        law = TwoStepLaw(bootstrap=20, chance=0.25).fit(LadderTruth().ladder(SIZES[:2]))
    assert law.bootstrap_ is None


def test_a_ladder_smaller_than_any_calibrated_gets_no_interval():
    # 3 sizes x 2 budgets = 6 runs: above the 5 step 1 needs to fit, below the 12 the simulation calibrated
    with pytest.warns(IntervalWarning, match="6 runs.*12 runs"):
        law = TwoStepLaw(bootstrap=20, chance=0.25).fit(LadderTruth().ladder(SIZES[:3], multipliers=(1, 10)))
    assert law.bootstrap_ is None


def test_chained_intervals_cover_a_new_run_at_90_to_98_percent():
    """Seeded simulation: 24-run ladders with run effects and checkpoint noise in both steps; the share of
    new runs at 10× the largest size whose final accuracy falls in the 95 % prediction interval, averaged
    over the ladders (benchmarks/downstream_calibration.py runs the larger version)."""
    truth, coverage = LadderTruth(), []
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for replicate in range(30):
            ladder_seed, new_seed = spawn_seeds(replicate, 2)
            ladder = truth.ladder(SIZES, seed=ladder_seed)
            law = TwoStepLaw(bootstrap=100, chance=0.25, seed=replicate).fit(ladder)
            lo, hi = law.predict_interval(TARGET, new_run=True)
            new = truth.new_runs(6.4e9, 400 * 6.4e9, 500, np.random.default_rng(new_seed))
            coverage.append(np.mean((lo[0] <= new) & (new <= hi[0])))
    assert 0.90 <= np.mean(coverage) <= 0.98
    assert time.process_time() - start < 60


def test_intervals_follow_the_seed_and_survive_a_json_round_trip():
    table = LadderTruth().ladder(SIZES, seed=5)
    law = TwoStepLaw(bootstrap=30, chance=0.25, seed=1).fit(table)
    again = TwoStepLaw(bootstrap=30, chance=0.25, seed=1).fit(table)
    other = TwoStepLaw(bootstrap=30, chance=0.25, seed=2).fit(table)
    band = law.predict_interval(TARGET, new_run=True)
    assert np.array_equal(band, again.predict_interval(TARGET, new_run=True))
    assert not np.array_equal(band, other.predict_interval(TARGET, new_run=True))
    loaded = Law.from_dict(law.to_dict())
    assert loaded.predict(TARGET) == pytest.approx(law.predict(TARGET))
    assert np.allclose(loaded.predict_interval(TARGET, new_run=True), band)
    lo, hi = law.predict_task_loss_interval(TARGET)
    assert lo[0] < law.predict_task_loss(TARGET)[0] < hi[0]


def test_loss_to_loss_recovers_K_and_kappa_and_refuses_losses_below_E():
    x = np.linspace(2.2, 3.5, 12)
    table = pd.DataFrame({"val_loss": x, "task_loss": 0.93 * (x - 1.97) ** 1.08 + 2.12})
    law = LossToLossLaw(e_x=1.97, e_y=2.12).fit(table)
    assert law.coefficients_ == pytest.approx({"K": 0.93, "kappa": 1.08})
    assert Law.from_dict(law.to_dict()).predict({"val_loss": [2.1]}) == pytest.approx(
        0.93 * 0.13**1.08 + 2.12
    )
    with pytest.raises(LawDataError, match="irreducible"):
        law.predict({"val_loss": [1.9]})


def test_bad_tables_are_refused_with_the_column_named():
    table = LadderTruth().ladder(SIZES[:2])
    with pytest.raises(LawDataError, match="task_loss"):
        TwoStepLaw().fit(table.drop(columns="task_loss"))
    with pytest.raises(LawDataError, match="accuracy"):
        TwoStepLaw().fit(table.assign(accuracy=table["accuracy"] * 100))
