"""All six analyses in one call, over the store's three tables (or CSVs of the same shape)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from archscale.analysis.curve_ladder import AlphaIdentification, alpha_identification
from archscale.analysis.curve_tables import step_table
from archscale.analysis.design_space import has_design_variants, paper_design_runs
from archscale.analysis.extrapolation import LossLawResult, loss_law_extrapolation
from archscale.analysis.generalisation import STABLE_FROM, GeneralisationResult, generalisation_vs_compute
from archscale.analysis.gradient_noise import NoiseScaleResult, noise_scale_vs_loss
from archscale.analysis.hyperparams import HyperparamResult, optimal_hyperparameters
from archscale.analysis.lr_transfer import has_lr_ladders
from archscale.analysis.matched import FairComparisons, judge_fairly, study_fair_comparisons
from archscale.analysis.points import (
    SMOOTHING_WINDOW,
    check_one_corpus,
    finished_runs,
    law_points,
    store_runs,
    stored_models,
)
from archscale.analysis.results import Result
from archscale.analysis.scale_exponents import AllocationResult, compute_allocation
from archscale.analysis.verdicts import VerdictTable, replication_verdicts
from archscale.laws.resampling import spawn_seeds

if TYPE_CHECKING:
    from archscale.store import ResultsStore


@dataclass
class Analyses(Result):
    """The results of analyses 1-6; ``to_dict()`` is JSON-safe. ``fair``: the batch-size and LR optima
    compared at matched size, tokens and compute beside equal loss (None without grids)."""

    loss_law: LossLawResult
    allocation: AllocationResult
    hyperparams: HyperparamResult
    noise: NoiseScaleResult
    generalisation: GeneralisationResult
    verdicts: VerdictTable
    alpha_identification: AlphaIdentification | None = None
    fair: FairComparisons | None = None


def analyse(
    runs: pd.DataFrame,
    curve: pd.DataFrame,
    evals: pd.DataFrame,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    window: int = SMOOTHING_WINDOW,
    points_per_run: int = 24,
    hyper_method: Literal["contour", "minicpm"] = "contour",
    n_levels: int = 12,
    stable_from: float = STABLE_FROM,
    allow_mixed_corpora: bool = False,
    point_rule: str = "auto",
) -> Analyses:
    """Run analyses 1-6; each one that the data cannot support says why in its ``skipped``.

    Each analysis draws from its own random stream derived from ``seed``. Runs trained on different corpora
    (``runs.corpus``, the stored fingerprint) are refused unless ``allow_mixed_corpora``. ``point_rule``: the
    :func:`~archscale.analysis.points.law_points` rule of the loss-law analyses (1-2).
    """
    check_one_corpus(finished_runs(runs), allow_mixed_corpora)
    names = ("loss", "allocation", "hyper", "noise", "tested", "ladder", "matched")
    seeds = dict(zip(names, spawn_seeds(seed, len(names)), strict=True))
    points = law_points(runs, curve, rule=point_rule, points_per_run=points_per_run, window=window)
    allocation = compute_allocation(points, bootstrap=bootstrap, seed=seeds["allocation"])
    steps = ladder_steps(runs, curve, points) if "config" in runs else None  # each run's planned schedule
    identification = None
    if steps is not None:
        identification = alpha_identification(
            steps, allocation.fits, bootstrap=bootstrap, seed=seeds["ladder"]
        )
    hyperparams = optimal_hyperparameters(
        runs,
        curve,
        method=hyper_method,
        n_levels=n_levels,
        window=window,
        bootstrap=bootstrap,
        seed=seeds["hyper"],
    )
    noise = noise_scale_vs_loss(
        runs, curve, points_per_run=points_per_run, window=window, bootstrap=bootstrap, seed=seeds["noise"]
    )
    tested = generalisation_vs_compute(
        runs, evals, stable_from=stable_from, bootstrap=bootstrap, seed=seeds["tested"]
    )
    fair = study_fair_comparisons(hyperparams, bootstrap=bootstrap, seed=seeds["matched"])
    verdicts = replication_verdicts(tested, allocation, hyperparams, noise)
    return Analyses(
        loss_law=loss_law_extrapolation(points, bootstrap=bootstrap, seed=seeds["loss"], steps=steps),
        allocation=allocation,
        hyperparams=hyperparams,
        noise=noise,
        generalisation=tested,
        verdicts=VerdictTable(rows=judge_fairly(verdicts.rows, fair)),
        alpha_identification=identification,
        fair=fair,
    )


def sp_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs outside the LR-transfer panel: with LR ladders in other parametrisations (the panel's) in the
    store, the SP runs only; else all of them."""
    if not has_lr_ladders(runs):
        return runs
    return runs[[m["parametrization"] == "sp" for m in stored_models(runs)]]


def paper_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the paper's analyses read: the SP runs (:func:`sp_runs`), and of those, when MoE design
    variants are present (the design-space panel's), the paper's designs
    (:func:`~archscale.analysis.design_space.paper_design_runs`)."""
    runs = sp_runs(runs)
    return paper_design_runs(runs) if has_design_variants(runs) else runs


def ladder_steps(runs: pd.DataFrame, curve: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """The whole-curve table of the finished runs Eq. 5 was fitted on (``points``' runs, or their trunks and
    cooldown branches)."""
    finished = finished_runs(runs)
    used = finished["run_id"].isin(points["run_id"])
    if "trunk" in finished:
        used |= finished["trunk"].isin(points["run_id"])
    chosen = finished[used]
    return step_table(
        chosen, curve, {r: json.loads(c) for r, c in zip(chosen["run_id"], chosen["config"], strict=True)}
    )


def from_store(store: ResultsStore, runs: pd.DataFrame | None = None, **options: Any) -> Analyses:
    """:func:`analyse` on a results store's finished runs, curves and test evals; ``runs``: the store's runs
    with their metadata (:func:`store_runs`) when the caller has already read them."""
    runs = store_runs(store) if runs is None else runs
    return analyse(runs, store.curve(), store.evals(split="test", subset="all"), **options)
