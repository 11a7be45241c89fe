"""MoE ÷ dense optimal batch size and learning rate on Step Law's grids under four comparisons.

(a) equal loss (the paper's), (b) matched active parameters and tokens, (c) matched compute, (d) matched total
parameters and tokens, each for the grids' lowest cells and for the smoothed optima (a quadratic in log lr
and log batch around the lowest cell), with the fits' R² (share of the log optima's variance explained) and
the combined verdicts. Prints Markdown tables for ``benchmarks/RESULTS.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fair_comparisons.py ../shared/data/steplaw
"""

from __future__ import annotations

import argparse
import time

from archscale.analysis.matched import BASES, NAMES
from archscale.analysis.public import steplaw_fair_comparisons

SYMBOLS = {"batch_size": "B_opt", "lr": "lr_opt"}


def _interval(lower: float | None, upper: float | None) -> str:
    return "—" if lower is None else f"[{lower:.3g}, {upper:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steplaw", help="the folder holding dense_lr_bs_loss.csv and moe_lr_bs_loss.csv")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    fair = steplaw_fair_comparisons(args.steplaw, bootstrap=args.bootstrap, seed=args.seed)
    wall = time.perf_counter() - start
    print("| optimum | estimator | comparison | reference | MoE ÷ dense | interval | verdict |")
    print("|---|---|---|---|---|---|---|")
    for found in fair.verdicts:
        for m in found.comparisons:
            where = ", ".join(f"{NAMES[k]} {v:.3g}" for k, v in (m.reference or {}).items()) or "none shared"
            ratio = "—" if m.ratio is None else f"{m.ratio:.3g}"
            said = m.verdict if m.reference else "no verdict (extrapolation)"
            print(
                f"| {SYMBOLS[found.target]} | {found.estimator} | {m.label} {m.basis} | {where} | {ratio} | "
                f"{_interval(m.lower, m.upper)} | {said} |"
            )
    print("\n| optimum | estimator | combined verdict | why |\n|---|---|---|---|")
    for found in fair.verdicts:
        reason = found.verdict.note.split("; (d)")[0]
        print(f"| {SYMBOLS[found.target]} | {found.estimator} | {found.verdict.verdict} | {reason} |")
    print("\n| optimum | estimator | family | " + " | ".join(f"R² {label}" for label in BASES) + " |")
    print("|---|---|---|" + "---|" * len(BASES))
    for target in SYMBOLS:
        for estimator in ("cell", "smoothed"):
            for family in ("dense", "moe"):
                r2 = {
                    f.basis: "—" if f.r2 is None else f"{f.r2:.2f}"
                    for f in fair.fits
                    if (f.target, f.estimator, f.family) == (target, estimator, family)
                }
                print(f"| {SYMBOLS[target]} | {estimator} | {family} | " + " | ".join(r2.values()) + " |")
    print(f"\nedges (on an edge, of all): {fair.edges}")
    print(f"smoothed ÷ cell optimum, factor apart: {fair.apart}")
    print(f"wall {wall:.1f} s, {args.bootstrap} refits per fit")


if __name__ == "__main__":
    main()
