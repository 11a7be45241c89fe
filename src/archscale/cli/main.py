"""The ``archscale`` entry point: one Typer app composed of one sub-app per architecture layer."""

from __future__ import annotations

import typer

from archscale.cli.bridges import eval_command, export_command
from archscale.cli.curves import curve_command
from archscale.cli.data import app as data_app
from archscale.cli.ladder import ladder_command, study_plan_command
from archscale.cli.laws import app as laws_app
from archscale.cli.laws import fit_command, plan_command
from archscale.cli.models import app as models_app
from archscale.cli.report import report_command
from archscale.cli.runs import app as runs_app
from archscale.cli.shell import ArchscaleGroup
from archscale.cli.study import study_command
from archscale.cli.sweeps import app as sweep_app
from archscale.cli.sweeps import train_cmd

app = typer.Typer(
    name="archscale",
    cls=ArchscaleGroup,
    help="Measure and use scaling laws of dense and Mixture-of-Experts language models.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(sweep_app, name="sweep")
app.add_typer(runs_app, name="runs")
app.command("train")(train_cmd)
app.add_typer(laws_app, name="laws")
app.command("fit")(fit_command)
plan_app = typer.Typer(cls=ArchscaleGroup, invoke_without_command=True, help=plan_command.__doc__)
plan_app.callback()(plan_command)
plan_app.command("ladder")(ladder_command)
plan_app.command("study")(study_plan_command)
app.add_typer(plan_app, name="plan")
app.command("curve")(curve_command)
app.command("export")(export_command)
app.command("eval")(eval_command)
app.command("report")(report_command)
app.command("study")(study_command)

if __name__ == "__main__":  # `python -m archscale.cli.main`, e.g. under torchrun
    app()
