"""Sweep throughput: K worker processes × T threads each, on the same sweep, on this machine's cores.

The sweep executor's default is one thread per worker and as many workers as cores; this measures it
against the alternative of fewer, multi-threaded workers (``--layouts 2x1 1x2`` on a 2-core box). Each
layout trains the same runs from scratch into its own temporary store; the table gives the wall time of
the whole sweep and the training tokens per second over all runs. Run it from the repository root::

    .venv/bin/python benchmarks/sweep_workers.py >> benchmarks/RESULTS.md

The default corpus is the mini-Pile (``archscale data build`` first), or ``--dataset PATH`` of any built
corpus.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

from archscale.store import ResultsStore
from archscale.sweeps.executor import LocalExecutor, run_sweep
from archscale.sweeps.spec import SweepSpec


def sweep_spec(dataset: str, models: list[str], tokens: int) -> SweepSpec:
    return SweepSpec.from_dict(
        {
            "name": "bench-sweep-workers",
            "dataset": dataset,
            "seq_len": 128,
            "micro_batch_size": 8,
            "eval": {"tokens_per_subset": 4096},
            "grid": [{"models": models, "tokens": [tokens], "batch_sizes": [16], "lrs": [2e-3, 4e-3]}],
        }
    )


def time_layout(spec: SweepSpec, workers: int, threads: int) -> tuple[float, int]:
    """Wall seconds of the whole sweep under ``workers`` × ``threads``, and the tokens it trained."""
    runs = spec.expand()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp,
        ResultsStore(Path(tmp) / "r.sqlite") as store,
    ):
        start = time.perf_counter()
        summary = run_sweep(
            runs, store, Path(tmp) / "runs", LocalExecutor(workers, threads=threads), progress=False
        )
        wall = time.perf_counter() - start
    if summary.failed or summary.diverged:
        raise SystemExit(f"{workers}x{threads}: runs failed or diverged: {summary}")
    return wall, sum(run.trained_tokens for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="minipile")
    parser.add_argument("--models", nargs="+", default=["dense-330k", "moe-330k"])
    parser.add_argument("--tokens", type=int, default=400_000, help="tokens per run")
    parser.add_argument("--layouts", nargs="+", default=["2x1", "1x2"], help="WORKERSxTHREADS")
    args = parser.parse_args()
    spec = sweep_spec(args.dataset, args.models, args.tokens)
    n_runs = len(spec.expand())
    print("\n## Sweep workers × threads (`benchmarks/sweep_workers.py`, issue 4)\n")
    print(f"- Date: {datetime.date.today()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start.")  # fmt: skip
    print(f"- Sweep: {n_runs} runs ({', '.join(args.models)} × LR 2e-3, 4e-3), {args.tokens:,} tokens each, "
          f"seq 128, batch 16, byte-level `{args.dataset}`; every layout trains them from scratch.\n")  # fmt: skip
    print("| workers × threads | sweep wall time | tokens/s (all runs) |\n|---|---|---|")
    for layout in args.layouts:
        workers, threads = (int(x) for x in layout.split("x"))
        wall, tokens = time_layout(spec, workers, threads)
        print(f"| {workers} × {threads} | {wall:.1f} s | {tokens / wall:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
