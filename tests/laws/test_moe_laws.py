"""The MoE design-space laws (issue 15) recover known coefficients from synthetic data."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from laws_helpers import with_noise

from archscale.laws import GranularityLaw, JointMoELaw, SparsityLaw, published
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import effective_experts

# synthetic truth of Krajewski et al.'s form, magnitudes of a small-model study (not the published fit)
GRANULARITY_TRUE = {"a": 20.0, "b": 30.0, "c": 0.5, "g": 3.0, "alpha": 0.12, "beta": 0.15, "gamma": 0.6}


@pytest.fixture(scope="module")
def granularity_grid() -> pd.DataFrame:
    """5 sizes × 4 token counts × 5 granularities, with the law's exact loss."""
    grid = pd.DataFrame(
        list(
            itertools.product(
                np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4), [1.0, 2.0, 4.0, 8.0, 16.0]
            )
        ),
        columns=["params", "tokens", "granularity"],
    )
    grid["loss"] = GranularityLaw.from_coefficients(GRANULARITY_TRUE).predict(grid)
    return grid


def test_granularity_law_recovers_its_coefficients(granularity_grid):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean fit: no bound hits, converged
        law = GranularityLaw().fit(granularity_grid)
    assert law.converged_
    for name, value in GRANULARITY_TRUE.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=1e-3), name


def test_granularity_law_terms_match_a_hand_computation(granularity_grid):
    row = granularity_grid.iloc[7]
    t = GRANULARITY_TRUE
    by_hand = t["c"] + (t["g"] / row.granularity ** t["gamma"] + t["a"]) / row.params ** t["alpha"]
    by_hand += t["b"] / row.tokens ** t["beta"]
    assert row.loss == pytest.approx(by_hand, rel=1e-12)


def test_granularity_law_with_noise_keeps_gamma_within_its_interval(granularity_grid):
    noisy = with_noise(granularity_grid, 0.003, seed=0)
    law = GranularityLaw(bootstrap=50, seed=2).fit(noisy)
    low, high = law.intervals_["gamma"]
    assert low < GRANULARITY_TRUE["gamma"] < high
    assert law.coefficients_["gamma"] == pytest.approx(GRANULARITY_TRUE["gamma"], rel=0.25)


def test_granularity_law_needs_several_granularities(granularity_grid):
    with pytest.raises(LawDataError, match="several granularities"):
        GranularityLaw().fit(granularity_grid.assign(granularity=1.0))


def test_joint_law_at_one_expert_is_the_papers_dense_chinchilla_law():
    """Ludziejewski et al. 2025 Table 4 lists the per-E Chinchilla coefficients their joint law implies; at
    E = 1 (dense, Ê = E_start): m = 30.36, µ = -0.1817, n = 53.98, ν = -0.1965 (rounded as printed)."""
    law = published("ludziejewski2025").laws[0]
    n, d = np.array([1e8, 1e9]), np.array([1e9, 1e10])
    e_hat = effective_experts(np.array([1.0]), law.e_start, law.e_max)[0]
    assert e_hat == pytest.approx(2.0732)
    c = law.coefficients_
    m, mu = c["a"] * e_hat ** c["delta"], c["alpha"] + c["gamma"] * np.log(e_hat)
    nn, nu = c["b"] * e_hat ** c["omega"], c["beta"] + c["zeta"] * np.log(e_hat)
    assert (m, mu, nn, nu) == pytest.approx((30.36, -0.1817, 53.98, -0.1965), rel=3e-3)
    table = pd.DataFrame({"active_params": n, "tokens": d, "experts": 1.0})
    assert law.predict(table) == pytest.approx(m * n**mu + nn * d**nu + c["c"], rel=1e-12)


def test_joint_law_recovers_the_published_coefficients_from_their_own_predictions():
    """A grid like the paper's (E in 1..32, N_act 1e8..3e9, D 5e8..8e10), loss from the published law, refitted."""
    truth = published("ludziejewski2025").laws[0]
    grid = pd.DataFrame(
        list(
            itertools.product(
                np.geomspace(1e8, 3e9, 5), np.geomspace(5e8, 8e10, 5), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
            )
        ),
        columns=["active_params", "tokens", "experts"],
    )
    grid["loss"] = truth.predict(grid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law = JointMoELaw().fit(grid)
    for name, value in truth.coefficients_.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=2e-3, abs=2e-4), name


SPARSITY_TRUE = {"a": 25.0, "b": 40.0, "c": 0.3, "d": 8.0, "e": 1.2, "alpha": 0.25, "beta": 0.3, "lambda": -0.4,
                 "delta": 0.5, "gamma": 0.2}  # fmt: skip


def test_sparsity_law_recovers_its_coefficients():
    grid = pd.DataFrame(
        list(
            itertools.product(
                np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4), [0.0, 0.5, 0.75, 0.875, 0.9375]
            )
        ),
        columns=["params", "tokens", "sparsity"],
    )
    grid["loss"] = SparsityLaw.from_coefficients(SPARSITY_TRUE).predict(grid)
    row = grid.iloc[13]
    t, density = SPARSITY_TRUE, 1 - row.sparsity
    by_hand = (
        t["a"] / row.params ** t["alpha"] + t["b"] / row.tokens ** t["beta"] + t["c"] / density ** t["lambda"]
    )
    by_hand += t["d"] / (density ** t["delta"] * row.params ** t["gamma"]) + t["e"]
    assert row.loss == pytest.approx(by_hand, rel=1e-12)
    law = SparsityLaw().fit(grid)
    for name, value in SPARSITY_TRUE.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=2e-2), name
    with pytest.raises(LawDataError, match=r"must lie in \[0, 1\)"):
        SparsityLaw().fit(grid.assign(sparsity=1.0))


def test_granularity_law_in_the_catalogue_is_krajewskis_table_1():
    law = published("krajewski2024").laws[0]
    # the 64x25M model (about 1.08e9 total non-embedding parameters) at 16B tokens, G = 1 and G = 16
    coarse, fine = law.predict(pd.DataFrame({"params": 1.08e9, "tokens": 16e9, "granularity": [1.0, 16.0]}))
    assert coarse == pytest.approx(0.47 + (2.1 + 18.1) / 1.08e9**0.115 + 30.8 / 16e9**0.147, rel=1e-12)
    assert 3.0 < fine < coarse < 3.4  # finer experts lower the loss, by about 0.15 nats here


def test_joint_law_fitted_on_clark_data_predicts_the_largest_expert_counts(shared_data):
    """The E dimension on public data: Clark et al. 2022's S-BASE curves (k = 1, every other block routed,
    seed 42) and their dense runs from step 50k, tokens per step from FLOPs per step ÷ 6·N (the file has no
    batch size); fitted on E ≤ 128, the final losses at E = 256 and 512 (22 runs, never seen) predicted to
    0.4 % on average (in-sample: 0.5 %). The signs of the expert terms agree with Ludziejewski et al.'s fit."""
    curves = pd.read_csv(shared_data / "clark2022_routing" / "curves.csv.gz")
    dense = curves[(curves.router_type == "Dense") & (curves.k == 1) & (curves.flop_increase == 1)]
    routed = curves[(curves.router_type == "S-Base") & (curves.k == 1) & (curves.routing_frequency == 0.5)
                    & (curves.seed == 42)]  # fmt: skip
    table = pd.concat([dense, routed])
    table = table[(table.step >= 50_000) & table.loss_validation.notna()].assign(
        tokens=lambda t: t.step * t.flops_per_step / (6 * t.dense_parameter_count)
    )
    table = table.rename(columns={"dense_parameter_count": "active_params", "num_experts": "experts",
                                  "loss_validation": "loss", "hyper_id": "run_id"})  # fmt: skip
    table = table.groupby(["run_id", "step"], as_index=False).agg(
        {"active_params": "first", "experts": "first", "tokens": "first", "loss": "mean"}
    )
    train, held_out = table[table.experts <= 128], table[(table.experts >= 256) & (table.step >= 240_000)]
    law = JointMoELaw().fit(train)
    error = np.abs(law.predict(held_out) / held_out["loss"].to_numpy() - 1)
    assert len(held_out) == 22 and error.mean() < 0.006 and error.max() < 0.015
    assert law.coefficients_["delta"] < 0 < law.coefficients_["omega"]  # as the paper's -0.2285 and 0.5529
