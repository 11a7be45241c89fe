"""MoE ÷ dense optimal batch size and learning rate under comparisons that hold the other factors fixed.

The paper compares the optima "at equal training loss". Where the two families' grids sit at different
sizes and token counts, equal loss pairs a small dense model trained long with a big MoE trained briefly,
and an optimum that follows size and tokens (Step Law: lr_opt ∝ N^−0.71·D^0.31) then differs between them
with no architecture effect at all. So each family's optima are fitted on what its grids varied —
opt = c·N^a·D^b with N the active and, separately, the total parameters, opt = c·C^a on compute
C = 6·N_active·D — beside today's opt = c·L^a, with how much of the log optima's variance each form
explains, and MoE ÷ dense is read at

(a) equal loss (the paper's), (b) matched active parameters and tokens, (c) matched compute, (d) matched
total parameters and tokens,

each at the centre of the region both families' grids cover (their ranges, and for two inputs the part
of both families' convex hulls in log space); a comparison that would need extrapolation gets no verdict.
Intervals come from the laws' parametric bootstrap with one grid as the unit of noise (each grid gives one
optimum), each family and fit on its own random stream. A claim is **supported** only when it is supported at equal loss and under every matched comparison the
data allow; when the comparisons disagree it **depends on the comparison**, and the verdict says which.

Each grid's optimum is read two ways: its lowest cell, and the vertex of a quadratic in (log lr, log
batch) around it; both are kept with how far apart they are, and an optimum on a grid edge (a bound, not
an estimate) is flagged and left out of the fits, as in :mod:`archscale.analysis.hyperparams`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.spatial import Delaunay, QhullError

from archscale.analysis.compare import ratio_at
from archscale.analysis.hyperparams import HyperparamResult
from archscale.analysis.points import FAMILIES
from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.analysis.verdicts import DEPENDS, NOT_TESTED, Verdict, batch_verdict, judge, lr_verdict
from archscale.laws import LawDataError, PowerLaw
from archscale.laws.hyper import cell_optimum, explained_variance, quadratic_optimum, varying_inputs
from archscale.laws.resampling import spawn_seeds

ESTIMATORS = {"cell": cell_optimum, "smoothed": quadratic_optimum}
"""How a grid's optimum is read: its lowest cell, or the vertex of a quadratic around it."""
TARGETS = {"batch_size": ("edge_batch", "B_opt", batch_verdict), "lr": ("edge_lr", "lr_opt", lr_verdict)}
BASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "(a)": ("equal loss", ("loss",)),
    "(b)": ("matched active parameters and tokens", ("N_active", "tokens")),
    "(c)": ("matched compute", ("compute",)),
    "(d)": ("matched total parameters and tokens", ("N", "tokens")),
}
REGION_POINTS = 25  # per input: the candidate reference points of the shared region
NAMES = {"loss": "L", "N_active": "N_active", "N": "N", "tokens": "D", "compute": "C"}


def optimum_estimates(cells: pd.Series, info: dict) -> list[dict]:
    """One grid's optimum by each estimator (``cells``: loss indexed by ``batch_size`` and ``lr``), each row
    ``info`` plus the estimate; the smoothed row says how far it lies from the lowest cell (``apart_*``:
    smoothed ÷ cell)."""
    found = {name: estimate(cells) for name, estimate in ESTIMATORS.items()}
    apart = {f"apart_{axis}": found["smoothed"][axis] / found["cell"][axis] for axis in TARGETS}
    return [
        info | {"estimator": name, "skipped": None} | estimate | (apart if name == "smoothed" else {})
        for name, estimate in found.items()
    ]


def optima_table(grids: Iterable[tuple[dict, pd.Series]]) -> pd.DataFrame:
    """The optima of grids given as (info, cells); ``info`` holds ``grid``, ``kind``, ``N`` (total
    parameters), ``N_active`` and ``tokens``. Adds ``compute`` = 6·N_active·tokens."""
    rows = [row for info, cells in grids for row in optimum_estimates(cells, info)]
    table = pd.DataFrame(rows)
    return table.assign(compute=6.0 * table["N_active"] * table["tokens"])


@dataclass
class OptimaFit(Result):
    """One family's optimum ``target`` (by ``estimator``) against the inputs of comparison ``basis``:
    ``inputs`` those that vary across its grids (``held``: the ones that do not, at their value), ``r2``
    the share of the log optima's variance the fit explains, ``n_edge`` optima left out as bounds."""

    family: str
    target: str
    estimator: str
    basis: str
    inputs: list[str] = field(default_factory=list)
    held: dict[str, float] = field(default_factory=dict)
    n_optima: int = 0
    n_edge: int = 0
    r2: float | None = None
    fit: dict | None = None
    skipped: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Matched(Result):
    """MoE ÷ dense of one optimum under one comparison, at ``reference`` (None: the families share no
    region there, so no verdict); ``verdict`` is :data:`NOT_TESTED` where none is given, ``note`` why."""

    label: str
    basis: str
    reference: dict[str, float] | None = None
    ratio: float | None = None
    lower: float | None = None
    upper: float | None = None
    level: float | None = None
    verdict: str = NOT_TESTED
    note: str | None = None


@dataclass
class FairVerdict(Result):
    """A claim judged under all four comparisons; ``verdict`` holds the combined verdict (its effect and
    interval are the equal-loss ones, its note says which comparisons agree)."""

    target: str
    estimator: str
    comparisons: list[Matched]
    verdict: Verdict


@dataclass
class FairComparisons(Result):
    """Every grid's optima, the fits per family, target, estimator and comparison, and the verdicts.
    ``apart``: per target, the median and largest factor between the smoothed and the cell optimum;
    ``edges``: per estimator and target, how many optima lie on a grid edge (of how many); ``skipped``: why
    no comparison could be made at all (the rest is then empty)."""

    optima: list[dict]
    fits: list[OptimaFit]
    verdicts: list[FairVerdict]
    apart: dict[str, dict[str, float]]
    edges: dict[str, dict[str, list[int]]]
    skipped: str | None = None


def _fit(
    rows: pd.DataFrame, family: str, target: str, estimator: str, label: str, bootstrap: int, seed: int
) -> tuple[OptimaFit, PowerLaw | None]:
    """The power law of one family's interior optima on the inputs of comparison ``label`` that vary."""
    edge, _, _ = TARGETS[target]
    basis = BASES[label][1]
    result = OptimaFit(family=family, target=target, estimator=estimator, basis=label)
    usable = rows[rows["skipped"].isna()]
    interior = usable[~usable[edge].astype(bool)]
    result.n_optima, result.n_edge = len(usable), len(usable) - len(interior)
    if len(interior) < 3:
        result.skipped = f"{len(interior)} {family} optima inside their grids; a fit needs 3 or more"
        if len(usable) < len(rows):
            why = rows["skipped"].dropna().iloc[0]
            result.skipped += (
                f" ({len(rows) - len(usable)} of {len(rows)} grids have no {estimator} optimum: {why})"
            )
        return result, None
    result.inputs = list(varying_inputs(interior, basis))
    result.held = {c: float(np.exp(np.log(interior[c]).mean())) for c in basis if c not in result.inputs}
    if not result.inputs:
        result.skipped = f"the {family} grids hold {', '.join(basis)} fixed: nothing to fit the optima on"
        return result, None
    points = interior.assign(run_id=interior["grid"])  # the unit of the noise: one grid
    try:
        with recorded_warnings(result.warnings):
            law = PowerLaw(
                target=target,
                inputs=tuple(result.inputs),
                loss="squared",
                bootstrap=bootstrap,
                seed=seed,
                resample="run",
            ).fit(points)
    except LawDataError as err:
        result.skipped = f"{family}: {err}"
        return result, None
    result.fit, result.r2 = fit_summary(law), explained_variance(law, points)
    return result, law


def _inside(points: np.ndarray, hull_points: np.ndarray) -> np.ndarray:
    """Which ``points`` lie in the convex hull of ``hull_points`` (log space). A flat hull (points on a line,
    e.g. grids at one tokens-per-parameter ratio) is the segment between its extreme points: a point counts
    as inside only on that segment (within 1 % in log space)."""
    try:
        return Delaunay(hull_points).find_simplex(points, tol=1e-9) >= 0
    except QhullError:
        centre = hull_points.mean(axis=0)
        direction = np.linalg.svd(hull_points - centre)[2][0]
        along = (hull_points - centre) @ direction
        offset = (points - centre) @ direction
        off_line = np.linalg.norm(points - centre - np.outer(offset, direction), axis=1)
        return (off_line <= 0.01) & (offset >= along.min() - 0.01) & (offset <= along.max() + 0.01)


def shared_reference(
    moe: pd.DataFrame, dense: pd.DataFrame, inputs: tuple[str, ...]
) -> tuple[dict | None, str]:
    """The centre (in logs) of the region of ``inputs`` both families' optima cover, or None with the reason
    when they share none: there a comparison would rest on extrapolating a fit."""
    logs = {
        kind: np.log(rows[list(inputs)].to_numpy(float)) for kind, rows in (("moe", moe), ("dense", dense))
    }
    lo = np.maximum(logs["moe"].min(axis=0), logs["dense"].min(axis=0))
    hi = np.minimum(logs["moe"].max(axis=0), logs["dense"].max(axis=0))
    ranges = "; ".join(
        f"{NAMES[c]}: MoE {np.exp(logs['moe'][:, i].min()):.3g}–{np.exp(logs['moe'][:, i].max()):.3g}, "
        f"dense {np.exp(logs['dense'][:, i].min()):.3g}–{np.exp(logs['dense'][:, i].max()):.3g}"
        for i, c in enumerate(inputs)
    )
    apart = [NAMES[c] for c, low, high in zip(inputs, lo, hi, strict=True) if low > high]
    if apart:
        return None, f"needs extrapolation: the families' {', '.join(apart)} ranges do not overlap ({ranges})"
    axes = np.meshgrid(*(np.linspace(a, b, REGION_POINTS) for a, b in zip(lo, hi, strict=True)))
    candidates = np.column_stack([axis.ravel() for axis in axes])
    keep = np.ones(len(candidates), dtype=bool)
    for points in logs.values():
        spread = points.max(axis=0) - points.min(axis=0) > 0
        if len(inputs) > 1 and spread.all():
            keep &= _inside(candidates, points)
    if not keep.any():
        return None, f"needs extrapolation: no point lies inside both families' grids ({ranges})"
    centre = np.exp(candidates[keep].mean(axis=0))
    return dict(zip(inputs, centre.tolist(), strict=True)), ranges


def _matched(
    label: str,
    laws: dict[str, PowerLaw | None],
    fits: dict[str, OptimaFit],
    rows: dict[str, pd.DataFrame],
    template: Verdict,
) -> Matched:
    """One comparison: its shared region, the ratio and interval there, and its own verdict."""
    name, inputs = BASES[label]
    matched = Matched(label=label, basis=name)
    if laws["moe"] is None or laws["dense"] is None:
        matched.note = "; ".join(fit.skipped for fit in fits.values() if fit.skipped)
        return matched
    edge = TARGETS[fits["moe"].target][0]
    interior = {k: r[r["skipped"].isna() & ~r[edge].astype(bool)] for k, r in rows.items()}
    reference, ranges = shared_reference(interior["moe"], interior["dense"], inputs)
    if reference is None:
        matched.note = ranges
        return matched
    matched.reference = reference
    matched.ratio, matched.lower, matched.upper, matched.level = ratio_at(
        laws["moe"], laws["dense"], reference
    )
    caveats = [f"{k}: {w}" for k, fit in fits.items() for w in fit.warnings]
    if matched.lower is None:
        matched.note = "; ".join(caveats) or "no interval (no bootstrap, or too few grids)"
        return matched
    matched.verdict = judge(matched.lower, matched.upper, template.no_effect, template.direction)
    matched.note = "; ".join([ranges, *caveats])
    return matched


def _no_verdicts(matched: list[Matched]) -> str:
    """The comparisons without a verdict, one clause per reason, so a reason shared by several (too few
    optima, ranges that do not meet) is said once."""
    by_note: dict[str, dict[str, list[str]]] = {}
    for m in matched:
        by_note.setdefault(m.note or "no reason recorded", {}).setdefault(m.basis, []).append(m.label)
    return "; ".join(
        ", ".join(f"{', '.join(labels)} {basis}" for basis, labels in bases.items()) + f": no verdict, {note}"
        for note, bases in by_note.items()
    )


def combine(comparisons: list[Matched]) -> tuple[str, str]:
    """The verdict of a claim under all comparisons, and why: the equal-loss one if every matched
    comparison the data allow agrees with it, else :data:`DEPENDS`."""
    equal, matched = comparisons[0], comparisons[1:]
    if equal.verdict == NOT_TESTED:
        return NOT_TESTED, f"no verdict at equal loss: {equal.note}"
    judged = [m for m in matched if m.verdict != NOT_TESTED]
    left = _no_verdicts([m for m in matched if m not in judged])
    differ = [m for m in judged if m.verdict != equal.verdict]
    if differ:
        said = ", ".join(f"{m.verdict} under {m.label} {m.basis}" for m in differ)
        reason = f"{equal.verdict} at equal loss (a), but {said}"
        return DEPENDS, "; ".join(filter(None, [reason, left]))
    if not judged:
        return equal.verdict, "; ".join(["only the equal-loss comparison is possible", left])
    agree = ", ".join(m.label for m in judged)
    return equal.verdict, "; ".join(filter(None, [f"the same under (a) and {agree}", left]))


def _verdict(target: str, estimator: str, comparisons: list[Matched]) -> FairVerdict:
    _, symbol, make = TARGETS[target]
    template = make(None, ())
    equal = comparisons[0]
    verdict, reason = combine(comparisons)
    combined = Verdict(
        claim=template.claim.removesuffix(" at equal loss"),
        paper=template.paper,
        measure=f"{symbol} MoE ÷ dense ({estimator} optima) at equal loss and matched (b)–(d)",
        no_effect=template.no_effect,
        direction=template.direction,
        effect=equal.ratio,
        lower=equal.lower,
        upper=equal.upper,
        level=equal.level,
        verdict=verdict,
        note=reason,
    )
    return FairVerdict(target=target, estimator=estimator, comparisons=comparisons, verdict=combined)


def _summaries(optima: pd.DataFrame) -> tuple[dict, dict]:
    smoothed = optima[(optima["estimator"] == "smoothed") & optima["skipped"].isna()]
    apart = {}
    for axis in TARGETS:
        factor = np.exp(np.abs(np.log(smoothed[f"apart_{axis}"].to_numpy(float))))
        apart[axis] = {"median": float(np.median(factor)), "max": float(factor.max())} if len(factor) else {}
    edges = {
        estimator: {
            axis: [int(rows[edge].astype(bool).sum()), len(rows)]
            for axis, (edge, _, _) in TARGETS.items()
            for rows in [optima[(optima["estimator"] == estimator) & optima["skipped"].isna()]]
        }
        for estimator in ESTIMATORS
    }
    return apart, edges


def fair_comparisons(optima: pd.DataFrame, *, bootstrap: int = 200, seed: int = 0) -> FairComparisons:
    """Fits, comparisons (a)–(d) and verdicts for B_opt and lr_opt by each estimator, from
    :func:`optima_table`'s rows; every fit has its own random stream derived from ``seed``."""
    keys = [(t, e, b, f) for t in TARGETS for e in ESTIMATORS for b in BASES for f in FAMILIES]
    seeds = dict(zip(keys, spawn_seeds(seed, len(keys)), strict=True))
    fits, verdicts = [], []
    for target in TARGETS:
        for estimator in ESTIMATORS:
            rows = {f: optima[(optima["kind"] == f) & (optima["estimator"] == estimator)] for f in FAMILIES}
            comparisons = []
            for label in BASES:
                fitted = {
                    f: _fit(
                        rows[f], f, target, estimator, label, bootstrap, seeds[target, estimator, label, f]
                    )
                    for f in FAMILIES
                }
                found = {f: fit for f, (fit, _) in fitted.items()}
                fits += found.values()
                laws = {f: law for f, (_, law) in fitted.items()}
                comparisons.append(_matched(label, laws, found, rows, TARGETS[target][2](None, ())))
            verdicts.append(_verdict(target, estimator, comparisons))
    apart, edges = _summaries(optima)
    return FairComparisons(
        optima=optima.to_dict(orient="records"), fits=fits, verdicts=verdicts, apart=apart, edges=edges
    )


CLAIMS = {make(None, ()).claim: target for target, (_, _, make) in TARGETS.items()}
"""The verdict-table claims the matched comparisons speak to, and the optimum each one is about."""


def judge_fairly(rows: Iterable[Verdict], fair: FairComparisons | None) -> list[Verdict]:
    """The verdict rows with the B_opt and lr_opt claims judged again beside the matched comparisons (b)–(d)
    of both estimators (:func:`combine`): a claim keeps its equal-loss verdict only when every matched
    comparison the data allow agrees, else it depends on the comparison. The note says which disagree and
    which the data do not allow, so no comparison is dropped unsaid. Claims without an equal-loss verdict,
    and the other claims, stay as they are."""
    judged = []
    for row in rows:
        target = CLAIMS.get(row.claim)
        if fair is None or target is None or row.verdict == NOT_TESTED:
            judged.append(row)
            continue
        if fair.skipped:
            note = f"no matched comparison: {fair.skipped}"
            judged.append(replace(row, note="; ".join(filter(None, [note, row.note]))))
            continue
        equal = Matched(label="(a)", basis="equal loss", verdict=row.verdict, note=row.note)
        matched = [
            replace(m, label=f"{m.label[:-1]}, {found.estimator})")
            for found in fair.verdicts
            if found.target == target
            for m in found.comparisons[1:]
        ]
        verdict, reason = combine([equal, *matched])
        judged.append(replace(row, verdict=verdict, note="; ".join(filter(None, [reason, row.note]))))
    return judged


def study_fair_comparisons(
    hyperparams: HyperparamResult, *, bootstrap: int = 200, seed: int = 0
) -> FairComparisons | None:
    """Comparisons (a)–(d) on the study's own batch-size × LR grids, each read at its last common token
    count. None without grids (the hyperparameter analysis says why); only ``skipped`` when the runs table
    lacks the total and active parameter counts (``P``, ``P_active``) that place a grid in size."""
    grids = [g for g in hyperparams.grids if g["skipped"] is None]
    if not grids:
        return None
    if any("params" not in g or "active_params" not in g for g in grids):
        return FairComparisons(
            optima=[], fits=[], verdicts=[], apart={}, edges={},
            skipped="the runs table has no total and active parameter counts (columns P and P_active)",
        )  # fmt: skip
    cells = pd.DataFrame(hyperparams.cells).set_index(["batch_size", "lr"])
    pairs = [
        ({"grid": g["grid"], "kind": g["kind"], "N": g["params"], "N_active": g["active_params"],
          "tokens": g["tokens"]}, cells.loc[cells["grid"] == g["grid"], "loss"])
        for g in grids
    ]  # fmt: skip
    return fair_comparisons(optima_table(pairs), bootstrap=bootstrap, seed=seed)
