"""Log-space prediction and the robust objective shared by every law.

Every law here predicts ``log ŷ = logsumexp_k (F_k θ)``: a sum of positive power-law terms whose logs are
*linear* in the parameters θ (log-coefficients and exponents), or a single log-linear term (Clark's law,
a plain power law). A law is therefore fully described by a design tensor ``F`` of shape
``(terms, points, parameters)``, and one objective with one analytic gradient serves them all.

The objective is the Huber loss of the log residuals, **summed** over points (Hoffmann et al. 2022, App. D.2):
with a mean the gradients shrink by 1/n and L-BFGS-B meets its tolerance long before the optimum.
"""

from __future__ import annotations

import numpy as np


def _terms(design: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Log of each term: ``(K, n)`` for one θ of shape ``(p,)``, ``(K, n, S)`` for S rows of θ."""
    return design @ theta.T


def _logsumexp(t: np.ndarray) -> np.ndarray:
    """Log of the sum of the terms along axis 0, without overflow."""
    top = t.max(axis=0)
    return top + np.log(np.exp(t - top).sum(axis=0))


def log_predict(design: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``log ŷ``: shape ``(n,)`` for θ of shape ``(p,)``, ``(S, n)`` for θ of shape ``(S, p)``."""
    return _logsumexp(_terms(design, theta)).T


def log_predict_paired(design: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """``log ŷ_i`` of point i under its own parameters ``thetas[i]`` (e.g. each bootstrap fit's optimum)."""
    return _logsumexp(np.einsum("knp,np->kn", design, thetas))


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: quadratic within ``delta``, linear beyond; ``delta = inf`` gives least squares (r²/2)."""
    a = np.abs(residual)
    return np.where(a <= delta, 0.5 * residual**2, delta * (a - 0.5 * delta))


def objective_and_grad(
    theta: np.ndarray,
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    delta: float,
    index: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Weighted sum of Huber losses of log residuals and its exact gradient in θ (for L-BFGS-B).

    ``index`` maps each row of ``logy`` and ``weights`` to its point of ``design`` (``None``: row i is
    point i). Rows that repeat a design point (the seeds of one configuration, logged at the same token
    counts) share its prediction, so the cost of the prediction and its derivatives follows the distinct
    points while every row keeps its own residual.
    """
    t = _terms(design, theta)
    top = t.max(axis=0)
    expt = np.exp(t - top)
    total = expt.sum(axis=0)
    predicted = top + np.log(total)
    residual = (predicted if index is None else predicted[index]) - logy
    clipped = np.clip(residual, -delta, delta)
    # huber(r) = c·(r − c/2) with c = r clipped to ±delta (the derivative of huber at r): 3 passes, not 6.
    # einsum, not `@`: BLAS runs a long dot product on several threads, and on a busy 2-core machine every
    # one of a fit's thousands of calls then waits for a core (a 200,000-row fit took 6x as long).
    value = float(np.einsum("n,n->", weights, clipped * (residual - 0.5 * clipped)))
    slope = weights * clipped
    if index is not None:
        slope = np.bincount(index, slope, minlength=design.shape[1])
    # d log ŷ / dθ = Σ_k softmax_k · F_k, so the chain rule needs only the softmax of the terms.
    grad = np.einsum("kn,knp->p", expt * (slope / total), design)
    return value, grad


def objective_batch(
    thetas: np.ndarray,
    design: np.ndarray,
    logy: np.ndarray,
    weights: np.ndarray,
    delta: float,
    index: np.ndarray | None = None,
) -> np.ndarray:
    """The objective at many θ at once (shape ``(S,)``): ranks a whole grid of starts in one pass."""
    predicted = log_predict(design, thetas)
    residual = (predicted if index is None else predicted[:, index]) - logy
    return huber(residual, delta) @ weights
