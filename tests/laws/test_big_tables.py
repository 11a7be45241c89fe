"""What makes big tables fast changes no answer: predictions shared by rows at one design point, the
preconditioned bootstrap refits and the row-by-row simulation (speed itself: benchmarks/big_table.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE
from scipy.optimize import OptimizeResult

from archscale.laws import optimize
from archscale.laws.base import Law
from archscale.laws.loss_laws import WangLaw
from archscale.laws.objective import objective_and_grad, objective_batch
from archscale.laws.optimize import minimise, refit_resamples
from archscale.laws.resampling import NoiseModel


def _seeds_table(seeds: int = 3, truth: dict[str, float] = WANG_TRUE) -> pd.DataFrame:
    """Curves of 5 model scales × 3 expert counts, each trained with ``seeds`` seeds that log at the same
    token counts: every design point ``seeds`` times, with a run effect and point noise of its own."""
    rng = np.random.default_rng(5)
    configs = list(itertools.product(np.geomspace(1e8, 1e10, 5), [1.0, 4.0, 16.0], range(seeds)))
    tokens = np.geomspace(1e9, 1e11, 8)
    table = pd.DataFrame(
        [(n, e, d, f"n{n:.0e}-e{e:g}-s{s}") for n, e, s in configs for d in tokens],
        columns=["model_scale", "experts", "tokens", "run_id"],
    )
    effect = rng.normal(0.0, 0.01, len(configs))[np.arange(len(table)) // len(tokens)]
    noise = rng.normal(0.0, 0.003, len(table))
    table["loss"] = WangLaw.from_coefficients(truth).predict(table) * np.exp(effect + noise)
    return table


def _problem(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct-point design of ``table`` under the Wang law, each row's point, log y and a θ."""
    law = WangLaw()
    logx = law._log_inputs(table)
    points, index = law._design_points(logx)
    theta = law._theta(WANG_TRUE) + np.array([0.1, -0.1, 0.02, 0.01, -0.01, 0.03])
    return law._design(points), index, law._log_target(table), theta


@pytest.mark.parametrize("delta", [1e-3, math.inf])
def test_shared_predictions_give_the_objective_and_gradient_of_every_row(delta):
    table = _seeds_table()
    design, index, logy, theta = _problem(table)
    assert design.shape[1] == len(table) // 3 and index is not None  # each point is three rows
    weights = np.random.default_rng(0).integers(0, 3, len(logy)).astype(float)
    value, grad = objective_and_grad(theta, design, logy, weights, delta, index)
    every_row = design[:, index]  # the same points, one per row, as without sharing
    expected_value, expected_grad = objective_and_grad(theta, every_row, logy, weights, delta)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
    thetas = theta + np.random.default_rng(1).normal(0.0, 0.05, (4, len(theta)))
    np.testing.assert_allclose(
        objective_batch(thetas, design, logy, weights, delta, index),
        objective_batch(thetas, every_row, logy, weights, delta),
        rtol=1e-12,
    )


@pytest.mark.parametrize("delta", [1e-3, math.inf])
def test_shared_prediction_gradient_matches_central_differences(delta):
    design, index, logy, theta = _problem(_seeds_table())
    weights = np.ones(len(logy))
    _, grad = objective_and_grad(theta, design, logy, weights, delta, index)
    step = 1e-6
    numeric = [
        (
            objective_and_grad(theta + step * e, design, logy, weights, delta, index)[0]
            - objective_and_grad(theta - step * e, design, logy, weights, delta, index)[0]
        )
        / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_a_fit_on_repeated_design_points_equals_the_fit_on_every_row(monkeypatch):
    table = _seeds_table()
    shared = WangLaw(bootstrap=30, seed=2).fit(table)
    monkeypatch.setattr(Law, "_design_points", lambda self, logx: (logx, None))  # every row its own point
    every_row = WangLaw(bootstrap=30, seed=2).fit(table)
    assert shared.n_points_ == every_row.n_points_ == len(table)
    assert shared.objective_ == pytest.approx(every_row.objective_, rel=1e-9)
    np.testing.assert_allclose(shared.theta_, every_row.theta_, rtol=1e-6, atol=1e-8)
    for name, (lo, hi) in every_row.intervals_.items():
        assert shared.intervals_[name] == pytest.approx((lo, hi), rel=1e-5), name


@pytest.mark.parametrize(
    ("sigma", "gamma_max", "on_bound"),
    [(WANG_TRUE["sigma"], 5.0, None), (1e-12, 5.0, (2, -20.0)), (WANG_TRUE["sigma"], 0.05, (5, 0.05))],
    ids=["interior", "sigma-faded", "gamma-capped"],
)
def test_preconditioned_refits_reach_the_plain_optimum(sigma, gamma_max, on_bound):
    """Each refit, run in the preconditioned coordinates, ends where plain L-BFGS-B from the same start
    does (the resamples: the fit's own simulated data sets), also where refits end on a bound (``on_bound``:
    parameter, bound): log σ's lower one without an irreducible loss (its term fades: no curvature to scale
    by), or γ capped below the truth (its bound scaled with it)."""
    table = _seeds_table(truth=WANG_TRUE | {"sigma": sigma})
    design, index, logy, _ = _problem(table)
    law = WangLaw()
    bounds, delta = law._bounds(), law._huber_delta
    bounds[5] = (-5.0, gamma_max)
    theta0 = minimise(
        design, logy, np.ones(len(logy)), law._theta(WANG_TRUE)[None], bounds, delta, 1, index
    ).theta
    groups = pd.factorize(table["run_id"])[0]
    noise = NoiseModel.estimate(design[:, index], theta0, logy, groups)
    scales = noise.draw_scales(np.random.default_rng(0), 6)
    mean = np.log(np.exp(design @ theta0).sum(axis=0))[index]
    logys = list(noise.simulate(mean, groups, scales, np.random.default_rng(1)))
    weights = [np.ones(len(logy))] * len(logys)
    refits = refit_resamples(design, logys, weights, theta0, bounds, delta, index)
    assert refits.converged.all()
    plain = [minimise(design, y, np.ones(len(y)), theta0[None], bounds, delta, None, index) for y in logys]
    for theta, y, optimum in zip(refits.theta, logys, plain, strict=True):
        reached = objective_and_grad(theta, design, y, np.ones(len(y)), delta, index)[0]
        assert reached == pytest.approx(optimum.objective, rel=1e-7)
        np.testing.assert_allclose(theta, optimum.theta, rtol=1e-3, atol=1e-4)  # flat valleys
    if on_bound is not None:  # the case tests what it says: the bound binds
        parameter, bound = on_bound
        assert any(abs(optimum.theta[parameter] - bound) < 1e-9 for optimum in plain)


def test_simulated_resamples_are_the_draws_of_one_block():
    """Rows come one at a time, but the random numbers are those of the (K, n) block the bootstrap drew
    before (run effects for every resample first, then point noise), so seeds keep their intervals."""
    noise = NoiseModel(tau=0.01, s=0.002, df_between=5.0, df_within=40.0, n_groups=3)
    groups, mean = np.array([0, 0, 1, 1, 2, 2, 2]), np.linspace(1.0, 2.0, 7)
    scales = np.array([[0.01, 0.002], [0.02, 0.001], [0.005, 0.003], [0.01, 0.01]])
    rows = np.array(list(noise.simulate(mean, groups, scales, np.random.default_rng(4))))
    rng = np.random.default_rng(4)
    effects = rng.standard_normal((4, 3)) * scales[:, :1]
    expected = mean + effects[:, groups] + rng.standard_normal((4, 7)) * scales[:, 1:]
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize(("other", "converged"), [(4.163322555907897, True), (4.1633226, False)])
def test_the_best_start_counts_as_converged_when_another_met_the_test_at_its_objective(
    monkeypatch, other, converged
):
    """Over 200,000 rows the best start can end in a line search that cannot descend, its slope 1e-5 at
    the optimum (the Kaplan law on benchmarks/big_table.py): a start that converged to the same objective,
    to rounding, says it is the optimum; one that converged higher up says nothing."""
    stuck = OptimizeResult(x=np.zeros(2), fun=4.163322555907894, jac=np.array([1e-5, 0.0]), success=False)
    met = OptimizeResult(x=np.ones(2), fun=other, jac=np.zeros(2), success=True)
    results = iter([met, stuck])
    monkeypatch.setattr(optimize, "_lbfgsb", lambda *args: next(results))
    best = minimise(
        np.zeros((1, 3, 2)), np.zeros(3), np.ones(3), np.zeros((2, 2)), [(None, None)] * 2, 1e-3, None
    )
    assert best.objective == stuck.fun and best.converged is converged
