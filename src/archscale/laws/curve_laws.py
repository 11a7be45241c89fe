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
(δ = 1e-3) loss of log residuals, as both papers do. ``bootstrap=K`` adds intervals from a run-level
parametric bootstrap (:class:`ScheduleLaw`), including the prediction interval of a new run's loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

from archscale.laws.base import Law
from archscale.laws.columns import Table
from archscale.laws.errors import LawDataError
from archscale.laws.optimize import Bounds, Refits, one_blas_thread
from archscale.laws.resampling import NoiseModel, lag_one_correlation, spawn_seeds
from archscale.laws.schedule_terms import BLOCK, RunSchedule, decay_terms, loss_drop

LR_FLOOR = 1e-12  # a rate decayed to 0 enters η^−γ as this (G is then 1 to machine precision)
MIN_DF_CURVES = 1.0
"""Fewest degrees of freedom the runs must leave for the run-to-run noise before a whole-curve law gives an
interval: three curves leave 1.4-1.6 to the annealing law and these were measured calibrated
(``benchmarks/curve_intervals.py``); two leave about 0.5, where the drawn run effect makes intervals useless."""
CALIBRATED_BY = "benchmarks/curve_intervals.py"


def run_schedules(
    table: pd.DataFrame, *, size: str | None = None
) -> tuple[list[RunSchedule], np.ndarray, list[str]]:
    """Each run's schedule with the steps where its loss was measured (and its ``size`` column's value), the
    losses in that order, and the run ids; the rate of steps the table skips is interpolated linearly
    between the steps it gives."""
    needed = ("run_id", "step", "lr", "loss", *((size,) if size else ()))
    missing = [c for c in needed if c not in table]
    if missing:
        raise LawDataError(
            f"a whole-curve law needs the column(s) {missing}: one row per step with {', '.join(needed)} "
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
        run_size = float("nan")
        if size:
            sizes = rows[size].to_numpy(dtype=float)
            if not (np.isfinite(sizes).all() and (sizes > 0).all() and (sizes == sizes[0]).all()):
                raise LawDataError(
                    f"run {run_id!r}: column '{size}' needs one value > 0 on every row of the run"
                )
            run_size = float(sizes[0])
        schedules.append(RunSchedule(eta, steps[measured].astype(int), run_size))
        losses.append(loss[measured])
        ids.append(str(run_id))
    return schedules, np.concatenate(losses), ids


def losses_at_final_steps(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each run's loss kept at its last measured step only (the schedule rows stay: the law
    needs them), runs in order of first appearance and steps ascending, as the laws predict them."""
    codes = pd.factorize(table["run_id"])[0]
    ordered = table.iloc[np.lexsort((table["step"].to_numpy(), codes))].reset_index(drop=True)
    last = ordered.dropna(subset=["loss"]).groupby("run_id", sort=False).tail(1).index
    return ordered.assign(loss=ordered["loss"].where(ordered.index.isin(last)))


def noise_units(table: pd.DataFrame, run_ids: list[str]) -> np.ndarray:
    """The unit of run-to-run noise of each of ``run_ids`` (codes 0…): its ``trunk`` where the table has that
    column — a cooldown branch shares its trunk's stable phase, hence its run effect — else the run itself."""
    if "trunk" not in table:
        return np.arange(len(run_ids))
    trunks = table.groupby(table["run_id"].astype(str), sort=False)["trunk"].first()
    return pd.factorize(trunks.loc[run_ids].astype(str))[0]


@dataclasses.dataclass(kw_only=True)
class ScheduleLaw(Law):
    """Base of the whole-curve laws: fitted on every measured point of every run, predicting any step of
    any schedule. θ holds the paper's coefficients with the positive amplitudes as logarithms.

    Intervals (``bootstrap=K``): the parametric bootstrap of :class:`~archscale.laws.base.Law`, run by run
    (a cooldown branch with its trunk, given a ``trunk`` column), since the points of one curve share its
    seed and data order: a run effect τ and point noise s estimated
    from the fit's residuals (:meth:`NoiseModel.from_residuals`, Jacobian from ``_predict_prepared``), K sets
    of curves simulated from the fit with AR(1) point noise along each curve (φ from the residuals: 0.8-0.9
    on the published curves; coverage measured the same without it, since τ's moment estimate absorbs
    what correlated points share), each refitted from θ̂. ``predict_interval(table, new_run=True)`` holds a
    new run's loss; its coverage of held-out finals is measured in ``benchmarks/curve_intervals.py``. Below
    :data:`MIN_DF_CURVES` degrees of freedom for τ (fewer than three curves for the annealing law, three
    for the multi-power law's seven coefficients) ``no_interval_`` says why none is given."""

    inputs: ClassVar[tuple[str, ...]] = ("run_id", "step", "lr")
    varying: ClassVar[dict[str, str]] = {}
    size_column: ClassVar[str | None] = None  # the column of each run's model size, for laws across sizes

    paired: ClassVar[bool] = False  # no single design: predict_paired cannot work

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
    @one_blas_thread
    def fit(self, table: Table) -> Self:
        """Fit on every measured point of every run in ``table`` (one row per step, see the module)."""
        frame = pd.DataFrame(table)
        schedules, loss, ids = run_schedules(frame, size=self.size_column)
        if len(loss) <= len(self.theta_names):
            raise LawDataError(
                f"the {self.name} law has {len(self.theta_names)} coefficients but the table measures the loss "
                f"at only {len(loss)} steps; give more evaluated steps"
            )
        if self.bootstrap and (self.method != "parametric" or self.resample == "point"):
            raise LawDataError(
                f"the {self.name} law's intervals simulate whole runs (method='parametric', resample='auto' or "
                f"'run'), got method={self.method!r}, resample={self.resample!r}: resampling a handful of curves "
                "or their autocorrelated points would give far too narrow intervals"
            )
        measured = [
            i for i, s in enumerate(schedules) if len(s.steps)
        ]  # a run not yet evaluated adds nothing
        schedules, ids = [schedules[i] for i in measured], [ids[i] for i in measured]
        prepared = self._prepare(schedules)
        best = self._minimise(prepared, np.log(loss), self._curve_starts(prepared, loss))
        self.theta_, self.objective_ = np.asarray(best.x, dtype=float), float(best.fun)
        self.converged_ = bool(best.success)
        self.n_points_ = len(loss)
        self.faded_, self.bootstrap_ = [], None
        self.no_interval_ = None
        self._warn_about_fit()
        if self.bootstrap:
            groups = np.repeat(noise_units(frame, ids), [len(s.steps) for s in schedules])
            self._simulate_refits(prepared, np.log(loss), groups)
        return self

    def _minimise(self, prepared: Any, log_loss: np.ndarray, starts: np.ndarray) -> OptimizeResult:
        """The best L-BFGS-B run from ``starts`` on the Huber loss of the log residuals."""
        delta = self._huber_delta

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            pred, grad = self._predict_prepared(theta, prepared, gradient=True)
            if not (pred > 0).all():
                return 1e30, np.zeros_like(theta)
            r = log_loss - np.log(pred)
            slope = np.clip(r, -delta, delta)
            value = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
            return float(value), -(grad * (slope / pred)).sum(axis=1)

        bounds, options = self._bounds(), {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10}
        results = [
            minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
            for start in starts
        ]
        return min(results, key=lambda r: r.fun)

    def _simulate_refits(self, prepared: Any, log_loss: np.ndarray, groups: np.ndarray) -> None:
        """The parametric bootstrap of :class:`~archscale.laws.base.Law` for whole curves: the run effect and
        the point noise (AR(1) along each curve) estimated from the fit's residuals, ``bootstrap`` sets of
        curves simulated from the fit with them, each refitted from θ̂ (one start: its optimum is near)."""
        pred, grad = self._predict_prepared(self.theta_, prepared, gradient=True)
        residual = log_loss - np.log(pred)
        noise = NoiseModel.from_residuals(residual, grad.T / pred[:, None], groups)
        noise = dataclasses.replace(noise, phi=lag_one_correlation(residual, groups))
        if self._refuse_interval(noise, "run", min_df=MIN_DF_CURVES, calibrated_by=CALIBRATED_BY):
            return
        simulation_seed, scale_seed = spawn_seeds(self.seed, 2)
        scales = noise.draw_scales(np.random.default_rng(scale_seed), self.bootstrap)
        curves = noise.simulate(np.log(pred), groups, scales, np.random.default_rng(simulation_seed))
        results = [self._minimise(prepared, curve, self.theta_[None]) for curve in curves]
        refits = Refits(np.array([r.x for r in results]), np.array([bool(r.success) for r in results]))
        self._store_bootstrap(refits, scales, noise, "run")

    def predict(self, table: Table) -> np.ndarray:
        """The predicted loss at every row of ``table`` whose ``loss`` is given, or at every row when the
        table has no ``loss`` column (rows in the table's order within each run, runs in order of appearance)."""
        pred, _ = self._predict_prepared(self._fitted_theta(), self._prepare_rows(table), gradient=False)
        return pred

    def predict_samples(self, table: Table) -> np.ndarray:
        """Prediction of every bootstrap fit at the rows :meth:`predict` gives, shape ``(K, rows)``."""
        prepared = self._prepare_rows(table)
        return np.array(
            [
                self._predict_prepared(theta, prepared, gradient=False)[0]
                for theta in self._fitted_bootstrap().theta
            ]
        )

    def _prepare_rows(self, table: Table) -> Any:
        frame = pd.DataFrame(table)
        if "loss" not in frame:
            frame = frame.assign(loss=1.0)
        schedules, _, _ = run_schedules(frame, size=self.size_column)
        return self._prepare(schedules)


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


@dataclasses.dataclass(kw_only=True)
class CurveLadderLaw(AnnealingLaw):
    """One whole-curve law for a ladder of model sizes: L(S, t) = σ + A/S^α + B·S1(t)^−β − C·S2(t).

    The additive size term of the forward-momentum law (Wang et al. 2026, arXiv 2512.13705: L = L0 +
    λ_S/S^α_S + λ_N/N^α_N + λ_M·M, fitted on dense and MoE ladders), with the annealing law's momentum S2
    (Tissue et al. 2024) in place of their Adam-style M; σ + A/S^α is the paper's Eq. 5 size term, and B·S1^−β
    stands in for its B/D^β. Chosen by measurement over sizes-dependent amplitudes and exponents
    (``benchmarks/curve_ladder_forms.py``): every form predicts the multi-power law's 400M curves from 25M and
    100M equally well once its size term has an irreducible part, and this one has the fewest coefficients.

    Two sizes cannot separate σ from A/S^α (two levels, three unknowns): with fewer than three sizes the fit
    needs α fixed (``alpha_fixed``), and its answer then rests on that choice.
    """

    size: Literal["params", "model_scale"] = "params"
    alpha_fixed: float | None = None
    name: ClassVar[str] = "curve-ladder"
    theta_names: ClassVar[tuple[str, ...]] = ("sigma", "log_A", "alpha", "log_B", "beta", "C")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in ("params", "model_scale"):
            raise LawDataError(f"size must be 'params' or 'model_scale', got {self.size!r}")
        if self.alpha_fixed is not None and not 0 < self.alpha_fixed <= 3:
            raise LawDataError(f"alpha_fixed must lie in (0, 3], got {self.alpha_fixed!r}")

    @property
    def size_column(self) -> str:  # type: ignore[override]
        return self.size

    @property
    def inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("run_id", self.size, "step", "lr")

    @property
    def formula(self) -> str:
        return (
            f"L = sigma + A/{self.size}^alpha + B*S1^-beta - C*S2, S2 = sum m_i, "
            f"m_i = {self.decay:g}*m_(i-1) + (eta_(i-1) - eta_i)"
        )

    def _bounds(self) -> Bounds:
        alpha = (0.0, 3.0) if self.alpha_fixed is None else (self.alpha_fixed, self.alpha_fixed)
        return [(0.0, None), (-20.0, 60.0), alpha, (-20.0, 20.0), (0.0, 3.0), (0.0, None)]

    def _derived(self, coefficients: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Allocation exponents as Eq. 7-8 define them, reading S1 as the data term: they hold for runs at
        one peak rate and batch size (S1 then grows as D)."""
        alpha, beta = coefficients["alpha"], coefficients["beta"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"alpha_N": beta / (alpha + beta), "alpha_D": alpha / (alpha + beta)}

    def fit(self, table: Table) -> Self:
        """As every whole-curve law, after checking the sizes can determine the size term."""
        frame = pd.DataFrame(table)
        measured = frame[frame["loss"].notna()] if "loss" in frame else frame
        sizes = measured[self.size].nunique() if self.size in frame else 0
        if self.alpha_fixed is None and 0 < sizes < 3:
            raise LawDataError(
                f"the {self.name} law's size exponent needs runs of at least 3 model sizes ({sizes} given): "
                f"two cannot separate sigma from A/{self.size}^alpha; add a size or fix alpha "
                "(alpha_fixed, --alpha-fixed)"
            )
        return super().fit(frame)

    def _prepare(self, schedules):
        log_size = np.concatenate([np.full(len(s.steps), np.log(s.size)) for s in schedules])
        return (*super()._prepare(schedules), log_size)

    def _predict_prepared(self, theta, prepared, *, gradient):
        area, annealed, log_size = prepared
        sigma, log_A, alpha, log_B, beta, C = theta
        size_term = np.exp(log_A - alpha * log_size)
        data_term = np.exp(log_B) * area**-beta
        pred = sigma + size_term + data_term - C * annealed
        if not gradient:
            return pred, None
        return pred, np.stack(
            [np.ones_like(pred), size_term, -size_term * log_size, data_term, -data_term * np.log(area),
             -annealed]
        )  # fmt: skip

    def _curve_starts(self, prepared, loss):
        mid = float(np.median(prepared[2]))
        alphas = (0.3, 0.6) if self.alpha_fixed is None else (self.alpha_fixed,)
        return np.array(
            [
                [share * L0, np.log((1 - share) * L0) + alpha * mid, alpha, log_A, power, C]
                for L0, log_A, power, C in super()._curve_starts(prepared[:2], loss)
                for share in (0.3, 0.7)
                for alpha in alphas
            ]
        )
