"""The report's HTML page: plain HTML and a little CSS, no script, no external resource.

Every value on the page comes from ``summary`` (the JSON written beside it) or the analysis results it
was made from; every string is escaped. Figures are referenced by their relative paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from archscale.analysis import Analyses, Comparison, PowerFit, Verdict
from archscale.analysis.curve_ladder import AlphaIdentification
from archscale.analysis.matched import NAMES, TARGETS, FairComparisons
from archscale.analysis.public import PublicEvidence
from archscale.analysis.verdicts import NOT_TESTED
from archscale.report.headline import Headline, Target
from archscale.report.numbers import MISSING, interval, number, percent

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em;
       color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f4f4f6; } td.text, th.text { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 13px; }
.supported { background: #e3f4e3; } .not-supported { background: #fbe3e3; }
.inconclusive { background: #fff6d9; } .not-tested { background: #eee; }
.depends-on-the-comparison { background: #fde9d4; }
.transfers { background: #e3f4e3; } .drifts { background: #fde9d4; }
.met { background: #e3f4e3; } .missed { background: #fbe3e3; } .not-checked { background: #eee; }
code { background: #f4f4f6; padding: 0 3px; }
"""

FIGURE_CAPTIONS = {
    "design_space": "MoE design space: final loss against experts, granularity, a shared expert and "
    "loss-free balancing, one line per backbone at its longest budget.",
    "lr_transfer": "Learning-rate transfer: the LR optimum (vertex of a quadratic in log2 lr) against width per "
    "design and parametrisation (solid μP, dashed SP), with 95 % intervals; triangles are optima at the grid's "
    "edge (bounds, not values).",
    "loss_extrapolation": "Figure 1: Eq. 5 fitted on the smaller models' curves, the largest model's curve "
    "predicted (light: a new run's prediction interval; dark: the band of the fitted curve).",
    "allocation": "Table 1 as a figure: α_N and α_D of the published rows and of this study.",
    "batch_heatmap": "Figure 2: smoothed training loss over batch size and tokens; the line joins the optima.",
    "batch_size_law": "Figure 3: optimal batch size against training loss, B_opt = λ_B / L^α_B per family.",
    "lr_heatmap": "Figure 4: smoothed training loss over learning rate and tokens; the line joins the optima.",
    "lr_law": "Figure 5: optimal learning rate against training loss, lr_opt = λ / L^α per family.",
    "noise_scale": "Measured gradient noise scale B_simple against training loss (the paper argues, "
    "without measuring it, that MoE's is lower).",
    "generalisation": "Figure 6: test loss against compute, power law fitted over the stable interval.",
    "downstream_chain": "Two-step chain per task: step 1, task loss against compute (each run's last-5 mean, "
    "the fit along each size); step 2, accuracy against task loss (the fitted checkpoints, the sigmoid); the "
    "largest size's forecast with its 95 % interval (diamond) and what it measured (star).",
}


def _fmt(value: Any, spec: str = ".4g") -> str:
    """A number for a table cell, escaped: a non-float value may be any text."""
    return escape(number(value, spec))


def _plain(value: Any) -> str:
    """A number, text or list for a table cell, not yet escaped."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none recorded"
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: int = 1) -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned text, the rest numbers."""

    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(
            f"<{tag}{' class=text' if i < text_columns else ''}>{v}</{tag}>" for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><tr>{cells('th', header)}</tr>{body}</table>"


def _figure(name: str, figures: dict[str, str]) -> str:
    if name not in figures:
        return ""
    caption = escape(FIGURE_CAPTIONS.get(name, name))
    return (
        f'<figure><img src="{escape(figures[name])}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _notes(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{escape(n)}</li>" for n in dict.fromkeys(notes) if n)
    return f"<ul class=note>{items}</ul>" if items else ""


def _verdicts(analyses: Analyses) -> str:
    return _verdict_table(analyses.verdicts.rows)


def _verdict_span(verdict: str) -> str:
    css = verdict.replace(" at this scale", "").replace(" ", "-")
    return f'<span class="{css}">{escape(verdict)}</span>'


def _verdict_table(verdicts: Iterable[Verdict]) -> str:
    rows = [
        [escape(v.claim), escape(v.paper), escape(v.measure), _fmt(v.effect), interval((v.lower, v.upper)),
         _verdict_span(v.verdict), escape("; ".join(filter(None, [v.note, v.resolution_text()])))]
        for v in verdicts
    ]  # fmt: skip
    header = ["claim", "paper", "measure", "effect", "interval", "verdict", "note"]
    return table(header, rows, text_columns=3) + (
        "<p class=note>Supported only when the interval excludes no effect in the claimed direction; "
        "an interval that contains no effect is inconclusive at this scale. The batch-size and learning-rate "
        "claims are supported only when the comparisons at matched size, tokens and compute the data allow "
        "agree with the one at equal loss; otherwise they depend on the comparison.</p>"
    )


def _fair(fair: FairComparisons | None) -> str:
    """MoE ÷ dense B_opt and lr_opt under the four comparisons, by lowest-cell and smoothed optima, each
    with its fits' R², and the combined verdicts; a comparison the data do not allow says why."""
    if fair is None:
        return ""
    intro = (
        "<p>Fair comparisons: MoE ÷ dense optima at (a) equal loss, (b) matched active parameters and tokens, "
        "(c) matched compute 6·N<sub>active</sub>·D, (d) matched total parameters and tokens, each at the "
        "centre of the region both families' grids cover; a comparison that would extrapolate gets no verdict. "
        "Each grid's optimum is its lowest cell and, smoothed, the vertex of a quadratic in (log lr, log batch) "
        "around it. R²: the share of the log optima's variance each family's fit explains.</p>"
    )
    if fair.skipped:
        return (
            intro
            + f"<p class=note>No comparison at matched size, tokens or compute: {escape(fair.skipped)}.</p>"
        )
    r2 = {(f.target, f.estimator, f.basis, f.family): f.r2 for f in fair.fits}
    rows = []
    for found in fair.verdicts:
        symbol = TARGETS[found.target][1]
        for m in found.comparisons:
            at = ", ".join(f"{NAMES[k]} {v:.3g}" for k, v in (m.reference or {}).items()) or MISSING
            fits = " / ".join(
                _fmt(r2[found.target, found.estimator, m.label, f], ".2f") for f in ("dense", "moe")
            )
            said = _verdict_span(m.verdict) if m.verdict != NOT_TESTED else "no verdict"
            rows.append([symbol, found.estimator, escape(f"{m.label} {m.basis}"), escape(at), fits,
                         _fmt(m.ratio, ".3g"), interval((m.lower, m.upper), lambda v: f"{v:.3g}"), said,
                         escape(m.note or "") if m.verdict == NOT_TESTED else ""])  # fmt: skip
        rows.append([symbol, found.estimator, "combined", "", "", "", "", _verdict_span(found.verdict.verdict),
                     escape(found.verdict.note or "")])  # fmt: skip
    header = ["optimum", "optima", "comparison", "at", "R² dense / MoE", "MoE ÷ dense", "interval", "verdict",
              "why"]  # fmt: skip
    return intro + table(header, rows, text_columns=4) + _notes(_optima_notes(fair))


def _optima_notes(fair: FairComparisons) -> list[str]:
    """How many optima lie on a grid edge, how far the two estimates lie apart, and why a grid has none."""
    edges = "; ".join(
        f"{estimator}: " + ", ".join(f"{TARGETS[t][1]} {n} of {total}" for t, (n, total) in counts.items())
        for estimator, counts in fair.edges.items()
    )
    notes = [f"Optima on a grid edge (bounds, left out of the fits): {edges}."]
    apart = {TARGETS[t][1]: a for t, a in fair.apart.items() if a}
    if apart:
        notes.append(
            "Smoothed and lowest-cell optima lie a factor "
            + ", ".join(f"{a['median']:.3g} ({s}, median; at most {a['max']:.3g})" for s, a in apart.items())
            + " apart."
        )
    missing: dict[str, int] = {}
    for row in fair.optima:
        if row["skipped"]:
            missing[row["skipped"]] = missing.get(row["skipped"], 0) + 1
    grids = len({row["grid"] for row in fair.optima})
    notes += [f"No smoothed optimum on {n} of {grids} grids: {why}." for why, n in missing.items()]
    return notes


def _law_rows(name: str, fit: dict[str, Any] | None) -> list[list[str]]:
    """One row per coefficient or derived quantity of a fitted law's summary."""
    if not fit:
        return []
    values = {**fit["coefficients"], **fit["derived"]}
    return [
        [escape(name), escape(fit["formula"]) if i == 0 else "", escape(k), _fmt(v),
         interval(fit["intervals"].get(k))]
        for i, (k, v) in enumerate(values.items())
    ]  # fmt: skip


def _extrapolation(analyses: Analyses) -> str:
    result = analyses.loss_law
    if result.skipped:
        return f"<p class=note>Skipped: {escape(result.skipped)}</p>"
    rows, notes = [], []
    overlaid = any(e.curve_law for e in result.extrapolations.values())
    for family, e in result.extrapolations.items():
        if e.skipped:
            notes.append(f"{family}: {e.skipped}")
            continue
        rows.append(
            [escape(family + (" (degenerate)" if e.degenerate else "")), escape(", ".join(e.held_out)),
             str(e.n_train), percent(e.mean_abs_rel_error), percent(e.max_abs_rel_error), percent(e.prediction_coverage),
             percent(e.coverage)]
        )  # fmt: skip
        notes += [f"{family}: {e.degenerate}"] * bool(e.degenerate) + e.warnings
        if overlaid:
            overlay = e.curve_law
            rows[-1] += [percent(overlay.eq5_final_abs_rel_error if overlay else None),
                         percent(overlay.final_abs_rel_error if overlay else None)]  # fmt: skip
            if overlay and overlay.skipped:
                notes.append(f"{family}: curve-ladder law not fitted: {overlay.skipped}")
    notes.append(
        "The prediction interval is that of a new run (the fitted law's uncertainty plus the run-to-run and "
        "point noise estimated from the fitted runs): it claims to hold the held-out points. The band of the "
        "fitted curve leaves that noise out, so points outside it mix noise with misspecification."
    )
    header = ["fit", "held out (largest model)", "points fitted", "mean |rel. error|", "max |rel. error|",
              "inside prediction interval", "inside curve band"]  # fmt: skip
    if overlaid:
        header += ["final point |error|: Eq. 5", "final point |error|: curve-ladder"]
        notes.append(
            "The curve-ladder law (σ + A/N^α + B·S1^−β − C·S2, from the learning rate of every step) is fitted on "
            "the whole curves of the same smaller models and predicts the held-out model's whole curve under its "
            "own schedule (Figure 1, purple dashed); the last two columns compare the two laws at that curve's "
            "final point, the largest |error| over the held-out runs."
        )
    return table(header, rows, text_columns=2) + _notes(notes)


def _allocation(analyses: Analyses) -> str:
    result = analyses.allocation
    rows = [
        [escape(r["architecture"]), escape(r["source"]), _fmt(r["alpha_N"], ".3f"),
         interval((r["alpha_N_lo"], r["alpha_N_hi"])), _fmt(r["alpha_D"], ".3f"),
         interval((r["alpha_D_lo"], r["alpha_D_hi"]))]
        for r in result.table.to_dict(orient="records")
    ]  # fmt: skip
    notes = [f"{family}: {reason}" for family, reason in result.skipped.items()] + result.warnings
    difference, gain = result.alpha_N_difference, result.alpha_N_gain
    if difference:
        notes.insert(
            0,
            f"α_N(MoE) − α_N(dense) = {_fmt(difference['effect'], '.3f')} "
            f"{interval((difference['lower'], difference['upper']))}",
        )
    if gain:
        notes.insert(
            1,
            f"Data-utilisation gain as the paper defines its 16.37 % ({gain['definition']}): "
            f"{percent(gain['effect'])} {interval((gain['lower'], gain['upper']), percent)} "
            f"(paper: {100 * gain['paper']:.2f} %, from its Table 1: 0.590 / 0.507 − 1)",
        )
    header = ["architecture", "source", "α_N", "interval", "α_D", "interval"]
    return (
        table(header, rows, text_columns=2)
        + _notes(notes)
        + _alpha_identification(analyses.alpha_identification)
    )


def _alpha_identification(result: AlphaIdentification | None) -> str:
    """Eq. 5 on curve points beside the whole-curve law across sizes: which of the two pins α_N down."""
    if result is None:
        return ""
    rows = [
        [escape(r["family"]), escape(r["law"]), _fmt(r["alpha_N"], ".3f"), interval((r["lower"], r["upper"])),
         escape(", ".join(r["on_bound"]) or "none"), "yes" if r["identified"] else "no"]
        for r in result.rows
    ]  # fmt: skip
    header = ["family", "law", "α_N", "interval", "on a bound", "identifies α_N"]
    intro = (
        "<p>Which law identifies α_N on these runs: Eq. 5 reads each curve point as a finished run; the "
        "curve-ladder law (σ + A/N^α + B·S1^−β − C·S2) models each run's schedule. A law identifies α_N when "
        "its fit has an interval for it and no coefficient on a bound.</p>"
    )
    notes = list(result.skipped.values()) + result.warnings
    return intro + table(header, rows, text_columns=2) + _notes(notes)


def _power_fits(fits: dict[str, PowerFit], comparison: Comparison | None) -> str:
    rows = []
    notes = []
    for family, fit in fits.items():
        if fit.skipped:
            notes.append(f"{family}: {fit.skipped}")
            continue
        rows += _law_rows(f"{family}: {fit.target}({fit.input})", fit.fit)
        notes += fit.warnings
    if comparison is not None:
        notes.insert(
            0,
            f"MoE ÷ dense {comparison.quantity} at {comparison.input} = {comparison.reference:.4g}: "
            f"{comparison.ratio:.3f} {interval((comparison.lower, comparison.upper), lambda x: f'{x:.3f}')}; "
            f"band overlap {percent(comparison.band_overlap)}, range overlap {percent(comparison.range_overlap)}"
            + (" (ranges do not overlap: both fits extrapolated)" if comparison.extrapolated else ""),
        )
    header = ["fit", "formula", "coefficient", "value", "interval"]
    return (table(header, rows, text_columns=3) if rows else "") + _notes(notes)


def _hyperparams(analyses: Analyses, figures: dict[str, str]) -> str:
    result = analyses.hyperparams
    if result.skipped:
        return f"<p class=note>Skipped: {escape(result.skipped)}</p>" + "".join(
            _figure(n, figures) for n in ("batch_heatmap", "batch_size_law", "lr_heatmap", "lr_law")
        )
    return (
        f"<p>Method: {escape(result.method)}; {len(result.batch_optima)} batch-size optima and "
        f"{len(result.lr_optima)} learning-rate optima found on {len(result.grids)} grids.</p>"
        "<p class=note>Band overlap, as measured here: the mean over the loss range both families reached of "
        "|band<sub>MoE</sub> ∩ band<sub>dense</sub>| / |band<sub>MoE</sub> ∪ band<sub>dense</sub>| (log "
        "lengths of the two 95 % curve bands). The paper's 65.8 % (Figure 3) and 76.2 % (Figure 5) are a "
        '"total overlap of the comparative performance interval" that it does not define, so they are not '
        "set beside these numbers.</p>"
        + _figure("batch_heatmap", figures)
        + _figure("batch_size_law", figures)
        + _power_fits(result.batch_fits, result.batch_comparison)
        + _figure("lr_heatmap", figures)
        + _figure("lr_law", figures)
        + _power_fits(result.lr_fits, result.lr_comparison)
        + _fair(analyses.fair)
    )


def _generalisation(analyses: Analyses) -> str:
    result = analyses.generalisation
    if result.skipped:
        return f"<p class=note>Skipped: {escape(result.skipped)}</p>"
    text = _power_fits(result.fits, result.loss_ratio)
    gain = result.data_efficiency_gain
    if gain:
        text += (
            f"<p>Compute-equivalent gain of MoE (extra compute, hence tokens, a dense model needs for the "
            f"MoE's test loss at compute {gain['compute']:.3g}): <b>{percent(gain['value'])}</b> "
            f"{interval((gain.get('lower'), gain.get('upper')), percent)}. The paper publishes no number defined "
            "this way; its 16.37 % is the ratio of its Table 1 α_N values (see Table 1 above).</p>"
        )
    return text


def _fitted_laws(analyses: Analyses) -> str:
    rows = []
    for family, e in analyses.loss_law.extrapolations.items():
        rows += _law_rows(f"Eq. 5, {family}, fitted without the largest model", e.law)
    for family, fit in analyses.allocation.fits.items():
        rows += _law_rows(f"Eq. 5, {family}, all runs (Table 1)", fit)
    if not rows:
        return "<p class=note>No loss law could be fitted on these runs.</p>"
    return table(["fit", "formula", "coefficient", "value", "interval"], rows, text_columns=3)


def _design_space(design: dict[str, Any], figures: dict[str, str]) -> str:
    """The design-space panel: fitted design laws, the knobs no law covers, and the planner's answer."""
    rows = []
    for name, fit in design["fits"].items():
        rows += _law_rows(f"{name} law ({fit['points']} runs)", fit)
    text = _figure("design_space", figures)
    text += (
        table(["fit", "formula", "coefficient", "value", "interval"], rows, text_columns=3) if rows else ""
    )
    text += _notes(f"{name} law not fitted: {why}" for name, why in design["skipped"].items())
    text += _notes(design["degenerate"].values())
    paired = [
        [escape(k["knob"]), escape(f"{k['variant']} ÷ {k['reference']}"), str(k["backbones"]),
         _fmt(k["ratio"]), interval(k["interval"]), escape(k["skipped"] or "")]
        for k in design["paired"]
    ]  # fmt: skip
    text += table(
        ["knob", "loss ratio", "backbones", "ratio", "95% interval", "note"], paired, text_columns=2
    )
    for name, plan in design["plans"].items():
        best, *rest = plan["choices"]
        band = interval(best["interval"]) if best["interval"] else "no interval"
        text += (
            f"<p>Planner at C = {design['plan_compute']:.3g} FLOPs by the {escape(name)} law: "
            f"<b>{escape(best['label'])}</b>, N_act {best['active_params']:.3g}, D {best['tokens']:.3g}, "
            f"loss {best['loss']:.4g} ({band}); then "
            + ", ".join(f"{escape(c['label'])} +{c['worse_by']:.3g}" for c in rest[:4])
            + ".</p>"
        )
    for name, check in design["held_out"].items():
        rank = check["rank_correlation"]
        text += (
            f"<p class=note>Held-out check of the {escape(name)} law: refitted without the largest backbone "
            f"(N_act {check['active_params']:.3g}), it predicts that backbone's {check['points']} runs to "
            f"{100 * check['mean_abs_rel_error']:.2g} % mean |error| (max {100 * check['max_abs_rel_error']:.2g} %)"
            + (f" and ranks its {check['designs']} designs with Spearman ρ = {rank:.2f}" if rank is not None else "")
            + (f"; the refit has {escape(', '.join(check['refit_on_bound']))} on a bound" if check["refit_on_bound"] else "")
            + ".</p>"
        )  # fmt: skip
    return text + _notes(design["notes"])


def _log2_interval(bounds: Any) -> str:
    """A log2 interval whose ends may be open (None: replicates at the grid's edge)."""
    if not bounds:
        return MISSING
    lo, hi = bounds
    return f"[{'−∞' if lo is None else format(lo, '+.2f')}, {'+∞' if hi is None else format(hi, '+.2f')}]"


def _lr_transfer(result: dict[str, Any], figures: dict[str, str]) -> str:
    """The learning-rate transfer panel: each width's optimum, each ladder's drift and verdict, dense vs MoE."""
    h = result["grid_step"]
    rows, ladders = [], []
    for lad in result["ladders"]:
        for o in lad["optima"]:
            value = _fmt(o["lr_opt"], ".3g") if o["bound"] is None else (
                f"≤ {o['best_cell_lr']:.3g}" if o["bound"] == "below" else f"≥ {o['best_cell_lr']:.3g}"
            )  # fmt: skip
            rows.append([escape(lad["design"]), escape(lad["parametrization"]), str(o["width"]),
                         f"{o['lrs']} × {o['seeds']}", _fmt(o["best_cell_lr"], ".3g"),
                         _fmt(o["best_cell_loss"], ".4g"), value,
                         interval(o["interval"], lambda v: format(v, ".3g")), escape(o["note"] or "")])  # fmt: skip
        sigma = "" if lad["sigma"] is None else f"{lad['sigma']:.3g} ({escape(lad['sigma_source'])})"
        ladders.append([escape(lad["design"]), escape(lad["parametrization"]), _fmt(lad["drift"], "+.2f"),
                        _log2_interval(lad["drift_interval"]), _fmt(lad["drift_steps"], "+.2f"),
                        _fmt(None if lad["spread"] is None else lad["spread"] / h, ".2f"), sigma,
                        f"<span class={lad['verdict']}>{escape(lad['verdict'])}</span>",
                        escape(lad["reason"])])  # fmt: skip
    text = _figure("lr_transfer", figures)
    text += table(["design", "param.", "width", "LRs × seeds", "best cell", "its loss", "lr_opt", "95% interval",
                   "note"],
                  rows, text_columns=2)  # fmt: skip
    text += table(
        ["design", "param.", "drift (log2 / doubling)", "95% interval", "drift (√2 steps / doubling)",
         "spread (steps)", "σ per seed", "verdict", "why"], ladders, text_columns=2,
    )  # fmt: skip
    pairs = [
        [escape(c["parametrization"]), escape(c["moe"]),
         "; ".join(f"w{r['width']}: {number(r['difference'], '+.2f')} {_log2_interval(r['interval'])}"
                   for r in c["per_width"]) or MISSING,
         _fmt(c["mean"], "+.2f"), _log2_interval(c["mean_interval"]), escape(c["verdict"])]
        for c in result["dense_vs_moe"]
    ]  # fmt: skip
    if pairs:
        text += (
            "<p>Is dense's optimum MoE's? log2 lr_opt(MoE) − log2 lr_opt(dense), per width and averaged:</p>"
        )
        text += table(["param.", "MoE design", "per width (log2, 95% interval)", "mean", "95% interval",
                       "verdict"], pairs, text_columns=3)  # fmt: skip
    return text + _notes(
        [
            *result["notes"],
            f"verdicts judge every difference against one grid step h = {h:g} log2 with its 95 % interval: "
            "transfers (all inside ±h), drifts (one outside), inconclusive (else); a width whose lowest cell is "
            "its grid's edge only bounds its optimum and is never used as a value",
        ]
    )


def _downstream(summary: dict[str, Any]) -> str:
    rows = summary["downstream"]
    if not rows:
        return (
            "<p class=note>No downstream scores are stored: run <code>archscale eval RUN_ID --tasks …</code> "
            "to add them.</p>"
        )
    body = [
        [escape(r["model"] or r["run_id"]), escape(r["task"]), escape(r["metric"]), _fmt(r["value"], ".3f"),
         _fmt(r["stderr"], ".3f"), _fmt(r["chance"], ".3f"), str(r["n"]),
         {True: "at chance", False: "above chance", None: MISSING}[r["near_chance"]]]
        for r in rows
    ]  # fmt: skip
    header = ["model", "task", "metric", "score", "stderr", "chance", "n", "vs chance"]
    at_chance = any(r["near_chance"] for r in rows)
    return table(header, body, text_columns=3) + (
        "<p class=note>Scores within two standard errors of chance say nothing about the models: at this "
        "scale that is expected.</p>"
        if at_chance
        else ""
    )


def _predicted_ends(summary: dict[str, Any]) -> str:
    """Where each unfinished run will end, by the annealing law fitted on its model's runs."""
    rows = summary.get("predicted_ends") or []
    if not rows:
        return ""
    body = [
        [escape(r["run_id"]), str(r["reached"]), str(r["steps"]), _fmt(r["predicted"], ".4f"),
         interval((r["lower"], r["upper"]), lambda v: _fmt(v, ".4f")) if r["no_interval"] is None
         else escape(r["no_interval"])]
        for r in rows
    ]  # fmt: skip
    header = [
        "unfinished run",
        "reached step",
        "planned steps",
        "predicted final loss",
        "95 % prediction interval",
    ]
    return (
        "<p>Where each unfinished run will end: the annealing law fitted on the curves of its model's runs, at "
        "its planned last step; the interval is a new run's (a fresh run effect), so it errs wide for a run "
        "the fit has partly seen.</p>" + table(header, body, text_columns=1)
    )


def _downstream_chain(chain: dict[str, Any], figures: dict[str, str]) -> str:
    """The two-step chain's figure and each task's forecast of the largest size, or why there is none."""
    if not chain["panels"]:
        return f"<p class=note>{escape(chain['note'])}</p>"
    rows, notes = [], []
    for panel in chain["panels"]:
        sizes = ", ".join(f"{s:.3g}" for s in panel["sizes"])
        how = (
            "fitted without it"
            if panel["held_out"]
            else f"fitted on all {len(panel['sizes'])} sizes (in-sample)"
        )
        notes.append(
            f"{panel['family']}: sizes (params) {sizes}; the largest is forecast by the chain {how}."
        )
        for r in panel["predictions"]:
            why = r.get("skipped") or r.get("unpredictable") or r.get("no_interval") or ""
            rows.append(
                [escape(panel["family"]), escape(str(r["task"])), _fmt(r["params"], ".3g"), _fmt(r["tokens"], ".3g"),
                 _fmt(r["measured_accuracy"], ".3f"), _fmt(r.get("accuracy"), ".3f"),
                 interval(r.get("accuracy_interval"), lambda v: f"{v:.3f}"),
                 _fmt(r["measured_task_loss"], ".4f"), _fmt(r.get("task_loss"), ".4f"),
                 interval(r.get("task_loss_interval"), lambda v: f"{v:.4f}"), escape(why)]
            )  # fmt: skip
    header = ["family", "task", "params", "tokens", "measured accuracy", "forecast", "95 % interval",
              "measured task loss", "forecast", "95 % interval", "why no forecast or interval"]  # fmt: skip
    return (
        "<p>The two-step method of Bhagia et al. 2024: step 1 fits each task's loss (bits per byte of the "
        "correct answer) as A/N^α + B/D^β + E on each run's last-5 mean; step 2 fits accuracy as a sigmoid of "
        "that loss on every checkpoint. Intervals: a run-level bootstrap through both steps plus a new run's "
        "noise (calibrated at 94–97 % on synthetic ladders). A task at chance or with a flat slope at this "
        "scale gets no forecast, and the table says why.</p>"
        + _figure("downstream_chain", figures)
        + table(header, rows, text_columns=2)
        + _notes(notes)
    )


def _branches(summary: dict[str, Any]) -> str:
    rows = summary.get("branch_predictions") or []
    if not rows:
        return _predicted_ends(summary) + (
            "<p class=note>No cooldown branches with a finished trunk: nothing to predict from a trunk.</p>"
        )
    body = [
        [escape(r["law"]), escape(r["run_id"]), escape(r["trunk_id"]), str(r["step"]), _fmt(r["observed"], ".4f"),
         _fmt(r["predicted"], ".4f"), _fmt(100 * r["error"], "+.2f") + " %"]
        for r in rows
    ]  # fmt: skip
    header = ["law", "branch", "trunk", "final step", "measured", "predicted from the trunk", "error"]
    summary_lines = []
    for law in dict.fromkeys(r["law"] for r in rows):
        errors = [abs(r["error"]) for r in rows if r["law"] == law]
        summary_lines.append(
            f"{law}: mean |error| {100 * sum(errors) / len(errors):.2f} %, max {100 * max(errors):.2f} % "
            f"over {len(errors)} branches"
        )
    return _predicted_ends(summary) + (
        "<p class=note>Each cooldown branch's final (smoothed training) loss predicted by a whole-curve law "
        "fitted on its trunk's curve alone — the trunk never saw the branch's earlier decay — and what the "
        "branch then measured. No intervals: a fit on one curve cannot tell a run's own offset from the law, "
        "and the whole-curve laws' intervals need at least three runs (RESULTS.md).</p>"
        + table(header, body, text_columns=3)
        + _notes(summary_lines)
    )


def _inventory(summary: dict[str, Any]) -> str:
    rows = [
        [escape(r["run_id"]), escape(r["model_name"] or ""), escape(r["kind"]), escape(r["status"]),
         _fmt(r["N"], ".3g"), _fmt(r["P_active"], ".3g"), _fmt(r["D"], ".3g"), _fmt(r["C"], ".3g"),
         str(r["batch_size"]), _fmt(r["lr"], ".3g"), _fmt(r["epochs"], ".2g"), _fmt(r["final_train_loss"], ".4f"),
         _fmt(r["final_test_loss"], ".4f"), _fmt(r["final_test_bpb"], ".4f"), _fmt(r["wall_time"], ".0f")]
        for r in summary["runs"]["inventory"]
    ]  # fmt: skip
    header = ["run", "model", "kind", "status", "N (FLOPs/token)", "active params", "tokens", "compute",
              "batch (seq.)", "peak LR", "epochs", "final train loss", "test loss", "test bits/byte",
              "wall (s)"]  # fmt: skip
    runs = summary["runs"]
    warning = ""
    if runs.get("over_one_epoch"):
        warning = (
            f"<p class=note><b>Repeated data:</b> {runs['over_one_epoch']} runs went over their training data "
            f"more than once (up to {runs['max_epochs']:.2g} epochs). Repeated tokens are worth less than new "
            "ones (Muennighoff et al. 2023), which bends the fitted laws: use a larger corpus for these budgets."
            "</p>"
        )
    return warning + table(header, rows, text_columns=4)


def _environment(summary: dict[str, Any]) -> str:
    env = summary["environment"]
    labels = {
        "store": "results store",
        "corpus_fingerprints": "corpus fingerprint(s)",
        "bootstrap": "bootstrap resamples",
        "study_wall_time_s": "study wall time (s)",
    }
    rows = [
        ["generated", env["generated"]],
        ["machine", f"{env['system']}, {env['machine']}, {env['cpus']} CPUs {env['processor'] or ''}"],
        ["python", env["python"]],
        *[[name, v or "not installed"] for name, v in env["packages"].items()],
        *[[label, _plain(summary[k])] for k, label in labels.items() if summary.get(k) is not None],
    ]
    return table(["", "value"], [[escape(str(k)), escape(str(v))] for k, v in rows], text_columns=2)


def _targets(targets: list[Target]) -> str:
    rows = [
        [escape(t.target), f'<span class="{t.status.replace(" ", "-")}">{escape(t.status)}</span>',
         _fmt(t.value, ".3g"), escape(t.reason or "")]
        for t in targets
    ]  # fmt: skip
    return table(["target", "status", "value", "why not checked"], rows, text_columns=2)


def _public(public: Sequence[PublicEvidence], figures: dict[str, str]) -> str:
    """The evidence panel: the same claims on public data at real scale, labelled with source and licence."""
    if not public:
        return "<p class=note>Not included (build the report with public=True, or give --reference).</p>"
    return "".join(_evidence(i, e, figures) for i, e in enumerate(public))


def _evidence(number: int, public: PublicEvidence, figures: dict[str, str]) -> str:
    d = public.dataset
    text = (
        f"<h3>{escape(d['name'])}</h3><p>{escape(d['citation'])}. Source: {escape(d['source'])}. Licence: "
        f"{escape(d['licence'])}. Runs: {escape(public.selection)}.</p>"
        + _verdict_table(public.verdicts)
        + _notes(public.notes)
    )
    if public.allocation is not None:
        text += _clark_tables(public)
    text += _alpha_identification(public.alpha_identification)
    if public.hyperparams is not None:
        h = public.hyperparams
        text += (
            f"<p>{len(h.batch_optima)} batch-size and {len(h.lr_optima)} learning-rate optima on {len(h.grids)} "
            "grids (one per model and token budget).</p>"
            + _figure(f"public{number}_batch_size_law", figures)
            + _power_fits(h.batch_fits, h.batch_comparison)
            + _figure(f"public{number}_lr_law", figures)
            + _power_fits(h.lr_fits, h.lr_comparison)
            + _fair(public.fair)
        )
    return text


def _clark_tables(public: PublicEvidence) -> str:
    rows = [
        [escape(r["architecture"]), escape(r["source"] + (" — degenerate fit" if r["degenerate"] else "")),
         _fmt(r["alpha_N"], ".3f"), interval((r["alpha_N_lo"], r["alpha_N_hi"]))]
        for r in public.allocation.table.to_dict(orient="records") if r["this_study"]
    ]  # fmt: skip
    text = table(["Table 1 row", "source", "α_N", "interval"], rows, text_columns=2)
    text += _notes(public.allocation.degenerate.values())
    laws = _law_rows("Eq. 4, all E", public.clark_fit) + _law_rows(
        "Eq. 4, E < 100", public.clark_fit_below_100
    )
    text += table(["fit", "formula", "coefficient", "value", "interval"], laws, text_columns=3)
    slopes = [
        [f"{s.params / 1e6:.0f}M", _fmt(s.b, ".4f"), interval((s.lower, s.upper)), str(s.n_runs)]
        for s in public.expert_slopes
    ]
    text += table(["model size (dense parameters)", "b: d log10 L / d log10 E", "interval", "runs"], slopes)
    return text + (
        "<p class=note>b closer to 0 at larger sizes means each doubling of the experts buys less: the shrinking "
        "benefit behind Clark's interaction term c and the paper's advice to use Eq. 5 only for E &lt; 100.</p>"
    )


def render_page(
    analyses: Analyses,
    summary: dict[str, Any],
    headline: Headline,
    figures: dict[str, str],
    public: Sequence[PublicEvidence] = (),
) -> str:
    """The whole report page; ``headline``: the one the terminal prints, for its claims and targets."""
    counts = ", ".join(f"{n} {escape(status)}" for status, n in summary["runs"]["by_status"].items())
    sections = [
        ("Replication verdicts", _verdicts(analyses) + _notes(headline.claims)),
        ("Public evidence at real scale", _public(public, figures)),
        ("Targets of the study's design", _targets(headline.targets)),
        ("Loss law and extrapolation (Figure 1)", _figure("loss_extrapolation", figures) + _extrapolation(analyses)),
        ("Compute-optimal allocation (Table 1)", _allocation(analyses) + _figure("allocation", figures)),
        ("Optimal batch size and learning rate (Figures 2–5)", _hyperparams(analyses, figures)),
        ("Gradient noise scale", _figure("noise_scale", figures)
         + _power_fits(analyses.noise.fits, analyses.noise.comparison)
         + (f"<p class=note>Skipped: {escape(analyses.noise.skipped)}</p>" if analyses.noise.skipped else "")),
        ("Generalisation (Figure 6)", _figure("generalisation", figures) + _generalisation(analyses)),
        *([("MoE design space (beyond the paper)", _design_space(summary["design_space"], figures))]
          if summary.get("design_space") else []),
        *([("Learning-rate transfer across width: SP and μP, dense and MoE (beyond the paper)",
            _lr_transfer(summary["lr_transfer"], figures))] if summary.get("lr_transfer") else []),
        ("Downstream tasks (Table 2)", _downstream(summary)),
        ("Downstream accuracy predicted from the ladder (two-step chain, beyond the paper)",
         _downstream_chain(summary["downstream_chain"], figures)),
        ("Whole training curves: branches predicted from their trunks (beyond the paper)", _branches(summary)),
        ("Fitted loss laws", _fitted_laws(analyses)),
        (f"Runs ({summary['runs']['total']}: {counts})", _inventory(summary)),
        ("Machine and software", _environment(summary)),
    ]  # fmt: skip
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>archscale report: dense vs MoE scaling</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Dense vs MoE scaling: archscale report</h1>"
        "<p class=note>Replication of Wang et al., <i>Scaling Laws Across Model Architectures: Dense vs "
        "MoE</i> (EMNLP 2024), on this study's own runs. Machine-readable values: "
        '<a href="summary.json">summary.json</a>.</p>'
        f"{body}</body></html>"
    )
