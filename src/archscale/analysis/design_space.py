"""The MoE design space on the user's runs: the three design laws fitted on the runs that vary
their knob, paired comparisons for the knobs no law covers, and the planner's answer.

Each run is one point: its smoothed loss at the end of its budget (a cooldown branch counts as a run of its
budget). Designs are read from the stored configs, so runs that share a size but not a design never merge.

- granularity law (Krajewski et al. 2024) on the MoE runs at the expert count most MoE runs use, softmax
  routing, the Switch loss and no shared expert, at every granularity;
- joint law (Ludziejewski et al. 2025) and sparsity law (Abnar et al. 2025) on the dense runs and the MoE
  runs at granularity 1 with softmax routing and no shared expert, at every expert count;
- shared expert and loss-free balancing: each against its reference design at the same backbone, budget
  and seed, as a mean log loss ratio with a t interval over the backbones (a backbone's budgets share a
  trunk, so the backbone is the independent unit);
- the planner at 10× the study's largest compute, by each law that could be fitted and is not degenerate
  (a coefficient on its bound or faded out: a constraint, not a law); when none is left, by the published
  laws in their own design spaces (Krajewski et al.'s E = 64 over G, Ludziejewski et al.'s top-1 over E),
  labelled as such;
- a held-out check of each fitted law: refitted without the largest backbone, how well it predicts that
  backbone's runs and ranks its designs.

The laws are fitted without intervals until a simulation of this design shows their bootstrap intervals
cover (``benchmarks/calibration.py --law granularity``); the paired ratios' t intervals need no simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from archscale.analysis.points import (
    final_points,
    finished_runs,
    smooth,
    stored_models,
)
from archscale.analysis.results import Result, fit_summary
from archscale.laws import GranularityLaw, JointMoELaw, LawDataError, SparsityLaw, published
from archscale.laws.base import Law
from archscale.laws.design import design_grid, plan_designs
from archscale.models.config import DESIGN_DEFAULTS
from archscale.quantities import law_names

PUBLISHED_GRIDS = {
    "krajewski2024": design_grid([64], [1], [1, 2, 4, 8, 16, 32, 64], [0]),  # their expansion rate E = 64
    "ludziejewski2025": design_grid([1, 4, 8, 16, 32, 64], [1], [1], [0]),  # top-1, non-granular experts
}


def design_points(runs: pd.DataFrame, curve: pd.DataFrame, window: int) -> pd.DataFrame:
    """One row per finished run: its design knobs, sizes, tokens and smoothed final loss."""
    runs = finished_runs(runs)
    ends = final_points(smooth(curve[curve["run_id"].isin(runs["run_id"])], window), "lm_loss")
    table = runs.merge(ends, on="run_id")
    models = stored_models(table)
    knobs = pd.DataFrame({
        "experts": [m["n_experts"] for m in models], "top_k": [m["top_k"] for m in models],
        "granularity": [m["granularity"] for m in models], "shared": [m["n_shared_experts"] for m in models],
        "router_score": [m["router_score"] for m in models], "balance": [m["balance"] for m in models],
        "backbone": [m["d_model"] * 1000 + m["n_layers"] for m in models],
    })  # fmt: skip
    columns = ["run_id", "model_name", "kind", "N", "P", "P_active", "tokens", "seed", "loss"]
    out = pd.concat([table[columns].reset_index(drop=True), knobs], axis=1)
    out["trunk"] = table["trunk"].to_numpy() if "trunk" in table else out["run_id"]
    out = out.rename(columns=law_names("runs", "N", "P", "P_active"))
    out["sparsity"] = 1.0 - out["top_k"] / out["experts"]
    out["tokens"] = out["tokens"].astype(float)
    return out


def has_design_variants(runs: pd.DataFrame) -> bool:
    """Whether the MoE runs vary a design knob beyond the paper's (the design-space panel applies)."""
    designs = {
        (m["n_experts"], *(m[f] for f in DESIGN_DEFAULTS)) for m in stored_models(runs) if m["kind"] == "moe"
    }
    return len(designs) > 1


def paper_design_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The dense runs and the MoE runs of the paper's design at the expert count most MoE runs use: the runs
    the paper's analyses read when a store also holds other designs."""
    models = stored_models(runs)
    plain = np.array([all(m[f] == d for f, d in DESIGN_DEFAULTS.items()) for m in models])
    experts = pd.Series([m["n_experts"] for m in models], index=runs.index)
    moe = (runs["kind"] == "moe").to_numpy() & plain
    common = experts[(runs["kind"] == "moe").to_numpy()].mode().iloc[0] if moe.any() else None
    return runs[(runs["kind"] == "dense").to_numpy() | (moe & (experts == common).to_numpy())]


@dataclass
class PairedKnob(Result):
    """One knob against its reference design, paired by backbone and budget."""

    knob: str
    reference: str
    variant: str
    pairs: int
    backbones: int
    ratio: float | None = None  # mean variant ÷ reference loss (geometric)
    interval: list[float] | None = None
    longest: list[dict[str, float]] = field(default_factory=list)  # per backbone at its longest budget
    skipped: str | None = None


@dataclass
class DesignSpaceResult(Result):
    points: pd.DataFrame
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    degenerate: dict[str, str] = field(default_factory=dict)  # fitted, but a coefficient on its bound
    paired: list[PairedKnob] = field(default_factory=list)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    held_out: dict[str, dict[str, Any]] = field(default_factory=dict)  # per fitted law (see _held_out)
    plan_compute: float | None = None
    fallback: bool = False  # the plans come from published laws: no design law fitted on these runs
    base_experts: int | None = None  # the expert count the granularity and paired comparisons hold fixed
    notes: list[str] = field(default_factory=list)


def _plain(points: pd.DataFrame) -> pd.Series:
    return (points["shared"] == 0) & (points["router_score"] == "softmax") & (points["balance"] == "aux_loss")


def _fit(law: Law, table: pd.DataFrame) -> Law:
    """A trunk and its cooldown branches share their stable phase: one unit of the laws' noise model."""
    return law.fit(table.assign(run_id=table["trunk"]))


def _held_out(make_law: Callable[[], Law], table: pd.DataFrame) -> dict[str, Any] | None:
    """The law refitted without the largest backbone: |relative error| on that backbone's runs, and the
    Spearman correlation of predicted and measured loss over its designs at its longest budget."""
    if table["backbone"].nunique() < 3:
        return None
    largest = table.groupby("backbone")["active_params"].mean().idxmax()
    test = table[table["backbone"] == largest]
    try:
        law = _fit(make_law(), table[table["backbone"] != largest])
    except LawDataError:
        return None
    error = np.abs(law.predict(test) / test["loss"].to_numpy() - 1)
    last = test["tokens"] == test["tokens"].max()
    rank = (
        stats.spearmanr(law.predict(test[last]), test.loc[last, "loss"]).statistic
        if last.sum() >= 3
        else None
    )
    return {"backbone": int(largest), "active_params": float(test["active_params"].mean()), "points": len(test),
            "mean_abs_rel_error": float(error.mean()), "max_abs_rel_error": float(error.max()),
            "designs": int(last.sum()), "rank_correlation": None if rank is None else float(rank),
            "refit_on_bound": law.pinned_}  # fmt: skip


def _paired(
    points: pd.DataFrame,
    knob: str,
    reference: pd.Series,
    variant: pd.Series,
    names: tuple[str, str],
    level: float,
) -> PairedKnob:
    keys = ["backbone", "tokens", "seed"]  # a repeat of the study (another seed) pairs within itself
    pairs = points[reference][[*keys, "loss"]].merge(
        points[variant][[*keys, "loss"]], on=keys, suffixes=("_ref", "_var")
    )
    result = PairedKnob(knob, names[0], names[1], len(pairs), pairs["backbone"].nunique())
    last = pairs[pairs["tokens"] == pairs.groupby("backbone")["tokens"].transform("max")]
    result.longest = [{"backbone": int(r.backbone), "reference": float(r.loss_ref), "variant": float(r.loss_var)}
                      for r in last.itertuples()]  # fmt: skip
    if result.backbones < 2:
        result.skipped = f"needs the two designs at two or more backbones; found {result.backbones}"
        return result
    per_backbone = np.log(pairs["loss_var"] / pairs["loss_ref"]).groupby(pairs["backbone"]).mean().to_numpy()
    mean, n = per_backbone.mean(), len(per_backbone)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * per_backbone.std(ddof=1) / math.sqrt(n)
    result.ratio, result.interval = math.exp(mean), [math.exp(mean - half), math.exp(mean + half)]
    return result


def design_space(
    runs: pd.DataFrame, curve: pd.DataFrame, *, window: int = 25, level: float = 0.95
) -> DesignSpaceResult:
    """The design-space analyses of the module docstring."""
    points = design_points(runs, curve, window)
    result = DesignSpaceResult(points=points)
    plain = _plain(points)
    moe = points["kind"] == "moe"
    common = int(points.loc[moe, "experts"].mode().iloc[0]) if moe.any() else None  # the designs' base E
    result.base_experts = common
    subsets: dict[str, tuple[Callable[[], Law], pd.Series]] = {
        "granularity": (lambda: GranularityLaw(size="params"), moe & plain & (points["experts"] == common)),
        "joint_moe": (lambda: JointMoELaw(size="active_params"), plain & (points["granularity"] == 1)),
        "sparsity": (lambda: SparsityLaw(size="params"), plain & (points["granularity"] == 1)),
    }  # fmt: skip
    fitted: dict[str, Law] = {}
    for name, (make_law, rows) in subsets.items():
        try:
            law = _fit(make_law(), points[rows])
        except LawDataError as err:
            result.skipped[name] = str(err)
            continue
        result.fits[name] = fit_summary(law) | {"points": int(rows.sum())}
        if reason := law.degenerate_:  # a constraint, not a law: it plans nothing
            result.degenerate[name] = f"the {name} fit is degenerate: {reason} and it gives no plan"
        else:
            fitted[name] = law
        if (check := _held_out(make_law, points[rows])) is not None:
            result.held_out[name] = check
    g1 = plain & (points["granularity"] == 2)
    result.paired.append(_paired(points, "shared", g1 & moe, (points["shared"] > 0) & (points["granularity"] == 2),
                                 ("G=2, no shared expert", "G=2, one shared expert"), level))  # fmt: skip
    reference = plain & moe & (points["granularity"] == 1) & (points["experts"] == common)
    variant = (points["balance"] == "loss_free") & (points["granularity"] == 1) & (points["shared"] == 0)
    result.paired.append(_paired(points, "balance", reference, variant,
                                 ("softmax + Switch loss", "sigmoid + loss-free bias"), level))  # fmt: skip
    result.plan_compute = 10 * float((6 * points["active_params"] * points["tokens"]).max())
    grids = {"granularity": design_grid([common or 8], [2], [1, 2, 4, 8, 16], [0]),
             "joint_moe": design_grid([1, 4, 8, 16, 32, 64], [2], [1], [0]),
             "sparsity": design_grid([1, 4, 8, 16, 32, 64], [2], [1], [0])}  # fmt: skip
    planners = {name: (law, grids[name]) for name, law in fitted.items()}
    if not planners:  # the labelled fallback: the published laws, each in the design space it was fitted on
        result.fallback = True
        planners = {
            f"published {key}": (published(key).laws[0], grid) for key, grid in PUBLISHED_GRIDS.items()
        }
        result.notes.append(
            "no design law fitted on these runs pins its coefficients down, so the plans are the published laws' "
            "(Krajewski et al. 2024 at E = 64; Ludziejewski et al. 2025 for top-1 experts of the dense width), "
            "in their own design spaces: their losses are on their corpora and tokenizers, not yours, and this "
            "compute lies far below the ranges they were fitted on; read them for the ranking of designs only"
        )
    for name, (law, grid) in planners.items():
        plan = plan_designs(result.plan_compute, law, grid, label=name)
        result.plans[name] = plan.to_dict()
        if len(plan.choices) > 1 and math.isclose(plan.choices[0].loss, plan.choices[1].loss, rel_tol=1e-9):
            result.notes.append(f"the {name} law predicts the same loss for its best designs: no choice")
    result.notes.append(
        "plans extrapolate to 10x the study's largest 6 N_act D; the planner's compute also counts the "
        "router's FLOPs (Krajewski et al. 2024 Eq. 10), which is what bounds the granularity G"
    )
    result.notes.append(
        "the design laws are fitted without intervals: simulations of this design show their bootstrap "
        "intervals do not cover at the nominal rate (benchmarks/calibration.py --law granularity, --law joint)"
    )
    return result
