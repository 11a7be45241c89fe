"""Training-step throughput and MFU of the tiny presets, side by side with Hugging Face Llama / Mixtral.

One full training step (forward, backward, AdamW step) on one CPU thread, for the dense and MoE presets of
one size label and for the equivalent ``transformers`` Llama (dense) and Mixtral (MoE) configurations on
the same batch. MFU is measured against the sgemm peak of the same thread on the same machine (a square
fp32 matmul), so it says how close the whole step gets to what the matmul kernel itself can do.

The candidates run round-robin, one step each per round, so a burst of load from other processes on a
shared machine hits all of them alike; the table reports medians of wall-clock time (what MFU uses) and of
the thread's CPU time (which excludes time spent waiting for a core). Run it from the repository root::

    .venv/bin/python benchmarks/throughput.py --label 800k --profile >> benchmarks/RESULTS.md

``--moe-backend auto loop padded`` times one MoE row per experts backend, all from the same weights (so
the same routing); ``--batch 4 --seq 128`` is the study's 512-token micro-batch. ``--compile`` compiles
every row (archscale's with ``archscale.models.compile_model``, HF's with ``torch.compile``) and reports
the first warm-up step, which compiles.
"""

from __future__ import annotations

import os

# One thread per process, set before torch is imported (OpenMP reads them once, at load).
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import datetime
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn.functional as F

from archscale.models import ModelConfig, build_model, compile_model, flops_per_token, get_preset
from archscale.models.config import MoEBackend
from archscale.models.moe import resolve_backend

FLOPS_CONVENTION = (
    'archscale.models.flops_per_token(cfg, seq_len, attention="full", include_head=True): '
    "6·active params + 12·n_layers·d_model·seq_len (causal mask counted in full) + 6·d_model·vocab, "
    "forward + backward; the Hugging Face rows are charged the same FLOPs as the config they mirror"
)
# Targets from the benchmark issue.
MIN_DENSE_MFU = 0.50
MAX_MOE_OVER_DENSE = 1.10
MIN_SPEEDUP_OVER_HF_MIXTRAL = 1.5

GEMM_OPS = frozenset({"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::_grouped_mm"})
ATTENTION_OP_PREFIX = "aten::_scaled_dot_product"


@dataclass(frozen=True)
class Candidate:
    name: str
    cfg: ModelConfig  # the configuration whose FLOPs the row is charged
    step: Callable[[], None]


@dataclass(frozen=True)
class Result:
    candidate: Candidate
    wall: list[float]  # seconds per step
    cpu: list[float]  # thread CPU seconds per step: excludes time spent waiting for a core

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def sgemm_peak(sizes: tuple[int, ...] = (256, 512, 1024), repeats: int = 7) -> tuple[float, int]:
    """Best median fp32 matmul rate (FLOP/s) over square sizes, and the size that reached it."""
    best = (0.0, 0)
    for n in sizes:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        calls = max(1, int(2e8 / (2 * n**3)))  # about 0.2 GFLOP per timed sample
        samples = []
        for i in range(repeats + 2):
            start = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b, out=c)
            if i >= 2:  # the first two are warm-up
                samples.append((time.perf_counter() - start) / calls)
        best = max(best, (2 * n**3 / statistics.median(samples), n))
    return best


def training_step(
    model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor], fused: bool
) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)

    def step() -> None:
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def archscale_candidate(
    cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor, fused: bool, compiled: bool
) -> Candidate:
    torch.manual_seed(0)  # the same weights, so the same routing, for every experts backend's row
    model = build_model(cfg).train()
    forward = compile_model(model) if compiled else model
    backend = ""
    if cfg.is_moe:
        auto = ", auto" if cfg.moe_backend == "auto" else ""
        backend = f" ({resolve_backend(cfg, 'cpu', x.numel())} experts{auto})"
    return Candidate(
        f"archscale {cfg.name}{backend}", cfg, training_step(model, lambda: forward(x, y).loss, fused)
    )


def hf_model(cfg: ModelConfig) -> torch.nn.Module:
    """The ``transformers`` twin of ``cfg`` that ``archscale export`` writes (Llama, or Mixtral for the
    renormalised MoE presets), randomly initialised, with SDPA attention."""
    from transformers import AutoModelForCausalLM

    from archscale.bridges.hf_export import hf_config

    config = hf_config(cfg)
    config.output_router_logits = cfg.is_moe  # the step includes the load-balancing loss, as archscale's does
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()


def hf_candidate(
    cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor, fused: bool, compiled: bool
) -> Candidate:
    model = hf_model(cfg)
    forward = torch.compile(model) if compiled else model

    def loss() -> torch.Tensor:
        out = forward(input_ids=x)  # the loss is taken here, on the same (x, y) pairs as archscale's
        ce = F.cross_entropy(out.logits.float().flatten(0, 1), y.flatten())
        aux = getattr(out, "aux_loss", None)  # Mixtral only
        return ce if aux is None else ce + cfg.aux_loss_weight * aux

    family = f"Mixtral ({model.config._experts_implementation} experts)" if cfg.is_moe else "Llama"
    return Candidate(f"HF {family}, {cfg.name} shapes", cfg, training_step(model, loss, fused))


def time_round_robin(
    candidates: list[Candidate], warmup: int, repeats: int
) -> tuple[list[Result], list[float]]:
    """Wall and thread-CPU time per step for each candidate, one step of each per round, and each
    candidate's first step (wall seconds: with ``--compile``, the compilation)."""
    first = []
    for c in candidates:
        start = time.perf_counter()
        c.step()
        first.append(time.perf_counter() - start)
    for _ in range(warmup - 1):
        for c in candidates:
            c.step()
    wall: list[list[float]] = [[] for _ in candidates]
    cpu: list[list[float]] = [[] for _ in candidates]
    for _ in range(repeats):
        for i, c in enumerate(candidates):
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            c.step()
            cpu[i].append(time.thread_time() - start_cpu)
            wall[i].append(time.perf_counter() - start_wall)
    return [Result(c, w, t) for c, w, t in zip(candidates, wall, cpu, strict=True)], first


@dataclass(frozen=True)
class KernelSplit:
    ops: dict[str, float]  # seconds per step of each op's profiler self time

    @property
    def gemm(self) -> float:  # in GEMM kernels
        return sum(t for op, t in self.ops.items() if op in GEMM_OPS)

    @property
    def attention(self) -> float:  # in the SDPA attention kernels
        return sum(t for op, t in self.ops.items() if op.startswith(ATTENTION_OP_PREFIX))

    @property
    def total(self) -> float:  # in all ops
        return sum(self.ops.values())

    def by_op_or_gemm(self) -> dict[str, float]:
        """Self time per op, with all GEMM ops summed as one ("GEMM"): mm and bmm do the same work."""
        ops = {op: t for op, t in self.ops.items() if op not in GEMM_OPS}
        return {"GEMM": self.gemm, **ops}


def kernel_splits(candidates: list[Candidate], rounds: int = 3) -> list[KernelSplit]:
    """Profile one step of each candidate per round (round-robin, like the timing): self time per op."""
    micros: list[dict[str, float]] = [{} for _ in candidates]
    for _ in range(rounds):
        for acc, c in zip(micros, candidates, strict=True):
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                c.step()
            for e in prof.key_averages():
                acc[e.key] = acc.get(e.key, 0.0) + e.self_cpu_time_total
    return [KernelSplit({op: v / rounds / 1e6 for op, v in acc.items()}) for acc in micros]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")]
    return names[0] if names else "unknown CPU"


def software_versions(with_hf: bool) -> str:
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    if with_hf:
        import transformers

        versions += f", transformers {transformers.__version__}"
    return versions


def report(args: argparse.Namespace) -> str:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    dense, moe = get_preset(f"dense-{args.label}"), get_preset(f"moe-{args.label}")
    if args.seq > dense.max_seq_len:
        raise SystemExit(f"--seq {args.seq} exceeds the presets' max_seq_len={dense.max_seq_len}")
    batch = torch.randint(0, dense.vocab_size, (args.batch, args.seq + 1))
    x, y = batch[:, :-1], batch[:, 1:]

    load_before = load_average()
    peak, peak_n = sgemm_peak()
    fused = args.adamw == "fused"
    compiled = args.compile
    candidates = [archscale_candidate(dense, x, y, fused, compiled)]
    candidates += [
        archscale_candidate(moe.replace(moe_backend=b), x, y, fused, compiled) for b in args.moe_backend
    ]
    if not args.no_hf:
        candidates += [hf_candidate(dense, x, y, fused, compiled), hf_candidate(moe, x, y, fused, compiled)]
    results, first = time_round_robin(candidates, args.warmup, args.repeats)
    load_after = load_average()
    tokens = args.batch * args.seq

    def flops(r: Result) -> float:
        return flops_per_token(r.candidate.cfg, args.seq, attention="full", include_head=True)

    lines = [
        f"### Training-step throughput, label {args.label}, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, shared; 1 thread used (OMP_NUM_THREADS=1, "
        f"OMP_WAIT_POLICY=PASSIVE); {software_versions(not args.no_hf)}",
        f"- command: `{' '.join([os.path.basename(sys.executable), *sys.argv])}`",
        f"- load average (uptime, 1/5/15 min) before: {load_before}; after: {load_after}",
        f"- batch {args.batch} x seq {args.seq} = {tokens} tokens/step; full step = forward + backward + "
        f"AdamW ({args.adamw}); {args.warmup} warm-up + {args.repeats} timed steps per row, interleaved round-robin",
        f"- {'compiled (torch.compile, inductor)' if compiled else 'eager'}; first step per row (s, "
        f"{'compilation included' if compiled else 'no compilation'}): "
        + ", ".join(f"{t:.1f}" for t in first),
        f"- sgemm peak (1 thread, fp32 {peak_n}x{peak_n} matmul, median): {peak / 1e9:.1f} GFLOP/s",
        f"- FLOPs: {FLOPS_CONVENTION}",
        "",
        "| model | FLOPs/token | step ms (median) | min-max ms | CPU ms (median) | tokens/s | GFLOP/s | MFU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = flops(r) * tokens / r.median_wall
        lines.append(
            f"| {r.candidate.name} | {flops(r) / 1e6:.2f} M | {r.median_wall * 1e3:.1f} "
            f"| {min(r.wall) * 1e3:.0f}-{max(r.wall) * 1e3:.0f} | {r.median_cpu * 1e3:.1f} "
            f"| {tokens / r.median_wall:,.0f} | {rate / 1e9:.1f} | {rate / peak:.1%} |"
        )
    dense_mfu = flops(results[0]) * tokens / results[0].median_wall / peak
    lines += ["", *_target_lines(results, len(args.moe_backend), dense_mfu)]
    if args.profile:
        lines += ["", *_profile_lines(results, len(args.moe_backend))]
    return "\n".join([*lines, ""])


def _target_lines(results: list[Result], n_moe: int, dense_mfu: float) -> list[str]:
    """Results are the dense row, ``n_moe`` MoE rows (one per experts backend), then the HF rows if any."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    dense, moe = results[0], results[1]
    lines = [
        f"- target dense MFU ≥ {MIN_DENSE_MFU:.0%}: {dense_mfu:.1%} ({verdict(dense_mfu >= MIN_DENSE_MFU)})"
    ]
    for r in results[1 : 1 + n_moe]:
        ratio = r.median_wall / dense.median_wall
        lines.append(
            f"- target MoE/dense step time ≤ {MAX_MOE_OVER_DENSE:.2f} (equal active FLOPs), {r.candidate.name}: "
            f"{ratio:.3f} ({verdict(ratio <= MAX_MOE_OVER_DENSE)}); in CPU time {r.median_cpu / dense.median_cpu:.3f}"
        )
    if len(results) == n_moe + 3:
        llama, mixtral = results[-2], results[-1]
        speedup = mixtral.median_wall / moe.median_wall
        lines += [
            f"- target MoE tokens/s ≥ {MIN_SPEEDUP_OVER_HF_MIXTRAL}x HF Mixtral's: {speedup:.2f}x "
            f"({verdict(speedup >= MIN_SPEEDUP_OVER_HF_MIXTRAL)}); in CPU time "
            f"{mixtral.median_cpu / moe.median_cpu:.2f}x",
            f"- dense vs HF Llama: {llama.median_wall / dense.median_wall:.2f}x tokens/s "
            f"(CPU time {llama.median_cpu / dense.median_cpu:.2f}x)",
        ]
    return lines


def _profile_lines(results: list[Result], n_moe: int) -> list[str]:
    """Where the step goes (torch.profiler self time), and what that implies for the speed-up ceiling."""
    lines = [
        "Where the time goes (torch.profiler self time per step, 3 profiled steps each, round-robin; the",
        "profiler adds a few µs per op, so 'other' is inflated most for the models with the most small ops):",
        "",
        "| model | GEMM (mm/bmm) ms | SDPA attention ms | other ops ms | profiled step ms |",
        "|---|---:|---:|---:|---:|",
    ]
    splits = kernel_splits([r.candidate for r in results])
    for r, k in zip(results, splits, strict=True):
        lines.append(
            f"| {r.candidate.name} | {k.gemm * 1e3:.0f} ({k.gemm / k.total:.0%}) "
            f"| {k.attention * 1e3:.0f} ({k.attention / k.total:.0%}) "
            f"| {(k.total - k.gemm - k.attention) * 1e3:.0f} | {k.total * 1e3:.0f} |"
        )
    lines.append("")
    dense = splits[0].by_op_or_gemm()
    for r, k in zip(results[1 : 1 + n_moe], splits[1 : 1 + n_moe], strict=True):
        extra = {op: t - dense.get(op, 0.0) for op, t in k.by_op_or_gemm().items()}
        top = sorted(extra, key=extra.get, reverse=True)[:8]
        lines.append(
            f"- {r.candidate.name} minus dense, the largest differences per step: "
            + ", ".join(f"{op} {extra[op] * 1e3:+.2f} ms" for op in top)
        )
    if len(results) == n_moe + 3:
        moe, mixtral = splits[1], splits[-1]
        lines += [
            f"- ceiling: with every other op free, archscale's MoE step would still spend "
            f"{(moe.gemm + moe.attention) * 1e3:.0f} ms (profiled) in the GEMM and SDPA kernels that HF "
            f"calls too, against HF Mixtral's whole profiled step of {mixtral.total * 1e3:.0f} ms: at most "
            f"{mixtral.total / (moe.gemm + moe.attention):.2f}x HF Mixtral's tokens/s without faster kernels",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="800k", help="tiny preset size label: dense-LABEL vs moe-LABEL")
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    parser.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per model")
    parser.add_argument(
        "--moe-backend",
        nargs="+",
        default=["auto"],
        choices=get_args(MoEBackend),
        help="one MoE row per experts backend (ModelConfig.moe_backend); the first is compared with HF",
    )
    parser.add_argument(
        "--adamw",
        default="fused",
        choices=["fused", "for-loop"],
        help="AdamW's implementation for every row: fused (one kernel over all tensors, as the trainer) "
        "or for-loop (torch's CPU default before the trainer chose fused)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile every row (the first warm-up step compiles)"
    )
    parser.add_argument("--profile", action="store_true", help="add the GEMM / attention / other split")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers comparison")
    print(report(parser.parse_args()))


if __name__ == "__main__":
    main()
