"""The ``archscale`` entry point: one Typer app composed of one sub-app per architecture layer."""

from __future__ import annotations

import typer

from archscale.cli.models import app as models_app

app = typer.Typer(
    name="archscale",
    help="Measure and use scaling laws of dense and Mixture-of-Experts language models.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(models_app, name="models")
