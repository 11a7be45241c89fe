"""The ladder planner's noise model measured on the user's own runs: repeated seeds of one configuration.

Runs whose stored configurations differ only in ``seed`` are repeats. Each repeat's smoothed loss (as the law
points read it: :func:`~archscale.analysis.points.smooth`) is read at the same log-spaced steps after the
warm-up, and the log losses ``y[s, t]`` of a group are split as ``m(t) + u_s + e_{s,t}``: a run effect ``u``
shared by a seed's points and point noise ``e``. With S seeds and T points, the two-way analysis of variance
gives ``s² = SS_residual / ((S − 1)(T − 1))`` and ``τ² = (T·Var(seed means) − s²) / T``; groups are pooled by
their degrees of freedom.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from archscale.analysis.points import (
    SMOOTHING_WINDOW,
    finished_runs,
    require_columns,
    smooth,
    stored_models,
    usable_from,
)
from archscale.laws.ladder import LadderNoise


def _repeat_groups(runs: pd.DataFrame) -> list[list[str]]:
    """Run ids of each configuration run with two seeds or more."""
    keys = [  # the model as stored_models fills it: a run stored before a field existed repeats one after
        json.dumps(
            {k: v for k, v in json.loads(c).items() if k not in ("seed", "model")} | {"model": model},
            sort_keys=True,
        )
        for c, model in zip(runs["config"], stored_models(runs), strict=True)
    ]
    groups = pd.Series(runs["run_id"].to_numpy()).groupby(keys, sort=False).agg(list)
    return [ids for ids in groups if len(ids) >= 2]


def seed_noise(
    runs: pd.DataFrame, curve: pd.DataFrame, *, points_per_run: int = 24, window: int = SMOOTHING_WINDOW
) -> LadderNoise | None:
    """τ (run effect) and s (point noise) of log loss from the store's repeated seeds; None without repeats."""
    require_columns(runs, ("run_id", "config", "status"), "runs")
    require_columns(curve, ("run_id", "step", "tokens", "lm_loss"), "curve")
    groups = _repeat_groups(finished_runs(runs))
    ss_between = ss_within = df_between = df_within = 0.0
    weighted_points = 0.0
    used: list[list[str]] = []
    for ids in groups:
        rows = smooth(curve[curve["run_id"].isin(ids)], window)
        start = float(usable_from(rows, window).max())
        losses = rows.pivot_table(index="step", columns="run_id", values="lm_loss").dropna()
        tokens = rows.groupby("step")["tokens"].first().reindex(losses.index)
        losses = losses[tokens.to_numpy() >= start]
        if len(losses) < 2:
            continue
        log_tokens = np.log(tokens.loc[losses.index].to_numpy(dtype=float))
        picked = np.unique(
            np.abs(log_tokens[:, None] - np.linspace(log_tokens[0], log_tokens[-1], points_per_run)).argmin(0)
        )
        y = np.log(losses.iloc[picked].to_numpy(dtype=float)).T  # seeds × points
        seeds, points = y.shape
        residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        ss_within += float(np.sum(residual**2))
        df_within += (seeds - 1) * (points - 1)
        ss_between += points * float(np.sum((y.mean(axis=1) - y.mean()) ** 2))
        df_between += seeds - 1
        weighted_points += points * (seeds - 1)
        used.append(ids)
    if df_between == 0 or df_within == 0:
        return None
    s2 = ss_within / df_within
    points = weighted_points / df_between  # T, averaged over groups by their weight in the between sum
    tau2 = max((ss_between / df_between - s2) / points, 0.0)
    n_runs = sum(len(ids) for ids in used)
    return LadderNoise(
        float(np.sqrt(tau2)),
        float(np.sqrt(s2)),
        f"measured on {len(used)} configuration(s) run with several seeds ({n_runs} runs; "
        f"{df_between:.0f} between-seed degrees of freedom)",
    )
