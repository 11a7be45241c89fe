"""Which size dependence lets one whole-curve fit cover a ladder? A first measurement on the multi-power
curves: the annealing law with L0, A (and α) as power laws in N, fitted jointly on the 25M and 100M models'
three training curves each, predicting the final loss of all nine 400M curves.

    .venv/bin/python benchmarks/curve_ladder_forms.py

Forms (x = ln(N / 1e8)): F1 L0 = l·e^(−λx), A = a·e^(ρx), α and C shared; F2 as F1 with A shared; F3 as F1 with
α = α0·e^(κx). Two sizes cannot identify an irreducible term beside a power law in N (three unknowns, two
levels), so these forms have none: the measurement says what that costs.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from archscale.data.public import multipower2025_steps
from archscale.laws.curve_laws import run_schedules

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


def main() -> None:
    fit_on = {size: prepared(size, TRAIN) for size in ("25M", "100M")}
    area, annealed, loss, last = prepared("400M", HELD_OUT)
    print("| form | 400M final-loss errors (" + ", ".join(HELD_OUT) + ") | max abs |\n|---|---|---|")
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
        errors = 100 * (predict(best.x, form, area, annealed, SIZES["400M"])[last] / loss[last] - 1)
        print(
            f"| {form} | " + ", ".join(f"{e:+.2f} %" for e in errors) + f" | {np.abs(errors).max():.2f} % |"
        )


if __name__ == "__main__":
    main()
