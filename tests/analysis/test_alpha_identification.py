"""Eq. 5 beside the whole-curve law across sizes: which one identifies α_N (study and public panel)."""

from __future__ import annotations

import pytest

from archscale.analysis.curve_ladder import CURVE_LADDER, EQ5, alpha_identification
from curve_helpers import SIZES, TRUTH, ladder


def _eq5_summary(on_bound: list[str], interval: list[float] | None) -> dict:
    return {"derived": {"alpha_N": 0.5}, "intervals": {} if interval is None else {"alpha_N": interval},
            "on_bound": on_bound, "no_interval": None if interval else "no bootstrap"}  # fmt: skip


def test_the_curve_law_identifies_alpha_n_where_an_eq5_fit_is_degenerate() -> None:
    steps = ladder(SIZES[:3], ["cosine", "constant"], noise=1e-3, seed=5).assign(kind="dense")
    result = alpha_identification(
        steps, {"dense": _eq5_summary(["log_sigma"], [0.02, 1.0])}, size="params", bootstrap=30, seed=1
    )
    eq5, fitted = result.rows
    assert (eq5["law"], eq5["identified"]) == (EQ5, False)  # an interval, but σ on its bound
    assert fitted["law"] == CURVE_LADDER and fitted["identified"]
    truth = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    assert fitted["alpha_N"] == pytest.approx(truth, rel=0.05)
    assert fitted["lower"] < fitted["alpha_N"] < fitted["upper"]


def test_a_family_with_too_few_sizes_is_skipped_with_the_reason() -> None:
    steps = ladder(SIZES[:2], ["constant"], noise=1e-3, seed=6).assign(kind="moe")
    result = alpha_identification(steps, {}, size="params", bootstrap=0)
    assert result.rows == [] and "at least 3 model sizes" in result.skipped["moe"]


def test_the_public_panel_fits_both_laws_on_the_multipower_curves() -> None:
    from archscale.analysis.public import multipower_evidence

    evidence = multipower_evidence(bootstrap=0)
    laws = {row["law"]: row for row in evidence.alpha_identification.rows}
    assert set(laws) == {EQ5, CURVE_LADDER}
    # no bootstrap: no interval, so neither can be said to identify α_N
    assert not any(row["identified"] for row in laws.values())
    assert 0 < laws[CURVE_LADDER]["alpha_N"] < 1


def test_runs_at_different_peak_rates_do_not_identify_alpha_n_by_the_curve_law() -> None:
    steps = ladder(SIZES[:3], ["cosine", "constant"], noise=1e-3, seed=9).assign(kind="dense")
    steps.loc[steps["run_id"].str.endswith("cosine"), "lr"] *= 2
    result = alpha_identification(steps, {}, size="params", bootstrap=20, seed=2)
    (row,) = result.rows
    assert row["lower"] is not None and not row["identified"]
    assert "one peak rate and batch" in result.skipped["dense"]
