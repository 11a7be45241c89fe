"""A results store's validation loss beside its downstream scores: the loss-to-loss route's source."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from archscale.analysis.downstream import DOWNSTREAM_CHECKPOINTS_KEY, downstream_points
from archscale.cli.main import app
from archscale.laws.downstream_laws import LossToLossTruth
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig
from cli_contract import invoke_one_line_error

# validation loss 1.9-2.6 nats/token and task loss 0.7-1.3 bits per byte at the micro sizes (P 1e5-8e5, D 5e3-4e5)
TRUTH = LossToLossTruth(
    val={"A": 5.0, "B": 10.0, "alpha": 0.3, "beta": 0.3, "E": 1.7},
    step2={"a": -0.74, "L0": 1.0, "k": 6.0, "b": 0.99},
    checkpoint_sd=0.02,
)
PRESETS = ("dense-100k", "dense-330k", "dense-800k")
STEPS = (100, 200, 400, 800)  # 512 tokens a step: 3 sizes × 4 budgets = 12 runs
CHECKPOINTS = 10


def _store(path, gap: bool) -> None:
    """12 finished runs, each scored on one task at 10 checkpoints, with the held-out eval the training run
    wrote at those steps (``gap``: the first run's last eval missing)."""
    rng = np.random.default_rng(0)
    with ResultsStore(path) as store:
        for preset in PRESETS:
            for steps in STEPS:
                config = RunConfig.from_dict({"model": preset, "tokens": 512 * steps, "batch_size": 8,
                                              "lr": 1e-3, "seq_len": 64})  # fmt: skip
                store.add_run(config, status="finished")
                params = float(store.runs(run_id=[config.run_id])["P"].item())
                evaluated = np.linspace(steps / CHECKPOINTS, steps, CHECKPOINTS).astype(int)
                measured = TRUTH.measure(params, 512.0 * evaluated, rng.normal(0, TRUTH.run_sd), rng)
                store.set_meta(config.run_id, DOWNSTREAM_CHECKPOINTS_KEY, {
                    str(step): {"task": {"task_loss": loss, "accuracy": acc, "chance": 0.25, "num_fewshot": 0}}
                    for step, loss, acc in zip(evaluated, measured["task_loss"], measured["accuracy"], strict=True)
                })  # fmt: skip
                skip = gap and preset == PRESETS[0] and steps == STEPS[0]
                store.add_evals(config.run_id, [
                    {"step": int(step), "tokens": 512 * int(step), "split": split, "loss": loss + offset}
                    for step, val in zip(evaluated, measured["val_loss"], strict=True)
                    if not (skip and step == evaluated[-1])
                    for split, loss, offset in (("test", val, 0.0), ("train", val, 0.3))
                ])  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("val-loss")
    _store(root / "full.sqlite", gap=False)
    _store(root / "gap.sqlite", gap=True)
    return root


def test_each_checkpoint_gets_the_held_out_loss_of_its_step(stores):
    with ResultsStore(stores / "gap.sqlite", read_only=True) as store:
        points = downstream_points(store)
        held_out = store.evals(split="test", subset="all")
    joined = points.merge(held_out, on=["run_id", "step"], how="left")
    assert len(points) == 12 * CHECKPOINTS and points["val_loss"].isna().sum() == 1
    given = points["val_loss"].notna()
    assert points.loc[given, "val_loss"].to_numpy() == pytest.approx(joined.loc[given, "loss"].to_numpy())
    missing = points[~given].iloc[0]
    assert missing["step"] == STEPS[0] and missing["run_id"] not in set(
        held_out[held_out["step"] == STEPS[0]]["run_id"]
    )


def test_the_route_fits_from_a_store_and_refuses_one_without_a_checkpoints_val_loss(stores, tmp_path):
    args = ["fit", "two-step", "--route", "loss-to-loss", "--predict", "params=2e6,tokens=4e6", "--json"]
    result = CliRunner().invoke(app, [*args, "--data", str(stores / "full.sqlite")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    c, (forecast,) = payload["coefficients"], payload["predictions"]
    assert c["E_x"] == pytest.approx(TRUTH.val["E"], abs=0.15)
    true = float(TRUTH.accuracy(TRUTH.task_loss(np.array(2e6), np.array(4e6))))
    assert forecast["accuracy"] == pytest.approx(true, abs=0.06)

    line = invoke_one_line_error([*args, "--data", str(stores / "gap.sqlite")], "validation loss", stores)
    assert "1 of 120 rows" in line and f"at step {STEPS[0]}" in line and "--route direct" in line
