"""``archscale study``: the one-command study (:func:`archscale.study.run_study`) and its exit status."""

from __future__ import annotations

from pathlib import Path

import typer

from archscale.cli.report import parse_references


def study_command(
    preset: str = typer.Option(
        "micro", "--preset", help="micro (~15 min, 2 CPU cores), cpu (~2 h), gpu (hours, one GPU)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Study directory: results store, runs, report (archscale-study[-seedS])."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of every run and of the report's bootstrap: a repeat of the study."
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Use this sweep spec instead of the preset's."),
    workers: int | None = typer.Option(
        None, "--workers", "-k", min=1, help="Parallel single-thread workers (CPU presets) [default: 2]."
    ),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap resamples for every interval."),
    reference: list[str] = typer.Option(
        [], "--reference", help="NAME=PATH: a public data set for the report's panel (see `report`)."
    ),
) -> None:
    """Run a complete dense-vs-MoE scaling study and write its report (re-run to resume).

    Exits 1 when any run failed (the report is still written from the runs that finished)."""
    from archscale.study import run_study

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
    if result.sweep.failed:
        typer.echo(
            f"error: {len(result.sweep.failed)} runs failed (see `archscale runs list --status failed`)",
            err=True,
        )
        raise typer.Exit(1)
