"""Multi-start L-BFGS-B and the warm-started bootstrap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from archscale.laws.objective import objective_and_grad, objective_batch

Bounds = list[tuple[float | None, float | None]]

# L-BFGS-B's default ftol (2.2e-9 relative) stops visibly short of the optimum on these tiny objectives
# (a summed Huber loss with delta = 1e-3 is ~1e-3); run to machine precision instead.
_OPTIONS = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000, "maxfun": 20_000}


@dataclass(frozen=True)
class Optimum:
    """The best L-BFGS-B result over all starts."""

    theta: np.ndarray
    objective: float
    converged: bool


def _lbfgsb(
    start: np.ndarray, design: np.ndarray, logy: np.ndarray, weights: np.ndarray, delta: float, bounds: Bounds
):
    return minimize(
        objective_and_grad,
        start,
        args=(design, logy, weights, delta),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=_OPTIONS,
    )


def _converged(result) -> bool:
    """L-BFGS-B's own test, or a line search that cannot descend from a point whose gradient is at rounding
    level (this happens when least squares already gave the exact optimum)."""
    return bool(result.success or np.max(np.abs(result.jac)) <= 1e-6 * (1.0 + abs(result.fun)))


def _rank(starts: np.ndarray, design: np.ndarray, logy: np.ndarray, weights: np.ndarray, delta: float):
    """Objective at every start, in chunks that keep the (terms, points, starts) array near 16 MB."""
    chunk = max(1, 2_000_000 // design[..., 0].size)
    parts = [
        objective_batch(starts[i : i + chunk], design, logy, weights, delta)
        for i in range(0, len(starts), chunk)
    ]
    return np.concatenate(parts)


def minimise(
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
    bounds: Bounds,
    delta: float,
    n_starts: int | None,
) -> Optimum:
    """Rank every start by its objective (one vectorised pass), then run L-BFGS-B from the ``n_starts`` best.

    ``n_starts=None`` runs L-BFGS-B from every start, as Hoffmann et al. did over their full grid.
    """
    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    upper = np.array([np.inf if hi is None else hi for _, hi in bounds])
    starts = np.clip(starts, lower, upper)
    if n_starts is not None and len(starts) > n_starts:
        ranked = np.argsort(_rank(starts, design, logy, weights, delta), kind="stable")
        starts = starts[ranked[:n_starts]]
    best = min((_lbfgsb(s, design, logy, weights, delta, bounds) for s in starts), key=lambda r: r.fun)
    return Optimum(theta=best.x, objective=float(best.fun), converged=_converged(best))


def resample_weights(groups: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap as integer weights, shape ``(n_resamples, n_points)``: how often each point is drawn.

    ``groups`` holds a group code per point (run ids, or ``arange(n)`` for point resampling): whole groups
    are drawn with replacement, so the points of one loss curve stay together.
    """
    n_groups = int(groups.max()) + 1
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    counts = np.zeros((n_resamples, n_groups))
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
    return counts[:, groups]


@dataclass(frozen=True)
class Refits:
    """Bootstrap refits: ``theta`` ``(K, p)`` and whether each L-BFGS-B run met its convergence test."""

    theta: np.ndarray
    converged: np.ndarray


def refit_resamples(
    design: np.ndarray,
    logys: np.ndarray,
    weights: np.ndarray,
    theta0: np.ndarray,
    bounds: Bounds,
    delta: float,
) -> Refits:
    """Refit once per row of ``logys`` and ``weights`` (both ``(K, n)``), warm-started at the full-data
    optimum ``theta0``.

    A resample's optimum lies close to the full-data one, so a single local run replaces the whole grid:
    this is what makes 1000 resamples take seconds.
    """
    results = [_lbfgsb(theta0, design, y, w, delta, bounds) for y, w in zip(logys, weights, strict=True)]
    converged = [_converged(r) for r in results]
    return Refits(theta=np.array([r.x for r in results]), converged=np.array(converged, dtype=bool))
