"""Downstream task scores, as ``archscale eval`` (the lm-eval bridge) stores them with each run: paper
Table 2, and the (task loss, accuracy) points of the two-step downstream laws (Bhagia et al. 2024).

Each run's ``store.meta(run_id)[DOWNSTREAM_KEY]`` maps a task to the record of its final weights:
``metrics`` (lm-eval's names, ``acc`` and ``acc_stderr`` among them), ``n`` (examples scored), ``chance``
(the accuracy of guessing), ``task_loss`` (bits per byte of the correct continuation), ``accuracy``
(``acc_norm`` where the task defines it, else ``acc``), ``num_fewshot`` and ``step``.
``store.meta(run_id)[DOWNSTREAM_CHECKPOINTS_KEY]`` maps each evaluated step (as text) to such a mapping.
The validation loss beside them (the loss-to-loss route's source) is the held-out eval the training run wrote
at that step (``store.evals``, split ``VAL_SPLIT``, subset ``all``): the weights kept for downstream evals are
kept at exactly those steps. Reading them needs neither lm-eval nor torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from archscale.store import ResultsStore

DOWNSTREAM_KEY = "downstream"
DOWNSTREAM_CHECKPOINTS_KEY = "downstream_checkpoints"
VAL_SPLIT = "test"
"""The split of the held-out eval the training run writes at each eval step (``Trainer._eval``)."""
POINT_COLUMNS: tuple[str, ...] = (
    "run_id", "params", "tokens", "step", "task", "task_loss", "accuracy", "num_fewshot", "trajectory", "val_loss",
)  # fmt: skip


def task_score(record: dict[str, Any]) -> tuple[str, float, float | None] | None:
    """The score a table shows for a task record: (metric, value, standard error), accuracy when present."""
    metrics = record["metrics"]
    names = [m for m in metrics if "_stderr" not in m]
    if not names:
        return None
    name = "acc" if "acc" in names else names[0]
    metric, sep, filt = name.partition(",")
    return name, metrics[name], metrics.get(f"{metric}_stderr{sep}{filt}")


def near_chance(record: dict[str, Any], z: float = 2.0) -> bool | None:
    """Whether accuracy is within ``z`` standard errors of chance; None without accuracy, error or chance."""
    acc, stderr, chance = record["metrics"].get("acc"), record["metrics"].get("acc_stderr"), record["chance"]
    if acc is None or stderr is None or chance is None:
        return None
    return abs(acc - chance) <= z * stderr


def downstream_table(store: ResultsStore, inventory: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per (run of ``inventory``, scored task): model, task, metric, value, error, chance."""
    rows = []
    for run in inventory.itertuples():
        for task, record in sorted(store.meta(run.run_id).get(DOWNSTREAM_KEY, {}).items()):
            score = task_score(record)
            if score is None:
                continue
            metric, value, stderr = score
            rows.append(
                {"run_id": run.run_id, "model": run.model_name, "kind": run.kind, "task": task,
                 "metric": metric, "value": value, "stderr": stderr, "chance": record.get("chance"),
                 "n": record.get("n"), "near_chance": near_chance(record)}
            )  # fmt: skip
    return rows


def downstream_points(store: ResultsStore, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Every evaluated checkpoint of the runs (all stored runs when ``run_ids`` is None) and task, as the
    two-step downstream laws read them: ``POINT_COLUMNS``, sorted by run, task and step.

    ``params`` is P, the non-embedding parameters (all experts), and ``tokens`` the tokens trained up to
    ``step``. ``task_loss`` is empty for tasks without one (generation tasks, or scores stored before the
    bridge recorded it). ``trajectory`` is the trunk of a cooldown branch (the run itself otherwise): a
    ladder of branches scored at their final weights has one checkpoint per run, and step 2 of the chain
    reads a trunk and its branches as one run's checkpoints. ``val_loss`` is the run's held-out loss
    (nats/token) at that step, empty where the store has none.
    """
    runs = store.runs() if run_ids is None else store.runs(run_id=list(run_ids))
    metas = {run_id: store.meta(run_id) for run_id in runs["run_id"]}
    held_out = store.evals(split=VAL_SPLIT, subset="all").set_index(["run_id", "step"])["loss"].to_dict()
    rows = [
        {"run_id": run.run_id, "params": run.P, "tokens": int(step) * run.batch_tokens, "step": int(step),
         "task": task, "task_loss": record.get("task_loss"), "accuracy": record.get("accuracy"),
         "num_fewshot": record.get("num_fewshot"),
         "trajectory": metas[run.run_id].get("branch", {}).get("trunk_id", run.run_id),
         "val_loss": held_out.get((run.run_id, int(step)))}
        for run in runs.itertuples()
        for step, records in metas[run.run_id].get(DOWNSTREAM_CHECKPOINTS_KEY, {}).items()
        for task, record in records.items()
    ]  # fmt: skip
    points = pd.DataFrame(rows, columns=list(POINT_COLUMNS)).astype(
        {"task_loss": float, "accuracy": float, "val_loss": float}
    )
    return points.sort_values(["run_id", "task", "step"], ignore_index=True)
