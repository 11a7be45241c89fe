"""A plan for a compute budget, for ``archscale plan``: from saved fits and published laws, the
compute-optimal N_opt, D_opt and loss and what other laws add (:func:`~archscale.laws.plan.make_plan`), the
planned run's schedule by a whole-curve fit, the downstream accuracy by two-step fits; or with a design law
the MoE design (:func:`~archscale.laws.design.plan_designs`) and its batch size and LR. Both come back as one
:class:`~archscale.laws.plan.Plan` with ``summary()`` and ``to_dict()``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from archscale.analysis.curve_tables import schedule_choice
from archscale.analysis.lr_transfer import store_lr_transfer, transferred_lr
from archscale.analysis.tables import is_store
from archscale.laws.base import Law
from archscale.laws.catalogue import published
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.design import (
    KNOB_COLUMNS,
    LLAMA_FFN_SHARE,
    ROUTER_COST,
    TRAINING_BYTES_PER_PARAM,
    WIDTH_PER_BLOCK,
    design_grid,
    hyperparameters,
    plan_designs,
)
from archscale.laws.downstream_laws import TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.plan import Given, Plan, make_plan, why_unused
from archscale.laws.saved import read_fits
from archscale.store import ResultsStore


def plan_compute(
    compute: float,
    fits: Sequence[Path] = (),
    laws: Sequence[str] = (),
    experts: float = 1.0,
    *,
    batch_tokens: float | None = None,
    lr: float | None = None,
    warmup: int | None = None,
    min_lr_ratio: float = 0.1,
    design_space: bool = False,
    grid_experts: str = "1,8",
    grid_top_k: str = "2",
    grid_granularity: str = "1",
    grid_shared: str = "0",
    max_total_params: float | None = None,
    memory_per_gpu: float | None = None,
    ffn_share: float = LLAMA_FFN_SHARE,
    router_cost: float = ROUTER_COST,
    width_per_block: float = WIDTH_PER_BLOCK,
    lr_ladder: Path | None = None,
) -> Plan:
    """Plan ``compute`` FLOPs from the fits saved at ``fits`` and the published ``laws`` (catalogue keys).

    A whole-curve fit chooses the planned run's schedule (``batch_tokens``, ``lr``, ``warmup``,
    ``min_lr_ratio``); a two-step fit forecasts the accuracy at N_opt and D_opt. With ``design_space``, the
    first design law ranks the designs of the grid (comma-separated integers per knob) under a cap on total
    parameters (``max_total_params``, or the training state of ``memory_per_gpu`` GiB on one GPU).
    ``lr_ladder``: a store of μP LR ladders whose optimum gives the plan's LR (:func:`ladder_lr`) in place of
    an lr law."""
    if not fits and not laws:
        raise LawDataError("give at least one --fit FIT.json or --law NAME")
    labelled = [entry for path in fits for entry in read_fits(path)]
    curves = [(label, x) for label, x in labelled if isinstance(x, ScheduleLaw)]
    chains = [(label, x) for label, x in labelled if isinstance(x, TwoStepLaw)]
    labelled = [entry for entry in labelled if entry not in curves and entry not in chains]
    if chains and design_space:
        raise LawDataError(
            f"--fit {chains[0][0]}: a two-step fit forecasts accuracy at a plan's N_opt and D_opt, "
            "without --design-space; drop one of them"
        )
    if len(curves) > 1:
        raise LawDataError(
            f"--fit: give one whole-curve fit to choose the schedule by, got {len(curves)} "
            f"({', '.join(label for label, _ in curves)})"
        )
    if curves and design_space:
        raise LawDataError(
            f"--fit {curves[0][0]}: a whole-curve fit chooses the schedule of a plan without --design-space; "
            "drop one of them"
        )
    given = {"--batch-tokens": batch_tokens, "--lr": lr, "--warmup": warmup}
    if not curves and (unused := [flag for flag, value in given.items() if value is not None]):
        raise LawDataError(
            f"{unused[0]} sets the planned run's schedule, which needs a whole-curve --fit "
            "(curve-ladder, multipower or annealing)"
        )
    labelled += published_laws(laws)
    if not design_space:
        given = ladder_lr(lr_ladder, experts) if lr_ladder is not None else None
        plan = make_plan(compute, labelled, experts, given)
        if curves:
            plan = replace(
                plan, schedule=schedule_plan(plan, curves[0], batch_tokens, lr, warmup, min_lr_ratio)
            )
        if chains:
            plan = replace(plan, downstream=downstream_plan(plan, chains))
        return plan
    cap = parameter_cap(max_total_params, memory_per_gpu)
    design_law = next(
        (
            (label, x)
            for label, x in labelled
            if set(x.inputs) & {c for cs in KNOB_COLUMNS.values() for c in cs}
        ),
        None,
    )
    if design_law is None:
        raise LawDataError(
            "--design-space needs a design law (granularity, joint_moe or sparsity): a --fit of one, or "
            "--law krajewski2024 / ludziejewski2025"
        )
    designs = design_grid(
        parse_int_list("--grid-experts", grid_experts), parse_int_list("--grid-top-k", grid_top_k),
        parse_int_list("--grid-granularity", grid_granularity), parse_int_list("--grid-shared", grid_shared),
    )  # fmt: skip
    label, chosen = design_law
    design = plan_designs(
        compute, chosen, designs, ffn_share=ffn_share, max_total_params=cap, router_cost=router_cost,
        width_per_block=width_per_block, label=label,
    )  # fmt: skip
    given = ladder_lr(lr_ladder, float(design.best.design.experts)) if lr_ladder is not None else None
    hyper = hyperparameters(compute, design, [entry for entry in labelled if entry != design_law], given)
    unused = tuple(why_unused(label, law, hyper.quantities, hyper.sources) for label, law in hyper.unused)
    return Plan(
        compute=float(compute),
        experts=float(design.best.design.experts),
        chain=hyper,
        design=design,
        unused=unused,
    )


def ladder_lr(store_path: Path, experts: float) -> Given:
    """The LR a store's μP (or CompleteP) ladder of the plan's family prescribes (MoE when ``experts`` > 1),
    as a given quantity with its source and interval (:func:`~archscale.analysis.lr_transfer.transferred_lr`)."""
    if not (is_store(store_path) and store_path.exists()):
        raise LawDataError(f"--lr-ladder {store_path}: not a results store; give the store of LR ladders")
    with ResultsStore(store_path, read_only=True) as store:
        result = store_lr_transfer(store.runs(), store.evals())
    found = transferred_lr(result, "moe" if experts > 1 else "dense", experts)
    return {"lr": (found.lr, f"{found.source} in {store_path}", found.interval)}


def published_laws(keys: Sequence[str]) -> list[tuple[str, Law]]:
    """The laws of each published entry, labelled ``KEY (published)``; an entry of exponents only (no
    coefficients) is refused."""
    laws: list[tuple[str, Law]] = []
    for key in keys:
        entry = published(key)
        if not entry.laws:
            raise LawDataError(
                f"{key} publishes exponents only (no coefficients) and cannot plan; "
                "try chinchilla-approach3, epoch2024 or deepseek2024"
            )
        laws += [(f"{key} (published)", published_law) for published_law in entry.laws]
    return laws


def parameter_cap(max_total_params: float | None, memory_per_gpu: float | None) -> float | None:
    """The cap on total parameters: ``max_total_params``, or as many as ``memory_per_gpu`` GiB hold at
    :data:`~archscale.laws.design.TRAINING_BYTES_PER_PARAM` (one GPU); None for no cap."""
    if max_total_params is not None and memory_per_gpu is not None:
        raise LawDataError("give --max-total-params or --memory-per-gpu, not both")
    if memory_per_gpu is not None and not 0 < memory_per_gpu < math.inf:
        raise LawDataError(
            f"--memory-per-gpu must be a finite number of GiB > 0, got {memory_per_gpu}; leave it out for "
            "no cap"
        )
    return max_total_params if memory_per_gpu is None else memory_per_gpu * 2**30 / TRAINING_BYTES_PER_PARAM


def parse_int_list(option: str, text: str) -> list[int]:
    """A comma-separated list of integers ≥ 0 (a design grid's knob), refused naming ``option``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise LawDataError(
            f"{option}: a comma-separated list of integers (e.g. 1,2,4), got {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise LawDataError(f"{option}: give at least one integer ≥ 0, got {text!r}")
    return values


def downstream_plan(plan: Plan, chains: list[tuple[str, TwoStepLaw]]) -> list[dict[str, Any]]:
    """Each two-step fit's forecast of a run of the plan's N_opt and D_opt. The chain reads P (params);
    a plan sized in FLOPs per token (model_scale) is refused rather than converted by a guessed ratio."""
    if plan.size != "params":
        raise LawDataError(
            f"--fit {chains[0][0]}: the two-step chain reads params (P, every weight but the input embedding), "
            f"but the plan's N_opt is {plan.size}; plan with a loss law in params (fit chinchilla --size "
            "params, or --law chinchilla-approach3)"
        )
    return [{"source": label} | law.forecast(plan.n_opt, plan.d_opt) for label, law in chains]


def schedule_plan(
    plan: Plan,
    curve: tuple[str, ScheduleLaw],
    batch_tokens: float | None,
    lr: float | None,
    warmup: int | None,
    min_lr_ratio: float,
) -> dict[str, Any]:
    """The planned run's schedule by a whole-curve fit: its steps (D_opt over the batch), the WSD decay
    fraction the law prefers, the final loss then and under cosine. The batch and peak LR come from the
    plan's laws, or from ``--batch-tokens`` / ``--lr`` (which, when given, take their place)."""
    label, law = curve
    notes: list[str] = []
    sources = {}
    for name, flag, given in (("batch_size", "--batch-tokens", batch_tokens), ("lr", "--lr", lr)):
        if given is not None:
            sources[name] = flag
        elif plan.get(name) is not None:
            sources[name] = plan.chain.sources[name]
        else:
            raise LawDataError(
                f"{flag}: the curve fit {label} needs the planned run's {name.replace('_', ' ')}; no law given "
                f"yields it: pass {flag}, or a --fit/--law that predicts it"
            )
    batch = float(batch_tokens if batch_tokens is not None else plan.get("batch_size"))
    peak = float(lr if lr is not None else plan.get("lr"))
    if not (math.isfinite(batch) and batch > 0):
        raise LawDataError(f"--batch-tokens must be a finite number of tokens > 0, got {batch:g}")
    if not (math.isfinite(peak) and peak > 0):
        raise LawDataError(f"--lr must be a finite rate > 0, got {peak:g}")
    if not 0 <= min_lr_ratio <= 1:
        raise LawDataError(f"--min-lr-ratio must lie in [0, 1], got {min_lr_ratio}")
    steps = int(plan.d_opt // batch)
    if steps < 2:
        raise LawDataError(
            f"--batch-tokens: D_opt {plan.d_opt:.4g} tokens in batches of {batch:.4g} make {steps} step(s); "
            "a schedule needs ≥ 2: lower the batch or raise the compute"
        )
    warmup_steps = round(0.05 * steps) if warmup is None else warmup
    if not 0 <= warmup_steps < steps:
        raise LawDataError(f"--warmup must lie in [0, {steps}) (the planned steps), got {warmup_steps}")
    sources["warmup"] = "5 % of the steps" if warmup is None else "--warmup"
    size = None
    if law.size_column is not None:
        if law.size_column != plan.size:
            raise LawDataError(
                f"--fit {label}: the {law.name} fit reads {law.size_column}, but the plan's N_opt is "
                f"{plan.size}; refit it with --size {plan.size}"
            )
        size = plan.n_opt
    else:
        notes.append(
            f"the {law.name} fit describes the one model size it was fitted on, not N_opt "
            f"{plan.n_opt:.4g}: its decay fraction and losses are that size's (fit curve-ladder across "
            "sizes to predict at N_opt)"
        )
    choice = schedule_choice(
        law, steps, peak, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio, size=size
    )
    return choice | {"source": label, "batch_tokens": batch, "size": size, "sources": sources, "notes": notes}
