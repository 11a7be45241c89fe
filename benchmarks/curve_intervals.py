"""Coverage of the whole-curve laws' 95 % new-run prediction intervals (issue 22), printed as Markdown.

1. Simulation (``--simulate``): curves made with the law's own formula at known coefficients, times a run
   effect (log sd ``tau``) and AR(1) point noise along each curve (sd ``s``, lag-1 correlation ``phi``); the
   law is fitted with ``bootstrap=K`` on the training schedules and we count how often the 95 % new-run
   interval of each held-out schedule's final loss holds a fresh run's measured final. Each design is run
   with the AR(1) point noise in the simulation (the library) and without it (``phi`` forced to 0), with the
   same seeds. Designs: ``small`` (the test's schedules, 400 steps, 31 evaluations per run, trained on constant, cosine
   and WSD, held out a two-stage run) and ``paper`` (the multi-power law's schedules and logged steps, truth
   the law fitted on the shipped 400M curves, noise as estimated there).
2. Real data (``--real``): Luo et al.'s protocol on the shipped curves (fit per size on cosine 24k, constant
   24k, two-stage 9; predict the six held-out finals), each held-out final's error and whether the interval
   holds it, with and without AR(1).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/curve_intervals.py --simulate --real
"""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import nullcontext
from unittest import mock

import numpy as np
import pandas as pd

from archscale.data.public import multipower2025_steps
from archscale.laws import AnnealingLaw, MultiPowerLaw, curve_laws

TRAIN = ("cosine_24000", "constant_24000", "wsdcon_9")
HELD_OUT = ("wsd_20000_24000", "wsdld_20000_24000", "cosine_72000", "constant_72000", "wsdcon_3", "wsdcon_18")
SIZES = ("25M", "100M", "400M")
LAWS = {"annealing": AnnealingLaw, "multipower": MultiPowerLaw}
STEPS, WARMUP, PEAK, END = 400, 40, 3e-3, 3e-4
EVALUATED = np.arange(40, STEPS + 1, 12)
AR_CASES = [True, False]


def small_schedule(kind: str) -> np.ndarray:
    """The test's schedules: η_1 … η_400 with a 40-step warm-up."""
    t = np.arange(1, STEPS + 1)
    eta = np.full(STEPS, PEAK)
    if kind == "cosine":
        eta = END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (t - WARMUP) / (STEPS - WARMUP)))
    elif kind == "wsd":
        eta[t > 320] = PEAK + (END - PEAK) * (t[t > 320] - 320) / 80
    elif kind == "two-stage":
        eta[t > 240] = 6e-4
    eta[:WARMUP] = PEAK * t[:WARMUP] / WARMUP
    return eta


def small_design() -> tuple[dict[str, pd.DataFrame], list[str], list[str]]:
    tables = {}
    for kind in ("constant", "cosine", "wsd", "two-stage"):
        loss = np.full(STEPS, np.nan)
        loss[EVALUATED - 1] = 1.0
        tables[kind] = pd.DataFrame(
            {"run_id": kind, "step": np.arange(1, STEPS + 1), "lr": small_schedule(kind), "loss": loss}
        )
    return tables, ["constant", "cosine", "wsd"], ["two-stage"]


def paper_design() -> tuple[dict[str, pd.DataFrame], list[str], list[str]]:
    tables = {s: multipower2025_steps("400M", [s]) for s in TRAIN + HELD_OUT}
    return tables, list(TRAIN), list(HELD_OUT)


def noise_off():
    """The estimate without AR(1): independent point noise, as the other laws simulate."""
    return mock.patch("archscale.laws.curve_laws.lag_one_correlation", return_value=0.0)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = np.empty(n)
    e[0] = rng.standard_normal()
    for i in range(1, n):
        e[i] = phi * e[i - 1] + np.sqrt(1 - phi**2) * rng.standard_normal()
    return e


def simulate(cls, design: str, truth: dict, tau: float, s: float, phi: float, replicates: int, refits: int,
             ar: bool) -> dict:  # fmt: skip
    """Coverage of the held-out finals over ``replicates`` simulated ladders."""
    tables, train, held = small_design() if design == "small" else paper_design()
    true_law = cls.from_coefficients(truth)
    means = {k: true_law.predict(t) for k, t in tables.items()}
    rng = np.random.default_rng(0)
    hits, widths, df, taus, phis, given = [], [], [], [], [], 0
    started = time.process_time()
    for replicate in range(replicates):
        frames = []
        for k in train:
            frame = tables[k].copy()
            noise = tau * rng.standard_normal() + s * ar1(rng, len(means[k]), phi)
            frame.loc[frame["loss"].notna(), "loss"] = means[k] * np.exp(noise)
            frames.append(frame)
        observed = {
            k: means[k][-1] * np.exp(tau * rng.standard_normal() + s * rng.standard_normal()) for k in held
        }
        with warnings.catch_warnings(), nullcontext() if ar else noise_off():
            warnings.simplefilter("ignore")
            law = cls(bootstrap=refits, seed=replicate).fit(pd.concat(frames, ignore_index=True))
        if law.bootstrap_ is None:
            continue
        given += 1
        noise = law.bootstrap_.noise
        df.append(noise["df_between"]), taus.append(noise["tau"]), phis.append(noise["phi"])
        for k in held:
            lo, hi = law.predict_interval(tables[k], new_run=True)
            hits.append(lo[-1] <= observed[k] <= hi[-1])
            widths.append((hi[-1] - lo[-1]) / means[k][-1])
    return {"coverage": np.mean(hits), "width": np.median(widths), "given": given / replicates,
            "df": np.median(df), "tau": np.median(taus), "phi": np.median(phis),
            "cpu": (time.process_time() - started) / replicates}  # fmt: skip


def calibration(laws: list[str], replicates: int, refits: int) -> None:
    print("| law | design | truth τ / s / φ | AR(1) in the simulation | coverage | median width | intervals given | "
          "df between | median τ̂ / φ̂ | replicates × K | CPU s per replicate |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in laws:
        cls = LAWS[name]
        fitted = fitted_truths(cls)
        cases = [
            ("small", SMALL_TRUTH[name], 0.01, 0.003, 0.6),
            ("small", SMALL_TRUTH[name], 0.002, 0.003, 0.9),
        ]
        if name == "annealing":  # a multi-power fit on the paper's curves takes seconds: too slow to repeat
            cases.append(("paper", fitted, 0.002, 0.0015, 0.85))
        for design, truth, tau, s, phi in cases:
            n = replicates if name == "annealing" else max(replicates // 4, 10)
            k = refits if name == "annealing" else max(refits // 2, 50)
            for ar in AR_CASES:
                r = simulate(cls, design, truth, tau, s, phi, n, k, ar)
                print(f"| {name} | {design} | {tau:g} / {s:g} / {phi:g} | {'yes' if ar else 'no'} | "
                      f"{r['coverage']:.1%} | {r['width']:.2%} | {r['given']:.0%} | {r['df']:.2f} | "
                      f"{r['tau']:.4f} / {r['phi']:.2f} | {n} × {k} | {r['cpu']:.2f} |", flush=True)  # fmt: skip


SMALL_TRUTH = {
    "annealing": {"L0": 2.5, "A": 0.6, "alpha": 0.45, "C": 0.5},
    "multipower": {"L0": 2.5, "A": 0.6, "alpha": 0.45, "B": 200.0, "C": 2.0, "beta": 0.6, "gamma": 0.6},
}


def fitted_truths(cls) -> dict:
    """The law fitted on the shipped 400M training curves: the paper design's truth."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls().fit(multipower2025_steps("400M", TRAIN)).coefficients_ if cls is AnnealingLaw else {}


def real(laws: list[str], refits: int) -> None:
    print("\n| law | size | AR(1) | τ̂ / ŝ / φ̂ (df between) | fit + K refits | "
          + " | ".join(HELD_OUT) + " | covered |")  # fmt: skip
    print("|---|---|---|---|---|" + "---|" * (len(HELD_OUT) + 1))
    for name in laws:
        for ar in AR_CASES:
            total = covered = 0
            for size in SIZES:
                started = time.perf_counter()
                with warnings.catch_warnings(), nullcontext() if ar else noise_off():
                    warnings.simplefilter("ignore")
                    law = LAWS[name](bootstrap=refits, seed=0).fit(multipower2025_steps(size, TRAIN))
                seconds = time.perf_counter() - started
                if law.bootstrap_ is None:
                    print(f"| {name} | {size} | {'yes' if ar else 'no'} | {law.no_interval_} |")
                    continue
                noise = law.bootstrap_.noise
                cells = []
                for schedule in HELD_OUT:
                    table = multipower2025_steps(size, [schedule])
                    observed = table["loss"].dropna().iloc[-1]
                    lo, hi = (100 * (v[-1] / observed - 1) for v in law.predict_interval(table, new_run=True))
                    error = 100 * (law.predict(table)[-1] / observed - 1)
                    inside = lo <= 0 <= hi
                    total, covered = total + 1, covered + inside
                    cells.append(f"{error:+.2f} [{lo:+.2f}, {hi:+.2f}]{'' if inside else ' ✗'}")
                print(f"| {name} | {size} | {'yes' if ar else 'no'} | {noise['tau']:.4f} / {noise['s']:.4f} / "
                      f"{noise['phi']:.2f} ({noise['df_between']:.2f}) | {seconds:.0f} s | " + " | ".join(cells)
                      + f" | {covered}/{total} so far |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--law", choices=sorted(LAWS), action="append", help="only these laws (repeatable)")
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--refits", type=int, default=200)
    parser.add_argument("--min-df", type=float, default=curve_laws.MIN_DF_CURVES,
                        help="measure below the library's threshold for giving an interval")  # fmt: skip
    parser.add_argument(
        "--ar", choices=("both", "yes"), default="both", help="'yes': skip the runs without AR(1)"
    )
    args = parser.parse_args()
    curve_laws.MIN_DF_CURVES = args.min_df
    AR_CASES[:] = (True, False) if args.ar == "both" else (True,)
    laws = args.law or list(LAWS)
    if args.simulate:
        calibration(laws, args.replicates, args.refits)
    if args.real:
        real(laws, args.refits)


if __name__ == "__main__":
    main()
