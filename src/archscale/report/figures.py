"""The study's figures, one function per figure: each takes an analysis result and a path and writes a PNG.

Matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so figures can be
drawn from any thread or process. A result that was skipped still gets its figure: a panel saying why,
so a report never shows a broken image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter

from archscale.analysis import (
    AllocationResult,
    Analyses,
    GeneralisationResult,
    Heatmap,
    HyperparamResult,
    LossLawResult,
    NoiseScaleResult,
    PowerFit,
)
from archscale.analysis.design_space import DesignSpaceResult
from archscale.analysis.downstream_chain import DownstreamPanel
from archscale.analysis.lr_transfer import LRTransferResult
from archscale.analysis.public import PublicEvidence
from archscale.laws.downstream_laws import final_values, sigmoid, step2_points
from archscale.paths import write_atomic
from archscale.report.numbers import MISSING, percent

COLOURS = {"dense": "tab:blue", "moe": "tab:orange", "joint": "tab:green"}
SIZE_COLOURS = colormaps["viridis"]  # model sizes, small (dark) to large (light)
LABELS = {"dense": "dense", "moe": "MoE", "joint": "joint (E as input)"}
NAMES = {"batch_size": "batch size (tokens)", "lr": "peak learning rate"}
DPI = 120


def _save(figure: Figure, path: str | Path) -> Path:
    return write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=DPI, format="png"))


def _note(ax: Axes, text: str) -> None:
    """A panel that only says why there is nothing to draw."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)


def _footnote(ax: Axes, reasons: Sequence[str]) -> None:
    """Why a family has no fit, written under the plot."""
    if reasons:
        text = "\n".join(f"not fitted: {reason}" for reason in reasons)
        ax.text(0.0, -0.14, text, transform=ax.transAxes, va="top", fontsize=7, wrap=True)


def _skipped(path: str | Path, title: str, reason: str) -> Path:
    figure = Figure(figsize=(6, 2.5), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title)
    _note(ax, f"skipped: {reason}")
    return _save(figure, path)


def _panels(n: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list[Axes]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return figure, axes[:n]


def _short_axis_labels(axis) -> FuncFormatter:
    """Minor tick labels at 2 and 5 × 10^k, only while the axis spans under two decades: a short log axis
    (e.g. learning rates within one decade) would otherwise show one label or none."""

    def label(value: float, _position: int) -> str:
        low, high = axis.get_view_interval()
        if value <= 0 or low <= 0 or high / low > 100:
            return ""
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
        return f"{value:.3g}" if round(mantissa) in (2, 5) else ""

    return FuncFormatter(label)


def _log_axes(ax: Axes, x: str, y: str) -> None:
    """Log-log axes. Loss axes span less than a decade, so their ticks are labelled as plain numbers; other
    axes label the decades, and 2 and 5 × 10^k as well when they span under two decades."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for axis, label in ((ax.xaxis, x), (ax.yaxis, y)):
        if "loss" in label:
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(FormatStrFormatter("%g"))
        else:
            axis.set_minor_formatter(_short_axis_labels(axis))


def _interval(value: float | None, lower: float | None, upper: float | None, fmt: str = ".3g") -> str:
    if value is None:
        return MISSING
    if lower is None or upper is None:
        return f"{value:{fmt}}"
    return f"{value:{fmt}} [{lower:{fmt}}, {upper:{fmt}}]"


def _power_fit(ax: Axes, fit: PowerFit, colour: str, label: str, linestyle: str = "-") -> None:
    """A fitted power law with its bootstrap band."""
    if fit.skipped or not fit.x:
        return
    exponent = fit.fit["coefficients"]["exponent"]
    ax.plot(
        fit.x,
        fit.predicted,
        color=colour,
        linestyle=linestyle,
        label=f"{label} fit (exponent {exponent:.3g})",
    )
    if fit.lower:
        ax.fill_between(fit.x, fit.lower, fit.upper, color=colour, alpha=0.2, linewidth=0)


# ---- Figure 1: loss law and extrapolation -------------------------------------------------------------
def loss_extrapolation_figure(result: LossLawResult, path: str | Path) -> Path:
    """Observed (smoothed) training curves, the law fitted on the smaller models (dashed) and its prediction
    of the held-out largest model with its prediction interval (a new run) and the narrower band of the
    fitted curve, for dense, MoE and the joint fit; where the runs' schedules were read, the curve-ladder
    law's prediction of the same curve under its own schedule (purple, dashed) beside it."""
    title = "Loss law (Eq. 5) fitted on the smaller models, largest predicted"
    if result.skipped:
        return _skipped(path, title, result.skipped)
    figure, axes = _panels(len(result.extrapolations))
    figure.suptitle(title)
    for ax, (family, extrapolation) in zip(axes, result.extrapolations.items(), strict=True):
        if extrapolation.skipped:
            ax.set_title(LABELS[family])
            _note(ax, f"skipped: {extrapolation.skipped}")
            continue
        fitted = [c for c in extrapolation.curves if c.role == "fit"]
        sizes = sorted({c.model_scale for c in fitted})
        shades = dict(zip(sizes, np.linspace(0.25, 0.85, len(sizes)), strict=True))
        for curve in fitted:
            colour = COLOURS[curve.kind]
            ax.plot(curve.tokens, curve.observed, color=colour, alpha=shades[curve.model_scale], linewidth=1)
            ax.plot(
                curve.tokens,
                curve.predicted,
                color=colour,
                alpha=shades[curve.model_scale],
                linestyle="--",
                linewidth=1,
            )
        for curve in (c for c in extrapolation.curves if c.role == "held out"):
            ax.plot(
                curve.tokens,
                curve.observed,
                color="black",
                linewidth=1.5,
                label=f"held out {curve.kind}, N={curve.model_scale:.3g}",
            )
            ax.plot(
                curve.tokens, curve.predicted, color="red", linestyle="--", linewidth=1.5, label="prediction"
            )
            bands = (
                (curve.prediction_lower, curve.prediction_upper, 0.12, "prediction interval (new run)"),
                (curve.lower, curve.upper, 0.3, "curve band"),
            )
            for lower, upper, alpha, label in bands if curve.lower else ():
                ax.fill_between(
                    curve.tokens, lower, upper, color="red", alpha=alpha, linewidth=0, label=label
                )
        overlay = extrapolation.curve_law
        for curve in overlay.curves if overlay else ():
            ax.plot(curve.tokens, curve.predicted, color="tab:purple", linestyle="--", linewidth=1.5,
                    label="curve-ladder law (own schedule)")  # fmt: skip
        if overlay and overlay.skipped:
            _footnote(ax, [f"curve-ladder law: {overlay.skipped}"])
        _log_axes(ax, "tokens D", "training loss (nats/token, smoothed)")
        inside = (
            f"inside: prediction interval {percent(extrapolation.prediction_coverage, '.2f')}, "
            f"curve band {percent(extrapolation.coverage, '.2f')}"
            if extrapolation.coverage is not None
            else "no interval"
        )
        final = (
            f"\nfinal point |error|: Eq. 5 {percent(overlay.eq5_final_abs_rel_error, '.2f')}, curve-ladder "
            f"{percent(overlay.final_abs_rel_error, '.2f')}"
            if overlay and not overlay.skipped
            else ""
        )
        ax.set_title(
            f"{LABELS[family]}\nerror mean {percent(extrapolation.mean_abs_rel_error, '.2f')}, "
            f"max {percent(extrapolation.max_abs_rel_error, '.2f')}\n{inside}{final}",
            fontsize=8,
        )
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[:5], labels[:5], fontsize=7)
    return _save(figure, path)


# ---- Table 1 as a figure ------------------------------------------------------------------------------
def allocation_figure(result: AllocationResult, path: str | Path) -> Path:
    """α_N and α_D of every Table 1 row: published values as grey dots, this study's with intervals."""
    table = result.table
    figure, axes = _panels(2, width=4.6, height=0.45 * len(table) + 1.2)
    figure.suptitle("Compute-optimal allocation: N_opt ∝ C^α_N, D_opt ∝ C^α_D")
    rows = np.arange(len(table))[::-1]
    for ax, name in zip(axes, ("alpha_N", "alpha_D"), strict=True):
        ours = table["this_study"].to_numpy(dtype=bool)
        ax.scatter(table.loc[~ours, name], rows[~ours], color="grey", zorder=3)
        for y, (_, row) in zip(rows[ours], table[ours].iterrows(), strict=True):
            colour = COLOURS["moe" if "MoE" in row["architecture"] else "dense"]
            ax.scatter(row[name], y, color=colour, zorder=3)
            if np.isfinite(row[f"{name}_lo"]):
                ax.plot([row[f"{name}_lo"], row[f"{name}_hi"]], [y, y], color=colour, linewidth=2)
        ax.set_yticks(rows, table["architecture"], fontsize=8)
        ax.set_xlabel(name.replace("alpha_", "α_"))
        ax.grid(axis="x", alpha=0.3)
    if result.skipped:
        axes[0].set_title("; ".join(f"{k}: skipped" for k in result.skipped), fontsize=8)
    return _save(figure, path)


# ---- Figures 2 and 4: loss heatmaps with the optimum line ---------------------------------------------
def _edges(values: Sequence[float]) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended by half a step at both ends."""
    logs = np.log(np.asarray(values, dtype=float))
    if len(logs) == 1:
        return np.exp(logs[0] + np.array([-0.5, 0.5]))
    mids = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]]))


def _heatmaps(result: HyperparamResult, path: str | Path, axis: str, title: str) -> Path:
    maps: list[Heatmap] = [h for h in result.heatmaps if h.axis == axis]
    if not maps:
        return _skipped(path, title, result.skipped or f"no grid varies the {NAMES[axis]}")
    figure, axes = _panels(len(maps))
    figure.suptitle(title)
    other = "lr" if axis == "batch_size" else "batch_size"
    for ax, heat in zip(axes, maps, strict=True):
        mesh = ax.pcolormesh(
            _edges(heat.values), _edges(heat.tokens), np.asarray(heat.loss, dtype=float).T, cmap="viridis"
        )
        figure.colorbar(mesh, ax=ax, label="smoothed training loss")
        ax.plot(heat.optimum, heat.tokens, color="red", marker=".", linewidth=1.5, label="lowest loss")
        _log_axes(ax, NAMES[axis], "tokens")
        ax.set_title(f"{LABELS[heat.kind]} N={heat.model_scale:.3g}, {other} = {heat.fixed:.3g}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    return _save(figure, path)


def batch_heatmap_figure(result: HyperparamResult, path: str | Path) -> Path:
    """Paper Figure 2: loss over (batch size, tokens) at a fixed LR, the red line through each row's minimum."""
    return _heatmaps(result, path, "batch_size", "Training loss over batch size and tokens (fixed LR)")


def lr_heatmap_figure(result: HyperparamResult, path: str | Path) -> Path:
    """Paper Figure 4: loss over (LR, tokens) at a fixed batch size, the red line through each row's minimum."""
    return _heatmaps(result, path, "lr", "Training loss over learning rate and tokens (fixed batch size)")


# ---- Figures 3 and 5: optimum against loss, log-log ---------------------------------------------------
def _optimum_law(result: HyperparamResult, path: str | Path, axis: str, title: str) -> Path:
    if result.skipped:
        return _skipped(path, title, result.skipped)
    optima = result.batch_optima if axis == "batch_size" else result.lr_optima
    fits = result.batch_fits if axis == "batch_size" else result.lr_fits
    comparison = result.batch_comparison if axis == "batch_size" else result.lr_comparison
    if not optima:
        return _skipped(path, title, "; ".join(fit.skipped for fit in fits.values() if fit.skipped))
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for family, fit in fits.items():
        colour = COLOURS[family]
        rows = [o for o in optima if o["kind"] == family]
        inside = [o for o in rows if not o["at_edge"]]
        edge = [o for o in rows if o["at_edge"]]
        if inside:
            ax.scatter(
                [o["loss"] for o in inside],
                [o[axis] for o in inside],
                color=colour,
                s=14,
                label=f"{LABELS[family]} optima",
            )
        if edge:
            ax.scatter(
                [o["loss"] for o in edge],
                [o[axis] for o in edge],
                facecolors="none",
                edgecolors=colour,
                s=14,
                label=f"{LABELS[family]} at grid edge (not fitted)",
            )
        _power_fit(ax, fit, colour, LABELS[family])
    _log_axes(ax, "training loss L (smoothed)", f"optimal {NAMES[axis]}")
    if comparison is not None:
        title += (
            f"\nMoE ÷ dense at L = {comparison.reference:.3g}: "
            f"{_interval(comparison.ratio, comparison.lower, comparison.upper)}; "
            f"band overlap {percent(comparison.band_overlap)}"
        )
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _footnote(ax, [fit.skipped for fit in fits.values() if fit.skipped])
    return _save(figure, path)


def batch_size_law_figure(result: HyperparamResult, path: str | Path, source: str = "") -> Path:
    """Paper Figure 3: B_opt against L for dense and MoE with the fits B_opt = λ_B / L^α_B and their bands;
    ``source`` names where the runs come from (public data) in the title."""
    return _optimum_law(result, path, "batch_size", f"Optimal batch size vs loss{source}")


def lr_law_figure(result: HyperparamResult, path: str | Path, source: str = "") -> Path:
    """Paper Figure 5: lr_opt against L for dense and MoE with the fits lr_opt = λ / L^α and their bands."""
    return _optimum_law(result, path, "lr", f"Optimal learning rate vs loss{source}")


# ---- Noise scale ---------------------------------------------------------------------------------------
def noise_scale_figure(
    result: NoiseScaleResult, path: str | Path, hyperparams: HyperparamResult | None = None
) -> Path:
    """Measured B_simple against the loss for dense and MoE, with their fits, next to the B_opt(L) fits."""
    title = "Gradient noise scale B_simple vs loss"
    if result.skipped:
        return _skipped(path, title, result.skipped)
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.add_subplot()
    points = result.points
    for family, fit in result.fits.items():
        colour = COLOURS[family]
        rows = points[points["kind"] == family]
        ax.scatter(
            rows["loss"],
            rows["noise_scale"],
            color=colour,
            s=6,
            alpha=0.4,
            label=f"{LABELS[family]} B_simple",
        )
        _power_fit(ax, fit, colour, f"{LABELS[family]} B_simple")
        if hyperparams is not None and family in hyperparams.batch_fits:
            _power_fit(ax, hyperparams.batch_fits[family], colour, f"{LABELS[family]} B_opt", linestyle=":")
    _log_axes(ax, "training loss L (smoothed)", "B_simple, B_opt (tokens)")
    if result.comparison is not None:
        c = result.comparison
        title += f"\nMoE ÷ dense at L = {c.reference:.3g}: {_interval(c.ratio, c.lower, c.upper)}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _footnote(ax, [fit.skipped for fit in result.fits.values() if fit.skipped])
    return _save(figure, path)


# ---- Figure 6: generalisation --------------------------------------------------------------------------
def generalisation_figure(result: GeneralisationResult, path: str | Path) -> Path:
    """Test loss against compute; filled points are the stable interval the power laws are fitted on."""
    title = "Test loss vs training compute"
    if result.skipped:
        return _skipped(path, title, result.skipped)
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.add_subplot()
    points = result.points
    for family, fit in result.fits.items():
        colour = COLOURS[family]
        rows = points[points["kind"] == family]
        stable = rows["stable"].to_numpy(dtype=bool)
        ax.scatter(
            rows["compute"][stable],
            rows["loss"][stable],
            color=colour,
            s=14,
            label=f"{LABELS[family]} (fitted)",
        )
        ax.scatter(
            rows["compute"][~stable],
            rows["loss"][~stable],
            facecolors="none",
            edgecolors=colour,
            s=14,
            label=f"{LABELS[family]} (before the stable interval)",
        )
        _power_fit(ax, fit, colour, LABELS[family])
    _log_axes(ax, "training compute C = N·D (FLOPs)", "test loss (nats/token)")
    if result.loss_ratio is not None:
        c, gain = result.loss_ratio, result.data_efficiency_gain or {}
        title += (
            f"\nat C = {c.reference:.3g}: test loss MoE ÷ dense {_interval(c.ratio, c.lower, c.upper, '.4g')}"
            f"\ncompute-equivalent gain {_interval(gain.get('value'), gain.get('lower'), gain.get('upper'), '.1%')}"
        )
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _footnote(ax, [fit.skipped for fit in result.fits.values() if fit.skipped])
    return _save(figure, path)


def public_figures(public: Sequence[PublicEvidence], out_dir: str | Path) -> dict[str, Path]:
    """Figures 3 and 5 of each public data set with batch-size and LR grids, named ``public<i>_…``."""
    out, figures = Path(out_dir), {}
    for i, evidence in enumerate(public):
        if evidence.hyperparams is not None:
            source = f" ({evidence.dataset['name']})"
            for name, draw in (("batch_size_law", batch_size_law_figure), ("lr_law", lr_law_figure)):
                figures[f"public{i}_{name}"] = draw(
                    evidence.hyperparams, out / f"public{i}_{name}.png", source
                )
    return figures


def write_figures(analyses: Analyses, out_dir: str | Path) -> dict[str, Path]:
    """Every figure of a study into ``out_dir``; returns name → path."""
    out = Path(out_dir)
    h = analyses.hyperparams
    return {
        "loss_extrapolation": loss_extrapolation_figure(analyses.loss_law, out / "loss_extrapolation.png"),
        "allocation": allocation_figure(analyses.allocation, out / "allocation.png"),
        "batch_heatmap": batch_heatmap_figure(h, out / "batch_heatmap.png"),
        "lr_heatmap": lr_heatmap_figure(h, out / "lr_heatmap.png"),
        "batch_size_law": batch_size_law_figure(h, out / "batch_size_law.png"),
        "lr_law": lr_law_figure(h, out / "lr_law.png"),
        "noise_scale": noise_scale_figure(analyses.noise, out / "noise_scale.png", h),
        "generalisation": generalisation_figure(analyses.generalisation, out / "generalisation.png"),
    }


def design_space_figure(result: DesignSpaceResult, path: str | Path) -> Path:
    """Final loss against each design knob, one line per backbone (one colour each) at its longest budget:
    experts (dense = 1), granularity, and the two categorical knobs (shared expert, loss-free balancing)
    against their reference designs. Backbones train different budgets, so compare designs within a line."""
    figure = Figure(figsize=(10, 7.5), layout="constrained")
    axes = figure.subplots(2, 2).ravel()
    points = result.points
    longest = points[points["tokens"] == points.groupby("backbone")["tokens"].transform("max")]
    colours = {b: f"C{i}" for i, b in enumerate(sorted(points["backbone"].unique()))}
    plain = longest[
        (longest["shared"] == 0) & (longest["router_score"] == "softmax") & (longest["balance"] == "aux_loss")
    ]
    panels = (
        ("experts E (dense = 1), granularity 1", plain[plain["granularity"] == 1], "experts"),
        (
            f"granularity G at E = {result.base_experts}",
            plain[plain["experts"] == result.base_experts],
            "granularity",
        ),
    )
    for ax, (label, rows, knob) in zip(axes[:2], panels, strict=True):
        if rows[knob].nunique() < 2:
            _note(ax, f"one value of {knob} only: nothing to compare")
            continue
        for backbone, group in rows.groupby("backbone"):
            group = group.groupby(knob, as_index=False)["loss"].mean().sort_values(knob)
            ax.plot(
                group[knob], group["loss"], marker="o", color=colours[backbone], label=_backbone(backbone)
            )
        values = sorted(rows[knob].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.set(xlabel=label, ylabel="final loss (nats/token)")
        ax.legend(fontsize=7, title="backbone d_model × layers", title_fontsize=7)
    for ax, paired in zip(axes[2:], result.paired, strict=False):
        if paired.skipped:
            _note(ax, f"{paired.knob}: {paired.skipped}")
            continue
        ratio = f"{paired.variant} ÷ {paired.reference}: {paired.ratio:.3f} [{paired.interval[0]:.3f}, {paired.interval[1]:.3f}]"
        for pair in sorted(paired.longest, key=lambda p: p["backbone"]):
            ax.plot([0, 1], [pair["reference"], pair["variant"]], marker="o", color=colours[pair["backbone"]],
                    label=_backbone(pair["backbone"]))  # fmt: skip
        ax.set_xticks([0, 1], [paired.reference, paired.variant], fontsize=8)
        ax.set(ylabel="final loss (nats/token)", title=ratio)
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
    figure.suptitle("MoE design space at each backbone's longest budget (budgets differ between backbones)")
    return _save(figure, path)


def lr_transfer_figure(result: LRTransferResult, path: str | Path) -> Path:
    """The LR optimum against width, one line per design and parametrisation (solid μP/CompleteP, dashed
    SP), with each width's 95 % interval; a width whose optimum is only a bound (its grid's edge) is a
    triangle pointing the way the optimum lies, and is not joined to the line."""
    if not result.ladders:
        return _skipped(path, "Learning-rate transfer", "no ladder with two or more widths")
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    ax = figure.add_subplot()
    designs = sorted({ladder.design for ladder in result.ladders})
    colours = {design: f"C{i}" for i, design in enumerate(designs)}
    for ladder in result.ladders:
        style = "--" if ladder.parametrization == "sp" else "-"
        valued = [o for o in ladder.optima if o.lr_opt is not None]
        label = f"{ladder.design}, {ladder.parametrization}" + (
            f" (drift {ladder.drift:+.2f} log2/doubling)" if ladder.drift is not None else ""
        )
        widths = np.array([o.width for o in valued], dtype=float)
        lr = np.array([o.lr_opt for o in valued], dtype=float)
        ax.plot(widths, lr, style, marker="o", color=colours[ladder.design], label=label)
        for o in valued:
            if o.interval is not None:
                lo, hi = o.interval
                ax.vlines(
                    o.width,
                    lo or o.lr_opt,
                    hi or o.lr_opt,
                    color=colours[ladder.design],
                    alpha=0.5,
                    linestyles=style,
                )  # an open end (replicates at the grid's edge) is not drawn
        for o in ladder.optima:
            if o.bound is not None:
                ax.plot(o.width, o.best_cell_lr, marker="v" if o.bound == "below" else "^",
                        color=colours[ladder.design], linestyle="none")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    widths = sorted({o.width for ladder in result.ladders for o in ladder.optima})
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    ax.set(xlabel="width d_model", ylabel="optimal peak learning rate (vertex of the quadratic)")
    ax.legend(fontsize=7)
    figure.suptitle("Learning-rate optimum per width (95 % intervals; triangles: the grid's edge, a bound)")
    return _save(figure, path)


def downstream_figure(panels: Sequence[DownstreamPanel], path: str | Path) -> Path:
    """The two-step chain per family and fitted task, one row each: step 1 (task loss against compute
    6·N·D: each ladder run's last-5 mean, the fit along each size's tokens) and step 2 (accuracy against
    task loss: the checkpoints step 2 was fitted on, the sigmoid); both with the largest size's forecast
    and its 95 % interval (diamond) beside what its runs measured (star)."""
    rows = [(p, task, c.law) for p in panels for task, c in p.chains.items() if c.law is not None]
    if not rows:
        return _skipped(path, "Two-step downstream chain", "no task could be fitted (see the table)")
    figure = Figure(figsize=(9.5, 3.4 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), 2, squeeze=False)
    for (panel, task, law), (loss_ax, acc_ax) in zip(rows, axes, strict=True):
        largest = panel.sizes[-1]
        mine = panel.points[panel.points["task"] == task]
        ladder = mine[mine["params"] < largest] if panel.held_out else mine
        forecasts = [r for r in panel.rows if r["task"] == task and r.get("task_loss") is not None]
        for size, runs in final_values(ladder).groupby("params"):
            colour = SIZE_COLOURS(panel.sizes.index(size) / max(len(panel.sizes) - 1, 1))
            loss_ax.scatter(
                6 * size * runs["tokens"], runs["task_loss"], s=14, color=colour, label=f"N {size:.3g}"
            )
            tokens = np.geomspace(runs["tokens"].min(), runs["tokens"].max(), 40)
            loss_ax.plot(6 * size * tokens, law.predict_task_loss({"params": np.full(40, size), "tokens": tokens}),
                         color=colour, lw=1)  # fmt: skip
        smoothed = step2_points(ladder, law.skip, law.window)
        acc_ax.scatter(
            smoothed["task_loss"], smoothed["accuracy"], s=5, color="0.6", label="ladder checkpoints"
        )
        losses = [*smoothed["task_loss"], *(r["task_loss"] for r in forecasts)]
        grid = np.linspace(0.9 * min(losses), 1.05 * max(losses), 100)
        acc_ax.plot(grid, sigmoid(law.theta_[5:], grid), color="black", lw=1, label="sigmoid fit")
        if law.chance is not None:
            acc_ax.axhline(law.chance, color="0.4", ls=":", lw=1, label="chance")
        for i, r in enumerate(forecasts):
            compute = 6 * r["params"] * r["tokens"]
            _forecast(loss_ax, i == 0, (compute, r["task_loss"]), r["task_loss_interval"],
                      (compute, r["measured_task_loss"]))  # fmt: skip
            if r["accuracy"] is not None:
                _forecast(acc_ax, i == 0, (r["task_loss"], r["accuracy"]), r["accuracy_interval"],
                          (r["measured_task_loss"], r["measured_accuracy"]), r["task_loss_interval"])  # fmt: skip
        _log_axes(loss_ax, "compute 6·N·D (FLOPs)", "task loss (bits/byte)")
        loss_ax.set_title(f"{panel.family}, {task}: step 1", fontsize=9)
        loss_ax.legend(fontsize=6)
        acc_ax.set_xlabel("task loss (bits/byte)")
        acc_ax.set_ylabel("accuracy")
        acc_ax.set_title(
            "step 2" + (": no forecast, see the table" if law.unpredictable_ else ""), fontsize=9
        )
        acc_ax.legend(fontsize=6)
    return _save(figure, path)


def _forecast(
    ax: Axes,
    labelled: bool,
    point: tuple[float, float],
    y_interval: list[float] | None,
    measured: tuple[float, float],
    x_interval: list[float] | None = None,
) -> None:
    """A forecast (diamond, its intervals as error bars) and what the run measured (star); ``labelled``:
    in the legend (the first of several)."""

    def bar(value: float, interval: list[float] | None) -> list[list[float]] | None:
        return None if interval is None else [[value - interval[0]], [interval[1] - value]]

    (x, y), label = point, "forecast, 95 % interval" if labelled else None
    ax.errorbar([x], [y], yerr=bar(y, y_interval), xerr=bar(x, x_interval), fmt="D", color="tab:red", ms=5,
                capsize=3, label=label)  # fmt: skip
    ax.scatter(*measured, marker="*", s=80, color="tab:red", label="measured" if labelled else None)


def _backbone(code: int) -> str:
    return f"{code // 1000} × {code % 1000}"
