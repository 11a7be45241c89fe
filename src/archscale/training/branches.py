"""Cooldown branches: one WSD run trains several token budgets.

A WSD run (warm-up, a stable peak, a linear decay over its last ``K = decay_fraction·steps`` steps) with
budget D_i and the same warm-up, seed, batch and data order as a longer WSD run *is* that run's prefix up to
its own decay start ``s_i = steps_i − K_i``: same initial weights, same batches (the sampler is indexed by
step) and the same learning rate at every step before ``s_i``. So the longer run (the trunk) saves its
state at ``s_i`` into the shorter run's directory, and the shorter run (a branch) resumes from it and trains
only its decay (Hägele et al. 2024; MiniCPM; OLMo's WSD-S). Its weights, curve and evals are those of the
independent run of its budget, bit for bit on the CPU; only the wall-clock columns differ. Cost: the
trunk plus the branches' decays.

Branches are found, never declared: a run branches from the longest run in the same sweep whose prefix it
is (every result-changing field equal but the budget, evals at the same steps up to ``s_i``). Runs with a
warm-up derived from their own length (5 % of the steps) differ in warm-up, so they train in full; give
the runs of a ladder one explicit ``warmup_steps`` to share trunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archscale.training.run_config import COSMETIC_FIELDS, RunConfig
from archscale.training.schedules import wsd_decay_steps

BUDGET_FIELDS: tuple[str, ...] = ("tokens", "eval_at_tokens", *COSMETIC_FIELDS)
"""Fields a branch may differ in from its trunk (its evals are checked step by step up to the branch)."""


@dataclass(frozen=True)
class Branch:
    """``run_id`` starts from ``trunk_id``'s state after ``step`` optimiser steps (its decay start)."""

    run_id: str
    trunk_id: str
    step: int


def _identity(run: RunConfig) -> dict:
    fields = run.to_dict()
    for name in BUDGET_FIELDS:
        fields.pop(name)
    fields["model"].pop("name")
    return fields


def decay_start(run: RunConfig) -> int:
    """Steps a WSD run takes at or before its peak: where its decay begins."""
    return run.steps - wsd_decay_steps(run.steps, run.decay_fraction)


def branch_step(short: RunConfig, long: RunConfig) -> int | None:
    """The step at which ``short`` can start from ``long``'s state, or None when it is not ``long``'s prefix."""
    if short.schedule != "wsd" or long.schedule != "wsd" or short.steps >= long.steps:
        return None
    if _identity(short) != _identity(long):  # warm-up, LR, seed, batch, model, data: all must be equal
        return None
    step = decay_start(short)
    if step > decay_start(long):  # the trunk must still be at its peak LR for every step before the branch
        return None
    if [s for s in short.eval_steps if s <= step] != [s for s in long.eval_steps if s <= step]:
        return None
    return step


def plan_branches(runs: Sequence[RunConfig]) -> dict[str, Branch]:
    """Each run that is the prefix of a longer one branches from the longest such run, which trains in full."""
    longest_first = sorted(runs, key=lambda run: run.steps, reverse=True)
    plan: dict[str, Branch] = {}
    for i, run in enumerate(longest_first):
        for trunk in longest_first[:i]:
            if trunk.run_id in plan:  # a branch skips its trunk's early steps, so it cannot seed others
                continue
            step = branch_step(run, trunk)
            if step is not None:
                plan[run.run_id] = Branch(run.run_id, trunk.run_id, step)
                break
    return plan
