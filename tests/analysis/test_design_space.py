"""The design-space panel on a synthetic store of the moe-design preset's runs with a known answer."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from archscale.analysis.design_space import (
    PUBLISHED_GRIDS,
    design_space,
    has_design_variants,
    paper_design_runs,
)
from archscale.analysis.suite import store_runs
from archscale.laws import GranularityLaw, published
from archscale.laws.design import plan_designs
from archscale.report import figures
from archscale.store import ResultsStore
from archscale.study import study_runs

TRUTH = {"a": 20.0, "b": 30.0, "c": 0.5, "g": 3.0, "alpha": 0.12, "beta": 0.15, "gamma": 0.6}
SHARED, LOSS_FREE = 0.98, 1.01  # the variants' loss ratios to their reference designs


def make_store(path, truth: dict, seeds=((0, 1.0),), skip=lambda run: False) -> tuple:
    """Every run of the moe-design preset at each (seed, factor) of ``seeds``, finished, its loss from the
    granularity law ``truth`` (total parameters, tokens, G) times the shared-expert or loss-free ratio and
    the seed's factor; runs for which ``skip`` is true left out."""
    law = GranularityLaw.from_coefficients(truth)
    with ResultsStore(path) as results:
        for seed, factor in seeds:
            for run in study_runs("moe-design", seed=seed)[1]:
                if not skip(run):
                    _add(results, run, law, factor)
        return path, store_runs(results), results.curve()


def _add(results, run, law, factor: float) -> None:
    m = run.model
    point = {"params": [run.derived()["P"]], "tokens": [run.trained_tokens], "granularity": [m.granularity]}
    loss = factor * float(law.predict(point)[0])
    loss *= SHARED if m.n_shared_experts else LOSS_FREE if m.balance == "loss_free" else 1.0
    results.add_run(run, status="finished")
    rows = [{"step": s, "tokens": s * run.tokens_per_step, "lm_loss": loss, "loss": loss}
            for s in range(run.steps - 30, run.steps + 1)]  # fmt: skip
    results.add_curve(run.run_id, rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("design") / "results.sqlite", TRUTH)


def test_a_law_the_data_cannot_pin_down_gives_no_plan(tmp_path):
    """Granularity with no effect (g ≈ 0): the granularity fit ends on a bound, is called degenerate and
    plans nothing, while the laws over E still plan."""
    _, runs, curve = make_store(tmp_path / "flat.sqlite", TRUTH | {"g": 1e-9})
    result = design_space(runs, curve)
    assert "granularity" in result.degenerate and "granularity" not in result.plans
    reason = result.degenerate["granularity"]
    assert reason.startswith("the granularity fit is degenerate: ")
    assert "ended on its bound or faded out of the law, so the data do not pin the law down" in reason


def test_with_no_usable_design_law_the_published_laws_plan_labelled(tmp_path, store):
    """Every run at the same loss: all three design laws are degenerate, so the plans are the published laws'
    in their own design spaces, labelled as such; a store with a usable law plans by it alone."""
    _, runs, curve = make_store(tmp_path / "flat.sqlite", TRUTH | {"g": 1e-9, "a": 1e-9, "b": 1e-9})
    result = design_space(runs, curve)
    assert set(result.degenerate) == {"granularity", "joint_moe", "sparsity"} and result.fallback
    assert set(result.plans) == {"published krajewski2024", "published ludziejewski2025"}
    for key, grid in PUBLISHED_GRIDS.items():
        direct = plan_designs(result.plan_compute, published(key).laws[0], grid)
        ranked = [choice["label"] for choice in result.plans[f"published {key}"]["choices"]]
        assert ranked == [choice.design.label for choice in direct.choices]
    assert any("published laws" in note for note in result.notes)
    assert not design_space(*store[1:]).fallback


def test_the_panel_recovers_the_known_design_effects(store):
    _, runs, curve = store
    assert has_design_variants(runs)
    result = design_space(runs, curve)
    granularity = result.fits["granularity"]
    assert granularity["points"] == 4 * 3 * 3  # 4 backbones x 3 budgets x G in {1, 2, 4}, E = 8 only
    for name in ("gamma", "alpha", "beta"):
        assert granularity["coefficients"][name] == pytest.approx(TRUTH[name], rel=1e-3), name
    paired = {k.knob: k for k in result.paired}
    assert paired["shared"].ratio == pytest.approx(SHARED, rel=1e-4) and paired["shared"].backbones == 4
    assert paired["balance"].ratio == pytest.approx(LOSS_FREE, rel=1e-4)
    assert len(paired["balance"].longest) == 4  # one pair per backbone at its longest budget
    best = result.plans["granularity"]["choices"][0]
    assert (
        best["label"] == "E=8 top-2 G=16"
    )  # at this tiny compute G = 16 still gains more than its router costs
    assert set(result.fits) | set(result.skipped) == {"granularity", "joint_moe", "sparsity"}


def test_the_held_out_check_predicts_the_largest_backbone_from_the_others_only(store):
    """The largest backbone's G = 4 runs measured 5 % above the truth: a refit on the other backbones
    recovers the truth, so exactly those 3 of its 9 runs miss, each by 1 − 1/1.05 (a check fitted on the
    held-out runs too would spread the miss over all of them)."""
    _, runs, curve = store
    assert design_space(runs, curve).held_out["granularity"]["rank_correlation"] == pytest.approx(1.0)
    bumped = runs.loc[runs["model_name"] == "moe-330k-g4", "run_id"]
    curve = curve.assign(lm_loss=np.where(curve["run_id"].isin(bumped), 1.05, 1.0) * curve["lm_loss"])
    check = design_space(runs, curve).held_out["granularity"]
    assert (check["points"], check["designs"]) == (9, 3)
    assert check["max_abs_rel_error"] == pytest.approx(1 - 1 / 1.05, rel=1e-3)
    assert check["mean_abs_rel_error"] == pytest.approx((1 - 1 / 1.05) / 3, rel=1e-3)


def test_a_repeat_of_the_study_pairs_variants_within_its_own_seed(tmp_path):
    """Seed 1 repeats every run 10 % higher but lacks the shared-expert variant: the shared ratio pairs only
    seed 0's runs (pairing across seeds would mix in 0.98/1.1), the loss-free ratio both seeds' runs."""
    _, runs, curve = make_store(tmp_path / "seeds.sqlite", TRUTH, seeds=((0, 1.0), (1, 1.1)),
                                skip=lambda run: run.seed == 1 and run.model.n_shared_experts > 0)  # fmt: skip
    paired = {k.knob: k for k in design_space(runs, curve).paired}
    assert (paired["shared"].pairs, paired["balance"].pairs) == (12, 24)
    assert paired["shared"].ratio == pytest.approx(SHARED, rel=1e-4)
    assert paired["balance"].ratio == pytest.approx(LOSS_FREE, rel=1e-4)


def test_the_papers_analyses_read_the_papers_designs_only(store):
    _, runs, _ = store
    kept = paper_design_runs(runs)
    names = set(kept["model_name"])
    assert names == {
        f"{kind}-{size}" for kind in ("dense", "moe") for size in ("50k", "100k", "200k", "330k")
    }


def test_the_figure_draws_each_backbones_losses_in_every_panel(store, tmp_path, monkeypatch):
    """Read back from the Matplotlib figure: in the E and G panels one line per backbone whose points are
    that backbone's losses at its longest budget; in the paired panels the analysis's pairs."""
    _, runs, curve = store
    result = design_space(runs, curve)
    captured = {}
    save = figures._save
    monkeypatch.setattr(
        figures, "_save", lambda figure, path: captured.setdefault("figure", figure) and save(figure, path)
    )
    figures.design_space_figure(result, tmp_path / "design.png")
    experts_ax, granularity_ax, shared_ax, balance_ax = captured["figure"].axes
    points = result.points
    longest = points[points["tokens"] == points.groupby("backbone")["tokens"].transform("max")]
    for ax, knob, rows in (
        (
            experts_ax,
            "experts",
            longest[
                (longest["granularity"] == 1) & (longest["shared"] == 0) & (longest["balance"] == "aux_loss")
            ],
        ),
        (
            granularity_ax,
            "granularity",
            longest[
                (longest["kind"] == "moe")
                & (longest["experts"] == 8)
                & (longest["shared"] == 0)
                & (longest["balance"] == "aux_loss")
            ],
        ),
    ):
        assert len(ax.lines) == 4
        by_backbone = {b: g.groupby(knob)["loss"].mean() for b, g in rows.groupby("backbone")}
        matched = set()
        for line in ax.lines:
            x, y = list(line.get_xdata()), line.get_ydata()
            matched |= {
                b for b, s in by_backbone.items() if list(s.index) == x and np.allclose(s.to_numpy(), y)
            }
        assert matched == set(by_backbone)  # every backbone drawn, each with its own losses
    for ax, paired in ((shared_ax, result.paired[0]), (balance_ax, result.paired[1])):
        drawn = sorted(tuple(line.get_ydata()) for line in ax.lines)
        assert drawn == sorted((p["reference"], p["variant"]) for p in paired.longest)
        assert f"{paired.ratio:.3f}" in ax.get_title()


def test_the_report_of_a_design_store_has_the_panel_and_the_papers_analyses_only_its_designs(
    store, tmp_path, monkeypatch
):
    from archscale.report import build

    path, runs, _ = store
    seen = {}
    analyse_store = build.from_store

    def recording(results, given, **options):
        seen["runs"] = given
        return analyse_store(results, given, **options)

    monkeypatch.setattr(build, "from_store", recording)
    report = build.build_report(path, tmp_path / "report", bootstrap=10, public=False)
    assert set(seen["runs"]["run_id"]) == set(paper_design_runs(runs)["run_id"])
    design = report.summary["design_space"]
    assert design["plans"]["granularity"]["choices"][0]["label"] == "E=8 top-2 G=16"
    assert (tmp_path / "report" / "figures" / "design_space.png").exists()
    page = report.index.read_text()
    assert "MoE design space (beyond the paper)" in page and "figures/design_space.png" in page


def test_stored_configs_of_older_runs_read_as_the_papers_design():
    """A run stored before the design fields existed has none of them; it must read as the paper's MoE (the
    ModelConfig defaults), or old stores would look like design studies."""
    from archscale.analysis.points import stored_models
    from archscale.models.config import DESIGN_DEFAULTS, ModelConfig
    from archscale.models.presets import get_preset

    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    assert {f: defaults[f] for f in DESIGN_DEFAULTS} == DESIGN_DEFAULTS
    paper_moe = dataclasses.asdict(get_preset("moe-800k"))
    old = {k: v for k, v in paper_moe.items() if k not in DESIGN_DEFAULTS}
    (model,) = stored_models(pd.DataFrame({"config": [json.dumps({"model": old})]}))
    assert model == paper_moe
