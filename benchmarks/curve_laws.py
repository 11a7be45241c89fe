"""Whole-curve laws on the multi-power law's published curves (shipped with archscale).

Two protocols, printed as Markdown tables for ``benchmarks/RESULTS.md``:

1. Luo et al. 2025's: per model size, fit on three training curves (cosine 24k, constant 24k, two-stage
   3e-4 → 9e-5 at step 8k of 16k) and predict the final loss of the six held-out curves (constant and cosine
   over 72k steps, WSD with exponential and with linear decay, two-stage to 3e-5 and to 1.8e-4).
2. An unfinished run: fit on the constant-24k curve plus the first 33 / 50 / 75 % of the cosine-72k run,
   predict where that run ends.

    .venv/bin/python benchmarks/curve_laws.py >> benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from datetime import date

import pandas as pd

from archscale.data.public import multipower2025_steps
from archscale.laws import AnnealingLaw, MultiPowerLaw
from archscale.laws.curve_laws import losses_at_final_steps

TRAIN = ("cosine_24000", "constant_24000", "wsdcon_9")
HELD_OUT = ("wsd_20000_24000", "wsdld_20000_24000", "cosine_72000", "constant_72000", "wsdcon_3", "wsdcon_18")
SIZES = ("25M", "100M", "400M")
LAWS = {"multi-power": MultiPowerLaw, "annealing": AnnealingLaw}


def final_error(law, size: str, schedule: str) -> float:
    """Relative error (%) of the predicted loss at the curve's last logged step."""
    table = multipower2025_steps(size, [schedule])
    predicted = law.predict(table)[-1]
    observed = table["loss"].dropna().iloc[-1]
    return 100 * (predicted / observed - 1)


def protocol(laws: dict) -> None:
    print("| law | size | fit time | " + " | ".join(HELD_OUT) + " | max abs |")
    print("|---|---|---|" + "---|" * (len(HELD_OUT) + 1))
    for name, cls in laws.items():
        for size in SIZES:
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                law = cls().fit(multipower2025_steps(size, TRAIN))
            seconds = time.perf_counter() - started
            errors = [final_error(law, size, schedule) for schedule in HELD_OUT]
            cells = " | ".join(f"{e:+.2f} %" for e in errors)
            print(f"| {name} | {size} | {seconds:.0f} s | {cells} | {max(map(abs, errors)):.2f} % |")


UNFINISHED_DESIGNS = {"constant 24k": ["constant_24000"], "the three training curves": list(TRAIN)}


def unfinished(laws: dict, refits: int) -> None:
    """The final-loss error, and the new-run interval in % of the observed final where the fit gives one, for
    an unfinished cosine-72k run fitted beside the curves of each design."""
    reasons: set[str | None] = set()
    shares = (1 / 3, 1 / 2, 3 / 4)
    print(
        "\n| law | size | fitted beside | "
        + " | ".join(f"first {f:.0%} of cosine-72k" for f in shares)
        + " |"
    )
    print("|---|---|---|---|---|---|")
    target_rows = {
        size: losses_at_final_steps(multipower2025_steps(size, ["cosine_72000"])) for size in SIZES
    }
    for name, cls in laws.items():
        for design, schedules in UNFINISHED_DESIGNS.items():
            for size in SIZES:
                target = target_rows[size]
                observed = target["loss"].dropna().iloc[0]
                cells = []
                for share in shares:
                    seen = multipower2025_steps(size, ["cosine_72000"], until=int(72000 * share))
                    table = pd.concat([multipower2025_steps(size, schedules), seen], ignore_index=True)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        law = cls(bootstrap=refits).fit(table)
                    cell = f"{final_error(law, size, 'cosine_72000'):+.2f} %"
                    if law.bootstrap_ is not None:
                        lower, upper = (
                            100 * (v[0] / observed - 1) for v in law.predict_interval(target, new_run=True)
                        )
                        cell += f" [{lower:+.2f}, {upper:+.2f}]" + ("" if lower <= 0 <= upper else " ✗")
                    cells.append(cell)
                    reasons.add(law.no_interval_)
                print(f"| {name} | {size} | {design} | " + " | ".join(cells) + " |")
    for reason in sorted(r for r in reasons if r):
        print(f"\n- no interval: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--law", choices=sorted(LAWS), action="append", help="only these laws (repeatable)")
    parser.add_argument("--refits", type=int, default=100, help="bootstrap refits behind each interval")
    args = parser.parse_args()
    laws = {name: LAWS[name] for name in (args.law or LAWS)}
    print(f"\n## Whole-curve laws on the multi-power curves (`benchmarks/curve_laws.py`), {date.today()}\n")
    print(
        f"- Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    print("- Final-loss error (predicted / observed − 1) at each held-out curve's last logged step.\n")
    protocol(laws)
    unfinished(laws, args.refits)


if __name__ == "__main__":
    main()
