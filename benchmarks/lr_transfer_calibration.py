"""Coverage of the learning-rate transfer panel's 95 % intervals (issue 27), printed as Markdown.

Synthetic ladders on the lr-transfer preset's design: widths 32, 64, 128, 256 and its SP grid (1e-3 to 4.5e-2,
√2 apart, 12 LRs), each width's loss a bowl in log2 lr, loss = 2.5 + c·(log2 lr − log2 lr*)², twice (or three
times) as steep above lr* as below in the asymmetric cases, times (1 + offset·u_seed + noise·e_run): a seed's
offset shared by its LRs (init and data order) and independent run noise. lr* = 1.6e-2 at width 32, moving by
``drift`` log2 per width doubling (0: μP-like; −1: SP-like halving). For each case, ``--replicates`` ladders go
through :func:`archscale.analysis.lr_transfer.lr_transfer` and we count how often the 95 % interval of each
width's optimum and of the drift hold the truth, and which transfer verdicts come out.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_transfer_calibration.py --replicates 200
"""

from __future__ import annotations

import argparse
import time

from archscale.analysis.lr_transfer import coverage

CASES = [
    # (label, drift, bowl options)
    ("symmetric, noise 1 %, 2 seeds", 0.0, {"noise": 0.01, "seeds": 2, "offset": 0.01}),
    ("symmetric, noise 1 %, 2 seeds", -1.0, {"noise": 0.01, "seeds": 2, "offset": 0.01}),
    ("symmetric, noise 0.5 %, 2 seeds", 0.0, {"noise": 0.005, "seeds": 2, "offset": 0.01}),
    ("symmetric, noise 0.5 %, 1 seed", 0.0, {"noise": 0.005, "seeds": 1}),
    ("symmetric, noise 0.5 %, 1 seed", -1.0, {"noise": 0.005, "seeds": 1}),
    ("2:1 asymmetric, noise 0.5 %, 2 seeds", 0.0, {"noise": 0.005, "seeds": 2, "asymmetry": 2.0}),
    ("2:1 asymmetric, noise 0.5 %, 2 seeds", -1.0, {"noise": 0.005, "seeds": 2, "asymmetry": 2.0}),
    ("2:1 asymmetric, noise 1 %, 1 seed", 0.0, {"noise": 0.01, "seeds": 1, "asymmetry": 2.0}),
    ("3:1 asymmetric, noise 0.5 %, 2 seeds", 0.0, {"noise": 0.005, "seeds": 2, "asymmetry": 3.0}),
    ("steep bowl c = 0.1, noise 0.3 %, 2 seeds", 0.0, {"noise": 0.003, "seeds": 2, "curvature": 0.1}),
    ("steep bowl c = 0.1, noise 0.3 %, 2 seeds", -1.0, {"noise": 0.003, "seeds": 2, "curvature": 0.1}),
]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=400)
    args = parser.parse_args()
    print(
        "| case | c | drift (log2/doubling) | optimum coverage (intervals / widths, bounds) | drift coverage "
        "(intervals) | verdicts |"
    )
    print("|---|---|---|---|---|---|")
    started = time.perf_counter()
    for i, (label, drift, bowl) in enumerate(CASES):
        bowl = {"curvature": 0.04, **bowl}
        out = coverage(
            drift=drift, replicates=args.replicates, bootstrap=args.bootstrap, seed=1000 * i, **bowl
        )
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(out["verdicts"].items()))
        print(
            f"| {label} | {bowl['curvature']:g} | {drift:+g} | {_pct(out['optimum_coverage'])} "
            f"({out['optimum_intervals']} / {out['widths']}, {out['bounds']}) | {_pct(out['drift_coverage'])} "
            f"({out['drift_intervals']}) | {verdicts} |"
        )
    print(f"\n{args.replicates} ladders per case, {args.bootstrap} bootstrap replicates each; "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
