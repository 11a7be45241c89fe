"""``archscale curve``: a run's loss curve under a schedule, from a saved whole-curve fit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from archscale.analysis.curve_tables import best_decay_fraction, final_interval, predict_curve, schedule_rates
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.errors import LawDataError
from archscale.laws.saved import read_fit
from archscale.training.run_config import SCHEDULES


def curve_command(
    fit: Annotated[
        Path, typer.Option("--fit", help="A saved multipower, annealing or curve-ladder fit (fit --out).")
    ],
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps of the run.")],
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")],
    warmup: Annotated[
        int | None, typer.Option("--warmup", help="Warm-up steps (default: 5 % of the steps).")
    ] = None,
    schedule: Annotated[str, typer.Option(help=f"{', '.join(SCHEDULES)}.")] = "wsd",
    decay_fraction: Annotated[float, typer.Option(help="WSD: share of the steps that decay.")] = 0.2,
    min_lr_ratio: Annotated[float, typer.Option(help="Final rate / peak rate (cosine, WSD).")] = 0.1,
    size: Annotated[
        float | None,
        typer.Option(
            "--size",
            help="curve-ladder: the run's model size, in the fit's size column (params or model_scale).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
) -> None:
    """Predict a run's loss curve and final loss under a schedule from a saved whole-curve fit (with the
    prediction interval of its final loss when the fit was bootstrapped), and the WSD decay fraction the law
    prefers for that run."""
    law = read_fit(fit)
    if not isinstance(law, ScheduleLaw):
        raise LawDataError(
            f"--fit {fit}: a {law.name} fit; give a multipower, annealing or curve-ladder fit (fit --out)"
        )
    column = law.size_column
    if (column is None) != (size is None):
        raise LawDataError(
            f"--size: the {law.name} fit predicts at a model size: give the run's {column}"
            if column
            else f"--size: the {law.name} fit describes one model size; drop --size"
        )
    warmup = round(0.05 * steps) if warmup is None else warmup
    checks = [
        (steps >= 2, f"--steps must be ≥ 2, got {steps}"),
        (math.isfinite(lr) and lr > 0, f"--lr must be a finite rate > 0, got {lr}"),
        (0 <= warmup < steps, f"--warmup must lie in [0, --steps), got {warmup}"),
        (schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}"),
        (0 < decay_fraction <= 1, f"--decay-fraction must lie in (0, 1], got {decay_fraction}"),
        (0 <= min_lr_ratio <= 1, f"--min-lr-ratio must lie in [0, 1], got {min_lr_ratio}"),
    ]
    for ok, message in checks:
        if not ok:
            raise LawDataError(message)
    rates = schedule_rates(steps, lr, warmup_steps=warmup, schedule=schedule, decay_fraction=decay_fraction,
                           min_lr_ratio=min_lr_ratio)  # fmt: skip
    curve = predict_curve(law, rates, size=size)
    best, finals = best_decay_fraction(
        law, steps, lr, warmup_steps=warmup, min_lr_ratio=min_lr_ratio, size=size
    )
    interval, no_interval = final_interval(law, rates, size=size)
    shown = sorted({*np.unique(np.geomspace(max(warmup, 1), steps, 8).round().astype(int)), steps})
    payload = {
        "law": law.name, "schedule": schedule, "steps": steps, "lr": lr, "warmup_steps": warmup,
        "decay_fraction": decay_fraction if schedule == "wsd" else None, "min_lr_ratio": min_lr_ratio,
        "final_loss": float(curve[-1]), "curve": {int(s): float(curve[s - 1]) for s in shown},
        "best_wsd_decay_fraction": best, "wsd_final_loss": finals, "interval": interval,
        "no_interval": no_interval, "size": size,
    }  # fmt: skip
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    lines = [f"{law.name} law, {schedule} schedule, {steps} steps, peak lr {lr:g}, warm-up {warmup}:"]
    lines += [f"  step {s:>8}  loss {loss:.4f}" for s, loss in payload["curve"].items()]
    shown_interval = (
        f"{law.level_:.0%} prediction interval [{interval[0]:.4f}, {interval[1]:.4f}]"
        if interval
        else f"no interval: {no_interval}"
    )
    lines.append(f"  final loss {curve[-1]:.4f} ({shown_interval})")
    lines.append(
        f"  WSD decay fraction the law prefers for this run: {best:g} (final {finals[best]:.4f}; "
        + ", ".join(f"{f:g}: {v:.4f}" for f, v in finals.items())
        + ")"
    )
    typer.echo("\n".join(lines))
