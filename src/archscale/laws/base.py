"""The estimator interface every law shares: ``fit`` on a table, ``predict``, ``coefficients_``,
``intervals_`` (after a bootstrap, at the fitted level; ``bootstrap_.intervals(level)`` at any), ``summary()``
and a JSON round trip (``to_dict`` / ``from_dict``).

A law of the log-sum-exp form L = Σ_t exp(θ · x_t) (see :mod:`archscale.laws.objective`) declares its
parameters once, by name and bounds, and its terms as the log-input each parameter multiplies; the base
derives the design, θ ⇄ coefficients, the bounds and the formula from them. ``log_A`` is fitted as log A
and reported as ``A = exp θ``. A term maps each parameter to ``"1"`` (a constant), ``"x"`` / ``"-x"``
(± the log of column or feature x) or ``"x*y"`` (log x · log y). L = A/x^α + σ::

    @dataclasses.dataclass(kw_only=True)
    class FloorPowerLaw(Law):
        name: ClassVar[str] = "floor-power"
        target: ClassVar[str] = "y"
        inputs: ClassVar[tuple[str, ...]] = ("x",)
        varying: ClassVar[dict[str, str]] = {"x": "alpha needs several x"}
        parameters: ClassVar[tuple[Parameter, ...]] = (
            Parameter("log_A"), Parameter("log_sigma", (-20.0, 20.0)), Parameter("alpha", (0.0, 5.0))
        )
        terms: ClassVar[tuple[Term, ...]] = ({"log_A": "1", "alpha": "-x"}, {"log_sigma": "1"})

        def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
            floor = 0.5 * np.exp(logy.min())
            return self._start_rows([{"log_A": np.log(np.exp(logy).max() - floor), "log_sigma": np.log(floor),
                                      "alpha": alpha} for alpha in (0.2, 0.5, 1.0)])

``formula`` then reads "y = A/x^alpha + sigma" (``tests/laws/test_declared_law.py`` fits this law). Laws
of another form (a sigmoid, a two-step chain) define ``theta_names``, ``_bounds``, ``_design``,
``_coefficients``, ``_theta`` and ``formula`` themselves.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from archscale.laws.bootstrap import Bootstrap
from archscale.laws.columns import Table, positive_column
from archscale.laws.errors import (
    ConvergenceWarning,
    IntervalWarning,
    LawDataError,
    NotFittedError,
    OnBoundWarning,
    ResamplingWarning,
)
from archscale.laws.objective import log_predict, log_predict_paired
from archscale.laws.optimize import (
    Bounds,
    Refits,
    minimise,
    one_blas_thread,
    refit_resamples,
    resample_weights,
)
from archscale.laws.resampling import NoiseModel, log_jacobian, spawn_seeds

"""A DataFrame, or any mapping of column name to array (``{"x": ..., "y": ...}``)."""

Term = Mapping[str, str]
"""One term of a log-sum-exp law: parameter name → the log-input it multiplies (see the module docstring)."""

_REGISTRY: dict[str, type[Law]] = {}

# A column whose largest value is within 10 % of its smallest is constant for fitting purposes (e.g. the
# ~250k steps of every Clark et al. run: D "varies" from 248k to 250k but cannot determine beta).
_MIN_SPREAD = 1.1
_MIN_RUNS = 5  # below this, run-level resampling has too few distinct outcomes to trust percentiles
# A coefficient whose unit change moves no fitted point by more than this share (0.01 %, far below any
# measurement noise) has faded out of the law (e.g. an irreducible loss driven towards 0, where the optimiser
# stops before the bound).
_FADED = 1e-4
MIN_DF_BETWEEN = 1.5
"""Fewest degrees of freedom the runs must leave for the run-to-run noise before an interval is given.
``benchmarks/calibration.py`` (RESULTS.md) measured the parametric intervals of Eq. 1 at 90-98 % coverage
from 5 model sizes (≈ 2 degrees of freedom) and below 90 % at 4 (≈ 1)."""


def _at_bound(value: np.ndarray | float, bound: float) -> np.ndarray | bool:
    return np.abs(value - bound) <= 1e-6 * max(1.0, abs(bound))


def _fixed(bounds: tuple[float | None, float | None]) -> bool:
    """Whether a parameter's bounds fix it (a value the user set, not one the fit found on a bound)."""
    return bounds[0] is not None and bounds[0] == bounds[1]


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One fitted parameter θ_i and its L-BFGS-B bounds. ``log_X`` is fitted as log X, so the coefficient
    ``X = exp θ_i`` stays positive without a bound; any other name is the coefficient itself."""

    name: str
    bounds: tuple[float | None, float | None] = (None, None)

    @property
    def coefficient(self) -> str:
        """The paper's name of the coefficient this parameter gives."""
        return self.name.removeprefix("log_")

    def to_coefficient(self, theta: np.ndarray) -> np.ndarray:
        return np.exp(theta) if self.name.startswith("log_") else theta

    def to_theta(self, coefficient: float) -> float:
        return math.log(coefficient) if self.name.startswith("log_") else coefficient


def _feature(features: Mapping[str, np.ndarray | float], spec: str) -> np.ndarray | float:
    """The design column a term's ``spec`` names: ``"1"``, ``"x"``, ``"-x"`` or ``"x*y"`` over ``features``."""
    if spec == "1":
        return 1.0
    if spec.startswith("-"):
        return -features[spec[1:]]
    left, _, right = spec.partition("*")
    return features[left] * features[right] if right else features[left]


def law_class(name: str) -> type[Law]:
    """The law registered under ``name`` (``chinchilla``, ``wang``, ``clark``, ``kaplan``, ``power``)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LawDataError(f"unknown law '{name}'; choose one of {sorted(_REGISTRY)}") from None


def registered_laws() -> dict[str, type[Law]]:
    """Name → class of every law, for CLIs and deserialisation."""
    return dict(_REGISTRY)


@dataclasses.dataclass(kw_only=True)
class Law(abc.ABC):
    """Base of every law; the estimator holds its whole configuration, so ``clone()`` and a saved fit refit
    exactly (scikit-learn's convention): ``law.fit(table)`` takes nothing else.

    ``loss="huber"`` minimises the summed Huber(``delta``) loss of log residuals (Hoffmann et al. 2022);
    ``loss="squared"`` is ordinary least squares in log space (Clark's, DeepSeek's and Step Law's choice).
    ``grid`` names the grid of starting points and ``n_starts`` how many of its best points L-BFGS-B starts
    from (``None``: all of them).

    Intervals: ``bootstrap=K`` refits K times for ``level`` percentile intervals, from ``seed``. The unit of
    the noise (``resample``) is the run (``run_id``) when that column exists — the points of one loss curve
    are not independent — and the point otherwise (``"auto"``). ``method="parametric"`` (the default,
    calibrated by ``benchmarks/calibration.py``) simulates new data from the fit with a run effect and point
    noise whose variances are drawn from their sampling distributions (:mod:`archscale.laws.resampling`);
    ``"resample"`` draws whole runs with replacement (under-covers with few runs; kept for comparison).
    """

    loss: Literal["huber", "squared"] = "huber"
    delta: float = 1e-3
    grid: str = "default"
    n_starts: int | None = 8
    bootstrap: int = 0
    seed: int = 0
    resample: Literal["auto", "run", "point"] = "auto"
    level: float = 0.95
    method: Literal["parametric", "resample"] = "parametric"

    name: ClassVar[str]
    target: ClassVar[str] = "loss"
    grids: ClassVar[tuple[str, ...]] = ("default",)
    paired: ClassVar[bool] = True
    """Whether :meth:`predict_paired` works (one log-sum-exp design of the inputs); a plan chains a law
    without it at its point only, without an interval."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def __post_init__(self) -> None:
        if self.loss not in ("huber", "squared"):
            raise LawDataError(f"loss must be 'huber' or 'squared', got {self.loss!r}")
        if not self.delta > 0:
            raise LawDataError(f"delta must be > 0, got {self.delta!r}")
        if self.grid not in self.grids:
            raise LawDataError(
                f"grid {self.grid!r} is not available for {self.name}; choose one of {self.grids}"
            )
        if self.n_starts is not None and self.n_starts < 1:
            raise LawDataError(f"n_starts must be >= 1 or None, got {self.n_starts!r}")
        if self.bootstrap < 0:
            raise LawDataError(f"bootstrap must be >= 0 refits, got {self.bootstrap}")
        if self.resample not in ("auto", "run", "point"):
            raise LawDataError(f"resample must be 'auto', 'run' or 'point', got {self.resample!r}")
        if not 0 < self.level < 1:
            raise LawDataError(f"level must lie in (0, 1), e.g. 0.95; got {self.level}")
        if self.method not in ("parametric", "resample"):
            raise LawDataError(f"method must be 'parametric' or 'resample', got {self.method!r}")
        self.theta_: np.ndarray | None = None
        self.no_interval_: str | None = None
        self.faded_: list[str] = []
        self.bootstrap_: Bootstrap | None = None  # the refits, one result: intervals at any level
        self.objective_: float | None = None
        self.n_points_: int | None = None
        self.residual_scale_: float | None = None  # rms of the log residuals (set by this fit, not saved)
        self.converged_: bool | None = None

    # ----- what a concrete law defines -------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def inputs(self) -> tuple[str, ...]:
        """Table columns the law reads (besides the target)."""

    @property
    @abc.abstractmethod
    def varying(self) -> dict[str, str]:
        """Columns that must take several values, with what each one is needed for."""

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The fitted parameters θ, in order, with their bounds."""
        raise NotImplementedError(
            f"{type(self).__name__} declares no parameters, so it defines theta_names, _bounds, _coefficients "
            "and _theta"
        )

    @property
    def terms(self) -> tuple[Term, ...]:
        """The terms of L = Σ_t exp(θ · x_t): which parameter multiplies which log-input."""
        raise NotImplementedError(f"{type(self).__name__} declares no terms, so it defines _design")

    @property
    def symbols(self) -> dict[str, str]:
        """Column → symbol in ``formula`` (e.g. ``tokens`` → ``D``); a column not named here is its own."""
        return {}

    def _log_features(self, logx: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray | float]:
        """What the terms may name besides the logs of the inputs (e.g. a transformed column)."""
        return logx

    @property
    def formula(self) -> str:
        """The law as an equation, in the paper's notation (derived from terms of the form c/x^e)."""
        symbols, coefficients = self.symbols, {p.name: p.coefficient for p in self.parameters}
        rendered = []
        for term in self.terms:
            if any(spec != "1" and not spec.startswith("-") for spec in term.values()):
                raise NotImplementedError(
                    f"{type(self).__name__} has a term not of the form c/x^e: write its formula"
                )
            scale = "".join(coefficients[name] for name, spec in term.items() if spec == "1")
            powers = [
                f"{symbols.get(spec[1:], spec[1:])}^{name}" for name, spec in term.items() if spec != "1"
            ]
            below = powers[0] if len(powers) == 1 else f"({' '.join(powers)})"
            rendered.append(f"{scale}/{below}" if powers else scale)
        legend = ", ".join(f"{symbols[c]} = {c}" for c in self.inputs if symbols.get(c, c) != c)
        equation = f"{symbols.get(self.target, self.target)} = {' + '.join(rendered)}"
        return f"{equation}  [{legend}]" if legend else equation

    @property
    def theta_names(self) -> tuple[str, ...]:
        """Names of the optimised parameters θ (log-coefficients and exponents)."""
        return tuple(parameter.name for parameter in self.parameters)

    def _bounds(self) -> Bounds:
        """L-BFGS-B bounds per parameter (``None`` for unbounded)."""
        return [parameter.bounds for parameter in self.parameters]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        """Design tensor ``(terms, points, parameters)`` from the logs of the input columns."""
        features, names = self._log_features(logx), self.theta_names
        design = np.zeros((len(self.terms), len(logx[self.inputs[0]]), len(names)))
        for t, term in enumerate(self.terms):
            for name, spec in term.items():
                design[t, :, names.index(name)] = _feature(features, spec)
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        """Starting points ``(S, p)`` for multi-term laws (single-term laws start from least squares)."""
        raise NotImplementedError(f"{type(self).__name__} has several terms, so it must define _grid")

    def _start_rows(self, rows: Iterable[Mapping[str, float]]) -> np.ndarray:
        """Starting points given by parameter name, as the ``(S, p)`` array of ``_grid``; a name the law does
        not fit is left out (ChinchillaLaw's rows carry WangLaw's gamma)."""
        return np.array([[row[name] for name in self.theta_names] for row in rows])

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """θ (shape ``(..., p)``) → the paper's coefficients, vectorised over leading axes."""
        return {p.coefficient: p.to_coefficient(theta[..., i]) for i, p in enumerate(self.parameters)}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        """The paper's coefficients → θ (inverse of ``_coefficients``)."""
        return np.array([p.to_theta(coefficients[p.coefficient]) for p in self.parameters])

    def _derived(self, coefficients: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Quantities derived from the coefficients that deserve intervals too (e.g. allocation exponents)."""
        return {}

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """Names of the paper's coefficients, in order."""
        return tuple(self._coefficients(np.ones(len(self.theta_names))))

    # ----- data ------------------------------------------------------------------------------------------
    def _log_inputs(self, table: Table) -> dict[str, np.ndarray]:
        columns = list(table.keys())
        missing = [c for c in self.inputs if c not in columns]
        if missing:
            raise LawDataError(
                f"the {self.name} law needs column(s) {missing}, but the table has {columns}; rename yours "
                f"(CLI: --map {missing[0]}=YOUR_COLUMN; pandas: df.rename(columns=...))"
            )
        return {c: np.log(positive_column(table, c)) for c in self.inputs}

    def _log_target(self, table: Table) -> np.ndarray:
        if self.target not in table:
            raise LawDataError(
                f"the {self.name} law fits column '{self.target}', which the table lacks; rename yours "
                f"(CLI: --map {self.target}=YOUR_COLUMN)"
            )
        return np.log(positive_column(table, self.target))

    def _design_points(
        self, logx: Mapping[str, np.ndarray]
    ) -> tuple[Mapping[str, np.ndarray], np.ndarray | None]:
        """The distinct input points and each row's point (``None`` when no two rows share one).

        Rows that repeat a point — seeds of one configuration, runs logging at the same token counts — differ
        only in their loss: the fit predicts each point once and keeps every row's residual, so the cost of a
        big table follows its distinct points and nothing is averaged away.
        """
        keys = np.column_stack([logx[c] for c in self.inputs])
        unique, index = np.unique(keys, axis=0, return_inverse=True)
        if len(unique) == len(keys):
            return logx, None
        return dict(zip(self.inputs, unique.T, strict=True)), index.ravel()

    def _check_determined(self, logx: Mapping[str, np.ndarray], distinct: int) -> None:
        """Refuse fits the data cannot determine (``distinct`` input points), saying what is missing."""
        n = len(next(iter(logx.values())))
        if n == 0:
            raise LawDataError(f"the table has no rows; the {self.name} law needs one row per point")
        for column, need in self.varying.items():
            lo, hi = np.exp(logx[column].min()), np.exp(logx[column].max())
            if hi < lo * _MIN_SPREAD:
                values = f"a single value ({lo:.6g})" if hi == lo else f"only {lo:.6g} to {hi:.6g}"
                raise LawDataError(
                    f"column '{column}' spans {values} across all {n} rows, too little to fit an exponent, "
                    f"so the {self.name} law cannot be fitted: {need}"
                )
        if distinct < len(self.theta_names):
            raise LawDataError(
                f"the {self.name} law has {len(self.theta_names)} coefficients but the table has only {distinct} "
                f"distinct {self.inputs} point(s); add runs at more distinct values"
            )

    def _groups(self, table: Table, resample: str, n: int) -> tuple[np.ndarray, str]:
        """Resampling unit per point: the run (default when ``run_id`` exists) or the point itself."""
        if resample == "auto":
            resample = "run" if "run_id" in table else "point"
        if resample == "point":
            return np.arange(n), "point"
        if "run_id" not in table:
            raise LawDataError("resample='run' needs a 'run_id' column (CLI: --map run_id=YOUR_COLUMN)")
        codes, _ = pd.factorize(pd.Series(np.asarray(table["run_id"])))
        if (codes < 0).any():
            raise LawDataError("column 'run_id' has missing values; give every row its run")
        return codes, "run"

    # ----- fitting ---------------------------------------------------------------------------------------
    @property
    def _huber_delta(self) -> float:
        return math.inf if self.loss == "squared" else self.delta

    def _starts(
        self, design: np.ndarray, logx: Mapping[str, np.ndarray], logy: np.ndarray, index: np.ndarray | None
    ) -> np.ndarray:
        if design.shape[0] == 1:  # log-linear: least squares is the exact optimum of the squared loss
            rows = design[0] if index is None else design[0][index]
            return np.linalg.lstsq(rows, logy, rcond=None)[0][None, :]
        return self._grid(logx, logy)

    @one_blas_thread
    def fit(self, table: Table) -> Self:
        """Fit on ``table`` (and refit ``bootstrap`` times for intervals); the same configuration on the
        same table gives the same fit and intervals."""
        logx = self._log_inputs(table)
        logy = self._log_target(table)
        points, index = self._design_points(logx)
        self._check_determined(logx, len(points[self.inputs[0]]))
        design = self._design(points)
        bounds = self._bounds()
        weights = np.ones(len(logy))
        starts = self._starts(design, logx, logy, index)
        best = minimise(design, logy, weights, starts, bounds, self._huber_delta, self.n_starts, index)
        self.theta_, self.objective_, self.converged_ = best.theta, best.objective, best.converged
        self.n_points_ = len(logy)
        log_mean = log_predict(design, self.theta_)
        residuals = logy - (log_mean if index is None else log_mean[index])
        self.residual_scale_ = float(np.sqrt(np.mean(residuals**2)))
        jacobian = np.abs(log_jacobian(design, self.theta_)).max(axis=0)
        self.faded_ = [name for name, slope in zip(self.theta_names, jacobian, strict=True) if slope < _FADED]
        self.bootstrap_ = None
        self.no_interval_ = None
        self._warn_about_fit()
        if self.bootstrap:
            groups, unit = self._groups(table, self.resample, len(logy))
            self._bootstrap(design, logy, groups, unit, index)
        return self

    def _bootstrap(
        self, design: np.ndarray, logy: np.ndarray, groups: np.ndarray, unit: str, index: np.ndarray | None
    ) -> None:
        """Refit ``bootstrap`` times; ``design`` holds the distinct points, ``index`` each row's (see fit)."""
        n, method = self.bootstrap, self.method
        noise = NoiseModel.estimate(design if index is None else design[:, index], self.theta_, logy, groups)
        if self._refuse_interval(noise, unit):
            return
        refit_seed, scale_seed = spawn_seeds(self.seed, 2)
        rng = np.random.default_rng(refit_seed)
        scales = noise.draw_scales(np.random.default_rng(scale_seed), n)
        if method == "parametric":
            log_mean = log_predict(design, self.theta_)
            logys = noise.simulate(log_mean if index is None else log_mean[index], groups, scales, rng)
            weights = np.broadcast_to(np.ones(len(logy)), (n, len(logy)))  # a view: no (K, rows) copy
        else:
            if noise.n_groups < _MIN_RUNS:
                message = (
                    f"{self.name}: only {noise.n_groups} {unit}s to resample, so the intervals rest on a "
                    "handful of distinct resamples; read them as rough, or use method='parametric'"
                )
                warnings.warn(ResamplingWarning(message), stacklevel=4)
            weights = resample_weights(groups, n, rng)
            logys = np.broadcast_to(logy, weights.shape)
        refits = refit_resamples(
            design, logys, weights, self.theta_, self._bounds(), self._huber_delta, index
        )
        self._store_bootstrap(refits, scales, noise, unit)

    def _refuse_interval(
        self,
        noise: NoiseModel,
        unit: str,
        *,
        min_df: float | None = None,
        calibrated_by: str = "benchmarks/calibration.py",
    ) -> bool:
        """Whether the runs leave fewer than ``min_df`` (default :data:`MIN_DF_BETWEEN`) degrees of freedom
        for the run-to-run noise, the fewest ``calibrated_by`` measured calibrated; if so ``no_interval_``
        says what is missing, with a warning."""
        min_df = MIN_DF_BETWEEN if min_df is None else min_df
        if noise.identified and noise.df_between >= min_df:
            return False
        have, left = noise.n_groups, max(noise.df_between, 0.0)
        if noise.identified:  # each further run adds about one degree of freedom
            needed = f"needs >= {math.ceil(have - left + min_df)} {unit}s at distinct inputs"
        else:
            needed = f"needs more {unit}s at distinct inputs than the law's coefficients use up"
        self.no_interval_ = (
            f"{self.name}: no interval, it {needed} and this fit has {have}: they leave {left:.1f} degrees "
            f"of freedom for the {unit}-to-{unit} noise, and intervals are calibrated from {min_df:g} "
            f"({calibrated_by})"
        )
        warnings.warn(IntervalWarning(self.no_interval_), stacklevel=5)
        return True

    def _store_bootstrap(self, refits: Refits, scales: np.ndarray, noise: NoiseModel, unit: str) -> None:
        """Keep the refits and the drawn (τ, s) of each, with what made them; warn when many failed."""
        n = len(refits.theta)
        on_bound = {
            name: int(hits.sum()) for name, hits in self._on_bounds(refits.theta).items() if hits.any()
        }
        self.bootstrap_ = Bootstrap(
            law=self,
            theta=refits.theta,
            scales=scales,
            n=n,
            method=self.method,
            resample=unit,
            seed=self.seed,
            level=self.level,
            noise=noise.to_dict(),
            not_converged=int((~refits.converged).sum()),
            on_bound=on_bound,
        )
        failed = self.bootstrap_.not_converged + sum(on_bound.values())
        if failed > 0.05 * n:
            message = (
                f"{self.name}: {self.bootstrap_.not_converged} of {n} refits did not converge and "
                f"{sum(on_bound.values())} parameter values ended on a bound ({on_bound}); the intervals are "
                "rough"
            )
            warnings.warn(ResamplingWarning(message), stacklevel=5)

    def _warn_about_fit(self) -> None:
        if not self.converged_:
            message = f"{self.name}: L-BFGS-B did not converge; try grid='hoffmann' or n_starts=None"
            warnings.warn(ConvergenceWarning(message), stacklevel=3)
        for name, value, bound in self._bound_hits():
            message = (
                f"{self.name}: {name} = {value:.6g} sits on its bound {bound:g}, so the data do not pin it down; "
                "check the law suits these data (summary() lists the fit)"
            )
            warnings.warn(OnBoundWarning(message), stacklevel=3)
        bound = {name for name, _, _ in self._bound_hits()}
        for name in (name for name in self.faded_ if name not in bound):
            message = (
                f"{self.name}: {name} has faded out of the law (the fitted curve does not depend on it), so the "
                "data do not pin it down; check the law suits these data (summary() lists the fit)"
            )
            warnings.warn(OnBoundWarning(message), stacklevel=3)

    def _on_bounds(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Per parameter, whether each row of ``theta`` (shape ``(..., p)``) sits on one of its bounds."""
        hits = {}
        for i, (name, bounds) in enumerate(zip(self.theta_names, self._bounds(), strict=True)):
            on = np.zeros(theta.shape[:-1], dtype=bool)
            for bound in bounds:
                if bound is not None and not _fixed(bounds):
                    on |= _at_bound(theta[..., i], bound)
            hits[name] = on
        return hits

    def _bound_hits(self) -> list[tuple[str, float, float]]:
        theta = self._fitted_theta()
        return [
            (name, float(value), float(bound))
            for name, value, bounds in zip(self.theta_names, theta, self._bounds(), strict=True)
            for bound in bounds
            if bound is not None and not _fixed(bounds) and _at_bound(value, bound)
        ]

    # ----- fitted quantities -----------------------------------------------------------------------------
    def _fitted_theta(self) -> np.ndarray:
        if self.theta_ is None:
            raise NotFittedError(
                f"this {self.name} law is not fitted: call fit(table) or load it with from_dict()"
            )
        return self.theta_

    def _fitted_bootstrap(self) -> Bootstrap:
        if self.bootstrap_ is None:
            raise NotFittedError(f"this {self.name} law has no bootstrap: fit(table, bootstrap=K) first")
        return self.bootstrap_

    @property
    def level_(self) -> float:
        """Confidence level of the intervals."""
        return self.bootstrap_.level if self.bootstrap_ else 0.95

    @property
    def coefficients_(self) -> dict[str, float]:
        """The paper's coefficients (``A``, ``B``, ``alpha``, … / ``a``, ``b``, ``c``, ``d`` / ``lambda``, …)."""
        return {k: float(v) for k, v in self._coefficients(self._fitted_theta()).items()}

    @property
    def derived_(self) -> dict[str, float]:
        """Derived quantities at the fitted coefficients (e.g. ``alpha_N``, ``alpha_D``)."""
        return {k: float(v) for k, v in self._derived(self._coefficients(self._fitted_theta())).items()}

    @property
    def bootstrap_coefficients_(self) -> dict[str, np.ndarray]:
        """Every coefficient and derived quantity across the bootstrap fits (arrays of length K)."""
        return self._fitted_bootstrap().coefficients

    @property
    def pinned_(self) -> list[str]:
        """Parameters the data do not pin down: the fitted value sits on an optimisation bound or has faded
        out of the law (its term too small to move the fit: a coefficient reaching its natural bound 0 in
        the limit)."""
        hits = [name for name, _, _ in self._bound_hits()]
        return hits + [name for name in self.faded_ if name not in hits]

    @property
    def degenerate_(self) -> str | None:
        """Why the fit is a constraint rather than a law (``None`` when no parameter is pinned): the one
        reason every analysis and the report give."""
        if pinned := self.pinned_:
            return (
                f"{', '.join(pinned)} ended on its bound or faded out of the law, so the data do not pin the law "
                "down"
            )
        return None

    @property
    def intervals_(self) -> dict[str, tuple[float, float]]:
        """Percentile intervals of every coefficient and derived quantity at the fitted level (any other:
        ``bootstrap_.intervals(level)``); empty without a bootstrap."""
        return {} if self.bootstrap_ is None else self.bootstrap_.intervals()

    # ----- prediction ------------------------------------------------------------------------------------
    def predict(self, table: Table) -> np.ndarray:
        """Predicted target (e.g. loss) for each row of ``table``."""
        return np.exp(log_predict(self._design(self._log_inputs(table)), self._fitted_theta()))

    def predict_samples(self, table: Table) -> np.ndarray:
        """Prediction of every bootstrap fit, shape ``(K, rows)``."""
        return np.exp(log_predict(self._design(self._log_inputs(table)), self._fitted_bootstrap().theta))

    def predict_paired(self, table: Table, refits: np.ndarray | None = None) -> np.ndarray:
        """Row i predicted by bootstrap fit i, or by fit ``refits[i]`` (``table`` has one row per fit used,
        or fewer rows for the first fits), e.g. each fit at its own optimum."""
        design = self._design(self._log_inputs(table))
        theta = self._fitted_bootstrap().theta
        if refits is not None:
            theta = theta[np.asarray(refits)]
        if design.shape[1] > len(theta):
            raise LawDataError(
                f"{self.name}: {design.shape[1]} rows to predict fit by fit, but the law has {len(theta)} "
                "bootstrap fits"
            )
        return np.exp(log_predict_paired(design, theta[: design.shape[1]]))

    def predict_interval(self, table: Table, *, new_run: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the prediction at each row of ``table`` at the fitted level (any other:
        ``bootstrap_.prediction_interval(table, level)``).

        ``new_run=False``: the band of the fitted curve (parameter uncertainty only). ``True``: the
        prediction interval of what a new run at those inputs would measure, adding the run effect and
        point noise estimated from the fit's residuals (each resample with its own drawn τ and s).
        """
        return self._fitted_bootstrap().prediction_interval(table, new_run=new_run)

    def _interval_samples(self, table: Table, new_run: bool) -> np.ndarray:
        """What a prediction interval takes percentiles of: every refit's prediction, times a new run's noise
        where ``new_run``."""
        samples = self.predict_samples(table)
        if new_run:
            run, point = self._fitted_bootstrap().new_run_noise(samples.shape[1])
            samples = samples * np.exp(run + point)
        return samples

    # ----- presentation and persistence ------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-ready."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def summary(self) -> str:
        """A readable table of the fit: coefficients, derived quantities, intervals and fit statistics."""
        lines = [f"{type(self).__name__}: {self.formula}"]
        if self.n_points_ is not None:
            lines.append(
                f"fitted on {self.n_points_} points, {self.loss} loss objective {self.objective_:.6g}, "
                f"{'converged' if self.converged_ else 'NOT converged'}"
            )
            free = sum(not _fixed(bounds) for bounds in self._bounds())
            scale = (
                ""
                if self.residual_scale_ is None
                else f"residual scale {self.residual_scale_:.4g} (rms of log residuals), "
            )
            lines.append(
                f"{scale}{self.n_points_ - free} degrees of freedom ({self.n_points_} points - {free} parameters)"
            )
        if b := self.bootstrap_:
            lines.append(
                f"{b.n} {b.method} bootstrap refits, noise unit {b.resample} ({b.noise['n_groups']} "
                f"{b.resample}s, seed {b.seed}), {b.level:.0%} intervals; {b.not_converged} refits "
                f"not converged, on a bound: {b.on_bound or 'none'}"
            )
        else:
            lines.append(f"no intervals: {self.no_interval_ or 'fit with bootstrap=K to get them'}")
        intervals = self.intervals_
        values = self.coefficients_ | self.derived_
        width = max(map(len, values))
        for name, value in values.items():
            ci = f"  [{intervals[name][0]:.6g}, {intervals[name][1]:.6g}]" if name in intervals else ""
            lines.append(f"  {name:<{width}}  {value:.6g}{ci}")
        if reason := self.degenerate_:
            lines.append(f"degenerate: {reason}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fit: the interface contract's keys plus what ``from_dict`` needs to rebuild it."""
        theta = self._fitted_theta()
        return {
            "law": self.name,
            "formula": self.formula,
            "target": self.target,
            "inputs": list(self.inputs),
            "coefficients": self.coefficients_,
            "derived": self.derived_,
            "intervals": {k: list(v) for k, v in self.intervals_.items()},
            "objective": self.objective_,
            "n_points": self.n_points_,
            "converged": self.converged_,
            "on_bound": self.pinned_,  # the saved-fit key, kept so saved fits keep their format
            "faded": self.faded_,
            "config": self.config(),
            "theta": theta.tolist(),
            "no_interval": self.no_interval_,
            "bootstrap": None if self.bootstrap_ is None else self.bootstrap_.to_dict(),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Law:
        """Rebuild a fitted law from ``to_dict()`` output (e.g. ``archscale fit --json`` saved to a file)."""
        for key in ("law", "config", "theta"):
            if key not in data:
                raise LawDataError(
                    f"a saved fit needs the key '{key}' (write it with `archscale fit ... --json`)"
                )
        law = law_class(data["law"])(**data["config"])
        theta = np.asarray(data["theta"], dtype=float)
        if theta.shape != (len(law.theta_names),):
            raise LawDataError(
                f"'theta' must hold {len(law.theta_names)} values {law.theta_names}, got shape {theta.shape}"
            )
        law.theta_ = theta
        law.objective_, law.n_points_, law.converged_ = (
            data.get("objective"),
            data.get("n_points"),
            data.get("converged"),
        )
        law.no_interval_ = data.get("no_interval")
        law.faded_ = list(data.get("faded", []))
        if boot := data.get("bootstrap"):
            law.bootstrap_ = Bootstrap.from_dict(law, boot)
        law._restore(data)
        return law

    def _restore(self, data: Mapping[str, Any]) -> None:
        """Fitted state a law adds to ``to_dict`` beyond the base keys, read back by ``from_dict`` (none here)."""
        del data

    @classmethod
    def from_coefficients(cls, coefficients: Mapping[str, float], **config: Any) -> Self:
        """A law with given coefficients (e.g. a published one), ready to predict and plan with."""
        law = cls(**config)
        if set(coefficients) != set(law.coefficient_names):
            raise LawDataError(
                f"{cls.__name__} takes coefficients {sorted(law.coefficient_names)}, got {sorted(coefficients)}"
            )
        law.theta_ = np.asarray(law._theta(coefficients), dtype=float)
        return law

    def clone(self) -> Self:
        """An unfitted copy with the same configuration."""
        return dataclasses.replace(self)
