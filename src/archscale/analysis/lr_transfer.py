"""Learning-rate transfer across width: the LR optimum of each width's ladder, its drift per width doubling,
whether it transfers, and whether dense's optimum is MoE's (issue 27; ``archscale study --preset lr-transfer``).

A *ladder* is one design (dense, or an MoE design: experts, top-k, granularity, shared experts, routing) in one
parametrisation (SP, μP, CompleteP) at one depth, batch size and token budget, trained at several widths
(``d_model``) over a grid of learning rates, with one or more seeds. Each finished run is one point: its final
test loss (subset ``all``). A diverged run is a cell worse than every finite one.

Per width: the cells are the mean loss over seeds at each LR. The optimum is the vertex of a quadratic in
log2 lr fitted by least squares to the lowest cell and its finite neighbours within two grid steps (3-5 cells).
When the lowest cell is the grid's lowest or highest LR the optimum is only a *bound* (``lr_opt`` ≤ or ≥ that
LR): it is flagged, and never used as a value (in the drift, the verdicts or the dense-vs-MoE difference).

Intervals (95 %): a parametric bootstrap of the whole procedure. Each replicate draws every cell as its centre
(the fitted quadratic inside the fitted window, the observed mean outside it) plus normal noise of the cell
mean's standard deviation σ/√seeds, with σ drawn per replicate from its scaled χ² distribution (so that a σ
estimated from few degrees of freedom widens the interval); the replicate then re-selects its lowest cell and
window and refits. σ is (a) with ≥ 2 seeds, the seed-to-seed scatter left after each seed's offset (shared
by its LRs: same init and data order, so it does not move the vertex) is removed, pooled over the widths;
else (b) the quadratic fits' residual scatter pooled over the ladder's widths, as a per-seed σ; with neither
(one seed and 3-cell windows) there is no interval. Replicates whose lowest cell is at the grid's edge count
as ±∞ (the interval is then open on that side); when more than 5 % of replicates find no bowl (a
non-positive curvature) the interval is refused. A width's interval (not the differences') is widened
upwards by ``ASYMMETRY_ALLOWANCE`` = 0.15 in log2: LR bowls are steeper above the optimum than below it
(divergence lies above), and a quadratic through a bowl twice as steep above as below puts its vertex
0.12-0.16 log2 below the true optimum. Differences between widths or designs whose bowls share their shape
carry no such bias, so the drift and the verdicts need no allowance. The drift (slope of log2 lr_opt against
log2 width, in log2 units per width doubling; twice that in √2 grid steps) and every difference take their
intervals from the same replicates (widths and ladders are independent).

Coverage, measured by ``benchmarks/lr_transfer_calibration.py`` (:func:`coverage`: synthetic bowls on the
preset's grid, 200 ladders per case): the optimum's interval 97-99 % on symmetric bowls and 99-100 % on 2:1
bowls (55 % without the allowance), only 73 % on 3:1 bowls; the drift's 96.5-100 % in every case. With two
seeds the bootstrap's spread is about 15 % wider than the estimate's: the intervals are conservative.

Verdicts, with h = one grid step (0.5 in log2 for a √2 grid):

- transfers: every width has a value and every pair of widths' difference has its interval inside [−h, h];
- drifts: some pair's difference has its interval entirely outside [−h, h] (or a bound lies more than h
  beyond another width's interval);
- inconclusive: otherwise (including: no intervals).

Dense vs MoE: per width, the difference log2 lr_opt(MoE) − log2 lr_opt(dense) in the same parametrisation, and
its mean over the widths both have: 'same' (interval inside [−h, h], every width compared), 'differs' (outside),
else 'inconclusive'.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archscale.analysis.errors import AnalysisError
from archscale.analysis.results import Result

GRID_STEP = 0.5  # log2 units between neighbouring learning rates of a √2 grid
HALF_WINDOW = 2  # grid steps either side of the lowest cell that the quadratic reads
LEVEL = 0.95
ASYMMETRY_ALLOWANCE = 0.15  # log2 added above each width's interval: a 2:1 bowl's vertex bias (docstring)
MAX_NOT_BOWL = 0.05  # share of replicates without a bowl above which the interval is refused
MIN_BOOTSTRAP = 400  # replicates a store's ladders get at least: the calibration's count, for 2.5 % tails
POINT_COLUMNS = ("design", "parametrization", "width", "lr", "seed", "loss")


# ---- reading the store ------------------------------------------------------------------------------
def _design_label(model: dict[str, Any]) -> str:
    if model.get("kind", "dense") == "dense":
        return "dense"
    label = f"MoE E{model['n_experts']} top-{model['top_k']}"
    if model.get("granularity", 1) != 1:
        label += f" G{model['granularity']}"
    if model.get("n_shared_experts", 0):
        label += f" +{model['n_shared_experts']} shared"
    if model.get("router_score", "softmax") != "softmax":
        label += f" {model['router_score']}"
    if model.get("balance", "aux_loss") != "aux_loss":
        label += f" {model['balance']}"
    return label


def ladder_points(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per finished or diverged run: its design label, parametrisation, width (d_model), LR, seed and
    final test loss (subset ``all``; +∞ for a diverged run), with the ladder's other keys (depth, batch size,
    tokens). Runs without a final test loss are left out."""
    runs = runs[runs["status"].isin(("finished", "diverged"))]
    tests = evals[(evals["split"] == "test") & (evals["subset"] == "all")]
    final = tests.sort_values("step").groupby("run_id")["loss"].last()
    rows = []
    for run in runs.itertuples():
        model = json.loads(run.config)["model"]
        loss = math.inf if run.status == "diverged" else final.get(run.run_id, math.nan)
        if not (loss == math.inf or np.isfinite(loss)):
            continue
        rows.append({
            "run_id": run.run_id, "design": _design_label(model), "kind": model.get("kind", "dense"),
            "parametrization": model.get("parametrization", "sp"), "width": int(model["d_model"]),
            "n_layers": int(model["n_layers"]), "batch_size": int(run.batch_size), "tokens": int(run.D),
            "lr": float(run.lr), "seed": int(run.seed), "loss": float(loss),
        })  # fmt: skip
    columns = ["run_id", *POINT_COLUMNS, "kind", "n_layers", "batch_size", "tokens"]
    return pd.DataFrame(rows, columns=columns)


def has_lr_ladders(runs: pd.DataFrame) -> bool:
    """Whether the store holds μP or CompleteP runs at two or more widths with three or more LRs each: the
    learning-rate transfer panel applies (SP-only stores keep the paper's LR sweeps to the paper's panels)."""
    ladders: dict[tuple, dict[int, set[float]]] = {}
    for model, lr in zip((json.loads(c)["model"] for c in runs["config"]), runs["lr"], strict=True):
        if model.get("parametrization", "sp") == "sp":
            continue
        key = (_design_label(model), model["parametrization"], model["n_layers"])
        ladders.setdefault(key, {}).setdefault(int(model["d_model"]), set()).add(float(lr))
    return any(sum(len(lrs) >= 3 for lrs in widths.values()) >= 2 for widths in ladders.values())


# ---- one width: the vertex ----------------------------------------------------------------------------
def _window(finite: np.ndarray, j: int, half: int) -> tuple[int, int]:
    """The contiguous finite cells within ``half`` steps of cell ``j``."""
    lo, hi = j, j
    while lo > max(j - half, 0) and finite[lo - 1]:
        lo -= 1
    while hi < min(j + half, len(finite) - 1) and finite[hi + 1]:
        hi += 1
    return lo, hi


def _vertices(x: np.ndarray, cells: np.ndarray, half: int = HALF_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``cells`` (replicates × LRs, +∞ for diverged): the vertex in log2 lr and a status:
    0 a value, −1 / +1 the lowest cell is the grid's lowest / highest LR (a bound: −∞ / +∞), 2 no bowl (NaN:
    fewer than 3 cells or a non-positive curvature). A vertex beyond its window is held at the window's end, or
    where a diverged run cut the window, at that run's LR."""
    cells = np.atleast_2d(cells)
    rows, n = cells.shape
    vertex, status = np.full(rows, np.nan), np.zeros(rows, dtype=int)
    lowest = np.argmin(np.where(np.isfinite(cells), cells, np.inf), axis=1)
    for j in np.unique(lowest):
        pick = lowest == j
        if j == 0 or j == n - 1:
            vertex[pick], status[pick] = (-np.inf, -1) if j == 0 else (np.inf, 1)
            continue
        finite = np.isfinite(cells[pick]).all(axis=0)
        lo, hi = _window(finite, int(j), half)
        if hi - lo < 2:
            status[pick] = 2
            continue
        xs = x[lo : hi + 1]
        coef = cells[pick, lo : hi + 1] @ np.linalg.pinv(np.column_stack([np.ones_like(xs), xs, xs * xs])).T
        bowl = coef[:, 2] > 0
        # a window cut short by a diverged neighbour ends at that neighbour's LR, not at its last finite cell:
        # the optimum may lie between them (held at the last cell, the vertex would be biased by up to a step)
        low = x[lo - 1] if lo > 0 and not finite[lo - 1] else xs[0]
        high = x[hi + 1] if hi < n - 1 and not finite[hi + 1] else xs[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.clip(-coef[:, 1] / (2 * coef[:, 2]), low, high)
        vertex[pick] = np.where(bowl, v, np.nan)
        status[pick] = np.where(bowl, 0, 2)
    return vertex, status


@dataclass
class _Fit:
    """One width's cells and point fit (internal)."""

    x: np.ndarray  # log2 lr, sorted
    cells: np.ndarray  # mean loss over seeds (+∞: diverged)
    seeds: np.ndarray  # seeds per cell
    vertex: float
    status: int
    centre: np.ndarray  # the bootstrap's centre
    rss: float = 0.0
    dof: int = 0


def _fit_width(points: pd.DataFrame) -> _Fit:
    """One width's cells: each LR's mean loss over its seeds, after removing each seed's offset (measured on
    the LRs every seed finished), so an LR missing a seed's run is not pulled toward the other seed's level;
    with every seed at every LR the cells are the plain means."""
    table = points.pivot_table(index="lr", columns="seed", values="loss", aggfunc="mean").sort_index()
    complete = table[np.isfinite(table).all(axis=1)]
    offsets = complete.sub(complete.mean(axis=1), axis=0).mean(axis=0) if len(complete) else 0.0
    x = np.log2(table.index.to_numpy(float))
    cells = table.sub(offsets, axis=1).mean(axis=1, skipna=True).to_numpy(float)
    seeds = table.notna().sum(axis=1).to_numpy(int)
    vertex, status = _vertices(x, cells)
    centre, rss, dof = cells.copy(), 0.0, 0
    if status[0] in (0,):
        lo, hi = _window(np.isfinite(cells), int(np.argmin(cells)), HALF_WINDOW)
        xs = x[lo : hi + 1]
        design = np.column_stack([np.ones_like(xs), xs, xs * xs])
        coef = np.linalg.lstsq(design, cells[lo : hi + 1], rcond=None)[0]
        centre[lo : hi + 1] = design @ coef
        rss, dof = float(np.sum((cells[lo : hi + 1] - centre[lo : hi + 1]) ** 2)), len(xs) - 3
    return _Fit(x, cells, seeds, float(vertex[0]), int(status[0]), centre, rss, dof)


# ---- results -----------------------------------------------------------------------------------------
@dataclass
class WidthOptimum(Result):
    """The LR optimum of one width of a ladder."""

    width: int
    lrs: int
    seeds: int
    best_cell_lr: float
    best_cell_loss: float  # its mean over seeds (seed offsets removed): what the width reaches (SP vs μP)
    lr_opt: float | None = None  # the vertex; None when only a bound is known or no bowl was found
    log2_lr_opt: float | None = None
    interval: list[float | None] | None = None  # of lr_opt (None at an open end)
    log2_interval: list[float | None] | None = None
    bound: str | None = None  # "below" (lr_opt ≤ the grid's lowest LR) or "above" (≥ its highest)
    note: str | None = None


@dataclass
class Ladder(Result):
    """One design in one parametrisation over widths: optima, drift per doubling and the transfer verdict."""

    design: str
    parametrization: str
    kind: str
    optima: list[WidthOptimum] = field(default_factory=list)
    sigma: float | None = None  # per-seed loss noise the intervals use
    sigma_source: str | None = None
    drift: float | None = None  # log2 lr_opt per width doubling
    drift_interval: list[float] | None = None
    drift_steps: float | None = None  # the same in √2 grid steps (2 × drift)
    spread: float | None = None  # max − min of the widths' log2 optima
    verdict: str = "inconclusive"  # transfers | drifts | inconclusive
    reason: str = ""
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # depth, batch size, tokens when ladders share a label


@dataclass
class DenseVsMoE(Result):
    """log2 lr_opt(MoE) − log2 lr_opt(dense) per width, in one parametrisation, and its mean over widths."""

    parametrization: str
    moe: str
    per_width: list[dict[str, Any]] = field(default_factory=list)
    mean: float | None = None
    mean_interval: list[float] | None = None
    verdict: str = "inconclusive"  # same | differs | inconclusive


@dataclass
class LRTransferResult(Result):
    ladders: list[Ladder] = field(default_factory=list)
    dense_vs_moe: list[DenseVsMoE] = field(default_factory=list)
    grid_step: float = GRID_STEP
    level: float = LEVEL
    bootstrap: int = 0
    notes: list[str] = field(default_factory=list)


# ---- the analysis ------------------------------------------------------------------------------------
def _interval(draws: np.ndarray, level: float) -> list[float]:
    """The percentile interval; draws may hold ±∞ (a bound), which then opens the interval on its side."""
    ordered = np.sort(draws[~np.isnan(draws)])
    n = len(ordered)
    lo = ordered[math.floor((1 - level) / 2 * (n - 1))]
    hi = ordered[math.ceil((1 + level) / 2 * (n - 1))]
    return [float(lo), float(hi)]


def _classify(lo: float, hi: float, h: float, inside: str, outside: str) -> str:
    if -h <= lo and hi <= h:
        return inside
    if lo > h or hi < -h:
        return outside
    return "inconclusive"


def _noise(fits: dict[int, _Fit], points: pd.DataFrame) -> tuple[float | None, int, str | None]:
    """The per-seed σ of a ladder's cells and its degrees of freedom (module docstring). With repeated seeds:
    per width, the two-way split loss[seed, lr] = m(lr) + u(seed) + e, pooled over widths: a seed's offset
    u (shared by its LRs: same init and data order) does not move the vertex, so only e enters. Else the
    quadratic fits' residual scatter, pooled over widths, as a per-seed σ."""
    ss = dof = 0.0
    for _, rows in points[np.isfinite(points["loss"])].groupby("width"):
        table = rows.pivot_table(index="seed", columns="lr", values="loss").dropna(axis=1)
        if table.shape[0] < 2 or table.shape[1] < 2:
            continue
        y = table.to_numpy(float)
        residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        ss += float(np.sum(residual**2))
        dof += (y.shape[0] - 1) * (y.shape[1] - 1)
    if dof:
        return math.sqrt(ss / dof), int(dof), "seed-to-seed scatter (run offsets removed)"
    dof_res = sum(f.dof for f in fits.values())
    if dof_res:
        mean_seeds = float(np.mean([f.seeds.mean() for f in fits.values()]))
        return (
            math.sqrt(sum(f.rss for f in fits.values()) / dof_res * mean_seeds),
            dof_res,
            "quadratic residuals",
        )
    return None, 0, None


def _replicates(fit: _Fit, sigma: float, dof: int, bootstrap: int, rng: np.random.Generator):
    scale = sigma * np.sqrt(rng.chisquare(dof, size=(bootstrap, 1)) / dof)
    noise = rng.standard_normal((bootstrap, len(fit.x))) * scale / np.sqrt(fit.seeds)
    return _vertices(fit.x, fit.centre + noise)


def lr_transfer(
    points: pd.DataFrame,
    *,
    bootstrap: int = 400,
    seed: int = 0,
    level: float = LEVEL,
    grid_step: float = GRID_STEP,
) -> LRTransferResult:
    """The module's analysis on ``points`` (:func:`ladder_points`, or any table with the columns
    ``design, parametrization, width, lr, seed, loss``; optional ``kind``, ``n_layers``, ``batch_size``,
    ``tokens`` split ladders further)."""
    rng = np.random.default_rng(seed)
    result = LRTransferResult(grid_step=grid_step, level=level, bootstrap=bootstrap)
    points = points.copy()
    if "kind" not in points:
        points["kind"] = np.where(points["design"] == "dense", "dense", "moe")
    extra_keys = [k for k in ("n_layers", "batch_size", "tokens") if k in points]
    keys = ["design", "parametrization", "kind", *extra_keys]
    draws: dict[tuple[str, str], dict[int, np.ndarray]] = {}  # (design, param) -> width -> replicate vertices
    groups = list(points.groupby(keys, sort=True))
    labels = pd.Series([k[:2] for k, _ in groups])
    for key, rows in groups:
        design, parametrization, kind, *rest = key
        extra = dict(zip(extra_keys, (int(v) for v in rest), strict=True))
        fits = {int(w): _fit_width(r) for w, r in rows.groupby("width")}
        if len(fits) < 2:
            continue
        ladder = Ladder(design, parametrization, kind)
        if (labels == key[:2]).sum() > 1:  # two ladders share a label: tell them apart
            ladder.extra = extra
            design = f"{design} ({', '.join(f'{k} {v}' for k, v in extra.items())})"
            ladder.design = design
        sigma, dof, source = _noise(fits, rows)
        ladder.sigma, ladder.sigma_source = sigma, source
        reps: dict[int, np.ndarray] = {}
        for width, fit in sorted(fits.items()):
            lrs = np.exp2(fit.x)
            best = int(np.nanargmin(np.where(np.isfinite(fit.cells), fit.cells, np.inf)))
            opt = WidthOptimum(
                width, len(fit.x), int(fit.seeds.max()), float(lrs[best]), float(fit.cells[best])
            )
            if fit.status == -1 or fit.status == 1:
                opt.bound = "below" if fit.status == -1 else "above"
                opt.note = f"the lowest cell is the grid's {'lowest' if fit.status == -1 else 'highest'} LR: a bound, not a value"
            elif fit.status == 2:
                opt.note = "no bowl: fewer than 3 finite cells around the lowest, or a non-positive curvature"
            else:
                opt.log2_lr_opt, opt.lr_opt = fit.vertex, float(2**fit.vertex)
            if sigma is not None and bootstrap > 0 and fit.status != 2:
                v, status = _replicates(fit, sigma, dof, bootstrap, rng)
                if np.mean(status == 2) > MAX_NOT_BOWL:
                    opt.note = (opt.note or "") + (
                        f"; no interval: {np.mean(status == 2):.0%} of replicates find no bowl"
                        if opt.note
                        else f"no interval: {np.mean(status == 2):.0%} of replicates find no bowl"
                    )
                else:
                    v = v[status != 2]
                    reps[width] = v
                    if opt.bound is None:
                        lo, hi = _interval(v, level)
                        hi += ASYMMETRY_ALLOWANCE
                        opt.log2_interval = [lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None]
                        opt.interval = [None if b is None else float(2**b) for b in opt.log2_interval]
            ladder.optima.append(opt)
        _ladder_summary(ladder, reps, level, grid_step, bootstrap)
        draws[(ladder.design, parametrization)] = reps
        result.ladders.append(ladder)
    result.dense_vs_moe = _dense_vs_moe(result.ladders, draws, level, grid_step)
    result.notes.extend(_what_transfer_costs(result.ladders))
    result.notes.append(
        f"lr_opt: the vertex of a quadratic in log2 lr through the lowest cell and its neighbours within "
        f"{HALF_WINDOW} grid steps; {100 * level:.0f} % intervals from a parametric bootstrap of the whole "
        f"procedure ({bootstrap} replicates); drift in log2 units per width doubling (× 2 for √2 grid steps); "
        f"one grid step h = {grid_step} in log2; each width's interval is widened upwards by "
        f"{ASYMMETRY_ALLOWANCE} log2 for the bowl's asymmetry (steeper above the optimum); coverage measured by "
        "benchmarks/lr_transfer_calibration.py"
    )
    return result


def _what_transfer_costs(ladders: list[Ladder]) -> list[str]:
    """Per design with an SP ladder and a μP / CompleteP one: the best cells' losses at their widest shared
    width. Transfer is worth having only if the transferred model is not worse than SP tuned per width; at
    tiny budgets it can be (benchmarks/RESULTS.md, "What each width reaches on its grid"). No verdict: a best
    cell is the lowest of noisy cells, so compare the difference with the ladders' σ per seed."""
    notes = []
    for sp in (lad for lad in ladders if lad.parametrization == "sp"):
        for other in (
            lad for lad in ladders
            if lad.parametrization != "sp" and lad.design == sp.design and lad.extra == sp.extra
        ):  # fmt: skip
            best = {o.width: o.best_cell_loss for o in other.optima}
            shared = [o for o in sp.optima if o.width in best]
            if not shared:
                continue
            widest = shared[-1]
            difference = best[widest.width] - widest.best_cell_loss
            noise = ", ".join(
                f"{lad.parametrization} {lad.sigma:.3g}" for lad in (sp, other) if lad.sigma is not None
            )
            notes.append(
                f"{sp.design}: at width {widest.width} the best cell reaches {best[widest.width]:.4g} under "
                f"{other.parametrization} and {widest.best_cell_loss:.4g} under SP tuned at that width "
                f"({other.parametrization} − SP {difference:+.3g}; σ per seed {noise or 'unknown'})"
            )
    return notes


def _ladder_summary(
    ladder: Ladder, reps: dict[int, np.ndarray], level: float, h: float, bootstrap: int
) -> None:
    valued = [o for o in ladder.optima if o.log2_lr_opt is not None]
    if len(valued) >= 2:
        w = np.log2([o.width for o in valued])
        y = np.array([o.log2_lr_opt for o in valued])
        ladder.drift = float(np.polyfit(w, y, 1)[0])
        ladder.drift_steps = ladder.drift / h
        ladder.spread = float(y.max() - y.min())
        if all(o.width in reps for o in valued) and all(o.log2_interval is not None for o in valued):
            n = min(len(reps[o.width]) for o in valued)
            stack = np.column_stack([reps[o.width][:n] for o in valued])
            centred = w - w.mean()
            with np.errstate(invalid="ignore"):
                slopes = np.sum(stack * centred, axis=1) / (
                    centred @ centred
                )  # ±∞ with a bound, NaN with both
            if np.mean(np.isnan(slopes)) <= MAX_NOT_BOWL:
                lo, hi = _interval(slopes, level)
                if np.isfinite(lo) and np.isfinite(hi):
                    ladder.drift_interval = [lo, hi]
    # verdict: pairwise differences judged against one grid step
    bounds = [o for o in ladder.optima if o.bound is not None]
    missing = [o for o in ladder.optima if o.bound is None and o.log2_lr_opt is None]
    with_interval = [o for o in valued if o.log2_interval is not None and o.width in reps]
    pair_verdicts = []
    for i, a in enumerate(with_interval):
        for b in with_interval[i + 1 :]:
            n = min(len(reps[a.width]), len(reps[b.width]))
            with np.errstate(invalid="ignore"):
                diff = reps[a.width][:n] - reps[b.width][:n]
            lo, hi = _interval(diff, level)
            pair_verdicts.append(_classify(lo, hi, h, "within", "beyond"))
    for bound in bounds:  # a bound beyond another width's interval by more than a step
        for o in with_interval:
            lo, hi = o.log2_interval
            edge = math.log2(bound.best_cell_lr)
            if (bound.bound == "below" and lo is not None and edge < lo - h) or (
                bound.bound == "above" and hi is not None and edge > hi + h
            ):
                pair_verdicts.append("beyond")
    if "beyond" in pair_verdicts:
        ladder.verdict, ladder.reason = (
            "drifts",
            "two widths' optima differ by more than one grid step (95 % interval)",
        )
    elif (
        not bounds
        and not missing
        and len(with_interval) == len(ladder.optima)
        and pair_verdicts
        and all(v == "within" for v in pair_verdicts)
    ):
        ladder.verdict, ladder.reason = (
            "transfers",
            "every pair of widths within one grid step (95 % interval)",
        )
    else:
        why = []
        if bounds:
            why.append(f"{len(bounds)} width(s) only bound their optimum (grid edge)")
        if missing:
            why.append(f"{len(missing)} width(s) without a bowl")
        if len(with_interval) < len(valued):
            why.append(
                "no interval"
                + ("" if ladder.sigma is not None else ": one seed and no residual degrees of freedom")
            )
        if not why:
            why.append("the differences' intervals straddle one grid step")
        ladder.verdict, ladder.reason = "inconclusive", "; ".join(why)


def _dense_vs_moe(
    ladders: list[Ladder], draws: dict[tuple[str, str], dict[int, np.ndarray]], level: float, h: float
) -> list[DenseVsMoE]:
    out = []
    for dense in (lad for lad in ladders if lad.kind == "dense"):
        for moe in (
            lad for lad in ladders if lad.kind == "moe" and lad.parametrization == dense.parametrization
        ):
            if moe.extra != dense.extra:
                continue
            comparison = DenseVsMoE(dense.parametrization, moe.design)
            d_opt = {o.width: o for o in dense.optima}
            d_reps, m_reps = (
                draws[(dense.design, dense.parametrization)],
                draws[(moe.design, moe.parametrization)],
            )
            diffs, shared = [], []
            for m in moe.optima:
                d = d_opt.get(m.width)
                if d is None:
                    continue
                row: dict[str, Any] = {
                    "width": m.width,
                    "difference": None,
                    "interval": None,
                    "verdict": "inconclusive",
                }
                if m.log2_lr_opt is None or d.log2_lr_opt is None:
                    row["note"] = "a bound or no bowl on one side"
                else:
                    row["difference"] = m.log2_lr_opt - d.log2_lr_opt
                    if m.width in m_reps and d.width in d_reps and m.log2_interval and d.log2_interval:
                        n = min(len(m_reps[m.width]), len(d_reps[d.width]))
                        with np.errstate(invalid="ignore"):
                            diff = m_reps[m.width][:n] - d_reps[d.width][:n]
                        row["interval"] = _interval(diff, level)
                        row["verdict"] = _classify(*row["interval"], h, "same", "differs")
                        diffs.append(diff)
                    shared.append(row["difference"])
                comparison.per_width.append(row)
            if shared:
                comparison.mean = float(np.mean(shared))
            if diffs and len(diffs) == len(shared):
                n = min(len(d) for d in diffs)
                with np.errstate(invalid="ignore"):
                    mean_draws = np.mean([d[:n] for d in diffs], axis=0)
                lo, hi = _interval(mean_draws, level)
                if np.isfinite(lo) and np.isfinite(hi) and np.mean(np.isnan(mean_draws)) <= MAX_NOT_BOWL:
                    comparison.mean_interval = [lo, hi]
                    comparison.verdict = _classify(lo, hi, h, "same", "differs")
                    if comparison.verdict == "same" and len(diffs) < len(comparison.per_width):
                        comparison.verdict = "inconclusive"  # 'same' needs every width compared
            out.append(comparison)
    return out


@dataclass
class TransferredLR(Result):
    """The peak LR a μP (or CompleteP) ladder prescribes for a wider model of the same design and base
    width: its optimum at the widest width that has one (under μP the optimum does not move with width, and
    the per-group multipliers carry the width), with that width's interval and the ladder's transfer verdict."""

    design: str
    parametrization: str
    width: int
    lr: float
    interval: list[float | None] | None
    verdict: str
    drift: float | None
    drift_interval: list[float] | None

    @property
    def source(self) -> str:
        drift = "" if self.drift is None else f", drift {self.drift:+.2f} log2 per width doubling"
        return (
            f"{self.parametrization} transfer: the {self.design} LR ladder's optimum at width {self.width} "
            f"(transfer verdict: {self.verdict}{drift})"
        )


def transferred_lr(result: LRTransferResult, kind: str, experts: float | None = None) -> TransferredLR:
    """The LR the store's μP/CompleteP ladder of family ``kind`` prescribes (for MoE, a ladder with
    ``experts`` experts when there is one). Refused when the ladder's optimum drifts with width, or when no
    width has an interior optimum: then the ladder does not say what the LR is."""
    ladders = [x for x in result.ladders if x.parametrization != "sp" and x.kind == kind]
    substitute = ""
    if kind == "moe" and experts is not None:  # the plain design (no granularity, shared experts, router...)
        plain = re.compile(rf"MoE E{int(experts)} top-\d+$")
        matching = [x for x in ladders if plain.match(x.design)]
        if ladders and not matching:
            substitute = f" (no plain E{int(experts)} ladder in the store)"
        ladders = matching or ladders
    if not ladders:
        raise AnalysisError(
            f"no μP or CompleteP {kind} LR ladder in the store (2+ widths with 3+ LRs each): run "
            "`archscale study --preset lr-transfer`, or plan the LR by an lr law"
        )
    ladder = max(ladders, key=lambda x: (x.verdict != "drifts", sum(o.lr_opt is not None for o in x.optima)))
    if ladder.verdict == "drifts":
        drift = "" if ladder.drift is None else f" (drift {ladder.drift:+.2f} log2 per doubling)"
        raise AnalysisError(
            f"the {ladder.design} {ladder.parametrization} ladder's LR optimum drifts with width{drift}: it does "
            "not transfer; plan the LR by an lr law instead"
        )
    valued = [o for o in ladder.optima if o.lr_opt is not None]
    if not valued:
        raise AnalysisError(
            f"the {ladder.design} {ladder.parametrization} ladder has no interior LR optimum at any width (only "
            "bounds at the grid's edges): widen its LR grid"
        )
    widest = max(valued, key=lambda o: o.width)
    assert widest.lr_opt is not None
    return TransferredLR(
        ladder.design + substitute, ladder.parametrization, widest.width, widest.lr_opt, widest.interval,
        ladder.verdict, ladder.drift, ladder.drift_interval,
    )  # fmt: skip


def store_lr_transfer(
    runs: pd.DataFrame, evals: pd.DataFrame, *, bootstrap: int = MIN_BOOTSTRAP, seed: int = 0
) -> LRTransferResult:
    """:func:`lr_transfer` on a store's runs and evals (``store.runs()``, ``store.evals()``), with at least
    :data:`MIN_BOOTSTRAP` replicates (none when ``bootstrap`` is 0)."""
    return lr_transfer(
        ladder_points(runs, evals), bootstrap=max(bootstrap, MIN_BOOTSTRAP) if bootstrap else 0, seed=seed
    )


# ---- calibration: synthetic bowls with known optima ----------------------------------------------------
def synthetic_points(
    optima: dict[int, float],
    lrs: np.ndarray,
    *,
    curvature: float = 0.04,
    noise: float = 0.01,
    seeds: int = 2,
    floor: float = 2.5,
    asymmetry: float = 1.0,
    offset: float = 0.0,
    rng: np.random.Generator,
    design: str = "dense",
    parametrization: str = "mup",
) -> pd.DataFrame:
    """A ladder's points: loss = floor + curvature·(log2 lr − log2 lr*)² (× ``asymmetry`` above lr*) with
    relative normal noise ``noise`` per run and a relative offset ``offset`` per (width, seed) shared by its
    LRs (a seed's init and data order), at each width's optimum ``optima[width]`` (an LR)."""
    rows = []
    x = np.log2(lrs)
    for width, opt in optima.items():
        u = x - math.log2(opt)
        bowl = floor + curvature * u**2 * np.where(u > 0, asymmetry, 1.0)
        for s in range(seeds):
            loss = bowl * (1 + offset * rng.standard_normal() + noise * rng.standard_normal(len(x)))
            rows += [{"design": design, "parametrization": parametrization, "width": width, "lr": float(lr),
                      "seed": s, "loss": float(v)} for lr, v in zip(lrs, loss, strict=True)]  # fmt: skip
    return pd.DataFrame(rows)


def coverage(
    *,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    lrs: np.ndarray | None = None,
    base_lr: float = 0.016,
    drift: float = 0.0,
    replicates: int = 200,
    bootstrap: int = 200,
    seed: int = 0,
    **bowl: Any,
) -> dict[str, Any]:
    """How often the 95 % intervals of the optimum (per width) and of the drift cover the truth, over
    ``replicates`` synthetic ladders with lr*(w) = base_lr · (w / widths[0])^drift (drift in log2 per
    doubling); ``bowl``: :func:`synthetic_points`' shape and noise. Coverage counts only the replicates
    (widths) that gave an interval; how many did is reported beside it."""
    lrs = np.asarray(lrs if lrs is not None else 1e-3 * 2 ** (np.arange(12) / 2), dtype=float)
    rng = np.random.default_rng(seed)
    truth = {w: base_lr * (w / widths[0]) ** drift for w in widths}
    hit = tried = d_hit = d_tried = bounds = verdicts = 0
    widths_all = 0
    tally: dict[str, int] = {}
    for r in range(replicates):
        points = synthetic_points(truth, lrs, rng=rng, **bowl)
        ladder = lr_transfer(points, bootstrap=bootstrap, seed=seed + 1 + r).ladders[0]
        tally[ladder.verdict] = tally.get(ladder.verdict, 0) + 1
        verdicts += 1
        for o in ladder.optima:
            widths_all += 1
            bounds += o.bound is not None
            if o.log2_interval is None:
                continue
            lo, hi = (-math.inf if o.log2_interval[0] is None else o.log2_interval[0],
                      math.inf if o.log2_interval[1] is None else o.log2_interval[1])  # fmt: skip
            tried += 1
            hit += lo <= math.log2(truth[o.width]) <= hi
        if ladder.drift_interval is not None:
            d_tried += 1
            d_hit += ladder.drift_interval[0] <= drift <= ladder.drift_interval[1]
    return {
        "drift": drift, "replicates": replicates, **{k: v for k, v in bowl.items()},
        "optimum_coverage": hit / tried if tried else None, "optimum_intervals": tried, "widths": widths_all,
        "bounds": bounds, "drift_coverage": d_hit / d_tried if d_tried else None, "drift_intervals": d_tried,
        "verdicts": tally,
    }  # fmt: skip
