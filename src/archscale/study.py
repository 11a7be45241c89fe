"""The one-command study as a library function: corpus, the preset's dense and MoE sweep, laws, report.

Every stage reuses what exists: the corpus is built once, finished runs are skipped and unfinished ones
resume from their checkpoints, so an interrupted study continues where it stopped when run again.
``archscale study`` is a thin shell over :func:`run_study`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from archscale.data import build_minipile
from archscale.errors import ArchscaleError
from archscale.report import Report, build_report
from archscale.store import ResultsStore
from archscale.sweeps import load_spec
from archscale.sweeps.executor import SweepSummary, default_run_root, executor_for, run_sweep
from archscale.training.branches import plan_branches
from archscale.training.run_config import RunConfig

PRESETS = ("micro", "cpu", "gpu", "moe-design")

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
) -> StudyResult:
    """Run (or resume) a complete dense-vs-MoE study into ``out`` and write its report there.

    ``seed`` seeds every run and the report's bootstrap (a repeat of the study); ``spec`` replaces the
    preset's sweep; ``references`` adds public data sets the report reads from the user's paths;
    ``downstream`` scores the finished ladder runs (``branch_ends``) on a downstream task before the report,
    so the report's downstream laws have their points.
    """
    started = time.perf_counter()
    name, runs = study_runs(preset, spec, seed)
    executor = executor_for("cuda" if preset == "gpu" and spec is None else "cpu", workers)
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
