"""``archscale plan ladder``: how sure a ladder's answer will be, and what it costs, before it is bought
(:mod:`archscale.laws.ladder`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from archscale.analysis.points import SMOOTHING_WINDOW
from archscale.analysis.seed_noise import seed_noise
from archscale.analysis.study_plan import plan_study, truth_from_dict, truth_to_dict
from archscale.analysis.suite import store_runs
from archscale.analysis.tables import law_table
from archscale.cli.laws import emit, warnings_shown
from archscale.cli.options import DEFAULT_BOOTSTRAP, BootstrapOption, given_flags
from archscale.laws.base import Law
from archscale.laws.catalogue import published
from archscale.laws.compute_optimal import optimal_allocation
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.downstream_laws import TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.ladder import (
    MICRO_NOISE,
    DesignEvaluation,
    LadderDesign,
    LadderNoise,
    evaluate_design,
    parse_spec,
    search_ladders,
)
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.saved import read_fits
from archscale.paths import write_atomic
from archscale.store import ResultsStore
from archscale.sweeps.dry_run import DEVICES, plan_runs, sweep_seconds
from archscale.sweeps.spec import load_yaml


def device_hours(design: LadderDesign, device: str, flops_factor: float = 6.0) -> float:
    """Training time of the design on one ``device`` of the dry run's table (its rate for each run's size)."""
    rate = DEVICES[device]
    seconds = sum(
        run.flops(flops_factor, design.decay) / rate(flops_factor * run.size, "dense") for run in design.runs
    )
    return seconds / 3600


def _device(name: str) -> str:
    matches = [key for key in DEVICES if key.lower().startswith(name.lower())]
    if len(matches) != 1:
        raise LawDataError(f"--device {name!r}: choose one of {', '.join(k.split(' ')[0] for k in DEVICES)}")
    return matches[0]


def _truth(law: str | None, fit: Path | None, store: Path | None) -> tuple[str, Law]:
    """The law the ladder is simulated from: a published one, a saved fit (its fitted coefficients), or Eq. 1
    fitted on a store's law points (the report's points rule)."""
    if (law is not None) + (fit is not None) > 1 or (law is None and fit is None and store is None):
        raise LawDataError(
            "give the assumed law: --law NAME (published), --fit FIT.json or --store STORE, one of them"
        )
    if law is None and fit is None:
        table, rule = law_table(store, None)
        return f"chinchilla fitted on {store} ({rule} points)", ChinchillaLaw().fit(table)
    if fit is not None:
        fits = read_fits(fit)
        if len(fits) != 1 or isinstance(fits[0][1], TwoStepLaw | ScheduleLaw):
            raise LawDataError(
                f"--fit {fit}: the planner simulates one loss law of size and tokens (chinchilla, wang, ...); "
                "this file holds a two-step chain or a whole-curve fit"
            )
        return fits[0]
    entry = published(law)
    found = next((x for x in entry.laws if isinstance(x, ChinchillaLaw)), None)
    if found is None:
        raise LawDataError(f"--law {law}: it has no loss law L(N, D) to simulate; try chinchilla-approach3")
    return f"{law} (published)", found


def _noise(store: Path | None, run: float | None, point: float | None) -> LadderNoise:
    """The noise given, else measured from the store's repeated seeds, else the micro presets' default."""
    base, note = MICRO_NOISE, ""
    if store is not None:
        with ResultsStore(store, read_only=True) as results:
            measured = seed_noise(store_runs(results), results.curve(), window=SMOOTHING_WINDOW)
        if measured is None:
            note = f"no repeated seeds in {store}; "
        base = measured or base
    if run is None and point is None:
        return LadderNoise(base.run, base.point, note + base.source)
    return LadderNoise(base.run if run is None else run, base.point if point is None else point,
                       f"given (--noise-run, --noise-point); the rest {base.source}")  # fmt: skip


def _width_text(log_width: float | None) -> str:
    return "no interval" if log_width is None else f"±{math.expm1(log_width / 2):.2%}"


def _row(evaluation: DesignEvaluation, device: str | None, flops_factor: float) -> dict[str, Any]:
    row = evaluation.to_dict()
    if device is not None:
        row["device_hours"] = {device: device_hours(evaluation.design, device, flops_factor)}
    return row


def _rows_text(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        expected = row["expected"]
        alpha = expected["alpha_N_width"]
        hours = "".join(
            f", {h:.3g} h on {d.split(' ')[0]}" for d, h in (row.get("device_hours") or {}).items()
        )
        lines.append(
            f"  {row['design']['label']}: {row['flops']:.3g} FLOPs{hours}; target loss "
            f"{_width_text(expected['target_loss_log_width'])}, α_N width "
            f"{'none' if alpha is None else f'{alpha:.3f}'}, degenerate {expected['degenerate_fraction']:.0%}, "
            f"interval given {expected['interval_fraction']:.0%} ({row['replicates']} replicates)"
        )
    return lines


SEARCH_ONLY = ("law", "fit", "store", "budget", "compute", "target_size", "target_tokens", "noise_run",
               "noise_point", "keep", "objective", "min_size")  # fmt: skip
"""Options of a search; a design file (--evaluate) gives its own law, noise and target."""


def ladder_command(
    ctx: typer.Context,
    evaluate: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Score this hand-written design (YAML: law, runs, noise, target; docs/laws.md).",
        ),
    ] = None,
    law: Annotated[str | None, typer.Option(help="Search: the assumed law, a published one.")] = None,
    fit: Annotated[
        Path | None, typer.Option(help="Search: the assumed law, a fit saved by `archscale fit`.")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Search: the ladder's budget in FLOPs.")] = None,
    compute: Annotated[
        float | None, typer.Option(help="Search: the target run's compute (its N and D: the law's optimum).")
    ] = None,
    target_size: Annotated[
        float | None,
        typer.Option(help="Search: the target's size (the law's size column), with --target-tokens."),
    ] = None,
    target_tokens: Annotated[float | None, typer.Option(help="Search: the target's tokens.")] = None,
    noise_run: Annotated[
        float | None,
        typer.Option(help="Search: log sd of a run's offset (default: the micro presets' measured)."),
    ] = None,
    noise_point: Annotated[float | None, typer.Option(help="Search: log sd of each point.")] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Search: a results store: the noise measured from its repeated seeds (and, without --law or "
            "--fit, the law fitted on its runs)."
        ),
    ] = None,
    replicates: Annotated[int, typer.Option(min=1, help="Simulated ladders per design.")] = 50,
    bootstrap: BootstrapOption = DEFAULT_BOOTSTRAP,
    keep: Annotated[int, typer.Option(min=1, help="Search: designs simulated after the screen.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the simulated ladders and their fits.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes fitting the replicates.")] = 1,
    objective: Annotated[
        str,
        typer.Option(help="Search: rank designs by the width of the target's loss (target) or of alpha_N."),
    ] = "target",
    min_size: Annotated[
        float, typer.Option(help="Search: the smallest model size a design may use (the law's size column).")
    ] = 0.0,
    device: Annotated[
        str | None,
        typer.Option(help="Also give each design's training time on this device (cpu, H100, H200)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """How wide the target's loss interval and α_N's will be for a ladder design, how often its fit is
    degenerate, and what it costs: score one design (--evaluate) or search for the best at a budget."""
    with warnings_shown():
        device_name = None if device is None else _device(device)
        options = {"bootstrap": bootstrap, "replicates": replicates, "seed": seed, "workers": workers}
        if evaluate is not None:
            if given := given_flags(ctx, SEARCH_ONLY):
                raise LawDataError(f"{given[0]} is for a search; with --evaluate the design file gives it")
            spec = parse_spec(load_yaml(evaluate.read_bytes(), str(evaluate)))
            result = evaluate_design(spec.truth, spec.design, spec.noise, spec.target, **options)
            factor = getattr(spec.truth, "flops_factor", 6.0)
            payload = _row(result, device_name, factor) | {"law": spec.truth.name, "target": spec.target}
            emit(payload, "\n".join([f"design {evaluate}:", *_rows_text([payload])]), as_json)
            return
        label, truth = _truth(law, fit, store)
        if budget is None or not budget > 0:
            raise LawDataError("--budget FLOPS: the ladder's compute, e.g. 1e19, is needed for a search")
        size = next(c for c in truth.inputs if c != "tokens")
        if compute is not None:
            if target_size is not None or target_tokens is not None:
                raise LawDataError(
                    "give the target as --compute, or as --target-size and --target-tokens, not both"
                )
            allocation = optimal_allocation(truth, compute)
            target = {size: allocation.n_opt, "tokens": allocation.d_opt}
        elif target_size is not None and target_tokens is not None:
            target = {size: target_size, "tokens": target_tokens}
        else:
            raise LawDataError("give the target: --compute C, or --target-size N and --target-tokens D")
        noise = _noise(store, noise_run, noise_point)
        goals = {"target": "target_loss_log_width", "alpha_N": "alpha_N_width"}
        if objective not in goals:
            raise LawDataError(f"--objective must be target or alpha_N, got {objective!r}")
        goal = goals[objective]
        search = search_ladders(
            truth, budget, target, noise, keep=keep, objective=goal, min_size=min_size, **options
        )
    factor = getattr(truth, "flops_factor", 6.0)
    rows = [_row(e, device_name, factor) for e in search.evaluated]
    naive = None if search.naive is None else _row(search.naive, device_name, factor)
    gain = None
    if search.naive is not None and math.isfinite(best := search.best.score(goal)):
        gain = ratio if math.isfinite(ratio := search.naive.score(goal) / best) else None
    payload = {
        "law": label,
        "budget": budget,
        "target": target,
        "noise": {"run": noise.run, "point": noise.point, "source": noise.source},
        "best": rows,
        "naive": naive,
        "objective": objective,
        "naive_over_best_width": gain,
        "screened": len(search.screened),
        "skipped": search.skipped,
    }
    text = [
        f"ladder for {label} at {budget:.3g} FLOPs, target {size} {target[size]:.3g}, tokens {target['tokens']:.3g}; "
        f"noise run {noise.run:g}, point {noise.point:g} ({noise.source})",
        f"{len(search.screened)} designs screened ({search.skipped} skipped: too large or not identifiable), "
        f"best {len(rows)} simulated:",
        *_rows_text(rows),
        "naive ladder at the same cost:",
        *(_rows_text([naive]) if naive else [f"  not simulated: {search.naive_note}"]),
    ]
    if gain is not None:
        text.append(f"the best design's {objective} interval is {gain:.2f}× narrower than the naive one's")
    elif naive is not None:
        text.append("the naive ladder gives no usable interval half the time or more: no ratio of widths")
    emit(payload, "\n".join(text), as_json)


COST_WORKERS = 2
"""CPU workers the design's training time is estimated for (the README's 2-core machine)."""


def study_plan_command(
    store: Annotated[
        Path | None,
        typer.Option(help="A results store (a pilot study): the truth and noise are measured from it."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="The truth and noise as a file (YAML or JSON; --write-truth writes one to edit)."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Plan this study preset's design (default: the store's own runs).")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Plan this sweep spec's design (YAML).")] = None,
    write_truth: Annotated[
        Path | None, typer.Option(help="Also write the truth and noise used to this file (YAML).")
    ] = None,
    replicates: Annotated[int, typer.Option(min=2, help="Simulated studies.")] = 20,
    bootstrap: BootstrapOption = 100,
    seed: Annotated[int, typer.Option(help="Seed of the simulated studies and their analyses.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes analysing the replicates.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """How wide each dense-vs-MoE claim's interval will be (test loss, α_N, B_opt, lr_opt, noise scale) and
    how often it is resolved, for a study design, by simulating the study: the truth and noise measured on a
    store (--store), given in a file (--truth), or for the micro preset the micro study's measured ones."""
    from archscale.study import (
        micro_truth,
        preset_spec_path,
        store_design,
        store_truth,
        study_design,
        study_runs,
    )

    for flag, path in (("--store", store), ("--truth", truth), ("--spec", spec)):
        if path is not None and not path.exists():
            raise LawDataError(f"{flag} {path}: no such file; give an existing path")
    if store is not None and truth is not None:
        raise LawDataError("give the truth as --store STORE (measured) or --truth FILE (given), not both")
    if preset is not None and spec is not None:
        raise LawDataError("give the design as --preset NAME or --spec SPEC.yaml, not both")
    if store is None and preset is None and spec is None:
        raise LawDataError(
            "give the design: --preset NAME or --spec SPEC.yaml (or --store STORE for its own runs)"
        )
    if preset is not None:
        preset_spec_path(preset)  # an unknown preset is named before anything else is asked for
    with warnings_shown():
        if truth is not None:
            assumed = truth_from_dict(load_yaml(truth.read_bytes(), str(truth)), str(truth))
        elif store is not None:
            assumed = store_truth(store, seed)
        elif (preset or "") == "micro" and spec is None:
            assumed = micro_truth()
        else:
            raise LawDataError(
                "give the truth: --store STORE (a pilot study) or --truth FILE; only the micro preset has a "
                "measured one built in"
            )
        if write_truth is not None:
            write_atomic(
                write_truth, yaml.safe_dump(truth_to_dict(*assumed), sort_keys=False, allow_unicode=True)
            )
        cost = None
        if preset is not None or spec is not None:
            runs = study_runs(preset or "micro", spec)[1]
            design, evals = study_design(runs)
            label = f"{len(runs)} runs of {spec or preset}"
            cost = sweep_seconds(plan_runs(runs), workers=COST_WORKERS)
        else:
            design, evals = store_design(store)
            label = f"the {len(design)} finished runs of {store}"
        plan = plan_study(
            design, evals, *assumed, replicates=replicates, bootstrap=bootstrap, seed=seed, workers=workers
        )
    payload = {"design": label, "seconds": cost, "seconds_workers": COST_WORKERS} | plan.to_dict()
    cpu = None if cost is None else next(s for k, s in cost.items() if k.startswith("cpu"))
    costs = (
        "" if cpu is None else f"; training about {cpu / 3600:.2g} h on {COST_WORKERS} CPU workers (dry run)"
    )
    text = [
        f"study design: {label}{costs}; {replicates} simulated studies (bootstrap {bootstrap})",
        f"truth: {plan.truth_source}",
        "noise: " + ", ".join(f"{k} {plan.noise[k]:.3g}" for k in plan.noise if k != "source"),
        *(f"  {claim.text()}" for claim in plan.claims),
    ]
    emit(payload, "\n".join(text), as_json)
