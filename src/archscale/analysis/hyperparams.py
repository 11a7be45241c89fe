"""Analysis 3 (paper Figures 2-5): optimal batch size and learning rate against the loss.

The paper's contour procedure (after Hu et al. 2024, MiniCPM): on a batch-size × LR grid of one model,
for each token count of a log-spaced set common to the grid's runs, the cell with the lowest smoothed
training loss is the optimum. Its batch size is refined along the batch-size slice at that cell's LR (and
its LR along the LR slice at its batch size) by a parabola in log(hyperparameter) through the best cell
and its two neighbours — the minimum of the "fitted curve" of the paper's Figures 2 and 4. A cheaper
cross-shaped design (a batch-size sweep at one LR, an LR sweep at one batch size) works too: each axis is
read along the slice of three or more cells that holds the lowest loss (``sweep_line``). An optimum on
the edge of its slice is only a bound, so it is reported but left out of the fits. Collected over model
sizes, the pairs (L, B_opt) and (L, lr_opt) are fitted with B_opt = λ_B / L^α_B and lr_opt = λ / L^α
(paper Eq. 12 and 15; the fitted ``exponent`` is −α) for dense and MoE, with bootstrap intervals over
model sizes.

``method="minicpm"`` is MiniCPM's variant: for each loss level, the configuration needing the fewest
tokens to reach it (the parabola then goes through log tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from archscale.analysis.compare import Comparison, compare_families
from archscale.analysis.errors import AnalysisError
from archscale.analysis.points import (
    FAMILIES,
    SMOOTHING_WINDOW,
    at_tokens,
    budget_labels,
    finished_runs,
    require_columns,
    smooth,
    usable_from,
)
from archscale.analysis.powerfit import PowerFit, fit_power
from archscale.analysis.results import Result
from archscale.laws import PowerLaw
from archscale.laws.resampling import spawn_seeds
from archscale.quantities import law_names

METHODS: tuple[str, ...] = ("contour", "minicpm")
AXES: dict[str, str] = {"batch_size": "lr", "lr": "batch_size"}  # the axis refined → the one held fixed
MIN_SWEEP = 3  # cells a slice needs to hold an interior optimum


@dataclass
class Heatmap(Result):
    """Smoothed loss over (``axis`` value, tokens) for the runs of one model at ``fixed`` value of the other
    hyperparameter; ``optimum`` is the refined best ``axis`` value per token count (the red line)."""

    kind: str
    model_scale: float
    axis: str
    fixed: float
    values: list[float]
    tokens: list[float]
    loss: list[list[float]]
    optimum: list[float]


@dataclass
class HyperparamResult(Result):
    """Grids found, the optima per token count (or loss level), their power-law fits per family, the
    MoE/dense comparison at equal loss, and the heatmaps. ``cells``: each grid's smoothed loss per
    (batch_size, lr) cell at its last common token count (the grid's ``tokens``), which the comparisons at
    matched size, tokens and compute read (:mod:`archscale.analysis.matched`)."""

    method: str
    skipped: str | None = None
    grids: list[dict] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    batch_optima: list[dict] = field(default_factory=list)
    lr_optima: list[dict] = field(default_factory=list)
    batch_fits: dict[str, PowerFit] = field(default_factory=dict)
    lr_fits: dict[str, PowerFit] = field(default_factory=dict)
    batch_comparison: Comparison | None = None
    lr_comparison: Comparison | None = None
    heatmaps: list[Heatmap] = field(default_factory=list)


def refine(values: pd.Series) -> tuple[float, float, bool]:
    """Optimum of a slice (index: hyperparameter values, data: score to minimise) → (optimum, score there,
    at_edge). Interior minima are refined by the parabola in log(value) through the best point and its
    neighbours; a minimum at the edge of the slice, or beside a missing cell, stays on the grid."""
    values = values.sort_index()
    x, y = np.log(values.index.to_numpy(dtype=float)), values.to_numpy(dtype=float)
    i = int(np.nanargmin(y))
    if i == 0 or i == len(y) - 1 or not np.isfinite(y[i - 1 : i + 2]).all():
        return float(np.exp(x[i])), float(y[i]), True
    a, b, c = np.polyfit(x[i - 1 : i + 2], y[i - 1 : i + 2], 2)
    if a <= 0:  # the three points are level: no curvature to refine with
        return float(np.exp(x[i])), float(y[i]), False
    vertex = float(np.clip(-b / (2 * a), x[i - 1], x[i + 1]))
    return float(np.exp(vertex)), float(np.polyval([a, b, c], vertex)), False


def _grids(runs: pd.DataFrame, curve: pd.DataFrame) -> list[pd.DataFrame]:
    """Runs of one model (kind, N, E) and one token budget that vary the batch size or the LR."""
    final = curve.groupby("run_id")["tokens"].max()
    runs = runs[runs["run_id"].isin(final.index)]
    grids = []
    for _, model in runs.groupby(["kind", "N", "n_experts"]):
        model = model.assign(budget=budget_labels(model["run_id"].map(final)))
        for _, grid in model.groupby("budget"):
            if grid["batch_tokens"].nunique() > 1 or grid["lr"].nunique() > 1:
                grids.append(grid)
    return grids


def _by_cell(grid: pd.DataFrame, per_run: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-run score rows → one row per (batch_size, lr) cell, averaged over the cell's runs (seeds)."""
    scores = pd.DataFrame.from_dict(per_run, orient="index")
    keys = grid.set_index("run_id").loc[scores.index, ["batch_tokens", "lr"]]
    scores.index = pd.MultiIndex.from_frame(keys.rename(columns=law_names("runs", "batch_tokens")))
    return scores.groupby(level=["batch_size", "lr"]).mean()


def _loss_levels(
    grid: pd.DataFrame, curve: pd.DataFrame, n_levels: int, window: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Common token counts of a grid's runs (after every warm-up, before any end) and the smoothed loss of
    each (batch_size, lr) cell there (mean over seeds); rows: cells, columns: token counts."""
    runs = curve[curve["run_id"].isin(grid["run_id"])]
    start, end = usable_from(runs, window).max(), runs.groupby("run_id")["tokens"].max().min()
    if not start < end:
        return np.array([]), pd.DataFrame()
    tokens = np.geomspace(start, end, n_levels)
    rows = {
        run_id: at_tokens(run["tokens"].to_numpy(float), run["lm_loss"].to_numpy(float), tokens)
        for run_id, run in runs.groupby("run_id")
    }
    return tokens, _by_cell(grid, rows)


def _tokens_to_reach(
    grid: pd.DataFrame, curve: pd.DataFrame, start: float, levels: np.ndarray
) -> pd.DataFrame:
    """log(tokens) at which each cell's smoothed loss first falls to each level (NaN: never)."""
    out = {}
    for run_id, run in curve[curve["run_id"].isin(grid["run_id"])].groupby("run_id"):
        run = run[(run["tokens"] >= start) & np.isfinite(run["lm_loss"])]
        log_tokens, loss = np.log(run["tokens"].to_numpy(float)), run["lm_loss"].to_numpy(float)
        below = np.minimum.accumulate(loss)[:, None] <= levels[None, :]
        first = np.where(below.any(axis=0), below.argmax(axis=0), -1)
        reach = np.full(len(levels), np.nan)
        for j, i in enumerate(first):
            if i == 0:
                reach[j] = log_tokens[0]
            elif i > 0:  # linear in loss between the last point above the level and the first at or below
                share = (loss[i - 1] - levels[j]) / (loss[i - 1] - loss[i])
                reach[j] = log_tokens[i - 1] + share * (log_tokens[i] - log_tokens[i - 1])
        out[run_id] = reach
    return _by_cell(grid, out)


def sweep_line(scores: pd.Series, axis: str) -> tuple[float, pd.Series] | None:
    """The slice of ``scores`` (index: batch_size, lr) along ``axis`` to read an optimum from: among the
    slices with at least three cells, the one holding the lowest score; returns (the value held fixed,
    the slice), or None when no slice is that long.

    On a full batch-size × LR grid this is the slice through the best cell. On a cross-shaped design (a
    batch-size sweep at one LR and an LR sweep at one batch size) it is the sweep itself, where the best
    cell's own slice could be a single cell.
    """
    fixed = AXES[axis]
    best: tuple[float, pd.Series] | None = None
    for value, line in scores.groupby(level=fixed):
        line = line.droplevel(fixed)
        if line.notna().sum() >= MIN_SWEEP and (best is None or line.min() < best[1].min()):
            best = (float(value), line)
    return best


def grid_optima(scores: pd.DataFrame, losses: np.ndarray | None, info: dict, levels: np.ndarray) -> dict:
    """Per level, the optimal batch size and LR along their sweep lines, refined. ``losses``: the loss of
    each level (MiniCPM), or None when the scores are losses (contour: the refined minimum is the loss)."""
    found: dict[str, list[dict]] = {"batch_size": [], "lr": []}
    for j in scores.columns:
        for axis, fixed in AXES.items():
            line = sweep_line(scores[j], axis)
            if line is None:
                continue
            value, score, at_edge = refine(line[1])
            loss = score if losses is None else float(losses[j])
            found[axis].append(
                info
                | {
                    "level": float(levels[j]),
                    "loss": loss,
                    axis: value,
                    fixed: line[0],
                    "at_edge": at_edge,
                }
            )
    return found


def _heatmaps(cells: pd.DataFrame, tokens: np.ndarray, info: dict) -> list[Heatmap]:
    """Loss over (batch size, tokens) and over (LR, tokens) along the sweep lines of the final token count."""
    maps = []
    for axis, fixed in AXES.items():
        line = sweep_line(cells[cells.columns[-1]], axis)
        if line is None:
            continue
        grid = cells.xs(line[0], level=fixed).sort_index()
        optimum = [refine(grid[j])[0] if grid[j].notna().any() else float("nan") for j in grid.columns]
        maps.append(
            Heatmap(
                kind=info["kind"],
                model_scale=info["model_scale"],
                axis=axis,
                fixed=line[0],
                values=grid.index.tolist(),
                tokens=tokens.tolist(),
                loss=grid.to_numpy().tolist(),
                optimum=optimum,
            )
        )
    return maps


NAMES = {"batch_size": "batch-size", "lr": "learning-rate"}
PARAMS = law_names("runs", "P", "P_active")  # runs-table columns a grid record carries when present


def _fit_family(
    optima: pd.DataFrame, axis: str, family: str, gridded: bool, bootstrap: int, seed: int
) -> tuple[PowerFit, PowerLaw | None]:
    """The power law of one family's interior optima; whole grids (model sizes) are resampled.
    ``gridded``: the family has grids at all (their optima may still be missing along this axis)."""
    rows = optima[optima["kind"] == family] if len(optima) else optima
    name = NAMES[axis]
    if rows.empty:
        skipped = f"no {family} grid"
        if gridded:
            skipped = (
                f"no {family} grid varies the {name} over {MIN_SWEEP} or more values with the other "
                "hyperparameter fixed, so no optimum can lie inside it"
            )
        return PowerFit(family=family, target=axis, input="loss", skipped=skipped), None
    interior = rows[~rows["at_edge"]]
    if interior.empty:
        skipped = (
            f"all {len(rows)} {family} optima lie on the edge of the {name} grid, so they only bound "
            f"the optimum; extend the {name} range of the grid"
        )
        return PowerFit(family=family, target=axis, input="loss", skipped=skipped), None
    return fit_power(
        interior.assign(run_id=interior["grid"]),
        family=family,
        target=axis,
        input="loss",
        bootstrap=bootstrap,
        seed=seed,
    )


def fit_optima(
    optima: list[dict], axis: str, gridded: set[str], bootstrap: int, seed: int
) -> tuple[dict[str, PowerFit], Comparison | None]:
    """Each family's power law of its interior optima along ``axis`` against the loss (whole grids, column
    ``grid``, resampled), and MoE ÷ dense at equal loss; ``gridded``: the families that had grids at all."""
    frame = pd.DataFrame(optima)
    seeds = spawn_seeds(seed, len(FAMILIES))  # independent streams: the families are separate experiments
    fitted = {
        f: _fit_family(frame, axis, f, f in gridded, bootstrap, family_seed)
        for f, family_seed in zip(FAMILIES, seeds, strict=True)
    }
    return {family: fit for family, (fit, _) in fitted.items()}, compare_families(fitted)


def optimal_hyperparameters(
    runs: pd.DataFrame,
    curve: pd.DataFrame,
    *,
    method: Literal["contour", "minicpm"] = "contour",
    n_levels: int = 12,
    bootstrap: int = 200,
    seed: int = 0,
    window: int = SMOOTHING_WINDOW,
) -> HyperparamResult:
    """Analysis 3 over the store's runs and curves (``batch_tokens`` and ``lr`` per run, ``lm_loss`` per step).

    ``n_levels`` log-spaced token counts (contour) or loss levels (MiniCPM) per grid.
    """
    if method not in METHODS:
        raise AnalysisError(f"method must be one of {METHODS}, got {method!r}")
    if n_levels < 2:
        raise AnalysisError(f"n_levels must be >= 2, got {n_levels}")
    runs = finished_runs(runs, ("batch_tokens", "lr"))
    require_columns(curve, ("run_id", "step", "tokens", "lm_loss"), "curve")
    result = HyperparamResult(method=method)
    grids = _grids(runs, curve[curve["run_id"].isin(runs["run_id"])])
    if not grids:
        result.skipped = (
            "no batch-size × LR grid: needs runs of one model and token budget at several batch sizes or "
            "learning rates (3 or more, so that an optimum can lie inside the grid)"
        )
        return result
    smoothed = smooth(curve[curve["run_id"].isin(pd.concat(grids)["run_id"])], window)
    found: dict[str, list[dict]] = {"batch_size": [], "lr": []}
    for number, grid in enumerate(grids):
        first = grid.iloc[0]
        info = {"grid": number, "kind": first["kind"], "model_scale": float(first["N"])}
        record = info | {
            "experts": int(first["n_experts"]),
            "runs": len(grid),
            "batch_sizes": sorted(grid["batch_tokens"].unique().tolist()),
            "lrs": sorted(grid["lr"].unique().tolist()),
        }
        record |= {name: float(first[column]) for column, name in PARAMS.items() if column in grid}
        tokens, cells = _loss_levels(grid, smoothed, n_levels, window)
        if cells.empty:
            result.grids.append(record | {"skipped": "the runs share no token range after their warm-ups"})
            continue
        record["tokens"] = float(tokens[-1])
        final = cells[cells.columns[-1]].rename("loss").reset_index()
        result.cells += final.assign(grid=number).to_dict(orient="records")
        result.heatmaps += _heatmaps(cells, tokens, info)
        if method == "contour":
            optima = grid_optima(cells, None, info, tokens)
        else:
            levels = np.geomspace(cells[0].min(), cells[cells.columns[-1]].min(), n_levels)
            optima = grid_optima(_tokens_to_reach(grid, smoothed, tokens[0], levels), levels, info, levels)
        for axis in found:
            found[axis] += optima[axis]
        result.grids.append(record | {"skipped": None})
    result.batch_optima, result.lr_optima = found["batch_size"], found["lr"]
    gridded = {g["kind"] for g in result.grids if g["skipped"] is None}
    batch_seed, lr_seed = spawn_seeds(seed, 2)
    result.batch_fits, result.batch_comparison = fit_optima(
        result.batch_optima, "batch_size", gridded, bootstrap, batch_seed
    )
    result.lr_fits, result.lr_comparison = fit_optima(result.lr_optima, "lr", gridded, bootstrap, lr_seed)
    return result
