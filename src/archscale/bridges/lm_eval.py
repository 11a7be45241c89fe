"""Downstream evaluation (paper Table 2) through lm-evaluation-harness on a run's exported checkpoint.

``evaluate_run`` exports a finished run as a Hugging Face checkpoint (``hf_export``) into a temporary
directory, scores it with the harness's own HF model class (HFLM) on the requested tasks, and stores the
scores with the run under the ``downstream`` metadata key. Each task carries its chance accuracy, so a
report can say when a score is at guessing level, as it is for micro-scale models.

Any task the harness can load on this machine works (its built-in tasks fetch their data sets from the
Hugging Face hub). The tasks in ``tasks/`` ship their data with archscale and need no download:
``archscale_arith`` is a 20-question arithmetic multiple-choice task in the spirit of MATH401.
"""

from __future__ import annotations

import difflib
import functools
import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from archscale.analysis.downstream import DOWNSTREAM_KEY
from archscale.bridges.hf_export import export_run
from archscale.errors import ArchscaleError
from archscale.store import ResultsStore

TASKS_DIR = Path(__file__).with_name("tasks")


class EvalError(ArchscaleError):
    """The evaluation cannot run as asked; the message names the task or option and the fix."""


def local_jsonl(data_file: str, **_metadata: Any) -> dict:
    """``custom_dataset`` hook of the shipped tasks: ``tasks/<data_file>`` (one JSON object a line) as the
    test split. The harness also passes the task's metadata (e.g. ``version``); it is not needed here."""
    import datasets

    path = TASKS_DIR / data_file
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows, split=datasets.Split.TEST)}


@functools.lru_cache(maxsize=4)
def task_manager(include_path: str | Path | None = None):
    """The harness's task index: its built-in tasks, archscale's shipped ones and ``include_path``'s.

    Indexing the harness's ~15,000 task files takes seconds, so it is done once per process and path.
    """
    from lm_eval.tasks import TaskManager

    paths = [str(TASKS_DIR)] + ([str(include_path)] if include_path is not None else [])
    return TaskManager(include_path=paths)


def check_tasks(tasks: Sequence[str], manager) -> list[str]:
    """The requested task names, refused up front (before any export) when the harness does not know one."""
    if not tasks:
        raise EvalError("tasks: name at least one task, e.g. --tasks archscale_arith")
    known = set(manager.all_tasks)
    for name in tasks:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {close}? " if close else ""
            raise EvalError(
                f"tasks: unknown task {name!r}; {hint}list the harness's tasks with `lm-eval ls tasks`, "
                "or pass --include-path DIR with your own task YAML"
            )
    return list(tasks)


def chance_accuracy(samples: Sequence[dict]) -> float | None:
    """Accuracy of uniform guessing over a multiple-choice task's logged samples: the mean of 1/choices.

    Each choice is one log-likelihood request, so a sample's ``arguments`` count its choices.
    """
    if not samples:
        return None
    return sum(1.0 / len(s["arguments"]) for s in samples) / len(samples)


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    """Harness keys ``metric,filter`` -> ``metric`` (``metric,filter`` unless the filter is "none")."""
    out = {}
    for key, value in row.items():
        if "," not in key or isinstance(value, bool) or not isinstance(value, int | float):
            continue  # "alias", "name" and "N/A" standard errors
        metric, _, filt = key.partition(",")
        out[metric if filt == "none" else key] = float(value)
    return out


def _leaves(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    subtasks = group_subtasks.get(name)
    if not subtasks:
        return [name]
    return [leaf for sub in subtasks for leaf in _leaves(sub, group_subtasks)]


def summarise(results: dict[str, Any], limit: float | None) -> dict[str, dict[str, Any]]:
    """Per-task records (leaf tasks and groups) from ``lm_eval.simple_evaluate``'s result.

    A leaf's chance is known for multiple-choice tasks only. A group's chance is its leaves' chances
    weighted by their sample counts (as the harness weights group scores by default), known when every
    leaf's is.
    """
    configs, samples = results.get("configs", {}), results.get("samples", {})
    group_subtasks = results.get("group_subtasks", {})
    n_leaf = {name: n["effective"] for name, n in results.get("n-samples", {}).items()}
    chance_leaf = {
        name: chance_accuracy(samples.get(name, []))
        if config.get("output_type") == "multiple_choice"
        else None
        for name, config in configs.items()
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    harness = f"lm-eval {version('lm_eval')}"
    records: dict[str, dict[str, Any]] = {}
    for name, row in results["results"].items():
        leaves = _leaves(name, group_subtasks)
        n = sum(n_leaf.get(leaf, 0) for leaf in leaves)
        chances = [chance_leaf.get(leaf) for leaf in leaves]
        known = n > 0 and all(c is not None for c in chances)
        records[name] = {
            "metrics": _metrics(row),
            "chance": sum(c * n_leaf[leaf] for c, leaf in zip(chances, leaves, strict=True)) / n
            if known
            else None,
            "n": n,
            "output_type": "group" if group_subtasks.get(name) else configs.get(name, {}).get("output_type"),
            "num_fewshot": results.get("n-shot", {}).get(name),
            "version": results.get("versions", {}).get(name),
            "limit": limit,
            "harness": harness,
            "evaluated": now,
        }
    return records


def evaluate_checkpoint(
    checkpoint: str | Path,
    tasks: Sequence[str],
    *,
    device: str = "cpu",
    batch_size: int = 8,
    limit: float | None = None,
    num_fewshot: int | None = None,
    include_path: str | Path | None = None,
    manager=None,
) -> dict[str, dict[str, Any]]:
    """Score the HF checkpoint directory ``checkpoint`` on ``tasks`` with the harness; per-task records."""
    import lm_eval

    manager = manager if manager is not None else task_manager(include_path)
    tasks = check_tasks(tasks, manager)
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(checkpoint), "dtype": "auto"},
        tasks=tasks,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        device=device,
        limit=limit,
        log_samples=True,
        task_manager=manager,
    )
    return summarise(results, limit)


def evaluate_run(
    store: ResultsStore,
    run_id: str,
    run_root: str | Path,
    tasks: Sequence[str],
    *,
    include_path: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate the finished run ``run_id`` on ``tasks``; returns this evaluation's per-task records.

    The records are merged into the run's ``downstream`` metadata (task name -> record); tasks evaluated
    earlier keep theirs unless evaluated again. ``options`` go to ``evaluate_checkpoint`` (device,
    batch_size, limit, num_fewshot).
    """
    manager = task_manager(include_path)
    check_tasks(tasks, manager)
    store.config(run_id)  # an unknown run fails here, before any work
    with tempfile.TemporaryDirectory(prefix=f"archscale-{run_id}-hf-") as checkpoint:
        export_run(store, run_id, run_root, checkpoint)
        records = evaluate_checkpoint(checkpoint, tasks, manager=manager, **options)
    store.set_meta(run_id, DOWNSTREAM_KEY, {**store.meta(run_id).get(DOWNSTREAM_KEY, {}), **records})
    return records
