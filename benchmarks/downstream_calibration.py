"""Coverage of the two-step chain's intervals (issue 23) on synthetic ladders with a known truth.

Each replicate draws a ladder (G sizes 20M·2^i × token multipliers of 20 N, 20 checkpoints per run, a run
effect and checkpoint noise in the task loss, item noise in the accuracy; ``LadderTruth``; or, for the
``trunk + 2 branches`` designs, one evaluation per run, a size's runs sharing one run effect), fits
``TwoStepLaw(bootstrap=K)`` and checks, at 10× the largest size with 400 tokens per parameter:

- ``new run``: the share of 500 new runs' final-checkpoint accuracies inside the 95 % prediction interval
  (``new_run=True``: both steps' resampling plus the new run's run effect and checkpoint noise);
- ``band as PI``: the same share for the curve's band alone (``new_run=False``), the interval one gets by
  resampling through both fits without the checkpoint noise: what the noise term is for;
- ``band``: whether the band holds the true mean accuracy.

``--route loss-to-loss`` runs the loss-to-loss route instead (``TwoStepLaw(route="loss-to-loss")``) on
``LossToLossTruth`` ladders (a validation loss with its own law, the task loss linked to it, the task loss's
checkpoint noise as the design says, the validation loss's 0.2 %), and fits the direct route on the same
ladders: both routes' accuracy errors at the target (against the true mean) and both intervals' coverage.

    OMP_NUM_THREADS=1 python benchmarks/downstream_calibration.py --replicates 100 --refits 100 --workers 2
    OMP_NUM_THREADS=1 python benchmarks/downstream_calibration.py --route loss-to-loss --replicates 100
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from archscale.laws import downstream_laws
from archscale.laws.downstream_laws import LadderTruth, LossToLossTruth, TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.resampling import spawn_seeds

DESIGNS = {  # name: (sizes, token multipliers, accuracy noise)
    "3 sizes × 4 D": (3, (1, 2, 5, 10), 0.015),
    "4 sizes × 3 D": (4, (1, 5, 10), 0.015),
    "4 sizes × 4 D": (4, (1, 2, 5, 10), 0.015),
    "5 sizes × 3 D": (5, (1, 5, 10), 0.015),
    "5 sizes × 4 D": (5, (1, 2, 5, 10), 0.015),
    "6 sizes × 4 D": (6, (1, 2, 5, 10), 0.015),
    "8 sizes × 4 D": (8, (1, 2, 5, 10), 0.015),
    "6 sizes × 4 D, noisy task (sd 0.04)": (6, (1, 2, 5, 10), 0.04),
    "4 sizes × 3 D, trunk + 2 branches": (4, (2.5, 5, 10), 0.015),
    "5 sizes × 3 D, trunk + 2 branches": (5, (2.5, 5, 10), 0.015),
}
ROUTE_DESIGNS = {  # name: (sizes, token multipliers, the task loss's checkpoint noise, log sd)
    "6 sizes × 4 D, task sd 0.005": (6, (1, 2, 5, 10), 0.005),
    "6 sizes × 4 D, task sd 0.02": (6, (1, 2, 5, 10), 0.02),
    "6 sizes × 4 D, task sd 0.04": (6, (1, 2, 5, 10), 0.04),
    "6 sizes × 4 D, task sd 0.08": (6, (1, 2, 5, 10), 0.08),
    "3 sizes × 4 D, task sd 0.04": (3, (1, 2, 5, 10), 0.04),
    "4 sizes × 3 D, task sd 0.04": (4, (1, 5, 10), 0.04),
}
BRANCHES = {"4 sizes × 3 D, trunk + 2 branches", "5 sizes × 3 D, trunk + 2 branches"}
"""Ladders of WSD cooldown branches scored once per run (``LadderTruth.branch_ladder``, the micro study's):
step 2 reads each size's trunk and branches as one trajectory, the bootstrap draws whole trajectories."""


def replicate(args: tuple[str, str, int, int, int]) -> dict[str, float]:
    """One ladder, one fit per route compared, its coverage at the target (the direct route's, on a
    loss-to-loss design, under ``direct …`` keys)."""
    route, design, index, refits, seed = args
    downstream_laws.MIN_SIZES = 0  # measure below the library's threshold too
    if route == "direct":
        n_sizes, multipliers, accuracy_sd = DESIGNS[design]
        truth, routes = LadderTruth(accuracy_sd=accuracy_sd), {"": "direct"}
    else:
        n_sizes, multipliers, checkpoint_sd = ROUTE_DESIGNS[design]
        truth, routes = LossToLossTruth(checkpoint_sd=checkpoint_sd), {"": route, "direct ": "direct"}
    sizes = 20e6 * 2.0 ** np.arange(n_sizes)
    params = 10 * sizes[-1]
    ladder_seed, new_seed = spawn_seeds(seed * 100_000 + index, 2)
    ladder = (truth.branch_ladder if design in BRANCHES else truth.ladder)(
        sizes, multipliers, seed=ladder_seed
    )
    new = truth.new_runs(params, 400 * params, 500, np.random.default_rng(new_seed))
    mean = float(truth.accuracy(truth.task_loss(np.array(params), np.array(400 * params))))
    row = {}
    for prefix, fitted in routes.items():
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                law = TwoStepLaw(bootstrap=refits, chance=0.25, seed=index, route=fitted).fit(ladder)
            except LawDataError:  # the route refuses a task too noisy for its own fit to place E_y
                row |= {f"{prefix}given": 0.0, f"{prefix}refused": 1.0}
                continue
        row |= {
            f"{prefix}cpu": time.process_time() - start,
            f"{prefix}given": float(law.bootstrap_ is not None),
        }
        row |= {
            f"{prefix}error": float(law.predict({"params": [params], "tokens": [400 * params]})[0]) - mean
        }
        if law.bootstrap_ is not None:
            row |= {f"{prefix}{key}": value for key, value in _coverage(law, params, new, mean).items()}
    return row


def _coverage(law: TwoStepLaw, params: float, new: np.ndarray, mean: float) -> dict[str, float]:
    """Shares of new runs inside the prediction interval and inside the band; whether the band holds the
    true mean; the prediction interval's width."""
    target = pd.DataFrame({"params": [params], "tokens": [400 * params]})
    lo, hi = (v[0] for v in law.predict_interval(target, new_run=True))
    band_lo, band_hi = (v[0] for v in law.predict_interval(target))
    return {
        "new run": float(np.mean((lo <= new) & (new <= hi))),
        "band as PI": float(np.mean((band_lo <= new) & (new <= band_hi))),
        "band": float(band_lo <= mean <= band_hi),
        "width": hi - lo,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--refits", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--route", choices=["direct", "loss-to-loss"], default="direct")
    parser.add_argument("--designs", nargs="*", help="default: every design of the route")
    args = parser.parse_args()
    designs = DESIGNS if args.route == "direct" else ROUTE_DESIGNS
    start = time.time()
    compare = (
        ""
        if args.route == "direct"
        else " accuracy RMSE (route / direct) | mean error (route / direct) | direct: new run in PI |"
    )
    print(f"| design | runs | interval given | new run in PI | band as PI | true mean in band | median PI width "
          f"|{compare} CPU s / fit |\n|{'---|' * (8 + 3 * bool(compare))}")  # fmt: skip
    with ProcessPoolExecutor(args.workers) as pool:
        for design in args.designs or list(designs):
            jobs = [(args.route, design, i, args.refits, args.seed) for i in range(args.replicates)]
            rows = pd.DataFrame(list(pool.map(replicate, jobs)))
            given = rows[rows["given"] == 1.0]
            n_sizes, multipliers, _ = designs[design]
            if compare:
                rmse = [np.sqrt(np.nanmean(rows[f"{p}error"] ** 2)) for p in ("", "direct ")]
                compared = (
                    f" {rmse[0]:.4f} / {rmse[1]:.4f} | {rows['error'].mean():+.4f} / {rows['direct error'].mean():+.4f} | "
                    f"{rows['direct new run'].mean():.1%} |"
                )
            print(
                f"| {design} | {n_sizes * len(multipliers)} | {rows['given'].mean():.0%} | "
                f"{given['new run'].mean():.1%} | {given['band as PI'].mean():.1%} | {given['band'].mean():.0%} | "
                f"{given['width'].median():.3f} |{compared if compare else ''} {rows['cpu'].mean():.2f} |",
                flush=True,
            )
            if "refused" in rows:
                print(
                    f"({design}: the route refused {int(rows['refused'].sum())} ladders, E_y at a run's loss)"
                )
    print(
        f"\n{args.replicates} replicates per design, {args.refits} refits each; wall {time.time() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
