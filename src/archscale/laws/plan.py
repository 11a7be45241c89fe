"""A compute-optimal plan: N_opt, D_opt and loss from a loss law, then every law that can follow.

Laws are chained by column names: a Chinchilla/Wang law allocates the compute (size, ``tokens``, ``loss``);
any other law whose inputs are then known adds its target (``batch_size`` from ``loss`` as in MiniCPM,
``lr`` from ``params`` and ``tokens`` as in Step Law, ``model_scale`` from ``compute`` as in DeepSeek…).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archscale.laws.base import Law
from archscale.laws.compute_optimal import check_budget, numeric_allocation, optimal_allocation
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw

_NAMES = {"model_scale": "N_opt", "params": "N_opt", "tokens": "D_opt"}


def chain_laws(
    quantities: dict[str, float],
    laws: Sequence[tuple[str, Law]],
    sources: dict[str, str],
    intervals: dict[str, list[float]],
) -> list[tuple[str, Law]]:
    """Add to ``quantities`` the target of every law whose inputs are known, repeatedly (a batch size from
    the loss, then an LR from the batch size…), noting each one's source and interval; returns the laws
    left unused."""
    pending = list(laws)
    progress = True
    while progress:  # each pass adds every law whose inputs are now known
        progress = False
        for label, law in list(pending):
            if law.target in quantities or not set(law.inputs) <= set(quantities):
                continue
            point = {c: [quantities[c]] for c in law.inputs}
            quantities[law.target] = float(law.predict(point)[0])
            name = _NAMES.get(law.target, law.target)
            sources[name] = label
            if law.bootstrap_ is not None:
                intervals[name] = [float(v[0]) for v in law.predict_interval(point)]
            pending.remove((label, law))
            progress = True
    return pending


def why_unused(label: str, law: Law, quantities: dict[str, float], sources: dict[str, str]) -> str:
    """Why a law given to a plan added nothing."""
    if law.target in quantities:
        given_by = sources.get(_NAMES.get(law.target, law.target), "the plan's inputs")
        return f"{label} ({law.target}): already given by {given_by}"
    return f"{label} ({law.target}): needs {sorted(set(law.inputs) - set(quantities))}"


Given = Mapping[str, tuple[float, str, list[float] | None]]
"""Quantities a plan takes as given rather than from a law: name → (value, source, interval or None)."""


def take_given(
    given: Given | None,
    quantities: dict[str, float],
    sources: dict[str, str],
    intervals: dict[str, list[float]],
) -> None:
    """Enter the ``given`` quantities (an interval only when both its ends are known)."""
    for name, (value, source, interval) in (given or {}).items():
        quantities[name], sources[name] = value, source
        if interval is not None and None not in interval:
            intervals[name] = [float(v) for v in interval]


def make_plan(
    compute: float, laws: Sequence[tuple[str, Law]], experts: float = 1.0, given: Given | None = None
) -> dict[str, Any]:
    """Plan for ``compute`` FLOPs from labelled laws (``[("fit.json", law), ("deepseek2024", law), …]``);
    ``given`` quantities (e.g. an LR transferred from a μP ladder) take the place of the laws that would
    give them."""
    check_budget(compute, experts)
    quantities: dict[str, float] = {"compute": float(compute), "experts": float(experts)}
    intervals: dict[str, list[float]] = {}
    sources: dict[str, str] = {}
    take_given(given, quantities, sources, intervals)
    plan: dict[str, Any] = {"compute": float(compute), "experts": float(experts), "size": None}
    allocator = next(((label, law) for label, law in laws if isinstance(law, ChinchillaLaw)), None)
    if allocator is not None:
        label, law = allocator
        allocation = optimal_allocation(law, compute, experts)
        quantities |= {law.size: allocation.n_opt, "tokens": allocation.d_opt, "loss": allocation.loss}
        intervals |= {k: list(v) for k, v in allocation.intervals.items()}
        sources |= dict.fromkeys(("N_opt", "D_opt", "loss"), label)
        numeric_n, _ = numeric_allocation(law, compute, experts)
        plan |= {
            "size": law.size,
            "alpha_N": allocation.alpha_N,
            "alpha_D": allocation.alpha_D,
            "numeric_check": {"N_opt_numeric": numeric_n, "rel_diff": numeric_n / allocation.n_opt - 1.0},
        }
    pending = chain_laws(quantities, [(label, law) for label, law in laws if (label, law) != allocator],
                         sources, intervals)  # fmt: skip
    plan["size"] = plan["size"] or next((s for s in ("model_scale", "params") if s in quantities), None)
    if plan["size"] is None or "tokens" not in quantities:
        raise LawDataError(
            "no law given yields N_opt and D_opt for a compute budget: add a chinchilla/wang fit "
            "(--fit FIT.json) or a published allocation (--law chinchilla-approach3, --law deepseek2024)"
        )
    for name, column in (("N_opt", plan["size"]), ("D_opt", "tokens")):
        if quantities[column] < 1:
            raise LawDataError(
                f"compute (--compute) {compute:.4g} FLOPs is too small for {sources[name]}: it plans "
                f"{name} = {quantities[column]:.3g} < 1; raise the compute"
            )
    plan |= {
        "N_opt": quantities[plan["size"]],
        "D_opt": quantities["tokens"],
        "loss": quantities.get("loss"),
        "batch_size": quantities.get("batch_size"),
        "lr": quantities.get("lr"),
        "intervals": intervals,
        "sources": sources,
        "unused": [why_unused(label, law, quantities, sources) for label, law in pending],
    }
    return plan
