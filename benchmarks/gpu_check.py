"""The GPU path, checked in one run (≤ 10 minutes on one H100/H200): machine, bf16 training throughput and
MFU of dense-100m and moe-200m (eager and compiled), the grouped and loop MoE backends agreeing on the GPU
in bf16 and fp32, and a short slice of a paper-sized sweep end to end.

Run from the repository root (``benchmarks/gpu_check.sh`` does, with a time limit)::

    .venv/bin/python benchmarks/gpu_check.py --out gpu-check      # then paste gpu-check/RESULTS.md

``--smoke`` runs the same code on the CPU with tiny presets in about a minute, so the script is known to
work before a GPU is lent. MFU is against the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s); the FLOPs
per token are the accounting module's (causal attention, output head included), forward + backward.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import torch

from archscale.data import build_corpus_from_documents
from archscale.models import build_model, flops_per_token, get_preset
from archscale.models.memory import estimate_memory
from archscale.models.moe import MoEFeedForward, grouped_available
from archscale.store import ResultsStore
from archscale.sweeps.executor import default_run_root, executor_for, run_sweep
from archscale.training.run_config import RunConfig

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
GOALS = {"dense": 0.45, "moe": 0.35}  # MFU goals of the GPU issue


def machine() -> dict:
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": sys.version.split()[0],
            "torch": torch.__version__, "platform": platform.platform()}  # fmt: skip
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                 "capability": f"{props.major}.{props.minor}", "gpus": torch.cuda.device_count()}  # fmt: skip
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        info["nvidia_smi"] = smi.stdout.strip()
    return info


def peak_flops(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def throughput(name: str, device: str, batch: int, seq: int, compile_backend: str | None, steps: int) -> dict:
    """Timed full training steps (forward, backward, AdamW) in bf16 autocast on the GPU (fp32 on the CPU)."""
    cfg = get_preset(name)
    torch.manual_seed(0)
    model = build_model(cfg, device)
    step_model = torch.compile(model, backend=compile_backend) if compile_backend else model
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.startswith("cuda"))
    idx = torch.randint(0, cfg.vocab_size, (batch, seq + 1), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))

    def step() -> None:
        with autocast:
            loss = step_model(idx[:, :-1], idx[:, 1:]).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up, compilation included
        step()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / steps
    tokens_per_s = batch * seq / seconds
    per_token = flops_per_token(cfg, seq, include_head=True)
    peak = peak_flops(device)
    row = {"model": name, "compiled": compile_backend or "eager", "tokens_per_step": batch * seq,
           "step_ms": 1e3 * seconds, "tokens_per_s": tokens_per_s, "flops_per_token": per_token,
           "mfu": None if peak is None else per_token * tokens_per_s / peak,
           "estimated_memory_gib": estimate_memory(cfg, batch, seq, accumulates=False,
                                                   bf16=device.startswith("cuda")).total / 2**30}  # fmt: skip
    if device.startswith("cuda"):  # the allocator's peak, to hold against the estimate (eager mode)
        row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return row


def backends_agree(name: str, device: str, tokens: int) -> list[dict]:
    """One MoE layer, same weights and routing: grouped kernel against the per-expert loop, outputs and
    gradients, in fp32 and bf16 (the grouped kernel exists on CUDA only; elsewhere padded stands in)."""
    rows = []
    other = "grouped" if device.startswith("cuda") and grouped_available() else "padded"
    for dtype in (torch.float32, torch.bfloat16):
        cfg = get_preset(name)
        torch.manual_seed(0)
        layer = MoEFeedForward(cfg.replace(moe_backend="loop")).to(device=device, dtype=dtype)
        for weight in layer.parameters():  # the experts are allocated empty; the Transformer initialises them
            torch.nn.init.normal_(weight, 0.0, cfg.init_std)
        twin = MoEFeedForward(cfg.replace(moe_backend=other)).to(device=device, dtype=dtype)
        twin.load_state_dict(layer.state_dict())
        x = torch.randn(1, tokens, cfg.d_model, device=device, dtype=dtype)
        results = []
        for module in (layer, twin):
            inp = x.clone().requires_grad_(True)
            out, _ = module(inp)
            out.float().square().mean().backward()
            results.append((out.detach().float(), inp.grad.float()))
        (out_a, grad_a), (out_b, grad_b) = results
        rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
        tolerance = 1e-4 if dtype == torch.float32 else 2e-2
        rows.append({"dtype": str(dtype).removeprefix("torch."), "backend": other, "output_rel_diff": rel(out_b, out_a),
                     "grad_rel_diff": rel(grad_b, grad_a), "tolerance": tolerance,
                     "agree": rel(out_b, out_a) < tolerance and rel(grad_b, grad_a) < tolerance})  # fmt: skip
    return rows


def sweep_slice(out: Path, models: list[str], seq: int, batch: int, tokens: int) -> dict:
    """A paper-shaped sweep cut short: a corpus from this Python's standard library (no network), the models
    at the preset's sequence length, every visible device busy; finished runs, curves and evals in a store."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(stdlib.glob("*.py"))]
    corpus = build_corpus_from_documents({"code": code}, out / "corpus", overwrite=True)
    runs = [RunConfig.from_dict({"model": m, "dataset": str(corpus.path), "tokenizer": "bytes", "seq_len": seq,
                                 "batch_size": batch, "micro_batch_size": min(batch, 4), "tokens": tokens, "lr": 1e-3,
                                 "eval_tokens_per_subset": 4 * seq}) for m in models]  # fmt: skip
    store_path = out / "slice.sqlite"
    start = time.perf_counter()
    with ResultsStore(store_path) as store:
        summary = run_sweep(runs, store, default_run_root(store_path), executor_for("auto"), progress=False)
        evals = store.evals(split="test", subset="all")
    return {"runs": summary.total, "finished": len(summary.finished), "failed": len(summary.failed),
            "wall_s": time.perf_counter() - start, "evaluated_runs": int(evals["run_id"].nunique())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    parser.add_argument("--smoke", action="store_true", help="the same checks on the CPU with tiny presets")
    args = parser.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        models, batch, seq, backend, steps = ["dense-100k", "moe-100k"], 4, 128, "aot_eager", 3
        slice_models, slice_seq, slice_tokens = ["dense-100k", "moe-100k"], 128, 4 * 128 * 8
    else:
        models, batch, seq, backend, steps = ["dense-100m", "moe-200m"], 4, 8192, "inductor", 10
        slice_models, slice_seq, slice_tokens = ["dense-50m", "moe-200m"], 8192, 64 * 8192 * 12
    report = {"machine": machine(), "device": device, "throughput": [], "backends": [], "slice": None}
    for name in models:
        for compiled in (None, backend):
            report["throughput"].append(throughput(name, device, batch, seq, compiled, steps))
            print(json.dumps(report["throughput"][-1]), flush=True)
    report["backends"] = backends_agree(models[1], device, tokens=4096 if not args.smoke else 256)
    print(json.dumps(report["backends"]), flush=True)
    report["slice"] = sweep_slice(args.out, slice_models, slice_seq, 8 if args.smoke else 64, slice_tokens)
    print(json.dumps(report["slice"]), flush=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (args.out / "RESULTS.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"## GPU check, {m['date']}", "",
             f"- machine: {m.get('gpu', 'CPU (smoke)')}, {m.get('gpus', 0)} GPUs, torch {m['torch']}, {m['platform']}",
             "- command: `bash benchmarks/gpu_check.sh`", "",
             "| model | mode | tokens/step | step ms | tokens/s | MFU | goal | GiB peak / estimated |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in report["throughput"]:
        goal = GOALS["moe" if r["model"].startswith("moe") else "dense"]
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
        lines.append(f"| {r['model']} | {r['compiled']} | {r['tokens_per_step']} | {r['step_ms']:.1f} | "
                     f"{r['tokens_per_s']:,.0f} | {mfu} | ≥ {100 * goal:.0f} % | "
                     f"{r.get('max_memory_gib', float('nan')):.3g} / {r['estimated_memory_gib']:.3g} |")  # fmt: skip
    lines.append("")
    for b in report["backends"]:
        lines.append(f"- {b['backend']} vs loop experts, {b['dtype']}: output rel. diff {b['output_rel_diff']:.2e}, "
                     f"gradient {b['grad_rel_diff']:.2e} (tolerance {b['tolerance']:g}): {'agree' if b['agree'] else 'DISAGREE'}")  # fmt: skip
    s = report["slice"]
    lines.append(f"- sweep slice: {s['finished']} of {s['runs']} runs finished ({s['failed']} failed), "
                 f"{s['evaluated_runs']} evaluated, {s['wall_s']:.0f} s")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
