"""Shared helpers of the laws tests (a uniquely named module, so it never collides with another conftest)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# A Wang et al. (Eq. 5) law with realistic magnitudes: N in FLOPs/token, D in tokens, E experts.
WANG_TRUE = {"A": 300.0, "B": 800.0, "alpha": 0.3, "beta": 0.32, "gamma": 0.15, "sigma": 1.7}


def with_noise(table: pd.DataFrame, sigma: float, seed: int) -> pd.DataFrame:
    """A copy with multiplicative log-normal noise on the loss."""
    noisy = table.copy()
    noisy["loss"] = table["loss"] * np.exp(np.random.default_rng(seed).normal(0.0, sigma, len(table)))
    return noisy


def clark_router_table(final: pd.DataFrame, router: str) -> pd.DataFrame:
    """The PROVENANCE selection: dense (k=1, flop_increase=1) averaged per N as E = 1, plus the router's main
    grid (k=1, routing_frequency=0.5, seed=42); columns in archscale's names."""
    dense = final[(final.router_type == "Dense") & (final.k == 1) & (final.flop_increase == 1)]
    dense = dense.groupby("dense_parameter_count", as_index=False)["loss_validation"].mean()
    dense["num_experts"] = 1
    routed = final[
        (final.router_type == router) & (final.k == 1) & (final.routing_frequency == 0.5) & (final.seed == 42)
    ]
    columns = {"dense_parameter_count": "params", "num_experts": "experts", "loss_validation": "loss"}
    return pd.concat([dense, routed[list(columns)]], ignore_index=True).rename(columns=columns)
