"""Multi-start L-BFGS-B and the warm-started bootstrap."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from archscale.laws.objective import objective_and_grad, objective_batch
from archscale.laws.resampling import log_jacobian

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
    start: np.ndarray,
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    delta: float,
    bounds: Bounds,
    index: np.ndarray | None,
):
    return minimize(
        objective_and_grad,
        start,
        args=(design, logy, weights, delta, index),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=_OPTIONS,
    )


def _converged(result) -> bool:
    """L-BFGS-B's own test, or a line search that cannot descend from a point whose gradient is at rounding
    level (this happens when least squares already gave the exact optimum)."""
    return bool(result.success or np.max(np.abs(result.jac)) <= 1e-6 * (1.0 + abs(result.fun)))


def _rank(
    starts: np.ndarray,
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    delta: float,
    index: np.ndarray | None,
):
    """Objective at every start, in chunks that keep the (terms, points, starts) and (starts, rows) arrays
    near 16 MB."""
    chunk = max(1, 2_000_000 // max(design[..., 0].size, len(logy)))
    parts = [
        objective_batch(starts[i : i + chunk], design, logy, weights, delta, index)
        for i in range(0, len(starts), chunk)
    ]
    return np.concatenate(parts)


P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(fit: Callable[P, R]) -> Callable[P, R]:
    """Run ``fit`` with BLAS on one thread: L-BFGS-B's algebra on a handful of parameters gains nothing from
    threads, and on a busy 2-core machine OpenBLAS's spinning threads made a curve fit 7× slower (0.20 s
    against 1.48 s, measured)."""

    @functools.wraps(fit)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return limited


def minimise(
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
    bounds: Bounds,
    delta: float,
    n_starts: int | None,
    index: np.ndarray | None = None,
) -> Optimum:
    """Rank every start by its objective (one vectorised pass), then run L-BFGS-B from the ``n_starts`` best.

    ``n_starts=None`` runs L-BFGS-B from every start, as Hoffmann et al. did over their full grid.
    ``index``: each row's design point (:func:`~archscale.laws.objective.objective_and_grad`).
    """
    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    upper = np.array([np.inf if hi is None else hi for _, hi in bounds])
    starts = np.clip(starts, lower, upper)
    if n_starts is not None and len(starts) > n_starts:
        ranked = np.argsort(_rank(starts, design, logy, weights, delta, index), kind="stable")
        starts = starts[ranked[:n_starts]]
    results = [_lbfgsb(s, design, logy, weights, delta, bounds, index) for s in starts]
    best = min(results, key=lambda r: r.fun)
    # Over many rows the Huber objective's slope need not vanish at its optimum (its kinks), and the best
    # start may end in a line search that cannot descend: another start that met the test at the same
    # objective (to rounding) shows the optimum was reached all the same.
    reached = best.fun + 1e-12 * (1.0 + abs(best.fun))
    converged = any(_converged(r) and r.fun <= reached for r in results)
    return Optimum(theta=best.x, objective=float(best.fun), converged=converged)


def resample_weights(groups: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap as integer weights, shape ``(n_resamples, n_points)``: how often each point is drawn.

    ``groups`` holds a group code per point (run ids, or ``arange(n)`` for point resampling): whole groups
    are drawn with replacement, so the points of one loss curve stay together.
    """
    n_groups = int(groups.max()) + 1
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    counts = np.zeros((n_resamples, n_groups))
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
    return np.ascontiguousarray(counts[:, groups])  # row by row: the refits read one resample at a time


@dataclass(frozen=True)
class Refits:
    """Bootstrap refits: ``theta`` ``(K, p)`` and whether each L-BFGS-B run met its convergence test."""

    theta: np.ndarray
    converged: np.ndarray


def _preconditioner(
    design: np.ndarray, theta0: np.ndarray, bounds: Bounds, index: np.ndarray | None
) -> np.ndarray:
    """``T`` with θ = T·φ, in which the refits' objective is far better conditioned, keeping box bounds.

    A log coefficient and its exponent are nearly collinear (log A − α·log N with log N ≈ 20), so
    L-BFGS-B spends most of a refit walking that valley. With ``M`` the Gauss-Newton matrix at ``theta0``,
    each unbounded parameter absorbs its regression on the bounded ones (a shear, ``T[u, b]``), which
    leaves the bounded parameters' rows of ``T`` diagonal, so their bounds stay a box; then every φ is
    scaled to unit curvature.
    """
    counts = np.ones(design.shape[1]) if index is None else np.bincount(index, minlength=design.shape[1])
    jacobian = log_jacobian(design, theta0)
    curvature = jacobian.T @ (counts[:, None] * jacobian)
    free = np.array([lo is None and hi is None for lo, hi in bounds])
    transform = np.eye(len(theta0))
    if free.any() and not free.all():
        shear = np.linalg.lstsq(curvature[np.ix_(free, free)], curvature[np.ix_(free, ~free)], rcond=None)[0]
        transform[np.ix_(free, ~free)] = -shear
    diagonal = np.einsum("ij,ik,kj->j", transform, curvature, transform)  # diag(Tᵀ M T)
    curved = diagonal > 1e-12 * diagonal.max()  # a faded term has no curvature to scale by: left as it is
    scale = np.ones_like(diagonal)
    scale[curved] = diagonal[curved] ** -0.5
    return transform * scale


def refit_resamples(
    design: np.ndarray,
    logys: Iterable[np.ndarray],
    weights: Iterable[np.ndarray],
    theta0: np.ndarray,
    bounds: Bounds,
    delta: float,
    index: np.ndarray | None = None,
) -> Refits:
    """Refit once per pair of ``logys`` and ``weights`` rows (each ``(n,)``), warm-started at the full-data
    optimum ``theta0``, in the preconditioned coordinates of :func:`_preconditioner`.

    A resample's optimum lies close to the full-data one, so a single local run replaces the whole grid:
    this is what makes 1000 resamples take seconds.
    """
    transform = _preconditioner(design, theta0, bounds, index)
    scale = np.diag(transform)
    scaled_bounds = [
        (None if lo is None else lo / s, None if hi is None else hi / s)
        for (lo, hi), s in zip(bounds, scale, strict=True)
    ]
    scaled = (design.reshape(-1, len(theta0)) @ transform).reshape(design.shape)
    start = np.linalg.solve(transform, theta0)
    results = [
        _lbfgsb(start, scaled, y, w, delta, scaled_bounds, index) for y, w in zip(logys, weights, strict=True)
    ]
    converged = [_converged(r) for r in results]
    return Refits(
        theta=np.array([r.x for r in results]) @ transform.T, converged=np.array(converged, dtype=bool)
    )
