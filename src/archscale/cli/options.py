"""Options shared by several commands: one name, one help text and one default each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_STORE = Path("results.sqlite")
DEFAULT_DEVICE = "auto"

StoreOption = Annotated[
    Path,
    typer.Option(
        "--store",
        help="SQLite results store; run directories (weights, checkpoints) are beside it in STORE-runs/.",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="cpu, cuda:N (one GPU), cuda (sweeps: every visible GPU, a worker each), or auto: the GPUs when "
        "there are any, else the CPU.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-k",
        min=0,
        help="Parallel single-thread CPU worker processes (default: 2; 0: in this process).",
    ),
]
RestartBadOption = Annotated[
    bool,
    typer.Option(
        "--restart-bad-checkpoints",
        help="Train from the start any run whose checkpoint is damaged or another run's (moved aside to "
        "*.bad); without it such a run fails with the reason.",
    ),
]

DEFAULT_BOOTSTRAP = 200
BootstrapOption = Annotated[
    int, typer.Option("--bootstrap", min=0, help="Refits behind every interval (0: no intervals).")
]
ReferenceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reference",
        help="NAME=PATH: a public data set archscale does not ship, for the report's evidence panel beside "
        "Clark et al.; steplaw=FOLDER reads Step Law's dense_lr_bs_loss.csv and moe_lr_bs_loss.csv "
        "(no licence stated).",
    ),
]


def parse_references(items: list[str] | None) -> dict[str, Path]:
    """``--reference NAME=PATH`` options as a mapping."""
    references = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"expected NAME=PATH, got {item!r}", param_hint="--reference")
        references[name] = Path(path)
    return references


def exit_if_runs_failed(summary: Any) -> None:
    """Exit 1, with one line naming each failed run's reason (the first three), when a sweep (a
    ``SweepSummary``) had failed runs; the report is already out."""
    if summary.failed:
        shown = "; ".join(f"{run_id}: {summary.reasons.get(run_id, '?')}" for run_id in summary.failed[:3])
        more = f"; and {len(summary.failed) - 3} more" if len(summary.failed) > 3 else ""
        typer.echo(
            f"error: {len(summary.failed)} runs failed ({shown}{more}); "
            "see `archscale runs list --status failed`",
            err=True,
        )
        raise typer.Exit(1)


def given_flags(ctx: typer.Context, names: Iterable[str] | None = None) -> list[str]:
    """The flags (e.g. ``--json``) of the options among ``names`` (default: all) that the user gave, on the
    command line or in the environment, rather than leaving their defaults. Compared by the source's name:
    Typer may vendor its own Click, whose ParameterSource is another class."""
    wanted = None if names is None else set(names)
    flags = []
    for param in ctx.command.params:
        if wanted is not None and param.name not in wanted:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            flags.append(param.opts[0])
    return flags
