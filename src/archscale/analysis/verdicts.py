"""Analysis 6: the paper's dense-vs-MoE claims, each judged by the interval of its measured effect.

A claim is **supported** only when the interval excludes no effect in the claimed direction, **not
supported** when it excludes no effect in the other direction, and **inconclusive at this scale** when it
contains no effect. A claim judged under several comparisons (:mod:`archscale.analysis.matched`)
**depends on the comparison** when they disagree. A claim whose analysis could not run, or whose effect
has no calibrated interval (too few model sizes, or no bootstrap), is **not tested**, with the reason: an
effect without an interval claims nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from archscale.analysis.compare import Comparison
from archscale.analysis.errors import AnalysisError
from archscale.analysis.generalisation import GeneralisationResult
from archscale.analysis.gradient_noise import NoiseScaleResult
from archscale.analysis.hyperparams import HyperparamResult
from archscale.analysis.powerfit import PowerFit
from archscale.analysis.results import Result
from archscale.analysis.scale_exponents import AllocationResult
from archscale.laws.table1 import published_alpha_N

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive at this scale"
NOT_TESTED = "not tested"
DEPENDS = "depends on the comparison"

NO_INTERVAL = (
    "no interval: a fit had too few runs at distinct sizes for a calibrated one (its note says how many it "
    "needs), or there was no bootstrap"
)

Direction = Literal["below", "above"]


def judge(lower: float | None, upper: float | None, no_effect: float, direction: Direction) -> str:
    """The verdict of an interval [lower, upper] for a claim that the effect lies ``direction`` no_effect."""
    if direction not in ("below", "above"):
        raise AnalysisError(f"direction must be 'below' or 'above', got {direction!r}")
    if lower is None or upper is None or not (math.isfinite(lower) and math.isfinite(upper)):
        return INCONCLUSIVE
    if lower > upper:
        raise AnalysisError(f"an interval needs lower <= upper, got [{lower}, {upper}]")
    below, above = upper < no_effect, lower > no_effect
    if below or above:
        return SUPPORTED if (below if direction == "below" else above) else NOT_SUPPORTED
    return INCONCLUSIVE


@dataclass
class Verdict(Result):
    """One claim: the paper's statement, the measured effect with its interval, and the verdict."""

    claim: str
    paper: str
    measure: str
    no_effect: float
    direction: Direction
    effect: float | None = None
    lower: float | None = None
    upper: float | None = None
    level: float | None = None
    verdict: str = NOT_TESTED
    note: str | None = None
    paper_effect: float | None = None
    """The paper's own value of the measure, where it gives one (to say whether this design could see it)."""

    @property
    def resolves(self) -> float | None:
        """The smallest effect this design resolves: half its interval, a factor for a ratio (no effect = 1),
        a difference otherwise. An effect at least this far from no effect, measured as precisely, would
        have excluded no effect; None without an interval."""
        lo, hi = self.lower, self.upper
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        if self.no_effect == 1.0 and lo > 0:
            return math.exp((math.log(hi) - math.log(lo)) / 2)
        return (hi - lo) / 2

    def resolution_text(self) -> str | None:
        """For an inconclusive verdict: the smallest effect the design resolves, and whether the paper's is
        within reach; None otherwise."""
        if self.verdict != INCONCLUSIVE or (half := self.resolves) is None:
            return None
        ratio = self.no_effect == 1.0 and self.lower is not None and self.lower > 0
        sign = "×/÷" if ratio else "±"
        text = f"this design resolves effects beyond {sign}{half:.3g} (half its interval)"
        if (
            self.paper_effect is None
            or self.paper_effect == self.no_effect
            or (ratio and self.paper_effect <= 0)
        ):
            return (
                text
                + "; `archscale plan study --store STORE --spec NEXT.yaml` says what another design resolves"
            )
        distance = abs(math.log(self.paper_effect) if ratio else self.paper_effect - self.no_effect)
        spread = math.log(half) if ratio else half
        if spread <= distance:
            return (
                text
                + f"; the paper's {self.paper_effect:.3g} is within its reach: the effect measured here is smaller"
            )
        return text + (
            f"; the paper's {self.paper_effect:.3g} needs {sign}{math.exp(distance) if ratio else distance:.3g}, an "
            f"interval {spread / distance:.1f}× narrower: `archscale plan ladder` sizes the ladder that buys it"
        )


@dataclass
class VerdictTable(Result):
    rows: list[Verdict] = field(default_factory=list)


def _from_comparison(verdict: Verdict, comparison: Comparison | None, fits: Iterable[PowerFit]) -> Verdict:
    """Fill ``verdict`` from the MoE ÷ dense comparison of two fits; the note carries why a fit is missing,
    or the fits' caveats (e.g. an interval resting on few resampled runs) beside the verdict they qualify."""
    fits = list(fits)
    if comparison is None:
        verdict.note = (
            "; ".join(fit.skipped for fit in fits if fit.skipped) or "the dense or MoE fit is missing"
        )
        return verdict
    verdict.effect, verdict.lower, verdict.upper = comparison.ratio, comparison.lower, comparison.upper
    verdict.level = comparison.level
    verdict.measure += f" at {comparison.input} = {comparison.reference:.4g}"
    caveats = list(dict.fromkeys(f"{fit.family}: {w}" for fit in fits for w in fit.warnings))
    if comparison.extrapolated:
        caveats.insert(
            0, f"the families' {comparison.input} ranges do not overlap: both fits are extrapolated"
        )
    _judge_with_notes(verdict, caveats)
    return verdict


def _judge_with_notes(verdict: Verdict, caveats: list[str]) -> None:
    """The verdict of ``verdict``'s interval, or none (``not tested``) without one; the caveats as its note."""
    if verdict.lower is None:
        verdict.verdict = NOT_TESTED
        verdict.note = "; ".join(caveats) or NO_INTERVAL
    else:
        verdict.verdict = judge(verdict.lower, verdict.upper, verdict.no_effect, verdict.direction)
        verdict.note = "; ".join(caveats) or None


def _claim(claim: str, paper: str, measure: str, no_effect: float, direction: Direction) -> Verdict:
    return Verdict(claim=claim, paper=paper, measure=measure, no_effect=no_effect, direction=direction)


def loss_verdict(
    comparison: Comparison | None, fits: Iterable[PowerFit], skipped: str | None = None
) -> Verdict:
    """Paper §6: MoE reaches the lower (test) loss at equal compute, from the two families' L(C) fits."""
    verdict = _claim(
        "MoE reaches a lower test loss at equal compute",
        "§6, Figure 6: MoE has the smaller test loss at a given compute budget",
        "test loss MoE ÷ dense",
        1.0,
        "below",
    )
    return _comparison_verdict(verdict, comparison, fits, skipped)


def alpha_verdict(allocation: AllocationResult) -> Verdict:
    """Paper Table 1: α_N(MoE) > α_N(dense), from the difference of the two families' Eq. 5 fits."""
    verdict = _claim(
        "α_N(MoE) > α_N(dense): MoE should spend more of its compute on model scale",
        "Table 1: α_N 0.590 (MoE) vs 0.507 (dense)",
        "α_N(MoE) − α_N(dense)",
        0.0,
        "above",
    )
    published = published_alpha_N()
    verdict.paper_effect = published["moe"] - published["dense"]
    difference = allocation.alpha_N_difference
    if difference is None:
        verdict.note = "; ".join(allocation.skipped.values()) or "the dense or MoE fit is missing"
        return verdict
    verdict.effect, verdict.lower, verdict.upper = (
        difference["effect"],
        difference["lower"],
        difference["upper"],
    )
    verdict.level = difference.get("level")
    if allocation.degenerate:  # a fit pinned by a bound measures nothing: no verdict on it
        verdict.note = "; ".join(allocation.degenerate.values())
        return verdict
    _judge_with_notes(verdict, allocation.warnings)
    return verdict


def _comparison_verdict(
    verdict: Verdict, comparison: Comparison | None, fits: Iterable[PowerFit], skipped: str | None
) -> Verdict:
    if skipped:
        verdict.note = skipped
        return verdict
    return _from_comparison(verdict, comparison, fits)


def batch_verdict(
    comparison: Comparison | None, fits: Iterable[PowerFit], skipped: str | None = None
) -> Verdict:
    """Paper §5.1: MoE's optimal batch size is the smaller at equal loss, from the two B_opt(L) fits."""
    verdict = _claim(
        "MoE has the smaller optimal batch size at equal loss",
        "§5.1, Figure 3: smaller B_opt for MoE at the same training loss",
        "B_opt MoE ÷ dense",
        1.0,
        "below",
    )
    return _comparison_verdict(verdict, comparison, fits, skipped)


def lr_verdict(
    comparison: Comparison | None, fits: Iterable[PowerFit], skipped: str | None = None
) -> Verdict:
    """Paper §5.2: MoE's optimal learning rate is the larger at equal loss, from the two lr_opt(L) fits."""
    verdict = _claim(
        "MoE has the larger optimal learning rate at equal loss",
        "§5.2, Figure 5: larger lr_opt for MoE at the same loss",
        "lr_opt MoE ÷ dense",
        1.0,
        "above",
    )
    return _comparison_verdict(verdict, comparison, fits, skipped)


def replication_verdicts(
    generalisation: GeneralisationResult,
    allocation: AllocationResult,
    hyperparams: HyperparamResult,
    noise: NoiseScaleResult,
) -> VerdictTable:
    """The five claims of the paper, in its order, judged on these results."""
    noise_verdict = _claim(
        "MoE has the lower gradient noise scale at equal loss",
        "§5.1 and Conclusion: lower noise scale for MoE (argued from B_opt ≈ B_noise)",
        "B_simple MoE ÷ dense",
        1.0,
        "below",
    )
    h = hyperparams
    rows = [
        loss_verdict(generalisation.loss_ratio, generalisation.fits.values(), generalisation.skipped),
        alpha_verdict(allocation),
        batch_verdict(h.batch_comparison, h.batch_fits.values(), h.skipped),
        lr_verdict(h.lr_comparison, h.lr_fits.values(), h.skipped),
        _comparison_verdict(noise_verdict, noise.comparison, noise.fits.values(), noise.skipped),
    ]
    return VerdictTable(rows=rows)
