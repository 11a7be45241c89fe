"""Synthetic studies with known answers, in the results store's table shapes (runs, curve, evals).

Every number the analyses should recover is set here: the loss law of each family, the optimal batch
size and learning rate as functions of the loss, the noise scale, and the test loss against compute.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

WARMUP = 0.05  # of the steps, as the trainer's default

# Per-family training-loss laws L(N, D) = A/N^alpha + B/D^beta + sigma (model scale N, tokens D).
# alpha_N = beta/(alpha+beta): 0.5 for dense, 0.35/0.6 = 0.5833 for MoE.
DENSE_LAW = {"A": 40.0, "alpha": 0.3, "B": 60.0, "beta": 0.3, "sigma": 1.5}
MOE_LAW = {"A": 25.0, "alpha": 0.25, "B": 110.0, "beta": 0.35, "sigma": 1.5}

# Hyperparameter optima as functions of the loss (paper Eq. 12 and 15): B_opt = lambda_B / L^alpha_B
# (tokens), lr_opt = lambda / L^alpha. MoE: 0.6x the batch size and 1.5x the learning rate at equal loss.
ALPHA_B, ALPHA_LR = 1.5, 1.0
LAMBDA_B = {"dense": 5000.0, "moe": 3000.0}
LAMBDA_LR = {"dense": 4.5e-3, "moe": 6.75e-3}
PENALTY = 0.05  # log-loss penalty per squared e-fold away from each optimum

# Noise scale B_simple = c / L^4 tokens (L the run's noise-free loss); MoE/dense = 0.6 at every loss.
NOISE_C = {"dense": 2e5, "moe": 1.2e5}
NOISE_EXPONENT = 4.0

# Test loss L = 30 · (k·C)^-0.1: MoE at compute C does what dense does at 1.2·C, so the data-efficiency
# gain is exactly 0.2 and the test-loss ratio 1.2^-0.1 = 0.9819.
TEST_LAMBDA, TEST_EXPONENT = 30.0, -0.1
TEST_FACTOR = {"dense": 1.0, "moe": 1.2}


def chinchilla(law: dict[str, float], n: float, d: np.ndarray) -> np.ndarray:
    return law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"] + law["sigma"]


def family_law(kind: str) -> Callable[[float, np.ndarray], np.ndarray]:
    law = DENSE_LAW if kind == "dense" else MOE_LAW
    return lambda n, d: chinchilla(law, n, d)


def b_opt(kind: str, loss: np.ndarray) -> np.ndarray:
    return LAMBDA_B[kind] / loss**ALPHA_B


def lr_opt(kind: str, loss: np.ndarray) -> np.ndarray:
    return LAMBDA_LR[kind] / loss**ALPHA_LR


@dataclass
class Run:
    kind: str
    n: float
    batch_tokens: int
    lr: float
    tokens: int
    loss: Callable[[float, np.ndarray], np.ndarray]  # true L(N, D) before hyperparameter penalties
    penalised: bool = False  # loss raised away from the optimal batch size and learning rate
    seed: int = 0


def _schedule(steps: int, peak: float) -> np.ndarray:
    """Linear warm-up over 5 % of the steps, then cosine to a tenth of the peak (the trainer's default)."""
    step = np.arange(1, steps + 1)
    warm = max(1, int(WARMUP * steps))
    progress = np.clip((step - warm) / max(1, steps - warm), 0.0, 1.0)
    cosine = peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
    return np.where(step <= warm, peak * step / warm, cosine)


def make_study(
    specs: list[Run], *, noise: float = 0.003, noise_scale: bool = True, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, curve and evals of ``specs``: per-step loss with log-normal noise, the noise scale, and test
    evals at D/64, D/32, …, D."""
    rng = np.random.default_rng(seed)
    runs, curves, evals = [], [], []
    for i, spec in enumerate(specs):
        run_id = f"{spec.kind}-{spec.n:.3g}-b{spec.batch_tokens}-lr{spec.lr:.3g}-d{spec.tokens}-s{spec.seed}"
        steps = spec.tokens // spec.batch_tokens
        tokens = np.arange(1, steps + 1) * spec.batch_tokens
        true = spec.loss(spec.n, tokens.astype(float))
        loss = true
        if spec.penalised:
            u = np.log(spec.batch_tokens / b_opt(spec.kind, true))
            v = np.log(spec.lr / lr_opt(spec.kind, true))
            loss = true * np.exp(PENALTY * (u**2 + v**2))
        runs.append(
            {
                "run_id": run_id, "kind": spec.kind, "n_experts": 1 if spec.kind == "dense" else 8, "N": spec.n,
                "D": steps * spec.batch_tokens, "batch_tokens": spec.batch_tokens, "lr": spec.lr,
                "seed": spec.seed, "status": "finished", "created": f"{i:04d}",
            }
        )  # fmt: skip
        curves.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "step": np.arange(1, steps + 1),
                    "tokens": tokens,
                    "lm_loss": loss * np.exp(rng.normal(0.0, noise, steps)),
                    "lr": _schedule(steps, spec.lr),
                    "noise_scale": NOISE_C[spec.kind]
                    / loss**NOISE_EXPONENT
                    * np.exp(rng.normal(0.0, 0.02, steps))
                    if noise_scale
                    else np.nan,
                }
            )
        )
        at = spec.tokens / 2.0 ** np.arange(6, -1, -1)
        test = TEST_LAMBDA * (TEST_FACTOR[spec.kind] * spec.n * at) ** TEST_EXPONENT
        evals.append(
            pd.DataFrame(
                {
                    "run_id": run_id, "step": (at // spec.batch_tokens).astype(int), "tokens": at, "split": "test",
                    "subset": "all", "loss": test * np.exp(rng.normal(0.0, 0.002, len(at))),
                }
            )
        )  # fmt: skip
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True), pd.concat(evals, ignore_index=True)


LADDER_SIZES = (1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7)
GRID_SIZES = (1e6, 4e6, 1.6e7)
GRID_BATCHES = (128, 256, 512, 1024, 2048)
GRID_LRS = (5e-4, 1e-3, 2e-3, 4e-3)


def ladder(kinds=("dense", "moe"), sizes=LADDER_SIZES, tokens: int = 2**21, law=family_law) -> list[Run]:
    """One run per model size at a fixed batch size and LR, on its family's loss law."""
    return [Run(kind, n, 1024, 1e-3, tokens, law(kind)) for kind, n in itertools.product(kinds, sizes)]


def grid(kinds=("dense", "moe"), sizes=GRID_SIZES, tokens: int = 2**19) -> list[Run]:
    """A batch-size × LR grid per model size, penalised away from the known optima."""
    return [
        Run(kind, n, b, lr, tokens, family_law(kind), penalised=True)
        for kind, n, b, lr in itertools.product(kinds, sizes, GRID_BATCHES, GRID_LRS)
    ]


# One Eq. 5 law for both families (E = 1 dense, 8 MoE), for the joint fit.
WANG = {"A": 40.0, "alpha": 0.3, "gamma": 0.1, "B": 60.0, "beta": 0.3, "sigma": 1.5}


def wang_law(kind: str) -> Callable[[float, np.ndarray], np.ndarray]:
    experts = 1.0 if kind == "dense" else 8.0
    return lambda n, d: (
        WANG["A"] / (n ** WANG["alpha"] * experts ** WANG["gamma"])
        + WANG["B"] / d ** WANG["beta"]
        + WANG["sigma"]
    )
