"""The report's downstream panel: the two-step chain fitted per task on a store's evaluated checkpoints."""

from __future__ import annotations

import json
from html import escape

import numpy as np
import pytest

from archscale.analysis.downstream import DOWNSTREAM_CHECKPOINTS_KEY, downstream_points
from archscale.analysis.downstream_chain import downstream_panels
from archscale.analysis.suite import store_runs
from archscale.laws.downstream_laws import LadderTruth
from archscale.report import write_report
from archscale.report.build import run_inventory
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig

# task losses of 0.8-1.5 bits per byte at the micro sizes (P 1e5-2e6, D 5e3-2e5): accuracy 0.3-0.9
TRUTH = LadderTruth(step1={"A": 5.0, "B": 10.0, "alpha": 0.3, "beta": 0.3, "E": 0.5},
                    step2={"a": -0.74, "L0": 1.1, "k": 6.0, "b": 0.99})  # fmt: skip
PRESETS = ("dense-100k", "dense-330k", "dense-800k", "dense-1.6m")
STEPS = (100, 200, 400, 800)  # four budgets per size, 512 tokens a step: the 3 smaller sizes are 12 runs,
# the smallest ladder whose chained intervals are calibrated
CHECKPOINTS = 20


@pytest.fixture(scope="module")
def ladder_store(tmp_path_factory):
    """Sixteen finished dense runs (4 sizes × 4 budgets), each with 20 evaluated checkpoints of two tasks:
    ``good`` follows TRUTH with checkpoint noise, ``coin`` sits at its chance 0.25."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("downstream") / "results.sqlite"
    with ResultsStore(path) as store:
        for preset in PRESETS:
            for steps in STEPS:
                config = RunConfig.from_dict({"model": preset, "tokens": 512 * steps, "batch_size": 8,
                                              "lr": 1e-3, "seq_len": 64})  # fmt: skip
                store.add_run(config, status="finished")
                params = float(store.runs(run_id=[config.run_id])["P"].item())
                by_step = {}
                for step in np.linspace(steps / CHECKPOINTS, steps, CHECKPOINTS).astype(int):
                    loss = TRUTH.task_loss(params, 512.0 * step) * np.exp(rng.normal(0, 0.005))
                    good = float(TRUTH.accuracy(loss)) + rng.normal(0, 0.01)
                    by_step[str(step)] = {
                        "good": {"task_loss": loss, "accuracy": good, "chance": 0.25, "num_fewshot": 0},
                        "coin": {"task_loss": 1.1 * loss, "accuracy": 0.25 + rng.normal(0, 0.01),
                                 "chance": 0.25, "num_fewshot": 0},
                    }  # fmt: skip
                store.set_meta(config.run_id, DOWNSTREAM_CHECKPOINTS_KEY, by_step)
    return path


def test_the_panel_forecasts_the_largest_size_from_the_smaller_ones(ladder_store, analyses, tmp_path):
    with ResultsStore(ladder_store, read_only=True) as store:
        chains = downstream_panels(store, store_runs(store), bootstrap=40, seed=0)
        inventory = run_inventory(store)
    report = write_report(analyses, tmp_path, inventory=inventory, chains=chains)
    assert report.figures["downstream_chain"].stat().st_size > 10_000
    (panel,) = json.loads(report.summary_path.read_text())["downstream_chain"]["panels"]
    assert panel["family"] == "dense" and panel["held_out"] and len(panel["sizes"]) == 4
    largest = panel["sizes"][-1]
    rows = {(r["task"], r["tokens"]): r for r in panel["predictions"]}
    assert sorted(rows) == sorted((task, 512.0 * s) for task in ("good", "coin") for s in STEPS)
    for steps in STEPS:
        good, coin = rows["good", 512.0 * steps], rows["coin", 512.0 * steps]
        true = float(TRUTH.accuracy(TRUTH.task_loss(largest, 512.0 * steps)))
        assert good["params"] == largest and good["accuracy"] == pytest.approx(true, abs=0.03)
        assert good["accuracy_interval"][0] < good["accuracy"] < good["accuracy_interval"][1]
        assert coin["accuracy"] is None and "at chance" in coin["unpredictable"]
    assert panel["fits"]["coin"]["chance"] == 0.25  # the chance the bridge stored, not given by hand
    page = report.index.read_text()
    assert "figures/downstream_chain.png" in page and page.count(
        "<td class=text>dense</td><td class=text>good"
    ) == len(STEPS)
    assert "the task is at chance at the ladder" in page


def test_without_checkpoint_points_the_panel_is_one_line(store, analyses, tmp_path):
    panels, note = downstream_panels(store, store_runs(store), bootstrap=0, seed=0)
    assert panels == [] and "\n" not in note and "archscale eval" in note
    report = write_report(analyses, tmp_path, inventory=run_inventory(store), chains=(panels, note))
    assert "downstream_chain" not in report.figures
    assert json.loads(report.summary_path.read_text())["downstream_chain"] == {"panels": [], "note": note}
    section = report.index.read_text().split("(two-step chain, beyond the paper)</h2>")[1].split("<h2>")[0]
    assert section == f"<p class=note>{escape(note)}</p>"


@pytest.fixture(scope="module")
def branch_store(tmp_path_factory):
    """The micro study's kind of ladder: per size a WSD trunk of 800 steps and cooldown branches at 200 and
    400 (store meta ``branch``), each scored once, at its final weights, on ``good``."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("branches") / "results.sqlite"
    with ResultsStore(path) as store:
        for preset in PRESETS:
            trunk = None
            for steps in (800, 400, 200):
                config = RunConfig.from_dict({"model": preset, "tokens": 512 * steps, "batch_size": 8,
                                              "lr": 1e-3, "seq_len": 64})  # fmt: skip
                store.add_run(config, status="finished")
                trunk = trunk or config.run_id
                if config.run_id != trunk:
                    store.set_meta(config.run_id, "branch", {"run_id": config.run_id, "trunk_id": trunk,
                                                             "step": int(0.8 * steps)})  # fmt: skip
                params = float(store.runs(run_id=[config.run_id])["P"].item())
                loss = TRUTH.task_loss(params, 512.0 * steps) * np.exp(rng.normal(0, 0.005))
                good = float(TRUTH.accuracy(loss)) + rng.normal(0, 0.01)
                record = {"task_loss": loss, "accuracy": good, "chance": 0.25, "num_fewshot": 0}
                store.set_meta(config.run_id, DOWNSTREAM_CHECKPOINTS_KEY, {str(steps): {"good": record}})
    return path


def test_a_ladder_of_branches_scored_once_each_is_fitted_along_its_trunks(branch_store):
    with ResultsStore(branch_store, read_only=True) as store:
        points = downstream_points(store)
        (panel,), note = downstream_panels(store, store_runs(store), bootstrap=0, seed=0)
    assert note is None and len(points) == 12 and points["trajectory"].nunique() == len(PRESETS)
    trunks = points[points["step"] == 800].set_index("params")["run_id"]
    assert (points["trajectory"] == points["params"].map(trunks)).all()  # each size's runs: one trajectory
    assert panel.held_out and panel.chains["good"].law is not None  # per run, the 10 % cut left nothing
    for row in panel.rows:
        true = float(TRUTH.accuracy(TRUTH.task_loss(row["params"], row["tokens"])))
        assert row["accuracy"] == pytest.approx(true, abs=0.04)
