"""``archscale curve``: a run's loss curve under a schedule, from a saved whole-curve fit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from archscale.analysis.curve_tables import best_decay_fraction, predict_curve, schedule_rates
from archscale.cli.laws import read_fit
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.errors import LawDataError
from archscale.training.run_config import SCHEDULES


def curve_command(
    fit: Annotated[Path, typer.Option("--fit", help="A saved multipower or annealing fit (fit --out).")],
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps of the run.")],
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")],
    warmup: Annotated[
        int | None, typer.Option("--warmup", help="Warm-up steps [default: 5 % of the steps].")
    ] = None,
    schedule: Annotated[str, typer.Option(help=f"{', '.join(SCHEDULES)}.")] = "wsd",
    decay_fraction: Annotated[float, typer.Option(help="WSD: share of the steps that decay.")] = 0.2,
    min_lr_ratio: Annotated[float, typer.Option(help="Final rate / peak rate (cosine, WSD).")] = 0.1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
) -> None:
    """Predict a run's loss curve and final loss under a schedule from a saved whole-curve fit, and the WSD
    decay fraction the law prefers for that run (no intervals yet: not calibrated for these laws)."""
    law = read_fit(fit)
    if not isinstance(law, ScheduleLaw):
        raise LawDataError(f"--fit {fit}: a {law.name} fit; give a multipower or annealing fit (fit --out)")
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
    curve = predict_curve(law, rates)
    best, finals = best_decay_fraction(law, steps, lr, warmup_steps=warmup, min_lr_ratio=min_lr_ratio)
    shown = sorted({*np.unique(np.geomspace(max(warmup, 1), steps, 8).round().astype(int)), steps})
    payload = {
        "law": law.name, "schedule": schedule, "steps": steps, "lr": lr, "warmup_steps": warmup,
        "decay_fraction": decay_fraction if schedule == "wsd" else None, "min_lr_ratio": min_lr_ratio,
        "final_loss": float(curve[-1]), "curve": {int(s): float(curve[s - 1]) for s in shown},
        "best_wsd_decay_fraction": best, "wsd_final_loss": finals, "interval": None,
        "no_interval": "not calibrated for whole-curve laws yet",
    }  # fmt: skip
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    lines = [f"{law.name} law, {schedule} schedule, {steps} steps, peak lr {lr:g}, warm-up {warmup}:"]
    lines += [f"  step {s:>8}  loss {loss:.4f}" for s, loss in payload["curve"].items()]
    lines.append(f"  final loss {curve[-1]:.4f} (no interval: not calibrated for whole-curve laws yet)")
    lines.append(
        f"  WSD decay fraction the law prefers for this run: {best:g} (final {finals[best]:.4f}; "
        + ", ".join(f"{f:g}: {v:.4f}" for f, v in finals.items())
        + ")"
    )
    typer.echo("\n".join(lines))
