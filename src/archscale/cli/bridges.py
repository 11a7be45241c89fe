"""``archscale export`` (Hugging Face checkpoint) and ``archscale eval`` (lm-evaluation-harness tasks).

Plain functions, registered as top-level commands. Both read a run's weights from the run directory beside
the store: the final ones (``STORE-runs/RUN_ID/model.safetensors``), and for ``eval --checkpoints`` those it
kept at its eval steps (``STORE-runs/RUN_ID/checkpoints/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from archscale.cli.options import DEFAULT_DEVICE, DEFAULT_STORE, DeviceOption, StoreOption
from archscale.store import ResultsStore
from archscale.sweeps.executor import default_run_root


def export_command(
    run_id: Annotated[str, typer.Argument(help="The run to export (see `archscale runs list`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the checkpoint into.")],
    fmt: Annotated[
        str, typer.Option("--format", help="Checkpoint format; 'hf' (Hugging Face transformers).")
    ] = "hf",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Export a finished run as a Hugging Face checkpoint (Llama, Mixtral or Qwen2-MoE) with its tokenizer."""
    if fmt != "hf":
        raise typer.BadParameter(f"unknown format {fmt!r}; use 'hf'", param_hint="--format")
    with ResultsStore(store, read_only=True) as results:
        from archscale.bridges.hf_export import export_checkpoint, hf_architecture, load_run

        cfg, state, tokenizer = load_run(results, run_id, default_run_root(store))
        export_checkpoint(cfg, state, tokenizer, out)
    typer.echo(f"exported run {run_id} as {hf_architecture(cfg)} to {out}")


def eval_command(
    run_id: Annotated[str, typer.Argument(help="The run to evaluate (see `archscale runs list`).")],
    tasks: Annotated[
        str,
        typer.Option("--tasks", help="Comma-separated harness tasks, e.g. archscale_arith or mmlu,triviaqa."),
    ],
    store: StoreOption = DEFAULT_STORE,
    device: DeviceOption = DEFAULT_DEVICE,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Requests per forward pass.")] = 8,
    limit: Annotated[
        float | None, typer.Option("--limit", help="Only this many examples per task (a fraction if < 1).")
    ] = None,
    num_fewshot: Annotated[
        int | None, typer.Option("--num-fewshot", min=0, help="Few-shot examples (default: the task's).")
    ] = None,
    include_path: Annotated[
        Path | None, typer.Option("--include-path", help="Directory of extra task YAML files.")
    ] = None,
    checkpoints: Annotated[
        str | None,
        typer.Option(
            "--checkpoints",
            help="Score the weights the run kept at these steps (STEP,STEP,… or 'all', the final ones "
            "included; see `archscale runs checkpoints`) instead of its final weights.",
        ),
    ] = None,
) -> None:
    """Score a run on lm-evaluation-harness tasks: accuracy, and task loss (bits per byte of the correct
    answer) for multiple-choice tasks; the scores are stored with the run by step (Table 2, downstream laws)."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    steps = None if checkpoints is None else parse_checkpoints(checkpoints)
    with ResultsStore(store, create=False) as results:
        from archscale.analysis.downstream import near_chance, task_score
        from archscale.bridges.lm_eval import evaluate_run
        from archscale.training.distributed import resolve_device

        evaluated = evaluate_run(
            results, run_id, default_run_root(store), names, checkpoints=steps, include_path=include_path,
            device=resolve_device(device), batch_size=batch_size, limit=limit, num_fewshot=num_fewshot,
        )  # fmt: skip
    typer.echo(f"run {run_id}: scores stored in {store} under 'downstream_checkpoints' (final: 'downstream')")
    typer.echo(
        f"{'step':>8} {'task':<28} {'n':>6} {'metric':<16} {'score':>7} {'± s.e.':>7} {'chance':>7} {'bpb':>7}"
    )
    for step, records in evaluated.items():
        for name, task in records.items():
            shown = task_score(task)
            metric, value, stderr = shown if shown is not None else ("-", float("nan"), None)
            chance = "-" if task["chance"] is None else f"{task['chance']:.3f}"
            loss = "-" if task["task_loss"] is None else f"{task['task_loss']:.3f}"
            note = "  (within 2 s.e. of chance)" if near_chance(task) else ""
            typer.echo(
                f"{step:>8} {name:<28} {task['n']:>6} {metric:<16} {value:>7.3f} "
                f"{'-' if stderr is None else f'{stderr:.3f}':>7} {chance:>7} {loss:>7}{note}"
            )
    typer.echo("bpb: task loss, bits per byte of the correct answer (multiple-choice tasks)")


def parse_checkpoints(text: str) -> list[int] | Literal["all"]:
    """``--checkpoints``: ``all`` or comma-separated steps (whole numbers ≥ 1)."""
    if text.strip() == "all":
        return "all"
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or not all(item.isdigit() and int(item) > 0 for item in items):
        raise typer.BadParameter(
            f"expected 'all' or steps such as 100,200, got {text!r}", param_hint="--checkpoints"
        )
    return [int(item) for item in items]
