"""Downstream evaluation (paper Table 2) through lm-evaluation-harness on a run's exported checkpoint.

``evaluate_run`` exports a run's weights (the final ones, or those it kept at eval steps) as a Hugging Face
checkpoint (``hf_export``) into a temporary directory, scores it with the harness's own HF model class
(HFLM) on the requested tasks, and stores the scores with the run: under ``downstream_checkpoints`` by step,
and the final weights' also under ``downstream`` (Table 2). Each task carries its chance accuracy, so a
report can say when a score is at guessing level, as it is for micro-scale models, and, for
ranked-classification tasks, its task loss (the bits per byte of the correct continuation) beside the
accuracy: the points of the two-step downstream laws (Bhagia et al. 2024, arXiv 2412.04403).

Any task the harness can load on this machine works (its built-in tasks fetch their data sets from the
Hugging Face hub). The tasks in ``tasks/`` need no download: ``archscale_arith`` is a 20-question
arithmetic multiple-choice task in the spirit of MATH401, shipped with its data; ``archscale_next_sentence``
is built from the corpus's held-out text (``archscale.data.next_sentence``), so micro models score above
chance on it.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from archscale.analysis.downstream import DOWNSTREAM_CHECKPOINTS_KEY, DOWNSTREAM_KEY
from archscale.bridges.hf_export import export_run
from archscale.data.corpus import load_corpus
from archscale.data.next_sentence import TASK_NAME as NEXT_SENTENCE
from archscale.data.next_sentence import next_sentence_file
from archscale.errors import ArchscaleError
from archscale.paths import write_atomic
from archscale.store import ResultsStore
from archscale.training.checkpoint import kept_weights
from archscale.training.run_config import RunConfig

TASKS_DIR = Path(__file__).with_name("tasks")


class EvalError(ArchscaleError):
    """The evaluation cannot run as asked; the message names the task or option and the fix."""


def local_jsonl(data_file: str | Path, **_metadata: Any) -> dict:
    """``custom_dataset`` hook of the shipped tasks: ``tasks/<data_file>`` (or an absolute path; one JSON
    object a line) as the test split. The harness also passes the task's metadata (e.g. ``version``); it is
    not needed here."""
    import datasets

    path = TASKS_DIR / data_file
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows, split=datasets.Split.TEST)}


def next_sentence_dataset(
    corpus: str = "minipile", split: str = "validation", seed: int = 0, items: int = 1000, **_metadata: Any
) -> dict:
    """``custom_dataset`` hook of ``archscale_next_sentence``: its items, written from the corpus into a
    local file on first use (``next_sentence_file``) and read from it, so the harness needs no download."""
    return local_jsonl(next_sentence_file(corpus, split=split, seed=seed, items=items))


def write_next_sentence_task(
    out: str | Path, corpus: str | Path, *, split: str = "validation", seed: int = 0, items: int = 1000
) -> Path:
    """A task YAML in the folder ``out`` (pass it as ``include_path``, CLI ``--include-path``) that makes
    ``archscale_next_sentence`` draw ``items`` items with ``seed`` from ``corpus`` instead of the shipped
    defaults (the mini-Pile, seed 0, 1000 items): a YAML of include-path overrides a shipped task of the same
    name. The items are built now, so a corpus without held-out text fails here rather than mid-evaluation.
    """
    import yaml

    path = load_corpus(corpus).path.resolve()
    next_sentence_file(path, split=split, seed=seed, items=items)
    settings = {
        "include": str(TASKS_DIR / f"{NEXT_SENTENCE}.yaml"),
        "task": NEXT_SENTENCE,
        "dataset_kwargs": {"corpus": str(path), "split": split, "seed": seed, "items": items},
    }
    return write_atomic(Path(out) / f"{NEXT_SENTENCE}.yaml", yaml.safe_dump(settings, sort_keys=False))


@functools.lru_cache(maxsize=4)
def _not_cli_advice(record: logging.LogRecord) -> bool:
    """Drop the harness's advice about its own CLI's ``--metadata`` flag, logged for every task with a custom
    dataset (archscale's own): it does not apply here, and a study repeated it once per scored run."""
    return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


def task_manager(include_path: str | Path | None = None):
    """The harness's task index: its built-in tasks, archscale's shipped ones and ``include_path``'s.

    Indexing the harness's ~15,000 task files takes seconds, so it is done once per process and path.
    """
    from lm_eval.tasks import TaskManager

    task_logger = logging.getLogger("lm_eval.api.task")
    if _not_cli_advice not in task_logger.filters:
        task_logger.addFilter(_not_cli_advice)

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


def _gold(sample: dict[str, Any], delimiter: str) -> int | None:
    """The index of a multiple-choice sample's correct request: the target's index, or the one request whose
    continuation is the target text; None when it cannot be told (several targets, or a continuation shared
    by every choice, as in Winogrande, whose choices are contexts)."""
    target = sample["target"]
    if isinstance(target, int) and not isinstance(target, bool):
        return target if 0 <= target < len(sample["arguments"]) else None
    if isinstance(target, str):
        matches = [i for i, (_, cont) in enumerate(sample["arguments"]) if cont == delimiter + target]
        return matches[0] if len(matches) == 1 else None
    return None


def correct_bits_per_byte(samples: Sequence[dict[str, Any]], delimiter: str = " ") -> float | None:
    """Task loss of a ranked-classification task: the mean over its examples of each example's bits per
    byte of the correct continuation, −log p(correct | context) / ln 2 / (its UTF-8 bytes).

    A mean of per-example ratios, as the OLMo ladder (Bhagia et al. 2024) uses, so a long answer weighs
    no more than a short one. The log-likelihood is the harness's own (``log_samples``: the summed
    log-probability, in nats, of the continuation's tokens), and the continuation is what it scored,
    target delimiter included. None when any example's correct continuation cannot be told (``_gold``).
    """
    if not samples:
        return None
    first_filter = samples[0].get("filter")
    ratios = []
    for sample in samples:
        if sample.get("filter") != first_filter:  # a task with several filters logs each example per filter
            continue
        gold = _gold(sample, delimiter)
        if gold is None:
            return None
        continuation = sample["arguments"][gold][1]
        loglikelihood = sample["filtered_resps"][gold][0]
        ratios.append(-loglikelihood / math.log(2) / len(continuation.encode("utf-8")))
    return sum(ratios) / len(ratios)


def accuracy(metrics: dict[str, float]) -> tuple[str, float] | None:
    """The accuracy the downstream laws fit: length-normalised (``acc_norm``) where the task defines it,
    else ``acc``; None for a task without either (e.g. generation)."""
    name = next((m for m in ("acc_norm", "acc") if m in metrics), None)
    return None if name is None else (name, metrics[name])


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

    A leaf's chance and task loss are known for multiple-choice tasks only. A group's are its leaves'
    weighted by their sample counts (as the harness weights group scores by default), known when every
    leaf's is.
    """
    configs, samples = results.get("configs", {}), results.get("samples", {})
    group_subtasks = results.get("group_subtasks", {})
    n_leaf = {name: n["effective"] for name, n in results.get("n-samples", {}).items()}
    multiple_choice = [name for name, c in configs.items() if c.get("output_type") == "multiple_choice"]
    chance_leaf = {name: chance_accuracy(samples.get(name, [])) for name in multiple_choice}
    loss_leaf = {
        name: correct_bits_per_byte(samples.get(name, []), configs[name].get("target_delimiter", " "))
        for name in multiple_choice
    }

    def by_samples(leaf_values: dict[str, float | None], leaves: list[str]) -> float | None:
        n = sum(n_leaf.get(leaf, 0) for leaf in leaves)
        values = [leaf_values.get(leaf) for leaf in leaves]
        if n == 0 or any(v is None for v in values):
            return None
        return sum(v * n_leaf[leaf] for v, leaf in zip(values, leaves, strict=True)) / n

    now = datetime.now(UTC).isoformat(timespec="seconds")
    harness = f"lm-eval {version('lm_eval')}"
    records: dict[str, dict[str, Any]] = {}
    for name, row in results["results"].items():
        leaves = _leaves(name, group_subtasks)
        metrics = _metrics(row)
        acc = accuracy(metrics)
        records[name] = {
            "metrics": metrics,
            "chance": by_samples(chance_leaf, leaves),
            "task_loss": by_samples(loss_leaf, leaves),
            "accuracy": None if acc is None else acc[1],
            "accuracy_metric": None if acc is None else acc[0],
            "n": sum(n_leaf.get(leaf, 0) for leaf in leaves),
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


def checkpoint_steps(
    kept: dict[int, Path], checkpoints: Sequence[int] | Literal["all"], run_id: str
) -> list[int]:
    """The steps ``checkpoints`` names (``"all"``: every set of weights the run has), refused up front
    (before any export) when the run has no weights at one of them."""
    steps = sorted(kept) if checkpoints == "all" else sorted(set(checkpoints))
    missing = [step for step in steps if step not in kept]
    if missing or not steps:
        raise EvalError(
            f"checkpoints: run {run_id} has no weights at step(s) {missing or steps}; "
            f"it has them at {sorted(kept) or 'no step'}",
            hint="train with keep_checkpoints: true in the sweep spec to keep them at every eval step",
        )
    return steps


def evaluate_run(
    store: ResultsStore,
    run_id: str,
    run_root: str | Path,
    tasks: Sequence[str],
    *,
    checkpoints: Sequence[int] | Literal["all"] | None = None,
    include_path: str | Path | None = None,
    **options: Any,
) -> dict[int, dict[str, dict[str, Any]]]:
    """Evaluate run ``run_id`` on ``tasks``; returns this evaluation's records by step and task.

    ``checkpoints``: None for the final weights of the finished run, else the steps of weights it kept
    (``keep_checkpoints``) or ``"all"`` of them. Each step's records (with their ``step``) are merged into
    the run's ``downstream_checkpoints`` metadata (step -> task -> record) as soon as they are scored, so an
    interrupted evaluation keeps what it finished; the final weights' also into ``downstream`` (task ->
    record, Table 2). Tasks evaluated earlier keep theirs unless evaluated again. ``options`` go to
    ``evaluate_checkpoint`` (device, batch_size, limit, num_fewshot).
    """
    manager = task_manager(include_path)
    check_tasks(tasks, manager)
    final_step = RunConfig.from_dict(store.config(run_id)).steps  # an unknown run fails here, before any work
    steps = (
        [final_step]
        if checkpoints is None
        else checkpoint_steps(kept_weights(Path(run_root) / run_id, final_step), checkpoints, run_id)
    )
    evaluated: dict[int, dict[str, dict[str, Any]]] = {}
    for step in steps:
        with tempfile.TemporaryDirectory(prefix=f"archscale-{run_id}-hf-") as checkpoint:
            export_run(store, run_id, run_root, checkpoint, None if step == final_step else step)
            scored = evaluate_checkpoint(checkpoint, tasks, manager=manager, **options)
        records = {name: {**record, "step": step} for name, record in scored.items()}
        meta = store.meta(run_id)
        by_step = meta.get(DOWNSTREAM_CHECKPOINTS_KEY, {})
        merged = {**by_step.get(str(step), {}), **records}
        store.set_meta(run_id, DOWNSTREAM_CHECKPOINTS_KEY, {**by_step, str(step): merged})
        if step == final_step:
            store.set_meta(run_id, DOWNSTREAM_KEY, {**meta.get(DOWNSTREAM_KEY, {}), **records})
        evaluated[step] = records
    return evaluated


def score_next_sentence(
    store: ResultsStore,
    run_root: str | Path,
    runs: Sequence[RunConfig],
    tasks_dir: str | Path,
    *,
    seed: int = 0,
    items: int = 1000,
    **options: Any,
) -> list[str]:
    """Score the final weights of ``runs`` on ``archscale_next_sentence`` drawn from each run's own corpus
    (``items`` items with ``seed``; its task YAML written under ``tasks_dir``, one folder per corpus), as
    ``evaluate_run`` stores them; returns the runs scored. A run that already has a score for the task is
    skipped, so a resumed study scores only what it has not. ``options`` go to ``evaluate_checkpoint``."""
    todo = [run for run in runs if NEXT_SENTENCE not in store.meta(run.run_id).get(DOWNSTREAM_KEY, {})]
    for dataset in dict.fromkeys(run.dataset for run in todo):
        folder = Path(tasks_dir) / load_corpus(dataset).fingerprint[:12]
        write_next_sentence_task(folder, dataset, seed=seed, items=items)
        for run in todo:
            if run.dataset == dataset:
                evaluate_run(store, run.run_id, run_root, [NEXT_SENTENCE], include_path=folder, **options)
    return [run.run_id for run in todo]
