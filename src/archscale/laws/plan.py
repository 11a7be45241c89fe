"""A compute-optimal plan: N_opt, D_opt and loss from a loss law, then every law that can follow.

Laws are chained by column names: a Chinchilla/Wang law allocates the compute (size, ``tokens``, ``loss``);
any other law whose inputs are then known adds its target (``batch_size`` from ``loss`` as in MiniCPM,
``lr`` from ``params`` and ``tokens`` as in Step Law, ``model_scale`` from ``compute`` as in DeepSeek…).

Intervals through a chain carry every law's uncertainty: each quantity a bootstrapped law gives keeps its
bootstrap samples (the allocation's N_opt, D_opt and loss: each refit at its own optimum), and a law that
follows is evaluated refit by refit at them (``Law.predict_paired``; the laws are fitted independently,
so the pairs are joint draws): draw i meets one refit of it, the refits in a fixed shuffle (:func:`pairing`),
the draws in place, so along a chain every quantity's sample i belongs to the same upstream draw. A
bootstrapped law with an input that has no samples (a given quantity, or the output of a law without a
bootstrap) gets no interval, and ``no_interval`` says why, rather than an interval that leaves that input's
uncertainty out. A law without a bootstrap (a published one) gives no interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from archscale.laws.base import Law
from archscale.laws.bootstrap import percentile_interval
from archscale.laws.compute_optimal import check_budget, numeric_allocation, optimal_allocation
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.resampling import spawn_seeds

if TYPE_CHECKING:
    from archscale.laws.design import DesignPlan

_NAMES = {"model_scale": "N_opt", "params": "N_opt", "tokens": "D_opt"}
PAIRING_STREAM = 3
"""The child of a law's bootstrap seed that shuffles its pairing (0-1: refits and scales, 2: new-run noise)."""


def _name(column: str) -> str:
    return _NAMES.get(column, column)


@dataclass(frozen=True, eq=False)  # eq=False: the samples are arrays
class Chain:
    """Quantities of a plan with what they came from: ``quantities`` by column (``params``, ``tokens``,
    ``loss``, ``lr``…); ``sources``, ``intervals`` and ``no_interval`` (why a bootstrapped law gave none) by
    name (``N_opt``, ``D_opt``, ``loss``, ``lr``…); ``samples`` by column, the bootstrap samples a law's
    interval came from, and ``unsampled`` by column, why an uncertain quantity has none. A quantity in
    neither ``samples`` nor ``unsampled`` is exact (the compute, the expert count, a chosen design's size).
    ``unused``: the laws that added nothing (from :func:`chain_laws`)."""

    quantities: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    no_interval: dict[str, str] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    unsampled: dict[str, str] = field(default_factory=dict)
    unused: tuple[tuple[str, Law], ...] = ()

    def __or__(self, other: Chain) -> Chain:
        """This chain's quantities and ``other``'s (``other``'s where both have one; its unused laws)."""
        merged = {
            f.name: getattr(self, f.name) | getattr(other, f.name) for f in fields(self) if f.name != "unused"
        }
        return Chain(**merged, unused=other.unused)


def chain_laws(known: Chain, laws: Sequence[tuple[str, Law]]) -> Chain:
    """What the labelled ``laws`` add to the ``known`` quantities: the target of every law whose inputs are
    known, repeatedly (a batch size from the loss, then an LR from the batch size…), each with its source
    and its interval from paired samples or the reason it has none (see module); ``unused`` holds the laws
    that added nothing. ``known`` is left as it was."""
    quantities, samples, unsampled = dict(known.quantities), dict(known.samples), dict(known.unsampled)
    added = Chain()
    pending = list(laws)
    progress = True
    while progress:  # each pass adds every law whose inputs are now known
        progress = False
        for label, law in list(pending):
            if law.target in quantities or not set(law.inputs) <= set(quantities):
                continue
            target, name = law.target, _name(law.target)
            quantities[target] = added.quantities[target] = float(
                law.predict({c: [quantities[c]] for c in law.inputs})[0]
            )
            added.sources[name] = label
            missing = [c for c in law.inputs if c not in samples and c in unsampled]
            if law.bootstrap_ is None:
                unsampled[target] = added.unsampled[target] = f"{label} has no bootstrap"
            elif missing:
                reason = (
                    f"the {_name(missing[0])} it is computed from has no bootstrap samples "
                    f"({unsampled[missing[0]]}), so an interval would leave its uncertainty out"
                )
                added.no_interval[name] = reason
                unsampled[target] = added.unsampled[target] = f"it has no interval: {reason}"
            elif not law.paired:
                reason = f"{label} cannot be evaluated refit by refit at the upstream samples"
                added.no_interval[name] = reason
                unsampled[target] = added.unsampled[target] = f"it has no interval: {reason}"
            else:
                values = _paired(law, quantities, samples)
                samples[target] = added.samples[target] = values
                added.intervals[name] = [float(v) for v in percentile_interval(values, law.level_)]
            pending.remove((label, law))
            progress = True
    return replace(added, unused=tuple(pending))


def pairing(law: Law, n_draws: int) -> np.ndarray:
    """Which of ``law``'s refits meets upstream draw i (i < min(refits, draws)): a fixed shuffle of its refits
    from its own stream of the law's bootstrap seed. The draws stay in place, so every quantity's samples
    are indexed by the same upstream draw all along a chain; the refits are shuffled, not taken i with i,
    because two fits saved with one seed draw the same noise for the same refit index."""
    assert law.bootstrap_ is not None
    refits = len(law.bootstrap_.theta)
    rng = np.random.default_rng(spawn_seeds(law.bootstrap_.seed, PAIRING_STREAM + 1)[PAIRING_STREAM])
    return rng.permutation(refits)[: min(refits, n_draws)]


def _paired(law: Law, quantities: Mapping[str, float], samples: Mapping[str, np.ndarray]) -> np.ndarray:
    """``law``'s refits (:func:`pairing`) at the first draws of its sampled inputs, exact inputs at their
    value: sample i of the result belongs to upstream draw i, like its inputs'."""
    assert law.bootstrap_ is not None
    draws = min([len(law.bootstrap_.theta), *(len(samples[c]) for c in law.inputs if c in samples)])
    refits = pairing(law, draws)
    table = {
        c: np.asarray(samples[c], dtype=float)[: len(refits)]
        if c in samples
        else np.full(len(refits), quantities[c])
        for c in law.inputs
    }
    return law.predict_paired(table, refits)


def why_unused(label: str, law: Law, quantities: Mapping[str, float], sources: Mapping[str, str]) -> str:
    """Why a law given to a plan added nothing."""
    if law.target in quantities:
        given_by = sources.get(_name(law.target), "the plan's inputs")
        return f"{label} ({law.target}): already given by {given_by}"
    return f"{label} ({law.target}): needs {sorted(set(law.inputs) - set(quantities))}"


Given = Mapping[str, tuple[float, str, list[float] | None]]
"""Quantities a plan takes as given rather than from a law: name → (value, source, interval or None)."""


def take_given(given: Given | None) -> Chain:
    """The ``given`` quantities with their sources and intervals (an interval only when both its ends are
    known, else why there is none); they have no bootstrap samples."""
    chain = Chain()
    for name, (value, source, interval) in (given or {}).items():
        chain.quantities[name], chain.sources[name] = value, source
        chain.unsampled[name] = f"given by {source}"
        if interval is not None and None not in interval:
            chain.intervals[name] = [float(v) for v in interval]
        else:
            chain.no_interval[name] = (
                f"{source} gave none"
                if interval is None
                else f"{source} gave one open at an end (a grid edge)"
            )
    return chain


def _allocation(
    label: str, law: ChinchillaLaw, compute: float, experts: float
) -> tuple[Chain, dict[str, Any]]:
    """The allocating law's N_opt, D_opt and loss (with its bootstrap samples, or why it has none), and the
    plan's allocation entries (its exponents and the numeric cross-check)."""
    allocation = optimal_allocation(law, compute, experts)
    columns = {law.size: allocation.n_opt, "tokens": allocation.d_opt, "loss": allocation.loss}
    chain = Chain(
        quantities=columns,
        sources=dict.fromkeys(("N_opt", "D_opt", "loss"), label),
        intervals={k: list(v) for k, v in allocation.intervals.items()},
        samples={c: allocation.samples[_name(c)] for c in columns if _name(c) in allocation.samples},
        unsampled={} if allocation.samples else dict.fromkeys(columns, f"{label} has no bootstrap"),
    )
    numeric_n, _ = numeric_allocation(law, compute, experts)
    entries = {
        "alpha_N": allocation.alpha_N,
        "alpha_D": allocation.alpha_D,
        "numeric_check": {"N_opt_numeric": numeric_n, "rel_diff": numeric_n / allocation.n_opt - 1.0},
    }
    return chain, entries


def make_plan(
    compute: float, laws: Sequence[tuple[str, Law]], experts: float = 1.0, given: Given | None = None
) -> Plan:
    """Plan for ``compute`` FLOPs from labelled laws (``[("fit.json", law), ("deepseek2024", law), …]``);
    ``given`` quantities (e.g. an LR transferred from a μP ladder) take the place of the laws that would
    give them."""
    check_budget(compute, experts)
    known = Chain(quantities={"compute": float(compute), "experts": float(experts)}) | take_given(given)
    size, entries = None, {}
    allocator = next(((label, law) for label, law in laws if isinstance(law, ChinchillaLaw)), None)
    if allocator is not None:
        label, law = allocator
        allocated, entries = _allocation(label, law, compute, experts)
        known, size = known | allocated, law.size
    chain = known | chain_laws(known, [(label, law) for label, law in laws if (label, law) != allocator])
    quantities = chain.quantities
    size = size or next((s for s in ("model_scale", "params") if s in quantities), None)
    if size is None or "tokens" not in quantities:
        raise LawDataError(
            "no law given yields N_opt and D_opt for a compute budget: add a chinchilla/wang fit "
            "(--fit FIT.json) or a published allocation (--law chinchilla-approach3, --law deepseek2024)"
        )
    for name, column in (("N_opt", size), ("D_opt", "tokens")):
        if quantities[column] < 1:
            raise LawDataError(
                f"compute (--compute) {compute:.4g} FLOPs is too small for {chain.sources[name]}: it plans "
                f"{name} = {quantities[column]:.3g} < 1; raise the compute"
            )
    return Plan(
        compute=float(compute), experts=float(experts), chain=chain, size=size, allocation=entries,
        unused=tuple(why_unused(label, law, quantities, chain.sources) for label, law in chain.unused),
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class Plan:
    """A plan for a compute budget: the compute-optimal N_opt (in the ``size`` column), D_opt and loss with
    what other laws add (:func:`make_plan`; ``allocation``: the allocating law's exponents and numeric
    check), the ``schedule`` of a whole-curve fit and the ``downstream`` forecasts of two-step fits; or with
    a design law the MoE ``design`` plan and what other laws add to its best design
    (:func:`archscale.laws.design.hyperparameters`). ``summary()`` is the text, ``to_dict()`` the
    JSON of ``archscale plan``."""

    compute: float
    experts: float
    chain: Chain
    size: str | None = None
    allocation: dict[str, Any] = field(default_factory=dict)
    unused: tuple[str, ...] = ()
    design: DesignPlan | None = None
    schedule: dict[str, Any] | None = None
    downstream: list[dict[str, Any]] | None = None

    @property
    def n_opt(self) -> float:
        assert self.size is not None, "a design plan has no N_opt: see design.best"
        return self.chain.quantities[self.size]

    @property
    def d_opt(self) -> float:
        return self.chain.quantities["tokens"]

    def get(self, name: str) -> float | None:
        """A planned quantity by column (``loss``, ``batch_size``, ``lr``…), None when no law gives it."""
        return self.chain.quantities.get(name)

    def to_dict(self) -> dict[str, Any]:
        chain = self.chain
        if self.design is not None:
            return self.design.to_dict() | {
                "hyperparameters": {k: chain.quantities[k] for k in chain.sources},
                "sources": chain.sources,
                "intervals": chain.intervals,
                "no_interval": chain.no_interval,
                "unused": list(self.unused),
            }
        plan = {"compute": self.compute, "experts": self.experts, "size": self.size} | self.allocation
        plan |= {
            "N_opt": self.n_opt,
            "D_opt": self.d_opt,
            **{k: self.get(k) for k in ("loss", "batch_size", "lr")},
            "intervals": chain.intervals,
            "no_interval": chain.no_interval,
            "sources": chain.sources,
            "unused": list(self.unused),
        }
        if self.schedule is not None:
            plan["schedule"] = self.schedule
        if self.downstream is not None:
            plan["downstream"] = self.downstream
        return plan

    def summary(self) -> str:
        return _allocation_text(self.to_dict()) if self.design is None else self._design_text()

    def _design_text(self) -> str:
        assert self.design is not None
        plan, best, chain = self.design, self.design.best, self.chain
        lines = [
            f"compute {plan.compute:.4g} FLOPs, law {plan.law} (ranks designs by {', '.join(plan.reads)})"
        ]
        lines += [f"  note: {n}" for n in plan.notes]
        ci = (
            f"  [{best.interval[0]:.4g}, {best.interval[1]:.4g}]"
            if best.interval
            else "  (no interval: law not bootstrapped)"
        )
        capped = " (size set by the total-parameter cap)" if best.capped else ""
        lines.append(f"  best: {best.design.label}: N_act {best.active_params:.4g}, D {best.tokens:.4g}, "
                     f"total params {best.total_params:.4g}{capped}, loss {best.loss:.4g}{ci}")  # fmt: skip
        for key in ("batch_size", "lr"):
            if key in chain.sources:
                lines.append(
                    f"  {key}: {chain.quantities[key]:.4g}{_interval_text(key, chain.intervals, chain.no_interval)}"
                    f"  (from {chain.sources[key]})"
                )
        lines += [f"  not used: {u}" for u in self.unused]
        for choice in plan.choices[1:]:
            capped = ", capped by total parameters" if choice.capped else ""
            lines.append(f"  then {choice.design.label}: loss {choice.loss:.4g} (+{choice.loss - best.loss:.3g}), "
                         f"N_act {choice.active_params:.3g}, total {choice.total_params:.3g}{capped}")  # fmt: skip
        return "\n".join(lines)


def band(value: float | None, interval: list[float] | None, fmt: str) -> str:
    """A value and its interval as text (``–`` for none)."""
    if value is None:
        return "–"
    return f"{value:{fmt}}" + (f" [{interval[0]:{fmt}}, {interval[1]:{fmt}}]" if interval else "")


def _interval_text(key: str, intervals: Mapping[str, list[float]], no_interval: Mapping[str, str]) -> str:
    if key in intervals:
        return f"  [{intervals[key][0]:.4g}, {intervals[key][1]:.4g}]"
    return f"  (no interval: {no_interval[key]})" if key in no_interval else ""


def _allocation_text(plan: dict[str, Any]) -> str:
    lines = [f"compute {plan['compute']:.4g} FLOPs, experts {plan['experts']:g}"]
    for key in ("N_opt", "D_opt", "loss", "batch_size", "lr", "alpha_N", "alpha_D"):
        if plan.get(key) is not None:
            ci = _interval_text(key, plan["intervals"], plan["no_interval"])
            unit = f"  ({plan['size']})" if key == "N_opt" else ""
            lines.append(f"  {key:<10} {plan[key]:.4g}{ci}{unit}")
    lines += [
        f"  {key} from {plan['sources'][key]}" for key in ("batch_size", "lr") if key in plan["sources"]
    ]
    lines += [f"  not used: {u}" for u in plan["unused"]]
    if (choice := plan.get("schedule")) is not None:
        interval = choice["wsd_final_interval"]
        ci = (
            f"  [{interval[0]:.4g}, {interval[1]:.4g}]"
            if interval
            else f"  (no interval: {choice['no_interval']})"
        )
        lines += [
            f"  schedule by {choice['source']}: {choice['steps']} steps of {choice['batch_tokens']:.4g} tokens, "
            f"peak lr {choice['lr']:.4g}, warm-up {choice['warmup_steps']} (batch from "
            f"{choice['sources']['batch_size']}, lr from {choice['sources']['lr']}, warm-up "
            f"{choice['sources']['warmup']})",
            f"    WSD decay fraction {choice['wsd_decay_fraction']:g}: final loss "
            f"{choice['wsd_final_loss']:.4g}{ci}",
            f"    cosine: final loss {choice['cosine_final_loss']:.4g}",
        ]
        lines += [f"    note: {note}" for note in choice["notes"]]
    for forecast in plan.get("downstream", []):
        accuracy = band(forecast["accuracy"], forecast["accuracy_interval"], ".3f")
        why = forecast["unpredictable"] or forecast["no_interval"]
        lines.append(
            f"  accuracy by {forecast['source']}: "
            + (
                f"not predicted ({why})"
                if forecast["accuracy"] is None
                else accuracy + (f"  (no interval: {why})" if why else "")
            )
            + f"; task loss {band(forecast['task_loss'], forecast['task_loss_interval'], '.4f')}"
        )
    return "\n".join(lines)
