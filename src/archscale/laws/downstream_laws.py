"""Downstream laws: what a big model will score on a task, predicted from a ladder of small models.

Two-step method (Bhagia et al. 2024, "Establishing Task Scaling Laws via Compute-Efficient Model Ladders",
arXiv 2412.04403, §3; checked against the authors' code, allenai/OLMo ``olmo/scaling/scaling_laws/utils.py``
and ``scripts/scaling/step2.py``):

- step 1 (:class:`TaskLossLaw`): task loss L(N, D) = A/N^α + B/D^β + E, one point per run = the mean of its
  last 5 evaluations at the run's last token count (the code's ``get_step1_data_by_name``: ``rows[-5:]``,
  ``d = ds[-1]``), Huber δ = 1e-3 on log residuals, L-BFGS-B (ChinchillaLaw's machinery; E is its σ).
- step 2 (:class:`AccuracyLaw`): Acc(L) = a / (1 + e^(−k(L − L0))) + b, a ∈ [−1, 0], b ∈ [0, 1], L0, k ≥ 0,
  least squares (``curve_fit``) on every checkpoint of every ladder run after dropping the first
  ceil(10 %) of each run's checkpoints, the task loss smoothed by a 5-point **trailing** moving average whose
  first 4 points average the 1-4 values available (``moving_average`` in the code; the smoothing is applied
  after the cut and to the task loss only — the accuracy is not smoothed), plus the point (L = 0, Acc = 1).
  The paper's runs each have many checkpoints; a ladder of WSD cooldown branches (the micro study's) scores
  each run's final weights once, so its checkpoints are spread over runs and a per-run cut would drop them
  all. An optional ``trajectory`` column (a branch's trunk) makes a trunk and its branches one sequence for
  the cut and the smoothing (:func:`step2_points`); step 1 keeps one point per run.
  The code at that commit also adds a second "ideal" point (max L, chance); the paper names only (0, 1),
  which is what is used here.
- the chain (:class:`TwoStepLaw`): step 1's predicted task loss fed into step 2. The paper gives no
  intervals; the ones here are a run-level bootstrap through both steps plus the new run's noise (see
  :class:`TwoStepLaw`), calibrated by ``benchmarks/downstream_calibration.py``.

Loss-to-loss (:class:`LossToLossLaw`, Brandfonbrener et al. 2024, "Loss-to-Loss Prediction", arXiv
2411.12925, Eq. 3 "train-to-test"): L_y = K·(L_x − E_x)^κ + E_y with E_x, E_y the irreducible terms of each
loss's own scaling-law fit, K and κ by least squares of log(L_y − E_y) on log(L_x − E_x) (the notebooks'
``fit_power_law`` with both E given): a second route to step 1 where a task's own curve is noisy,
``TwoStepLaw(route="loss-to-loss")``: (N, D) → validation loss (Chinchilla form, E_x its σ) → task loss (the
link, K and κ on the runs' final (val loss, task loss) pairs, E_y the σ of the task loss's own step-1 fit)
→ accuracy (step 2 unchanged).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.special import expit

from archscale.laws.base import Law
from archscale.laws.bootstrap import Bootstrap, percentile_interval
from archscale.laws.columns import Table, numeric_column
from archscale.laws.errors import ConvergenceWarning, IntervalWarning, LawDataError
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.objective import log_predict
from archscale.laws.optimize import Bounds, refit_resamples
from archscale.laws.resampling import spawn_seeds

POINT_COLUMNS = ("run_id", "params", "tokens", "step", "task_loss", "accuracy")
"""One row per evaluated checkpoint of a ladder run: the data both steps are fitted on."""
VAL_LOSS = "val_loss"
"""The loss-to-loss route's extra column: the validation (held-out) loss at each evaluated checkpoint."""
ROUTES = ("direct", "loss-to-loss")
TRAJECTORY = "trajectory"
"""Optional column: the run whose weights a run continues (a cooldown branch's trunk); a row without one is
its own run's. Only step 2's cut and smoothing and the bootstrap's draws read it."""

# The ladder's best final accuracy must clear chance by this many standard errors of a last-5 mean (the
# checkpoint noise / √5; / √1 for a run scored once) before the task counts as above chance; 3 keeps the
# max over a 24-run ladder of a task at chance (≈ 2 standard errors) below the line.
CHANCE_MARGIN = 3.0
# Step 2's fitted rise across the ladder's task losses must exceed this many checkpoint-noise standard
# deviations, or the sigmoid's slope (hence any extrapolation along it) is not pinned down by the data.
MIN_RISE = 2.0
MIN_SIZES = 3
"""Fewest distinct model sizes for a chained interval: ``benchmarks/downstream_calibration.py`` measured the
run-level bootstrap's prediction intervals at 94-97 % on ladders of 3 to 8 sizes × 3-4 token counts
(RESULTS.md); fewer sizes were not measured."""
MIN_RUNS = 12
"""Fewest runs for a chained interval: the smallest ladders calibrated (3 sizes × 4 token counts, 4 × 3). With 5
runs step 1's five coefficients leave no degree of freedom for the run effect at all."""
ROUTE_MIN_SIZES, ROUTE_MIN_RUNS = 6, 24
MAX_UNLINKED = 0.1
"""The largest share of the route's resamples that may fail to link (their E_y at or above a run's final task
loss) before its interval is refused: dropping more would keep only the resamples with a low E_y."""
"""The loss-to-loss route's intervals were calibrated on ladders of 6 sizes × 4 token counts only (95.7-97.7 %,
RESULTS.md); smaller ladders give its point forecast without an interval until they are measured."""


def _points(table: Table, columns: tuple[str, ...]) -> pd.DataFrame:
    """The table's ``columns`` with the values checked: a fix-it message instead of a silent NaN fit."""
    frame = pd.DataFrame(table)
    missing = [c for c in columns if c not in frame]
    if missing:
        raise LawDataError(
            f"the downstream laws need the column(s) {missing}: one row per evaluated checkpoint with "
            f"{list(POINT_COLUMNS)} (rename yours with --map COLUMN=YOURS)"
        )
    out = pd.DataFrame()
    if "run_id" in columns:
        out["run_id"] = frame["run_id"].to_numpy()
        out[TRAJECTORY] = _trajectories(frame)
    for column in (c for c in columns if c != "run_id"):
        values = numeric_column(frame, column)
        if not np.isfinite(values).all():
            raise LawDataError(f"column '{column}' has missing or non-finite values; drop or fix those rows")
        out[column] = values
    if "accuracy" in out and ((out["accuracy"] < 0) | (out["accuracy"] > 1)).any():
        raise LawDataError("column 'accuracy' must lie in [0, 1] (a share of items, not a percentage)")
    if "task_loss" in out and (out["task_loss"] <= 0).any():
        raise LawDataError("column 'task_loss' must be > 0 (bits per byte of the correct continuation)")
    return out


def _trajectories(frame: pd.DataFrame) -> np.ndarray:
    """Each row's trajectory: its ``trajectory`` where given, else its run; one per run, or a fix-it error."""
    runs = frame["run_id"]
    if TRAJECTORY not in frame:
        return runs.to_numpy()
    trajectory = frame[TRAJECTORY].where(frame[TRAJECTORY].notna(), runs)
    several = trajectory.groupby(runs.to_numpy(), sort=False).nunique()
    if (several > 1).any():
        raise LawDataError(
            f"run(s) {list(several.index[several > 1])} have rows of several trajectories; a run continues one "
            "trunk (or none): give each run one 'trajectory'"
        )
    return trajectory.to_numpy()


def _check_val_loss(table: Table) -> None:
    """The loss-to-loss route's one-line fix-it error where a checkpoint has no validation loss (a results
    store without a held-out eval at that step, a table without the column)."""
    frame = pd.DataFrame(table)
    values = (
        pd.to_numeric(frame[VAL_LOSS], errors="coerce")
        if VAL_LOSS in frame
        else pd.Series(np.nan, frame.index)
    )
    lacking = frame[values.isna()]
    if lacking.empty:
        return
    where = (
        f", e.g. run {lacking['run_id'].iloc[0]} at step {lacking['step'].iloc[0]}"
        if {"run_id", "step"} <= set(frame)
        else ""
    )
    raise LawDataError(
        f"the loss-to-loss route needs the validation loss '{VAL_LOSS}' at every evaluated checkpoint; "
        f"{len(lacking)} of {len(frame)} rows lack it{where}: add the column (--map {VAL_LOSS}=YOURS; a results store "
        "gives the held-out loss its training run evaluated at that step), or use the direct route (--route direct)"
    )


def _by_run(frame: pd.DataFrame, key: str = "run_id") -> list[pd.DataFrame]:
    """Each run's (or each ``key`` group's) rows in step order, in order of first appearance. A branch counts
    the trunk's steps (it resumes the trunk's optimiser state with the same batch), so a trajectory's steps
    order its runs' checkpoints by tokens."""
    return [rows.sort_values("step", kind="stable") for _, rows in frame.groupby(key, sort=False)]


def final_values(points: Table, last: int = 5, also: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per run for step 1: its ``params``, the ``tokens`` of its last evaluation, and the mean
    ``task_loss`` and ``accuracy`` (and of each column in ``also``, e.g. ``val_loss``) of its last ``last``
    evaluations (fewer if the run has fewer), which averages away most of the checkpoint-to-checkpoint noise
    of the end point."""
    if last < 1:
        raise LawDataError(f"last must be >= 1 evaluations, got {last}")
    frame = _points(points, (*POINT_COLUMNS, *also))
    tails = [run.iloc[-last:] for run in _by_run(frame)]
    return pd.DataFrame(
        {
            "run_id": [tail["run_id"].iloc[0] for tail in tails],
            TRAJECTORY: [tail[TRAJECTORY].iloc[0] for tail in tails],
            "params": [tail["params"].iloc[-1] for tail in tails],
            "tokens": [tail["tokens"].iloc[-1] for tail in tails],
            **{
                column: [tail[column].mean() for tail in tails] for column in ("task_loss", "accuracy", *also)
            },
            "evaluations": [len(tail) for tail in tails],
        }
    )


def resample_counts(trajectories: np.ndarray, n: int, seed: int) -> np.ndarray:
    """How often each of ``n`` resamples draws each run, shape ``(n, runs)``: as many trajectories as there
    are, drawn with replacement, each run counted as often as its trajectory (``trajectories``: each run's).
    A cooldown branch is its trunk's weights plus a decay, so the two are one draw, not independent ones;
    with one run per trajectory this is the plain run-level bootstrap (the same draws for the same seed)."""
    codes, groups = pd.factorize(trajectories)
    draws = np.random.default_rng(seed).integers(0, len(groups), size=(n, len(groups)))
    counts = np.zeros((n, len(groups)))
    np.add.at(counts, (np.arange(n)[:, None], draws), 1.0)
    return counts[:, codes]


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each value and the ``window − 1`` before it; the first ``window − 1`` average what exists."""
    sums = np.cumsum(values, dtype=float)
    sums[window:] = sums[window:] - sums[:-window]
    return sums / np.minimum(np.arange(1, len(values) + 1), window)


def step2_points(points: Table, skip: float = 0.1, window: int = 5) -> pd.DataFrame:
    """Step 2's points: per trajectory (per run without a ``trajectory`` column), the first
    ceil(``skip`` · checkpoints) dropped (early checkpoints sit off the loss-accuracy curve the large model
    follows), then the task loss smoothed by :func:`trailing_mean` over ``window`` checkpoints; accuracies
    as measured. A trunk and its cooldown branches are one trajectory: they share the trunk's weights up to
    each branch, and scored once each they are its only checkpoints. Columns ``run_id, trajectory, step,
    task_loss, accuracy``."""
    if not 0 <= skip < 1:
        raise LawDataError(f"skip must lie in [0, 1), got {skip}")
    if window < 1:
        raise LawDataError(f"window must be >= 1 checkpoints, got {window}")
    frame = _points(points, ("run_id", "step", "task_loss", "accuracy"))
    kept = []
    for sequence in _by_run(frame, TRAJECTORY):
        sequence = sequence.iloc[math.ceil(skip * len(sequence)) :]
        kept.append(sequence.assign(task_loss=trailing_mean(sequence["task_loss"].to_numpy(), window)))
    return pd.concat(kept, ignore_index=True)


@dataclasses.dataclass(kw_only=True)
class TaskLossLaw(ChinchillaLaw):
    """Step 1: L_task = A/N^α + B/D^β + E per task (Bhagia et al. 2024 Eq. 1; E is ChinchillaLaw's σ).

    ``fit`` takes the checkpoint table (it has a ``step`` column; each run becomes the mean of its last
    ``last`` evaluations, :func:`final_values`) or a table that already has one row per run.
    """

    last: int = 5

    name: ClassVar[str] = "task-loss"
    target: ClassVar[str] = "task_loss"

    @property
    def formula(self) -> str:
        s = self._symbol
        return f"L_task = A/{s}^alpha + B/D^beta + E  [E = sigma, {s} = {self.size}, D = tokens]"

    def fit(self, table: Table) -> Self:
        """Fit on each run's final value (the checkpoint table is reduced with :func:`final_values`)."""
        frame = pd.DataFrame(table)
        return super().fit(final_values(frame, self.last) if "step" in frame else frame)


def sigmoid(theta: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Acc(L) = a / (1 + e^(−k(L − L0))) + b for θ = (a, L0, k, b) of shape ``(p,)`` or ``(K, p)``."""
    theta = np.asarray(theta, dtype=float)
    a, l0, k, b = np.moveaxis(theta, -1, 0)[..., None] if theta.ndim > 1 else theta
    return a * expit(k * (loss - l0)) + b


def _sigmoid_jacobian(theta: np.ndarray, loss: np.ndarray) -> np.ndarray:
    a, l0, k, _ = theta
    s = expit(k * (loss - l0))
    slope = a * s * (1 - s)
    return np.column_stack([s, -k * slope, (loss - l0) * slope, np.ones_like(loss)])


_SIGMOID_BOUNDS = (np.array([-1.0, 0.0, 0.0, 0.0]), np.array([0.0, np.inf, np.inf, 1.0]))


def _fit_sigmoid(x: np.ndarray, y: np.ndarray, weights: np.ndarray, starts: np.ndarray):
    """Weighted least squares of the sigmoid from each start (trust-region reflective, box bounds)."""
    root = np.sqrt(weights)
    best = None
    for start in starts:
        result = least_squares(
            lambda t: root * (sigmoid(t, x) - y),
            np.clip(start, *_SIGMOID_BOUNDS),
            jac=lambda t: root[:, None] * _sigmoid_jacobian(t, x),
            bounds=_SIGMOID_BOUNDS,
            method="trf",
            x_scale="jac",
        )
        if best is None or result.cost < best.cost:
            best = result
    return best


@dataclasses.dataclass(kw_only=True)
class AccuracyLaw(Law):
    """Step 2: Acc(L) = a / (1 + e^(−k(L − L0))) + b (Bhagia et al. 2024 Eq. 2), least squares on the
    checkpoints of the ladder (:func:`step2_points`: the first ``skip`` of each run dropped, the task loss
    smoothed over ``window``) plus the anchor (L = 0, Acc = 1) when ``anchor``.

    ``chance`` (e.g. 0.25 for four choices) lets the fit say when the ladder is too near chance to
    predict from (``unpredictable_``); without it only the slope is checked.
    """

    skip: float = 0.1
    window: int = 5
    anchor: bool = True
    chance: float | None = None
    loss: Literal["huber", "squared"] = "squared"

    name: ClassVar[str] = "accuracy"
    paired: ClassVar[bool] = False  # a sigmoid: no single design, so predict_paired cannot work
    target: ClassVar[str] = "accuracy"
    inputs: ClassVar[tuple[str, ...]] = ("task_loss",)
    theta_names: ClassVar[tuple[str, ...]] = ("a", "L0", "k", "b")
    varying: ClassVar[dict[str, str]] = {"task_loss": "the sigmoid needs a range of task losses"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss != "squared":
            raise LawDataError(
                "the accuracy law is fitted by least squares, as the paper does (loss='squared')"
            )
        if self.chance is not None and not 0 <= self.chance < 1:
            raise LawDataError(f"chance must lie in [0, 1), e.g. 0.25 for four choices; got {self.chance}")
        self.noise_: float | None = None
        self.unpredictable_: str | None = None
        self.loss_range_: tuple[float, float] | None = None

    @property
    def formula(self) -> str:
        return "Acc = a / (1 + exp(-k (L - L0))) + b  [L = task_loss, a in [-1, 0], b in [0, 1]]"

    def _bounds(self) -> Bounds:
        return [(-1.0, 0.0), (0.0, None), (0.0, None), (0.0, 1.0)]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        raise LawDataError("the accuracy law is a sigmoid in the task loss, not a design of log inputs")

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        return {name: theta[..., i] for i, name in enumerate(self.theta_names)}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        return np.array([coefficients[name] for name in self.theta_names], dtype=float)

    def _fit_points(self, points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The step-2 task losses and accuracies, the anchor last."""
        x, y = points["task_loss"].to_numpy(), points["accuracy"].to_numpy()
        if self.anchor:
            x, y = np.append(x, 0.0), np.append(y, 1.0)
        return x, y

    def _starts(self, x: np.ndarray) -> np.ndarray:
        """The authors' start (a = chance − 1, L0 = 0.9, k = 3, b = 1) and L0 across the data's losses."""
        a = (self.chance if self.chance is not None else 0.25) - 1.0
        centres = (0.9, *np.quantile(x[x > 0], [0.1, 0.5, 0.9]))
        return np.array([(a, l0, k, 1.0) for l0 in centres for k in (3.0, 10.0)])

    def fit(self, table: Table) -> Self:
        """Fit on the checkpoint table (``run_id, step, task_loss, accuracy``), see the class."""
        points = step2_points(table, self.skip, self.window)
        if points["run_id"].nunique() < 2 or len(points) <= len(self.theta_names):
            raise LawDataError(
                f"the accuracy law needs checkpoints of several runs; after the {self.skip:.0%} cut the table "
                f"has {len(points)} point(s) from {points['run_id'].nunique()} run(s)"
            )
        x, y = self._fit_points(points)
        result = _fit_sigmoid(x, y, np.ones_like(x), self._starts(x))
        self.theta_, self.objective_ = np.asarray(result.x), float(result.cost)
        self.converged_, self.n_points_ = bool(result.success), len(x)
        self.faded_, self.bootstrap_ = [], None
        measured = slice(None, len(points))
        self.noise_ = float(np.sqrt(np.sum((sigmoid(self.theta_, x) - y)[measured] ** 2) / (len(points) - 4)))
        self.loss_range_ = (float(points["task_loss"].min()), float(points["task_loss"].max()))
        self.unpredictable_ = self._unpredictable(table)
        self.no_interval_ = f"{self.name}: intervals come from the chain (TwoStepLaw), not from step 2 alone"
        if not self.converged_:
            warnings.warn(ConvergenceWarning(f"{self.name}: least squares did not converge"), stacklevel=2)
        if self.unpredictable_:
            warnings.warn(IntervalWarning(self.unpredictable_), stacklevel=2)
        return self

    def _unpredictable(self, table: Table) -> str | None:
        """Why the ladder cannot support a prediction along this sigmoid, or ``None``."""
        s = self.noise_
        if self.chance is not None:
            # the run furthest above chance in standard errors: a run scored once (a ladder of cooldown
            # branches) carries one checkpoint's noise, not a last-5 mean's
            tails = [
                run["accuracy"].iloc[-5:] for run in _by_run(_points(table, ("run_id", "step", "accuracy")))
            ]
            tail = max(tails, key=lambda t: (t.mean() - self.chance) * math.sqrt(len(t)))
            best, error = float(tail.mean()), s / math.sqrt(len(tail))
            if best - self.chance < CHANCE_MARGIN * error:
                return (
                    f"{self.name}: the task is at chance at the ladder's scale: its best final accuracy "
                    f"{best:.3f} is within {CHANCE_MARGIN:g} standard errors ({error:.3f}) of chance "
                    f"{self.chance:g}, so the sigmoid's rise cannot be read from these runs"
                )
        lo, hi = self.loss_range_
        rise = float(-np.diff(sigmoid(self.theta_, np.array([lo, hi])))[0])
        if rise < MIN_RISE * s:
            return (
                f"{self.name}: step 2's slope is not identified: across the ladder's task losses "
                f"({lo:.3g} to {hi:.3g}) the fitted accuracy rises by {rise:.3f}, less than {MIN_RISE:g}× the "
                f"checkpoint-to-checkpoint noise ({s:.3f}); the task is too noisy or too flat at this scale"
            )
        return None

    def predict(self, table: Table) -> np.ndarray:
        """Accuracy at each row's ``task_loss``."""
        loss = numeric_column(pd.DataFrame(table), "task_loss")
        return np.atleast_1d(sigmoid(self._fitted_theta(), loss))


@dataclasses.dataclass(kw_only=True)
class TwoStepLaw(Law):
    """The chain (N, D) → task loss → accuracy, fitted on one task's checkpoint table
    (``run_id, params, tokens, step, task_loss, accuracy``; N counts every weight but the input embedding,
    as the paper does).

    ``route="loss-to-loss"`` takes step 1 through the validation loss (a ``val_loss`` column, at every
    checkpoint): L_val(N, D) = A/N^α + B/D^β + E_x on each run's last-5 mean of it, then the link
    L_task = K·(L_val − E_x)^κ + E_y (:class:`LossToLossLaw` on the runs' final pairs, E_y the σ of the task
    loss's own step-1 fit, as Brandfonbrener et al. define both E). A task whose own curve is noisy then
    leans on the far less noisy validation loss for the shape over N and D.

    Intervals (``bootstrap=K``): each resample draws whole runs with replacement — a run's final point in
    step 1 and its checkpoints in step 2 together; with a ``trajectory`` column, whole trajectories (a trunk
    and its branches share weights and step 2's smoothing, :func:`resample_counts`) — and refits both steps
    (warm-started at the full fit; on the loss-to-loss route every fit of step 1). On a ladder of branches
    (4-5 trajectories) the 95 % prediction interval measured 87 % coverage, not the 94-97 % of separate runs
    (RESULTS.md, 2026-12-05), so such a ladder gets the point forecast and no interval (``no_interval_``
    says why).
    ``predict_interval(new_run=True)`` then adds what a new run's measured accuracy adds: its run effect in
    the task loss (the standard deviation of step 1's log residuals) and one checkpoint's accuracy noise
    (step 2's residual standard deviation), each scale drawn from its scaled-inverse-χ² distribution. No
    interval is given for a task at chance or with an unidentified slope (``no_interval_`` says why), nor
    below ``MIN_SIZES`` model sizes or ``MIN_RUNS`` runs (the smallest ladders the simulation calibrated).
    """

    last: int = 5
    skip: float = 0.1
    window: int = 5
    anchor: bool = True
    chance: float | None = None
    method: Literal["parametric", "resample"] = "resample"
    route: Literal["direct", "loss-to-loss"] = "direct"

    name: ClassVar[str] = "two-step"
    paired: ClassVar[bool] = False  # two chained fits: no single design, so predict_paired cannot work
    target: ClassVar[str] = "accuracy"
    grids: ClassVar[tuple[str, ...]] = ("default", "hoffmann")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.route not in ROUTES:
            raise LawDataError(f"route must be one of {list(ROUTES)}, got {self.route!r}")
        self.unpredictable_: str | None = None

    # ----- the two steps ---------------------------------------------------------------------------------
    @property
    def _linked(self) -> bool:
        return self.route == "loss-to-loss"

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ (shape ``(..., p)``) → step 1's parameters and step 2's (the sigmoid's four, last)."""
        return theta[..., : -len(AccuracyLaw.theta_names)], theta[..., -len(AccuracyLaw.theta_names) :]

    def task_loss_law(self) -> TaskLossLaw:
        """Step 1 of the direct route with this chain's configuration (fitted when the chain is; on the
        loss-to-loss route it gives only E_y, so it comes unfitted)."""
        law = TaskLossLaw(
            last=self.last, loss=self.loss, delta=self.delta, grid=self.grid, n_starts=self.n_starts
        )
        law.theta_ = None if self.theta_ is None or self._linked else self._split(self.theta_)[0]
        return law

    def _val_loss_law(self) -> ChinchillaLaw:
        """The loss-to-loss route's L_val(N, D), configured as step 1 (its ``loss`` column: the val loss)."""
        return ChinchillaLaw(loss=self.loss, delta=self.delta, grid=self.grid, n_starts=self.n_starts)

    def accuracy_law(self) -> AccuracyLaw:
        """Step 2 with this chain's configuration (fitted when the chain is)."""
        law = AccuracyLaw(skip=self.skip, window=self.window, anchor=self.anchor, chance=self.chance)
        law.theta_ = None if self.theta_ is None else self._split(self.theta_)[1]
        return law

    @property
    def formula(self) -> str:
        sigmoid_ = "Acc(N, D) = a / (1 + exp(-k (L(N, D) - L0))) + b"
        if self._linked:
            return f"{sigmoid_},  L = K (L_val - E_x)^kappa + E_y,  L_val(N, D) = A/N^alpha + B/D^beta + E_x"
        return f"{sigmoid_},  L(N, D) = A/N^alpha + B/D^beta + E"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("params", "tokens")

    @property
    def theta_names(self) -> tuple[str, ...]:
        step1 = ("log_A", "log_B", "log_sigma", "alpha", "beta")
        if self._linked:
            step1 = ("log_A", "log_B", "log_E_x", "alpha", "beta", "log_E_y", *LossToLossLaw.theta_names)
        return (*step1, *AccuracyLaw.theta_names)

    @property
    def varying(self) -> dict[str, str]:
        return self.task_loss_law().varying

    def _bounds(self) -> Bounds:
        step1 = self.task_loss_law()._bounds()
        if self._linked:  # the val-loss law's, E_y's (the task-loss law's σ), the link's
            step1 = [*step1, step1[2], *LossToLossLaw()._bounds()]
        return [*step1, *self.accuracy_law()._bounds()]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        raise LawDataError("the two-step law chains two fits; it has no single log-sum-exp design")

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta1, theta2 = self._split(np.asarray(theta, dtype=float))
        step1 = self.task_loss_law()._coefficients(theta1[..., :5])
        step1["E_x" if self._linked else "E"] = step1.pop("sigma")
        if self._linked:
            step1 |= {"E_y": np.exp(theta1[..., 5])} | LossToLossLaw()._coefficients(theta1[..., 6:])
        return step1 | self.accuracy_law()._coefficients(theta2)

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        step1 = {k: v for k, v in coefficients.items() if k in ("A", "B", "alpha", "beta")}
        sigma = coefficients["E_x" if self._linked else "E"]
        theta1 = self.task_loss_law()._theta(step1 | {"sigma": sigma})
        if self._linked:
            link = LossToLossLaw()._theta(coefficients)
            theta1 = np.concatenate([theta1, [math.log(coefficients["E_y"])], link])
        return np.concatenate([theta1, self.accuracy_law()._theta(coefficients)])

    def _step1_tables(self, final: pd.DataFrame) -> list[tuple[ChinchillaLaw, pd.DataFrame]]:
        """Step 1's Chinchilla-form laws (unfitted), each with the final-value table it is fitted on: the
        task-loss law; on the loss-to-loss route the val-loss law first."""
        task = (self.task_loss_law(), final)
        if not self._linked:
            return [task]
        return [(self._val_loss_law(), final[["params", "tokens"]].assign(loss=final[VAL_LOSS])), task]

    def _link(self, theta: np.ndarray, task: np.ndarray, final: pd.DataFrame) -> np.ndarray:
        """K and κ on ``final``'s (val loss, task loss) pairs, with E_x and E_y of the val-loss law's θ and
        the task-loss law's θ (the link's θ)."""
        e_x, e_y = math.exp(theta[2]), math.exp(task[2])
        return LossToLossLaw(e_x=e_x, e_y=e_y).fit(final).theta_

    def _relink(
        self, val: np.ndarray, task: np.ndarray, final: pd.DataFrame, counts: np.ndarray
    ) -> np.ndarray:
        """:meth:`_link` on a resample (each run of ``final`` ``counts`` times), NaN where the resample's E_y
        reaches one of its runs' final task loss (a very noisy task's E is that uncertain): it cannot link."""
        try:
            return self._link(val, task, final.loc[final.index.repeat(counts.astype(int))])
        except LawDataError:
            return np.full(len(LossToLossLaw.theta_names), np.nan)

    def _task_loss(self, theta1: np.ndarray, table: Table) -> np.ndarray:
        """Step 1's task loss at each row's (N, D), for step 1's θ of shape ``(p,)`` or ``(K, p)``."""
        chinchilla = self.task_loss_law()
        design = chinchilla._design(chinchilla._log_inputs(table))
        if not self._linked:
            return np.exp(log_predict(design, theta1))
        excess = np.exp(log_predict(design[:2], theta1[..., :5]))  # A/N^α + B/D^β = L_val − E_x (no σ term)
        return link_power(excess, theta1[..., 6:]) + np.exp(theta1[..., 5:6])

    # ----- fitting ---------------------------------------------------------------------------------------
    def fit(self, table: Table) -> Self:
        """Fit both steps on the checkpoint table; with ``bootstrap=K``, resample runs through both."""
        if self.bootstrap and self.method != "resample":
            raise LawDataError(
                "the two-step chain's intervals are the run-level bootstrap through both steps: use "
                "method='resample' (CLI: --method resample)"
            )
        also = (VAL_LOSS,) if self._linked else ()
        if self._linked:
            _check_val_loss(table)
        frame = _points(table, (*POINT_COLUMNS, *also))
        final = final_values(frame, self.last, also)
        fits = [law.fit(data) for law, data in self._step1_tables(final)]
        theta1 = fits[0].theta_
        if self._linked:
            val, task = fits
            try:
                link = self._link(val.theta_, task.theta_, final)
            except LawDataError as error:
                raise LawDataError(
                    f"{self.name}: the loss-to-loss route cannot link the losses: {error}; that loss's own fit puts "
                    "its irreducible term above a run's final value (too noisy or too flat a curve to place it): "
                    "use the direct route (--route direct)"
                ) from None
            theta1 = np.concatenate([val.theta_, task.theta_[2:3], link])
        step2 = self.accuracy_law()
        step2.fit(frame)
        self.theta_ = np.concatenate([theta1, step2.theta_])
        self.objective_ = sum(law.objective_ for law in (*fits, step2))
        self.converged_ = all(law.converged_ for law in (*fits, step2))
        self.n_points_ = len(final) + step2.n_points_
        self.faded_ = self._faded(fits)
        self.unpredictable_ = step2.unpredictable_
        self.bootstrap_ = None
        self.no_interval_ = None
        sizes = final["params"].nunique()
        least, fewest = (ROUTE_MIN_SIZES, ROUTE_MIN_RUNS) if self._linked else (MIN_SIZES, MIN_RUNS)
        if self.unpredictable_:
            self.no_interval_ = f"{self.name}: no interval: {self.unpredictable_}"
        elif sizes < least or len(final) < fewest:
            self.no_interval_ = (
                f"{self.name}: no interval: the ladder has {sizes} model size(s) and {len(final)} runs; the chained "
                f"intervals {'of the ' + self.route + ' route ' if self._linked else ''}are calibrated from "
                f"{least} sizes and {fewest} runs (benchmarks/downstream_calibration.py)"
            )
        elif final[TRAJECTORY].nunique() < len(final):
            self.no_interval_ = (
                f"{self.name}: no interval: the ladder's runs share trajectories (a trunk and its cooldown branches), "
                "where the chained 95 % interval covered only 86-88 % in simulation (RESULTS.md): not calibrated"
            )
        if self.no_interval_ and self.bootstrap:
            warnings.warn(IntervalWarning(self.no_interval_), stacklevel=2)
        elif self.bootstrap:
            self._resample(final, frame, fits, step2)
        return self

    def _faded(self, fits: list[ChinchillaLaw]) -> list[str]:
        """Step 1's faded parameters under the chain's names (of the task-loss law on the loss-to-loss route
        only its σ, E_y, enters the chain)."""
        if not self._linked:
            return list(fits[0].faded_)
        val, task = fits
        return [{"log_sigma": "log_E_x"}.get(f, f) for f in val.faded_] + ["log_E_y"] * (
            "log_sigma" in task.faded_
        )

    def _resample(
        self, final: pd.DataFrame, frame: pd.DataFrame, fits: list[ChinchillaLaw], step2: AccuracyLaw
    ) -> None:
        """Refit both steps on ``bootstrap`` trajectory-level resamples; draw the new-run noise scales."""
        n = self.bootstrap
        draw_seed, scale_seed, _ = spawn_seeds(self.seed, 3)
        runs = pd.Index(final["run_id"])
        codes = runs.get_indexer(step2_points(frame, self.skip, self.window)["run_id"])
        counts = resample_counts(final[TRAJECTORY].to_numpy(), n, draw_seed)

        refits1 = []
        for fitted, (law, data) in zip(fits, self._step1_tables(final), strict=True):
            design, logy = law._design(law._log_inputs(data)), law._log_target(data)
            refits1.append(refit_resamples(design, (logy for _ in range(n)), counts, fitted.theta_,
                                           law._bounds(), law._huber_delta))  # fmt: skip
        theta1, unlinked = refits1[0].theta, 0
        if self._linked:
            val, task = (refits.theta for refits in refits1)
            links = np.array(
                [self._relink(v, t, final, row) for v, t, row in zip(val, task, counts, strict=True)]
            )
            linked = np.isfinite(links).all(axis=1)  # the rest are dropped, counted as refits not converged
            theta1, counts = np.column_stack([val, task[:, 2], links])[linked], counts[linked]
            n, unlinked = len(counts), int((~linked).sum())
            if unlinked > MAX_UNLINKED * self.bootstrap:
                self.no_interval_ = (
                    f"{self.name}: no interval: {unlinked} of {self.bootstrap} resamples could not link the losses "
                    "(their E_y reached a run's final task loss); the rest would give a biased interval"
                )
                warnings.warn(IntervalWarning(self.no_interval_), stacklevel=3)
                return
        x, y = step2._fit_points(step2_points(frame, self.skip, self.window))
        anchor = np.ones(len(x) - len(codes))
        refits2 = [
            _fit_sigmoid(x, y, np.concatenate([row[codes], anchor]), step2.theta_[None, :]) for row in counts
        ]
        theta2 = np.array([result.x for result in refits2])

        residual = np.log(final["task_loss"].to_numpy()) - np.log(self.predict_task_loss(final))
        df1, df2 = len(runs) - 5, step2.n_points_ - len(anchor) - 4
        tau = float(np.sqrt(np.sum(residual**2) / df1))
        scale_rng = np.random.default_rng(scale_seed)
        scales = np.column_stack([
            scale * np.sqrt(df / scale_rng.chisquare(df, size=n)) for scale, df in ((tau, df1), (step2.noise_, df2))
        ])  # fmt: skip
        self.bootstrap_ = Bootstrap(
            law=self,
            theta=np.concatenate([theta1, theta2], axis=1),
            scales=scales,
            n=n,
            method="resample",
            resample="run" if final[TRAJECTORY].nunique() == len(runs) else "trajectory",
            seed=self.seed,
            level=self.level,
            noise={
                "n_groups": len(runs),
                "tau": tau,
                "s": step2.noise_,
                "df_between": df1,
                "df_within": df2,
            },
            not_converged=sum(int((~refits.converged).sum()) for refits in refits1)
            + sum(not r.success for r in refits2)
            + unlinked,
            on_bound={},
        )

    # ----- prediction ------------------------------------------------------------------------------------
    def predict_task_loss(self, table: Table) -> np.ndarray:
        """Step 1's task loss at each row's (N, D)."""
        return self._task_loss(self._split(self._fitted_theta())[0], table)

    def predict(self, table: Table) -> np.ndarray:
        """Accuracy at each row's (N, D): step 2 at step 1's predicted task loss."""
        return np.atleast_1d(sigmoid(self._split(self._fitted_theta())[1], self.predict_task_loss(table)))

    def _chain(self) -> Bootstrap:
        """The chain's resamples; without them the reason (``no_interval_``), as a LawDataError."""
        if self.bootstrap_ is None:
            raise LawDataError(self.no_interval_ or f"{self.name}: fit with bootstrap=K to get intervals")
        return self.bootstrap_

    def _samples(self, table: Table, new_run: bool) -> tuple[np.ndarray, np.ndarray]:
        """Task loss and accuracy of every resample at each row, shape ``(K, rows)`` each."""
        resamples = self._chain()
        theta1, theta2 = self._split(resamples.theta)
        loss = self._task_loss(theta1, table)
        if new_run:
            run, point = resamples.new_run_noise(loss.shape[1])
            loss = loss * np.exp(run)
            return loss, sigmoid(theta2, loss) + point
        return loss, sigmoid(theta2, loss)

    def _interval_samples(self, table: Table, new_run: bool) -> np.ndarray:
        return self._samples(table, new_run)[1]

    def predict_interval(self, table: Table, *, new_run: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the accuracy at each row: the curve's band, or (``new_run=True``) what a
        new run's final checkpoint would measure. Refused, with the reason, where ``no_interval_`` is set."""
        return self._chain().prediction_interval(table, new_run=new_run)

    def predict_task_loss_interval(
        self, table: Table, *, new_run: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the task loss at each row (step 1 through the same resamples)."""
        return percentile_interval(self._samples(table, new_run)[0], self.level_)

    def forecast(self, params: float, tokens: float) -> dict[str, Any]:
        """What a new run at (N = ``params``, D = ``tokens``) would measure: the task loss and the accuracy,
        each with its prediction interval (``predict_interval(new_run=True)``, the calibrated one), or the
        reason there is none in ``no_interval``. A task the ladder cannot predict (at chance, or a flat
        slope) gets no accuracy, only the reason in ``unpredictable``: a sigmoid read off noise is not a
        prediction."""
        point = {"params": [float(params)], "tokens": [float(tokens)]}
        interval: dict[str, list[float] | None] = {"task_loss": None, "accuracy": None}
        if self.bootstrap_ is not None:
            samples = self._samples(point, new_run=True)
            for name, values in zip(interval, samples, strict=True):
                interval[name] = [float(v[0]) for v in percentile_interval(values, self.level_)]
        return {
            "params": float(params),
            "tokens": float(tokens),
            "task_loss": float(self.predict_task_loss(point)[0]),
            "task_loss_interval": interval["task_loss"],
            "accuracy": None if self.unpredictable_ else float(self.predict(point)[0]),
            "accuracy_interval": interval["accuracy"],
            "no_interval": None
            if self.bootstrap_ is not None
            else self.no_interval_ or f"{self.name}: fit with bootstrap=K (CLI: --bootstrap K) for intervals",
            "unpredictable": self.unpredictable_,
        }

    def to_dict(self) -> dict[str, Any]:
        """``Law.to_dict`` plus why the task cannot be predicted, where it cannot."""
        return super().to_dict() | {"unpredictable": self.unpredictable_}

    def _restore(self, data: Mapping[str, Any]) -> None:
        self.unpredictable_ = data.get("unpredictable")


@dataclasses.dataclass(kw_only=True)
class LossToLossLaw(Law):
    """L_y = K·(L_x − E_x)^κ + E_y (Brandfonbrener et al. 2024): one loss from another, ``source`` (the
    x column, e.g. ``val_loss``) to ``task_loss``. ``e_x`` and ``e_y`` are the irreducible terms of each
    loss's own scaling-law fit (e.g. ChinchillaLaw's σ; 0 by default, a plain power law); K and κ are least squares in log space, as the
    paper's notebooks fit them. No intervals: not calibrated."""

    e_x: float = 0.0
    e_y: float = 0.0
    source: str = "val_loss"
    loss: Literal["huber", "squared"] = "squared"

    name: ClassVar[str] = "loss-to-loss"
    paired: ClassVar[bool] = False  # offsets inside the power: predict_paired cannot work
    target: ClassVar[str] = "task_loss"
    theta_names: ClassVar[tuple[str, ...]] = ("log_K", "kappa")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss != "squared":
            raise LawDataError("loss-to-loss is fitted by least squares in log space, as the paper does")

    @property
    def formula(self) -> str:
        return f"L_y = K * (L_x - {self.e_x:g})^kappa + {self.e_y:g}  [L_x = {self.source}, L_y = task_loss]"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.source,)

    @property
    def varying(self) -> dict[str, str]:
        return {self.source: "kappa needs a range of source losses"}

    def _bounds(self) -> Bounds:
        return [(None, None), (None, None)]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        raise LawDataError("loss-to-loss has offsets E_x, E_y inside the power: it is fitted directly")

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        return {"K": np.exp(theta[..., 0]), "kappa": theta[..., 1]}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        return np.array([math.log(coefficients["K"]), coefficients["kappa"]])

    def _excess(self, table: Table, column: str, floor: float) -> np.ndarray:
        values = numeric_column(pd.DataFrame(table), column) - floor
        if not (values > 0).all():
            raise LawDataError(
                f"every '{column}' must exceed its irreducible term {floor:g}; {int((values <= 0).sum())} row(s) "
                "do not (check the E fitted for that loss)"
            )
        return values

    def fit(self, table: Table) -> Self:
        """Least squares of log(L_y − E_y) on log(L_x − E_x)."""
        x = np.log(self._excess(table, self.source, self.e_x))
        y = np.log(self._excess(table, self.target, self.e_y))
        if len(x) < 3 or np.ptp(x) == 0:
            raise LawDataError(f"loss-to-loss needs >= 3 rows with distinct '{self.source}'")
        slope, intercept = np.polyfit(x, y, 1)
        self.theta_ = np.array([intercept, slope])
        self.objective_ = float(0.5 * np.sum((intercept + slope * x - y) ** 2))
        self.n_points_, self.converged_, self.faded_ = len(x), True, []
        self.bootstrap_ = None
        self.no_interval_ = f"{self.name}: no intervals yet: not calibrated"
        return self

    def predict(self, table: Table) -> np.ndarray:
        """The target loss at each row's source loss."""
        return link_power(self._excess(table, self.source, self.e_x), self._fitted_theta()) + self.e_y


def link_power(excess: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """K·(L_x − E_x)^κ of the loss-to-loss link for θ = (log K, κ) of shape ``(2,)``, or ``(K, 2)`` with
    ``excess`` of shape ``(K, rows)`` (one link per bootstrap resample)."""
    return np.exp(theta[..., :1]) * excess ** theta[..., 1:]


def _power_sum(c: Mapping[str, float], params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """A/N^α + B/D^β + E: the truths' loss in model size and tokens."""
    return c["A"] / params ** c["alpha"] + c["B"] / tokens ** c["beta"] + c["E"]


@dataclasses.dataclass(frozen=True)
class LadderTruth:
    """A known two-step truth with checkpoint noise, to check the laws and their intervals against.

    Task loss ``L(N, d)`` of step 1 at every checkpoint ``d``, times ``exp(u + e)`` with a run effect
    ``u ~ N(0, run_sd²)`` and checkpoint fluctuation ``e ~ N(0, checkpoint_sd²)``; accuracy = step 2 at that
    task loss plus item noise ``N(0, accuracy_sd²)`` (about a 1000-item task near 60 %).
    """

    step1: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"A": 100.0, "B": 200.0, "alpha": 0.3, "beta": 0.3, "E": 0.5}
    )
    step2: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"a": -0.74, "L0": 0.9, "k": 5.0, "b": 0.99}
    )
    run_sd: float = 0.01
    checkpoint_sd: float = 0.005
    accuracy_sd: float = 0.015

    def task_loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Step 1's true task loss."""
        return _power_sum(self.step1, params, tokens)

    def accuracy(self, task_loss: np.ndarray) -> np.ndarray:
        """Step 2's true accuracy."""
        c = self.step2
        return sigmoid(np.array([c["a"], c["L0"], c["k"], c["b"]]), task_loss)

    def run_task_loss(self, params: Any, tokens: np.ndarray, effect: Any) -> np.ndarray:
        """The task loss of runs with run effect ``effect`` (log scale) before checkpoint noise."""
        return self.task_loss(params, tokens) * np.exp(effect)

    def measure(
        self, params: Any, tokens: np.ndarray, effect: Any, rng: np.random.Generator
    ) -> dict[str, Any]:
        """What runs with run effect ``effect`` measure at checkpoints (``params``, ``tokens``): the task loss
        with the effect and a checkpoint's fluctuation, the accuracy at that loss with item noise."""
        noise = rng.normal(0.0, self.checkpoint_sd, np.shape(tokens))
        loss = self.run_task_loss(params, tokens, effect) * np.exp(noise)
        accuracy = self.accuracy(loss) + rng.normal(0.0, self.accuracy_sd, loss.shape)
        return {"task_loss": loss, "accuracy": np.clip(accuracy, 0.0, 1.0)}

    def ladder(
        self,
        sizes: Any,
        multipliers: Any = (1, 2, 5, 10),
        checkpoints: int = 20,
        seed: int = 0,
    ) -> pd.DataFrame:
        """The checkpoint table of a ladder: every size × token multiplier (D = multiplier · 20 N, the
        paper's 1xC … 10xC), ``checkpoints`` evaluations evenly spaced to D."""
        run_seed, point_seed = spawn_seeds(seed, 2)
        grid = [(n, m * 20 * n) for n in sizes for m in multipliers]
        effects = np.random.default_rng(run_seed).normal(0.0, self.run_sd, len(grid))
        rng = np.random.default_rng(point_seed)
        frames = []
        for i, ((n, d), u) in enumerate(zip(grid, effects, strict=True)):
            tokens = d * np.arange(1, checkpoints + 1) / checkpoints
            frames.append(pd.DataFrame({"run_id": f"r{i}", "params": float(n), "tokens": tokens,
                                        "step": np.arange(1, checkpoints + 1), **self.measure(n, tokens, u, rng)}))  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def branch_ladder(self, sizes: Any, multipliers: Any = (2.5, 5, 10), seed: int = 0) -> pd.DataFrame:
        """The checkpoint table of a ladder of WSD cooldown branches scored at their final weights only (the
        micro study's): per size a trunk at the largest multiplier and a branch at each smaller one, one
        evaluation per run, ``trajectory`` naming the trunk. A size's runs share one run effect: a branch is
        its trunk's weights plus a decay, not an independent run."""
        run_seed, point_seed = spawn_seeds(seed, 2)
        multipliers = sorted(multipliers)
        grid = pd.DataFrame(
            [(f"r{i}-{j}", f"r{i}-{len(multipliers) - 1}", float(n), m * 20 * n, round(100 * m))
             for i, n in enumerate(sizes) for j, m in enumerate(multipliers)],
            columns=["run_id", TRAJECTORY, "params", "tokens", "step"],
        )  # fmt: skip
        effects = np.repeat(
            np.random.default_rng(run_seed).normal(0.0, self.run_sd, len(sizes)), len(multipliers)
        )
        rng = np.random.default_rng(point_seed)
        return grid.assign(**self.measure(grid["params"].to_numpy(), grid["tokens"].to_numpy(), effects, rng))

    def new_runs(self, params: float, tokens: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """What ``n`` new runs at (N, D) measure at their final checkpoints: many draws per fitted ladder
        estimate an interval's coverage given that ladder without a coin flip's noise."""
        effects = rng.normal(0.0, self.run_sd, n)
        return self.measure(float(params), np.full(n, float(tokens)), effects, rng)["accuracy"]


@dataclasses.dataclass(frozen=True)
class LossToLossTruth(LadderTruth):
    """A known truth for the loss-to-loss route: the validation loss L_val(N, D) = A/N^α + B/D^β + E
    (``val``), the task loss K·(L_val − E)^κ + E_y of it (``link``; so ``step1`` is not used), the accuracy
    step 2 of the task loss. A run's effect (``run_sd``, log scale) is in its validation loss and reaches the
    task loss through the link; each checkpoint fluctuates in both, by ``val_checkpoint_sd`` in the validation
    loss and by the larger ``checkpoint_sd`` in the task loss (a benchmark of a few thousand items against a
    held-out set of millions of tokens). Ladders get a ``val_loss`` column.
    """

    val: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"A": 100.0, "B": 200.0, "alpha": 0.3, "beta": 0.3, "E": 1.7}
    )
    link: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"K": 0.9, "kappa": 1.2, "E": 0.5})
    run_sd: float = 0.005
    checkpoint_sd: float = 0.04
    val_checkpoint_sd: float = 0.002

    def val_loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The true validation loss."""
        return _power_sum(self.val, params, tokens)

    def _linked(self, val_loss: np.ndarray) -> np.ndarray:
        c = self.link
        return c["K"] * (val_loss - self.val["E"]) ** c["kappa"] + c["E"]

    def task_loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The true task loss: the link of the true validation loss."""
        return self._linked(self.val_loss(params, tokens))

    def run_task_loss(self, params: Any, tokens: np.ndarray, effect: Any) -> np.ndarray:
        """The link of the run's validation loss (its run effect included)."""
        return self._linked(self.val_loss(params, tokens) * np.exp(effect))

    def measure(
        self, params: Any, tokens: np.ndarray, effect: Any, rng: np.random.Generator
    ) -> dict[str, Any]:
        """:meth:`LadderTruth.measure` plus the validation loss with its own checkpoint fluctuation."""
        noise = rng.normal(0.0, self.val_checkpoint_sd, np.shape(tokens))
        val = self.val_loss(params, tokens) * np.exp(effect + noise)
        return {VAL_LOSS: val} | super().measure(params, tokens, effect, rng)
