"""``archscale sweep run`` (parallel, resumable sweeps) and ``archscale train`` (one process, torchrun-aware)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archscale.cli.options import (
    DEFAULT_DEVICE,
    DEFAULT_STORE,
    DeviceOption,
    RestartBadOption,
    StoreOption,
    WorkersOption,
    exit_if_runs_failed,
)
from archscale.cli.shell import ArchscaleGroup
from archscale.errors import ArchscaleError
from archscale.store import ResultsStore
from archscale.sweeps import SpecError, load_spec
from archscale.sweeps.dry_run import plan_text
from archscale.sweeps.executor import (
    SweepSummary,
    check_corpora,
    default_run_root,
    executor_for,
    run_sweep,
    train_in_process_group,
)
from archscale.training.options import TrainOptions

app = typer.Typer(
    cls=ArchscaleGroup, help="Run sweeps of training runs from a YAML spec.", no_args_is_help=True
)


def _load(spec: Path):
    try:
        return load_spec(spec)
    except (SpecError, OSError) as err:
        raise typer.BadParameter(str(err), param_hint="SPEC") from None


@app.command("run")
def run_cmd(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (YAML); see docs/sweeps.md.")],
    store: StoreOption = DEFAULT_STORE,
    workers: WorkersOption = None,
    threads: Annotated[
        int,
        typer.Option(
            "--threads-per-worker",
            min=1,
            help="Compute threads of each worker process (1 is fastest on 2 cores).",
        ),
    ] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="'local' processes or 'ray' (needs the ray extra).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: start a local one).")
    ] = None,
    gpus_per_run: Annotated[
        float,
        typer.Option(
            "--gpus-per-run",
            min=0,
            help="With --executor ray: GPUs each run's task reserves (a fraction shares one); 0: the CPU.",
        ),
    ] = 0,
    device: DeviceOption = DEFAULT_DEVICE,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bars.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="List the runs, FLOPs, epochs and estimated wall times; train nothing."
        ),
    ] = False,
    restart_bad: RestartBadOption = False,
) -> None:
    """Run every run of SPEC not already finished in STORE; interrupted runs resume from their checkpoints."""
    sweep = _load(spec)
    runs = sweep.expand()
    if dry_run:
        typer.echo(plan_text(runs, workers))
        try:
            check_corpora(runs)
        except ArchscaleError as error:
            typer.echo(f"warning: the sweep would stop before its first run: {error}", err=True)
        return
    check_corpora(runs)  # before the store is created
    if executor == "ray":
        from archscale.sweeps.ray_executor import RayExecutor

        chosen = RayExecutor(address=address, num_gpus_per_run=gpus_per_run)
    elif gpus_per_run:
        raise typer.BadParameter(
            "only Ray tasks reserve GPUs; add --executor ray, or use --device cuda",
            param_hint="--gpus-per-run",
        )
    elif executor == "local":
        chosen = executor_for(device, workers, threads)
    else:
        raise typer.BadParameter(
            f"unknown executor {executor!r}; use 'local' or 'ray'", param_hint="--executor"
        )
    with ResultsStore(store) as results:
        summary = run_sweep(
            runs, results, default_run_root(store), chosen, sweep=sweep.name, progress=not no_progress,
            restart_bad_checkpoints=restart_bad,
        )  # fmt: skip
    _report(sweep.name, summary, store)


def _report(name: str, summary: SweepSummary, store: Path) -> None:
    """The sweep's one-line outcome; exit 1 when a run failed."""
    typer.echo(
        f"sweep {name!r}: {summary.total} runs, {summary.skipped} already done, {len(summary.finished)} finished, "
        f"{len(summary.diverged)} diverged, {len(summary.failed)} failed; store: {store}"
    )
    exit_if_runs_failed(summary)


def train_cmd(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (YAML) whose runs to train, one after another.")],
    store: StoreOption = DEFAULT_STORE,
    device: DeviceOption = DEFAULT_DEVICE,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model. On CPU: 9-19 % faster steps after 30-40 s of compilation, "
            "so only for runs of thousands of steps.",
        ),
    ] = False,
    checkpoint_activations: Annotated[
        bool | None,
        typer.Option(
            "--checkpoint-activations/--no-checkpoint-activations",
            help="Recompute each block in backward: less memory, ~1/3 more compute. "
            "Default: the memory plan decides (only where a run would not fit otherwise).",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        bool | None,
        typer.Option(
            "--shard/--no-shard",
            help="FSDP2 over the torchrun group instead of DDP: each rank holds 1/N of the model (big models). "
            "Default: the memory plan decides (only under torchrun, where a run would not fit otherwise).",
            show_default=False,
        ),
    ] = None,
    fp32: Annotated[
        bool,
        typer.Option(
            "--fp32", help="Compute in fp32 on GPUs too (no bf16 autocast): e.g. to compare with the CPU."
        ),
    ] = False,
    restart_bad: RestartBadOption = False,
) -> None:
    """Train a spec's runs in this process; under `torchrun` every rank joins (DDP), rank 0 writes the store."""
    sweep = _load(spec)
    runs = sweep.expand()
    check_corpora(runs)  # before the process group forms and the store is created
    summary = train_in_process_group(
        runs,
        store,
        device=device,
        options=TrainOptions(
            compile, checkpoint_activations=checkpoint_activations, shard=shard, bf16=not fp32
        ),
        sweep=sweep.name,
        restart_bad_checkpoints=restart_bad,
    )
    if summary is not None:
        _report(sweep.name, summary, store)
