"""A law fitted to what ``--data`` names, for ``archscale fit``: the law built from its options, the table
read (:mod:`archscale.analysis.tables`), the fit, its hold-out audit, and the two-step chain per task with
its forecasts. Each result has ``summary()`` (the text) and ``to_dict()`` (the JSON saved by ``--out``)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from archscale.analysis.downstream_chain import TaskChain, chain_forecasts, fit_chains
from archscale.analysis.points import POINT_RULES
from archscale.analysis.tables import checkpoint_table, curve_table, is_store, law_table
from archscale.laws.audit import Audit, extrapolation_audit
from archscale.laws.base import Law, law_class
from archscale.laws.curve_laws import ScheduleLaw
from archscale.laws.downstream_laws import TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.plan import band
from archscale.laws.resampling import spawn_seeds

PREDICT_FORM = "params=N,tokens=D (e.g. params=1e9,tokens=2e10)"


def configured_law(name: str, options: dict[str, Any]) -> Law:
    """The law ``name`` with ``options``; an option it does not take is refused naming its flag."""
    cls = law_class(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    for option in options:
        if option not in fields:
            flag = "--" + {"interaction": "separable"}.get(option, option).replace("_", "-")
            raise LawDataError(f"{flag} does not apply to the {name} law (it takes {sorted(fields)})")
    return cls(**options)


def parse_holdout(spec: str) -> tuple[str, int]:
    """``--holdout COLUMN[:K]`` as (COLUMN, K)."""
    column, _, count = spec.partition(":")
    if not column or (count and not count.isdigit()):
        raise LawDataError(f"--holdout takes COLUMN or COLUMN:K (e.g. params:2), got {spec!r}")
    return column, int(count or 1)


def parse_targets(specs: list[str]) -> list[tuple[float, float]]:
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


@dataclasses.dataclass
class TableFit:
    """A law fitted to a table or a store's points: the points rule used (None for a table) and the
    extrapolation audit of ``--holdout`` (None without)."""

    law: Law
    data: Path
    table: pd.DataFrame
    rule: str | None
    kind: str | None
    audit: Audit | None = None

    def summary(self) -> str:
        text = self.law.summary()
        if self.rule is not None:
            kind = f"{self.kind} " if self.kind else ""
            text = (
                f"law points: {POINT_RULES[self.rule]} ({self.table['run_id'].nunique()} {kind}runs, "
                f"{len(self.table)} points) from {self.data}\n{text}"
            )
        if (audit := self.audit) is not None:
            coverage = (
                f"inside the prediction interval {audit.prediction_coverage:.0%}, inside the curve band "
                f"{audit.coverage:.0%}"
                if audit.coverage is not None
                else f"no interval ({audit.law.no_interval_ or 'no bootstrap'})"
            )
            text += (
                f"\nextrapolation audit: held out {audit.column} = {audit.held_out} "
                f"({len(audit.points)} points), mean |rel. error| {audit.mean_abs_rel_error:.3%}, max "
                f"{audit.max_abs_rel_error:.3%}, {coverage}"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return self.law.to_dict() | {
            "data": str(self.data),
            "points_rule": self.rule,
            "audit": None if self.audit is None else self.audit.to_dict(),
        }


def fit_table(
    estimator: Law,
    data: Path,
    mapping: list[str] | None = None,
    *,
    points: str | None = None,
    kind: str | None = None,
    model: str | None = None,
    allow_mixed_corpora: bool = False,
    keep_duplicates: bool = False,
    holdout: str | None = None,
) -> TableFit:
    """Fit ``estimator`` (not a two-step law: :func:`fit_two_step`) to ``data``: a whole-curve law to a
    store's per-step curves (of one ``model``, or of every size of a family), any other law to a table or a
    store's law points; with ``holdout`` (``COLUMN[:K]``) the extrapolation audit, refitted on its own
    random stream."""
    across_sizes = isinstance(estimator, ScheduleLaw) and estimator.size_column is not None
    if isinstance(estimator, ScheduleLaw) and not across_sizes and holdout is not None:
        raise LawDataError(
            f"--holdout: the {estimator.name} law describes one model size and cannot predict a held-out one; "
            "fit curve-ladder (the law across sizes) for the audit"
        )
    if isinstance(estimator, ScheduleLaw) and is_store(data):
        table, rule = curve_table(data, model, kind, sizes=across_sizes), None
    else:
        table, rule = law_table(data, mapping, points, kind, allow_mixed_corpora, keep_duplicates)
    estimator.fit(table)
    result = TableFit(estimator, data, table, rule, kind)
    if holdout is not None:
        column, count = parse_holdout(holdout)
        # its own stream: the audit's fit is another experiment
        audit_law = dataclasses.replace(estimator, seed=spawn_seeds(estimator.seed, 1)[0])
        result.audit = extrapolation_audit(audit_law, table, column=column, n_holdout=count)
    return result


def _forecast_lines(label: str | None, forecast: dict[str, Any]) -> list[str]:
    """One table row of a forecast, and the reason under it when it lacks an accuracy or interval."""
    if "skipped" in forecast:
        return [f"  {label or '':<14} not fitted: {forecast['skipped']}"]
    row = (
        f"  {label or '':<14} {forecast['params']:>10.4g} {forecast['tokens']:>10.4g}  "
        f"{band(forecast['task_loss'], forecast['task_loss_interval'], '.4f'):<28} "
        f"{band(forecast['accuracy'], forecast['accuracy_interval'], '.3f')}"
    )
    why = forecast["unpredictable"] or forecast["no_interval"]
    return [row] + ([f"  {'':<14} ({why})"] if why else [])


@dataclasses.dataclass
class TwoStepFit:
    """The two-step chain fitted per task (a task that could not be fitted kept with the reason), and each
    target's forecast by every chain."""

    template: TwoStepLaw
    data: Path
    chains: dict[str | None, TaskChain]
    forecasts: list[dict[str, Any]]

    def warning_lines(self) -> list[str]:
        """Each chain's fit warnings, prefixed with its task."""
        return [
            f"{task + ': ' if task else ''}{message}"
            for task, chain in self.chains.items()
            for message in chain.warnings
        ]

    def summary(self) -> str:
        text = [
            f"task {task}: " + (c.law.summary() if c.law else f"not fitted: {c.skipped}")
            if task
            else c.law.summary()
            for task, c in self.chains.items()
        ]
        if self.forecasts:
            text.append(
                f"  {'task':<14} {'params':>10} {'tokens':>10}  {'task loss [95 % interval]':<28} accuracy [95 % interval]"
            )
            for forecast in self.forecasts:
                by_task = forecast.get("tasks") or {forecast["task"]: forecast}
                for task, entry in by_task.items():
                    text += _forecast_lines(
                        task, {"params": forecast["params"], "tokens": forecast["tokens"]} | entry
                    )
        return "\n".join(text)

    def to_dict(self) -> dict[str, Any]:
        fits = {
            task: c.law.to_dict() | {"warnings": c.warnings} if c.law else {"skipped": c.skipped}
            for task, c in self.chains.items()
        }
        if len(self.chains) == 1:
            ((task, fit),) = fits.items()
            return fit | {"task": task, "data": str(self.data), "predictions": self.forecasts}
        return {
            "law": self.template.name,
            "data": str(self.data),
            "tasks": fits,
            "predictions": self.forecasts,
        }


def fit_two_step(
    template: TwoStepLaw,
    data: Path,
    mapping: list[str] | None = None,
    *,
    kind: str | None = None,
    keep_duplicates: bool = False,
    predict: list[str] | None = None,
) -> TwoStepFit:
    """``archscale fit two-step``: the chain per task, each ``predict`` target (``params=N,tokens=D``)
    forecast by every chain; refused when no task could be fitted."""
    targets = parse_targets(predict or [])
    points, chances = checkpoint_table(data, mapping, kind, keep_duplicates)
    chains = fit_chains(points, template, chances)
    if not any(chain.law for chain in chains.values()):
        raise LawDataError(
            "; ".join(f"{task + ': ' if task else ''}{c.skipped}" for task, c in chains.items())
        )
    return TwoStepFit(template, data, chains, chain_forecasts(chains, targets))
