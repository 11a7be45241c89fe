"""How sure will a scaling ladder's answer be? Planning the ladder before it is bought.

A ladder design is a list of runs: a model size, the token counts at which the run's loss is read (points
along its curve, or the ends of WSD cooldown branches off one trunk) and the number of seeds. Given an
assumed law (the truth) and a noise model — a run effect shared by all points of a run (log sd ``run``) and
point noise (log sd ``point``), the model behind the laws' intervals (:mod:`archscale.laws.resampling`) —
:func:`evaluate_design` draws the ladder's losses ``replicates`` times, fits every draw with the law, the
bootstrap and the interval code that ``archscale fit`` and the study use, and reports the median 95 % widths
of α_N and of the target's predicted loss (the curve band, in log units: log(upper / lower)), the share of
fits that give no interval, and the share that are degenerate (a coefficient on its bound or faded out: what
the study's Eq. 5 fits are at micro scale). What it promises is what fitting the real ladder will do, if the
law and the noise are right.

One fit with its bootstrap takes about half a second, too slow to simulate hundreds of candidates, so
:func:`search_ladders` screens every candidate by the delta method first (:func:`linear_widths`: the law's
Jacobian at the truth, the variance a run effect and point noise give the fit, and the parametric
bootstrap's scale draws emulated), then simulates the best few and the naive ladder and ranks them by the
simulated widths.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise, product
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from archscale import fields
from archscale.laws.base import MIN_DF_BETWEEN, Law, law_class
from archscale.laws.errors import LawDataError
from archscale.laws.resampling import NoiseModel, log_jacobian, spawn_seeds

Reading = Literal["curve", "branches"]
Objective = Literal["target_loss_log_width", "alpha_N_width"]
OBJECTIVES: tuple[str, ...] = ("target_loss_log_width", "alpha_N_width")
DEFAULT_DECAY = 0.2
"""A WSD cooldown branch decays over this share of its budget (the study's schedule): the extra cost of a
branch beyond its trunk's tokens."""
CURVE_POINTS = 8
"""Points read along one run's curve, log-spaced from 1/16 of its tokens to all of them."""
BRANCH_SHARES = (0.25, 0.5, 1.0)
"""Budgets of a run read as cooldown branches, as shares of its longest (the study's ¼, ½, 1)."""


@dataclass(frozen=True)
class LadderNoise:
    """Log-scale standard deviations of a run's offset (``run``, shared by its points) and of each point."""

    run: float
    point: float
    source: str = "given"

    def __post_init__(self) -> None:
        for name in ("run", "point"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise LawDataError(
                    f"noise.{name} must be a log-scale sd >= 0 (e.g. 0.01 for 1 %), got {value}"
                )


MICRO_NOISE = LadderNoise(
    run=0.02,
    point=0.01,
    source="the micro presets' measured noise: a final loss moves 1.4-2.6 % with the seed at 0.1M parameters "
    "(4 seeds, benchmarks/RESULTS.md 'Run-to-run noise at the design study's scale'); point noise 1.1 % "
    "(the moe-design study's fitted residuals, RESULTS.md)",
)


@dataclass(frozen=True)
class LadderRun:
    """One configuration of the ladder: model ``size`` (the law's size column), the ``tokens`` at which its
    loss is read, ``seeds`` independent repeats; ``branches``: the token counts are WSD cooldown branches
    off one trunk (each costs its decay), else points along one run's curve (free)."""

    size: float
    tokens: tuple[float, ...]
    seeds: int = 1
    branches: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.size) and self.size > 0):
            raise LawDataError(f"a run's size must be > 0, got {self.size}")
        if not self.tokens or not all(math.isfinite(d) and d > 0 for d in self.tokens):
            raise LawDataError(
                f"a run's tokens must be a non-empty list of counts > 0, got {list(self.tokens)}"
            )
        if self.seeds < 1:
            raise LawDataError(f"a run's seeds must be >= 1, got {self.seeds}")

    def flops(self, flops_factor: float, decay: float) -> float:
        """Training compute of all its seeds: the longest budget, plus each branch's decay."""
        longest = max(self.tokens)
        extra = decay * (sum(self.tokens) - longest) if self.branches else 0.0
        return flops_factor * self.size * (longest + extra) * self.seeds


@dataclass(frozen=True)
class LadderDesign:
    """The runs of a ladder; ``decay``: a cooldown branch's share of its budget."""

    runs: tuple[LadderRun, ...]
    decay: float = DEFAULT_DECAY
    label: str = "design"

    def __post_init__(self) -> None:
        if not self.runs:
            raise LawDataError("a ladder design needs at least one run")
        if not 0 <= self.decay < 1:
            raise LawDataError(f"decay must lie in [0, 1), got {self.decay}")

    @property
    def n_sizes(self) -> int:
        return len({run.size for run in self.runs})

    def flops(self, flops_factor: float = 6.0) -> float:
        return sum(run.flops(flops_factor, self.decay) for run in self.runs)

    def table(self, size_column: str) -> pd.DataFrame:
        """One row per point: ``run_id`` (a run per seed), the size column and ``tokens``."""
        rows = [
            (f"r{i}s{seed}", run.size, tokens)
            for i, run in enumerate(self.runs)
            for seed in range(run.seeds)
            for tokens in sorted(run.tokens)
        ]
        return pd.DataFrame(rows, columns=["run_id", size_column, "tokens"])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "decay": self.decay, "runs": [dataclasses.asdict(r) for r in self.runs]}


def _size_column(truth: Law) -> str:
    extra = [c for c in truth.inputs if c not in ("params", "model_scale", "tokens")]
    if extra or "tokens" not in truth.inputs:
        raise LawDataError(
            f"the ladder planner simulates laws of model size and tokens (chinchilla); {truth.name} also reads "
            f"{extra or 'no tokens'}"
        )
    return next(c for c in truth.inputs if c != "tokens")


def check_design(truth: Law, design: LadderDesign) -> pd.DataFrame:
    """The design's point table, or a one-line reason it cannot determine the law."""
    size = _size_column(truth)
    table = design.table(size)
    if design.n_sizes < 2:
        raise LawDataError(
            f"the design has one model size ({design.runs[0].size:.3g}); {truth.varying[size]} "
            "(give runs at 3 sizes or more)"
        )
    jacobian = _jacobian(truth, table)
    rank = np.linalg.matrix_rank(jacobian, tol=1e-8 * np.abs(jacobian).max())
    if rank < jacobian.shape[1]:
        raise LawDataError(
            f"the design cannot determine the {truth.name} law: its {len(table)} points pin down {rank} of its "
            f"{jacobian.shape[1]} coefficients: read each run at several token counts (along its curve, or as "
            "budgets) and use 3 sizes or more"
        )
    return table


def _jacobian(law: Law, table: pd.DataFrame) -> np.ndarray:
    return log_jacobian(law._design(law._log_inputs(table)), law._fitted_theta())


def simulate(truth: Law, table: pd.DataFrame, noise: LadderNoise, rng: np.random.Generator) -> pd.DataFrame:
    """The table with a drawn loss: the truth times exp(run effect + point noise)."""
    codes, runs = pd.factorize(table["run_id"])
    effects = rng.normal(0.0, noise.run, len(runs))
    points = rng.normal(0.0, noise.point, len(table))
    return table.assign(**{truth.target: truth.predict(table) * np.exp(effects[codes] + points)})


def _alpha_n(law: Law, theta: np.ndarray) -> np.ndarray | None:
    derived = law._derived(law._coefficients(theta))
    return derived.get("alpha_N")


def linear_widths(
    truth: Law, design: LadderDesign, noise: LadderNoise, target: Mapping[str, float], seed: int = 0
) -> dict[str, float]:
    """Expected widths (at the truth's level) of α_N and of the target's log loss by the delta method: the
    screen of :func:`search_ladders`, and a check on the simulation. Infinite where the law gives no interval
    (fewer between-run degrees of freedom than :data:`MIN_DF_BETWEEN`).

    A fit on log loss moves by θ̂ − θ ≈ J⁺ε, so a quantity with gradient g has a run part run²·‖gᵀJ⁺Z‖² and
    a point part point²·‖gᵀJ⁺‖² of variance (Z: the points' run indicator), times the Huber loss's variance
    factor (:func:`huber_variance_factor`). The parametric bootstrap draws each scale from its
    scaled-inverse-χ² around a replicate's estimate, which is itself χ²-distributed about the truth;
    :func:`_bootstrap_widths` emulates both draws to give the median width. With one point per run the
    noise model has no within-run degrees of freedom and, like the fitter, counts all noise as run effect."""
    table = check_design(truth, design)
    jacobian = _jacobian(truth, table)
    codes, runs = pd.factorize(table["run_id"])
    model = NoiseModel.from_residuals(np.zeros(len(table)), jacobian, codes)
    theta = truth._fitted_theta()
    gradients = {"target_loss_log_width": _jacobian(truth, _target_row(target))[0]}
    if _alpha_n(truth, theta) is not None:
        step = 1e-6
        gradients["alpha_N_width"] = np.array([
            (_alpha_n(truth, theta + step * e) - _alpha_n(truth, theta - step * e)) / (2 * step)
            for e in np.eye(len(theta))
        ])  # fmt: skip
    if model.df_between < MIN_DF_BETWEEN:
        return dict.fromkeys(gradients, math.inf)
    pinv = np.linalg.pinv(jacobian)
    per_run = np.zeros((pinv.shape[0], len(runs)))
    np.add.at(per_run.T, codes, pinv.T)
    factor = huber_variance_factor(truth._huber_delta / math.hypot(noise.run, noise.point))
    parts = factor * np.array([
        (noise.run**2 * float(np.sum((g @ per_run) ** 2)), noise.point**2 * float(np.sum((g @ pinv) ** 2)))
        for g in gradients.values()
    ])  # fmt: skip
    df_within = model.df_within
    if df_within <= 0.05:  # no within-run information: the fitter puts all the noise in the run effect
        parts, df_within = np.column_stack([parts.sum(axis=1), np.zeros(len(parts))]), 1.0
    widths = _bootstrap_widths(parts, model.df_between, df_within, truth.level, spawn_seeds(seed, 1)[0])
    return dict(zip(gradients, map(float, widths), strict=True))


def huber_variance_factor(k: float) -> float:
    """Asymptotic variance of a Huber fit over least squares', for normal residuals in units of their sd
    with threshold ``k`` (E[ψ²] / E[ψ']², ψ the clipped residual): 1 for k → ∞ (least squares), π/2 for
    k → 0 (least absolute deviations, where δ = 1e-3 on log residuals of 1-2 % noise puts the fitter)."""
    if not math.isfinite(k):
        return 1.0
    inside = 2 * norm.cdf(k) - 1
    if inside < 1e-12:
        return math.pi / 2
    second = inside - 2 * k * norm.pdf(k) + 2 * k**2 * norm.sf(k)
    return float(second / inside**2)


def _bootstrap_widths(
    variances: np.ndarray,
    df_between: float,
    df_within: float,
    level: float,
    seed: int,
    outer: int = 200,
    inner: int = 200,
) -> np.ndarray:
    """Median percentile-interval width of linear statistics (rows of ``variances``: run and point parts)
    under the parametric bootstrap: ``outer`` replicates each estimate the two variances (χ²/df times the
    truth), and ``inner`` bootstrap draws each redraw them (df/χ² times the estimate) with a normal deviate.
    One stream shared by the statistics and by every design of a search, so that designs are ranked on the
    same draws."""
    rng = np.random.default_rng(seed)
    estimate = np.column_stack([rng.chisquare(df, outer) / df for df in (df_between, df_within)])
    redraw = [df / rng.chisquare(df, (outer, inner)) for df in (df_between, df_within)]
    scales = [estimate[:, :1] * redraw[0], estimate[:, 1:] * redraw[1]]
    normal = rng.standard_normal((outer, inner))
    lo_hi = [(1 - level) / 2, (1 + level) / 2]
    widths = []
    for var_run, var_point in variances:
        lo, hi = np.quantile(np.sqrt(var_run * scales[0] + var_point * scales[1]) * normal, lo_hi, axis=1)
        widths.append(np.median(hi - lo))
    return np.array(widths)


def _target_row(target: Mapping[str, float]) -> pd.DataFrame:
    return pd.DataFrame({k: [float(v)] for k, v in target.items()})


@dataclass(frozen=True)
class Replicate:
    """What one simulated ladder's fit gave: each width (NaN where no interval), and whether it is degenerate."""

    alpha_N_width: float
    target_loss_log_width: float
    degenerate: bool

    @classmethod
    def of(cls, law: Law, target: pd.DataFrame) -> Replicate:
        """Score a fitted law: its α_N interval width and its band at the target, in log units."""
        degenerate = law.degenerate_ is not None
        if law.bootstrap_ is None:
            return cls(math.nan, math.nan, degenerate)
        alpha = law.intervals_.get("alpha_N")
        lo, hi = (float(v[0]) for v in law.predict_interval(target))
        return cls(math.nan if alpha is None else alpha[1] - alpha[0], math.log(hi / lo), degenerate)


def replicate_seeds(seed: int, replicates: int) -> list[tuple[int, int]]:
    """(draw seed, fit seed) of each replicate: one stream for the simulated losses, one for the bootstrap."""
    draws, fits = spawn_seeds(seed, 2)
    return list(zip(spawn_seeds(draws, replicates), spawn_seeds(fits, replicates), strict=True))


def replicate_tables(
    truth: Law, design: LadderDesign, noise: LadderNoise, replicates: int, seed: int = 0
) -> Iterator[tuple[pd.DataFrame, int]]:
    """Each replicate's simulated table and the seed its fit's bootstrap uses (what :func:`evaluate_design`
    fits, to be fitted another way, e.g. with ``archscale fit --seed``)."""
    table = check_design(truth, design)
    for draw_seed, fit_seed in replicate_seeds(seed, replicates):
        yield simulate(truth, table, noise, np.random.default_rng(draw_seed)), fit_seed


def _fit_replicates(
    fitter: Law, truth: Law, design: LadderDesign, noise: LadderNoise, target: pd.DataFrame,
    seeds: Sequence[tuple[int, int]],
) -> list[Replicate]:  # fmt: skip
    table = check_design(truth, design)
    out = []
    for draw_seed, fit_seed in seeds:
        data = simulate(truth, table, noise, np.random.default_rng(draw_seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate fit's warnings are what is being counted
            law = dataclasses.replace(fitter, seed=fit_seed).fit(data)
        out.append(Replicate.of(law, target))
    return out


@dataclass(frozen=True)
class DesignEvaluation:
    """A design's simulated outcome (every replicate) beside its delta-method screen."""

    design: LadderDesign
    flops: float
    replicates: list[Replicate]
    linear: dict[str, float]
    noise: LadderNoise

    def _widths(self, name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in self.replicates])

    @property
    def degenerate_fraction(self) -> float:
        return float(np.mean([r.degenerate for r in self.replicates]))

    def expected(self, name: str) -> float | None:
        """Median width over the replicates that gave an interval (None if none did)."""
        widths = self._widths(name)
        widths = widths[np.isfinite(widths)]
        return float(np.median(widths)) if len(widths) else None

    def score(self, objective: str = "target_loss_log_width") -> float:
        """What the search ranks by: the median width of ``objective`` with a degenerate or interval-less fit
        counted as infinitely wide (a design that fails half the time has an infinite score)."""
        widths = self._widths(objective)
        failed = ~np.isfinite(widths) | np.array([r.degenerate for r in self.replicates])
        return float(np.median(np.where(failed, np.inf, widths)))

    def to_dict(self) -> dict[str, Any]:
        widths = self._widths("target_loss_log_width")
        return {
            "design": self.design.to_dict(),
            "flops": self.flops,
            "replicates": len(self.replicates),
            "expected": {
                "alpha_N_width": self.expected("alpha_N_width"),
                "target_loss_log_width": self.expected("target_loss_log_width"),
                "degenerate_fraction": self.degenerate_fraction,
                "interval_fraction": float(np.mean(np.isfinite(widths))),
            },
            "linear": {k: v if math.isfinite(v) else None for k, v in self.linear.items()},
            "noise": dataclasses.asdict(self.noise),
        }


def evaluate_design(
    truth: Law,
    design: LadderDesign,
    noise: LadderNoise,
    target: Mapping[str, float],
    *,
    bootstrap: int = 200,
    replicates: int = 100,
    seed: int = 0,
    workers: int = 1,
) -> DesignEvaluation:
    """Simulate the design ``replicates`` times under ``truth`` and ``noise``; fit each draw as
    ``archscale fit <law> --bootstrap <bootstrap> --seed <fit seed>`` does (:func:`replicate_tables` gives
    the same draws and seeds)."""
    if replicates < 1 or bootstrap < 1:
        raise LawDataError(f"replicates and bootstrap must be >= 1, got {replicates} and {bootstrap}")
    _check_target(truth, target)
    fitter = dataclasses.replace(truth, bootstrap=bootstrap)
    target_row = _target_row(target)
    linear = linear_widths(truth, design, noise, target, seed)
    seeds = replicate_seeds(seed, replicates)
    args = (fitter, truth, design, noise, target_row)
    if workers > 1:  # contiguous chunks, so the replicates come back in seed order
        bounds = np.linspace(0, len(seeds), workers + 1).astype(int)
        chunks = [seeds[a:b] for a, b in pairwise(bounds) if b > a]
        with ProcessPoolExecutor(workers) as pool:
            done = [pool.submit(_fit_replicates, *args, chunk) for chunk in chunks]
            outcomes = [r for future in done for r in future.result()]
    else:
        outcomes = _fit_replicates(*args, seeds)
    flops_factor = getattr(truth, "flops_factor", 6.0)
    return DesignEvaluation(design, design.flops(flops_factor), outcomes, linear, noise)


@dataclass(frozen=True)
class LadderGrid:
    """The candidate ladders a search enumerates: every combination, each scaled to the budget."""

    sizes: tuple[int, ...] = (3, 4, 5, 6, 8)
    ratios: tuple[float, ...] = (1.5, 2.0, 3.0)
    tokens_per_size: tuple[float, ...] = (10.0, 20.0, 40.0, 80.0)
    readings: tuple[Reading, ...] = ("curve", "branches")
    seeds: tuple[int, ...] = (1, 2, 3)


def scaled_design(
    budget: float, n_sizes: int, ratio: float, tokens_per_size: float, reading: Reading, seeds: int,
    flops_factor: float = 6.0, decay: float = DEFAULT_DECAY,
) -> LadderDesign:  # fmt: skip
    """Sizes ``ratio`` apart, each trained to ``tokens_per_size``·size tokens and read along its curve or at
    the ends of its branches, with the largest size set so the whole ladder costs ``budget`` FLOPs."""
    if n_sizes < 1 or ratio <= 1 or tokens_per_size <= 0 or seeds < 1:
        raise LawDataError("a scaled design needs n_sizes >= 1, ratio > 1, tokens_per_size > 0, seeds >= 1")
    shares = np.geomspace(1 / 16, 1, CURVE_POINTS) if reading == "curve" else np.array(BRANCH_SHARES)
    unit = LadderRun(1.0, tuple(tokens_per_size * shares), seeds, reading == "branches")
    relative = ratio ** -np.arange(n_sizes)[::-1]  # largest = 1
    cost_at_one = sum(unit.flops(flops_factor, decay) * r**2 for r in relative)
    largest = math.sqrt(budget / cost_at_one)
    runs = tuple(
        LadderRun(float(largest * r), tuple(float(tokens_per_size * largest * r * s) for s in shares), seeds,
                  reading == "branches")
        for r in relative
    )  # fmt: skip
    label = f"{n_sizes} sizes ×{ratio:g}, {tokens_per_size:g} tokens/size, {reading}, {seeds} seed(s)"
    return LadderDesign(runs, decay, label)


def naive_design(budget: float, flops_factor: float = 6.0) -> LadderDesign:
    """The ladder people build without a plan: 5 sizes 2× apart, 20 tokens per parameter (Chinchilla), one
    run per size read along its curve, one seed. For a law of model scale N (``flops_factor`` 1, N ≈ 6 P)
    that is 20·P/N = 20/6 tokens per unit of N."""
    design = scaled_design(budget, 5, 2.0, 20.0 * flops_factor / 6.0, "curve", 1, flops_factor)
    return dataclasses.replace(design, label="naive: 5 sizes ×2, 20 tokens per parameter, curve, 1 seed")


@dataclass(frozen=True)
class LadderSearch:
    """Every enumerated candidate's screen, and the simulated evaluations, best first."""

    screened: list[tuple[LadderDesign, dict[str, float]]]
    evaluated: list[DesignEvaluation] = field(default_factory=list)
    naive: DesignEvaluation | None = None
    skipped: int = 0
    naive_note: str | None = None
    """Why the naive ladder was not simulated (its sizes outside those allowed), if it was not."""

    @property
    def best(self) -> DesignEvaluation:
        return self.evaluated[0]


def search_ladders(
    truth: Law,
    budget: float,
    target: Mapping[str, float],
    noise: LadderNoise,
    *,
    grid: LadderGrid | None = None,
    keep: int = 4,
    bootstrap: int = 200,
    replicates: int = 30,
    seed: int = 0,
    workers: int = 1,
    objective: Objective = "target_loss_log_width",
    min_size: float = 0.0,
) -> LadderSearch:
    """The best ladders for ``budget`` FLOPs: every grid design screened by :func:`linear_widths` on the
    ``objective``'s width (the target's loss, or α_N), the ``keep`` best simulated (each with ``replicates``
    fits) and ranked by their simulated score (:meth:`DesignEvaluation.score`), beside the naive ladder at
    the same cost. Designs whose largest model is not below the target's size, whose smallest is below
    ``min_size``, or that cannot determine the law, are skipped."""
    if objective not in OBJECTIVES:
        raise LawDataError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    size = _size_column(truth)
    _check_target(truth, target)
    if objective == "alpha_N_width" and _alpha_n(truth, truth._fitted_theta()) is None:
        raise LawDataError(f"the {truth.name} law has no α_N to rank designs by: use the target's width")
    if not (math.isfinite(budget) and budget > 0):
        raise LawDataError(f"the ladder's budget must be a number of FLOPs > 0, got {budget}")
    grid = grid or LadderGrid()
    flops_factor = getattr(truth, "flops_factor", 6.0)

    def why_not(design: LadderDesign) -> str | None:
        """Why a design is no candidate: outside the sizes allowed, or unable to determine the law."""
        sizes = [run.size for run in design.runs]
        if max(sizes) >= target[size] or min(sizes) < min_size:
            return f"its sizes {min(sizes):.3g}-{max(sizes):.3g} are not within [{min_size:.3g}, {target[size]:.3g})"
        try:
            check_design(truth, design)
        except LawDataError as error:
            return str(error)
        return None

    screen_seed, naive_seed, *design_seeds = spawn_seeds(seed, keep + 2)
    screened, skipped = [], 0
    for n, ratio, tokens, reading, seeds in product(
        grid.sizes, grid.ratios, grid.tokens_per_size, grid.readings, grid.seeds
    ):
        design = scaled_design(budget, n, ratio, tokens, reading, seeds, flops_factor)
        if why_not(design) is not None:
            skipped += 1
            continue
        screened.append((design, linear_widths(truth, design, noise, target, screen_seed)))
    if not screened:
        raise LawDataError(
            f"no candidate ladder fits a budget of {budget:.3g} FLOPs between the smallest size {min_size:.3g} "
            f"and the target's size {target[size]:.3g}: change the budget, the target or the smallest size"
        )
    screened.sort(key=lambda entry: entry[1].get(objective, math.inf))
    evaluate = dict(bootstrap=bootstrap, replicates=replicates, workers=workers)
    evaluated = [
        evaluate_design(truth, design, noise, target, seed=design_seed, **evaluate)
        for (design, _), design_seed in zip(screened[:keep], design_seeds, strict=False)
    ]
    evaluated.sort(key=lambda e: (e.score(objective), e.expected(objective) or math.inf))
    naive = naive_design(budget, flops_factor)
    naive_result, naive_note = None, why_not(naive)
    if naive_note is None:
        naive_result = evaluate_design(truth, naive, noise, target, seed=naive_seed, **evaluate)
    return LadderSearch(screened, evaluated, naive_result, skipped, naive_note)


def _check_target(truth: Law, target: Mapping[str, float]) -> None:
    """The target has the law's inputs as finite values > 0, and the law predicts it (a law that cannot,
    e.g. a two-step chain, says why here, once, rather than in every candidate)."""
    for column in truth.inputs:
        value = target.get(column)
        if value is None or not (math.isfinite(value) and value > 0):
            raise LawDataError(f"the target needs {column} as a number > 0, got {value!r}")
    _jacobian(truth, _target_row(target))


@dataclass(frozen=True)
class LadderSpec:
    """A hand-written design to evaluate (``archscale plan ladder --evaluate DESIGN.yaml``)."""

    truth: Law
    design: LadderDesign
    noise: LadderNoise
    target: dict[str, float]


def _number(value: Any, where: str) -> float:
    """A positive number; YAML's ``1.0e7`` (text to a YAML 1.1 reader) is read, as the sweep specs read it."""
    return fields.real(where, value, LawDataError)


def _fields(entry: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise LawDataError(f"{where} must be a mapping with the keys {sorted(required)}, got {entry!r}")
    if unknown := set(entry) - allowed:
        raise LawDataError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if missing := required - set(entry):
        raise LawDataError(f"{where}: missing key(s) {sorted(missing)}")
    return dict(entry)


def _tokens(value: Any, where: str) -> tuple[float, ...]:
    """A list of token counts, or ``{from, to, points}``: points log-spaced along one run's curve."""
    if isinstance(value, Mapping):
        span = _fields(value, where, {"from", "to", "points"}, {"from", "to", "points"})
        points = fields.count(f"{where}.points", span["points"], LawDataError)
        low, high = _number(span["from"], f"{where}.from"), _number(span["to"], f"{where}.to")
        if low > high:
            raise LawDataError(f"{where}: from ({low:g}) must not exceed to ({high:g})")
        return tuple(float(t) for t in np.geomspace(low, high, points))
    if isinstance(value, list) and value:
        return tuple(_number(t, f"{where}[{i}]") for i, t in enumerate(value))
    raise LawDataError(f"{where} must be a list of token counts or {{from, to, points}}, got {value!r}")


SET_BY_THE_PLANNER = ("bootstrap", "seed", "resample", "method")
"""Fit options the planner sets itself (from --bootstrap and --seed; the CLI's defaults otherwise)."""


def _truth_law(entry: Mapping[str, Any]) -> Law:
    """The design file's law: its name, options and coefficients, each checked, and every coefficient inside
    the fitter's bounds (a truth on a bound would make every fit degenerate)."""
    cls = law_class(str(entry["name"]))
    config_names = {f.name for f in dataclasses.fields(cls)}
    if given := [k for k in SET_BY_THE_PLANNER if k in entry]:
        raise LawDataError(
            f"law: {given} are set by the planner (--bootstrap, --seed): drop them from the file"
        )
    config = {k: v for k, v in entry.items() if k in config_names}
    coefficients = {k: v for k, v in entry.items() if k != "name" and k not in config_names}
    coefficients = {
        key: fields.number(f"law.{key}", value, LawDataError) for key, value in coefficients.items()
    }
    try:
        truth = cls.from_coefficients(coefficients, **config)
    except (TypeError, ValueError, OverflowError) as error:
        raise LawDataError(
            f"law: {error}; its options must have the types `archscale fit {cls.name}` takes, and coefficients "
            "that enter as logarithms (A, B, sigma) must be > 0"
        ) from None
    for name, value, (low, high) in zip(
        truth.theta_names, truth._fitted_theta(), truth._bounds(), strict=True
    ):
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise LawDataError(
                f"law: {name} = {value:.4g} is outside the fitter's bounds ({low}, {high}): every fit of the "
                "simulated ladders would end on a bound"
            )
    return truth


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise LawDataError(f"{where} must be true or false, got {value!r}")
    return value


def parse_spec(spec: Any) -> LadderSpec:
    """Read a design spec (the parsed YAML): ``law`` (a law name, its coefficients and options such as
    ``size``), ``runs`` (``{params, tokens, seeds, branches}`` each; the size key is the law's size column),
    ``noise`` (``{run, point}``), ``target`` (``{params, tokens}``), optional ``decay``. Every error names
    the field."""
    top = _fields(
        spec, "the design", {"law", "runs", "noise", "target", "decay"}, {"law", "runs", "noise", "target"}
    )
    law_entry = top["law"]
    if not isinstance(law_entry, Mapping) or "name" not in law_entry:
        raise LawDataError("law must be a mapping with a 'name' and the law's coefficients, e.g. "
                           "{name: chinchilla, A: 400, B: 1500, alpha: 0.34, beta: 0.30, sigma: 1.8}")  # fmt: skip
    truth = _truth_law(law_entry)
    size = _size_column(truth)
    runs = top["runs"]
    if not isinstance(runs, list) or not runs:
        raise LawDataError(f"runs must be a non-empty list of {{{size}, tokens, seeds}}")
    parsed = []
    for i, entry in enumerate(runs):
        run = _fields(entry, f"runs[{i}]", {size, "tokens", "seeds", "branches"}, {size, "tokens"})
        seeds = fields.count(f"runs[{i}].seeds", run.get("seeds", 1), LawDataError)
        parsed.append(LadderRun(_number(run[size], f"runs[{i}].{size}"), _tokens(run["tokens"], f"runs[{i}].tokens"),
                                seeds, _flag(run.get("branches", False), f"runs[{i}].branches")))  # fmt: skip
    noise = _fields(top["noise"], "noise", {"run", "point"}, {"run", "point"})
    noise = {key: fields.number(f"noise.{key}", value, LawDataError) for key, value in noise.items()}
    target = _fields(top["target"], "target", {size, "tokens"}, {size, "tokens"})
    decay = fields.real("decay", top.get("decay", DEFAULT_DECAY), LawDataError, 0.0, 1.0, low_open=False)
    return LadderSpec(
        truth,
        LadderDesign(tuple(parsed), float(decay), "given"),
        LadderNoise(float(noise["run"]), float(noise["point"]), "the design file"),
        {k: _number(v, f"target.{k}") for k, v in target.items()},
    )
