"""``archscale laws …`` (published laws, Table 1) and the top-level ``archscale fit`` / ``archscale plan``.

``app`` is the ``laws`` sub-app; ``fit_command`` and ``plan_command`` are plain functions registered as
top-level commands.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from archscale.analysis.fitting import configured_law, fit_table, fit_two_step
from archscale.analysis.planning import plan_compute
from archscale.cli.options import DEFAULT_BOOTSTRAP, BootstrapOption, given_flags
from archscale.cli.shell import ArchscaleGroup
from archscale.laws.base import registered_laws
from archscale.laws.catalogue import CATALOGUE
from archscale.laws.columns import COLUMNS, parse_mapping
from archscale.laws.design import LLAMA_FFN_SHARE, ROUTER_COST, WIDTH_PER_BLOCK
from archscale.laws.downstream_laws import TwoStepLaw
from archscale.laws.errors import LawDataError
from archscale.laws.saved import read_fit
from archscale.laws.table1 import format_table1, table1
from archscale.paths import write_atomic

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
            "with replacement) (default: parametric; resample for two-step, its calibrated intervals)."
        ),
    ] = None,
    holdout: Annotated[
        str | None,
        typer.Option(
            help="COLUMN\\[:K]: also fit without the K largest COLUMN values and report their error."
        ),
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
            "which a store has from its training runs' held-out evals) (default: direct)."
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
        estimator = configured_law(law, options)
        reads = (*estimator.inputs, estimator.target)
        if unread := [ours for ours in parse_mapping(map_ or []) if ours not in {*COLUMNS, *reads}]:
            raise LawDataError(
                f"--map {unread[0]}=…: '{unread[0]}' is not a column archscale reads; the {law} law reads "
                f"{', '.join(reads)} (the name left of '=' is archscale's, the one right of it yours)"
            )
        if isinstance(estimator, TwoStepLaw):
            misplaced = {"--holdout": holdout, "--points": points, "--model": model}
            if flag := next((f for f, value in misplaced.items() if value is not None), None):
                raise LawDataError(
                    f"{flag} does not apply to the two-step law: it reads every evaluated checkpoint"
                )
            chains = fit_two_step(
                estimator, data, map_, kind=kind, keep_duplicates=keep_duplicates, predict=predict
            )
            for message in chains.warning_lines():
                typer.echo(f"warning: {message}", err=True)
            emit(chains.to_dict(), chains.summary(), as_json, out)
            return
        if predict:
            raise LawDataError(f"--predict forecasts downstream accuracy: it applies to two-step, not {law}")
        fitted = fit_table(
            estimator, data, map_, points=points, kind=kind, model=model,
            allow_mixed_corpora=allow_mixed_corpora, keep_duplicates=keep_duplicates, holdout=holdout,
        )  # fmt: skip
    text = fitted.summary()
    emit(fitted.to_dict() | {"warnings": caught}, text, as_json, out)


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
            help="With a whole-curve --fit: tokens per step of the planned run (default: a batch law's)."
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="With a whole-curve --fit: peak learning rate (default: an LR law's)."),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help="With a whole-curve --fit: warm-up steps (default: 5 % of the steps).")
    ] = None,
    min_lr_ratio: Annotated[
        float, typer.Option(help="With a whole-curve --fit: final rate / peak rate (WSD, cosine).")
    ] = 0.1,
    lr_ladder: Annotated[
        Path | None,
        typer.Option(
            help="A store of μP (or CompleteP) LR ladders (`study --preset lr-transfer`): the plan's LR is the "
            "ladder's optimum, transferred, in place of an lr law."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Compute-optimal N_opt, D_opt and loss (with intervals), plus batch size and LR when a law gives them
    (or the LR a μP ladder transfers, --lr-ladder);
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
        plan = plan_compute(
            compute, fit or [], law or [], experts, batch_tokens=batch_tokens, lr=lr, warmup=warmup,
            min_lr_ratio=min_lr_ratio, design_space=design_space, grid_experts=grid_experts,
            grid_top_k=grid_top_k, grid_granularity=grid_granularity, grid_shared=grid_shared,
            max_total_params=max_total_params, memory_per_gpu=memory_per_gpu, ffn_share=ffn_share,
            router_cost=router_cost, width_per_block=width_per_block, lr_ladder=lr_ladder,
        )  # fmt: skip
    emit(plan.to_dict(), plan.summary(), as_json)


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
