"""The ladder planner against what fitting its ladders with the CLI gives (issue 24).

``--part realised``: for each of several designs, the planner's expected widths (``evaluate_design``,
``--planner-replicates`` simulated ladders, seed 0) and its delta-method screen beside the realised median
widths of ``--replicates`` other simulated ladders (seed 1), each written to CSV and fitted with
``archscale fit chinchilla --bootstrap 200 --seed S --out fit.json``, the fit read back and scored.

``--part naive``: the search's recommended design against the naive ladder (5 sizes 2× apart, 20 tokens per
parameter, one run per size read along its curve, one seed) at the same cost, both simulated
``--replicates`` times.

``--part micro --store STUDY/results.sqlite``: why the README's main job cannot measure α_N, and what would:
each family's Eq. 5 profile over a fixed σ (how well the study's points pin the irreducible loss), the
planner's verdict on the study's own ladder under the truths the points allow, and the cheapest budget at
which a searched design gives α_N a width ≤ 0.30 with at most 5 % degenerate fits.

``--part published``: the direction of the published findings on the planner's widths: more ladder compute,
more models, intermediate checkpoints rather than final losses only, and several seeds of small models.

    OMP_NUM_THREADS=1 python benchmarks/ladder_plan.py --part realised --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from typer.testing import CliRunner

from archscale.cli.ladder import device_hours
from archscale.cli.main import app
from archscale.laws import ChinchillaLaw, Law
from archscale.laws.ladder import (
    MICRO_NOISE,
    LadderDesign,
    LadderNoise,
    LadderRun,
    Replicate,
    evaluate_design,
    linear_widths,
    naive_design,
    replicate_tables,
    scaled_design,
    search_ladders,
)
from archscale.sweeps.dry_run import DEVICES

TRUTH = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}  # Hoffmann et al. 2022, Eq. 10
TARGET = {"params": 1e9, "tokens": 2e10}
NOISE = LadderNoise(run=0.01, point=0.005)
BUDGET = 1.8e18  # 6 N D of a 100M-parameter model at 30 tokens per parameter: 0.15 % of the target's compute
NAMES = ("alpha_N_width", "target_loss_log_width")


def truth() -> ChinchillaLaw:
    return ChinchillaLaw.from_coefficients(TRUTH)


def designs() -> list[LadderDesign]:
    return [
        scaled_design(BUDGET, 4, 2.0, 20.0, "curve", 2),
        scaled_design(BUDGET, 5, 2.0, 20.0, "curve", 1),
        scaled_design(BUDGET, 6, 2.0, 40.0, "branches", 1),
        scaled_design(BUDGET, 8, 2.0, 20.0, "curve", 1),
    ]


def _cli_fit(args: tuple[pd.DataFrame, int]) -> Replicate:
    """One replicate fitted as a user would: CSV in, `archscale fit --out`, the saved fit read back."""
    table, seed = args
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "ladder.csv", Path(folder) / "fit.json"
        table.to_csv(data, index=False)
        argv = [
            "fit",
            "chinchilla",
            "--data",
            str(data),
            "--bootstrap",
            "200",
            "--seed",
            str(seed),
            "--out",
            str(out),
        ]
        result = CliRunner().invoke(app, argv)
        if result.exit_code != 0:
            raise RuntimeError(result.output)
        law = Law.from_dict(json.loads(out.read_text()))
    return Replicate.of(law, pd.DataFrame({k: [v] for k, v in TARGET.items()}))


def _median(replicates: list[Replicate], name: str) -> float:
    widths = np.array([getattr(r, name) for r in replicates])
    return float(np.median(widths[np.isfinite(widths)])) if np.isfinite(widths).any() else math.nan


def realised(replicates: int, planner_replicates: int, workers: int) -> None:
    print("| design | FLOPs | α_N width: planner / linear / realised | target log width: planner / linear / realised "
          "| planner ÷ realised (α_N, target) | degenerate: planner / realised |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for design in designs():
        plan = evaluate_design(
            truth(), design, NOISE, TARGET, replicates=planner_replicates, seed=0, workers=workers
        )
        linear = linear_widths(truth(), design, NOISE, TARGET)
        draws = list(replicate_tables(truth(), design, NOISE, replicates, seed=1))
        with ProcessPoolExecutor(workers) as pool:
            fitted = list(pool.map(_cli_fit, draws, chunksize=4))
        cells, ratios = [], []
        for name in NAMES:
            expected, real = plan.expected(name), _median(fitted, name)
            cells.append(f"{expected:.4f} / {linear[name]:.4f} / {real:.4f}")
            ratios.append(f"{expected / real:.2f}")
        degenerate = np.mean([r.degenerate for r in fitted])
        print(f"| {design.label} | {design.flops():.3g} | {cells[0]} | {cells[1]} | {', '.join(ratios)} | "
              f"{plan.degenerate_fraction:.0%} / {degenerate:.0%} |")  # fmt: skip


def versus_naive(replicates: int, workers: int, budget: float) -> None:
    search = search_ladders(truth(), budget, TARGET, NOISE, replicates=replicates, seed=0, workers=workers)
    naive = evaluate_design(
        truth(), naive_design(budget), NOISE, TARGET, replicates=replicates, seed=2, workers=workers
    )
    best = evaluate_design(
        truth(), search.best.design, NOISE, TARGET, replicates=replicates, seed=2, workers=workers
    )
    print(f"budget {budget:.3g} FLOPs; {len(search.screened)} designs screened; re-simulated with seed 2:")
    print("| design | FLOPs | α_N width | target log width (±%) | degenerate |")
    print("|---|---|---|---|---|")
    for label, e in (("recommended: ", best), ("", naive)):
        width = e.expected("target_loss_log_width")
        print(f"| {label}{e.design.label} | {e.flops:.3g} | {e.expected('alpha_N_width'):.4f} | {width:.4f} "
              f"(±{math.expm1(width / 2):.2%}) | {e.degenerate_fraction:.0%} |")  # fmt: skip
    print(
        f"naive ÷ recommended target width: {naive.expected('target_loss_log_width') / best.expected('target_loss_log_width'):.2f}"
    )


def published(replicates: int, workers: int) -> None:
    def row(label: str, design: LadderDesign) -> None:
        e = evaluate_design(truth(), design, NOISE, TARGET, replicates=replicates, seed=3, workers=workers)
        print(f"| {label} | {design.flops():.3g} | {e.expected('alpha_N_width'):.4f} | "
              f"{e.expected('target_loss_log_width'):.4f} | {e.degenerate_fraction:.0%} |")  # fmt: skip

    print("| finding | design | FLOPs | α_N width | target log width | degenerate |")
    print("|---|---|---|---|---|---|")
    for factor in (0.25, 1, 4):
        row(
            f"ladder compute ×{factor:g}: 6 sizes ×2, 20 tokens/size, curve",
            scaled_design(BUDGET * factor, 6, 2.0, 20.0, "curve", 1),
        )
    for n in (5, 6, 8):
        row(f"{n} models at equal compute (span ×2^{n - 1})", scaled_design(BUDGET, n, 2.0, 20.0, "curve", 1))
    curve = scaled_design(BUDGET, 8, 2.0, 20.0, "curve", 1)
    ends = LadderDesign(tuple(LadderRun(r.size, (max(r.tokens),)) for r in curve.runs), label="ends only")
    row("final losses only: 8 sizes, each run read at its end", ends)
    row("intermediate checkpoints: the same runs read at 8 points", curve)
    row("one seed: 6 sizes ×2", scaled_design(BUDGET, 6, 2.0, 20.0, "curve", 1))
    row(
        "three seeds of smaller models: 6 sizes ×2, same compute",
        scaled_design(BUDGET, 6, 2.0, 20.0, "curve", 3),
    )


def sigma_profile(table: pd.DataFrame, sigmas: tuple[float, ...]) -> list[tuple[float, float, dict]]:
    """Eq. 5 fitted with σ held at each value (least squares on log loss): the rms residual and the
    coefficients; a flat profile means the points do not pin σ down."""
    n, d, loss = (table[c].to_numpy(dtype=float) for c in ("model_scale", "tokens", "loss"))
    out = []
    for sigma in sigmas:

        def residual(p: np.ndarray, sigma: float = sigma) -> np.ndarray:
            return np.log(np.exp(p[0]) / n ** p[1] + np.exp(p[2]) / d ** p[3] + sigma) - np.log(loss)

        fits = [least_squares(residual, [2.0, a, 2.0, b], bounds=([-20, 0, -20, 0], [40, 3, 40, 3]))
                for a in (0.1, 0.3, 0.6) for b in (0.1, 0.3)]  # fmt: skip
        best = min(fits, key=lambda r: r.cost)
        a, alpha, b, beta = best.x
        out.append((sigma, float(np.sqrt(2 * best.cost / len(loss))),
                    {"A": float(np.exp(a)), "alpha": float(alpha), "B": float(np.exp(b)), "beta": float(beta),
                     "sigma": sigma}))  # fmt: skip
    return out


def study_design(table: pd.DataFrame) -> LadderDesign:
    """The study's ladder as the law points show it: one run per noise unit (a trunk and its branches)."""
    runs = tuple(
        LadderRun(float(rows["model_scale"].iloc[0]), tuple(rows["tokens"].astype(float)), 1, len(rows) > 1)
        for _, rows in table.groupby("run_id", sort=False)
    )
    return LadderDesign(runs, label="the micro study's ladder")


def micro(store: Path, replicates: int, workers: int, sigmas: list[float], factors: list[float]) -> None:
    from archscale.analysis.points import law_points, store_runs
    from archscale.store import ResultsStore

    with ResultsStore(store, read_only=True) as results:
        points = law_points(store_runs(results), results.curve())
    for kind in ("dense", "moe"):
        table = points[points["kind"] == kind].reset_index(drop=True)
        design = study_design(table)
        largest = float(table["model_scale"].max())
        target = {"model_scale": 100 * largest, "tokens": 2000 * largest}
        print(f"\n{kind}: {len(table)} points, {len(design.runs)} noise units, N {table['model_scale'].min():.3g}-"
              f"{largest:.3g}, ladder compute N·D {design.flops(1.0):.3g}")  # fmt: skip
        profile = sigma_profile(table, (0.0, 0.5, 1.0, 1.5, 1.8))
        print("| σ held | rms residual | α | β | α_N |\n|---|---|---|---|---|")
        for sigma, rms, c in profile:
            print(
                f"| {sigma:g} | {rms:.4f} | {c['alpha']:.3f} | {c['beta']:.3f} | {c['beta'] / (c['alpha'] + c['beta']):.3f} |"
            )
        truths = [c for _, _, c in profile if c["sigma"] in sigmas]
        print(
            "| truth σ | ladder | FLOPs (N·D) | best design | α_N width | degenerate | CPU hours (1 thread) |"
        )
        print("|---|---|---|---|---|---|---|")
        for coefficients in truths:
            truth_law = ChinchillaLaw.from_coefficients(coefficients, size="model_scale")
            own = evaluate_design(
                truth_law, design, MICRO_NOISE, target, replicates=replicates, workers=workers
            )
            rows = [("the study's own", own)]
            for factor in factors:
                search = search_ladders(truth_law, factor * design.flops(1.0), target, MICRO_NOISE, keep=1,
                                        replicates=replicates, workers=workers, objective="alpha_N_width",
                                        min_size=float(table["model_scale"].min()))  # fmt: skip
                rows.append((f"searched, {factor:g}× the study's", search.best))
            for label, e in rows:
                width = e.expected("alpha_N_width")
                hours = device_hours(e.design, next(iter(DEVICES)), 1.0)
                print(f"| {coefficients['sigma']:g} | {label} | {e.flops:.3g} | {e.design.label} | "
                      f"{'none' if width is None else f'{width:.3f}'} | {e.degenerate_fraction:.0%} | {hours:.3g} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("realised", "naive", "published", "micro"), required=True)
    parser.add_argument("--store", type=Path, help="--part micro: the study's results store")
    parser.add_argument(
        "--sigmas", type=float, nargs="+", default=[0.5, 1.0, 1.5], help="--part micro: truths"
    )
    parser.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=[1, 4, 16, 64, 256],
        help="--part micro: ladder budgets, multiples of the study's",
    )
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--planner-replicates", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=BUDGET)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"truth: Chinchilla {TRUTH}; target {TARGET}; noise run {NOISE.run}, point {NOISE.point}")
    if args.part == "realised":
        realised(args.replicates, args.planner_replicates, args.workers)
    elif args.part == "micro":
        micro(args.store, args.replicates, args.workers, args.sigmas, args.factors)
    elif args.part == "naive":
        versus_naive(args.replicates, args.workers, args.budget)
    else:
        published(args.replicates, args.workers)
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
