"""``archscale report``: analyse a results store and write the HTML report, figures and summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archscale.cli.options import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_STORE,
    BootstrapOption,
    ReferenceOption,
    StoreOption,
    parse_references,
)


def report_command(
    store: StoreOption = DEFAULT_STORE,
    out: Annotated[
        Path, typer.Option("--out", help="Report directory (index.html, figures/, summary.json).")
    ] = Path("report"),
    bootstrap: BootstrapOption = DEFAULT_BOOTSTRAP,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
    reference: ReferenceOption = None,
    allow_mixed_corpora: Annotated[
        bool,
        typer.Option("--allow-mixed-corpora", help="Analyse runs trained on different corpora together."),
    ] = False,
) -> None:
    """Write the dense-vs-MoE report of a results store and print its headline numbers."""
    from archscale.report import build_report

    report = build_report(
        store,
        out,
        bootstrap=bootstrap,
        seed=seed,
        references=parse_references(reference),
        allow_mixed_corpora=allow_mixed_corpora,
    )
    typer.echo(report.headline())
    typer.echo(f"report: {report.index}  (summary: {report.summary_path})")
