"""The two-step downstream chain (Bhagia et al. 2024: (N, D) → task loss → accuracy) fitted per task on a
ladder's evaluated checkpoints, for ``archscale fit two-step``, ``archscale plan`` and the report's panel.

A checkpoint table has ``run_id, params, tokens, step, task_loss, accuracy``, for several tasks a ``task``
column, and for a ladder of cooldown branches a ``trajectory`` column (each branch's trunk); a results store
gives it through :func:`~archscale.analysis.downstream.downstream_points`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from archscale.analysis.downstream import DOWNSTREAM_CHECKPOINTS_KEY, downstream_points
from archscale.analysis.errors import AnalysisError
from archscale.analysis.results import fit_summary, jsonable
from archscale.laws.downstream_laws import MIN_SIZES, TRAJECTORY, TwoStepLaw, final_values
from archscale.laws.errors import LawDataError
from archscale.laws.resampling import spawn_seeds
from archscale.store import ResultsStore

TASK_COLUMN = "task"


@dataclasses.dataclass
class TaskChain:
    """One task's chain: the fitted law, or why it could not be fitted; the fit's warnings."""

    task: str | None
    law: TwoStepLaw | None
    skipped: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def task_tables(points: pd.DataFrame) -> dict[str | None, pd.DataFrame]:
    """One checkpoint table per task, in order of first appearance; the whole table (key None) when it
    has no ``task`` column."""
    if TASK_COLUMN not in points:
        return {None: points}
    return {str(task): rows.reset_index(drop=True) for task, rows in points.groupby(TASK_COLUMN, sort=False)}


def fit_chains(
    points: pd.DataFrame, template: TwoStepLaw, chances: Mapping[str, float | None] | None = None
) -> dict[str | None, TaskChain]:
    """Fit ``template`` (a clone per task) on each task's checkpoints. A task's chance accuracy is the
    template's ``chance`` when set, else ``chances[task]`` (what the bridge stored). A task the data cannot
    fit is kept with the reason, so one bad task does not hide the others."""
    chains = {}
    tables = task_tables(points)
    for (task, table), task_seed in zip(tables.items(), spawn_seeds(template.seed, len(tables)), strict=True):
        chance = template.chance if template.chance is not None else (chances or {}).get(task)
        law = dataclasses.replace(template, chance=chance, seed=task_seed)  # each task resamples on its own
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                law.fit(table)
            except LawDataError as error:
                chains[task] = TaskChain(task, None, skipped=str(error))
                continue
        chains[task] = TaskChain(task, law, warnings=[str(w.message) for w in caught])
    return chains


def ladder_points(
    store: ResultsStore, kind: str | None = None
) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """The store's evaluated checkpoints with a task loss and an accuracy (of one family, ``kind``), with
    each run's ``kind``, and each task's chance accuracy as the bridge stored it. A ladder is one family:
    a store of dense and MoE points needs ``kind``."""
    runs = store.runs()
    points = downstream_points(store).dropna(subset=["task_loss", "accuracy"])
    points["kind"] = points["run_id"].map(runs.set_index("run_id")["kind"])
    kinds = sorted(points["kind"].unique())
    if kind is None and len(kinds) > 1:
        raise AnalysisError(
            f"the store holds downstream points of {' and '.join(kinds)} runs; a ladder is one family: "
            "choose one (--kind dense or --kind moe)"
        )
    if kind is not None:
        points = points[points["kind"] == kind]
    if points.empty:
        raise AnalysisError(
            "no evaluated checkpoints with a task loss and an accuracy"
            + (f" of {kind} runs" if kind else "")
            + ": score a ladder's checkpoints with `archscale eval RUN_ID --tasks … --checkpoints all`"
        )
    chances: dict[str, float | None] = {}
    for run_id in points["run_id"].unique():
        for records in store.meta(run_id).get(DOWNSTREAM_CHECKPOINTS_KEY, {}).values():
            for task, record in records.items():
                if chances.get(task) is None:
                    chances[task] = record.get("chance")
    return points.reset_index(drop=True), chances


def chain_forecasts(
    chains: Mapping[str | None, TaskChain], targets: list[tuple[float, float]]
) -> list[dict[str, Any]]:
    """Each target (N, D)'s forecast by every fitted chain (:meth:`TwoStepLaw.forecast`): the forecast
    itself for a single task, else ``tasks`` with one forecast (or the reason it has none) per task."""
    out = []
    for params, tokens in targets:
        by_task = {
            task: chain.law.forecast(params, tokens) if chain.law else {"skipped": chain.skipped}
            for task, chain in chains.items()
        }
        if len(by_task) == 1:
            ((task, forecast),) = by_task.items()
            out.append({"params": params, "tokens": tokens, "task": task} | forecast)
        else:
            out.append({"params": params, "tokens": tokens, "tasks": by_task})
    return out


@dataclasses.dataclass
class DownstreamPanel:
    """The report's downstream panel for one family: the chain per task fitted on the ladder's smaller
    sizes (all of them when the family has exactly ``MIN_SIZES``), each task's forecast of the largest
    size's runs beside what they measured."""

    family: str
    sizes: list[float]
    held_out: bool
    points: pd.DataFrame
    chains: dict[str | None, TaskChain]
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the fits as the report shows them, not the law objects or the raw points."""
        return jsonable({
            "family": self.family,
            "sizes": self.sizes,
            "held_out": self.held_out,
            "fits": {
                str(task): {"fit": fit_summary(c.law), "unpredictable": c.law.unpredictable_,
                            "chance": c.law.chance} if c.law else {"skipped": c.skipped}
                for task, c in self.chains.items()
            },
            "predictions": self.rows,
        })  # fmt: skip


def downstream_panels(
    store: ResultsStore, runs: pd.DataFrame, *, bootstrap: int, seed: int
) -> tuple[list[DownstreamPanel], str | None]:
    """The panels of every family with checkpoint-level downstream points for ≥ ``MIN_SIZES`` model sizes,
    or, when there are none, why not (one line)."""
    panels, counts = [], {}
    for family in sorted(runs["kind"].unique()):
        try:
            points, chances = ladder_points(store, kind=family)
        except AnalysisError:
            counts[family] = 0
            continue
        sizes = sorted(points["params"].unique())
        counts[family] = len(sizes)
        if len(sizes) >= MIN_SIZES:
            panels.append(_panel(family, points, chances, sizes, bootstrap, seed))
    if panels:
        return panels, None
    if not any(counts.values()):
        return [], (
            "No evaluated checkpoints with a task loss are stored, so no downstream law is fitted: score a "
            "ladder's checkpoints with `archscale eval RUN_ID --tasks … --checkpoints all`."
        )
    held = ", ".join(f"{family} {n}" for family, n in counts.items())
    return (
        [],
        f"The two-step downstream chain needs checkpoints of ≥ {MIN_SIZES} model sizes of a family; the store has {held}.",
    )


def _panel(
    family: str,
    points: pd.DataFrame,
    chances: dict[str, float | None],
    sizes: list[float],
    bootstrap: int,
    seed: int,
) -> DownstreamPanel:
    """Fit on the sizes below the largest when that leaves ``MIN_SIZES`` (a real out-of-sample forecast),
    else on all; forecast each of the largest size's runs at its final tokens."""
    largest = sizes[-1]
    held_out = len(sizes) > MIN_SIZES
    ladder = points[points["params"] < largest] if held_out else points
    columns = ["run_id", "params", "tokens", "step", "task_loss", "accuracy", TRAJECTORY, TASK_COLUMN]
    chains = fit_chains(ladder[columns], TwoStepLaw(bootstrap=bootstrap, seed=seed), chances)
    rows = []
    for task, table in task_tables(points[points["params"] == largest][columns]).items():
        chain = chains.get(task)
        for measured in final_values(table).itertuples():
            forecast = chain.law.forecast(measured.params, measured.tokens) if chain and chain.law else {}
            rows.append(
                {"task": task, "run_id": measured.run_id, "params": measured.params, "tokens": measured.tokens,
                 "measured_accuracy": measured.accuracy, "measured_task_loss": measured.task_loss, **forecast,
                 "skipped": chain.skipped if chain else "not evaluated on the smaller sizes"}
            )  # fmt: skip
    return DownstreamPanel(family, [float(s) for s in sizes], held_out, points, chains, rows)
