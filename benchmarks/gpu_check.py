"""The GPU path, checked in one run (≤ 10 minutes on one H100/H200), part by part, each timed and each
recorded even when another fails:

1. machine;
2. bf16 training throughput and MFU of dense-100m and moe-200m, eager (the compiled variants come last,
   each in a subprocess with a time limit, so a slow ``torch.compile`` cannot sink the run);
3. the grouped and loop MoE backends agreeing in bf16 and fp32;
4. a tiny run's loss curve (dense-100k and moe-100k, a few dozen steps) on the GPU against the CPU's,
   through the sweep path (``run_sweep`` with ``InProcessExecutor``): in fp32 (the trainer's bf16 autocast
   switched off for this check) to a tight tolerance, and as the trainer trains on a GPU (bf16 autocast) to
   a looser one;
5. FSDP over the visible GPUs (``torchrun --nproc-per-node N ... archscale train --shard``) against one
   process's curve, where there are several GPUs (else recorded as skipped);
6. a mini-ladder (5 sizes per family, WSD with cooldown branches) through the study path
   (:func:`archscale.study.run_study` with a spec of its own): trained, its laws fitted, its report written,
   α_N per family read from the report; sized by the dry run, then capped by measured step rates so that it
   fits its share of the 10 minutes;
7. if time is left: the compiled throughput variants, then a short slice of a paper-sized sweep.

Run from the repository root (``benchmarks/gpu_check.sh`` does, with a time limit)::

    .venv/bin/python benchmarks/gpu_check.py --out gpu-check      # then paste gpu-check/RESULTS.md

``--smoke`` runs the same code on the CPU with tiny presets in a few minutes (the "GPU" side of each
comparison is then the CPU, and FSDP runs over 2 gloo processes), so the script is known to work before a
GPU is lent. MFU is against the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s); the FLOPs per token are
the accounting module's (causal attention, output head included), forward + backward. ``gpu_check.json``
and ``RESULTS.md`` are rewritten after every part, so a run stopped by the time limit keeps what it did.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from archscale.data import build_corpus_from_documents
from archscale.models import build_model, flops_per_token, get_preset
from archscale.models.memory import estimate_memory
from archscale.models.moe import MoEFeedForward, grouped_available
from archscale.store import ResultsStore
from archscale.sweeps import load_spec
from archscale.sweeps.dry_run import plan_runs, sweep_seconds
from archscale.sweeps.executor import InProcessExecutor, default_run_root, executor_for, run_sweep
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
GOALS = {"dense": 0.45, "moe": 0.35}  # MFU goals of the GPU issue
BUDGET_S = 560.0  # this script's own limit, inside gpu_check.sh's `timeout 600` (which also covers imports)
MIN_LADDER_S = 60.0  # below this the ladder's runs would be cut to their floor: skipped instead
# The curve check's tolerances on max |relative difference| of lm_loss over the curve. fp32: the two sides
# run the same operations and differ only in kernels (summation order, ~1e-7 relative per op), which a few
# dozen AdamW steps amplify to ~1e-5-1e-4; 2e-3 leaves margin for that and still catches a real difference
# (a mask, routing or loss-term bug moves the loss by percents within steps). bf16 autocast against fp32:
# bf16 keeps 8 mantissa bits (~4e-3 relative per rounding); losses of bf16 and fp32 runs typically differ by
# ~1e-2 at these lengths; 3e-2 flags a gross error only. FSDP on the GPU holds its parameters in bf16 (as
# the trainer shards them), so it is held to the bf16 tolerance; DDP/FSDP on the CPU (fp32) to fp32's.
TOL_FP32, TOL_BF16 = 2e-3, 3e-2


class Clock:
    def __init__(self, budget: float) -> None:
        self.start, self.budget = time.perf_counter(), budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()


def machine() -> dict:
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": sys.version.split()[0],
            "torch": torch.__version__, "platform": platform.platform(), "cpus": os.cpu_count()}  # fmt: skip
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                 "capability": f"{props.major}.{props.minor}", "gpus": torch.cuda.device_count()}  # fmt: skip
        with contextlib.suppress(OSError):
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
    if device.startswith("cuda"):  # the allocator's peak, to hold against the estimate
        row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return row


def compiled_throughput(
    name: str, device: str, batch: int, seq: int, backend: str, steps: int, timeout: float
) -> dict:
    """``throughput`` of the compiled model in a child process (this script's ``--row``), killed after
    ``timeout`` seconds: compilation time is unbounded, the run's 10 minutes are not."""
    command = [sys.executable, __file__, "--row", name, "--device", device, "--batch", str(batch),
               "--seq", str(seq), "--backend", backend, "--steps", str(steps)]  # fmt: skip
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"model": name, "compiled": backend, "error": f"not done within {timeout:.0f} s (compilation)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"model": name, "compiled": backend, "error": f"exit {done.returncode}: {done.stderr[-600:]}"}
    return json.loads(lines[-1]) | {"process_s": time.perf_counter() - start}


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


def stdlib_corpus(out: Path, everything: bool) -> str:
    """A corpus from this Python's standard library (no network), built once under ``out/corpus``: its
    top-level modules (4.7 MB on 3.12), or ``everything`` (packages and tests too, site-packages left out:
    about 31 MB, enough bytes that the GPU ladder goes over its data about once). Returns its path."""
    path = out / ("corpus-all" if everything else "corpus")
    if (path / "corpus.json").exists() or any(path.glob("*.json")):
        return str(path)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = stdlib.glob("**/*.py") if everything else stdlib.glob("*.py")
    files = sorted(f for f in files if "site-packages" not in f.parts)
    code = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    return str(build_corpus_from_documents({"code": code}, path, overwrite=True).path)


def sweep_slice(corpus: str, out: Path, models: list[str], seq: int, batch: int, tokens: int) -> dict:
    """A paper-shaped sweep cut short: the models at the preset's sequence length, every visible device
    busy; finished runs, curves and evals in a store."""
    runs = [RunConfig.from_dict({"model": m, "dataset": corpus, "tokenizer": "bytes", "seq_len": seq,
                                 "batch_size": batch, "micro_batch_size": min(batch, 4), "tokens": tokens, "lr": 1e-3,
                                 "eval_tokens_per_subset": 4 * seq}) for m in models]  # fmt: skip
    store_path = out / "slice.sqlite"
    start = time.perf_counter()
    with ResultsStore(store_path) as store:
        summary = run_sweep(runs, store, default_run_root(store_path), executor_for("auto"), progress=False)
        evals = store.evals(split="test", subset="all")
    return {"runs": summary.total, "finished": len(summary.finished), "failed": len(summary.failed),
            "wall_s": time.perf_counter() - start, "evaluated_runs": int(evals["run_id"].nunique())}  # fmt: skip


# ---- curve check ----------------------------------------------------------------------------------------
def train_curve(run: RunConfig, store_path: Path, device: str, bf16: bool = True) -> list[float]:
    """Train ``run`` in this process on ``device`` (the sweep's in-process path); its lm_loss per step."""
    with ResultsStore(store_path) as store:
        summary = run_sweep(
            [run],
            store,
            default_run_root(store_path),
            InProcessExecutor(device, options=TrainOptions(bf16=bf16)),
            progress=False,
        )
        if summary.failed or store.status(run.run_id) != "finished":
            raise RuntimeError(
                f"{run.model_name} on {device}: {store.status(run.run_id)}; see {store_path.parent}"
            )
        return store.curve(run.run_id)["lm_loss"].tolist()


def max_rel_diff(a: list[float], b: list[float]) -> float:
    if len(a) != len(b) or not a:
        return math.inf
    return max(abs(x - y) / abs(y) for x, y in zip(a, b, strict=True))


def curve_check(corpus: str, out: Path, device: str, steps: int) -> dict:
    """dense-100k and moe-100k for ``steps`` steps on the CPU, then on ``device`` in fp32 and in bf16
    autocast (the trainer's own GPU precision), from the same initial weights (drawn on the CPU); max
    relative difference of lm_loss against the CPU's."""
    seq, batch = 128, 8
    runs = [RunConfig.from_dict({"model": m, "dataset": corpus, "tokenizer": "bytes", "seq_len": seq,
                                 "batch_size": batch, "micro_batch_size": batch, "tokens": steps * batch * seq,
                                 "lr": 1e-3, "eval_tokens_per_subset": 2 * seq}) for m in ("dense-100k", "moe-100k")]  # fmt: skip
    root = out / "curve"
    root.mkdir(parents=True, exist_ok=True)
    other = "cuda:0" if device.startswith("cuda") else "cpu"
    rows = []
    for run in runs:
        name = run.model_name
        cpu = train_curve(run, root / "cpu.sqlite", "cpu")
        for precision, tolerance in (("fp32", TOL_FP32), ("bf16 autocast", TOL_BF16)):
            row = {"model": name, "precision": precision if other != "cpu" else f"{precision} (CPU: fp32)",
                   "device": other, "steps": len(cpu), "tolerance": tolerance, "final_cpu": cpu[-1]}  # fmt: skip
            try:  # each side on its own: one that fails on the GPU leaves the others' numbers
                store = root / f"device-{precision.split()[0]}.sqlite"
                curve = train_curve(run, store, other, bf16=precision != "fp32")
            except Exception as err:
                traceback.print_exc()
                rows.append(row | {"error": f"{type(err).__name__}: {err}"[:300], "met": False})
                continue
            diff = max_rel_diff(curve, cpu)
            rows.append(row | {"max_rel_diff": diff, "final_device": curve[-1], "met": diff <= tolerance})
    return {"rows": rows}


# ---- FSDP ---------------------------------------------------------------------------------------------
def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def fsdp_check(corpus: str, out: Path, device: str, smoke: bool, timeout: float) -> dict:
    """dense-100k, 30 steps of 16 rows: ``torchrun`` over the GPUs with ``--shard`` (FSDP2, through
    ``archscale train``) against one GPU in this process (the path ``archscale train`` takes alone), both
    from the weights rank 0 draws on the CPU; in the smoke run 2 gloo processes on the CPU stand in."""
    gpus = 2 if smoke else torch.cuda.device_count()
    if gpus < 2:
        return {"skipped": f"{gpus} GPU visible"}
    ranks = gpus if 16 % (2 * gpus) == 0 else 2  # whole micro-batches of 2 rows on every rank
    root = out / "fsdp"
    root.mkdir(parents=True, exist_ok=True)
    seq, batch, steps = 128, 16, 30
    spec = write_spec(root / "fsdp.yaml", {
        "name": "gpu-check-fsdp", "dataset": corpus, "tokenizer": "bytes", "seq_len": seq, "micro_batch_size": 2,
        "eval": {"tokens_per_subset": 2 * seq}, "seeds": [0],
        "grid": [{"models": ["dense-100k"], "tokens": [steps * batch * seq], "batch_sizes": [batch], "lrs": [1e-3]}],
    })  # fmt: skip
    dev = "cpu" if smoke else "cuda"
    start = time.perf_counter()
    one = train_curve(load_spec(spec).expand()[0], root / "one.sqlite", "cpu" if smoke else "cuda:0")
    one_s = time.perf_counter() - start
    env = os.environ | ({"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"} if smoke else {})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
               "-m", "archscale.cli.main", "train", str(spec), "--device", dev, "--store", str(root / "fsdp.sqlite"),
               "--shard"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    fsdp_s = time.perf_counter() - start
    (root / "fsdp.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"torchrun exit {done.returncode}: {done.stderr[-800:]}")
    with ResultsStore(root / "fsdp.sqlite", read_only=True) as store:
        fsdp = store.curve()["lm_loss"].tolist()
    tolerance = TOL_FP32 if smoke else TOL_BF16
    diff = max_rel_diff(fsdp, one)
    return {"ranks": ranks, "gpus": 0 if smoke else gpus, "device": dev, "steps": len(one), "max_rel_diff": diff,
            "tolerance": tolerance, "met": diff <= tolerance, "one_s": one_s, "fsdp_s": fsdp_s}  # fmt: skip


# ---- the mini-ladder through the study path ---------------------------------------------------------------
def ladder_spec(corpus: str, smoke: bool, scale: float) -> dict:
    """Five sizes per family on the GPU, four in the smoke run (tiny presets: byte vocabulary; on the GPU
    their 256-token context and 2 micro-batches of 32 rows, so that a step is not all kernel launches), each a
    WSD trunk with two cooldown branches (3 budgets a size), budgets × ``scale``."""
    if smoke:
        sizes, seq, batch, micro, budgets, lr, eval_tokens = ["25k", "50k", "100k", "200k"], 128, 8, 4, [100e3, 200e3, 400e3], 4e-3, 1024  # fmt: skip
    else:
        sizes, seq, batch, micro, budgets, lr, eval_tokens = ["800k", "1.6m", "2.7m", "6.4m", "10m"], 256, 64, 32, [16e6, 32e6, 64e6], 2e-3, 16384  # fmt: skip
    step = batch * seq
    least = 60 * step  # the shortest budget keeps its warm-up (20 steps) well before its decay
    tokens = [int(max(least * b / budgets[0], b * scale) // step * step) for b in budgets]
    models = [f"{kind}-{size}" for size in sizes for kind in ("dense", "moe")]
    return {"name": "gpu-check-ladder", "description": "gpu_check.py's mini-ladder", "dataset": corpus,
            "tokenizer": "bytes", "seq_len": seq, "micro_batch_size": micro,
            "optimizer": {"weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "grad_clip": 1.0},
            "eval": {"tokens_per_subset": eval_tokens, "at_tokens": []}, "seeds": [0],
            "grid": [{"models": models, "tokens": tokens, "batch_sizes": [batch], "lrs": [lr],
                      "schedule": {"kind": "wsd", "warmup_steps": 20, "decay_fraction": 0.2, "min_lr_ratio": 0.1}}]}  # fmt: skip


def measured_seconds(runs: list[RunConfig], device: str, workers: int, rates: dict[str, float]) -> float:
    """The ladder's training time at rates measured here: each model's eager step at the run's micro-batch
    (a few steps), times its steps and micro-batches, over the workers; a cooldown branch trains only its
    decay. Evaluations, checkpoints, the noise probe and start-up are left to the caller's margin. ``rates``:
    seconds per micro-batch by model, filled in here where missing."""
    from archscale.training.branches import plan_branches

    branches, total = plan_branches(runs), 0.0
    for run in runs:
        name = run.model_name or run.model.name
        if name not in rates:
            row = throughput(name, device, run.micro_batch_size, run.seq_len, None, steps=3)
            rates[name] = row["step_ms"] / 1e3
        start = branches[run.run_id].step if run.run_id in branches else 0
        total += (run.steps - start) * run.n_micro_batches * rates[name]
    return total / workers


def ladder(corpus: str, out: Path, device: str, smoke: bool, budget: float) -> dict:
    """Size the ladder (dry run; then capped by measured step rates to ``budget`` seconds), print both
    estimates, run it through ``run_study`` and read α_N per family from its report."""
    workers = 2 if smoke else max(1, torch.cuda.device_count())
    started = time.perf_counter()
    root = out / "ladder"
    root.mkdir(parents=True, exist_ok=True)
    base = load_spec(write_spec(root / "ladder.yaml", ladder_spec(corpus, smoke, 1.0))).expand()
    dry_all = sweep_seconds(plan_runs(base), workers)
    column = next(k for k in dry_all if k.startswith("cpu" if smoke else "H200"))
    dry = dry_all[column]
    report_s = 20.0  # fits (bootstrap 100), figures, public data: 12-19 s on the loaded 2-core box
    # evaluations, checkpoints, the noise probe, a host sync a step, the store: on top of the measured steps
    # (the smoke run's ladder took 0.8-1.5x its estimate at 1.5 under the shared box's load)
    overhead = 2.0
    rates: dict[str, float] = {}
    measured = measured_seconds(base, device, workers, rates) * overhead
    train_budget = budget - report_s - 10.0 - (time.perf_counter() - started)
    scale = min(1.0, train_budget / max(dry, measured))
    spec = write_spec(root / "ladder.yaml", ladder_spec(corpus, smoke, scale))
    runs = load_spec(spec).expand()
    planned = plan_runs(runs)
    estimate = {"dry_run_s": sweep_seconds(planned, workers)[column], "dry_run_column": column,
                "measured_rates_s": measured_seconds(runs, device, workers, rates) * overhead + report_s,
                "calibration_s": time.perf_counter() - started,
                "scale": max(r.tokens for r in runs) / max(r.tokens for r in base), "unscaled_dry_run_s": dry, "unscaled_measured_s": measured}  # fmt: skip
    print(f"ladder: {len(runs)} runs ({len({r.model_name for r in runs})} models), budgets "
          f"{sorted({r.tokens for r in runs})} tokens; estimated {estimate['dry_run_s']:.0f} s ({column}), "
          f"{estimate['measured_rates_s']:.0f} s at rates measured here", flush=True)  # fmt: skip
    from archscale.study import run_study

    start = time.perf_counter()
    result = run_study("micro", out=root / "study", spec=spec, bootstrap=100, progress=False,
                       device="cuda" if device.startswith("cuda") else "cpu",
                       log=lambda line: print(f"  {line}", flush=True))  # fmt: skip
    alpha = {family: {"alpha_N": e.alpha_N, "interval": e.alpha_N_interval, "degenerate": e.degenerate}
             for family, e in result.report.head.allocation.items()}  # fmt: skip
    return {"runs": result.sweep.total, "finished": len(result.sweep.finished), "failed": len(result.sweep.failed),
            "diverged": len(result.sweep.diverged), "models": sorted({r.model_name for r in runs}),
            "tokens": sorted({r.tokens for r in runs}), "wall_s": time.perf_counter() - start,
            "study_wall_s": result.wall_time, "estimate": estimate, "alpha_N": alpha,
            "summary": str(result.report.summary_path)}  # fmt: skip


# ---- the run ------------------------------------------------------------------------------------------
def save(report: dict, out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "RESULTS.md").write_text(markdown(report))


def part(report: dict, out: Path, clock: Clock, key: str, fn: Callable[[], object]) -> object:
    """Run one part: its result (or its error) and its seconds into the report, the report to disk."""
    start = time.perf_counter()
    print(f"[{clock.elapsed():.0f} s] {key} ...", flush=True)
    try:
        result = fn()
    except Exception as err:  # a part that fails is recorded; the others still run
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"[:1500]}
    report[key] = result
    report["elapsed_s"][key] = round(time.perf_counter() - start, 1)
    report["elapsed_s"].pop("total", None)  # last, after the parts
    report["elapsed_s"]["total"] = round(clock.elapsed(), 1)
    save(report, out)
    print(json.dumps(result, default=str)[:2000], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    parser.add_argument("--smoke", action="store_true", help="the same checks on the CPU with tiny presets")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds this run may take")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # one throughput row, in a child process
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seq", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(throughput(args.row, args.device, args.batch, args.seq, args.backend, args.steps)))
        return
    clock = Clock(args.budget)
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    smoke = device == "cpu"
    if smoke:  # 2 threads on the shared 2-core box are 15x slower than 1 under load (barrier waits)
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"  # for the child processes
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if smoke:
        models, batch, seq, backend, steps = ["dense-100k", "moe-100k"], 4, 128, "aot_eager", 3
        slice_models, slice_seq, slice_batch, slice_tokens = ["dense-100k", "moe-100k"], 128, 8, 4 * 128 * 8
        curve_steps, ladder_s = 30, 75.0
    else:
        models, batch, seq, backend, steps = ["dense-100m", "moe-200m"], 4, 8192, "inductor", 10
        slice_models, slice_seq, slice_batch, slice_tokens = (
            ["dense-50m", "moe-200m"],
            8192,
            64,
            64 * 8192 * 6,
        )
        curve_steps, ladder_s = 40, 300.0
    report: dict = {"machine": machine(), "device": device, "smoke": smoke, "budget_s": args.budget,
                    "elapsed_s": {}, "throughput": [], "backends": [], "curve": None, "fsdp": None,
                    "ladder": None, "slice": None}  # fmt: skip
    save(report, out)
    rows: list[dict] = []

    def eager() -> list[dict]:
        for name in models:  # one model failing (e.g. out of memory) leaves the other's row
            try:
                rows.append(throughput(name, device, batch, seq, None, steps))
            except Exception as err:
                traceback.print_exc()
                rows.append(
                    {"model": name, "compiled": "eager", "error": f"{type(err).__name__}: {err}"[:300]}
                )
        return rows

    part(report, out, clock, "throughput", eager)
    part(
        report,
        out,
        clock,
        "backends",
        lambda: backends_agree(models[1], device, tokens=256 if smoke else 4096),
    )
    corpus = part(report, out, clock, "corpus", lambda: {"path": stdlib_corpus(out, everything=not smoke)})
    corpus_path = corpus.get("path", "") if isinstance(corpus, dict) else ""
    part(report, out, clock, "curve", lambda: curve_check(corpus_path, out, device, curve_steps))
    part(
        report,
        out,
        clock,
        "fsdp",
        lambda: fsdp_check(corpus_path, out, device, smoke, min(240.0, clock.left() / 3)),
    )
    # the compiled dense row before the ladder (its MFU is the headline), bounded; MoE's after it
    compile_dense_s = 60.0 if smoke else 120.0
    timed = lambda name, limit: compiled_throughput(name, device, batch, seq, backend, steps, limit)  # noqa: E731
    if clock.left() > ladder_s + compile_dense_s + 30:
        part(
            report,
            out,
            clock,
            "compiled_dense",
            lambda: rows.append(timed(models[0], compile_dense_s)) or rows[-1],
        )
    if min(ladder_s, clock.left() - 20) >= (MIN_LADDER_S if not smoke else 30.0):
        part(
            report,
            out,
            clock,
            "ladder",
            lambda: ladder(corpus_path, out, device, smoke, min(ladder_s, clock.left() - 20)),
        )
    else:
        report["ladder"] = {"skipped": f"{clock.left():.0f} s left: too little for the ladder"}
        save(report, out)
    if clock.left() > 40:
        part(
            report,
            out,
            clock,
            "compiled_moe",
            lambda: rows.append(timed(models[1], clock.left() - 25)) or rows[-1],
        )
    if clock.left() > (30 if smoke else 60):
        part(
            report,
            out,
            clock,
            "slice",
            lambda: sweep_slice(corpus_path, out, slice_models, slice_seq, slice_batch, slice_tokens),
        )
    save(report, out)
    print(markdown(report))


# ---- the RESULTS.md block -----------------------------------------------------------------------------
def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _error(lines: list[str], title: str, result: object) -> bool:
    if isinstance(result, dict) and "error" in result:
        lines += [f"**{title}**: failed: `{result['error'][:400]}`", ""]
        return True
    if result is None:
        lines += [f"**{title}**: not run (out of time or not reached)", ""]
        return True
    return False


def markdown(report: dict) -> str:
    m = report["machine"]
    secs = report["elapsed_s"]
    lines = [f"## GPU check, {m['date']}" + (" (CPU smoke)" if report.get("smoke") else ""), "",
             f"- machine: {m.get('gpu', 'CPU (smoke)')}, {m.get('gpus', 0)} GPUs, {m.get('cpus')} CPUs, torch {m['torch']}, "
             f"{m['platform']}", "- command: `bash benchmarks/gpu_check.sh`",
             "- seconds per part: " + ", ".join(f"{k} {v:g}" for k, v in secs.items()), ""]  # fmt: skip
    lines += ["**Throughput, bf16 autocast** (MFU against the dense bf16 peak; fp32 in the CPU smoke run)", "",
              "| model | mode | tokens/step | step ms | tokens/s | MFU | goal | met | GiB peak / estimated |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    rows = report["throughput"] if isinstance(report["throughput"], list) else []
    for r in rows:
        goal = GOALS["moe" if r["model"].startswith("moe") else "dense"]
        if "error" in r:
            lines.append(
                f"| {r['model']} | {r['compiled']} | | | | failed: {r['error'][:120]} | ≥ {100 * goal:.0f} % | **not met** | |"
            )
            continue
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
        met = None if r["mfu"] is None else r["mfu"] >= goal
        lines.append(f"| {r['model']} | {r['compiled']} | {r['tokens_per_step']} | {r['step_ms']:.1f} | "
                     f"{r['tokens_per_s']:,.0f} | {mfu} | ≥ {100 * goal:.0f} % | {_met(met)} | "
                     f"{r.get('max_memory_gib', float('nan')):.3g} / {r['estimated_memory_gib']:.3g} |")  # fmt: skip
    _error(lines, "throughput", report["throughput"])
    lines.append("")
    if not _error(lines, "MoE backends", report["backends"]):
        lines += ["**MoE backends** (one layer, same weights: outputs and input gradients)", "",
                  "| backend vs loop | dtype | output rel. diff | gradient rel. diff | tolerance | met |", "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for b in report["backends"]:
            lines.append(f"| {b['backend']} | {b['dtype']} | {b['output_rel_diff']:.2e} | {b['grad_rel_diff']:.2e} | "
                         f"{b['tolerance']:g} | {_met(b['agree'])} |")  # fmt: skip
        lines.append("")
    curve = report["curve"]
    if not _error(lines, "Curve check", curve):
        lines += ["**Curve check**: a tiny run trained through `run_sweep` on the CPU (fp32) and on the device; "
                  "max |relative difference| of lm_loss over the curve", "",
                  "| model | device side | steps | max rel. diff | tolerance | final loss CPU / device | met |",
                  "|---|---|---:|---:|---:|---|---|"]  # fmt: skip
        for r in curve["rows"]:
            if "error" in r:
                lines.append(
                    f"| {r['model']} | {r['device']}, {r['precision']} | | failed: {r['error'][:150]} | "
                    f"{r['tolerance']:g} | | {_met(False)} |"
                )
                continue
            lines.append(f"| {r['model']} | {r['device']}, {r['precision']} | {r['steps']} | {r['max_rel_diff']:.2e} | "
                         f"{r['tolerance']:g} | {r['final_cpu']:.4f} / {r['final_device']:.4f} | {_met(r['met'])} |")  # fmt: skip
        lines.append("")
    fsdp = report["fsdp"]
    if not _error(lines, "FSDP", fsdp):
        lines += ["**FSDP** (`torchrun ... archscale train --shard` against one process, dense-100k, 30 steps)", "",
                  "| ranks | device | max rel. diff | tolerance | seconds one / FSDP | goal: equal curves |",
                  "|---|---|---:|---:|---|---|"]  # fmt: skip
        if "skipped" in fsdp:
            lines.append(f"| - | - | - | - | - | skipped: {fsdp['skipped']} |")
        else:
            lines.append(f"| {fsdp['ranks']} | {fsdp['device']} | {fsdp['max_rel_diff']:.2e} | {fsdp['tolerance']:g} | "
                         f"{fsdp['one_s']:.0f} / {fsdp['fsdp_s']:.0f} | {_met(fsdp['met'])} |")  # fmt: skip
        lines.append("")
    lad = report["ladder"]
    if isinstance(lad, dict) and "skipped" in lad:
        lines += [f"**Mini-ladder through `run_study`**: skipped ({lad['skipped']})", ""]
    elif not _error(lines, "Mini-ladder", lad):
        est = lad["estimate"]
        lines += [f"**Mini-ladder through `run_study`** ({', '.join(lad['models'])}; budgets {lad['tokens']} tokens, "
                  f"×{est['scale']:.2g} of the design; estimated {est['dry_run_s']:.0f} s by the dry run ({est['dry_run_column']}), "
                  f"{est['measured_rates_s']:.0f} s at rates measured here; took {lad['wall_s']:.0f} s)", "",
                  "| goal | value | met |", "|---|---|---|",
                  f"| every run finished | {lad['finished']} of {lad['runs']} ({lad['failed']} failed, {lad['diverged']} diverged) | "
                  f"{_met(lad['failed'] == 0 and lad['diverged'] == 0)} |"]  # fmt: skip
        for family in ("dense", "moe"):
            a = lad["alpha_N"].get(family)
            if a is None or a["alpha_N"] is None:
                lines.append(f"| α_N fitted, {family} | none | **not met** |")
                continue
            span = (
                " (no interval)"
                if not a["interval"]
                else f" [{a['interval'][0]:.3g}, {a['interval'][1]:.3g}]"
            )
            note = " (degenerate fit: not a measurement)" if a["degenerate"] else ""
            met = bool(a["interval"]) and not a["degenerate"]
            lines.append(f"| α_N fitted, {family} | {a['alpha_N']:.3g}{span}{note} | {_met(met)} |")
        lines.append("")
    s = report["slice"]
    if isinstance(s, dict) and "error" not in s:
        lines.append(f"- sweep slice: {s['finished']} of {s['runs']} runs finished ({s['failed']} failed), "
                     f"{s['evaluated_runs']} evaluated, {s['wall_s']:.0f} s")  # fmt: skip
    elif isinstance(s, dict):
        lines.append(f"- sweep slice: failed: `{s['error'][:300]}`")
    else:
        lines.append("- sweep slice: not run (no time left)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
