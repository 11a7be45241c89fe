"""What a sweep would train, before anything trains: tokens, FLOPs, epochs over its corpus, and the wall
time it would take on each kind of device.

The FLOPs are the accounting module's (``RunConfig.derived()["C"]``: forward + backward, no output head).
Wall times divide them by an achieved training rate per device kind. The CPU rate is measured
(``benchmarks/RESULTS.md``: one thread of this project's 2-core EPYC box; small models reach far less of
the machine than large ones, so the rate is interpolated in FLOPs per token between the measured models).
No GPU has run these presets yet, so the GPU rates are an assumption — 40 % of the dense bf16 peak, the
middle of what OLMo-core and torchtitan report — and the plan says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from archscale.data.corpus import load_corpus
from archscale.data.errors import DataError
from archscale.data.sampler import epochs_over
from archscale.data.shards import shard_token_counts
from archscale.models.memory import GIB, estimate_memory
from archscale.sweeps.executor import DEFAULT_WORKERS
from archscale.training.branches import plan_branches
from archscale.training.run_config import RunConfig

# Measured: (training FLOPs per token, tokens/s) of one CPU thread — the micro study's dense ladder at
# seq 128 (0.05M-0.8M parameters) and the 800k step benchmark at 4096 tokens a step.
CPU_MEASURED = ((0.48e6, 43e3), (0.84e6, 34e3), (2.3e6, 16e3), (5.3e6, 8.3e3), (6.6e6, 9.2e3))
ASSUMED_MFU = 0.40
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12}  # dense bf16 FLOP/s (SXM)
GPU_MEMORY_GIB = 80  # an H100's; the plan warns about runs that would not fit one


@dataclass
class PlannedRun:
    """One run as it would train: its size, budget, FLOPs, epochs over its data and the estimated seconds."""

    run_id: str
    model: str
    kind: str
    tokens: int
    flops: float
    epochs: float | None
    trained: float  # the share of its steps the run trains itself (a cooldown branch: its decay only)
    gpu_bytes: int  # estimated peak memory on one GPU (bf16 autocast, the run's micro-batch)
    seconds: dict[str, float] = field(default_factory=dict)


def cpu_tokens_per_s(flops_per_token: float) -> float:
    """One CPU thread's measured training rate, interpolated log-log in FLOPs per token (held flat in FLOP/s
    beyond the measured range)."""
    x, y = np.log([p[0] for p in CPU_MEASURED]), np.log([p[0] * p[1] for p in CPU_MEASURED])
    order = np.argsort(x)
    flops_per_s = np.exp(np.interp(np.log(flops_per_token), x[order], y[order]))
    return float(flops_per_s / flops_per_token)


def _train_sizes(run: RunConfig) -> dict[str, int] | None:
    """Train-split tokens per subset of the run's corpus, if it and its shards are built (None if not)."""
    try:
        counts = shard_token_counts(load_corpus(run.dataset)).get(run.tokenizer, {})
    except DataError:
        return None
    return {s: split["train"] for s, split in counts.items() if "train" in split} or None


def plan_runs(runs: Sequence[RunConfig]) -> list[PlannedRun]:
    """Every run with its tokens, FLOPs, epochs (None until its corpus is built) and estimated seconds on one
    CPU thread and on one GPU of each kind; a cooldown branch costs only its own decay steps."""
    branches = plan_branches(runs)
    available: dict[tuple[str, str], dict[str, int] | None] = {}
    planned = []
    for run in runs:
        derived = run.derived()
        key = (run.dataset, run.tokenizer)
        if key not in available:
            available[key] = _train_sizes(run)
        sizes = available[key]
        branch = branches.get(run.run_id)
        trained = 1.0 if branch is None else (run.steps - branch.step) / run.steps
        seconds = {"cpu (1 thread, measured)": trained * derived["D"] / cpu_tokens_per_s(derived["N"])}
        for gpu, peak in GPU_PEAK_BF16.items():
            seconds[f"{gpu} (assumed {ASSUMED_MFU:.0%} MFU)"] = trained * derived["C"] / (ASSUMED_MFU * peak)
        planned.append(
            PlannedRun(
                run_id=run.run_id,
                model=run.model_name or run.model.name,
                kind=run.model.kind,
                tokens=int(derived["D"]),
                flops=float(derived["C"]),
                epochs=None if sizes is None else epochs_over(derived["D"], sizes, run.mixture),
                trained=trained,
                gpu_bytes=estimate_memory(
                    run.model,
                    run.micro_batch_size,
                    run.seq_len,
                    accumulates=run.measures_noise_scale,
                    bf16=True,
                ).total,
                seconds=seconds,
            )
        )
    return planned


def format_plan(planned: Sequence[PlannedRun], workers: int = 1) -> str:
    """A table of the planned runs and the totals, wall time per device kind over ``workers`` parallel ones."""
    kinds = list(planned[0].seconds) if planned else []
    header = f"{'run':<13} {'model':<12} {'tokens':>10} {'FLOPs':>9} {'epochs':>7} {'GiB/GPU':>8}  "
    lines = [header + "  ".join(kinds)]
    for p in planned:
        epochs = "?" if p.epochs is None else f"{p.epochs:.2g}"
        times = "  ".join(f"{_duration(p.seconds[k]):>{len(k)}}" for k in kinds)
        lines.append(
            f"{p.run_id:<13} {p.model:<12} {p.tokens:>10.3g} {p.flops:>9.3g} {epochs:>7} "
            f"{p.gpu_bytes / GIB:>8.3g}  {times}"
        )
    total_flops = sum(p.flops for p in planned)
    walls = "; ".join(
        f"{k.replace('1 thread', f'{workers} workers') if k.startswith('cpu') else k + ', one GPU'}: "
        f"{_duration(sum(p.seconds[k] for p in planned) / (workers if k.startswith('cpu') else 1))}"
        for k in kinds
    )
    lines.append(f"{len(planned)} runs, {total_flops:.3g} training FLOPs; wall time — {walls}")
    if any(p.epochs is None for p in planned):
        lines.append("epochs: ? where the corpus or its shards are not built yet (`archscale data build`)")
    if over := [p for p in planned if p.epochs is not None and p.epochs > 1]:
        lines.append(
            f"warning: {len(over)} runs go over their data more than once (up to {max(p.epochs for p in over):.2g} "
            "epochs); repeated data bends scaling laws: use a larger corpus for these budgets"
        )
    if too_big := [p for p in planned if p.gpu_bytes > GPU_MEMORY_GIB * GIB]:
        lines.append(
            f"warning: {len(too_big)} runs need more than one {GPU_MEMORY_GIB} GiB GPU at their micro-batch "
            f"(up to {max(p.gpu_bytes for p in too_big) / GIB:.3g} GiB): lower micro_batch_size, add "
            "--checkpoint-activations, or shard them over a torchrun group (--shard)"
        )
    return "\n".join(lines)


def plan_text(runs: Sequence[RunConfig], workers: int | None = None) -> str:
    """The plan of ``runs`` as ``--dry-run`` prints it (``workers``: CPU workers, default 2)."""
    return format_plan(plan_runs(runs), workers or DEFAULT_WORKERS)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
