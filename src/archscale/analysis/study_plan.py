"""What a study's design can resolve before it is trained: its dense-vs-MoE verdicts, simulated.

The ladder planner (:mod:`archscale.laws.ladder`) sizes one family's loss law. A study reports more: the
paper's five claims, each a MoE-vs-dense effect with an interval (test loss at equal compute, α_N, B_opt and
lr_opt at equal loss, the gradient noise scale). How wide those intervals come out depends on every part of
the design at once — the ladder's sizes and budgets, the batch × LR grids, the seeds — so this module does
not approximate them: it draws the study's own tables (runs, curves, test evals) from an assumed truth and
noise model, runs the study's own analyses on them (:func:`archscale.analysis.suite.analyse`), and reads
each verdict's interval, ``replicates`` times.

The truth (:class:`StudyTruth`) per family: a loss law L(N, D) = A/N^α + B/D^β + σ (N the model scale);
B_opt = λ_B/L^α_B (tokens) and lr_opt = λ/L^α, the optima at each point of training (paper Eq. 12 and 15),
with the loss raised by exp(c_B·ln²(B/B_opt) + c_lr·ln²(lr/lr_opt)) away from them; the gradient noise scale
B_simple = c/L^k. The noise (:class:`StudyNoise`): a run effect shared by a trunk and its cooldown branches,
independent noise on every logged step's loss and noise scale, and on each test eval. :func:`measure_truth`
reads all of it from a store (the study's own fits as the truth), so a pilot study plans the next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from archscale import fields
from archscale.analysis.errors import AnalysisError
from archscale.analysis.points import FAMILIES, SMOOTHING_WINDOW, finished_runs, law_points, require_columns
from archscale.analysis.results import Result
from archscale.analysis.seed_noise import seed_noise
from archscale.analysis.suite import Analyses, analyse
from archscale.analysis.verdicts import DEPENDS, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, Verdict
from archscale.laws.ladder import MICRO_NOISE
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.resampling import spawn_seeds

RUN_COLUMNS = (
    "run_id",
    "kind",
    "n_experts",
    "N",
    "P",
    "P_active",
    "D",
    "batch_tokens",
    "lr",
    "seed",
    "trunk",
)
"""The runs-table columns of a design (the store's names), as the analyses read them."""
DESIGN_COLUMNS = (*RUN_COLUMNS, "warmup_steps", "branch_step", "noise_probe")
"""A study design: one row per run (``trunk``: the run whose stable phase a cooldown branch shares, itself
otherwise; ``branch_step``: the steps a branch shares with its trunk, 0 for a trunk; ``noise_probe``:
whether the run measures the gradient noise scale)."""
NOISE_SCALE_EMA = 0.95
"""The weight on the past of the trainer's noise-scale moving average (``training.noise_scale``'s
``NoiseScaleEstimator`` default; restated here, as the analyses load without the training package)."""
EMA_SETTLE = 40
"""Steps of the noise scale's moving average left out when its noise is measured: 2/(1 − a), where its
bias-corrected start, an average of few estimates, has settled."""
WARMUP_SHARE = 0.1
"""Steps left out when the step-to-step noise is measured (the warm-up's loss falls too fast to difference)."""


@dataclass(frozen=True)
class FamilyTruth:
    """One family's assumed truth: its loss law (``A alpha B beta sigma`` over model scale and tokens) and
    power laws ``(λ, exponent)`` of the loss for B_opt (tokens), lr_opt and the noise scale B_simple: y = λ/L^e."""

    law: Mapping[str, float]
    batch: tuple[float, float]
    lr: tuple[float, float]
    noise_scale: tuple[float, float]

    def loss(self, n: float, tokens: np.ndarray) -> np.ndarray:
        c = self.law
        return c["A"] / n ** c["alpha"] + c["B"] / tokens ** c["beta"] + c["sigma"]


@dataclass(frozen=True)
class StudyTruth:
    """Both families' truths and the curvature of the loss around the optimal batch size and LR (log loss
    per squared e-fold away from each optimum)."""

    families: Mapping[str, FamilyTruth]
    curvature_batch: float
    curvature_lr: float
    source: str = "given"


NOISES = ("run", "step", "noise_scale", "noise_scale_run", "eval")


@dataclass(frozen=True)
class StudyNoise:
    """Log-scale standard deviations: a trunk's offset (``run``), each logged step's loss (``step``) and noise
    scale (``noise_scale``), a run's offset of its noise scale (``noise_scale_run``), each test eval
    (``eval``); ``source`` says where each came from."""

    run: float
    step: float
    noise_scale: float
    noise_scale_run: float
    eval: float
    source: str = "given"

    def __post_init__(self) -> None:
        for name in NOISES:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise AnalysisError(
                    f"noise.{name} must be a log-scale sd >= 0 (e.g. 0.01 for 1 %), got {value}"
                )


LAW_TERMS = ("A", "alpha", "B", "beta", "sigma")
POWER_LAWS = ("batch", "lr", "noise_scale")


def _mapping(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnalysisError(f"{where}: must be a mapping with {', '.join(keys)}, got {value!r}")
    if missing := [k for k in keys if k not in value]:
        raise AnalysisError(f"{where}: {missing[0]} is missing (give {', '.join(keys)})")
    if extra := sorted(set(value) - set(keys)):
        raise AnalysisError(f"{where}: unknown field {extra[0]!r} (allowed: {', '.join(keys)})")
    return value


def truth_to_dict(truth: StudyTruth, noise: StudyNoise) -> dict[str, Any]:
    """The truth and noise as a plain mapping (the ``plan study --truth`` file's format)."""
    families = {
        kind: {"law": dict(f.law)}
        | {name: dict(zip(("lambda", "exponent"), getattr(f, name), strict=True)) for name in POWER_LAWS}
        for kind, f in truth.families.items()
    }
    return {
        "truth": families | {"curvature": {"batch": truth.curvature_batch, "lr": truth.curvature_lr}},
        "noise": {name: getattr(noise, name) for name in NOISES},
        "source": {"truth": truth.source, "noise": noise.source},
    }


def truth_from_dict(data: Any, where: str = "truth file") -> tuple[StudyTruth, StudyNoise]:
    """Read :func:`truth_to_dict`'s format; a bad field raises one line naming it."""
    data = _mapping(data, where, ("truth", "noise", "source"))
    given = _mapping(data["truth"], f"{where}: truth", (*FAMILIES, "curvature"))
    families = {}
    for kind in FAMILIES:
        entry = _mapping(given[kind], f"{where}: truth.{kind}", ("law", *POWER_LAWS))
        law = _mapping(entry["law"], f"{where}: truth.{kind}.law", LAW_TERMS)
        powers = {}
        for name in POWER_LAWS:
            at = f"{where}: truth.{kind}.{name}"
            power = _mapping(entry[name], at, ("lambda", "exponent"))
            powers[name] = (
                fields.real(f"{at}.lambda", power["lambda"], AnalysisError),
                float(fields.number(f"{at}.exponent", power["exponent"], AnalysisError)),
            )
        terms = {  # σ, the loss floor, may be 0; the rest are positive
            k: fields.real(f"{where}: truth.{kind}.law.{k}", law[k], AnalysisError, low_open=k != "sigma")
            for k in LAW_TERMS
        }
        families[kind] = FamilyTruth(law=terms, **powers)
    curvature = _mapping(given["curvature"], f"{where}: truth.curvature", ("batch", "lr"))
    source = _mapping(data["source"], f"{where}: source", ("truth", "noise"))
    noise = _mapping(data["noise"], f"{where}: noise", NOISES)
    return (
        StudyTruth(
            families,
            *(  # ≥ 0: a negative curvature would make the optimum a maximum
                fields.real(
                    f"{where}: truth.curvature.{axis}", curvature[axis], AnalysisError, low_open=False
                )
                for axis in ("batch", "lr")
            ),
            source=str(source["truth"]),
        ),
        StudyNoise(
            **{k: float(fields.number(f"{where}: noise.{k}", noise[k], AnalysisError)) for k in NOISES},
            source=str(source["noise"]),
        ),
    )


def check_design(design: pd.DataFrame, evals: pd.DataFrame) -> None:
    """A design has every column of :data:`DESIGN_COLUMNS` and test evals (``run_id``, ``tokens``) of its runs."""
    require_columns(design, DESIGN_COLUMNS, "design")
    require_columns(evals, ("run_id", "tokens"), "design evals")
    unknown = sorted(set(design["kind"]) - set(FAMILIES))
    if unknown:
        raise AnalysisError(f"design.kind must be 'dense' or 'moe'; got {unknown}")
    if (design["D"] < design["batch_tokens"]).any():
        raise AnalysisError("design: a run trains fewer tokens (D) than one batch (batch_tokens)")


def _lr_column(steps: np.ndarray, peak: float, warmup: int) -> np.ndarray:
    """The peak LR after a linear warm-up: what the analyses read of a schedule (where it first peaks)."""
    return peak * np.minimum(1.0, steps / max(1, warmup))


def _smoothed_scale(raw_log: np.ndarray) -> np.ndarray:
    """The trainer's bias-corrected moving average (weight :data:`NOISE_SCALE_EMA` on the past) of raw
    per-step log noise-scale estimates."""
    a = NOISE_SCALE_EMA
    average = lfilter([1 - a], [1, -a], raw_log)
    return average / (1 - a ** np.arange(1, len(raw_log) + 1))


def simulate_study(
    design: pd.DataFrame, evals: pd.DataFrame, truth: StudyTruth, noise: StudyNoise, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The runs, curve and test evals a study of ``design`` would store if ``truth`` and ``noise`` held.

    Each noise draws from its own stream of ``seed``. A cooldown branch is its trunk up to its
    ``branch_step``: the same offsets and the same step draws there (the store holds its trunk's stable
    phase), its own draws after."""
    run_rng, step_rng, scale_rng, scale_run_rng, eval_rng = (
        np.random.default_rng(s) for s in spawn_seeds(seed, len(NOISES))
    )
    trunks = pd.unique(design["trunk"])
    offset = dict(zip(trunks, noise.run * run_rng.standard_normal(len(trunks)), strict=True))
    scale_offset = dict(
        zip(trunks, noise.noise_scale_run * scale_run_rng.standard_normal(len(trunks)), strict=True)
    )
    at = evals.groupby("run_id")["tokens"].agg(list)
    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a trunk's step and noise-scale draws
    curves, tests = [], []
    ordered = design.assign(_is_trunk=design["trunk"] == design["run_id"]).sort_values(
        "_is_trunk", ascending=False, kind="stable"
    )
    for run in ordered.itertuples(index=False):
        family = truth.families[run.kind]
        steps = np.arange(1, int(run.D // run.batch_tokens) + 1)
        tokens = steps * float(run.batch_tokens)
        step_z, scale_z = step_rng.standard_normal(len(steps)), scale_rng.standard_normal(len(steps))
        if run.trunk in drawn and run.trunk != run.run_id:
            shared = min(int(run.branch_step), len(steps), len(drawn[run.trunk][0]))
            step_z[:shared], scale_z[:shared] = drawn[run.trunk][0][:shared], drawn[run.trunk][1][:shared]
        if run.trunk == run.run_id:
            drawn[run.run_id] = (step_z, scale_z)
        true = family.loss(float(run.N), tokens)
        u = np.log(run.batch_tokens / (family.batch[0] / true ** family.batch[1]))
        v = np.log(run.lr / (family.lr[0] / true ** family.lr[1]))
        loss = true * np.exp(truth.curvature_batch * u**2 + truth.curvature_lr * v**2 + offset[run.trunk])
        scale = np.log(family.noise_scale[0] / loss ** family.noise_scale[1]) + scale_offset[run.trunk]
        curves.append(
            pd.DataFrame(
                {
                    "run_id": run.run_id,
                    "step": steps,
                    "tokens": tokens,
                    "lm_loss": loss * np.exp(noise.step * step_z),
                    "lr": _lr_column(steps, run.lr, int(run.warmup_steps)),
                    "noise_scale": np.exp(_smoothed_scale(scale + noise.noise_scale * scale_z))
                    if run.noise_probe
                    else np.nan,
                }
            )
        )
        read = np.asarray(at.get(run.run_id, []), dtype=float)
        tested = np.interp(read, tokens, loss) * np.exp(noise.eval * eval_rng.standard_normal(len(read)))
        tests.append(pd.DataFrame({"run_id": run.run_id, "tokens": read, "loss": tested}))
    runs = design[list(RUN_COLUMNS)].assign(status="finished")
    return runs, pd.concat(curves, ignore_index=True), pd.concat(tests, ignore_index=True)


@dataclass
class ClaimPlan(Result):
    """One claim over the simulated studies: its median effect, the median 95 % width of its interval (in
    log units, ln(upper/lower), for a ratio; a difference's width otherwise), the median smallest effect the
    design resolves (:attr:`Verdict.resolves`), and the share of each verdict."""

    claim: str
    measure: str
    ratio: bool
    effect: float | None
    width: float | None
    resolves: float | None
    interval_fraction: float
    verdicts: dict[str, float]

    def text(self) -> str:
        """One line: the smallest effect resolved, the median width, the median effect and the verdicts."""
        if self.width is None or self.resolves is None:
            return f"{self.measure}: no interval in any simulated study"
        reach = f"×/÷{self.resolves:.3g}" if self.ratio else f"±{self.resolves:.3g}"
        if self.verdicts.get(NOT_TESTED) == 1.0:
            return (
                f"{self.measure}: never judged (not tested in every simulated study, e.g. a degenerate fit); "
                f"its interval, median 95 % width {self.width:.3g}, would resolve effects beyond {reach}"
            )
        shares = ", ".join(f"{v} {share:.0%}" for v, share in self.verdicts.items() if share)
        return (
            f"{self.measure}: resolves effects beyond {reach} (median 95 % width {self.width:.3g}"
            f"{' in log units' if self.ratio else ''}, interval in {self.interval_fraction:.0%}); "
            f"median effect {self.effect:.3g}; verdicts: {shares}"
        )


@dataclass
class StudyPlan(Result):
    """What the design resolves, claim by claim, over ``replicates`` simulated studies."""

    replicates: int
    bootstrap: int
    truth_source: str
    noise: dict[str, Any]
    claims: list[ClaimPlan] = field(default_factory=list)


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def _claim_plan(rows: list[Verdict]) -> ClaimPlan:
    first = rows[0]
    ratio = first.no_effect == 1.0
    with_interval = [
        r for r in rows if r.lower is not None and r.upper is not None and r.resolves is not None
    ]
    widths = [math.log(r.upper / r.lower) if ratio else r.upper - r.lower for r in with_interval]  # type: ignore[operator]
    verdicts = {
        v: sum(r.verdict == v for r in rows) / len(rows)
        for v in (SUPPORTED, NOT_SUPPORTED, DEPENDS, INCONCLUSIVE, NOT_TESTED)
    }
    return ClaimPlan(
        claim=first.claim,
        measure=first.measure.split(" at ")[0],
        ratio=ratio,
        effect=_median([r.effect for r in rows if r.effect is not None]),
        width=_median(widths),
        resolves=_median([r.resolves for r in with_interval]),  # type: ignore[misc]
        interval_fraction=len(with_interval) / len(rows),
        verdicts=verdicts,
    )


def _replicate(args: tuple) -> list[Verdict]:
    design, evals, truth, noise, sim_seed, fit_seed, bootstrap = args
    runs, curve, tests = simulate_study(design, evals, truth, noise, sim_seed)
    return analyse(runs, curve, tests, bootstrap=bootstrap, seed=fit_seed).verdicts.rows


def replicate_seeds(seed: int, replicates: int) -> list[tuple[int, int]]:
    """(simulation, analysis) seeds of each replicate, all drawn from ``seed``."""
    streams = spawn_seeds(seed, 2 * replicates)
    return list(zip(streams[::2], streams[1::2], strict=True))


def plan_study(
    design: pd.DataFrame,
    evals: pd.DataFrame,
    truth: StudyTruth,
    noise: StudyNoise,
    *,
    replicates: int = 20,
    bootstrap: int = 100,
    seed: int = 0,
    workers: int = 1,
) -> StudyPlan:
    """Simulate the study of ``design`` ``replicates`` times and summarise each claim's interval and verdict."""
    check_design(design, evals)
    if replicates < 2:
        raise AnalysisError(f"replicates must be >= 2 (a median of widths), got {replicates}")
    if bootstrap < 1:
        raise AnalysisError(f"bootstrap must be >= 1 (no bootstrap, no interval to plan), got {bootstrap}")
    tasks = [(design, evals, truth, noise, s, f, bootstrap) for s, f in replicate_seeds(seed, replicates)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_replicate, tasks))
    else:
        results = [_replicate(task) for task in tasks]
    claims = [_claim_plan([rows[i] for rows in results]) for i in range(len(results[0]))]
    return StudyPlan(
        replicates=replicates,
        bootstrap=bootstrap,
        truth_source=truth.source,
        noise={name: getattr(noise, name) for name in (*NOISES, "source")},
        claims=claims,
    )


def _step_sd(values: pd.Series, run_ids: pd.Series, skip: int = 0) -> float:
    """Log-scale sd of independent step-to-step noise: the scatter of consecutive differences of log values
    about a straight line through each run's differences (the curve's own slope and its drift), over √2,
    after each run's warm-up share and ``skip`` steps."""
    squares, dof = 0.0, 0
    for _, v in values.groupby(run_ids, sort=False):
        logs = np.log(v.to_numpy(dtype=float))
        logs = logs[max(skip, int(WARMUP_SHARE * len(logs))) :]
        d = np.diff(logs[np.isfinite(logs)])
        if len(d) < 4:
            continue
        t = np.arange(len(d))
        squares += float(np.sum((d - np.polyval(np.polyfit(t, d, 1), t)) ** 2))
        dof += len(d) - 2
    if dof < 10:
        raise AnalysisError("the store's curves are too short to measure the step-to-step noise")
    return math.sqrt(squares / dof / 2)


def _raw_scale_sd(stored_step_sd: float) -> float:
    """The sd σ of the raw per-step log noise-scale estimates behind a moving average y_t = a·y_{t−1} +
    (1 − a)·x_t that shows step-to-step sd ``stored_step_sd`` (as :func:`_step_sd` measures it): its
    differences have sd (1 − a)·σ·√(2/(1 + a)), so σ = stored_step_sd·√(1 + a)/(1 − a)."""
    a = NOISE_SCALE_EMA
    return stored_step_sd * math.sqrt(1 + a) / (1 - a)


def _between_run_sd(points: pd.DataFrame, fits: Mapping[str, Any]) -> float:
    """Log-scale sd of a run's offset of its noise scale: the spread of each run's mean residual about its
    family's fitted law, less what its points' own scatter explains (var(mean) = τ² + s²/n)."""
    means, within = [], []
    for (family, _), rows in points.groupby(["kind", "run_id"]):
        lam, exponent = _power(fits, family, "noise-scale")
        r = np.log(rows["noise_scale"].to_numpy(float)) - np.log(
            lam / rows["loss"].to_numpy(float) ** exponent
        )
        means.append(r.mean())
        within.append(r.var(ddof=1) / len(r) if len(r) > 1 else 0.0)
    if len(means) < 3:
        raise AnalysisError("the store has fewer than 3 runs that measured the noise scale")
    return float(math.sqrt(max(0.0, np.var(means, ddof=1) - np.mean(within))))


def _curvature(cells: list[dict]) -> tuple[float, float]:
    """c_B and c_lr: per grid, ln loss = a + b·u + c_B·u² + d·v + c_lr·v² (u, v the log batch size and LR)
    fitted by least squares; the median over grids of each, at least 0 (a noisy grid's negative estimate
    counts: dropping it would bias the median up)."""
    found: dict[str, list[float]] = {"batch": [], "lr": []}
    for _, grid in pd.DataFrame(cells).groupby("grid"):
        u, v = np.log(grid["batch_size"].to_numpy(float)), np.log(grid["lr"].to_numpy(float))
        columns = [np.ones_like(u)]
        names = []
        for name, x in (("batch", u), ("lr", v)):
            if len(np.unique(x)) >= 3:
                columns += [x - x.mean(), (x - x.mean()) ** 2]
                names.append(name)
        if not names or len(grid) < len(columns):
            continue
        coef = np.linalg.lstsq(np.column_stack(columns), np.log(grid["loss"].to_numpy(float)), rcond=None)[0]
        for i, name in enumerate(names):
            found[name].append(float(coef[2 + 2 * i]))
    if not found["batch"] or not found["lr"]:
        missing = " and ".join(n for n in found if not found[n])
        raise AnalysisError(
            f"the store has no grid with 3 or more {missing} values: the loss's curvature around the "
            "optimum cannot be measured"
        )
    return max(0.0, float(np.median(found["batch"]))), max(0.0, float(np.median(found["lr"])))


def _power(fits: Mapping[str, Any], family: str, what: str) -> tuple[float, float]:
    fit = fits.get(family)
    if fit is None or fit.fit is None:
        reason = fit.skipped if fit is not None and fit.skipped else f"no {family} fit"
        raise AnalysisError(f"the store's {what} law cannot be measured for {family}: {reason}")
    c = fit.fit["coefficients"]
    return float(c["lambda"]), -float(c["exponent"])


def measure_truth(
    runs: pd.DataFrame, curve: pd.DataFrame, analyses: Analyses, window: int = SMOOTHING_WINDOW
) -> tuple[StudyTruth, StudyNoise]:
    """The truth and noise a store shows: its own fits (Eq. 5 per family on the report's law points, the
    B_opt, lr_opt and noise-scale laws of ``analyses``) and its measured noise (step-to-step noise of the
    curves; the run effect from repeated seeds, else the micro presets' measured one)."""
    points = law_points(runs, curve, window=window)
    families = {}
    for family in FAMILIES:
        own = points[points["kind"] == family]
        if own["model_scale"].nunique() < 3:
            raise AnalysisError(
                f"the store has {family} runs at fewer than 3 model sizes: no loss law to simulate"
            )
        law = ChinchillaLaw(size="model_scale").fit(own).coefficients_
        h = analyses.hyperparams
        families[family] = FamilyTruth(
            law=law,
            batch=_power(h.batch_fits, family, "B_opt(L)"),
            lr=_power(h.lr_fits, family, "lr_opt(L)"),
            noise_scale=_power(analyses.noise.fits, family, "noise-scale"),
        )
    c_batch, c_lr = _curvature(analyses.hyperparams.cells)
    finished = finished_runs(runs)
    steps = curve[curve["run_id"].isin(finished["run_id"])].sort_values(["run_id", "step"])
    scales = steps[np.isfinite(steps["noise_scale"].to_numpy(float)) & (steps["noise_scale"] > 0)]
    repeated = seed_noise(runs, curve, window=window) if "config" in runs else None
    run, run_source = (
        (repeated.run, "the store's repeated seeds")
        if repeated is not None
        else (MICRO_NOISE.run, f"no repeated seeds in the store: {MICRO_NOISE.source}")
    )
    noise = StudyNoise(
        run=run,
        step=_step_sd(steps["lm_loss"], steps["run_id"]),
        noise_scale=_raw_scale_sd(_step_sd(scales["noise_scale"], scales["run_id"], skip=EMA_SETTLE)),
        noise_scale_run=_between_run_sd(analyses.noise.points, analyses.noise.fits),
        eval=0.0,
        source=f"run effect: {run_source}; step noise: the store's curves (step-to-step differences); the "
        "noise scale's raw per-step noise: the same of its stored moving average, undone; a run's "
        "noise-scale offset: its residuals about the fitted law; eval: 0 (every run is evaluated on the same "
        "held-out tokens, so what varies between runs is the run effect)",
    )
    truth = StudyTruth(families, c_batch, c_lr, source="the store's own fits (Eq. 5 per family, the B_opt, "
                       "lr_opt and noise-scale laws, the grids' curvature)")  # fmt: skip
    return truth, noise
