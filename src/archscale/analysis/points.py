"""Reading training curves the way the paper does: smoothed, warm-up skipped, sampled log-spaced in tokens.

The tables are the results store's (``store.runs()``, ``store.curve()``) or CSVs with the same columns:

- runs: ``run_id``, ``kind`` (``dense``/``moe``), ``N`` (model scale, FLOPs per token), ``n_experts``, and
  for the hyperparameter analysis ``batch_tokens`` (tokens per step) and ``lr`` (peak); ``P`` (parameters)
  is carried into :func:`law_points`; ``status`` when present keeps ``finished`` runs only.
- curve: ``run_id``, ``step``, ``tokens``, ``lm_loss`` (nats/token), optionally ``lr`` (finds the warm-up)
  and ``noise_scale`` (B_simple in tokens).

Smoothing happens on read and is never stored: the store keeps what the trainer measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from archscale.analysis.errors import AnalysisError
from archscale.models.config import DESIGN_DEFAULTS, PARAMETRIZATION_DEFAULTS
from archscale.quantities import law_names, quantity

if TYPE_CHECKING:
    from archscale.store import ResultsStore

FAMILIES: tuple[str, ...] = ("dense", "moe")
SMOOTHING_WINDOW = 10  # steps: the paper's "Gaussian smoothing with a 10-step window length" (App. A)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """Raise an :class:`AnalysisError` naming the missing columns of ``table`` and how to supply them."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise AnalysisError(
            f"the {table} table lacks column(s) {missing} (it has {list(frame.columns)}); pass the results "
            f"store's {table}() frame or rename your columns to these names"
        )


def check_one_corpus(runs: pd.DataFrame, allow_mixed: bool = False) -> None:
    """Refuse runs trained on different corpora (column ``corpus``: the corpus fingerprint each run stored),
    unless ``allow_mixed``: a law fitted across two corpora mixes two data distributions without saying so
    (a rebuilt corpus with newer source packages is a different corpus)."""
    if allow_mixed or "corpus" not in runs:
        return
    counts = runs["corpus"].dropna().value_counts()
    if len(counts) > 1:
        found = ", ".join(f"{fingerprint[:12]} ({n} runs)" for fingerprint, n in counts.items())
        raise AnalysisError(
            f"the runs were trained on {len(counts)} different corpora ({found}); analyse the runs of one "
            "corpus (a store per corpus, or filter runs.corpus), or allow it explicitly "
            "(allow_mixed_corpora=True; CLI: --allow-mixed-corpora)"
        )


def finished_runs(runs: pd.DataFrame, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Runs that finished (all of them when there is no ``status`` column), with ``kind`` checked."""
    require_columns(runs, ("run_id", "kind", "N", "n_experts", *columns), "runs")
    if "status" in runs:
        runs = runs[runs["status"] == "finished"]
    unknown = sorted(set(runs["kind"]) - set(FAMILIES))
    if unknown:
        raise AnalysisError(f"runs.kind must be 'dense' or 'moe'; got {unknown}: relabel those runs")
    return runs.reset_index(drop=True)


def smooth(curve: pd.DataFrame, window: int = SMOOTHING_WINDOW, columns: Sequence[str] = ("lm_loss",)):
    """A copy of ``curve`` (sorted by run and step) with ``columns`` Gaussian-smoothed within each run.

    The kernel spans ``window`` steps (offsets −window/2 … +window/2) with σ = window/4, so ±2σ fills the
    window. Near the ends of a run and around missing values the weights are renormalised over the points
    present, so smoothing neither drags the first steps towards zero nor shifts the curve; a missing value
    stays missing. ``window=1`` returns the values unchanged.
    """
    require_columns(curve, ("run_id", "step", *columns), "curve")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise AnalysisError(
            f"window must be a whole number of steps >= 1 (the paper uses 10), got {window!r}"
        )
    half = window // 2
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / (window / 4)) ** 2)
    out = curve.sort_values(["run_id", "step"]).reset_index(drop=True)
    groups = out.groupby("run_id", sort=False).indices
    for column in columns:
        values = out[column].to_numpy(dtype=float)
        smoothed = np.full_like(values, np.nan)
        for rows in groups.values():
            v = values[rows]
            present = np.isfinite(v)
            total = np.convolve(np.where(present, v, 0.0), kernel)[half : half + len(v)]
            weight = np.convolve(present.astype(float), kernel)[half : half + len(v)]
            smoothed[rows] = np.where(present, total / np.where(weight > 0, weight, 1.0), np.nan)
        out[column] = smoothed
    return out


def usable_from(curve: pd.DataFrame, min_steps: int = 0) -> pd.Series:
    """Tokens at which each run's learning rate first reaches its peak, and at least ``min_steps`` steps in
    (pass the smoothing window, so that no point used was smoothed over a truncated window). Without an
    ``lr`` column only ``min_steps`` counts."""
    require_columns(curve, ("run_id", "step", "tokens"), "curve")
    ordered = curve.sort_values(["run_id", "step"])
    settled = ordered["step"] >= ordered.groupby("run_id")["step"].transform("min") + min_steps
    if "lr" in ordered and ordered["lr"].notna().any():
        peak = ordered.groupby("run_id")["lr"].transform("max")
        settled &= ordered.groupby("run_id")["lr"].cummax() >= peak * (1 - 1e-9)
    return ordered[settled].groupby("run_id")["tokens"].first().astype(float)


def log_spaced_rows(curve: pd.DataFrame, n: int, start: pd.Series) -> pd.DataFrame:
    """Per run, the rows nearest (in log tokens) to ``n`` log-spaced token counts from ``start[run]`` to its
    last point: an even weight per decade, so a fit is not dominated by the many late steps."""
    if n < 2:
        raise AnalysisError(f"points_per_run must be >= 2, got {n}")
    picked = []
    for run_id, rows in curve.groupby("run_id", sort=False):
        rows = rows[rows["tokens"] >= start.get(run_id, 0.0)]
        rows = rows[rows["tokens"] > 0]
        if rows.empty:
            continue
        log_tokens = np.log(rows["tokens"].to_numpy(dtype=float))
        targets = np.linspace(log_tokens[0], log_tokens[-1], n)
        nearest = np.abs(log_tokens[:, None] - targets[None, :]).argmin(axis=0)
        picked.append(rows.iloc[np.unique(nearest)])
    return pd.concat(picked, ignore_index=True) if picked else curve.iloc[:0]


def at_tokens(tokens: np.ndarray, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``values`` interpolated linearly in log tokens at ``targets``; NaN outside the run's range."""
    keep = np.isfinite(values) & (tokens > 0)
    tokens, values = tokens[keep], values[keep]
    if len(tokens) == 0:
        return np.full(len(targets), np.nan)
    out = np.interp(np.log(targets), np.log(tokens), values)
    return np.where((targets >= tokens[0]) & (targets <= tokens[-1]), out, np.nan)


def budget_labels(tokens: pd.Series, tolerance: float = 0.1) -> pd.Series:
    """Label each run's trained tokens with its budget: values within ``tolerance`` of the smallest of a
    cluster share it (a run trains whole steps, so one budget gives slightly different D per batch size)."""
    labels = pd.Series(np.nan, index=tokens.index)
    anchor = None
    for index, value in tokens.sort_values().items():
        if anchor is None or value > anchor * (1 + tolerance):
            anchor = value
        labels[index] = anchor
    return labels


def final_points(curve: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The last row of each run with a finite ``loss``: ``run_id``, ``tokens``, ``loss``."""
    rows = curve[np.isfinite(curve[loss].to_numpy(dtype=float))].sort_values(["run_id", "tokens"])
    last = rows.groupby("run_id").tail(1)
    return pd.DataFrame({"run_id": last["run_id"], "tokens": last["tokens"], "loss": last[loss]})


def representative_runs(runs: pd.DataFrame, finals: pd.DataFrame) -> pd.DataFrame:
    """One run per model (kind, N, E) for the loss-law and generalisation analyses: among its runs with the
    longest budget (final tokens within 10 % of the longest), the one with the lowest final loss — so
    grid runs with poor hyperparameters do not stand in for the model size."""
    table = runs.merge(finals, on="run_id")
    if table.empty:
        return runs.iloc[:0]
    model = ["kind", "N", "n_experts"]
    longest = table.groupby(model)["tokens"].transform("max")
    table = table[table["tokens"] >= longest / 1.1]
    best = table.loc[table.groupby(model)["loss"].idxmin(), "run_id"]
    return runs[runs["run_id"].isin(best)].reset_index(drop=True)


def _points_table(rows: pd.DataFrame, runs: pd.DataFrame, loss: str) -> pd.DataFrame:
    """``rows`` (``run_id``, ``tokens``, ``loss``) joined to their runs' kind, N and E, in the laws' names."""
    table = rows[["run_id", "tokens", loss]].merge(runs[["run_id", "kind", "N", "n_experts"]])
    table = table.rename(columns=law_names("runs", "N", "n_experts") | {loss: quantity("loss").law})
    table["tokens"] = table["tokens"].astype(float)
    table["experts"] = table["experts"].astype(float)
    return table[["run_id", "kind", "model_scale", "experts", "tokens", "loss"]]


def loss_points(
    runs: pd.DataFrame, curve: pd.DataFrame, *, points_per_run: int = 24, window: int = SMOOTHING_WINDOW
) -> pd.DataFrame:
    """The loss-law table of the paper's Figure 1: smoothed training loss of one run per model size, at
    ``points_per_run`` log-spaced token counts after the warm-up.

    Columns: ``run_id``, ``kind``, ``model_scale`` (N), ``experts`` (E), ``tokens`` (D), ``loss``.
    """
    runs = finished_runs(runs)
    require_columns(curve, ("run_id", "step", "tokens", "lm_loss"), "curve")
    curve = smooth(curve[curve["run_id"].isin(runs["run_id"])], window)
    chosen = representative_runs(runs, final_points(curve, "lm_loss"))
    curve = curve[curve["run_id"].isin(chosen["run_id"])]
    rows = log_spaced_rows(curve, points_per_run, usable_from(curve, window))
    rows = rows[np.isfinite(rows["lm_loss"].to_numpy(dtype=float))]
    return _points_table(rows, chosen, "lm_loss")


def budget_points(runs: pd.DataFrame, curve: pd.DataFrame, *, window: int = SMOOTHING_WINDOW) -> pd.DataFrame:
    """One point per model and token budget: the smoothed training loss at the end of that budget's best
    run. This is how a WSD ladder with cooldown branches is read: only the end of a decay is a finished
    point at its budget (the stable phase of a longer run is not), so each branch end counts as a run of
    its budget.

    Columns as :func:`loss_points`.
    """
    runs = finished_runs(runs)
    require_columns(curve, ("run_id", "step", "tokens", "lm_loss"), "curve")
    ends = final_points(smooth(curve[curve["run_id"].isin(runs["run_id"])], window), "lm_loss")
    table = runs.merge(ends, on="run_id")
    if table.empty:
        return _points_table(ends, runs, "loss")
    model = ["kind", "N", "n_experts"]
    table["budget"] = table.groupby(model)["tokens"].transform(budget_labels)
    best = table.loc[table.groupby([*model, "budget"])["loss"].idxmin()]
    return _points_table(best[["run_id", "tokens", "loss"]], runs, "loss")


POINT_RULES: dict[str, str] = {
    "curves": "smoothed curves, one run per model size",
    "budgets": "the end of each token budget's best run (cooldown branches counted as runs)",
    "final": "final point of every finished run",
}
"""The rules of :func:`law_points`, each with the phrase that names it in a fit's output."""


def points_rule(runs: pd.DataFrame, rule: str = "auto") -> str:
    """``rule``, or for ``"auto"``: ``"budgets"`` when some run is a cooldown branch of another (column
    ``trunk``, from the store's lineage), else ``"curves"``."""
    if rule == "auto":
        branched = "trunk" in runs and (runs["trunk"] != runs["run_id"]).any()
        return "budgets" if branched else "curves"
    if rule not in POINT_RULES:
        raise AnalysisError(f"rule must be 'auto' or one of {list(POINT_RULES)}, got {rule!r}")
    return rule


def stored_models(runs: pd.DataFrame) -> list[dict]:
    """Each run's stored ModelConfig as a mapping, the design fields filled in for runs stored before them."""
    return [DESIGN_DEFAULTS | PARAMETRIZATION_DEFAULTS | json.loads(c)["model"] for c in runs["config"]]


_RUN_EXTRAS: dict[str, str] = law_names("runs", "P", "P_active", "batch_tokens", "lr")
"""Runs-table columns that :func:`law_points` carries over when present, under the laws' names
(:mod:`archscale.quantities`): the laws' ``batch_size`` is the store's ``batch_tokens`` (tokens per step;
the store's ``batch_size`` counts sequences), and ``active_params`` the store's ``P_active``, which excludes
the embedding and LM head."""


def law_points(
    runs: pd.DataFrame,
    curve: pd.DataFrame,
    *,
    rule: str = "auto",
    points_per_run: int = 24,
    window: int = SMOOTHING_WINDOW,
) -> pd.DataFrame:
    """The points the scaling laws are fitted on, read from the runs and curves by one rule — one function,
    so that ``archscale fit --data STORE`` and the report fit the same points.

    - ``"curves"``: :func:`loss_points` — one run per model size: among its runs with the
      longest budget, the lowest final loss, so grid cells with poor hyperparameters do not stand in for
      the size; its smoothed loss at ``points_per_run`` log-spaced token counts after the warm-up.
    - ``"budgets"``: :func:`budget_points` — one point per model and budget; ``run_id`` is then the run's
      trunk (column ``trunk``), so the laws' noise model treats a trunk and its branches, which share their
      stable phase, as one unit.
    - ``"auto"`` (the report's): ``budgets`` for a ladder with cooldown branches, else ``curves``.
    - ``"final"``: the last measured (unsmoothed) ``lm_loss`` of every finished run, poor grid cells
      included; ``points_per_run`` and ``window`` do not apply.

    Columns: ``run_id``, ``kind``, ``model_scale`` (N), ``params`` (P), ``experts`` (E), ``tokens`` (D),
    ``loss``, ``compute`` (N·D), ``batch_size`` (tokens per step: the runs' ``batch_tokens``, not their
    ``batch_size`` in sequences), ``lr``, ``active_params`` (the runs' ``P_active``: non-embedding, so
    not the N_act of Ludziejewski et al. 2025's published coefficients, which counts the embedding and
    unembedding), ``granularity`` (G) and ``sparsity`` (S) — those after ``compute`` when the runs table
    has ``P``, ``batch_tokens``, ``lr``, ``P_active`` and ``config``. Names and units:
    :mod:`archscale.quantities`.
    """
    rule = points_rule(runs, rule)
    if rule == "curves":
        points = loss_points(runs, curve, points_per_run=points_per_run, window=window)
    elif rule == "budgets":
        points = budget_points(runs, curve, window=window)
    else:
        finished = finished_runs(runs)
        require_columns(curve, ("run_id", "tokens", "lm_loss"), "curve")
        finals = final_points(curve[curve["run_id"].isin(finished["run_id"])], "lm_loss")
        points = _points_table(finals, finished, "loss")
    extras = runs[["run_id", *(c for c in _RUN_EXTRAS if c in runs)]].rename(columns=_RUN_EXTRAS)
    if "config" in runs:  # MoE design knobs live in the stored config (dense and older runs: G = 1)
        models = stored_models(runs)
        extras["granularity"] = [float(m["granularity"]) for m in models]
        extras["sparsity"] = [1.0 - m["top_k"] / m["n_experts"] for m in models]  # S = (E - K)/E
    points = points.merge(extras, on="run_id", how="left")  # a left merge keeps the points' order
    points["compute"] = points["model_scale"] * points["tokens"]
    if rule == "budgets" and "trunk" in runs:
        points["run_id"] = points["run_id"].map(dict(zip(runs["run_id"], runs["trunk"], strict=True)))
    return points


def store_runs(store: ResultsStore) -> pd.DataFrame:
    """The store's runs with ``corpus`` (the fingerprint of the corpus each run trained on; None when the
    run did not record one), ``epochs`` (how often it went over its data), ``trunk`` (the run whose stable
    phase a cooldown branch shares; itself otherwise) and ``branch_step`` (the steps it shares; 0 for a
    trunk)."""
    runs = store.runs()
    meta = [store.meta(run_id) for run_id in runs["run_id"]]
    runs["corpus"] = [m.get("data", {}).get("corpus") for m in meta]
    runs["epochs"] = [m.get("data", {}).get("epochs") for m in meta]
    branches = [m.get("branch", {}) for m in meta]
    runs["trunk"] = [b.get("trunk_id", run_id) for b, run_id in zip(branches, runs["run_id"], strict=True)]
    runs["branch_step"] = [b.get("step", 0) for b in branches]
    return runs
