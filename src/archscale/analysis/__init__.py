"""Turn stored runs into the paper's findings: six analyses over plain DataFrames, each returning a
dataclass with a JSON-safe ``to_dict()`` and a ``skipped`` reason when the data cannot support it.

1. :func:`loss_law_extrapolation` — Eq. 5 fitted on the smaller models, the largest predicted (Figure 1).
2. :func:`compute_allocation` — α_N, α_D with intervals beside the published Table 1.
3. :func:`optimal_hyperparameters` — B_opt(L) and lr_opt(L) from a batch-size × LR grid (Figures 2-5).
4. :func:`noise_scale_vs_loss` — measured B_simple against the loss, MoE ÷ dense at equal loss.
5. :func:`generalisation_vs_compute` — test loss against compute and the data-efficiency gain (Figure 6).
6. :func:`replication_verdicts` — the paper's claims judged by their intervals.

:func:`clark_evidence` runs the same analyses and verdicts on public data at real scale (Clark et al. 2022's
routing curves, shipped with the package) for the report's evidence panel.

Quick start::

    from archscale.analysis import from_store
    with ResultsStore("results.sqlite") as store:
        analyses = from_store(store, bootstrap=200)
    summary = analyses.to_dict()
"""

from archscale.analysis.compare import Comparison, compare
from archscale.analysis.errors import AnalysisError
from archscale.analysis.extrapolation import CurveFit, Extrapolation, LossLawResult, loss_law_extrapolation
from archscale.analysis.generalisation import GeneralisationResult, generalisation_vs_compute
from archscale.analysis.gradient_noise import NoiseScaleResult, noise_scale_vs_loss
from archscale.analysis.hyperparams import Heatmap, HyperparamResult, optimal_hyperparameters
from archscale.analysis.matched import FairComparisons, fair_comparisons
from archscale.analysis.points import POINT_RULES, law_points, loss_points, smooth
from archscale.analysis.powerfit import PowerFit
from archscale.analysis.public import PublicEvidence, clark_evidence
from archscale.analysis.results import Result, jsonable
from archscale.analysis.scale_exponents import AllocationResult, compute_allocation
from archscale.analysis.suite import Analyses, analyse, from_store
from archscale.analysis.verdicts import (
    DEPENDS,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    Verdict,
    VerdictTable,
    judge,
    replication_verdicts,
)

__all__ = [
    "DEPENDS",
    "INCONCLUSIVE",
    "NOT_SUPPORTED",
    "NOT_TESTED",
    "POINT_RULES",
    "SUPPORTED",
    "AllocationResult",
    "Analyses",
    "AnalysisError",
    "Comparison",
    "CurveFit",
    "Extrapolation",
    "FairComparisons",
    "GeneralisationResult",
    "Heatmap",
    "HyperparamResult",
    "LossLawResult",
    "NoiseScaleResult",
    "PowerFit",
    "PublicEvidence",
    "Result",
    "Verdict",
    "VerdictTable",
    "analyse",
    "clark_evidence",
    "compare",
    "compute_allocation",
    "fair_comparisons",
    "from_store",
    "generalisation_vs_compute",
    "jsonable",
    "judge",
    "law_points",
    "loss_law_extrapolation",
    "loss_points",
    "noise_scale_vs_loss",
    "optimal_hyperparameters",
    "replication_verdicts",
    "smooth",
]
