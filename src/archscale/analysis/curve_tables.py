"""Stored runs as the whole-curve laws read them: one row per step of each run's *planned* schedule.

A stored config fixes the learning rate of every step a run will take (warm-up, cosine, WSD, constant;
``archscale.training.schedules``), so the table runs to the planned last step even for a run that has not
got there: the rows it has not reached carry the rate and no loss, and a curve law fitted on the rest
predicts where it will end. Losses are the paper's smoothed training losses (10-step Gaussian window), and
only after the warm-up, where the laws apply. A cooldown branch's stored curve is its trunk's up to the
branch point and its own decay after it, so it reads like any run.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from archscale.analysis.errors import AnalysisError
from archscale.analysis.points import SMOOTHING_WINDOW, require_columns, smooth, store_runs
from archscale.laws import AnnealingLaw, Law, LawDataError, MultiPowerLaw
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.resampling import spawn_seeds
from archscale.store import ResultsStore
from archscale.training.schedules import lr_multiplier


def schedule_rates(
    steps: int,
    peak: float,
    *,
    warmup_steps: int,
    schedule: str,
    decay_fraction: float = 0.2,
    min_lr_ratio: float = 0.1,
) -> np.ndarray:
    """η_1 … η_T of an archscale schedule (``archscale.training.schedules``) with peak rate ``peak``."""
    multipliers = [
        lr_multiplier(
            s,
            steps=steps,
            warmup_steps=warmup_steps,
            schedule=schedule,
            decay_fraction=decay_fraction,
            min_lr_ratio=min_lr_ratio,
        )
        for s in range(steps)
    ]
    return peak * np.asarray(multipliers)


def planned_rates(config: Mapping[str, Any]) -> np.ndarray:
    """η_1 … η_T: the learning rate of each of the run's planned steps (``RunConfig.to_dict()``)."""
    return schedule_rates(
        int(config["tokens"]) // (int(config["batch_size"]) * int(config["seq_len"])),
        float(config["lr"]),
        warmup_steps=int(config["warmup_steps"]),
        schedule=config["schedule"],
        decay_fraction=float(config["decay_fraction"]),
        min_lr_ratio=float(config["min_lr_ratio"]),
    )


def planned_run(
    law: Law, rates: np.ndarray, *, size: float | None = None, final_only: bool = False
) -> pd.DataFrame:
    """The per-step table of one run with rates ``rates`` as ``law`` reads it: with its model ``size`` for a
    law across sizes (curve-ladder); ``final_only`` marks the last step alone to be predicted (a loss of 1
    there, empty elsewhere), so a long run costs one point, not its whole curve."""
    table = pd.DataFrame({"run_id": "planned", "step": np.arange(1, len(rates) + 1), "lr": rates})
    column = getattr(law, "size_column", None)
    if column is not None:
        if size is None:
            raise LawDataError(f"the {law.name} law predicts at a model size: give the run's {column}")
        table[column] = float(size)
    if final_only:
        table["loss"] = np.where(table["step"] == len(rates), 1.0, np.nan)
    return table


def predict_curve(law: Law, rates: np.ndarray, *, size: float | None = None) -> np.ndarray:
    """The loss after each step of a run with per-step rates ``rates`` (of model ``size`` for a law across
    sizes), by a fitted whole-curve law."""
    return law.predict(planned_run(law, rates, size=size))


def predict_final(law: Law, rates: np.ndarray, *, size: float | None = None) -> float:
    """The loss after the last step of a run with per-step rates ``rates``: :func:`predict_curve`'s last
    value, computed at that step alone."""
    return float(law.predict(planned_run(law, rates, size=size, final_only=True))[0])


def final_interval(
    law: Law, rates: np.ndarray, *, size: float | None = None
) -> tuple[list[float] | None, str | None]:
    """The prediction interval of a new run's final loss under ``rates`` when the fit was bootstrapped, else
    ``None`` and the reason there is none."""
    if law.bootstrap_ is None:
        return None, law.no_interval_ or "the fit was not bootstrapped (fit it with --bootstrap K)"
    lower, upper = law.predict_interval(planned_run(law, rates, size=size, final_only=True), new_run=True)
    return [float(lower[0]), float(upper[0])], None


DECAY_FRACTIONS = tuple(np.round(np.arange(0.05, 0.51, 0.05), 2))


def best_decay_fraction(
    law: Law,
    steps: int,
    peak: float,
    *,
    warmup_steps: int,
    min_lr_ratio: float = 0.1,
    size: float | None = None,
) -> tuple[float, dict[float, float]]:
    """The WSD decay fraction (of 0.05, 0.10, … 0.50) whose predicted final loss is lowest, and the final
    loss at each fraction (at model ``size`` for a law across sizes)."""
    finals = {}
    for fraction in DECAY_FRACTIONS:
        rates = schedule_rates(steps, peak, warmup_steps=warmup_steps, schedule="wsd",
                               decay_fraction=float(fraction), min_lr_ratio=min_lr_ratio)  # fmt: skip
        finals[float(fraction)] = predict_final(law, rates, size=size)
    return min(finals, key=finals.__getitem__), finals


def schedule_choice(
    law: Law,
    steps: int,
    peak: float,
    *,
    warmup_steps: int,
    min_lr_ratio: float = 0.1,
    size: float | None = None,
) -> dict[str, Any]:
    """What a planned run's schedule should be by a whole-curve law: the WSD decay fraction it prefers
    (:func:`best_decay_fraction`), the final loss then and under cosine (the same peak, warm-up and floor),
    and the law's prediction interval of a new run's final loss under that WSD schedule when the fit was
    bootstrapped (else ``no_interval`` says why there is none)."""
    best, finals = best_decay_fraction(law, steps, peak, warmup_steps=warmup_steps,
                                       min_lr_ratio=min_lr_ratio, size=size)  # fmt: skip
    common = {"warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio}
    cosine = predict_final(law, schedule_rates(steps, peak, schedule="cosine", **common), size=size)
    rates = schedule_rates(steps, peak, schedule="wsd", decay_fraction=best, **common)
    interval, no_interval = final_interval(law, rates, size=size)
    return {
        "law": law.name, "steps": steps, "lr": peak, "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
        "wsd_decay_fraction": best, "wsd_final_loss": finals[best], "wsd_final_interval": interval,
        "no_interval": no_interval, "cosine_final_loss": cosine, "wsd_final_loss_by_fraction": finals,
    }  # fmt: skip


def step_table(
    runs: pd.DataFrame,
    curve: pd.DataFrame,
    configs: Mapping[str, Mapping[str, Any]],
    *,
    window: int = SMOOTHING_WINDOW,
) -> pd.DataFrame:
    """``run_id``, ``model`` (its name), ``kind``, ``trunk`` (the run whose stable phase a cooldown branch
    shares, when ``runs`` has the column; else the run itself), ``params`` (non-embedding parameters),
    ``model_scale`` (training FLOPs per token), ``status``, ``step`` (1 … planned steps), ``tokens`` (trained after that step),
    ``lr`` and ``loss`` (the smoothed training loss at the steps after the warm-up that the run has reached)
    for every run in ``runs`` (the store's runs table; ``configs``: run id → stored config)."""
    require_columns(runs, ("run_id", "model_name", "kind", "N", "P", "status"), "runs")
    require_columns(curve, ("run_id", "step", "lm_loss"), "curve")
    smoothed = smooth(curve[curve["run_id"].isin(runs["run_id"])], window)
    by_run = dict(tuple(smoothed.groupby("run_id")))
    frames = []
    for run in runs.itertuples():
        config = configs[run.run_id]
        rates = planned_rates(config)
        step = np.arange(1, len(rates) + 1)
        loss = np.full(len(rates), np.nan)
        measured = by_run.get(run.run_id)
        if measured is not None:
            steps = measured["step"].to_numpy()
            keep = (steps > int(config["warmup_steps"])) & (steps <= len(rates))
            loss[steps[keep] - 1] = measured["lm_loss"].to_numpy()[keep]
        frames.append(
            pd.DataFrame(
                {
                    "run_id": run.run_id,
                    "model": run.model_name,
                    "kind": run.kind,
                    "trunk": getattr(run, "trunk", run.run_id),
                    "params": run.P,
                    "model_scale": run.N,
                    "status": run.status,
                    "step": step,
                    "tokens": step * int(config["batch_size"]) * int(config["seq_len"]),
                    "lr": rates,
                    "loss": loss,
                }
            )
        )
    if not frames:
        columns = [
            "run_id",
            "model",
            "kind",
            "trunk",
            "params",
            "model_scale",
            "status",
            "step",
            "tokens",
            "lr",
            "loss",
        ]
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def store_step_table(store: ResultsStore, *, kind: str | None = None) -> pd.DataFrame:
    """:func:`step_table` of every run in ``store`` (of one family with ``kind``)."""
    runs = store_runs(store)
    if kind:
        runs = runs[runs["kind"] == kind]
    if runs.empty:
        raise AnalysisError(f"{store.path}: no {kind + ' ' if kind else ''}runs to read curves from")
    configs = {run_id: store.config(run_id) for run_id in runs["run_id"]}
    return step_table(runs, store.curve(), configs)


def _final_observed(rows: pd.DataFrame) -> tuple[int, float]:
    measured = rows.dropna(subset=["loss"])
    return int(measured["step"].iloc[-1]), float(measured["loss"].iloc[-1])


def predicted_ends(table: pd.DataFrame, law: Law) -> pd.DataFrame:
    """Where each run that has not finished will end: ``law`` (a whole-curve law, cloned per model; give it
    ``bootstrap=K`` for intervals) fitted on every run of its model, evaluated at its planned last step.
    Columns ``run_id``, ``params``, ``reached`` (last smoothed step), ``steps`` (planned), ``predicted``, and
    ``lower``, ``upper`` (the prediction interval of a new run's final loss: a fresh run effect, so it errs
    wide for a run the fit has partly seen) or ``no_interval`` (why there is none). Diverged runs are left
    out of the fits; each model's fit draws from its own seed stream."""
    rows = []
    models = list(table.groupby("model"))
    for (_, size), model_seed in zip(models, spawn_seeds(law.seed, len(models)), strict=True):
        open_runs = size[~size["status"].isin(("finished", "diverged"))]["run_id"].unique()
        size = size[size["status"] != "diverged"]  # a diverged curve is not a run the law describes
        if not len(open_runs) or size["loss"].notna().sum() <= len(law.theta_names):
            continue
        fitted = dataclasses.replace(law, seed=model_seed).fit(size)
        for run_id in open_runs:
            run = size[size["run_id"] == run_id]
            if run["loss"].notna().any():
                rates = run["lr"].to_numpy()
                size_value = run[fitted.size_column].iloc[0] if fitted.size_column else None
                interval, no_interval = final_interval(fitted, rates, size=size_value)
                reached, _ = _final_observed(run)
                rows.append({"run_id": run_id, "params": run["params"].iloc[0], "reached": reached,
                             "steps": int(run["step"].iloc[-1]),
                             "predicted": predict_final(fitted, rates, size=size_value),
                             "lower": interval[0] if interval else np.nan,
                             "upper": interval[1] if interval else np.nan, "no_interval": no_interval})  # fmt: skip
    columns = ["run_id", "params", "reached", "steps", "predicted", "lower", "upper", "no_interval"]
    return pd.DataFrame(rows, columns=columns)


def branch_predictions(table: pd.DataFrame, trunks: Mapping[str, str], law: Law) -> pd.DataFrame:
    """Each cooldown branch's final loss predicted from its trunk's curve alone (``trunks``: branch run id →
    trunk run id), beside what the branch measured: ``run_id``, ``trunk_id``, ``step``, ``observed``,
    ``predicted``, ``error`` (predicted / observed − 1)."""
    rows = []
    for branch, trunk in trunks.items():
        trunk_rows, branch_rows = table[table["run_id"] == trunk], table[table["run_id"] == branch]
        if trunk_rows["loss"].notna().sum() <= len(law.theta_names) or branch_rows["loss"].isna().all():
            continue
        fitted = law.clone().fit(trunk_rows)
        step, observed = _final_observed(branch_rows)
        predicted = float(
            fitted.predict(branch_rows[branch_rows["step"] <= step][["run_id", "step", "lr"]])[-1]
        )
        rows.append({"run_id": branch, "trunk_id": trunk, "step": step, "observed": observed,
                     "predicted": predicted, "error": predicted / observed - 1})  # fmt: skip
    return pd.DataFrame(rows, columns=["run_id", "trunk_id", "step", "observed", "predicted", "error"])


CURVE_LAWS: dict[str, type[ScheduleLaw]] = {"multi-power": MultiPowerLaw, "annealing": AnnealingLaw}


def store_branch_predictions(store: ResultsStore) -> pd.DataFrame:
    """Every finished cooldown branch of ``store`` predicted from its trunk alone by each whole-curve law
    (column ``law``), beside what the branch measured: a check of the curve laws on the study's own runs."""
    runs = store.runs(status="finished")
    trunks = {
        run_id: branch["trunk_id"]
        for run_id in runs["run_id"]
        if (branch := store.meta(run_id).get("branch")) and branch["trunk_id"] in set(runs["run_id"])
    }
    columns = ["law", "run_id", "trunk_id", "step", "observed", "predicted", "error"]
    if not trunks:
        return pd.DataFrame(columns=columns)
    involved = runs[runs["run_id"].isin({*trunks, *trunks.values()})]
    table = step_table(involved, store.curve(), {r: store.config(r) for r in involved["run_id"]})
    with warnings.catch_warnings():  # a trunk's fit on a bound is a fact of the check, reported by its error
        warnings.simplefilter("ignore")
        frames = [
            branch_predictions(table, trunks, law()).assign(law=name) for name, law in CURVE_LAWS.items()
        ]
    return pd.concat(frames, ignore_index=True)[columns]
