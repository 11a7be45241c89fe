"""Stored runs as whole-curve tables: the planned schedule of each run step by step (a WSD trunk and its
cooldown branch), losses after the warm-up, and the predictions built on them: a branch's end from its trunk
alone, and where an unfinished run will end."""

from __future__ import annotations

import json
from html import escape

import numpy as np
import pandas as pd
import pytest

from archscale.analysis.curve_tables import branch_predictions, predicted_ends, step_table, store_step_table
from archscale.laws import AnnealingLaw
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig

TRUTH = {"L0": 2.0, "A": 0.8, "alpha": 0.4, "C": 0.3}
WARMUP = 20


def _run(steps: int, **changes) -> RunConfig:
    base = {"model": "dense-100k", "tokens": steps * 4 * 64, "batch_size": 4, "seq_len": 64, "lr": 3e-3,
            "schedule": "wsd", "warmup_steps": WARMUP, "decay_fraction": 0.25}  # fmt: skip
    return RunConfig.from_dict({**base, **changes})


def _annealing_loss(run: RunConfig, upto: int) -> list[float]:
    """The annealing law with λ = 0.999 by a literal loop over the run's own rates (RunConfig.lr_at)."""
    eta = [run.lr_at(s) for s in range(run.steps)]
    peak = max(range(run.steps), key=lambda s: (eta[s], -s)) + 1  # first step at the peak, 1-based
    losses, area, momentum, annealed = [], 0.0, 0.0, 0.0
    for t in range(1, upto + 1):
        area += eta[t - 1]
        momentum = 0.999 * momentum + (eta[t - 2] - eta[t - 1] if t > peak else 0.0)
        annealed += momentum
        losses.append(TRUTH["L0"] + TRUTH["A"] * area ** -TRUTH["alpha"] - TRUTH["C"] * annealed)
    return losses


@pytest.fixture
def store(tmp_path):
    """A trunk of 400 steps, its branch of 240 (decay from step 180), and an unfinished run at step 250 of
    400 with a longer decay, all following the annealing law exactly."""
    runs = {"trunk": _run(400), "branch": _run(240), "open": _run(400, decay_fraction=0.5, seed=1)}
    reached = {"trunk": 400, "branch": 240, "open": 250}
    with ResultsStore(tmp_path / "s.sqlite") as s:
        for name, run in runs.items():
            s.add_run(run)
            losses = _annealing_loss(run, reached[name])
            s.add_curve(run.run_id, [{"step": t, "lm_loss": v, "loss": v, "lr": run.lr_at(t - 1)}
                                     for t, v in enumerate(losses, start=1)])  # fmt: skip
            s.set_status(run.run_id, "finished" if name != "open" else "interrupted")
        yield s, runs


def test_the_table_is_each_runs_planned_schedule_with_losses_after_the_warm_up(store) -> None:
    s, runs = store
    table = step_table(s.runs(), s.curve(), {r.run_id: s.config(r.run_id) for r in runs.values()}, window=1)
    for name, run in runs.items():
        rows = table[table["run_id"] == run.run_id]
        expected_lr = [run.lr_at(step) for step in range(run.steps)]
        assert rows["step"].tolist() == list(range(1, run.steps + 1))
        np.testing.assert_allclose(rows["lr"], expected_lr, rtol=1e-15)
        measured = rows.dropna(subset=["loss"])
        reached = 250 if name == "open" else run.steps
        assert measured["step"].tolist() == list(range(WARMUP + 1, reached + 1))
        np.testing.assert_allclose(measured["loss"], _annealing_loss(run, reached)[WARMUP:], rtol=1e-12)
    branch = table[table["run_id"] == runs["branch"].run_id]
    trunk = table[table["run_id"] == runs["trunk"].run_id]
    prefix = 240 - 60  # the branch is the trunk up to its own decay start
    assert branch["lr"].iloc[:prefix].tolist() == trunk["lr"].iloc[:prefix].tolist()
    assert branch["lr"].iloc[prefix] < trunk["lr"].iloc[prefix]


def test_a_branch_is_predicted_from_its_trunk_and_an_open_run_to_its_end(store) -> None:
    s, runs = store
    table = store_step_table(s)
    law = AnnealingLaw()
    branches = branch_predictions(table, {runs["branch"].run_id: runs["trunk"].run_id}, law)
    assert len(branches) == 1
    assert abs(branches["error"].iloc[0]) < 2e-3, branches  # exact curves: only the smoothing differs
    ends = predicted_ends(table, law)
    assert ends["run_id"].tolist() == [runs["open"].run_id]
    truth = _annealing_loss(runs["open"], 400)[-1]
    assert ends["reached"].iloc[0] == 250 and ends["steps"].iloc[0] == 400
    assert ends["predicted"].iloc[0] == pytest.approx(truth, rel=3e-3)
    assert np.isnan(ends["lower"].iloc[0]) and "not bootstrapped" in ends["no_interval"].iloc[0]


def test_runs_without_curves_are_read_without_losses(store) -> None:
    s, runs = store
    empty = s.curve().iloc[:0]
    table = step_table(s.runs(), empty, {r.run_id: s.config(r.run_id) for r in runs.values()})
    assert table["loss"].isna().all() and len(table) == 400 + 240 + 400
    assert isinstance(table, pd.DataFrame)


def test_fit_reads_a_stores_curves_for_one_model(store, tmp_path) -> None:
    from typer.testing import CliRunner

    from archscale.cli.main import app

    s, _ = store
    result = CliRunner().invoke(app, ["fit", "annealing", "--data", str(s.path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["coefficients"]["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)
    assert payload["n_points"] == (400 - WARMUP) + (240 - WARMUP) + (250 - WARMUP)
    wrong = CliRunner().invoke(app, ["fit", "annealing", "--data", str(s.path), "--model", "moe-100k"])
    assert wrong.exit_code == 2 and "no runs of it" in wrong.stderr


def test_runs_list_shows_where_an_unfinished_run_will_end(store) -> None:
    from typer.testing import CliRunner

    from archscale.cli.main import app

    s, runs = store
    result = CliRunner().invoke(app, ["runs", "list", "--store", str(s.path), "--predict"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(runs["open"].run_id))
    predicted, lower, upper = (float(v.strip("[],")) for v in line.split()[7:10])  # after the last loss
    assert predicted == pytest.approx(_annealing_loss(runs["open"], 400)[-1], rel=3e-3)
    assert lower < predicted < upper


def test_the_report_checks_each_branch_against_its_trunk(store) -> None:
    from archscale.analysis.curve_tables import store_branch_predictions
    from archscale.report.page import _branches

    s, runs = store
    s.set_meta(runs["branch"].run_id, "branch", {"run_id": runs["branch"].run_id,
                                                 "trunk_id": runs["trunk"].run_id, "step": 180})  # fmt: skip
    checks = store_branch_predictions(s)
    assert checks["law"].tolist() == ["multi-power", "annealing"]
    assert set(checks["run_id"]) == {runs["branch"].run_id} and set(checks["trunk_id"]) == {
        runs["trunk"].run_id
    }
    annealing = checks[checks["law"] == "annealing"].iloc[0]
    assert abs(annealing["error"]) < 2e-3 and annealing["step"] == 240
    ends = predicted_ends(store_step_table(s), AnnealingLaw(bootstrap=50))
    html = _branches(
        {"branch_predictions": checks.to_dict("records"), "predicted_ends": ends.to_dict("records")}
    )
    assert f"{100 * annealing['error']:+.2f} %" in html and "annealing: mean |error|" in html
    end = ends.iloc[0]
    # the branch shares its trunk's run effect: two noise units (trunk, open run) are too few for an interval
    assert "this fit has 2" in end["no_interval"] and np.isnan(end["lower"])
    assert f"<td>{end['predicted']:.4f}</td><td>{escape(end['no_interval'])}</td>" in html


def _wsd_rates(steps: int, peak: float, warmup: int, fraction: float, floor: float = 0.1) -> np.ndarray:
    """The WSD schedule as its docstring defines it (archscale.training.schedules), written out again."""
    decay = max(1, round(fraction * steps))
    rates = []
    for s in range(steps):
        if s < warmup:
            rates.append((s + 1) / (warmup + 1))
        else:
            done = s - (steps - decay) + 1
            rates.append(1.0 if done <= 0 else floor + (1 - floor) * (1 - done / decay))
    return peak * np.asarray(rates)


def test_the_preferred_decay_fraction_is_the_best_of_the_predicted_finals(tmp_path) -> None:
    from typer.testing import CliRunner

    from archscale.analysis.curve_tables import best_decay_fraction
    from archscale.cli.main import app

    law = AnnealingLaw.from_coefficients(TRUTH)
    best, finals = best_decay_fraction(law, 600, 3e-3, warmup_steps=30)
    brute = {}
    for fraction in np.round(np.arange(0.05, 0.51, 0.05), 2):
        rates = _wsd_rates(600, 3e-3, 30, float(fraction))
        table = pd.DataFrame({"run_id": "x", "step": np.arange(1, 601), "lr": rates})
        brute[float(fraction)] = law.predict(table)[-1]
    assert finals == pytest.approx(brute, rel=1e-12)
    assert best == min(brute, key=brute.get)
    (tmp_path / "fit.json").write_text(json.dumps(law.to_dict()))
    args = ["curve", "--fit", str(tmp_path / "fit.json"), "--steps", "600", "--lr", "3e-3", "--warmup", "30"]
    result = CliRunner().invoke(app, [*args, "--decay-fraction", "0.25", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["final_loss"] == pytest.approx(brute[0.25], rel=1e-12)
    assert payload["best_wsd_decay_fraction"] == best and payload["interval"] is None
    refused = CliRunner().invoke(app, [*args, "--warmup", "600"])
    assert refused.exit_code == 2 and "--warmup must lie in [0, --steps)" in refused.stderr
