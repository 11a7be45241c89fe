"""Whole-curve laws: the loss at every step of a run, from its learning-rate schedule.

- Multi-power law (Luo et al. 2025, arXiv 2503.12811, Eq. 1): L(t) = L0 + A·(S1(t) + S_W)^−α − LD(t),
  LD(t) = B·Σ_{k=1..t} (η_{k−1} − η_k)·G(η_k^−γ·S_k(t)), S_k(t) = Σ_{τ=k..t} η_τ, G(x) = 1 − (C·x + 1)^−β;
  steps counted after the warm-up, η_0 its peak, S_W its area. The authors' code (``src/models.py``) also
  sums LD over the warm-up's rising steps; archscale follows the paper (:mod:`~archscale.laws.schedule_terms`).
- Annealing law (Tissue et al. 2024, arXiv 2408.11029, Eq. 3): L(s) = L0 + A·S1^−α − C·S2, S2 = Σ_{i≤s} m_i,
  m_i = λ·m_{i−1} + (η_{i−1} − η_i); λ is the decay factor the authors fix (0.999 by default here).

Both read a table with one row per step: ``run_id``, ``step``, ``lr`` (the rate of that step) and ``loss``
(empty where the step was not evaluated); every step from 1 on must be there, or the rate is interpolated
linearly between the steps given. Each is fitted by L-BFGS-B with an analytic gradient on the Huber
(δ = 1e-3) loss of log residuals, as both papers do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from archscale.laws.base import Law, Table
from archscale.laws.errors import LawDataError
from archscale.laws.optimize import Bounds
from archscale.laws.schedule_terms import BLOCK, RunSchedule, decay_terms, loss_drop

LR_FLOOR = 1e-12  # a rate decayed to 0 enters η^−γ as this (G is then 1 to machine precision)


def run_schedules(table: pd.DataFrame) -> tuple[list[RunSchedule], np.ndarray, list[str]]:
    """Each run's schedule with the steps where its loss was measured, the losses in that order, and the run
    ids; the rate of steps the table skips is interpolated linearly between the steps it gives."""
    missing = [c for c in ("run_id", "step", "lr", "loss") if c not in table]
    if missing:
        raise LawDataError(
            f"a whole-curve law needs the column(s) {missing}: one row per step with run_id, step, lr and loss "
            "(loss empty where the step was not evaluated); rename yours with --map COLUMN=YOURS"
        )
    schedules, losses, ids = [], [], []
    for run_id, rows in table.groupby("run_id", sort=False):
        rows = rows.sort_values("step")
        steps = rows["step"].to_numpy(dtype=float)
        if (steps != np.round(steps)).any() or steps[0] != 1 or (np.diff(steps) <= 0).any():
            raise LawDataError(
                f"run {run_id!r}: steps must be whole numbers from 1 up, each once (the rate of every step "
                "from the first enters the law); add the rows of the early steps, loss left empty"
            )
        lr = rows["lr"].to_numpy(dtype=float)
        if not np.isfinite(lr).all() or (lr < 0).any():
            raise LawDataError(f"run {run_id!r}: column 'lr' needs a finite rate >= 0 on every row")
        every = np.arange(1, int(steps[-1]) + 1)
        eta = np.maximum(np.interp(every, steps, lr), LR_FLOOR)
        loss = rows["loss"].to_numpy(dtype=float)
        measured = np.isfinite(loss)
        if (loss[measured] <= 0).any():
            raise LawDataError(f"run {run_id!r}: column 'loss' must be > 0 where it is given")
        schedules.append(RunSchedule(eta, steps[measured].astype(int)))
        losses.append(loss[measured])
        ids.append(str(run_id))
    return schedules, np.concatenate(losses), ids


@dataclasses.dataclass(kw_only=True)
class ScheduleLaw(Law):
    """Base of the whole-curve laws: fitted on every measured point of every run, predicting any step of
    any schedule. θ holds the paper's coefficients with the positive amplitudes as logarithms.

    Intervals are not given yet: a run effect shared by all points of one curve makes point-level
    resampling far too narrow, and the run-level simulation that would replace it is not calibrated for
    these laws (``no_interval_`` says so)."""

    inputs: ClassVar[tuple[str, ...]] = ("run_id", "step", "lr")
    varying: ClassVar[dict[str, str]] = {}

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        raise LawDataError(f"the {self.name} law reads whole schedules, not a design of log inputs")

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        return np.array(
            [
                np.log(coefficients[n[4:]]) if n.startswith("log_") else coefficients[n]
                for n in self.theta_names
            ]
        )

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        return {
            (n[4:] if n.startswith("log_") else n): (
                np.exp(theta[..., i]) if n.startswith("log_") else theta[..., i]
            )
            for i, n in enumerate(self.theta_names)
        }

    # ----- what a whole-curve law defines --------------------------------------------------------------
    def _prepare(self, schedules: list[RunSchedule]) -> Any:
        """Whatever the law needs from the schedules at their points, computed once per fit."""
        raise NotImplementedError

    def _predict_prepared(
        self, theta: np.ndarray, prepared: Any, *, gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted loss at every point and, with ``gradient``, d prediction / d θ (shape (p, points))."""
        raise NotImplementedError

    def _curve_starts(self, prepared: Any, loss: np.ndarray) -> np.ndarray:
        """Starting points ``(S, p)`` for L-BFGS-B."""
        raise NotImplementedError

    @staticmethod
    def _power_starts(area: np.ndarray, loss: np.ndarray) -> list[list[float]]:
        """(L0, log A, α) of power laws in S1 through the losses, from an irreducible term a little below the
        lowest loss: where the schedule-specific terms start from."""
        floor = float(loss.min())
        return [
            [floor - offset, float(np.log(np.median((loss - floor + offset) * area**alpha))), alpha]
            for offset in (0.3, 0.1)
            for alpha in (0.3, 0.5)
        ]

    # ----- fitting -------------------------------------------------------------------------------------
    def fit(self, table: Table) -> Self:
        """Fit on every measured point of every run in ``table`` (one row per step, see the module)."""
        schedules, loss, _ = run_schedules(pd.DataFrame(table))
        if len(loss) <= len(self.theta_names):
            raise LawDataError(
                f"the {self.name} law has {len(self.theta_names)} coefficients but the table measures the loss "
                f"at only {len(loss)} steps; give more evaluated steps"
            )
        prepared = self._prepare(schedules)
        log_loss, delta = np.log(loss), self._huber_delta

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            pred, grad = self._predict_prepared(theta, prepared, gradient=True)
            if not (pred > 0).all():
                return 1e30, np.zeros_like(theta)
            r = log_loss - np.log(pred)
            slope = np.clip(r, -delta, delta)
            value = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
            return float(value), -(grad * (slope / pred)).sum(axis=1)

        bounds = self._bounds()
        best = None
        for start in self._curve_starts(prepared, loss):
            result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10})  # fmt: skip
            if best is None or result.fun < best.fun:
                best = result
        self.theta_, self.objective_ = np.asarray(best.x, dtype=float), float(best.fun)
        self.converged_ = bool(best.success)
        self.n_points_ = len(loss)
        self.faded_, self.bootstrap_theta_, self.bootstrap_scales_, self.bootstrap_ = [], None, None, None
        self.no_interval_ = f"{self.name}: no intervals yet: their run-level simulation is not calibrated for whole-curve laws"
        self._warn_about_fit()
        return self

    def predict(self, table: Table) -> np.ndarray:
        """The predicted loss at every row of ``table`` whose ``loss`` is given, or at every row when the
        table has no ``loss`` column (rows in the table's order within each run, runs in order of appearance)."""
        frame = pd.DataFrame(table)
        if "loss" not in frame:
            frame = frame.assign(loss=1.0)
        schedules, _, _ = run_schedules(frame)
        pred, _ = self._predict_prepared(self._fitted_theta(), self._prepare(schedules), gradient=False)
        return pred


@dataclasses.dataclass(kw_only=True)
class MultiPowerLaw(ScheduleLaw):
    """Luo et al. 2025's multi-power law (7 coefficients); ``block`` as in :func:`decay_terms`."""

    block: int = BLOCK
    name: ClassVar[str] = "multipower"
    theta_names: ClassVar[tuple[str, ...]] = ("L0", "log_A", "alpha", "log_B", "log_C", "beta", "gamma")

    @property
    def formula(self) -> str:
        return (
            "L(t) = L0 + A*(S1(t)+S_W)^-alpha - B*sum_k (eta_{k-1}-eta_k)*(1-(C*eta_k^-gamma*S_k(t)+1)^-beta)"
        )

    def _bounds(self) -> Bounds:
        return [(0.0, None), (-20.0, 20.0), (0.0, 3.0), (-20.0, 30.0), (-30.0, 20.0), (1e-3, 5.0), (0.0, 3.0)]

    def _prepare(self, schedules: list[RunSchedule]) -> Any:
        area = np.concatenate([s.area for s in schedules])
        return area, list(decay_terms(schedules, block=self.block))

    def _predict_prepared(self, theta, prepared, *, gradient):
        area, chunks = prepared
        L0, log_A, alpha, log_B, log_C, beta, gamma = theta
        A, B, C = np.exp(log_A), np.exp(log_B), np.exp(log_C)
        drop, drop_grad = np.zeros(len(area)), np.zeros((3, len(area))) if gradient else None
        for terms in chunks:
            d, g = loss_drop(terms, C, beta, gamma, gradient=gradient)
            drop += d
            if gradient:
                drop_grad += g
        power = area**-alpha
        pred = L0 + A * power - B * drop
        if not gradient:
            return pred, None
        grad = np.stack(
            [np.ones_like(pred), A * power, -A * power * np.log(area), -B * drop, *(-B * drop_grad)]
        )
        return pred, grad

    def _curve_starts(self, prepared, loss):
        area, chunks = prepared
        fall = max((np.bincount(t.point, t.gap, minlength=t.n_points).max() for t in chunks), default=0.0)
        log_B = np.log(0.1 / fall) if fall > 0 else 0.0  # a full decay then lowers the loss by about 0.1
        return np.array(
            [
                [*p, log_B, log_C, 0.5, 0.5]
                for p in self._power_starts(area, loss)
                for log_C in (-3.0, 0.0, 3.0)
            ]
        )


@dataclasses.dataclass(kw_only=True)
class AnnealingLaw(ScheduleLaw):
    """Tissue et al. 2024's annealing law (4 coefficients; the momentum decay ``decay`` = λ is fixed)."""

    decay: float = 0.999
    name: ClassVar[str] = "annealing"
    theta_names: ClassVar[tuple[str, ...]] = ("L0", "log_A", "alpha", "C")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.decay < 1:
            raise LawDataError(f"decay (λ) must lie in [0, 1), got {self.decay!r}")

    @property
    def formula(self) -> str:
        return f"L(s) = L0 + A*S1^-alpha - C*S2, S2 = sum m_i, m_i = {self.decay:g}*m_(i-1) + (eta_(i-1) - eta_i)"

    def _bounds(self) -> Bounds:
        return [(0.0, None), (-20.0, 20.0), (0.0, 3.0), (0.0, None)]

    def _prepare(self, schedules):
        return (np.concatenate([s.area for s in schedules]),
                np.concatenate([s.annealing_area(self.decay) for s in schedules]))  # fmt: skip

    def _predict_prepared(self, theta, prepared, *, gradient):
        area, annealed = prepared
        L0, log_A, alpha, C = theta
        power = np.exp(log_A) * area**-alpha
        pred = L0 + power - C * annealed
        if not gradient:
            return pred, None
        return pred, np.stack([np.ones_like(pred), power, -power * np.log(area), -annealed])

    def _curve_starts(self, prepared, loss):
        area, annealed = prepared
        scale = float(np.abs(annealed).max())
        C = 0.1 / scale if scale > 0 else 0.0  # the largest annealing area then lowers the loss by about 0.1
        return np.array([[*p, C] for p in self._power_starts(area, loss)])
