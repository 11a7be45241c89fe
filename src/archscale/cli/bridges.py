"""``archscale export`` (Hugging Face checkpoint) and ``archscale eval`` (lm-evaluation-harness tasks).

Plain functions, registered as top-level commands. Both read a finished run's weights from the run
directory beside the store (``STORE-runs/RUN_ID/model.safetensors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from archscale.cli.sweeps import default_run_root
from archscale.data.errors import DataError
from archscale.models import ConfigError
from archscale.store import ResultsStore, StoreError

EXTRAS = {"transformers": "hf", "lm_eval": "eval", "accelerate": "eval"}
STORE_HELP = "SQLite results store holding the run; its weights are in STORE-runs/RUN_ID/."


@contextmanager
def _reported() -> Iterator[None]:
    """Bad input or a missing extra becomes one 'error:' line and exit code 1, not a traceback."""
    from archscale.bridges.hf_export import ExportError
    from archscale.bridges.lm_eval import EvalError

    try:
        yield
    except (ExportError, EvalError, StoreError, DataError, ConfigError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if package not in EXTRAS:
            raise
        typer.echo(
            f"error: this command needs {package}: pip install 'archscale[{EXTRAS[package]}]'", err=True
        )
        raise typer.Exit(1) from None


def _open(store: Path) -> ResultsStore:
    if not store.is_file():
        raise typer.BadParameter(f"no results store at {store}", param_hint="--store")
    return ResultsStore(store)


def export_command(
    run_id: str = typer.Argument(..., help="The run to export (see `archscale runs list`)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the checkpoint into."),
    fmt: str = typer.Option("hf", "--format", help="Checkpoint format; 'hf' (Hugging Face transformers)."),
    store: Path = typer.Option(Path("results.sqlite"), "--store", help=STORE_HELP),
) -> None:
    """Export a finished run as a Hugging Face checkpoint (Llama, Mixtral or Qwen2-MoE) with its tokenizer."""
    if fmt != "hf":
        raise typer.BadParameter(f"unknown format {fmt!r}; use 'hf'", param_hint="--format")
    with _reported(), _open(store) as results:
        from archscale.bridges.hf_export import export_checkpoint, hf_architecture, load_run

        cfg, state, tokenizer = load_run(results, run_id, default_run_root(store))
        export_checkpoint(cfg, state, tokenizer, out)
    typer.echo(f"exported run {run_id} as {hf_architecture(cfg)} to {out}")


def eval_command(
    run_id: str = typer.Argument(..., help="The run to evaluate (see `archscale runs list`)."),
    tasks: str = typer.Option(
        ..., "--tasks", help="Comma-separated harness tasks, e.g. archscale_arith or mmlu,triviaqa."
    ),
    store: Path = typer.Option(Path("results.sqlite"), "--store", help=STORE_HELP),
    device: str = typer.Option("cpu", "--device", help="Device for the model (cpu, cuda, cuda:1)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Requests per forward pass."),
    limit: float | None = typer.Option(
        None, "--limit", help="Only this many examples per task (a fraction if < 1)."
    ),
    num_fewshot: int | None = typer.Option(
        None, "--num-fewshot", min=0, help="Few-shot examples (default: the task's)."
    ),
    include_path: Path | None = typer.Option(
        None, "--include-path", help="Directory of extra task YAML files."
    ),
) -> None:
    """Score a finished run on lm-evaluation-harness tasks; the scores are stored with the run (Table 2)."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    with _reported(), _open(store) as results:
        from archscale.analysis.downstream import near_chance, task_score
        from archscale.bridges.lm_eval import evaluate_run

        records = evaluate_run(
            results, run_id, default_run_root(store), names, include_path=include_path,
            device=device, batch_size=batch_size, limit=limit, num_fewshot=num_fewshot,
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
