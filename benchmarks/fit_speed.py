"""Benchmark: a 240-point Chinchilla-law fit with 1000 bootstrap resamples (target ≤ 10 s on 2 cores).

240 points mirrors Besiroglu et al. 2024's re-fit of Hoffmann et al.'s approach 3. The data are drawn from
their fitted law (A = 482.01, B = 2085.43, E = 1.8172, α = 0.3478, β = 0.3658) on a Chinchilla-like grid
with 1 % multiplicative noise. Run: ``OMP_NUM_THREADS=1 python benchmarks/fit_speed.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from archscale.laws.loss_laws import ChinchillaLaw

TRUE = {"A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658, "sigma": 1.8172}


def make_points(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    params = np.exp(rng.uniform(np.log(4e7), np.log(1.6e10), n))
    tokens = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n))
    law = ChinchillaLaw.from_coefficients(TRUE)
    table = pd.DataFrame({"params": params, "tokens": tokens})
    table["loss"] = law.predict(table) * np.exp(rng.normal(0.0, 0.01, n))
    return table


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=240)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grid", default="default", choices=["default", "hoffmann"])
    args = parser.parse_args()
    table = make_points(args.points, seed=0)
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        law = ChinchillaLaw(grid=args.grid, bootstrap=args.resamples, seed=repeat).fit(table)
        times.append(time.perf_counter() - start)
    print(
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        f"{args.points} points, {args.resamples} bootstrap resamples, grid {args.grid}, {args.repeats} repeats: "
        f"best {min(times):.2f} s, median {np.median(times):.2f} s"
    )
    print(law.summary())


if __name__ == "__main__":
    main()
