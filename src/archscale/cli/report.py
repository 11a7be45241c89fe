"""``archscale report``: analyse a results store and write the HTML report, figures and summary.json."""

from __future__ import annotations

from pathlib import Path

import typer


def parse_references(items: list[str]) -> dict[str, Path]:
    """``--reference NAME=PATH`` options as a mapping."""
    references = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"expected NAME=PATH, got {item!r}", param_hint="--reference")
        references[name] = Path(path)
    return references


def report_command(
    store: Path = typer.Option(..., "--store", help="SQLite results store written by `archscale sweep run`."),
    out: Path = typer.Option(
        Path("report"), "--out", help="Report directory (index.html, figures/, summary.json)."
    ),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap resamples for every interval."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    reference: list[str] = typer.Option(
        [],
        "--reference",
        help="NAME=PATH: a public data set archscale does not ship, beside the Clark et al. panel; "
        "steplaw=FOLDER reads Step Law's dense_lr_bs_loss.csv and moe_lr_bs_loss.csv (no licence stated).",
    ),
    allow_mixed_corpora: bool = typer.Option(
        False, "--allow-mixed-corpora", help="Analyse runs trained on different corpora together."
    ),
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
