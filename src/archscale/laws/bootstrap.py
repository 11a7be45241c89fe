"""A law's bootstrap as one result (``law.bootstrap_``): the refits' θ, the noise scales drawn with them and
how they were made, with intervals asked for at a level, as statsmodels' results give ``conf_int(alpha)``.

The fit fixes only the default level (the law's ``level``); the samples serve any other, so a 50 % band
needs no refit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from archscale.laws.errors import LawDataError
from archscale.laws.resampling import spawn_seeds

if TYPE_CHECKING:
    from archscale.laws.base import Law
    from archscale.laws.columns import Table

_SAMPLES = ("law", "theta", "scales")  # the fields that are not the saved metadata


def percentile_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval over axis 0 of bootstrap samples."""
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return lo, hi


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare by
class Bootstrap:
    """The ``n`` refits of a fitted law: θ of each, the (τ, s) drawn for each and what made them."""

    law: Law = field(repr=False)
    """The fitted law, which maps θ to coefficients and predictions."""
    theta: np.ndarray
    """θ of every refit, shape ``(n, p)``."""
    scales: np.ndarray
    """The run effect τ and point noise s drawn for every refit, shape ``(n, 2)``: a new run's noise."""
    n: int
    method: str
    resample: str
    """The noise unit resampled or simulated (``run``, ``point``, ``trajectory``)."""
    seed: int
    level: float
    """The level the law was fitted with: the default of every interval."""
    noise: dict[str, Any]
    """The noise model estimated from the fit's residuals (``n_groups``, ``tau``, ``s``, degrees of freedom)."""
    not_converged: int
    on_bound: dict[str, int]
    """Per parameter, how many refits ended on its bound (only those that some did)."""

    @property
    def coefficients(self) -> dict[str, np.ndarray]:
        """Every coefficient and derived quantity across the refits (arrays of length ``n``)."""
        coefficients = self.law._coefficients(self.theta)
        return coefficients | self.law._derived(coefficients)

    def intervals(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        """Percentile interval of every coefficient and derived quantity at ``level`` (default: the fitted one)."""
        level = self._level(level)
        return {
            name: (float(lo), float(hi))
            for name, samples in self.coefficients.items()
            for lo, hi in [percentile_interval(samples, level)]
        }

    def prediction_interval(
        self, table: Table, level: float | None = None, *, new_run: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the prediction at each row of ``table`` at ``level`` (default: the fitted
        one): the band of the fitted curve, or (``new_run=True``) what a new run would measure there."""
        return percentile_interval(self.law._interval_samples(table, new_run), self._level(level))

    def new_run_noise(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """A new run's effect ``(n, 1)`` and point noise ``(n, rows)``, each refit at its own drawn τ and s;
        from the seed's own stream, so every call draws the same."""
        rng = np.random.default_rng(spawn_seeds(self.seed, 3)[2])
        tau, s, n = self.scales[:, :1], self.scales[:, 1:], len(self.scales)
        return tau * rng.standard_normal((n, 1)), s * rng.standard_normal((n, rows))

    def to_dict(self) -> dict[str, Any]:
        """The saved fit's ``bootstrap`` entry: the metadata, then θ and the scales as lists."""
        metadata = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SAMPLES}
        return metadata | {"theta": self.theta.tolist(), "scales": self.scales.tolist()}

    @classmethod
    def from_dict(cls, law: Law, data: Mapping[str, Any]) -> Bootstrap:
        """Read back :meth:`to_dict` for ``law``."""
        return cls(
            law=law,
            theta=np.asarray(data["theta"], dtype=float).reshape(-1, len(law.theta_names)),
            scales=np.asarray(data["scales"], dtype=float).reshape(-1, 2),
            **{k: v for k, v in data.items() if k not in _SAMPLES},
        )

    def _level(self, level: float | None) -> float:
        if level is None:
            return self.level
        if not 0 < level < 1:
            raise LawDataError(f"level must lie in (0, 1), e.g. 0.95; got {level}")
        return level
