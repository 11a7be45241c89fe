"""``archscale models``: list the presets, show one preset's exact scale accounting, and run the coordinate
check of a parametrisation (SP, μP, CompleteP) across widths."""

from __future__ import annotations

import json
from pathlib import Path
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
        int | None, typer.Option(min=1, help="Sequence length for FLOPs/token (default: preset's).")
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
        int | None, typer.Option(min=1, help="Sequence length for FLOPs/token (default: preset's).")
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


@app.command("coord-check", context_settings={"allow_extra_args": True, "allow_interspersed_args": True})
def coord_check_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Preset name (see `archscale models list`).")],
    widths: Annotated[
        str, typer.Option(help="Widths (d_model), space- or comma-separated: --widths 64 128 256 512.")
    ] = "64,128,256,512",
    parametrization: Annotated[str, typer.Option(help="sp, mup or completep.")] = "mup",
    steps: Annotated[int, typer.Option(help="AdamW steps at each width.")] = 5,
    lr: Annotated[float, typer.Option(help="Learning rate (the base width's).")] = 1e-2,
    seed: Annotated[int, typer.Option(help="First seed (weights and batch).")] = 0,
    seeds: Annotated[int, typer.Option(help="Seeds averaged per width.")] = 3,
    max_slope: Annotated[
        float, typer.Option(help="Pass bound on |d log mean|x| / d log width| per hidden layer.")
    ] = 0.4,
    out: Annotated[Path | None, typer.Option(help="Folder for coord_check.json and coord_check.png.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Train the preset a few steps at each width and check that every hidden layer's mean |activation|
    stays flat across widths (exit 0 on pass, 1 on fail); see archscale.training.coord_check."""
    from archscale.training.coord_check import coord_check, plot

    try:
        cfg = get_preset(name)
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="NAME") from None
    texts = [t for part in [widths, *ctx.args] for t in part.replace(",", " ").split()]
    if not all(t.isdigit() for t in texts):
        raise typer.BadParameter(
            f"widths must be positive integers, got {' '.join(texts)!r}", param_hint="--widths"
        )
    if parametrization not in ("sp", "mup", "completep"):
        raise typer.BadParameter(
            f"must be sp, mup or completep, got {parametrization!r}", param_hint="--parametrization"
        )
    result = coord_check(
        cfg, [int(t) for t in texts], parametrization, steps=steps, lr=lr, seed=seed, seeds=seeds,
        max_slope=max_slope,
    )  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "coord_check.json").write_text(json.dumps(result.to_dict(), indent=2))
        plot(result, str(out / "coord_check.png"))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(f"{'layer':<16} {'slope':>7} {'spread':>8}  mean |x| per width (last step)")
        for layer, per_width in result.mean_abs.items():
            values = " ".join(f"{v[-1]:.3g}" for v in per_width)
            typer.echo(f"{layer:<16} {result.slope[layer]:>7.3f} {result.spread[layer]:>7.3g}x  {values}")
        typer.echo(result.verdict())
    raise typer.Exit(0 if result.passed else 1)
