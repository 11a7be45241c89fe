"""The ladder planner's noise measured from repeated seeds in a store recovers the simulated run effect and
point noise; a store without repeats gives none."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.analysis.seed_noise import seed_noise
from archscale.cli.main import app
from archscale.laws.ladder import MICRO_NOISE
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig

RUN_SD, POINT_SD = 0.02, 0.01
STEPS = 300


def _store(path, models, seeds, rng):
    """Per model and seed a run: a smooth curve times exp(u_seed + e_step), u ~ N(0, RUN_SD²),
    e ~ N(0, POINT_SD²) at every step (no smoothing is asked for in the test, so each step is a point)."""
    with ResultsStore(path) as store:
        for model in models:
            for seed in seeds:
                cfg = RunConfig.from_dict({"model": model, "tokens": 512 * STEPS, "batch_size": 8, "lr": 1e-3,
                                           "seq_len": 64, "seed": seed})  # fmt: skip
                steps = np.arange(1, STEPS + 1)
                tokens = steps * cfg.tokens_per_step
                loss = (2.0 + 30.0 / tokens**0.3) * np.exp(
                    rng.normal(0, RUN_SD) + rng.normal(0, POINT_SD, STEPS)
                )
                store.add_run(cfg, status="finished")
                store.add_curve(cfg.run_id, pd.DataFrame({"step": steps, "tokens": tokens, "lm_loss": loss,
                                                          "loss": loss}).to_dict(orient="records"))  # fmt: skip
        return store.runs(), store.curve()


def test_repeated_seeds_recover_the_run_effect_and_the_point_noise(tmp_path):
    models = (
        "dense-25k",
        "dense-50k",
        "dense-100k",
        "dense-200k",
        "moe-25k",
        "moe-50k",
        "moe-100k",
        "moe-200k",
    )
    runs, curve = _store(tmp_path / "r.sqlite", models, range(5), np.random.default_rng(3))
    noise = seed_noise(runs, curve, points_per_run=24, window=1)
    assert noise is not None
    # 8 configurations × 4 between-seed degrees of freedom: τ̂ has a relative sd of about 1/√64 = 12 %
    assert noise.run == pytest.approx(RUN_SD, rel=0.3)
    assert noise.point == pytest.approx(POINT_SD, rel=0.1)
    assert "8 configuration(s)" in noise.source and "40 runs" in noise.source


def test_a_run_stored_before_the_parametrisation_fields_repeats_one_stored_after(tmp_path):
    """Stores written before the μP fields existed hold model configs without them; a run there and its
    repeat with another seed in a newer store are one configuration (the fields' defaults filled in)."""
    runs, curve = _store(tmp_path / "r.sqlite", ("dense-25k", "dense-50k"), (0, 1), np.random.default_rng(0))
    old = [json.loads(c) for c in runs["config"]]
    for config in old[::2]:  # the seed-0 runs as an older store wrote them
        for field in ("parametrization", "base_width", "base_depth", "base_head_dim"):
            config["model"].pop(field, None)
    runs = runs.assign(config=[json.dumps(c) for c in old])
    noise = seed_noise(runs, curve, window=1)
    assert noise is not None and "2 configuration(s)" in noise.source


def test_a_store_without_repeats_gives_no_measured_noise(tmp_path):
    runs, curve = _store(tmp_path / "r.sqlite", ("dense-25k", "dense-50k"), (0,), np.random.default_rng(0))
    assert seed_noise(runs, curve) is None


@pytest.mark.parametrize("repeats", [True, False])
def test_plan_ladder_takes_its_noise_from_the_store(tmp_path, repeats):
    """`plan ladder --store` simulates with the store's measured noise, or says there is none to measure and
    uses the stated default."""
    seeds = range(3) if repeats else (0,)
    path = tmp_path / "r.sqlite"
    runs, curve = _store(path, ("dense-25k", "dense-50k"), seeds, np.random.default_rng(1))
    args = ["plan", "ladder", "--store", str(path), "--law", "chinchilla-approach3", "--budget", "1e19",
            "--compute", "1e21", "--replicates", "2", "--bootstrap", "20", "--keep", "1", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    noise = json.loads(result.stdout)["noise"]
    if repeats:
        measured = seed_noise(runs, curve)
        assert (noise["run"], noise["point"]) == (measured.run, measured.point)
        assert noise["source"].startswith("measured on 2 configuration(s)")
    else:
        assert (noise["run"], noise["point"]) == (MICRO_NOISE.run, MICRO_NOISE.point)
        assert noise["source"].startswith(f"no repeated seeds in {path}")
