"""Benchmark table: 200,000 rows (12 MB of CSV) of loss curves, for ``archscale fit`` with its default 200
bootstrap refits (target ≤ 60 s on 2 cores).

What a large sweep exports: the loss curves of many runs, one row per logged step, in the columns
``archscale fit --data`` reads (those of ``archscale.analysis.points.law_points``, plus ``step``). The runs
follow a Wang et al. (Eq. 5) law: 10 model scales × 4 expert counts × 5 seeds, each trained on a 1M-token
batch to 20 tokens per parameter (P ≈ N/6) and logging at evenly spaced steps, longer runs more often. Each
run has a run effect (0.5 %, shared by its points) and point noise (0.2 %); losses are written to 6
significant digits, as training logs print them. The seeds of one configuration log at the same token
counts, so design points repeat with different losses (40,004 distinct points): separate measurements, not
duplicates. Write the table, then time the fit::

    .venv/bin/python benchmarks/big_table.py --out /tmp/big.csv
    /usr/bin/time -v .venv/bin/archscale fit wang --data /tmp/big.csv
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from archscale.laws.loss_laws import WangLaw

TRUE = {"A": 300.0, "B": 800.0, "alpha": 0.3, "beta": 0.32, "gamma": 0.15, "sigma": 1.7}
BATCH_TOKENS = 1_000_000


def make_table(
    rows: int = 200_000,
    sizes: int = 10,
    experts: tuple[float, ...] = (1.0, 4.0, 8.0, 16.0),
    seeds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """About ``rows`` logged points of ``sizes × len(experts) × seeds`` runs, each run's share of them in
    proportion to its number of steps."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(1e8, 3e10, sizes)  # N, FLOPs per token
    steps = 20 * scales / 6 / BATCH_TOKENS  # 20 tokens per parameter
    logged = steps * rows / (len(experts) * seeds * steps.sum())
    law = WangLaw.from_coefficients(TRUE)
    frames = []
    for (i, scale), n_experts, run_seed in itertools.product(enumerate(scales), experts, range(seeds)):
        count = max(2, round(logged[i]))
        tokens = np.arange(1, count + 1) * (steps[i] / count) // 1 * BATCH_TOKENS
        frame = pd.DataFrame({"model_scale": scale, "tokens": tokens, "experts": n_experts})
        effect = rng.normal(0.0, 0.005)
        frame["loss"] = law.predict(frame) * np.exp(effect + rng.normal(0.0, 0.002, count))
        frame.insert(0, "run_id", f"n{i}-e{int(n_experts)}-s{run_seed}")
        frame.insert(1, "kind", "dense" if n_experts == 1 else "moe")
        frame.insert(2, "step", (tokens // BATCH_TOKENS).astype(int))
        frame["compute"] = scale * tokens
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (.csv, or .csv.gz to compress)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = make_table(args.rows, seed=args.seed)
    table.to_csv(args.out, index=False, float_format="%.6g")
    designs = len(table.drop_duplicates(["model_scale", "tokens", "experts"]))
    print(
        f"{args.out}: {len(table)} rows, {table['run_id'].nunique()} runs, {designs} distinct design points, "
        f"{args.out.stat().st_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
