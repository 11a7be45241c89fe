"""Scaling-law fitting with uncertainty: estimators, allocation, IsoFLOP analysis, extrapolation audits,
hyperparameter laws and the catalogue of published laws. NumPy/SciPy only (no torch).

Quick start::

    from archscale.laws import WangLaw, optimal_allocation
    law = WangLaw(bootstrap=1000).fit(table)      # columns model_scale, tokens, experts, loss[, run_id]
    print(law.summary())
    plan = optimal_allocation(law, compute=1e21, experts=8)
"""

from archscale.laws.audit import Audit, extrapolation_audit
from archscale.laws.base import Law, law_class, registered_laws
from archscale.laws.catalogue import CATALOGUE, PublishedLaw, published, table1_rows
from archscale.laws.columns import COLUMNS, apply_mapping, parse_mapping, read_table
from archscale.laws.compute_optimal import Allocation, numeric_allocation, optimal_allocation
from archscale.laws.curve_laws import AnnealingLaw, CurveLadderLaw, MultiPowerLaw
from archscale.laws.downstream_laws import AccuracyLaw, LossToLossLaw, TaskLossLaw, TwoStepLaw
from archscale.laws.errors import (
    ConvergenceWarning,
    DuplicateRowsWarning,
    LawDataError,
    NotFittedError,
    OnBoundWarning,
    ResamplingWarning,
)
from archscale.laws.hyper import fit_optimum_law, fit_step_law, select_optima
from archscale.laws.isoflop import IsoFlopFit, isoflop_fit
from archscale.laws.loss_laws import (
    ChinchillaLaw,
    ClarkLaw,
    GranularityLaw,
    JointMoELaw,
    KaplanComputeLaw,
    SparsityLaw,
    WangLaw,
)
from archscale.laws.plan import Plan, make_plan
from archscale.laws.power import PowerLaw
from archscale.laws.table1 import (
    ALPHA_N_GAIN,
    alpha_N_gain,
    format_table1,
    published_alpha_N_gain,
    table1,
)

__all__ = [
    "ALPHA_N_GAIN",
    "CATALOGUE",
    "COLUMNS",
    "AccuracyLaw",
    "Allocation",
    "AnnealingLaw",
    "Audit",
    "ChinchillaLaw",
    "ClarkLaw",
    "ConvergenceWarning",
    "CurveLadderLaw",
    "DuplicateRowsWarning",
    "GranularityLaw",
    "IsoFlopFit",
    "JointMoELaw",
    "KaplanComputeLaw",
    "Law",
    "LawDataError",
    "LossToLossLaw",
    "MultiPowerLaw",
    "NotFittedError",
    "OnBoundWarning",
    "Plan",
    "PowerLaw",
    "PublishedLaw",
    "ResamplingWarning",
    "SparsityLaw",
    "TaskLossLaw",
    "TwoStepLaw",
    "WangLaw",
    "alpha_N_gain",
    "apply_mapping",
    "extrapolation_audit",
    "fit_optimum_law",
    "fit_step_law",
    "format_table1",
    "isoflop_fit",
    "law_class",
    "make_plan",
    "numeric_allocation",
    "optimal_allocation",
    "parse_mapping",
    "published",
    "published_alpha_N_gain",
    "read_table",
    "registered_laws",
    "select_optima",
    "table1",
    "table1_rows",
]
