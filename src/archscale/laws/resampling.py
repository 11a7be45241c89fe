"""Random streams and the run-level noise model behind the laws' intervals.

A scaling-law ladder has few independent units: the points of one run's loss curve share its seed, data
order and schedule. The noise model says so: ``log y = log f(x; θ) + u_run + ε_point`` with a run effect
``u ~ N(0, τ²)`` shared by a run's points and point noise ``ε ~ N(0, s²)``.

Both variances are estimated from the fit's residuals, split by the linearised hat matrix ``H`` into what
varies between runs and what varies within them: ``τ² = rᵀ P r / df_between`` with ``P`` the projection on
run means and ``df_between = tr((I − H) P)`` (runs minus the parameters the run means pin down), and
``s² = rᵀ (I − P) r / df_within`` likewise. With three model sizes and a law whose size term has two
coefficients, ``df_between`` is about one: τ² is then barely known, and the parametric bootstrap draws it,
like s², from its scaled-inverse-χ² distribution (``τ_b² = τ² · df / χ²_df``) rather than plugging in the
estimate. For a statistic linear in the data this turns the interval into the t interval with the right
degrees of freedom; for the laws it is checked by simulation (``benchmarks/calibration.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

from archscale.laws.objective import log_predict


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent seeds derived from the user's one ``seed`` (``numpy.random.SeedSequence.spawn``).

    Give each independently resampled thing its own: two families fitted with the same seed would draw the
    same run positions in every resample and pair their fits by accident.
    """
    return [int(child.generate_state(1, np.uint64)[0]) for child in np.random.SeedSequence(seed).spawn(n)]


def log_jacobian(design: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``d log ŷ / dθ`` at every point, shape ``(n, p)``: the softmax of the terms times their design rows."""
    terms = design @ theta
    weights = np.exp(terms - terms.max(axis=0))
    weights /= weights.sum(axis=0)
    return np.einsum("kn,knp->np", weights, design)


@dataclass(frozen=True)
class NoiseModel:
    """Run effect ``tau`` and point noise ``s`` (standard deviations of log y) with their degrees of freedom."""

    tau: float
    s: float
    df_between: float
    df_within: float
    n_groups: int
    phi: float = 0.0
    """Lag-1 correlation of the point noise along a run (AR(1)); 0: independent points."""

    @classmethod
    def estimate(
        cls, design: np.ndarray, theta: np.ndarray, logy: np.ndarray, groups: np.ndarray
    ) -> NoiseModel:
        """Moment estimates from the residuals of the fit ``theta`` (``groups``: run code per point)."""
        return cls.from_residuals(logy - log_predict(design, theta), log_jacobian(design, theta), groups)

    @classmethod
    def from_residuals(cls, residual: np.ndarray, jacobian: np.ndarray, groups: np.ndarray) -> NoiseModel:
        """Moment estimates from a fit's log residuals and its ``d log ŷ / dθ`` (points × p) at every point,
        for any law whose prediction is differentiable (``groups``: run code per point)."""
        n_groups = int(groups.max()) + 1
        pinv = np.linalg.pinv(jacobian)
        counts = np.bincount(groups, minlength=n_groups).astype(float)

        def split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Sums of squares of ``values`` (points × columns) between runs (P v) and within them."""
            sums = np.zeros((n_groups, values.shape[1]))
            np.add.at(sums, groups, values)
            means = sums / counts[:, None]
            return np.sum(counts[:, None] * means**2, axis=0), np.sum((values - means[groups]) ** 2, axis=0)

        between_ss, within_ss = (float(v[0]) for v in split(residual[:, None]))
        # With Z the run indicator (n × G), P = Z D⁻¹ Zᵀ (D: run sizes) and H = J J⁺, everything below is
        # built from A = ZᵀJ and Bᵀ = Zᵀ J⁺ᵀ (G × p each), never an n × n or n × G array.
        a, b = np.zeros((n_groups, jacobian.shape[1])), np.zeros((n_groups, jacobian.shape[1]))
        np.add.at(a, groups, jacobian)
        np.add.at(b, groups, pinv.T)
        trace_zhz = float(np.sum(a * b))  # tr(Zᵀ H Z)
        hat_between = float(np.sum(a * b, axis=1) @ (1.0 / counts))  # tr(H P)
        df_between = n_groups - hat_between  # tr((I − H) P)
        df_within = (
            len(residual) - n_groups - (float(np.trace(pinv @ jacobian)) - hat_between)
        )  # tr((I − H)(I − P))
        # What a unit run effect leaves in the residuals, (I − H) Z, split the same way: the moment equations
        # E[between] = τ² c_b + s² df_between and E[within] = τ² c_w + s² df_within give τ² and s², with
        # c_b = ‖P(I − H)Z‖² = n − 2 tr(ZᵀHZ) + tr(ZᵀHZ D⁻¹ ZᵀHZ) and c_w = tr(ZᵀHZ) − that last term.
        quadratic = float(np.sum((b.T @ (a / counts[:, None])) * (b.T @ a).T))
        c_between = len(residual) - 2 * trace_zhz + quadratic
        c_within = trace_zhz - quadratic
        tau2, s2 = np.nan, 0.0
        if df_between > 0.05 and df_within <= 0.05:  # one point per run: the run effect is all the noise
            tau2 = between_ss / c_between
        elif df_between > 0.05:
            tau2, s2 = np.linalg.solve(
                [[c_between, df_between], [c_within, df_within]], [between_ss, within_ss]
            )
            if tau2 < 0:
                tau2, s2 = 0.0, (between_ss + within_ss) / (df_between + df_within)
            elif s2 < 0:
                tau2, s2 = between_ss / c_between, 0.0
        tau, s = np.sqrt(tau2), np.sqrt(s2)
        return cls(float(tau), float(s), float(df_between), float(df_within), n_groups)

    @property
    def identified(self) -> bool:
        """Whether the runs leave any degrees of freedom to estimate the run effect from."""
        return bool(np.isfinite(self.tau))

    def draw_scales(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 2)`` draws of (τ, s), each variance from its scaled-inverse-χ² distribution."""
        scales = np.zeros((n, 2))
        for column, (sd, df) in enumerate(((self.tau, self.df_between), (self.s, self.df_within))):
            if sd > 0 and df > 0.05:
                scales[:, column] = sd * np.sqrt(df / rng.chisquare(df, size=n))
        return scales

    def simulate(
        self, log_mean: np.ndarray, groups: np.ndarray, scales: np.ndarray, rng: np.random.Generator
    ) -> Iterator[np.ndarray]:
        """K simulated log y, one per row of ``scales``: ``log_mean`` plus a run effect per run and noise per
        point. Yielded one at a time, each a contiguous row, so a big table never holds K copies at once;
        the draws are those of one ``(K, n)`` block. With ``phi`` the point noise of each run is a stationary
        AR(1) along its points in the order given (variance s² still)."""
        effects = rng.standard_normal((len(scales), self.n_groups)) * scales[:, :1]
        runs = [np.flatnonzero(groups == g) for g in range(self.n_groups)] if self.phi else []
        for effect, (_, s) in zip(effects, scales, strict=True):
            white = rng.standard_normal(len(log_mean))
            if self.phi:
                innovation = white * np.sqrt(1.0 - self.phi**2)
                for run in runs:  # the first point of a run at the stationary variance, then AR(1)
                    innovation[run[0]] = white[run[0]]
                    white[run] = lfilter([1.0], [1.0, -self.phi], innovation[run])
            yield log_mean + effect[groups] + white * s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lag_one_correlation(residual: np.ndarray, groups: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals along each run (points in run order, each run's mean removed),
    pooled over runs, with Kendall's small-sample bias correction ``(n·r + 1) / (n − 3)``; clipped to
    [0, 0.99], since a negative one only narrows what a run's points share."""
    lagged = total = 0.0
    n = 0
    for g in range(int(groups.max()) + 1):
        run = residual[groups == g]
        run = run - run.mean()
        lagged += float(run[1:] @ run[:-1])
        total += float(run @ run)
        n += len(run)
    if total == 0:
        return 0.0
    per_run = n / (int(groups.max()) + 1)
    corrected = (per_run * lagged / total + 1.0) / max(per_run - 3.0, 1.0)
    return float(np.clip(corrected, 0.0, 0.99))
