"""``archscale export`` (Hugging Face checkpoint) and ``archscale eval`` (lm-evaluation-harness tasks).

Plain functions, registered as top-level commands. Both read a finished run's weights from the run
directory beside the store (``STORE-runs/RUN_ID/model.safetensors``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
) -> None:
    """Score a finished run on lm-evaluation-harness tasks; the scores are stored with the run (Table 2)."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    with ResultsStore(store, create=False) as results:
        from archscale.analysis.downstream import near_chance, task_score
        from archscale.bridges.lm_eval import evaluate_run
        from archscale.training.distributed import resolve_device

        records = evaluate_run(
            results, run_id, default_run_root(store), names, include_path=include_path,
            device=resolve_device(device), batch_size=batch_size, limit=limit, num_fewshot=num_fewshot,
        )  # fmt: skip
    typer.echo(f"run {run_id}: scores stored in {store} under 'downstream'")
    typer.echo(f"{'task':<28} {'n':>6} {'metric':<16} {'score':>7} {'± s.e.':>7} {'chance':>7}")
    for name, task in records.items():
        shown = task_score(task)
        metric, value, stderr = shown if shown is not None else ("-", float("nan"), None)
        chance = "-" if task["chance"] is None else f"{task['chance']:.3f}"
        note = "  (within 2 s.e. of chance)" if near_chance(task) else ""
        typer.echo(
            f"{name:<28} {task['n']:>6} {metric:<16} {value:>7.3f} "
            f"{'-' if stderr is None else f'{stderr:.3f}':>7} {chance:>7}{note}"
        )
