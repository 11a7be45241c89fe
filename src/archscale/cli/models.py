"""``archscale models``: list the presets and show one preset's exact scale accounting."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from archscale.cli.shell import ArchscaleGroup
from archscale.models import get_preset, list_presets, scale_report

app = typer.Typer(
    cls=ArchscaleGroup, help="Model presets and their parameter / FLOPs accounting.", no_args_is_help=True
)


@app.command("list")
def list_cmd(
    seq_len: Annotated[
        int | None, typer.Option(help="Sequence length for FLOPs/token (default: preset's).")
    ] = None,
) -> None:
    """One line per preset: kind, experts (E, top-k, granularity G, shared), parameters and FLOPs per token."""
    width = max(len(name) for name in list_presets())
    typer.echo(
        f"{'name':<{width}} {'kind':<5} {'E':>3} {'k':>2} {'G':>2} {'sh':>2} {'total':>15} {'non-emb':>15} "
        f"{'active':>15} {'N (FLOPs/tok)':>14}"
    )
    for name in list_presets():
        cfg = get_preset(name)
        r = scale_report(cfg, seq_len)
        typer.echo(
            f"{name:<{width}} {cfg.kind:<5} {r.n_experts:>3} {r.top_k:>2} {r.granularity:>2} "
            f"{r.n_shared_experts:>2} {r.total_params:>15,} {r.nonembedding_params:>15,} {r.active_params:>15,} "
            f"{r.flops_per_token:>14.4g}"
        )


@app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Preset name (see `archscale models list`).")],
    seq_len: Annotated[
        int | None, typer.Option(help="Sequence length for FLOPs/token (default: preset's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """The preset's configuration and scale report (non-embedding = attention + FFN + router matrices)."""
    try:
        cfg = get_preset(name)
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="NAME") from None
    report = scale_report(cfg, seq_len).to_dict()
    if as_json:
        typer.echo(json.dumps({"name": name, **report, "config": cfg.to_dict()}, indent=2))
        return
    for key, value in {**cfg.to_dict(), **report}.items():
        typer.echo(
            f"{key:<22} {value:,}"
            if isinstance(value, int) and not isinstance(value, bool)
            else f"{key:<22} {value}"
        )
