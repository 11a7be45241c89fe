"""``archscale runs``: list and export what a results store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from archscale.analysis.curve_tables import predicted_ends, store_step_table
from archscale.cli.options import DEFAULT_STORE, StoreOption
from archscale.cli.shell import ArchscaleGroup
from archscale.errors import one_line
from archscale.laws import AnnealingLaw
from archscale.store import STATUSES, ResultsStore
from archscale.sweeps.executor import default_run_root

app = typer.Typer(
    cls=ArchscaleGroup, help="Inspect and export the runs in a results store.", no_args_is_help=True
)


PREDICT_REFITS = 100  # refits behind each --predict interval: seconds per model on a laptop


@app.command("list")
def list_cmd(
    store: StoreOption = DEFAULT_STORE,
    status: Annotated[
        str | None, typer.Option(help=f"Only runs with this status ({', '.join(STATUSES)}).")
    ] = None,
    predict: Annotated[
        bool,
        typer.Option(
            "--predict",
            help="Show where each unfinished run will end: the annealing law (Tissue et al. 2024) fitted on "
            "the curves of its model's runs, at its planned last step, with a 95 % prediction interval.",
        ),
    ] = False,
) -> None:
    """One line per run: id, model, tokens, batch, LR, status, final loss, and why a run failed, diverged or
    stopped."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            f"unknown status {status!r}; use one of {', '.join(STATUSES)}", param_hint="--status"
        )
    with ResultsStore(store, read_only=True) as results:
        runs = results.runs(**({"status": status} if status else {}))
        final = results.curve().groupby("run_id")["lm_loss"].last() if len(runs) else {}
        ends = (
            predicted_ends(store_step_table(results), AnnealingLaw(bootstrap=PREDICT_REFITS)).set_index(
                "run_id"
            )
            if predict and len(runs)
            else pd.DataFrame()
        )
    typer.echo(
        f"{'run_id':<13} {'model':<14} {'tokens':>10} {'batch':>6} {'lr':>9} {'status':<11} {'loss':>7}"
        + (f" {'→ end':>7} {'95 % interval':<17}" if predict else "")
        + "  reason"
    )
    for row in runs.itertuples():
        loss = final.get(row.run_id, float("nan")) if len(runs) else float("nan")
        end = (
            _predicted_end(ends.loc[row.run_id])
            if row.run_id in ends.index
            else (" " * 26 if predict else "")
        )
        reason = one_line(row.message) if isinstance(row.message, str) and row.message else ""
        typer.echo(
            f"{row.run_id:<13} {row.model_name!s:<14} {row.D:>10.3g} {row.batch_size:>6} {row.lr:>9.3g} "
            f"{row.status:<11} {loss:>7.4f}{end}  {reason}".rstrip()
        )
    reasons = sorted({r for r in ends.get("no_interval", pd.Series(dtype=object)).dropna()})
    if predict:
        typer.echo(
            "→ end: annealing law fitted per model on its runs' smoothed curves; the interval is that of a new "
            f"run's final loss ({PREDICT_REFITS} simulated refits)"
            + "".join(f"\n  no interval: {reason}" for reason in reasons)
        )


def _predicted_end(end: pd.Series) -> str:
    interval = "-" if pd.isna(end["lower"]) else f"[{end['lower']:.4f}, {end['upper']:.4f}]"
    return f" {end['predicted']:>7.4f} {interval:<17}"


@app.command("checkpoints")
def checkpoints_cmd(
    run_id: Annotated[str, typer.Argument(help="The run (see `archscale runs list`).")],
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """The weights a run has on disk, one line per step (tokens trained, file): those it kept at its eval
    steps (keep_checkpoints: true in the sweep spec) and its final ones; `archscale eval --checkpoints`
    scores them."""
    from archscale.bridges.hf_export import run_weights

    with ResultsStore(store, read_only=True) as results:
        kept = run_weights(results, run_id, default_run_root(store))
        per_step = int(results.runs(run_id=run_id)["batch_tokens"].iloc[0])
    if not kept:
        typer.echo(f"run {run_id} has no weights on disk (keep_checkpoints: true in the spec keeps them)")
    for step, path in kept.items():
        typer.echo(f"{step:>8} {step * per_step:>12} {path}")


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="Output directory.")],
    store: StoreOption = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Write runs, curves and evals as Parquet or CSV tables."""
    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use parquet or csv", param_hint="--format")
    with ResultsStore(store, read_only=True) as results:
        for path in results.export(out, fmt):  # type: ignore[arg-type]
            typer.echo(str(path))
