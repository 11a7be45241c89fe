"""Choosing an MoE design at a compute budget from a design-space law.

A design is the MoE's knobs: experts E, active experts top-k, granularity G, shared experts. For each
candidate the planner finds the active size N_act (and tokens D = C / (6·N_act)) that minimise the law's
predicted loss, under an optional cap on total parameters, and ranks the designs by that loss.

How a design becomes the law's columns, for any N_act:

- total parameters ``params`` = N_act·((1 − f) + f·E/k), f the feed-forward share of the active parameters
  (``ffn_share``; 2/3 for a Llama block whose SwiGLU is 8/3·d_model wide). Granularity and shared-expert
  isolation keep total and active feed-forward parameters, so they do not enter;
- ``active_params`` = N_act, ``experts`` = E (dense: E = 1, k = 1), ``granularity`` = G,
  ``sparsity`` = (E − k)/E.

A law ranks designs only by the knobs it reads (GranularityLaw: G; JointMoELaw: E; SparsityLaw: E and k):
candidates that differ in a knob the law does not read are refused rather than given equal scores.
Compute per token is 6·N_act for the block matrices plus the router's c_r·d·(E·G − s)·n_blocks, with
c_r = 14 and the shape rule d = 64·n_blocks, N_act = 12·d²·n_blocks (Krajewski et al. 2024 Eq. 10 and App. E;
attention scores excluded). Routing grows with E·G while the law's gain from finer experts shrinks, so G
has an interior optimum; ``router_cost=0`` gives C = 6·N_act·D (Ludziejewski et al. 2025's convention).
N_act is in the convention of the law's ``active_params``: the published ``ludziejewski2025`` counts the
embedding and unembedding, a law fitted on archscale's law points does not (``archscale.quantities``);
the shape rule above counts block matrices only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from archscale.laws.base import Law
from archscale.laws.bootstrap import percentile_interval
from archscale.laws.compute_optimal import rounded_up
from archscale.laws.errors import LawDataError
from archscale.laws.plan import Chain, Given, chain_laws, take_given

LLAMA_FFN_SHARE = 2 / 3  # SwiGLU of width 8/3·d: 8·d² of a block's 12·d² matrix parameters
ROUTER_COST = 14.0  # c_r: training FLOPs per router parameter per token (Krajewski et al. 2024 App. E: 6-20)
WIDTH_PER_BLOCK = 64.0  # d_model ÷ n_blocks, Krajewski et al. 2024's shape rule for their optimal allocation
TRAINING_BYTES_PER_PARAM = 16  # fp32 weights and gradients, AdamW's two moments (archscale.models.memory)
KNOB_COLUMNS = {"experts": ("experts", "sparsity"), "top_k": ("sparsity",), "granularity": ("granularity",)}
"""Each knob and the law columns that carry it as a design variable (S = (E − k)/E carries both E and k)."""


@dataclass(frozen=True)
class Design:
    experts: int = 8
    top_k: int = 2
    granularity: int = 1
    shared: int = 0

    def __post_init__(self) -> None:
        if not (
            1 <= self.top_k <= self.experts
            and self.granularity >= 1
            and 0 <= self.shared < self.top_k * self.granularity
        ):
            raise LawDataError(
                f"design {self}: need 1 ≤ top_k ≤ experts, granularity ≥ 1, 0 ≤ shared < top_k·granularity"
            )

    @property
    def label(self) -> str:
        if self.experts == 1:
            return "dense"
        shared = f", {self.shared} shared" if self.shared else ""
        return f"E={self.experts} top-{self.top_k} G={self.granularity}{shared}"

    @property
    def routed_experts(self) -> int:
        """The router's outputs: E·G experts less the always-active shared ones (none for a dense model)."""
        return 0 if self.experts == 1 else self.experts * self.granularity - self.shared

    def flops_per_token(
        self, active: float, router_cost: float = ROUTER_COST, width_per_block: float = WIDTH_PER_BLOCK
    ) -> float:
        """Training FLOPs per token at ``active`` parameters: 6·N_act + c_r·d·(E·G − s)·n_blocks (see module)."""
        # N_act = 12·d²·n_blocks with n_blocks = d / width_per_block
        width = (width_per_block * active / 12) ** (1 / 3)
        return 6 * active + router_cost * self.routed_experts * width**2 / width_per_block

    def columns(self, active: np.ndarray, ffn_share: float) -> dict[str, np.ndarray]:
        """The law columns of this design at active sizes ``active``."""
        active = np.asarray(active, dtype=float)
        total = active * ((1 - ffn_share) + ffn_share * self.experts / self.top_k)
        ones = np.ones_like(active)
        return {"active_params": active, "params": total, "experts": self.experts * ones,
                "granularity": self.granularity * ones, "sparsity": (1 - self.top_k / self.experts) * ones}  # fmt: skip


@dataclass(frozen=True)
class DesignChoice:
    """A design at its compute-optimal size: N_act, D, total parameters, predicted loss (interval)."""

    design: Design
    active_params: float
    tokens: float
    flops_per_token: float
    total_params: float
    loss: float
    interval: tuple[float, float] | None = None
    capped: bool = False  # the total-parameter cap, not the loss, set its size
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The loss of every bootstrap fit at this size (the interval's percentiles); None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        return {"design": asdict(self.design), "label": self.design.label, **{
            k: getattr(self, k) for k in (f.name for f in fields(self)) if k not in ("design", "samples")}}  # fmt: skip


@dataclass(frozen=True)
class DesignPlan:
    compute: float
    law: str
    reads: tuple[str, ...]  # the knobs the law ranks designs by
    choices: tuple[DesignChoice, ...]  # best first
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def best(self) -> DesignChoice:
        return self.choices[0]

    def to_dict(self) -> dict[str, Any]:
        best = self.best.loss
        return {"compute": self.compute, "law": self.law, "reads": list(self.reads), "notes": list(self.notes),
                "choices": [c.to_dict() | {"worse_by": c.loss - best} for c in self.choices]}  # fmt: skip


def _knobs_read(law: Law) -> tuple[str, ...]:
    return tuple(knob for knob, columns in KNOB_COLUMNS.items() if set(columns) & set(law.inputs))


def _check_designs(law: Law, designs: Sequence[Design]) -> tuple[str, ...]:
    reads = _knobs_read(law)
    for knob in ("experts", "top_k", "granularity", "shared"):
        # a dense design (E = 1) has top-1, G = 1 and no shared expert by definition: only MoE designs count
        values = {getattr(d, knob) for d in designs if knob == "experts" or d.experts > 1}
        if knob not in reads and len(values) > 1:
            raise LawDataError(
                f"the {law.name} law does not read {knob} (it reads {list(reads) or 'no design knob'}), so it "
                f"cannot rank designs that differ in {knob}; hold {knob} fixed or use a law that reads it"
            )
    return reads


def plan_designs(
    compute: float,
    law: Law,
    designs: Sequence[Design],
    *,
    ffn_share: float = LLAMA_FFN_SHARE,
    max_total_params: float | None = None,
    router_cost: float = ROUTER_COST,
    width_per_block: float = WIDTH_PER_BLOCK,
    label: str | None = None,
) -> DesignPlan:
    """Rank ``designs`` at ``compute`` FLOPs by ``law``'s loss at each design's optimal N_act (see module)."""
    if not (math.isfinite(compute) and compute > 0):
        raise LawDataError(f"compute must be a finite number of FLOPs > 0 (--compute), got {compute!r}")
    if not designs:
        raise LawDataError("give at least one design to plan")
    if not 0 < ffn_share < 1:
        raise LawDataError(f"ffn_share must lie in (0, 1), got {ffn_share}")
    if not (0 <= router_cost < math.inf and 0 < width_per_block < math.inf):
        raise LawDataError(
            f"router cost (--router-cost) must be a finite number ≥ 0 and width per block (--width-per-block) "
            f"a finite number > 0, got {router_cost} and {width_per_block}"
        )
    if max_total_params is not None and not 0 < max_total_params < math.inf:
        raise LawDataError(
            f"the cap on total parameters (--max-total-params, --memory-per-gpu) must be a finite number > 0, "
            f"got {max_total_params}; leave it out for no cap"
        )
    reads = _check_designs(law, designs)

    def flops(design: Design, active: float) -> float:
        return design.flops_per_token(active, router_cost, width_per_block)

    # every design needs at least one active parameter trained on one token
    smallest = max(flops(design, 1.0) for design in designs)
    if compute < smallest:
        raise LawDataError(
            f"compute (--compute) {compute:.4g} FLOPs is too small for these designs: one active parameter "
            f"trained on one token takes {smallest:.3g} FLOPs; the smallest plannable compute is "
            f"{rounded_up(smallest):g} FLOPs"
        )
    if max_total_params is not None:
        # one active parameter of the design whose total per active parameter is largest
        least, widest = max((float(d.columns(np.ones(1), ffn_share)["params"][0]), d.label) for d in designs)
        if max_total_params < least:
            raise LawDataError(
                f"a cap of {max_total_params:.4g} total parameters (--max-total-params, --memory-per-gpu) leaves "
                f"{widest} no model size: one active parameter is {least:.3g} in total; the smallest cap is "
                f"{rounded_up(least):g} parameters "
                f"({rounded_up(least * TRAINING_BYTES_PER_PARAM / 2**30):g} GiB per GPU)"
            )

    choices = [_optimise(compute, law, design, ffn_share, max_total_params, flops) for design in designs]
    notes = [
        f"compute counts the router: C = (6 N_act + {router_cost:g} d (E G - shared) n_blocks) D with "
        f"d = {width_per_block:g} n_blocks (Krajewski et al. 2024 Eq. 10)"
        if router_cost
        else "compute C = 6 N_act D (routing not counted)"
    ]
    if max_total_params is not None:
        notes.append(f"total parameters capped at {max_total_params:.4g}")
    if reason := law.degenerate_:
        notes.append(
            f"this fit is degenerate: {reason}, so the ranking rests on a constraint; fit more runs or use a "
            "published law"
        )
    return DesignPlan(
        compute=float(compute), law=label or law.name, reads=reads,
        choices=tuple(sorted(choices, key=lambda c: c.loss)), notes=tuple(notes),
    )  # fmt: skip


def _optimise(
    compute: float,
    law: Law,
    design: Design,
    ffn_share: float,
    max_total_params: float | None,
    flops: Callable[[Design, float], float],
) -> DesignChoice:
    ratio = float(design.columns(np.array([1.0]), ffn_share)["params"][0])  # total ÷ active

    def table(active: float) -> dict[str, np.ndarray]:
        point = design.columns(np.array([active]), ffn_share)
        return {c: point[c] for c in law.inputs if c in point} | {
            "tokens": np.array([compute / flops(design, active)])
        }

    def log_loss(log_active: float) -> float:
        return float(np.log(law.predict(table(math.exp(log_active)))[0]))

    high = math.log(compute / 6)  # 6·N_act ≤ C: at most one token
    capped_high = high if max_total_params is None else min(high, math.log(max_total_params / ratio))
    best = minimize_scalar(log_loss, bounds=(0.0, capped_high), method="bounded", options={"xatol": 1e-10})
    active = math.exp(best.x)
    point = table(active)
    interval, samples = None, None
    if law.bootstrap_ is not None:
        samples = law.predict_samples(point)[:, 0]
        low, up = percentile_interval(samples, law.level_)
        interval = (float(low), float(up))
    return DesignChoice(
        design=design, active_params=active, tokens=compute / flops(design, active),
        flops_per_token=flops(design, active), total_params=active * ratio,
        loss=float(law.predict(point)[0]), interval=interval, capped=capped_high < high and best.x > capped_high - 1e-6,
        samples=samples,
    )  # fmt: skip


def design_grid(
    experts: Sequence[int], top_k: Sequence[int], granularity: Sequence[int], shared: Sequence[int]
) -> list[Design]:
    """Every valid combination (a dense design, E = 1, only with top-1, G = 1, no shared expert)."""
    designs = []
    for e in experts:
        for k in top_k:
            for g in granularity:
                for s in shared:
                    if e == 1 and (g, s) != (1, 0):
                        continue
                    k_e = 1 if e == 1 else k
                    if k_e <= e and s < k_e * g:
                        designs.append(Design(e, k_e, g, s))
    return list(dict.fromkeys(designs))


def hyperparameters(
    compute: float, plan: DesignPlan, laws: Sequence[tuple[str, Law]], given: Given | None = None
) -> Chain:
    """The best design's batch size, LR (and whatever else ``laws`` give) from its loss, size and tokens:
    the same chaining as :func:`archscale.laws.plan.make_plan`, ``given`` quantities in place of the laws
    that would give them. The design's size, tokens and knobs are the plan's choice (exact); its loss carries
    the design law's bootstrap samples at that size, or has none (then a bootstrapped law from the loss
    gets no interval, and the reason)."""
    choice = plan.best
    known = Chain(
        quantities={
            "compute": compute, "loss": choice.loss, "tokens": choice.tokens, "params": choice.total_params,
            "active_params": choice.active_params, "model_scale": choice.flops_per_token,
            "experts": float(choice.design.experts), "granularity": float(choice.design.granularity),
        },
        samples={} if choice.samples is None else {"loss": choice.samples},
        unsampled={"loss": f"{plan.law} has no bootstrap"} if choice.samples is None else {},
    )  # fmt: skip
    known |= take_given(given)
    return known | chain_laws(known, laws)
