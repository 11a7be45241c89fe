"""``archscale study``: the one-command study (:func:`archscale.study.run_study`) and its exit status."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archscale.cli.options import (
    DEFAULT_BOOTSTRAP,
    BootstrapOption,
    ReferenceOption,
    WorkersOption,
    exit_if_runs_failed,
    parse_references,
)

if TYPE_CHECKING:
    from archscale.study import Downstream

STUDY_ITEMS = 50
"""Items of ``archscale_next_sentence`` scored at each ladder run's end: 2-6 s a run on 2 cores (0.05-0.8M
parameters), about 2.5 min for the micro study's 36 ladder runs on a loaded box (benchmarks/RESULTS.md);
±0.07 standard error on an accuracy near 0.4, which the downstream laws average over the ladder."""


def next_sentence_scorer(out: Path, seed: int) -> Downstream | None:
    """The study's downstream stage: the lm-eval bridge's ``score_next_sentence`` with the study's seed, its
    task YAML under ``out/tasks``; None (and a note) without the eval extra, whose packages it needs."""
    if any(importlib.util.find_spec(name) is None for name in ("lm_eval", "transformers")):
        typer.echo("downstream task skipped: it needs the eval extra, pip install 'archscale[eval]'")
        return None
    from archscale.bridges.lm_eval import score_next_sentence
    from archscale.training.distributed import resolve_device

    return functools.partial(
        score_next_sentence,
        tasks_dir=out / "tasks",
        seed=seed,
        items=STUDY_ITEMS,
        device=resolve_device("auto"),
    )


def study_command(
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help=(
                "micro (15-18 min on 2 CPU cores, measured), cpu (~2 h, estimated), gpu (~9 h on one H200, "
                "estimated), moe-design (the MoE design space, 40 min on 2 CPU cores, measured), lr-transfer "
                "(learning-rate ladders over 4 widths, SP and μP, dense and MoE, ~42 min on 2 CPU cores, estimated), "
                "lr-transfer-gpu (the same ladders at widths 128-1024, ~2 h on one H100, estimated)."
            ),
        ),
    ] = "micro",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Study directory: results store, runs, report (archscale-study\\[-seedS])."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Seed of every run and of the report's bootstrap: a repeat of the study."
        ),
    ] = 0,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Use this sweep spec instead of the preset's.")
    ] = None,
    workers: WorkersOption = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="Where the runs train, as for `sweep run`: cpu, cuda:N, cuda (every visible GPU) or auto "
            "(default: cuda for the gpu preset, else cpu).",
        ),
    ] = None,
    bootstrap: BootstrapOption = DEFAULT_BOOTSTRAP,
    reference: ReferenceOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="List the runs, FLOPs, epochs and estimated wall times; train nothing."
        ),
    ] = False,
) -> None:
    """Run a complete dense-vs-MoE scaling study and write its report (re-run to resume).

    Exits 1 when any run failed (the report is still written from the runs that finished)."""
    from archscale.study import claims_preview, default_out, resolution_preview, run_study, study_runs

    if dry_run:
        from archscale.sweeps.dry_run import plan_text

        runs = study_runs(preset, spec, seed)[1]
        typer.echo(plan_text(runs, workers))
        if preset == "micro" and spec is None:  # the planner's assumed law was measured on this preset
            typer.echo(resolution_preview(runs, seed=seed))
            typer.echo(claims_preview(runs, seed=seed, workers=workers or 2))
        return
    out = out if out is not None else default_out(seed)
    result = run_study(
        preset,
        out=out,
        seed=seed,
        spec=spec,
        workers=workers,
        bootstrap=bootstrap,
        references=parse_references(reference),
        log=typer.echo,
        downstream=next_sentence_scorer(out, seed),
        device=device,
    )
    typer.echo(result.report.headline())
    typer.echo(f"report: {result.report.index}  (summary: {result.report.summary_path})")
    typer.echo(f"study wall time: {result.wall_time:.0f} s")
    exit_if_runs_failed(result.sweep)
