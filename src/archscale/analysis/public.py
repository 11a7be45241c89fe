"""The paper's claims on public dense-vs-MoE data at real scale: Clark et al. 2022's routing curves
(15M-1.3B parameters, E = 1 … 512, CC BY 4.0, shipped with the package), run through the same analyses and
verdicts as the user's runs.

- **Loss at equal compute**: validation loss against training compute C = FLOPs per step × steps over each
  run's stable interval (the generalisation analysis' rule), a power law per family, MoE ÷ dense at the
  centre of the shared compute range.
- **α_N** of dense and of E experts (default 8, S-Base, k = 1): Eq. 5 with E fixed fitted to the curves as
  the paper does, N and D being FLOPs per step and steps (the file has no tokens per step; a constant
  factor on N or D moves A and B, not α, β or α_N).
- **Does the benefit of E shrink with N** (Clark's finding, the paper's reason for "E < 100"): Eq. 4 on the
  final losses (dense averaged per size as E = 1, the router's main grid), c > 0 meaning it does; and the
  slope b of log10 L in log10 E at each model size.

And the paper's batch-size and learning-rate claims on Step Law's dense and MoE lr × batch grids (Li et al.
2025; no licence stated, so read from a path the user gives): each grid's optimum along its batch-size and LR
slices through the best cell (the paper's procedure at the final step), B_opt(L) and lr_opt(L) per family,
MoE ÷ dense at equal loss, judged beside the comparisons at matched size, tokens and compute
(:mod:`archscale.analysis.matched`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archscale.analysis.compare import Comparison, compare_families
from archscale.analysis.curve_ladder import AlphaIdentification, alpha_identification
from archscale.analysis.generalisation import STABLE_FROM
from archscale.analysis.hyperparams import HyperparamResult, fit_optima, grid_optima
from archscale.analysis.matched import FairComparisons, fair_comparisons, judge_fairly, optima_table
from archscale.analysis.powerfit import PowerFit, fit_families
from archscale.analysis.results import Result, fit_summary, recorded_warnings
from archscale.analysis.scale_exponents import AllocationResult, compute_allocation
from archscale.analysis.verdicts import Verdict, alpha_verdict, batch_verdict, judge, loss_verdict, lr_verdict
from archscale.data.public import (
    CLARK2022,
    MULTIPOWER2025,
    MULTIPOWER_SIZES,
    STEPLAW,
    clark2022_curves,
    clark2022_final,
    clark2022_runs,
    multipower2025_curves,
    multipower2025_steps,
    steplaw_grids,
)
from archscale.laws import ChinchillaLaw, ClarkLaw, LawDataError, PowerLaw
from archscale.laws.resampling import spawn_seeds


@dataclass
class ExpertSlope(Result):
    """log10 L = b·log10 E + d across the expert counts of one model size (dense included as E = 1)."""

    params: float
    b: float
    lower: float | None
    upper: float | None
    n_runs: int


@dataclass
class PublicEvidence(Result):
    """One public data set's answers to the paper's claims, labelled with its source and licence; ``fair``:
    its batch-size and LR optima compared at matched size, tokens and compute beside equal loss."""

    dataset: dict[str, str]
    selection: str
    loss_ratio: Comparison | None = None
    loss_fits: dict[str, PowerFit] = field(default_factory=dict)
    allocation: AllocationResult | None = None
    clark_fit: dict[str, Any] | None = None
    clark_fit_below_100: dict[str, Any] | None = None
    expert_slopes: list[ExpertSlope] = field(default_factory=list)
    hyperparams: HyperparamResult | None = None
    alpha_identification: AlphaIdentification | None = None
    fair: FairComparisons | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _stable(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's evals from ``STABLE_FROM`` of its steps on, in the laws' column names."""
    last = rows.groupby("run_id")["step"].transform("max")
    rows = rows[rows["step"] >= STABLE_FROM * last]
    return pd.DataFrame(
        {
            "run_id": rows["run_id"],
            "kind": rows["kind"],
            "compute": rows["flops_per_step"] * rows["step"],
            "model_scale": rows["flops_per_step"],  # FLOPs per token up to the unknown tokens per step
            "tokens": rows["step"].astype(float),  # tokens up to the same factor
            "experts": rows["num_experts"].astype(float),
            "loss": rows["loss_validation"],
        }
    ).reset_index(drop=True)


def _expert_slopes(table: pd.DataFrame, bootstrap: int, seed: int) -> list[ExpertSlope]:
    slopes = []
    for (params, rows), size_seed in zip(
        table.groupby("params"), spawn_seeds(seed, table["params"].nunique()), strict=True
    ):
        try:
            with recorded_warnings([]):
                law = PowerLaw(
                    target="loss", inputs=("experts",), loss="squared", bootstrap=bootstrap, seed=size_seed
                ).fit(rows)
        except LawDataError:
            continue
        lo, hi = law.intervals_.get("exponent", (None, None))
        # log L = exponent·log E + log λ, so b (in log10) is the same exponent.
        slopes.append(ExpertSlope(float(params), law.coefficients_["exponent"], lo, hi, len(rows)))
    return slopes


def _clark_fit(table: pd.DataFrame, bootstrap: int, seed: int) -> tuple[dict[str, Any], ClarkLaw]:
    notes: list[str] = []
    with recorded_warnings(notes):
        law = ClarkLaw(bootstrap=bootstrap, seed=seed).fit(table)
    return fit_summary(law) | {"n_runs": len(table), "warnings": notes}, law


def _shrink_verdict(law: ClarkLaw) -> Verdict:
    verdict = Verdict(
        claim="The benefit of more experts shrinks with model size",
        paper="§3 (Clark et al.), and the paper's reason to use Eq. 5 only for E < 100",
        measure="c in Eq. 4 (log10 L = a log N + b log E + c log N log E + d)",
        no_effect=0.0,
        direction="above",
        effect=law.coefficients_["c"],
    )
    if "c" in law.intervals_:
        verdict.lower, verdict.upper = law.intervals_["c"]
        verdict.level = law.level_
        verdict.verdict = judge(verdict.lower, verdict.upper, 0.0, "above")
    else:
        verdict.note = law.no_interval_
    return verdict


def clark_evidence(
    curves: pd.DataFrame | None = None,
    *,
    router: str = "S-Base",
    experts: int = 8,
    bootstrap: int = 200,
    seed: int = 0,
) -> PublicEvidence:
    """The paper's claims on Clark et al. 2022's curves (the shipped copy unless ``curves`` is given)."""
    curves = clark2022_curves() if curves is None else curves
    curves = curves[np.isfinite(curves["loss_validation"])]  # one dense eval is missing (NaN) in the file
    seeds = dict(
        zip(("loss", "allocation", "clark", "below_100", "slopes"), spawn_seeds(seed, 5), strict=True)
    )
    evidence = PublicEvidence(
        dataset=asdict(CLARK2022),
        selection=(
            f"dense (k = 1, base width) vs {router} with E = {experts} (k = 1, every other block routed, "
            "seed 42); validation loss on held-out data"
        ),
    )
    points = _stable(clark2022_runs(curves, router, experts))
    fitted = fit_families(points, target="loss", input="compute", bootstrap=bootstrap, seed=seeds["loss"])
    evidence.loss_fits = {family: fit for family, (fit, _) in fitted.items()}
    evidence.loss_ratio = compare_families(fitted)
    labels = {"dense": "Dense (Clark et al. 2022)", "moe": f"{router} E = {experts} (Clark et al. 2022)"}
    evidence.allocation = compute_allocation(
        points, bootstrap=bootstrap, seed=seeds["allocation"], labels=labels
    )
    table = clark2022_final(curves, router)
    evidence.clark_fit, law = _clark_fit(table, bootstrap, seeds["clark"])
    evidence.clark_fit_below_100, _ = _clark_fit(table[table["experts"] < 100], bootstrap, seeds["below_100"])
    evidence.expert_slopes = _expert_slopes(table, bootstrap, seeds["slopes"])
    evidence.notes.append(
        "No learning-rate or batch-size grids in this file: the B_opt and lr_opt claims, and their comparisons "
        "at matched size, tokens and compute, are not measured on it."
    )
    evidence.verdicts = [
        loss_verdict(evidence.loss_ratio, evidence.loss_fits.values()),
        alpha_verdict(evidence.allocation),
        _shrink_verdict(law),
    ]
    return evidence


def _steplaw_cells(runs: pd.DataFrame) -> Iterator[tuple[tuple, pd.DataFrame, pd.Series]]:
    """Each Step Law grid (kind, model, tokens) with its runs and its loss per (batch_size, lr) cell."""
    for key, grid in runs.groupby(["kind", "model", "tokens"]):
        cells = grid.groupby(["batch_tokens", "lr"])["loss"].mean()
        cells.index = cells.index.set_names(["batch_size", "lr"])
        yield key, grid, cells


def steplaw_fair_comparisons(path: str | Path, *, bootstrap: int = 200, seed: int = 0) -> FairComparisons:
    """MoE ÷ dense B_opt and lr_opt on Step Law's grids at equal loss and matched on active parameters and
    tokens, compute, and total parameters and tokens (:mod:`archscale.analysis.matched`)."""
    return _steplaw_fair(steplaw_grids(path), bootstrap, seed)


def _steplaw_fair(runs: pd.DataFrame, bootstrap: int, seed: int) -> FairComparisons:
    """:func:`steplaw_fair_comparisons` on grids already read (the panel reads the files once)."""
    grids = []
    for number, ((kind, model, tokens), grid, cells) in enumerate(_steplaw_cells(runs)):
        first = grid.iloc[0]
        info = {"grid": number, "kind": kind, "model": model, "N": float(first["N"]),
                "N_active": float(first["N_active"]), "tokens": float(tokens)}  # fmt: skip
        grids.append((info, cells))
    return fair_comparisons(optima_table(grids), bootstrap=bootstrap, seed=seed)


def steplaw_evidence(path: str | Path, *, bootstrap: int = 200, seed: int = 0) -> PublicEvidence:
    """The paper's B_opt and lr_opt claims on Step Law's grids, read from the folder ``path``."""
    runs = steplaw_grids(path)
    result = HyperparamResult(method="contour, final step")
    found: dict[str, list[dict]] = {"batch_size": [], "lr": []}
    for number, ((kind, model, tokens), grid, cells) in enumerate(_steplaw_cells(runs)):
        info = {"grid": number, "kind": kind, "model_scale": float(grid["N_active"].iloc[0])}
        optima = grid_optima(cells.to_frame(0), None, info, np.array([tokens]))
        for axis in found:
            found[axis] += optima[axis]
        result.grids.append(
            info | {"model": model, "tokens": float(tokens), "runs": len(grid), "skipped": None,
                    "batch_sizes": sorted(grid["batch_tokens"].unique().tolist()),
                    "lrs": sorted(grid["lr"].unique().tolist())}
        )  # fmt: skip
    result.batch_optima, result.lr_optima = found["batch_size"], found["lr"]
    batch_seed, lr_seed, fair_seed = spawn_seeds(seed, 3)
    families = set(runs["kind"])
    result.batch_fits, result.batch_comparison = fit_optima(
        found["batch_size"], "batch_size", families, bootstrap, batch_seed
    )
    result.lr_fits, result.lr_comparison = fit_optima(found["lr"], "lr", families, bootstrap, lr_seed)
    dense, moe = runs[runs["kind"] == "dense"], runs[runs["kind"] == "moe"]
    share = moe["N_active"] / moe["N"]
    fair = _steplaw_fair(runs, bootstrap, fair_seed)
    equal_loss = [
        batch_verdict(result.batch_comparison, result.batch_fits.values()),
        lr_verdict(result.lr_comparison, result.lr_fits.values()),
    ]
    return PublicEvidence(
        dataset=asdict(STEPLAW) | {"path": str(path), "sha256_read": runs.attrs["sha256"]},
        selection=(
            f"dense: {dense['N'].nunique()} sizes ({dense['N'].min() / 1e6:.0f}M–{dense['N'].max() / 1e9:.2f}B) "
            f"at {dense.groupby(['N', 'tokens']).ngroups} (N, D) pairs; MoE: {moe['N'].max() / 1e9:.2f}B total, "
            f"{moe['model'].nunique()} sparsities (active share {share.min():.2f}–{share.max():.2f}) at "
            f"{moe['tokens'].nunique()} token budgets; {len(runs)} runs, smoothed final training loss"
        ),
        hyperparams=result,
        fair=fair,
        notes=[
            f"Step Law's MoE models have {moe['N'].max() / dense['N'].max():.1f}–{moe['N'].max() / dense['N'].min():.0f}× "
            "the dense models' total parameters, and its own law has lr_opt falling as N^−0.71: at equal loss the "
            "learning-rate comparison mixes sparsity with total size."
        ],
        verdicts=judge_fairly(equal_loss, fair),
    )


def multipower_evidence(*, bootstrap: int = 200, seed: int = 0) -> PublicEvidence:
    """Which law identifies α_N on Luo et al.'s dense curves (3 sizes × 9 schedules, shipped): Eq. 5 on every
    logged point as the paper fits curves (D counted in steps: every run has the same batch, so the unknown
    tokens per step moves B, not α, β or α_N), beside the curve-ladder law on the same curves."""
    schedules = sorted(multipower2025_curves()["schedule"].unique())
    steps = pd.concat([multipower2025_steps(size, schedules) for size in MULTIPOWER_SIZES], ignore_index=True)
    steps["kind"] = "dense"
    points = steps.dropna(subset=["loss"]).assign(tokens=lambda t: t["step"].astype(float))
    eq5_seed, ladder_seed = spawn_seeds(seed, 2)
    notes: list[str] = []
    with recorded_warnings(notes):
        eq5 = ChinchillaLaw(size="params", bootstrap=bootstrap, seed=eq5_seed, resample="run").fit(points)
    identification = alpha_identification(
        steps, {"dense": fit_summary(eq5)}, size="params", bootstrap=bootstrap, seed=ladder_seed
    )
    identification.warnings = notes + identification.warnings
    return PublicEvidence(
        dataset=asdict(MULTIPOWER2025),
        selection=(
            f"dense only: {len(MULTIPOWER_SIZES)} sizes ({', '.join(MULTIPOWER_SIZES)}) × {len(schedules)} "
            f"learning-rate schedules, {points['run_id'].nunique()} curves, {len(points)} logged points; "
            "validation loss"
        ),
        alpha_identification=identification,
        notes=[
            "Dense runs only: this data set weighs in on whether α_N is identified from whole curves, not on "
            "dense against MoE. Clark et al.'s file gives no learning rates, so the curve law is not fitted there."
        ],
    )
