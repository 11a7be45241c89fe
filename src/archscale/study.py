"""The one-command study as a library function: corpus, the preset's dense and MoE sweep, laws, report.

Every stage reuses what exists: the corpus is built once, finished runs are skipped and unfinished ones
resume from their checkpoints, so an interrupted study continues where it stopped when run again.
``archscale study`` is a thin shell over :func:`run_study`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pandas as pd

from archscale.analysis.study_plan import StudyNoise, StudyTruth, measure_truth, plan_study, truth_from_dict
from archscale.analysis.suite import analyse, paper_runs, store_runs
from archscale.data import build_minipile
from archscale.errors import ArchscaleError
from archscale.laws.ladder import MICRO_NOISE, LadderDesign, LadderRun, evaluate_design
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.table1 import published_alpha_N
from archscale.report import Report, build_report
from archscale.store import ResultsStore
from archscale.sweeps import load_spec
from archscale.sweeps.executor import SweepSummary, default_run_root, executor_for, run_sweep
from archscale.training.branches import plan_branches
from archscale.training.run_config import RunConfig

PRESETS = ("micro", "cpu", "gpu", "moe-design", "lr-transfer", "lr-transfer-gpu")

Downstream = Callable[[ResultsStore, Path, list[RunConfig]], object]
"""Scores the given finished runs on a downstream task and stores the scores with them (the CLI passes the
lm-eval bridge's ``score_next_sentence``; the study cannot import the bridges, its sibling layer)."""


class StudyError(ArchscaleError):
    """The study was asked for something it cannot run (an unknown preset, an option that does not apply)."""


@dataclass
class StudyResult:
    """Where the study wrote, what its sweep did and its report; ``failed`` runs make the study a failure."""

    out: Path
    sweep: SweepSummary
    report: Report
    wall_time: float


def preset_spec_path(preset: str) -> Path:
    """The sweep spec of a study preset, shipped in ``archscale/sweeps/presets``."""
    if preset not in PRESETS:
        raise StudyError(f"--preset: unknown study preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return Path(str(files("archscale.sweeps.presets") / f"study-{preset}.yaml"))


def default_out(seed: int) -> Path:
    """``archscale-study`` for seed 0, ``archscale-study-seedS`` for a repeat with seed S."""
    return Path("archscale-study" if seed == 0 else f"archscale-study-seed{seed}")


def study_runs(preset: str = "micro", spec: Path | None = None, seed: int = 0) -> tuple[str, list[RunConfig]]:
    """The sweep's name and the runs a study would train (``seed`` replaces every run's seed)."""
    sweep = load_spec(spec or preset_spec_path(preset))
    runs = sweep.expand()
    return sweep.name, runs if seed == 0 else [run.replace(seed=seed) for run in runs]


def branch_ends(runs: list[RunConfig]) -> list[RunConfig]:
    """The runs of the study's ladders: each cooldown branch and the trunk it branches from, whose final
    weights are the ladder's (N, D) points; a study without branches has none."""
    branches = plan_branches(runs)
    members = set(branches) | {branch.trunk_id for branch in branches.values()}
    return [run for run in runs if run.run_id in members]


MICRO_LAW = {"A": 0.936, "alpha": 0.162, "B": 20.1, "beta": 0.203, "sigma": 1.0}
"""The law the planner assumes for the micro presets (N = model scale): the micro study's dense law points
(seed 0, 2026-12-05) fitted by Eq. 5 with σ held at 1.0. The points fit every σ from 0 to 1.5 about equally
well (rms 2.9-3.2 %, benchmarks/RESULTS.md, "the micro study's ladder, planned"), so σ is an assumption."""


def _family(law: tuple[float, ...], batch: tuple[float, float], lr: tuple[float, float],
            noise_scale: tuple[float, float]) -> dict:  # fmt: skip
    return {"law": dict(zip(("A", "alpha", "B", "beta", "sigma"), law, strict=True))} | {
        name: {"lambda": value[0], "exponent": value[1]}
        for name, value in (("batch", batch), ("lr", lr), ("noise_scale", noise_scale))
    }


MICRO_TRUTH = {
    "truth": {
        "dense": _family((0.9651, 0.1176, 11.85, 0.1247, 0.0), (7128.0, 1.956), (7.276e-08, -9.619), (9.342e5, 6.026)),
        "moe": _family((13.37, 0.3214, 13.04, 0.1319, 0.0), (102.9, -1.56), (5.462e-07, -7.792), (1.581e6, 6.408)),
        "curvature": {"batch": 0.02876, "lr": 0.01077},
    },
    "noise": {"run": 0.02, "step": 0.05245, "noise_scale": 2.384, "noise_scale_run": 0.4758, "eval": 0.0},
    "source": {
        "truth": "the micro study's own fits (seed 0, 2026-12-05; `plan study --store` on its store): Eq. 5 per "
        "family (σ on its bound at 0: the points do not pin it), the B_opt, lr_opt and noise-scale laws "
        "(B_opt = λ/L^exponent; lr_opt's exponent −9.6 is what its noisy optima gave), the grids' curvature",
        "noise": "run effect 2 %: the micro presets' repeated seeds (benchmarks/RESULTS.md; seeds 0 and 1 of the "
        "micro study: test losses 1.8 % apart per run over 110 pairs, curves 1.1 %); step and "
        "noise-scale noise: the micro store's step-to-step differences (for the noise scale, of the raw "
        "per-step estimates behind the trainer's moving average); a run's noise-scale offset: its residuals "
        "about the fitted law; eval: 0 (every run is evaluated on the same held-out tokens)",
    },
}  # fmt: skip
"""The truth ``plan study --preset micro`` assumes without a store: what the micro main job measured."""


def micro_truth() -> tuple[StudyTruth, StudyNoise]:
    """:data:`MICRO_TRUTH` read as a truth and noise."""
    return truth_from_dict(MICRO_TRUTH, "MICRO_TRUTH")


def ladder_design(runs: list[RunConfig]) -> LadderDesign:
    """The study's ladder as its law points read it (the report's "budgets" rule): a trunk with its
    cooldown branches is one run read at each budget; every other (model, budget) gives one point, its
    best run's end."""
    branches = plan_branches(runs)
    trunks: dict[str, list[RunConfig]] = {}
    for run in branch_ends(runs):
        trunks.setdefault(branches[run.run_id].trunk_id if run.run_id in branches else run.run_id, []).append(
            run
        )
    ladder = [LadderRun(float(members[0].derived()["N"]), tuple(float(r.trained_tokens) for r in members),
                        branches=len(members) > 1) for members in trunks.values()]  # fmt: skip
    on_ladder = {run.run_id for members in trunks.values() for run in members}
    # one point per (model, budget) off the ladder: its best run's end
    cells = {(run.model.name, run.tokens): run for run in runs if run.run_id not in on_ladder}
    ladder += [LadderRun(float(run.derived()["N"]), (float(run.trained_tokens),)) for run in cells.values()]
    return LadderDesign(tuple(ladder), label="the study's ladder")


def resolution_preview(
    runs: list[RunConfig], kind: str = "dense", replicates: int = 20, seed: int = 0
) -> str:
    """What the study's ``kind`` ladder can resolve, before it is trained: the planner's median α_N width and
    degenerate share under :data:`MICRO_LAW` and the micro presets' noise, against the width the paper's α_N
    difference (Table 1: 0.590 − 0.507) needs."""
    family = [run for run in runs if run.model.kind == kind]
    design = ladder_design(family)
    if design.n_sizes < 3:
        return f"the {kind} ladder has {design.n_sizes} model size(s): Eq. 5 needs 3 or more, so no α_N"
    truth = ChinchillaLaw.from_coefficients(MICRO_LAW, size="model_scale")
    largest = max(run.size for run in design.runs)
    target = {"model_scale": 10 * largest, "tokens": 10 * max(max(run.tokens) for run in design.runs)}
    result = evaluate_design(
        truth, design, MICRO_NOISE, target, bootstrap=100, replicates=replicates, seed=seed
    )
    published = published_alpha_N()
    needed = published["moe"] - published["dense"]
    # the difference of two independent estimates has a half-width √2 times each one's: it excludes 0 when
    # each family's half-width is under needed / √2, its width under √2 · needed
    per_family = 2**0.5 * needed
    width = result.expected("alpha_N_width")
    said = (
        "no α_N interval in any replicate" if width is None else f"α_N's 95 % interval about {width:.2f} wide"
    )
    verdict = "out of reach" if width is None or width > per_family else "within reach"
    return (
        f"what the {kind} ladder can resolve (planner, {replicates} simulated ladders of this design under an "
        f"assumed law, MICRO_LAW, and noise run {MICRO_NOISE.run:g} / point {MICRO_NOISE.point:g}): {said}, "
        f"{result.degenerate_fraction:.0%} of fits degenerate; the paper's α_N difference {needed:.3f} needs each "
        f"family's interval under {per_family:.2f} wide: {verdict}. `archscale plan ladder --fit FIT.json "
        "--budget FLOPS --compute C --objective alpha_N` sizes a ladder that reaches it (benchmarks/RESULTS.md: "
        "none within 131072× this budget under this law)."
    )


def study_design(runs: list[RunConfig]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs a study would store, as the planner's design (:data:`~archscale.analysis.study_plan.
    DESIGN_COLUMNS`), and the token counts of their test evals (at whole steps, as the trainer evaluates)."""
    branches = plan_branches(runs)
    rows, evals = [], []
    for run in runs:
        derived = run.derived()
        branch = branches.get(run.run_id)
        rows.append(
            {
                "run_id": run.run_id, "kind": run.model.kind, "n_experts": run.model.n_experts, "N": derived["N"],
                "P": derived["P"], "P_active": derived["P_active"], "D": derived["D"],
                "batch_tokens": run.tokens_per_step, "lr": run.lr, "seed": run.seed,
                "trunk": run.run_id if branch is None else branch.trunk_id,
                "warmup_steps": run.warmup_steps, "branch_step": 0 if branch is None else branch.step,
                "noise_probe": run.measures_noise_scale,
            }
        )  # fmt: skip
        evals += [{"run_id": run.run_id, "tokens": float(s * run.tokens_per_step)} for s in run.eval_steps]
    return pd.DataFrame(rows), pd.DataFrame(evals)


def _stored(store_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The store's runs that the paper's analyses read (:func:`~archscale.analysis.suite.paper_runs`), its
    curve and its test evals."""
    with ResultsStore(store_path, read_only=True) as store:
        return paper_runs(store_runs(store)), store.curve(), store.evals(split="test", subset="all")


def store_truth(store_path: Path, seed: int = 0) -> tuple[StudyTruth, StudyNoise]:
    """The truth and noise the study stored at ``store_path`` shows (:func:`~archscale.analysis.study_plan.
    measure_truth`): its own fits as the truth, its measured noise."""
    runs, curve, tests = _stored(store_path)
    return measure_truth(runs, curve, analyse(runs, curve, tests, bootstrap=0, seed=seed))


def store_design(store_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished runs of a store that the paper's analyses read, as a planner's design, and the token
    counts of their test evals."""
    runs, curve, tests = _stored(store_path)
    finished = runs[runs["status"] == "finished"]
    probed = curve.groupby("run_id")["noise_scale"].agg(lambda x: bool(x.notna().any()))
    design = finished.assign(
        noise_probe=finished["run_id"].map(probed).fillna(False).astype(bool),
        warmup_steps=[json.loads(c)["warmup_steps"] for c in finished["config"]],
    )
    return design, tests[tests["run_id"].isin(finished["run_id"])][["run_id", "tokens"]]


def claims_preview(runs: list[RunConfig], replicates: int = 8, seed: int = 0, workers: int = 2) -> str:
    """What the study's design can resolve for each dense-vs-MoE claim, before it is trained: ``plan study``
    under :data:`MICRO_TRUTH` with a few replicates (a preview: ``archscale plan study`` runs more)."""
    design, evals = study_design(runs)
    plan = plan_study(
        design, evals, *micro_truth(), replicates=replicates, bootstrap=50, seed=seed, workers=workers
    )
    return "\n".join(
        [
            f"what each dense-vs-MoE claim can resolve (plan study: {replicates} simulated studies of this design "
            "under the micro study's measured truth; `archscale plan study --preset micro --replicates 40` for more):",
            *(f"  {claim.text()}" for claim in plan.claims),
        ]
    )


def run_study(
    preset: str = "micro",
    *,
    out: Path | None = None,
    seed: int = 0,
    spec: Path | None = None,
    workers: int | None = None,
    bootstrap: int = 200,
    references: Mapping[str, str | Path] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    downstream: Downstream | None = None,
    device: str | None = None,
) -> StudyResult:
    """Run (or resume) a complete dense-vs-MoE study into ``out`` and write its report there.

    ``seed`` seeds every run and the report's bootstrap (a repeat of the study); ``spec`` replaces the
    preset's sweep; ``references`` adds public data sets the report reads from the user's paths;
    ``downstream`` scores the finished ladder runs (``branch_ends``) on a downstream task before the report,
    so the report's downstream laws have their points. ``device`` (as ``sweep run --device``): where the
    runs train; by default every visible GPU for the gpu preset (with its spec or the user's), else the CPU.
    """
    started = time.perf_counter()
    name, runs = study_runs(preset, spec, seed)
    executor = executor_for(device or ("cuda" if preset == "gpu" else "cpu"), workers)
    out = Path(out) if out is not None else default_out(seed)
    out.mkdir(parents=True, exist_ok=True)
    if any(r.dataset == "minipile" for r in runs):
        log("[1/4] corpus: building or reusing the mini-Pile ...")
        build_minipile(log=log)
    log(f"[2/4] training: sweep {name!r} ({len(runs)} runs, seed {seed}) ...")
    store_path = out / "results.sqlite"
    with ResultsStore(store_path) as store:
        summary = run_sweep(
            runs, store, default_run_root(store_path), executor, sweep=name, progress=progress
        )
        log(
            f"      {summary.total} runs: {summary.skipped} reused, {len(summary.finished)} finished, "
            f"{len(summary.diverged)} diverged, {len(summary.failed)} failed"
        )
        finished = store.finished_ids(include_diverged=False)
        ends = [run for run in branch_ends(runs) if run.run_id in finished]
        if downstream is None or not ends:
            log(f"[3/4] downstream: skipped ({'no scorer given' if downstream is None else 'no ladder'})")
        else:
            log(f"[3/4] downstream: scoring the {len(ends)} finished ladder runs' final weights ...")
            downstream(store, default_run_root(store_path), ends)
    log("[4/4] laws and report ...")
    report = build_report(
        store_path,
        out / "report",
        bootstrap=bootstrap,
        seed=seed,
        references=references,
        wall_time=time.perf_counter() - started,
    )
    return StudyResult(out, summary, report, time.perf_counter() - started)
