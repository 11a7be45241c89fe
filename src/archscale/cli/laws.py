"""``archscale laws …`` (published laws, Table 1) and the top-level ``archscale fit`` / ``archscale plan``.

``app`` is the ``laws`` sub-app; ``fit_command`` and ``plan_command`` are plain functions registered as
top-level commands.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from archscale.analysis import POINT_RULES, law_points
from archscale.analysis.curve_tables import schedule_choice, store_step_table
from archscale.analysis.curves import check_one_corpus, points_rule
from archscale.analysis.downstream_chain import chain_forecasts, fit_chains, ladder_points
from archscale.analysis.errors import AnalysisError
from archscale.analysis.suite import store_runs
from archscale.cli.options import DEFAULT_BOOTSTRAP, BootstrapOption, given_flags
from archscale.cli.shell import ArchscaleGroup
from archscale.laws.audit import extrapolation_audit
from archscale.laws.base import Law, law_class, registered_laws
from archscale.laws.catalogue import CATALOGUE, published
from archscale.laws.columns import apply_mapping, parse_mapping, read_table
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.design import (
    KNOB_COLUMNS,
    LLAMA_FFN_SHARE,
    ROUTER_COST,
    TRAINING_BYTES_PER_PARAM,
    WIDTH_PER_BLOCK,
    DesignPlan,
    design_grid,
    hyperparameters,
    plan_designs,
)
from archscale.laws.downstream_laws import TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.plan import make_plan
from archscale.laws.resampling import spawn_seeds
from archscale.laws.table1 import format_table1, table1
from archscale.paths import write_atomic
from archscale.store import ResultsStore, StoreError

app = typer.Typer(
    cls=ArchscaleGroup, help="Published scaling laws and the paper's Table 1.", no_args_is_help=True
)


@contextmanager
def warnings_shown() -> Iterator[list[str]]:
    """Warnings of the fit are collected for the output and printed as 'warning:' lines on stderr."""
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield caught
        caught.extend(str(r.message) for r in records)
    for message in caught:
        typer.echo(f"warning: {message}", err=True)


STORE_SUFFIXES: tuple[str, ...] = (".sqlite", ".db")


def load_table(
    path: Path,
    mapping: list[str] | None,
    points: str | None = None,
    kind: str | None = None,
    allow_mixed_corpora: bool = False,
    keep_duplicates: bool = False,
) -> tuple[pd.DataFrame, str | None]:
    """The table ``--data`` names, with ``--map`` applied, and the points rule used (None for a table): a
    CSV or Parquet file row by row (exact duplicate rows once, unless ``keep_duplicates``), or a results
    store's law points by the ``--points`` rule (``auto``, the points the report fits, when not given),
    optionally of one family (``kind``)."""
    if points is not None and points not in ("auto", *POINT_RULES):
        rules = ", ".join(map(repr, ("auto", *POINT_RULES)))
        raise LawDataError(f"--points must be one of {rules}, got {points!r}")
    renames = parse_mapping(mapping or [])
    if kind not in (None, "dense", "moe"):
        raise LawDataError(f"--kind must be 'dense' or 'moe', got {kind!r}")
    if not path.name.lower().endswith(STORE_SUFFIXES):
        for flag, value in (("--points", points), ("--kind", kind)):
            if value is not None:
                raise LawDataError(
                    f"{flag} applies to a results store (.sqlite, .db); {path} is a table whose rows are "
                    f"fitted as given: drop {flag}, or pass the store"
                )
        return read_table(path, renames, keep_duplicates=keep_duplicates), None
    if keep_duplicates:
        raise LawDataError(
            f"--keep-duplicates applies to a CSV or Parquet table; {path} is a results store, whose law points "
            "never repeat: drop --keep-duplicates"
        )
    try:
        with ResultsStore(path, read_only=True) as store:
            runs = store_runs(store)
            if not (runs["status"] == "finished").any():
                held = ", ".join(f"{n} {status}" for status, n in runs["status"].value_counts().items())
                raise LawDataError(
                    f"--data {path}: no finished runs to fit (the store holds {held or 'no runs'})",
                    hint=f"train some into it (`archscale sweep run SPEC --store {path}`); "
                    f"`archscale runs list --store {path}` says why runs stopped",
                )
            check_one_corpus(runs[runs["status"] == "finished"], allow_mixed_corpora)
            rule = points_rule(runs, points or "auto")
            table = law_points(runs, store.curve(), rule=rule)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    if kind is not None:
        table = table[table["kind"] == kind].reset_index(drop=True)
        if table.empty:
            raise LawDataError(f"--data {path}: no finished {kind} runs; drop --kind or train some")
    return apply_mapping(table, renames), rule


def store_curves(
    path: Path, model: str | None, kind: str | None = None, *, sizes: bool = False
) -> pd.DataFrame:
    """A results store's runs as a per-step table for the whole-curve laws: of one model, or with ``sizes``
    (a law across model sizes) of every model of one family (``kind``)."""
    try:
        with ResultsStore(path, read_only=True) as store:
            table = store_step_table(store, kind=kind)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    models = sorted(table["model"].astype(str).unique())
    if sizes:
        if model is not None:
            raise LawDataError(
                "--model: a law across model sizes reads every size of a family; pass --kind instead"
            )
        if kind is None and table["kind"].nunique() > 1:
            raise LawDataError(f"--data {path} holds dense and MoE runs; a ladder is one family: pass --kind")
        return table
    if model is None and len(models) > 1:
        raise LawDataError(
            f"--data {path} holds runs of {len(models)} models ({', '.join(models)}); a whole-curve law "
            "describes one: pass --model NAME"
        )
    if model is not None:
        if model not in models:
            raise LawDataError(f"--model {model}: no runs of it in {path}; it holds {', '.join(models)}")
        table = table[table["model"] == model]
    return table.reset_index(drop=True)


def read_fit(path: Path) -> Law:
    """A fit saved by ``archscale fit --out``; a missing or unreadable file names ``--fit`` and the fix."""
    return Law.from_dict(_saved(path))


def read_fits(path: Path) -> list[tuple[str, Law]]:
    """The labelled fits of a saved file: one, or a two-step fit's chain per task (tasks that could not be
    fitted left out), each labelled with its task."""
    data = _saved(path)
    if "tasks" in data:
        return [
            (f"{path} ({task})", Law.from_dict(fit)) for task, fit in data["tasks"].items() if "law" in fit
        ]
    return [(f"{path} ({data['task']})" if data.get("task") else str(path), Law.from_dict(data))]


def _saved(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LawDataError(
            f"--fit {path}: no such file; save one with `archscale fit ... --out FILE`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LawDataError(
            f"--fit {path}: not a saved fit ({error}); pass a file from `archscale fit --out`"
        ) from None
    if not isinstance(data, dict):
        raise LawDataError(
            f"--fit {path}: not a saved fit (a JSON object); pass a file from `archscale fit --out`"
        )
    return data


def emit(payload: dict[str, Any], text: str, as_json: bool, out: Path | None = None) -> None:
    dumped = json.dumps(payload, indent=2, default=lambda value: value.item())  # NumPy scalars
    if out is not None:  # atomically: a full disk must not leave a truncated fit in place of the old one
        try:
            write_atomic(out, dumped + "\n")
        except OSError as error:
            raise LawDataError(
                f"--out {out}: cannot write ({error.strerror}); pass a writable path (an existing fit there is kept)"
            ) from None
    typer.echo(dumped if as_json else text)


def _law(name: str, options: dict[str, Any]) -> Law:
    cls = law_class(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    for option in options:
        if option not in fields:
            flag = "--" + {"interaction": "separable"}.get(option, option).replace("_", "-")
            raise LawDataError(f"{flag} does not apply to the {name} law (it takes {sorted(fields)})")
    return cls(**options)


def _holdout(spec: str) -> tuple[str, int]:
    column, _, count = spec.partition(":")
    if not column or (count and not count.isdigit()):
        raise LawDataError(f"--holdout takes COLUMN or COLUMN:K (e.g. params:2), got {spec!r}")
    return column, int(count or 1)


PREDICT_FORM = "params=N,tokens=D (e.g. params=1e9,tokens=2e10)"


def _predict_targets(specs: list[str]) -> list[tuple[float, float]]:
    """Each ``--predict params=N,tokens=D`` as (N, D), refused with the form when it is not one."""
    targets = []
    for spec in specs:
        pairs = dict(part.partition("=")[::2] for part in spec.replace(" ", "").split(","))
        try:
            params, tokens = float(pairs.pop("params")), float(pairs.pop("tokens"))
        except (KeyError, ValueError):
            params = tokens = math.nan
        if pairs or not (0 < params < math.inf and 0 < tokens < math.inf):
            raise LawDataError(f"--predict takes {PREDICT_FORM}, each a finite number > 0; got {spec!r}")
        targets.append((params, tokens))
    return targets


def _two_step_points(
    path: Path, mapping: list[str] | None, kind: str | None, keep_duplicates: bool
) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """The checkpoint table ``--data`` names and each task's chance accuracy (known for a store only)."""
    if not path.name.lower().endswith(STORE_SUFFIXES):
        if kind is not None:
            raise LawDataError(f"--kind applies to a results store; {path} is a table: drop --kind")
        return read_table(path, parse_mapping(mapping or []), keep_duplicates=keep_duplicates), {}
    try:
        with ResultsStore(path, read_only=True) as store:
            points, chances = ladder_points(store, kind)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    return apply_mapping(points, parse_mapping(mapping or [])), chances


def _band(value: float | None, interval: list[float] | None, fmt: str) -> str:
    if value is None:
        return "–"
    return f"{value:{fmt}}" + (f" [{interval[0]:{fmt}}, {interval[1]:{fmt}}]" if interval else "")


def _forecast_lines(label: str | None, forecast: dict[str, Any]) -> list[str]:
    """One table row of a forecast, and the reason under it when it lacks an accuracy or interval."""
    if "skipped" in forecast:
        return [f"  {label or '':<14} not fitted: {forecast['skipped']}"]
    row = (
        f"  {label or '':<14} {forecast['params']:>10.4g} {forecast['tokens']:>10.4g}  "
        f"{_band(forecast['task_loss'], forecast['task_loss_interval'], '.4f'):<28} "
        f"{_band(forecast['accuracy'], forecast['accuracy_interval'], '.3f')}"
    )
    why = forecast["unpredictable"] or forecast["no_interval"]
    return [row] + ([f"  {'':<14} ({why})"] if why else [])


def _fit_two_step(
    template: TwoStepLaw,
    data: Path,
    mapping: list[str] | None,
    kind: str | None,
    keep_duplicates: bool,
    predict: list[str],
    as_json: bool,
    out: Path | None,
) -> None:
    """``archscale fit two-step``: the chain per task, each ``--predict`` target forecast by every chain."""
    targets = _predict_targets(predict)
    points, chances = _two_step_points(data, mapping, kind, keep_duplicates)
    chains = fit_chains(points, template, chances)
    if not any(chain.law for chain in chains.values()):
        raise LawDataError(
            "; ".join(f"{task + ': ' if task else ''}{c.skipped}" for task, c in chains.items())
        )
    for task, chain in chains.items():
        for message in chain.warnings:
            typer.echo(f"warning: {task + ': ' if task else ''}{message}", err=True)
    forecasts = chain_forecasts(chains, targets)
    fits = {
        task: c.law.to_dict() | {"warnings": c.warnings} if c.law else {"skipped": c.skipped}
        for task, c in chains.items()
    }
    if len(chains) == 1:
        ((task, fit),) = fits.items()
        payload = fit | {"task": task, "data": str(data), "predictions": forecasts}
    else:
        payload = {"law": template.name, "data": str(data), "tasks": fits, "predictions": forecasts}
    text = [
        f"task {task}: " + (c.law.summary() if c.law else f"not fitted: {c.skipped}")
        if task
        else c.law.summary()
        for task, c in chains.items()
    ]
    if forecasts:
        text.append(
            f"  {'task':<14} {'params':>10} {'tokens':>10}  {'task loss [95 % interval]':<28} accuracy [95 % interval]"
        )
        for forecast in forecasts:
            by_task = forecast.get("tasks") or {forecast["task"]: forecast}
            for task, entry in by_task.items():
                text += _forecast_lines(
                    task, {"params": forecast["params"], "tokens": forecast["tokens"]} | entry
                )
    emit(payload, "\n".join(text), as_json, out)


def fit_command(
    law: Annotated[str, typer.Argument(help=f"Law to fit: {', '.join(sorted(registered_laws()))}.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="CSV or Parquet table, one row per point; or a results store (.sqlite, .db)."
        ),
    ],
    points: Annotated[
        str | None,
        typer.Option(
            help="Results store only: auto (default, the points the report fits: budgets for a ladder with "
            "cooldown branches, else curves), curves (smoothed curves of one run per model size), budgets "
            "(the end of each budget's best run) or final (last point of every finished run)."
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Results store only: fit one family, dense or moe (as the report's per-family fits)."
        ),
    ] = None,
    allow_mixed_corpora: Annotated[
        bool, typer.Option(help="Results store only: fit runs trained on different corpora together.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="Results store, whole-curve laws of one size (multipower, annealing): the model whose runs to "
            "fit, e.g. dense-100k (curve-ladder reads every size of the --kind family)."
        ),
    ] = None,
    keep_duplicates: Annotated[
        bool,
        typer.Option(
            help="Table only: keep rows that repeat another row exactly (every column equal) as separate "
            "points; by default each counts once, with a warning."
        ),
    ] = False,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="COLUMN=YOUR_COLUMN to rename a column (repeatable).")
    ] = None,
    bootstrap: BootstrapOption = DEFAULT_BOOTSTRAP,
    method: Annotated[
        str | None,
        typer.Option(
            help="parametric (simulated runs with a run effect; calibrated) or resample (whole runs drawn "
            "with replacement) [default: parametric; resample for two-step, its calibrated intervals]."
        ),
    ] = None,
    holdout: Annotated[
        str | None,
        typer.Option(help="COLUMN[:K]: also fit without the K largest COLUMN values and report their error."),
    ] = None,
    resample: Annotated[str, typer.Option(help="auto (runs when run_id exists), run or point.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    size: Annotated[
        str | None, typer.Option(help="chinchilla/wang/clark/curve-ladder: params or model_scale.")
    ] = None,
    alpha_fixed: Annotated[
        float | None,
        typer.Option(
            help="curve-ladder: fix the size exponent alpha (needed with fewer than 3 model sizes)."
        ),
    ] = None,
    separable: Annotated[bool, typer.Option(help="clark: Eq. 2 without the interaction term.")] = False,
    target: Annotated[str | None, typer.Option(help="power: column to predict, e.g. batch_size.")] = None,
    inputs: Annotated[
        str | None, typer.Option(help="power: comma-separated input columns, e.g. loss.")
    ] = None,
    offset: Annotated[bool, typer.Option(help="power: add a constant offset.")] = False,
    loss: Annotated[
        str | None,
        typer.Option(
            help="huber (delta 1e-3 on log residuals) or squared; default: the law's own (squared for clark, "
            "as Clark et al. fit it; huber otherwise)."
        ),
    ] = None,
    grid: Annotated[
        str, typer.Option(help="Starting grid: default, or hoffmann (chinchilla/wang).")
    ] = "default",
    predict: Annotated[
        list[str] | None,
        typer.Option(
            help="two-step: params=N,tokens=D to forecast task loss and accuracy at (repeatable; N counts "
            "every weight but the input embedding, as the ladder's params)."
        ),
    ] = None,
    chance: Annotated[
        float | None,
        typer.Option(
            help="two-step: the task's chance accuracy (e.g. 0.25 for four choices), to refuse a task at "
            "chance [default for a store: what the bridge recorded]."
        ),
    ] = None,
    route: Annotated[
        str | None,
        typer.Option(
            help="two-step: step 1's route, direct (the task loss's own law in N, D) or loss-to-loss (N, D → "
            "validation loss → task loss, for a task whose own loss is noisy; needs val_loss at every checkpoint, "
            "which a store has from its training runs' held-out evals) [default: direct]."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the JSON fit here (for plan / table1).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
) -> None:
    """Fit a scaling law to a table; print coefficients with intervals, and the extrapolation audit."""
    with warnings_shown() as caught:
        options: dict[str, Any] = {
            "grid": grid, "bootstrap": bootstrap, "seed": seed, "resample": resample, "level": level,
        }  # fmt: skip
        given = {
            "method": method,
            "loss": loss,
            "size": size,
            "interaction": False if separable else None,
            "target": target,
            "offset": offset or None,
            "alpha_fixed": alpha_fixed,
            "chance": chance,
            "route": route,
        }
        options |= {k: v for k, v in given.items() if v is not None}
        if inputs is not None:
            options["inputs"] = tuple(c.strip() for c in inputs.split(",") if c.strip())
        estimator = _law(law, options)
        if isinstance(estimator, TwoStepLaw):
            misplaced = {"--holdout": holdout, "--points": points, "--model": model}
            if flag := next((f for f, value in misplaced.items() if value is not None), None):
                raise LawDataError(
                    f"{flag} does not apply to the two-step law: it reads every evaluated checkpoint"
                )
            _fit_two_step(estimator, data, map_, kind, keep_duplicates, predict or [], as_json, out)
            return
        if predict:
            raise LawDataError(f"--predict forecasts downstream accuracy: it applies to two-step, not {law}")
        across_sizes = isinstance(estimator, ScheduleLaw) and estimator.size_column is not None
        if isinstance(estimator, ScheduleLaw) and not across_sizes and holdout is not None:
            raise LawDataError(
                f"--holdout: the {law} law describes one model size and cannot predict a held-out one; fit "
                "curve-ladder (the law across sizes) for the audit"
            )
        if isinstance(estimator, ScheduleLaw) and data.name.lower().endswith(STORE_SUFFIXES):
            table, rule = store_curves(data, model, kind, sizes=across_sizes), None
        else:
            table, rule = load_table(data, map_, points, kind, allow_mixed_corpora, keep_duplicates)
        estimator.fit(table)
        audit = None
        if holdout is not None:
            column, count = _holdout(holdout)
            # its own stream: the audit's fit is another experiment
            audit_law = dataclasses.replace(estimator, seed=spawn_seeds(seed, 1)[0])
            audit = extrapolation_audit(audit_law, table, column=column, n_holdout=count)
    text = estimator.summary()
    if rule is not None:
        text = (
            f"law points: {POINT_RULES[rule]} ({table['run_id'].nunique()} {kind + ' ' if kind else ''}runs, "
            f"{len(table)} points) from {data}\n{text}"
        )
    if audit is not None:
        coverage = (
            f"inside the prediction interval {audit.prediction_coverage:.0%}, inside the curve band "
            f"{audit.coverage:.0%}"
            if audit.coverage is not None
            else f"no interval ({audit.law.no_interval_ or 'no bootstrap'})"
        )
        text += (
            f"\nextrapolation audit: held out {column} = {audit.held_out} ({len(audit.points)} points), "
            f"mean |rel. error| {audit.mean_abs_rel_error:.3%}, max {audit.max_abs_rel_error:.3%}, "
            f"{coverage}"
        )
    payload = estimator.to_dict() | {
        "data": str(data),
        "points_rule": rule,
        "audit": None if audit is None else audit.to_dict(),
        "warnings": caught,
    }
    emit(payload, text, as_json, out)


def _plan_text(plan: dict[str, Any]) -> str:
    intervals = plan["intervals"]
    lines = [f"compute {plan['compute']:.4g} FLOPs, experts {plan['experts']:g}"]
    for key in ("N_opt", "D_opt", "loss", "batch_size", "lr", "alpha_N", "alpha_D"):
        if plan.get(key) is not None:
            ci = f"  [{intervals[key][0]:.4g}, {intervals[key][1]:.4g}]" if key in intervals else ""
            unit = f"  ({plan['size']})" if key == "N_opt" else ""
            lines.append(f"  {key:<10} {plan[key]:.4g}{ci}{unit}")
    lines += [f"  not used: {u}" for u in plan["unused"]]
    if (choice := plan.get("schedule")) is not None:
        band = choice["wsd_final_interval"]
        ci = f"  [{band[0]:.4g}, {band[1]:.4g}]" if band else f"  (no interval: {choice['no_interval']})"
        lines += [
            f"  schedule by {choice['source']}: {choice['steps']} steps of {choice['batch_tokens']:.4g} tokens, "
            f"peak lr {choice['lr']:.4g}, warm-up {choice['warmup_steps']} (batch from "
            f"{choice['sources']['batch_size']}, lr from {choice['sources']['lr']}, warm-up "
            f"{choice['sources']['warmup']})",
            f"    WSD decay fraction {choice['wsd_decay_fraction']:g}: final loss "
            f"{choice['wsd_final_loss']:.4g}{ci}",
            f"    cosine: final loss {choice['cosine_final_loss']:.4g}",
        ]
        lines += [f"    note: {note}" for note in choice["notes"]]
    for forecast in plan.get("downstream", []):
        accuracy = _band(forecast["accuracy"], forecast["accuracy_interval"], ".3f")
        why = forecast["unpredictable"] or forecast["no_interval"]
        lines.append(
            f"  accuracy by {forecast['source']}: "
            + (
                f"not predicted ({why})"
                if forecast["accuracy"] is None
                else accuracy + (f"  (no interval: {why})" if why else "")
            )
            + f"; task loss {_band(forecast['task_loss'], forecast['task_loss_interval'], '.4f')}"
        )
    return "\n".join(lines)


def _downstream_plan(plan: dict[str, Any], chains: list[tuple[str, TwoStepLaw]]) -> list[dict[str, Any]]:
    """Each two-step fit's forecast of a run of the plan's N_opt and D_opt. The chain reads P (params);
    a plan sized in FLOPs per token (model_scale) is refused rather than converted by a guessed ratio."""
    if plan["size"] != "params":
        raise LawDataError(
            f"--fit {chains[0][0]}: the two-step chain reads params (P, every weight but the input embedding), "
            f"but the plan's N_opt is {plan['size']}; plan with a loss law in params (fit chinchilla --size "
            "params, or --law chinchilla-approach3)"
        )
    return [{"source": label} | law.forecast(plan["N_opt"], plan["D_opt"]) for label, law in chains]


def _schedule_plan(
    plan: dict[str, Any],
    curve: tuple[str, ScheduleLaw],
    batch_tokens: float | None,
    lr: float | None,
    warmup: int | None,
    min_lr_ratio: float,
) -> dict[str, Any]:
    """The planned run's schedule by a whole-curve fit: its steps (D_opt over the batch), the WSD decay
    fraction the law prefers, the final loss then and under cosine. The batch and peak LR come from the
    plan's laws, or from ``--batch-tokens`` / ``--lr`` (which, when given, take their place)."""
    label, law = curve
    notes: list[str] = []
    sources = {}
    for name, flag, given in (("batch_size", "--batch-tokens", batch_tokens), ("lr", "--lr", lr)):
        if given is not None:
            sources[name] = flag
        elif plan.get(name) is not None:
            sources[name] = plan["sources"][name]
        else:
            raise LawDataError(
                f"{flag}: the curve fit {label} needs the planned run's {name.replace('_', ' ')}; no law given "
                f"yields it: pass {flag}, or a --fit/--law that predicts it"
            )
    batch = float(batch_tokens if batch_tokens is not None else plan["batch_size"])
    peak = float(lr if lr is not None else plan["lr"])
    if not (math.isfinite(batch) and batch > 0):
        raise LawDataError(f"--batch-tokens must be a finite number of tokens > 0, got {batch:g}")
    if not (math.isfinite(peak) and peak > 0):
        raise LawDataError(f"--lr must be a finite rate > 0, got {peak:g}")
    if not 0 <= min_lr_ratio <= 1:
        raise LawDataError(f"--min-lr-ratio must lie in [0, 1], got {min_lr_ratio}")
    steps = int(plan["D_opt"] // batch)
    if steps < 2:
        raise LawDataError(
            f"--batch-tokens: D_opt {plan['D_opt']:.4g} tokens in batches of {batch:.4g} make {steps} step(s); "
            "a schedule needs ≥ 2: lower the batch or raise the compute"
        )
    warmup_steps = round(0.05 * steps) if warmup is None else warmup
    if not 0 <= warmup_steps < steps:
        raise LawDataError(f"--warmup must lie in [0, {steps}) (the planned steps), got {warmup_steps}")
    sources["warmup"] = "5 % of the steps" if warmup is None else "--warmup"
    size = None
    if law.size_column is not None:
        if law.size_column != plan["size"]:
            raise LawDataError(
                f"--fit {label}: the {law.name} fit reads {law.size_column}, but the plan's N_opt is "
                f"{plan['size']}; refit it with --size {plan['size']}"
            )
        size = plan["N_opt"]
    else:
        notes.append(
            f"the {law.name} fit describes the one model size it was fitted on, not N_opt "
            f"{plan['N_opt']:.4g}: its decay fraction and losses are that size's (fit curve-ladder across "
            "sizes to predict at N_opt)"
        )
    choice = schedule_choice(
        law, steps, peak, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio, size=size
    )
    return choice | {"source": label, "batch_tokens": batch, "size": size, "sources": sources, "notes": notes}


def _int_list(option: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise LawDataError(
            f"{option}: a comma-separated list of integers (e.g. 1,2,4), got {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise LawDataError(f"{option}: give at least one integer ≥ 0, got {text!r}")
    return values


def _design_text(
    plan: DesignPlan, hyper: tuple[dict[str, float], dict[str, str], dict[str, list[float]]]
) -> str:
    best = plan.best
    lines = [f"compute {plan.compute:.4g} FLOPs, law {plan.law} (ranks designs by {', '.join(plan.reads)})"]
    lines += [f"  note: {n}" for n in plan.notes]
    ci = (
        f"  [{best.interval[0]:.4g}, {best.interval[1]:.4g}]"
        if best.interval
        else "  (no interval: law not bootstrapped)"
    )
    capped = " (size set by the total-parameter cap)" if best.capped else ""
    lines.append(f"  best: {best.design.label}: N_act {best.active_params:.4g}, D {best.tokens:.4g}, "
                 f"total params {best.total_params:.4g}{capped}, loss {best.loss:.4g}{ci}")  # fmt: skip
    quantities, sources, intervals = hyper
    for key in ("batch_size", "lr"):
        if key in sources:
            band = f"  [{intervals[key][0]:.4g}, {intervals[key][1]:.4g}]" if key in intervals else ""
            lines.append(f"  {key}: {quantities[key]:.4g}{band}  (from {sources[key]})")
    for choice in plan.choices[1:]:
        capped = ", capped by total parameters" if choice.capped else ""
        lines.append(f"  then {choice.design.label}: loss {choice.loss:.4g} (+{choice.loss - best.loss:.3g}), "
                     f"N_act {choice.active_params:.3g}, total {choice.total_params:.3g}{capped}")  # fmt: skip
    return "\n".join(lines)


def plan_command(
    ctx: typer.Context,
    compute: Annotated[
        float | None, typer.Option("--compute", help="Training compute C in FLOPs, e.g. 1e21.")
    ] = None,
    fit: Annotated[
        list[Path] | None, typer.Option("--fit", help="A fit saved by `archscale fit --out`.")
    ] = None,
    law: Annotated[
        list[str] | None, typer.Option("--law", help="A published law (see `archscale laws list`).")
    ] = None,
    experts: Annotated[float, typer.Option(help="Number of experts E (dense = 1).")] = 1.0,
    design_space: Annotated[
        bool,
        typer.Option(
            "--design-space", help="Choose an MoE design (E, top-k, G, shared) by the first design law."
        ),
    ] = False,
    grid_experts: Annotated[str, typer.Option(help="--design-space: expert counts E (1 = dense).")] = "1,8",
    grid_top_k: Annotated[str, typer.Option(help="--design-space: active experts k.")] = "2",
    grid_granularity: Annotated[str, typer.Option(help="--design-space: granularities G.")] = "1",
    grid_shared: Annotated[str, typer.Option(help="--design-space: shared experts.")] = "0",
    max_total_params: Annotated[
        float | None, typer.Option(help="--design-space: cap on total parameters (memory).")
    ] = None,
    memory_per_gpu: Annotated[
        float | None,
        typer.Option(
            help="--design-space: GiB per GPU for the training state (16 bytes/parameter, one GPU)."
        ),
    ] = None,
    ffn_share: Annotated[
        float, typer.Option(help="--design-space: feed-forward share of the active parameters.")
    ] = LLAMA_FFN_SHARE,
    router_cost: Annotated[
        float,
        typer.Option(help="--design-space: training FLOPs per router parameter per token (0: not counted)."),
    ] = ROUTER_COST,
    width_per_block: Annotated[
        float, typer.Option(help="--design-space: d_model ÷ layers, to size the router (Krajewski et al.).")
    ] = WIDTH_PER_BLOCK,
    batch_tokens: Annotated[
        float | None,
        typer.Option(
            help="With a whole-curve --fit: tokens per step of the planned run [default: a batch law's]."
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="With a whole-curve --fit: peak learning rate [default: an LR law's]."),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help="With a whole-curve --fit: warm-up steps [default: 5 % of the steps].")
    ] = None,
    min_lr_ratio: Annotated[
        float, typer.Option(help="With a whole-curve --fit: final rate / peak rate (WSD, cosine).")
    ] = 0.1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Compute-optimal N_opt, D_opt and loss (with intervals), plus batch size and LR when a law gives them;
    with a whole-curve fit (curve-ladder, multipower, annealing), the planned run's WSD decay fraction; with
    --design-space, the MoE design too (best and runners-up). `archscale plan ladder`: plan the ladder itself."""
    if ctx.invoked_subcommand is not None:  # `archscale plan ladder …`: the ladder planner's own options
        if given := given_flags(ctx):
            raise LawDataError(
                f"{given[0]} is an option of `archscale plan`; for `archscale plan {ctx.invoked_subcommand}` put "
                f"its options after `{ctx.invoked_subcommand}`"
            )
        return
    if compute is None:
        raise LawDataError(
            "--compute C is needed: the training compute in FLOPs, e.g. --compute 1e21 (or `archscale plan ladder` "
            "to plan a ladder)"
        )
    with warnings_shown():
        if not fit and not law:
            raise LawDataError("give at least one --fit FIT.json or --law NAME")
        laws = [entry for path in fit or [] for entry in read_fits(path)]
        curves = [(label, x) for label, x in laws if isinstance(x, ScheduleLaw)]
        chains = [(label, x) for label, x in laws if isinstance(x, TwoStepLaw)]
        laws = [entry for entry in laws if entry not in curves and entry not in chains]
        if chains and design_space:
            raise LawDataError(
                f"--fit {chains[0][0]}: a two-step fit forecasts accuracy at a plan's N_opt and D_opt, "
                "without --design-space; drop one of them"
            )
        if len(curves) > 1:
            raise LawDataError(
                f"--fit: give one whole-curve fit to choose the schedule by, got {len(curves)} "
                f"({', '.join(label for label, _ in curves)})"
            )
        if curves and design_space:
            raise LawDataError(
                f"--fit {curves[0][0]}: a whole-curve fit chooses the schedule of a plan without --design-space; "
                "drop one of them"
            )
        given = {"--batch-tokens": batch_tokens, "--lr": lr, "--warmup": warmup}
        if not curves and (unused := [flag for flag, value in given.items() if value is not None]):
            raise LawDataError(
                f"{unused[0]} sets the planned run's schedule, which needs a whole-curve --fit "
                "(curve-ladder, multipower or annealing)"
            )
        for key in law or []:
            entry = published(key)
            if not entry.laws:
                raise LawDataError(
                    f"{key} publishes exponents only (no coefficients) and cannot plan; "
                    "try chinchilla-approach3, epoch2024 or deepseek2024"
                )
            laws += [(f"{key} (published)", published_law) for published_law in entry.laws]
        if not design_space:
            plan = make_plan(compute, laws, experts)
            if curves:
                plan["schedule"] = _schedule_plan(plan, curves[0], batch_tokens, lr, warmup, min_lr_ratio)
            if chains:
                plan["downstream"] = _downstream_plan(plan, chains)
            emit(plan, _plan_text(plan), as_json)
            return
        if max_total_params is not None and memory_per_gpu is not None:
            raise LawDataError("give --max-total-params or --memory-per-gpu, not both")
        if memory_per_gpu is not None and not 0 < memory_per_gpu < math.inf:
            raise LawDataError(
                f"--memory-per-gpu must be a finite number of GiB > 0, got {memory_per_gpu}; leave it out for "
                "no cap"
            )
        cap = (
            max_total_params if memory_per_gpu is None else memory_per_gpu * 2**30 / TRAINING_BYTES_PER_PARAM
        )
        design_law = next(
            (
                (label, x)
                for label, x in laws
                if set(x.inputs) & {c for cs in KNOB_COLUMNS.values() for c in cs}
            ),
            None,
        )
        if design_law is None:
            raise LawDataError(
                "--design-space needs a design law (granularity, joint_moe or sparsity): a --fit of one, or "
                "--law krajewski2024 / ludziejewski2025"
            )
        designs = design_grid(
            _int_list("--grid-experts", grid_experts), _int_list("--grid-top-k", grid_top_k),
            _int_list("--grid-granularity", grid_granularity), _int_list("--grid-shared", grid_shared),
        )  # fmt: skip
        label, chosen = design_law
        plan = plan_designs(
            compute, chosen, designs, ffn_share=ffn_share, max_total_params=cap, router_cost=router_cost,
            width_per_block=width_per_block, label=label,
        )  # fmt: skip
        hyper = hyperparameters(compute, plan.best, [entry for entry in laws if entry != design_law])
    payload = plan.to_dict() | {"hyperparameters": {k: hyper[0][k] for k in hyper[1]}, "sources": hyper[1],
                                "intervals": hyper[2]}  # fmt: skip
    emit(payload, _design_text(plan, hyper), as_json)


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the published laws with their sources and units."""
    entries = [
        {
            "key": e.key,
            "source": e.source,
            "formulas": list(e.formulas),
            "units": e.units,
            "allocation": None
            if e.allocation is None
            else {"alpha_N": e.allocation[0], "alpha_D": e.allocation[1]},
            "plannable": bool(e.laws),
        }
        for e in CATALOGUE
    ]
    text = "\n\n".join(
        f"{e['key']}\n  " + "\n  ".join(e["formulas"]) + f"\n  units: {e['units']}\n  source: {e['source']}"
        for e in entries
    )
    emit({"laws": entries}, text, as_json)


@app.command("table1")
def table1_command(
    fit: Annotated[
        list[Path] | None, typer.Option("--fit", help="A chinchilla/wang fit (JSON) to add as a row.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON records.")] = False,
) -> None:
    """The paper's Table 1 (alpha_D, alpha_N) with a row per fitted law beside the published ones."""
    with warnings_shown():
        table = table1({path.stem: read_fit(path) for path in fit or []})
    records = json.loads(table.to_json(orient="records"))
    emit({"table1": records}, format_table1(table), as_json)
