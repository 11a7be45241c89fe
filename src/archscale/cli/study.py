"""``archscale study``: the one-command study — corpus, dense and MoE ladders, a batch × LR grid, laws, report.

Every stage reuses what exists: the corpus is built once, finished runs are skipped and unfinished ones
resume from their checkpoints, so an interrupted study continues where it stopped when re-run.
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

import typer

from archscale.store import ResultsStore
from archscale.sweeps import load_spec
from archscale.sweeps.executor import LocalExecutor, default_run_root, run_sweep

PRESETS = ("micro", "cpu", "gpu")


def preset_spec_path(preset: str) -> Path:
    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown study preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return Path(str(files("archscale.sweeps.presets") / f"study-{preset}.yaml"))


def study_command(
    preset: str = typer.Option(
        "micro", "--preset", help="micro (~15 min, 2 CPU cores), cpu (~2 h), gpu (hours, H100)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Study directory: results store, runs, report (archscale-study[-seedS])."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of every run and of the report's bootstrap: a repeat of the study."
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Use this sweep spec instead of the preset's."),
    workers: int = typer.Option(
        2, "--workers", "-k", min=1, help="Parallel single-thread workers (CPU presets)."
    ),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap resamples for every interval."),
) -> None:
    """Run a complete dense-vs-MoE scaling study and write its report (re-run to resume)."""
    from archscale.data import build_minipile
    from archscale.report import build_report

    started = time.perf_counter()
    sweep = load_spec(spec or preset_spec_path(preset))
    runs = sweep.expand() if seed == 0 else [run.replace(seed=seed) for run in sweep.expand()]
    out = out or Path("archscale-study" if seed == 0 else f"archscale-study-seed{seed}")
    out.mkdir(parents=True, exist_ok=True)
    if any(r.dataset == "minipile" for r in runs):
        typer.echo("[1/3] corpus: building or reusing the mini-Pile ...")
        build_minipile(log=typer.echo)
    typer.echo(
        f"[2/3] training: sweep {sweep.name!r} ({len(runs)} runs, seed {seed}) with {workers} workers ..."
    )
    store_path = out / "results.sqlite"
    executor = LocalExecutor(workers)
    if preset == "gpu" and spec is None:
        from archscale.sweeps.executor import InProcessExecutor

        executor = InProcessExecutor("cuda")
    with ResultsStore(store_path) as store:
        summary = run_sweep(runs, store, default_run_root(store_path), executor, sweep=sweep.name)
    typer.echo(
        f"      {summary.total} runs: {summary.skipped} reused, {len(summary.finished)} finished, "
        f"{len(summary.diverged)} diverged, {len(summary.failed)} failed"
    )
    typer.echo("[3/3] laws and report ...")
    report = build_report(
        store_path, out / "report", bootstrap=bootstrap, seed=seed, wall_time=time.perf_counter() - started
    )
    typer.echo(report.headline())
    typer.echo(f"report: {report.index}  (summary: {report.summary_path})")
    typer.echo(f"study wall time: {time.perf_counter() - started:.0f} s")
