"""`archscale fit --data STORE` fits the points the report fits (one rule, ``law_points``), and says which."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.analysis import compute_allocation, loss_points
from archscale.analysis.points import law_points
from archscale.cli.main import app
from archscale.laws import ChinchillaLaw
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig

runner = CliRunner()
LAW = {"A": 40.0, "alpha": 0.3, "B": 60.0, "beta": 0.3, "sigma": 1.5}  # L(N, D) = A/N^α + B/D^β + σ
SIZES = ("dense-100k", "dense-330k", "dense-800k", "dense-1.6m")
STEPS = 400  # of 8 sequences × 64 tokens


def config(model: str, steps: int = STEPS, lr: float = 1e-3, seed: int = 0) -> RunConfig:
    return RunConfig.from_dict(
        {"model": model, "tokens": 512 * steps, "batch_size": 8, "lr": lr, "seq_len": 64, "seed": seed}
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A store of dense runs: per size a long and a half-length run on the law; one poor grid cell (the
    330k model at 4x the LR, 5 % worse) with the long budget; a failed run. Returns the store's path, the
    long good runs' ids and the expected final point of every finished run."""
    rng = np.random.default_rng(0)
    runs = [(config(m), 1.0, "finished") for m in SIZES]
    runs += [(config(m, steps=STEPS // 2), 1.0, "finished") for m in SIZES]
    runs += [(config("dense-330k", lr=4e-3), 1.05, "finished"), (config("dense-1.6m", seed=1), 1.0, "failed")]
    path = tmp_path_factory.mktemp("store") / "results.sqlite"
    finals = []
    with ResultsStore(path) as store:
        for cfg, penalty, status in runs:
            steps = np.arange(1, cfg.steps + 1)
            tokens = steps * cfg.tokens_per_step
            n = cfg.derived()["N"]
            true = LAW["A"] / n ** LAW["alpha"] + LAW["B"] / tokens ** LAW["beta"] + LAW["sigma"]
            lm_loss = true * penalty * np.exp(rng.normal(0.0, 0.003, len(steps)))
            store.add_run(cfg, status=status)
            store.add_curve(
                cfg.run_id,
                pd.DataFrame(
                    {"step": steps, "tokens": tokens, "lm_loss": lm_loss, "loss": lm_loss,
                     "lr": cfg.lr * np.minimum(1.0, steps / 20)}  # a 20-step warm-up
                ).to_dict(orient="records"),
            )  # fmt: skip
            if status == "finished":
                finals.append({"run_id": cfg.run_id, "model_scale": n, "tokens": float(tokens[-1]),
                               "loss": lm_loss[-1]})  # fmt: skip
    best = {config(m).run_id for m in SIZES}
    return path, best, pd.DataFrame(finals).sort_values("run_id", ignore_index=True)


def fit(path, *args: str) -> Any:
    result = runner.invoke(app, ["fit", "chinchilla", "--size", "model_scale", "--data", str(path), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_fit_on_a_store_gives_the_reports_coefficients(study):
    path, _, _ = study
    with ResultsStore(path) as store:
        report = compute_allocation(loss_points(store.runs(), store.curve()), bootstrap=0).fits["dense"]
    payload = fit(path, "--json")
    assert payload["coefficients"].keys() == report["coefficients"].keys()
    for name, value in report["coefficients"].items():
        assert payload["coefficients"][name] == pytest.approx(value, rel=1e-9), name
    assert payload["n_points"] == report["n_points"] == 4 * 24 and payload["points_rule"] == "curves"


def test_final_points_are_the_last_point_of_every_finished_run(study):
    path, _, finals = study
    payload = fit(path, "--points", "final", "--json")
    assert payload["points_rule"] == "final" and payload["n_points"] == 9  # 4 sizes × 2 budgets + poor cell
    expected = ChinchillaLaw(size="model_scale").fit(finals).coefficients_
    for name, value in expected.items():
        assert payload["coefficients"][name] == pytest.approx(value, rel=1e-9), name
    curves = fit(path, "--json")["coefficients"]
    assert max(abs(payload["coefficients"][k] / curves[k] - 1) for k in curves) > 0.01


def test_law_points_carry_the_laws_columns(study):
    path, best, finals = study
    with ResultsStore(path) as store:
        runs, curve = store.runs(), store.curve()
    final = law_points(runs, curve, rule="final").sort_values("run_id", ignore_index=True)
    pd.testing.assert_frame_equal(final[list(finals.columns)], finals)
    params = {config(m).run_id: config(m).derived()["P"] for m in SIZES}
    smoothed = law_points(runs, curve)
    assert set(smoothed["run_id"]) == best  # the long runs, not the poor cell or the short runs
    assert smoothed["params"].tolist() == smoothed["run_id"].map(params).tolist()
    for points in (final, smoothed):
        assert (points["kind"] == "dense").all() and (points["experts"] == 1.0).all()
        assert (points["granularity"] == 1.0).all()
        assert points["compute"].tolist() == pytest.approx(
            (points["model_scale"] * points["tokens"]).tolist()
        )
        assert (points["batch_size"] == 512).all() and set(points["lr"]) <= {1e-3, 4e-3}


def test_fit_output_names_the_points_rule(study):
    path, _, _ = study
    assert f"law points: smoothed curves, one run per model size (4 runs, 96 points) from {path}\n" in fit(
        path
    )
    assert f"law points: final point of every finished run (9 runs, 9 points) from {path}\n" in fit(
        path, "--points", "final"
    )


def test_a_bad_points_rule_is_one_error_line(study):
    path, _, _ = study
    result = runner.invoke(app, ["fit", "chinchilla", "--data", str(path), "--points", "best"])
    assert result.exit_code == 2
    assert (
        result.stderr == "error: --points must be one of 'auto', 'curves', 'budgets', 'final', got 'best'\n"
    )


def test_kind_fits_one_family_of_a_store(study):
    path, _, _ = study
    assert (
        f"law points: smoothed curves, one run per model size (4 dense runs, 96 points) from {path}\n"
        in fit(path, "--kind", "dense")
    )
    result = runner.invoke(app, ["fit", "chinchilla", "--data", str(path), "--kind", "moe"])
    assert result.exit_code == 2
    assert result.stderr == f"error: --data {path}: no finished moe runs; drop --kind or train some\n"


def test_law_points_read_the_granularity_of_a_fine_grained_moe(tmp_path):
    cfg = config("moe-800k-g4", steps=4)
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(cfg, status="finished")
        rows = [{"step": s, "tokens": s * 512, "lm_loss": 5.0 - s, "loss": 5.0 - s} for s in (1, 2, 3, 4)]
        store.add_curve(cfg.run_id, rows)
        points = law_points(store.runs(), store.curve(), rule="final")
    assert points["granularity"].tolist() == [4.0] and points["experts"].tolist() == [8.0]
