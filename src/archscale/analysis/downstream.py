"""Paper Table 2: downstream task scores, as ``archscale eval`` (the lm-eval bridge) stores them with each run.

Each run's ``store.meta(run_id)[DOWNSTREAM_KEY]`` maps a task to its record: ``metrics`` (lm-eval's names,
``acc`` and ``acc_stderr`` among them), ``n`` (examples scored) and ``chance`` (the accuracy of guessing).
Reading them needs neither lm-eval nor torch.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from archscale.store import ResultsStore

DOWNSTREAM_KEY = "downstream"


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
