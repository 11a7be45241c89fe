"""The headline: the few numbers and sentences a study ends on, built once from the analyses.

``summary.json`` stores it (its ``headline``), the terminal prints it (:meth:`Headline.text`) and the page
shows its claims and targets, all from this one object and :mod:`archscale.report.numbers`, so the
three cannot say different things.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from archscale.analysis import DEPENDS, NOT_TESTED, Analyses, Verdict
from archscale.analysis.public import PublicEvidence
from archscale.analysis.results import Result
from archscale.report.numbers import interval, number, percent

MAX_ALPHA_N_WIDTH = 0.30  # targets the study was designed to meet: what a micro study must resolve
MAX_EXTRAPOLATION_ERROR = 0.03
MIN_PREDICTION_COVERAGE = 0.80

_DEGENERATE = "degenerate fit (a coefficient on its bound or faded out): not a measurement"
_NO_INTERVAL = "(no interval)"  # in a sentence, where the page has an interval column and MISSING


@dataclass
class Prediction(Result):
    """How well Eq. 5 fitted on the smaller models predicted the largest model (Figure 1)."""

    held_out: list[str]
    mean_abs_rel_error: float | None
    max_abs_rel_error: float | None
    coverage: float | None
    prediction_coverage: float | None


@dataclass
class Exponents(Result):
    """Table 1's α_N and α_D of one family, and whether the fit behind them is a measurement."""

    alpha_N: float | None
    alpha_D: float | None
    alpha_N_interval: list[float] | None
    alpha_D_interval: list[float] | None
    degenerate: bool


@dataclass
class Target(Result):
    """A target of the study's design: met, missed, or why it could not be checked."""

    target: str
    value: float | None
    status: str
    reason: str | None


@dataclass
class Headline(Result):
    """What the terminal prints and ``summary.json`` leads with (its keys are a file format)."""

    extrapolation: dict[str, Prediction]
    allocation: dict[str, Exponents]
    alpha_N_gain: dict[str, Any] | None
    compute_equivalent_gain: dict[str, Any] | None
    verdicts: dict[str, str]
    resolution: dict[str, str]
    claims: list[str]
    targets: list[Target]

    def text(self, runs: dict[str, Any]) -> str:
        """A few terminal lines: extrapolation error, Table 1 exponents, the two gains, verdicts, claims and
        targets; ``runs``: the summary's run counts, for the warning about repeated data."""
        lines = [
            f"  Eq. 5 {family}: largest model predicted within {percent(e.mean_abs_rel_error)} mean, "
            f"{percent(e.max_abs_rel_error)} max |relative error| "
            f"({percent(e.prediction_coverage)} of its points inside the prediction interval, "
            f"{percent(e.coverage)} inside the curve band)"
            for family, e in self.extrapolation.items()
        ]
        for family, a in self.allocation.items():
            lines.append(
                f"  Table 1 {family}: α_N = {_num(a.alpha_N)} {_span(a.alpha_N_interval)}, "
                f"α_D = {_num(a.alpha_D)} {_span(a.alpha_D_interval)}"
                + (f" — {_DEGENERATE}" if a.degenerate else "")
            )
        degenerate = any(a.degenerate for a in self.allocation.values())
        if gain := self.alpha_N_gain:
            lines.append(
                f"  data-utilisation gain of MoE, {gain['definition']} (the paper's definition): "
                f"{percent(gain['effect'])} {_span([gain['lower'], gain['upper']], percent)} "
                f"(paper: {100 * gain['paper']:.2f} %)" + (f" — from a {_DEGENERATE}" if degenerate else "")
            )
        if gain := self.compute_equivalent_gain:
            lines.append(
                f"  compute-equivalent gain of MoE (extra compute dense needs for MoE's test loss): "
                f"{percent(gain['value'])} {_span([gain.get('lower'), gain.get('upper')], percent)} "
                "(no published value)"
            )
        if over := runs.get("over_one_epoch"):
            lines.append(
                f"  warning: {over} runs went over their training data more than once (up to "
                f"{runs['max_epochs']:.2g} epochs): repeated data bends the laws"
            )
        lines.append("  verdicts:")
        for claim, verdict in self.verdicts.items():
            lines.append(f"    {verdict:<28} {claim}")
            if resolution := self.resolution.get(claim):
                lines.append(f"    {'':<28}   ({resolution})")
        lines += [f"  {sentence}" for sentence in self.claims]
        lines.append("  targets of the study's design:")
        lines += [
            f"    {t.status:<12} {t.target}"
            + (f": {t.value:.3g}" if t.value is not None else f" ({t.reason})")
            for t in self.targets
        ]
        return "\n".join(lines)


def headline_numbers(analyses: Analyses, public: Sequence[PublicEvidence] = ()) -> Headline:
    """The headline of ``analyses``, with a sentence per claim that ``public`` data sets speak to."""
    extrapolation = {
        family: Prediction(
            e.held_out, e.mean_abs_rel_error, e.max_abs_rel_error, e.coverage, e.prediction_coverage
        )
        for family, e in analyses.loss_law.extrapolations.items()
        if not e.skipped
    }
    allocation = {
        family: Exponents(
            fit["derived"].get("alpha_N"),
            fit["derived"].get("alpha_D"),
            fit["intervals"].get("alpha_N"),
            fit["intervals"].get("alpha_D"),
            family in analyses.allocation.degenerate,
        )
        for family, fit in analyses.allocation.fits.items()
    }
    return Headline(
        extrapolation=extrapolation,
        allocation=allocation,
        alpha_N_gain=analyses.allocation.alpha_N_gain,
        compute_equivalent_gain=analyses.generalisation.data_efficiency_gain,
        verdicts={row.claim: row.verdict for row in analyses.verdicts.rows},
        resolution={row.claim: text for row in analyses.verdicts.rows if (text := row.resolution_text())},
        claims=claim_sentences(analyses, public),
        targets=study_targets(analyses),
    )


def claim_sentences(analyses: Analyses, public: Sequence[PublicEvidence] = ()) -> list[str]:
    """One plain sentence per claim: what the user's runs say, then what each public data set says (or that
    it does not measure the claim); claims only public data judge come last."""
    mine = [row.claim for row in analyses.verdicts.rows]
    claims = mine + list(dict.fromkeys(r.claim for e in public for r in e.verdicts if r.claim not in mine))
    sentences = []
    for claim in claims:
        parts = [f"your runs {_said(row)}" for row in analyses.verdicts.rows if row.claim == claim]
        for evidence in (e for e in public if e.verdicts):  # a data set that judges no claim is not listed
            theirs = [row for row in evidence.verdicts if row.claim == claim]
            said = _said(theirs[0]) if theirs else "do not measure it"
            parts.append(f"the public data ({evidence.dataset['name']}) {said}")
        sentences.append(f"{claim}: {'; '.join(parts)}.")
    return sentences


def _said(row: Verdict) -> str:
    """A verdict with its effect and interval, in words; one that depends on the comparison says how (the
    first clause of its note: the verdict at equal loss and the matched comparisons that differ)."""
    if row.verdict == NOT_TESTED:
        return f"give no verdict ({row.note or 'not tested'})"
    said = f"say {row.verdict} ({row.measure}: {row.effect:.3g} {_span([row.lower, row.upper], _sig3)})"
    return said + f": {(row.note or '').split('; ')[0]}" if row.verdict == DEPENDS else said


def study_targets(analyses: Analyses) -> list[Target]:
    """Whether this study resolves what it was designed to: α_N's 95 % interval no wider than 0.30 per
    family, and the largest model predicted from the smaller ones within 3 % mean |relative error| with its
    prediction interval holding at least 80 % of the held-out points. Each target says met, missed, or why it
    could not be checked — a missed target is stated, not hidden."""
    rows = []
    for family in ("dense", "moe"):
        fit = analyses.allocation.fits.get(family)
        bounds = fit["intervals"].get("alpha_N") if fit else None
        width = None if not bounds else bounds[1] - bounds[0]
        rows.append(_target(f"{family}: α_N 95 % interval width ≤ {MAX_ALPHA_N_WIDTH:g}", width,
                            width is not None and width <= MAX_ALPHA_N_WIDTH,
                            None if fit is None else (fit.get("no_interval") or "no interval")))  # fmt: skip
        e = analyses.loss_law.extrapolations.get(family)
        error = None if e is None or e.skipped else e.mean_abs_rel_error
        rows.append(_target(f"{family}: largest model predicted within {MAX_EXTRAPOLATION_ERROR:.0%} mean |error|",
                            error, error is not None and error <= MAX_EXTRAPOLATION_ERROR,
                            e.skipped if e else "no extrapolation"))  # fmt: skip
        covered = None if e is None or e.skipped else e.prediction_coverage
        rows.append(_target(f"{family}: its prediction interval holds ≥ {MIN_PREDICTION_COVERAGE:.0%} of the points",
                            covered, covered is not None and covered >= MIN_PREDICTION_COVERAGE,
                            (e.no_interval or e.skipped or "no interval") if e else "no extrapolation"))  # fmt: skip
    return rows


def _target(target: str, value: float | None, met: bool, reason: str | None) -> Target:
    status = "not checked" if value is None else ("met" if met else "missed")
    return Target(target, value, status, reason if value is None else None)


def _num(value: float | None) -> str:
    return number(value, ".3f")


def _sig3(value: float) -> str:
    return number(value, ".3g")


def _span(bounds: Sequence[Any] | None, fmt: Callable[[Any], str] = _num) -> str:
    """An interval inside a sentence, which says so in words when there is none."""
    return interval(bounds, fmt, _NO_INTERVAL)
