"""Coverage of the laws' 95 % intervals on simulated ladders from a known law (issue 11).

``--law chinchilla`` (the loss law): each replicate draws a ladder of G model sizes (×2 apart), one run per
size trained to 20 tokens per unit of N, its loss read at 24 log-spaced token counts from D/64 to D, as the
study does. The loss follows Chinchilla's law times a run effect shared by all points of a run (log sd
``--run-noise``, ~0.5 %) and point noise (``--point-noise``). ChinchillaLaw is fitted with ``--refits``
bootstrap refits per interval method, and we count how often the nominal 95 % interval holds the true α, β,
α_N and the true loss at 10× the largest size (the curve band), and how often the prediction interval holds
a new run's measured loss there.

``--law power`` (the hyperparameter laws, B_opt = λ·L^a): G grids, one per model size, each giving optima at
8 loss levels (its own loss range, lower for larger models), with a grid effect shared by a grid's optima
(log sd 5 %) and 10 % noise per optimum; coverage of the exponent and of B_opt at a loss 10 % below the
lowest observed.

    OMP_NUM_THREADS=1 python benchmarks/calibration.py --law chinchilla --replicates 100 --sizes 3 4 5 6 8

``--law granularity`` (the MoE design law of Krajewski et al. 2024, as the moe-design study fits it): G
backbones (total parameters ×2 apart from 1e5), each at granularities 1, 2 and 4, each trained once with three
budgets read at their ends (20, 40 and 80 tokens per parameter: cooldown branches), the loss from Krajewski
et al.'s Table 1 law times a run effect shared by a backbone-and-G trunk (``--run-noise``) and point noise;
coverage of γ, α, β and of the loss at 10× the largest size at G = 8.

``--law joint`` (the joint MoE law of Ludziejewski et al. 2025, as the moe-design study fits it): G backbones
(active parameters ×2 apart from 5.5e4, the longest budget 4M tokens × 0.75 per backbone, as the study's 0.05M
to 0.33M), each dense and at E = 4, 8 and 16, each trunk read at the ends of three budgets (¼, ½ and all of the
longest); the truth is ``--truth study`` (the law the moe-design study fitted, RESULTS.md) or ``published``
(Ludziejewski et al.'s Table 3); coverage of β, γ, δ and of the loss where the study's planner pointed (E = 32,
N_act 1.1e5, D 4.7e7). Use the study's noise: ``--run-noise 0.024 --point-noise 0.011``.

``--usable-only`` scores only the fits the analyses and the planner use: none with a coefficient on its bound
or faded out of the law (the share of degenerate fits is printed either way). ``--min-df 0`` measures designs
below the library's threshold for giving an interval (``archscale.laws.base.MIN_DF_BETWEEN``). Prints a
Markdown table (coverage, median width, refits not converged or on a bound, CPU seconds per fit).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import product

import numpy as np
import pandas as pd

from archscale.laws import ChinchillaLaw, GranularityLaw, JointMoELaw, PowerLaw, base, published
from archscale.laws.resampling import spawn_seeds

TRUTH = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}  # Hoffmann et al. 2022, Eq. 10
SMALLEST = 2e6
TOKENS_PER_SIZE = 20
POINTS_PER_RUN = 24
POWER_TRUTH = {"lambda": 5000.0, "exponent": -1.5}  # the analyses' synthetic B_opt(L) (tests/analysis)
LEVELS_PER_GRID = 8
GRID_NOISE, OPTIMUM_NOISE = 0.05, 0.10
# The joint law the moe-design study fitted on its 48 runs (RESULTS.md, 2026-12-03), rounded.
JOINT_STUDY_TRUTH = {"a": 1.905, "b": 6604.0, "c": 1e-8, "alpha": -0.00175, "beta": -0.6884, "gamma": -0.02125,
                     "delta": 0.1402, "omega": -1.039, "zeta": 0.0927}  # fmt: skip


def true_loss(size: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    t = TRUTH
    return t["sigma"] + t["A"] / size ** t["alpha"] + t["B"] / tokens ** t["beta"]


def ladder(n_sizes: int, run_noise: float, point_noise: float, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for g in range(n_sizes):
        size = SMALLEST * 2.0**g
        tokens = np.geomspace(TOKENS_PER_SIZE * size / 64, TOKENS_PER_SIZE * size, POINTS_PER_RUN)
        noise = run_noise * rng.standard_normal() + point_noise * rng.standard_normal(POINTS_PER_RUN)
        loss = true_loss(size, tokens) * np.exp(noise)
        rows.append(pd.DataFrame({"run_id": f"r{g}", "params": size, "tokens": tokens, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def power_grids(n_sizes: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for g in range(n_sizes):
        losses = np.geomspace(4.0, 3.0, LEVELS_PER_GRID) * 0.93**g  # larger models reach lower losses
        noise = GRID_NOISE * rng.standard_normal() + OPTIMUM_NOISE * rng.standard_normal(LEVELS_PER_GRID)
        optimum = POWER_TRUTH["lambda"] * losses ** POWER_TRUTH["exponent"] * np.exp(noise)
        rows.append(pd.DataFrame({"run_id": f"g{g}", "loss": losses, "batch_size": optimum}))
    return pd.concat(rows, ignore_index=True)


def power_replicate(n_sizes: int, seed: int, method: str, refits: int) -> dict:
    data_seed, new_seed = spawn_seeds(seed, 2)
    table = power_grids(n_sizes, np.random.default_rng(data_seed))
    at = {"loss": np.array([0.9 * table["loss"].min()])}
    truth_at = float(POWER_TRUTH["lambda"] * at["loss"][0] ** POWER_TRUTH["exponent"])
    law = PowerLaw(target="batch_size", inputs=("loss",), loss="squared")
    truths = {"exponent": POWER_TRUTH["exponent"]}
    new_run = _new_run(truth_at, GRID_NOISE, OPTIMUM_NOISE, new_seed)
    return {"sizes": n_sizes, "method": method} | _score(
        law, table, truths, at, truth_at, new_run, seed, method, refits
    )


def granularity_replicate(n_sizes: int, seed: int, method: str, refits: int, run_noise: float,
                          point_noise: float) -> dict:  # fmt: skip
    truth_law = published("krajewski2024").laws[0]
    data_seed, new_seed = spawn_seeds(seed, 2)
    rng = np.random.default_rng(data_seed)
    rows = []
    for g, granularity in product(range(n_sizes), (1.0, 2.0, 4.0)):
        size = 1e5 * 2.0**g
        tokens = np.array([20.0, 40.0, 80.0]) * size
        point = {"params": np.full(3, size), "tokens": tokens, "granularity": np.full(3, granularity)}
        noise = run_noise * rng.standard_normal() + point_noise * rng.standard_normal(3)
        rows.append(
            pd.DataFrame(
                point | {"run_id": f"r{g}-{granularity:g}", "loss": truth_law.predict(point) * np.exp(noise)}
            )
        )
    table = pd.concat(rows, ignore_index=True)
    target = 1e5 * 2.0 ** (n_sizes - 1) * 10
    at = {"params": np.array([target]), "tokens": np.array([80 * target]), "granularity": np.array([8.0])}
    truth_at = float(truth_law.predict(at)[0])
    truths = {name: truth_law.coefficients_[name] for name in ("gamma", "alpha", "beta")}
    new_run = _new_run(truth_at, run_noise, point_noise, new_seed)
    return {"sizes": n_sizes, "method": method} | _score(
        GranularityLaw(), table, truths, at, truth_at, new_run, seed, method, refits
    )


def joint_replicate(n_sizes: int, seed: int, method: str, refits: int, run_noise: float, point_noise: float,
                    truth: str) -> dict:  # fmt: skip
    truth_law = (
        published("ludziejewski2025").laws[0]
        if truth == "published"
        else JointMoELaw.from_coefficients(JOINT_STUDY_TRUTH)
    )
    data_seed, new_seed = spawn_seeds(seed, 2)
    rng = np.random.default_rng(data_seed)
    rows = []
    for g, experts in product(range(n_sizes), (1.0, 4.0, 8.0, 16.0)):
        size, longest = 5.5e4 * 2.0**g, 4e6 * 0.75**g
        point = {"active_params": np.full(3, size), "tokens": longest * np.array([0.25, 0.5, 1.0]),
                 "experts": np.full(3, experts)}  # fmt: skip
        noise = run_noise * rng.standard_normal() + point_noise * rng.standard_normal(3)
        rows.append(
            pd.DataFrame(
                point | {"run_id": f"r{g}-{experts:g}", "loss": truth_law.predict(point) * np.exp(noise)}
            )
        )
    table = pd.concat(rows, ignore_index=True)
    at = {"active_params": np.array([1.1e5]), "tokens": np.array([4.7e7]), "experts": np.array([32.0])}
    truth_at = float(truth_law.predict(at)[0])
    truths = {name: truth_law.coefficients_[name] for name in ("beta", "gamma", "delta")}
    new_run = _new_run(truth_at, run_noise, point_noise, new_seed)
    return {"sizes": n_sizes, "method": method} | _score(
        JointMoELaw(), table, truths, at, truth_at, new_run, seed, method, refits
    )


def _new_run(truth: float, run_noise: float, point_noise: float, seed: int) -> float:
    """What a new run would measure where the truth is ``truth``: its own run effect and point noise."""
    rng = np.random.default_rng(seed)
    return truth * float(np.exp(run_noise * rng.standard_normal() + point_noise * rng.standard_normal()))


def _score(law, table, truths: dict, at: dict, truth_at: float, new_run: float, seed, method, refits) -> dict:
    """Fit ``law`` with intervals; whether each holds its truth, the curve band the true value at ``at`` and
    the prediction interval the new run's measurement there; widths; failed refits; CPU seconds."""
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = dataclasses.replace(law, bootstrap=refits, seed=seed, method=method).fit(table)
    out: dict = {"seconds": time.process_time() - start, "degenerate": law.degenerate_ is not None}
    if law.bootstrap_ is None:
        return out
    for name, value in truths.items():
        lo, hi = law.intervals_[name]
        out[f"{name}_in"], out[f"{name}_width"] = lo <= value <= hi, hi - lo
    for name, new, value in (("loss", False, truth_at), ("new_run", True, new_run)):
        lo, hi = law.predict_interval(at, new_run=new)
        out[f"{name}_in"], out[f"{name}_width"] = bool(lo[0] <= value <= hi[0]), float(np.log(hi[0] / lo[0]))
    out["failed"] = law.bootstrap_.not_converged + sum(law.bootstrap_.on_bound.values())
    return out


def replicate(args: tuple[str, int, int, str, float, float, int, float, str]) -> dict:
    kind, n_sizes, seed, method, run_noise, point_noise, refits, min_df, truth = args
    base.MIN_DF_BETWEEN = min_df
    if kind == "power":
        return power_replicate(n_sizes, seed, method, refits)
    if kind == "granularity":
        return granularity_replicate(n_sizes, seed, method, refits, run_noise, point_noise)
    if kind == "joint":
        return joint_replicate(n_sizes, seed, method, refits, run_noise, point_noise, truth)
    data_seed, new_run_seed = spawn_seeds(seed, 2)
    table = ladder(n_sizes, run_noise, point_noise, np.random.default_rng(data_seed))
    target_size = SMALLEST * 2.0 ** (n_sizes - 1) * 10
    at = {"params": np.array([target_size]), "tokens": np.array([TOKENS_PER_SIZE * target_size])}
    truth_at = float(true_loss(at["params"], at["tokens"])[0])
    truths = {"alpha": TRUTH["alpha"], "beta": TRUTH["beta"]}
    truths["alpha_N"] = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    new_run = _new_run(truth_at, run_noise, point_noise, new_run_seed)
    scores = _score(ChinchillaLaw(), table, truths, at, truth_at, new_run, seed, method, refits)
    return {"sizes": n_sizes, "method": method} | scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--law", choices=["chinchilla", "power", "granularity", "joint"], default="chinchilla"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 4, 5, 6, 8])
    parser.add_argument("--min-df", type=float, default=base.MIN_DF_BETWEEN)
    parser.add_argument("--methods", nargs="+", default=["parametric", "resample"])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--refits", type=int, default=200)
    parser.add_argument("--run-noise", type=float, default=0.005)
    parser.add_argument("--point-noise", type=float, default=0.001)
    parser.add_argument("--truth", choices=["study", "published"], default="study")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--usable-only", action="store_true", help="score only the fits the analyses use (none degenerate)"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = spawn_seeds(args.seed, args.replicates)
    jobs = [
        (args.law, g, s, m, args.run_noise, args.point_noise, args.refits, args.min_df, args.truth)
        for g, m, s in product(args.sizes, args.methods, seeds)
    ]
    start = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        results = pd.DataFrame(list(pool.map(replicate, jobs, chunksize=4)))
    wall = time.time() - start
    print(f"degenerate fits (a coefficient on a bound or faded out): {results['degenerate'].mean():.0%}")
    if args.usable_only:
        results = results[~results["degenerate"]]
    quantities = {"chinchilla": ["alpha", "beta", "alpha_N"], "power": ["exponent"],
                  "granularity": ["gamma", "alpha", "beta"], "joint": ["beta", "gamma", "delta"]}[args.law]  # fmt: skip
    quantities += ["loss", "new_run"]
    print(f"{args.replicates} replicates per design, {args.refits} refits each; wall {wall:.0f} s\n")
    header = "| sizes | method | " + " | ".join(f"{q} cover (width)" for q in quantities)
    header = header.replace("| method | ", "| method | interval given | ")
    print(header + " | refits failed | CPU s / fit |")
    print("|" + "---|" * (len(quantities) + 5))
    for (g, method), rows in results.groupby(["sizes", "method"], sort=True):
        cells = []
        for q in quantities:
            if f"{q}_in" not in rows or rows[f"{q}_in"].isna().all():
                cells.append("no interval")
                continue
            given = rows[rows[f"{q}_in"].notna()]
            cover, width = given[f"{q}_in"].astype(float).mean(), given[f"{q}_width"].median()
            cells.append(f"{cover:.0%} ({width:.3g})")
        failed = rows["failed"].sum() if "failed" in rows else 0
        given = rows[f"{quantities[0]}_in"].notna().mean() if f"{quantities[0]}_in" in rows else 0.0
        print(
            f"| {g} | {method} | {given:.0%} | "
            + " | ".join(cells)
            + f" | {failed:.0f} | {rows['seconds'].mean():.2f} |"
        )


if __name__ == "__main__":
    main()
