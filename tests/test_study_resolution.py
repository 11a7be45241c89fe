"""The main job says what its ladder can resolve before it trains: its design as the law points read it,
and the planner's verdict on α_N."""

from __future__ import annotations

import pytest

from archscale.study import ladder_design, resolution_preview, study_design, study_runs


def test_the_micro_ladder_is_read_as_the_budgets_rule_reads_it():
    """Per family: 6 trunks read at their 3 budgets (cooldown branches) and the 4 sweep sizes' 140k-token
    cells, one point each: 10 noise units and 22 points, as the report's Eq. 5 fit has them (RESULTS.md)."""
    runs = study_runs("micro")[1]
    for kind in ("dense", "moe"):
        design = ladder_design([run for run in runs if run.model.kind == kind])
        assert len(design.runs) == 10 and sum(len(run.tokens) for run in design.runs) == 22
        assert design.n_sizes == 6
        trunks = [run for run in design.runs if run.branches]
        assert len(trunks) == 6 and all(len(run.tokens) == 3 for run in trunks)
        smallest = min(trunks, key=lambda run: run.size)
        assert sorted(smallest.tokens) == pytest.approx([5e5, 1e6, 2e6], rel=0.01)  # dense-25k's budgets


def test_the_preview_says_alpha_n_is_out_of_reach_of_the_micro_ladder():
    """Under the micro study's own law and noise the planner finds what the study found: most Eq. 5 fits
    degenerate and an α_N interval far wider than the 0.12 the paper's difference needs."""
    text = resolution_preview(study_runs("micro")[1], replicates=4)
    assert "out of reach" in text and "needs each family's interval under 0.12 wide" in text


def test_the_study_design_is_the_runs_the_store_will_hold():
    """The planner's design of the micro preset: 116 runs, the 24 cooldown branches pointing at their 12
    trunks; every run measures the noise scale but the 8 sweep runs whose batch is one micro-batch (2
    sequences: 108 runs with a noise scale, as the micro study's store has); one test eval at each run's end."""
    design, evals = study_design(study_runs("micro")[1])
    assert len(design) == 116
    branched = design[design["trunk"] != design["run_id"]]
    assert len(branched) == 24 and branched["trunk"].nunique() == 12
    assert set(branched["trunk"]) <= set(design["run_id"])
    assert (~design["noise_probe"]).sum() == 8 and (
        design.loc[~design["noise_probe"], "batch_tokens"] == 256
    ).all()
    assert sorted(design["batch_tokens"].unique()) == [256, 512, 1024, 2048, 4096]  # × seq 128
    assert (
        len(evals) == 116
        and evals.groupby("run_id")["tokens"].max().to_dict() == design.set_index("run_id")["D"].to_dict()
    )
