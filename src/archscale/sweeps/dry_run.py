"""What a sweep would train, before anything trains: tokens, FLOPs, epochs over its corpus, and the wall
time it would take on each kind of device.

The FLOPs are the accounting module's (``RunConfig.derived()["C"]``: forward + backward, no output head).
A run's time is more than its training FLOPs over a rate: it also starts (logger, corpus and shards opened
and re-hashed, model and optimiser built), evaluates (forward passes over every test subset's windows at
each eval point), writes checkpoints (weights and AdamW's moments) and its final weights; a sweep starts
once (the command and its worker processes). Each of these is counted here, from constants measured on the
project's 2-core CPU box (``benchmarks/dry_run_accuracy.py``, ``benchmarks/RESULTS.md``).

The CPU training rate is measured per model kind (one thread; small models reach far less of the machine
than large ones, so the rate is interpolated in FLOPs per token between the measured presets). No GPU has
run these presets yet, so the GPU rates are an assumption — 40 % of the dense bf16 peak, the middle of what
OLMo-core and torchtitan report — and the plan says so; on every device no pass over a micro-batch takes
less than the per-pass floor, and the host-side costs are the CPU box's.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from archscale.data import RECIPES
from archscale.data.corpus import load_corpus
from archscale.data.errors import DataError
from archscale.data.sampler import epochs_over
from archscale.data.shards import shard_dir, shard_token_counts
from archscale.errors import ArchscaleError
from archscale.models import flops_per_token, get_preset
from archscale.models.memory import GIB, MemoryPlan, estimate_memory, plan_memory
from archscale.sweeps.executor import DEFAULT_WORKERS
from archscale.training.branches import Branch, plan_branches
from archscale.training.run_config import RunConfig

# Training tokens/s of one CPU thread on the 2-core AMD EPYC VM: the ladder presets at seq 128 in micro-batches
# of 512 tokens, in thread CPU time (other jobs' load does not enter it; two runs of `benchmarks/
# dry_run_accuracy.py --rates --repeats 2`, 2026-12-04, averaged), and the 800k presets at 4096 tokens a step
# (`benchmarks/throughput.py`, wall time, 2026-12-02).
CPU_MEASURED = (
    ("dense-50k", 128, 62e3), ("dense-100k", 128, 46e3), ("dense-200k", 128, 27e3),
    ("dense-330k", 128, 19.4e3), ("dense-800k", 128, 10.4e3), ("dense-800k", 256, 9.5e3),
    ("moe-50k", 128, 45e3), ("moe-100k", 128, 33e3), ("moe-200k", 128, 20.7e3),
    ("moe-330k", 128, 15.1e3), ("moe-800k", 128, 7.9e3), ("moe-800k", 256, 8.9e3),
)  # fmt: skip
ASSUMED_MFU = 0.40
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12}  # dense bf16 FLOP/s (SXM)
GPU_MEMORY_GIB = 80  # an H100's: each run's memory plan fits one, or else a node of them
GPUS_PER_NODE = 8  # an HGX/DGX node: a run that fits no one GPU is planned sharded (FSDP) over its GPUs

# Costs besides the training FLOPs, measured on the 2-core AMD EPYC VM on 2026-12-04 with
# `benchmarks/dry_run_accuracy.py --constants --repeats 5` (each the best of its repeats: other jobs shared
# the box; under their load a sweep's start-up took 19-21 s). The GPU columns take the same host-side costs.
SWEEP_START_S = 8.0  # `archscale sweep run` on 2 workers: imports, store, spawned workers and their first run
RUN_START_S = 0.013  # a run in a started worker: logger, corpus and tokeniser opened, model and AdamW built
PASS_FLOOR_S = 2.5e-3  # the least a micro-batch's forward + backward + step takes (dense-25k at 8 tokens)
HASH_BYTES_PER_S = 1.0e9  # shards re-hashed (SHA-256) each time a run loads them
WRITE_BYTES_PER_S = 7.0e8  # a checkpoint: content hash, torch.save, fsync
WRITE_S = 0.004  # per file written, whatever its size
# An evaluation token costs about a quarter of a training token (forward only: 2·N FLOPs of the 6·N, no
# optimiser step, batches of 16 windows): 0.23-0.30 over the ladder presets (`--rates` above).
EVAL_TOKEN_COST = 0.27
CHECKPOINT_BYTES_PER_PARAM = 12  # fp32 weights and AdamW's two moments
WEIGHT_BYTES_PER_PARAM = 4  # the final fp32 safetensors


@dataclass(frozen=True)
class CorpusFacts:
    """What the plan knows of a (corpus, tokeniser) before training: train and test tokens per subset
    (None until the shards are built) and the shard bytes a run re-hashes when it loads its data."""

    subsets: int
    train: dict[str, int] | None
    test: dict[str, int] | None
    shard_bytes: int


@dataclass
class PlannedRun:
    """One run as it would train: its size, budget, FLOPs, epochs over its data, what it evaluates and writes,
    and the estimated seconds of each part per device."""

    run_id: str
    model: str
    kind: str
    tokens: int
    flops: float
    epochs: float | None
    trained: float  # the share of its steps the run trains itself (a cooldown branch: its decay only)
    gpu_bytes: int  # estimated peak memory on one GPU (bf16 autocast, the run's micro-batch in one pass)
    memory: MemoryPlan | None  # its placement: on one GPU, else sharded over a node; None: neither fits
    evals: int  # evaluations it runs (a branch: those after its decay starts)
    eval_tokens: int  # tokens one evaluation reads: every test subset's windows
    writes: int  # checkpoint-sized files: periodic checkpoints, its branches' start states, the final state
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # device -> part -> seconds

    @property
    def seconds(self) -> dict[str, float]:
        return {device: sum(parts.values()) for device, parts in self.parts.items()}


def cpu_tokens_per_s(flops_per_token: float, kind: str) -> float:
    """One CPU thread's measured training rate for a model ``kind``, interpolated log-log in FLOPs per token
    between that kind's measured presets (held flat in FLOP/s beyond them)."""
    points = _cpu_points(kind)
    x, y = np.log([p[0] for p in points]), np.log([p[0] * p[1] for p in points])
    flops_per_s = np.exp(np.interp(np.log(flops_per_token), x, y))
    return float(flops_per_s / flops_per_token)


@functools.cache
def _cpu_points(kind: str) -> list[tuple[float, float]]:
    """(training FLOPs per token, tokens/s) of the measured presets of ``kind``, in FLOPs order."""
    configs = [(get_preset(name), seq, rate) for name, seq, rate in CPU_MEASURED]
    return sorted((flops_per_token(cfg, seq), rate) for cfg, seq, rate in configs if cfg.kind == kind)


def _cpu_flops_per_s(n: float, kind: str) -> float:
    return cpu_tokens_per_s(n, kind) * n


# Each column of the plan: its training rate in FLOP/s for a model of N FLOPs per token and a kind.
DEVICES: dict[str, Callable[[float, str], float]] = {
    "cpu (1 thread, measured)": _cpu_flops_per_s,
    **{
        f"{gpu} (assumed {ASSUMED_MFU:.0%} MFU)": lambda n, kind, peak=peak: ASSUMED_MFU * peak
        for gpu, peak in GPU_PEAK_BF16.items()
    },
}


def corpus_facts(dataset: str, tokenizer: str) -> CorpusFacts:
    """What is built of ``dataset`` for ``tokenizer``; a corpus not built yet is taken to have the mini-Pile's
    subsets, each with test text to spare."""
    try:
        corpus = load_corpus(dataset)
    except DataError:
        return CorpusFacts(len(RECIPES), None, None, 0)
    counts = shard_token_counts(corpus).get(tokenizer, {})
    train, test = (
        {s: c[split] for s, c in counts.items() if split in c} or None for split in ("train", "test")
    )
    shard_bytes = sum(
        p.stat().st_size
        for split in ("train", "test")
        for p in shard_dir(corpus, tokenizer, split).glob("*.bin")
    )
    return CorpusFacts(len(corpus.subsets), train, test, shard_bytes)


def eval_tokens(run: RunConfig, facts: CorpusFacts) -> int:
    """Tokens one evaluation of ``run`` reads: per test subset, ``eval_tokens_per_subset`` in whole windows of
    ``seq_len`` (at least one), fewer where the subset's test split is shorter."""
    wanted = max(1, run.eval_tokens_per_subset // run.seq_len)
    if facts.test is None:
        return facts.subsets * wanted * run.seq_len
    return sum(max(1, min((n - 1) // run.seq_len, wanted)) for n in facts.test.values()) * run.seq_len


def plan_run(run: RunConfig, facts: CorpusFacts, branch: Branch | None, branches_off: int) -> PlannedRun:
    """``run`` planned part by part on every device; ``branch``: where it branches off its trunk, if it
    does; ``branches_off``: how many branches start from its own state (each is one more state written)."""
    derived = run.derived()
    n, params = float(derived["N"]), int(derived["P_total"])
    start = 0 if branch is None else branch.step  # a branch resumes from its trunk's state at its decay start
    every = run.checkpoint_every_steps
    evals = sum(step > start for step in run.eval_steps)
    writes = (run.steps - 1) // every - start // every + branches_off + 1  # + the final state
    tokens_per_eval = eval_tokens(run, facts)
    write_s = writes * (WRITE_S + CHECKPOINT_BYTES_PER_PARAM * params / WRITE_BYTES_PER_S) + (
        WRITE_S + WEIGHT_BYTES_PER_PARAM * params / WRITE_BYTES_PER_S
    )
    parts = {}
    for device, flops_per_s in DEVICES.items():
        rate = flops_per_s(n, run.model.kind)
        parts[device] = {
            "start": RUN_START_S + facts.shard_bytes / HASH_BYTES_PER_S,
            "train": max(
                (run.steps - start) * run.tokens_per_step * n / rate,
                (run.steps - start) * run.n_micro_batches * PASS_FLOOR_S,
            ),
            "evals": evals * tokens_per_eval * EVAL_TOKEN_COST * n / rate,
            "writes": write_s,
        }
    return PlannedRun(
        run_id=run.run_id,
        model=run.model_name or run.model.name,
        kind=run.model.kind,
        tokens=int(derived["D"]),
        flops=float(derived["C"]),
        epochs=None if facts.train is None else epochs_over(derived["D"], facts.train, run.mixture),
        trained=(run.steps - start) / run.steps,
        gpu_bytes=estimate_memory(
            run.model,
            run.micro_batch_size,
            run.seq_len,
            accumulates=run.measures_noise_scale,
            bf16=True,
            noise_probe=run.measures_noise_scale,
        ).total,
        memory=gpu_placement(run),
        evals=evals,
        eval_tokens=tokens_per_eval,
        writes=writes,
        parts=parts,
    )


def gpu_placement(run: RunConfig) -> MemoryPlan | None:
    """``run``'s memory plan on one GPU of ``GPU_MEMORY_GIB`` (as the trainer makes it there: passes of fewer
    rows, then recomputed activations), else sharded over a node's ``GPUS_PER_NODE`` under torchrun (where the
    batch splits into whole micro-batches per GPU); None when neither fits."""
    for ranks in (1, GPUS_PER_NODE):
        if run.batch_size % (ranks * run.micro_batch_size):
            continue
        try:
            return plan_memory(
                run.model, run.batch_size // ranks, run.seq_len, GPU_MEMORY_GIB * GIB, ranks=ranks, bf16=True,
                micro_batch=run.micro_batch_size, noise_probe=run.measures_noise_scale,
            )  # fmt: skip
        except ArchscaleError:
            continue
    return None


def plan_runs(runs: Sequence[RunConfig]) -> list[PlannedRun]:
    """Every run with its tokens, FLOPs, epochs (None until its corpus is built) and estimated seconds per
    part on one CPU thread and on one GPU of each kind; a cooldown branch costs only its own decay steps."""
    branches = plan_branches(runs)
    off = Counter(branch.trunk_id for branch in branches.values())
    facts: dict[tuple[str, str], CorpusFacts] = {}
    planned = []
    for run in runs:
        key = (run.dataset, run.tokenizer)
        if key not in facts:
            facts[key] = corpus_facts(*key)
        planned.append(plan_run(run, facts[key], branches.get(run.run_id), off[run.run_id]))
    return planned


def sweep_seconds(planned: Sequence[PlannedRun], workers: int = 1) -> dict[str, float]:
    """Wall time per device: the sweep's start-up plus its runs, over ``workers`` parallel CPU workers."""
    kinds = list(planned[0].seconds) if planned else []
    return {
        k: SWEEP_START_S + sum(p.seconds[k] for p in planned) / (workers if k.startswith("cpu") else 1)
        for k in kinds
    }


def format_plan(planned: Sequence[PlannedRun], workers: int = 1) -> str:
    """A table of the planned runs and the totals, wall time per device kind over ``workers`` parallel ones."""
    kinds = list(planned[0].seconds) if planned else []
    header = f"{'run':<13} {'model':<12} {'tokens':>10} {'FLOPs':>9} {'epochs':>7} {'evals':>5}  "
    lines = [header + "  ".join(kinds) + f"  placement ({GPU_MEMORY_GIB} GiB GPUs, bf16)"]
    for p in planned:
        epochs = "?" if p.epochs is None else f"{p.epochs:.2g}"
        times = "  ".join(f"{_duration(p.seconds[k]):>{len(k)}}" for k in kinds)
        placement = "fits no node" if p.memory is None else p.memory.describe()
        lines.append(
            f"{p.run_id:<13} {p.model:<12} {p.tokens:>10.3g} {p.flops:>9.3g} {epochs:>7} {p.evals:>5}  "
            f"{times}  {placement}"
        )
    total_flops = sum(p.flops for p in planned)
    walls = "; ".join(
        f"{k.replace('1 thread', f'{workers} workers') if k.startswith('cpu') else k + ', one GPU'}: "
        f"{_duration(seconds)}"
        for k, seconds in sweep_seconds(planned, workers).items()
    )
    lines.append(f"{len(planned)} runs, {total_flops:.3g} training FLOPs; wall time — {walls}")
    if kinds:
        cpu = kinds[0]
        summed = {part: sum(p.parts[cpu][part] for p in planned) for part in planned[0].parts[cpu]}
        lines.append(
            f"{cpu}, summed over the runs: "
            + ", ".join(f"{part} {_duration(s)}" for part, s in summed.items())
            + f"; the sweep's own start-up {_duration(SWEEP_START_S)}"
        )
    if any(p.epochs is None for p in planned):
        lines.append(
            "epochs: ? where the corpus or its shards are not built yet (`archscale data build`); their "
            f"times evaluate every test subset in full ({len(RECIPES)} if the corpus is not built) and leave out "
            "re-hashing the shards"
        )
    if over := [p for p in planned if p.epochs is not None and p.epochs > 1]:
        lines.append(
            f"warning: {len(over)} runs go over their data more than once (up to {max(p.epochs for p in over):.2g} "
            "epochs); repeated data bends scaling laws: use a larger corpus for these budgets"
        )
    one_gpu = [p.memory for p in planned if p.memory is not None and p.memory.ranks == 1]
    if frugal := [m for m in one_gpu if m.passes > 1 or m.checkpoint_activations]:
        lines.append(
            f"{len(frugal)} runs fit one {GPU_MEMORY_GIB} GiB GPU only in passes of fewer rows than their "
            f"micro-batch ({sum(m.passes > 1 for m in frugal)}) or with recomputed activations "
            f"({sum(m.checkpoint_activations for m in frugal)}: about a third more compute, not in the times "
            "above); the trainer plans the same by itself, and the numbers are those of the run as specified"
        )
    if sharded := [p for p in planned if p.memory is not None and p.memory.ranks > 1]:
        lines.append(
            f"{len(sharded)} runs fit no one {GPU_MEMORY_GIB} GiB GPU (up to {max(p.gpu_bytes for p in sharded) / GIB:.3g} "
            f"GiB at their micro-batch): they shard over a node, `torchrun --nproc-per-node {GPUS_PER_NODE} -m "
            "archscale.cli.main train SPEC.yaml` (the plan shards there by itself)"
        )
    if nowhere := [p for p in planned if p.memory is None]:
        lines.append(
            f"warning: {len(nowhere)} runs fit neither one {GPU_MEMORY_GIB} GiB GPU nor a node of "
            f"{GPUS_PER_NODE} sharded, even one row a pass with recomputed activations: shard them over more "
            "GPUs, or shorten their seq_len"
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
