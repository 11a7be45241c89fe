"""Which size dependence lets one whole-curve fit cover a ladder? Measured on the multi-power law's curves:
fit on the 25M and 100M models' three training curves (cosine 24k, constant 24k, two-stage), predict the
final loss of all nine 400M curves; then the chosen law fitted on all three sizes.

    .venv/bin/python benchmarks/curve_ladder_forms.py

Forms (x = ln(N / 1e8)), each the annealing law's schedule terms (S1, S2 with λ = 0.999):
- without an irreducible term: F1 L0 = l·e^(−λx), A = a·e^(ρx), α and C shared; F2 as F1 with A shared; F3 as F1
  with α = α0·e^(κx);
- with one (the forward-momentum law's additive size term, archscale's ``curve-ladder``): σ + A/N^α + B·S1^−β −
  C·S2. Two sizes cannot identify σ beside A/N^α (three unknowns, two levels), so α is fixed at each value of a
  grid and the table shows what the answer rests on.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from archscale.data.public import multipower2025_steps
from archscale.laws import CurveLadderLaw
from archscale.laws.curve_laws import losses_at_final_steps, run_schedules

TRAIN = ["cosine_24000", "constant_24000", "wsdcon_9"]
HELD_OUT = [*TRAIN, "wsd_20000_24000", "wsdld_20000_24000", "cosine_72000", "constant_72000", "wsdcon_3",
            "wsdcon_18"]  # fmt: skip
SIZES = {"25M": 25e6, "100M": 100e6, "400M": 400e6}
STARTS = {
    "F1": [2.7, 0.1, 0.6, 0.1, 0.45, 0.5],
    "F2": [2.7, 0.1, 0.6, 0.45, 0.5],
    "F3": [2.7, 0.1, 0.6, 0.1, 0.45, 0.0, 0.5],
}


def prepared(size: str, schedules: list[str]) -> tuple[np.ndarray, ...]:
    runs, loss, _ = run_schedules(multipower2025_steps(size, schedules))
    area = np.concatenate([r.area for r in runs])
    annealed = np.concatenate([r.annealing_area(0.999) for r in runs])
    last = np.cumsum([len(r.steps) for r in runs]) - 1
    return area, annealed, loss, last


def predict(theta: np.ndarray, form: str, area: np.ndarray, annealed: np.ndarray, n: float) -> np.ndarray:
    x = np.log(n / 1e8)
    l0, lam, a, *rest = theta
    if form == "F2":
        amplitude, (alpha, c) = a, rest
    else:
        rho, *rest = rest
        amplitude = a * np.exp(rho * x)
        alpha, c = (rest[0], rest[1]) if form == "F1" else (rest[0] * np.exp(rest[1] * x), rest[2])
    return l0 * np.exp(-lam * x) + amplitude * area**-alpha - c * annealed


def row(label: str, errors: np.ndarray) -> str:
    return f"| {label} | " + ", ".join(f"{e:+.2f} %" for e in errors) + f" | {np.abs(errors).max():.2f} % |"


def without_irreducible_term() -> None:
    fit_on = {size: prepared(size, TRAIN) for size in ("25M", "100M")}
    area, annealed, loss, last = prepared("400M", HELD_OUT)
    for form, start in STARTS.items():

        def objective(theta, form=form):
            total = 0.0
            for size, (s1, s2, y, _) in fit_on.items():
                p = predict(theta, form, s1, s2, SIZES[size])
                if (p <= 0).any():
                    return 1e9
                r = np.log(y) - np.log(p)
                total += np.where(np.abs(r) <= 1e-3, 0.5 * r * r, 1e-3 * (np.abs(r) - 5e-4)).sum()
            return total

        fits = [minimize(objective, np.array(start) * f, method="Nelder-Mead",
                         options={"maxiter": 40000, "xatol": 1e-10, "fatol": 1e-14}) for f in (1.0, 0.9, 1.1)]  # fmt: skip
        best = min(fits, key=lambda r: r.fun)
        print(row(form, 100 * (predict(best.x, form, area, annealed, SIZES["400M"])[last] / loss[last] - 1)))


def final_errors(law: CurveLadderLaw, size: str) -> np.ndarray:
    """Relative error (%) of each held-out curve's final logged loss."""
    table = losses_at_final_steps(multipower2025_steps(size, HELD_OUT))
    return 100 * (law.predict(table) / table["loss"].dropna().to_numpy() - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.15, 0.2, 0.25, 0.28, 0.34, 0.4, 0.5])
    args = parser.parse_args()
    print("| form | 400M final-loss errors (" + ", ".join(HELD_OUT) + ") | max abs |\n|---|---|---|")
    without_irreducible_term()
    two = pd.concat([multipower2025_steps(size, TRAIN) for size in ("25M", "100M")])
    for alpha in args.alphas:
        print(
            row(
                f"curve-ladder, α fixed at {alpha:g}",
                final_errors(CurveLadderLaw(alpha_fixed=alpha).fit(two), "400M"),
            )
        )
    three = pd.concat([multipower2025_steps(size, TRAIN) for size in SIZES])
    with warnings.catch_warnings(record=True) as caught:
        law = CurveLadderLaw().fit(three)
    coefficients = ", ".join(f"{k} {v:.4g}" for k, v in (law.coefficients_ | law.derived_).items())
    print(f"\ncurve-ladder fitted on all three sizes' training curves: {coefficients}"
          f"{' (warnings: ' + '; '.join(str(w.message) for w in caught) + ')' if caught else ''}")  # fmt: skip
    print("\n| size | held-out final-loss errors, same order | max abs |\n|---|---|---|")
    for size in SIZES:
        print(row(size, final_errors(law, size)))


if __name__ == "__main__":
    main()
