"""Analysis 6: a claim is supported only by an interval that excludes no effect in its direction."""

from __future__ import annotations

import pandas as pd
import pytest

from archscale.analysis import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    AllocationResult,
    AnalysisError,
    Comparison,
    GeneralisationResult,
    HyperparamResult,
    NoiseScaleResult,
    PowerFit,
    judge,
    replication_verdicts,
)


@pytest.mark.parametrize(
    ("lower", "upper", "direction", "verdict"),
    [
        (0.90, 0.97, "below", SUPPORTED),
        (1.02, 1.10, "below", NOT_SUPPORTED),
        (0.95, 1.05, "below", INCONCLUSIVE),
        (0.95, 1.00, "below", INCONCLUSIVE),  # touching no effect does not exclude it
        (1.02, 1.10, "above", SUPPORTED),
        (0.90, 0.97, "above", NOT_SUPPORTED),
        (None, None, "above", INCONCLUSIVE),  # no interval, no claim
        (float("nan"), 1.2, "above", INCONCLUSIVE),
    ],
)
def test_judge(lower, upper, direction, verdict):
    assert judge(lower, upper, 1.0, direction) == verdict


def test_judge_refuses_nonsense():
    with pytest.raises(AnalysisError, match="direction must be 'below' or 'above'"):
        judge(0.1, 0.2, 0.0, "less")
    with pytest.raises(AnalysisError, match="lower <= upper"):
        judge(0.3, 0.2, 0.0, "below")


def _comparison(ratio, lower, upper, quantity="q", extrapolated=False) -> Comparison:
    return Comparison(quantity, "loss", 3.0, extrapolated, ratio, lower, upper, 0.95, None, 1.0)


def test_each_claim_reads_its_own_measure():
    verdicts = replication_verdicts(
        GeneralisationResult(loss_ratio=_comparison(0.97, 0.95, 0.99)),
        AllocationResult(
            table=pd.DataFrame(),
            alpha_N_difference={"effect": -0.05, "lower": -0.08, "upper": -0.01, "level": 0.95},
        ),
        HyperparamResult(
            method="contour",
            batch_comparison=_comparison(0.8, 0.6, 1.1),
            lr_comparison=_comparison(1.3, 1.1, 1.5, extrapolated=True),
        ),
        NoiseScaleResult(skipped="no run measured the noise scale"),
    )
    rows = {row.measure.split(" at ")[0]: row for row in verdicts.rows}
    assert [row.verdict for row in verdicts.rows] == [
        SUPPORTED,
        NOT_SUPPORTED,
        INCONCLUSIVE,
        SUPPORTED,
        NOT_TESTED,
    ]
    assert rows["test loss MoE ÷ dense"].effect == 0.97 and rows["test loss MoE ÷ dense"].measure.endswith(
        "loss = 3"
    )
    assert rows["α_N(MoE) − α_N(dense)"].lower == -0.08
    assert "extrapolated" in rows["lr_opt MoE ÷ dense"].note
    noise = rows["B_simple MoE ÷ dense"]
    assert noise.effect is None and noise.note == "no run measured the noise scale"


def test_missing_fits_and_intervals_never_support_a_claim():
    skipped_fit = PowerFit(family="moe", target="batch_size", input="loss", skipped="moe: no moe grid")
    verdicts = replication_verdicts(
        GeneralisationResult(loss_ratio=_comparison(0.9, None, None)),
        AllocationResult(table=pd.DataFrame(), skipped={"moe": "no moe runs"}),
        HyperparamResult(method="contour", batch_fits={"moe": skipped_fit}),
        NoiseScaleResult(),
    )
    loss, alpha, batch, _, _ = verdicts.rows
    assert loss.verdict == NOT_TESTED and "no interval" in loss.note  # an effect without an interval
    assert alpha.verdict == NOT_TESTED and alpha.note == "no moe runs"
    assert batch.verdict == NOT_TESTED and batch.note == "moe: no moe grid"
    assert all(row.verdict != SUPPORTED for row in verdicts.rows)
    assert verdicts.to_dict()["rows"][0]["lower"] is None


def test_an_inconclusive_verdict_says_the_smallest_effect_it_resolves():
    """Half the interval: a factor for a ratio (exp of half the log width), a difference otherwise; with
    the paper's value, how much narrower the interval must be to see it (hand-computed)."""
    from archscale.analysis.verdicts import Verdict

    ratio = Verdict(claim="c", paper="p", measure="m", no_effect=1.0, direction="below", effect=1.0,
                    lower=0.8, upper=1.25, verdict=INCONCLUSIVE)  # fmt: skip
    assert ratio.resolves == pytest.approx(1.25)
    assert "×/÷1.25 (half its interval)" in ratio.resolution_text()
    assert (
        "archscale plan study" in ratio.resolution_text()
    )  # no paper value: the study planner sizes the next
    alpha = Verdict(claim="c", paper="p", measure="m", no_effect=0.0, direction="above", effect=0.05,
                    lower=-0.4, upper=0.5, verdict=INCONCLUSIVE, paper_effect=0.083)  # fmt: skip
    assert alpha.resolves == pytest.approx(0.45)
    text = alpha.resolution_text()
    assert "beyond ±0.45" in text and "needs ±0.083" in text and "5.4× narrower" in text
    supported = Verdict(claim="c", paper="p", measure="m", no_effect=1.0, direction="below", effect=0.9,
                        lower=0.85, upper=0.95, verdict=SUPPORTED)  # fmt: skip
    assert supported.resolution_text() is None


def test_the_alpha_verdict_carries_the_papers_difference():
    """Table 1: α_N 0.590 (MoE) − 0.507 (dense) = 0.083, read from the catalogue, not retyped."""
    verdict = replication_verdicts(
        GeneralisationResult(loss_ratio=_comparison(0.9, None, None)),
        AllocationResult(table=pd.DataFrame(), skipped={"moe": "no moe runs"}),
        HyperparamResult(method="contour"),
        NoiseScaleResult(),
    ).rows[1]
    assert verdict.paper_effect == pytest.approx(0.083)


def test_a_design_that_could_see_the_papers_effect_says_so():
    """Half the interval (0.05) under the paper's 0.083: no call for a narrower one."""
    from archscale.analysis.verdicts import Verdict

    verdict = Verdict(claim="c", paper="p", measure="m", no_effect=0.0, direction="above", effect=0.02,
                      lower=-0.03, upper=0.07, verdict=INCONCLUSIVE, paper_effect=0.083)  # fmt: skip
    text = verdict.resolution_text()
    assert "beyond ±0.05" in text and "within its reach" in text and "narrower" not in text
