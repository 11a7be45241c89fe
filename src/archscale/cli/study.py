"""``archscale study``: the one-command study (:func:`archscale.study.run_study`) and its exit status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archscale.cli.options import (
    DEFAULT_BOOTSTRAP,
    BootstrapOption,
    ReferenceOption,
    WorkersOption,
    exit_if_runs_failed,
    parse_references,
)


def study_command(
    preset: Annotated[
        str, typer.Option("--preset", help="micro (~15 min, 2 CPU cores), cpu (~2 h), gpu (hours, one GPU).")
    ] = "micro",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Study directory: results store, runs, report (archscale-study[-seedS])."),
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
    from archscale.study import run_study, study_runs

    if dry_run:
        from archscale.sweeps.dry_run import plan_text

        typer.echo(plan_text(study_runs(preset, spec, seed)[1], workers))
        return
    result = run_study(
        preset,
        out=out,
        seed=seed,
        spec=spec,
        workers=workers,
        bootstrap=bootstrap,
        references=parse_references(reference),
        log=typer.echo,
    )
    typer.echo(result.report.headline())
    typer.echo(f"report: {result.report.index}  (summary: {result.report.summary_path})")
    typer.echo(f"study wall time: {result.wall_time:.0f} s")
    exit_if_runs_failed(result.sweep)
