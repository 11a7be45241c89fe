"""The study planner: simulated studies recover the truth they were drawn from, the plan is exactly the
study's own analyses over its replicates, and a store's measured truth and noise come back from a simulation."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from analysis_synthetic import (
    ALPHA_B,
    ALPHA_LR,
    DENSE_LAW,
    GRID_BATCHES,
    GRID_LRS,
    GRID_SIZES,
    LADDER_SIZES,
    LAMBDA_B,
    LAMBDA_LR,
    MOE_LAW,
    NOISE_C,
    NOISE_EXPONENT,
)
from typer.testing import CliRunner

from archscale.analysis.errors import AnalysisError
from archscale.analysis.study_plan import (
    FamilyTruth,
    StudyNoise,
    StudyTruth,
    measure_truth,
    plan_study,
    replicate_seeds,
    simulate_study,
    truth_from_dict,
    truth_to_dict,
)
from archscale.analysis.suite import analyse
from archscale.cli.main import app
from archscale.study import MICRO_TRUTH
from cli_contract import invoke_one_line_error

CURVATURE = 0.05
TRUTH = StudyTruth(
    {
        kind: FamilyTruth(
            law=law,
            batch=(LAMBDA_B[kind], ALPHA_B),
            lr=(LAMBDA_LR[kind], ALPHA_LR),
            noise_scale=(NOISE_C[kind], NOISE_EXPONENT),
        )
        for kind, law in (("dense", DENSE_LAW), ("moe", MOE_LAW))
    },
    curvature_batch=CURVATURE,
    curvature_lr=CURVATURE,
)
QUIET = StudyNoise(run=0.002, step=0.003, noise_scale=0.3, noise_scale_run=0.0, eval=0.001)


def _design(kinds=("dense", "moe")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per family a 6-size ladder (batch 1024, LR 1e-3, 2^21 tokens) and batch × LR grids at 3 sizes (2^19
    tokens), every run measuring the noise scale, a test eval at the end of each."""
    rows = [(k, n, 1024, 1e-3, 2**21) for k, n in itertools.product(kinds, LADDER_SIZES)]
    rows += [
        (k, n, b, lr, 2**19) for k, n, b, lr in itertools.product(kinds, GRID_SIZES, GRID_BATCHES, GRID_LRS)
    ]
    design = pd.DataFrame(
        [
            {"run_id": f"r{i}", "kind": k, "n_experts": 1 if k == "dense" else 8, "N": n, "P": n / 6,
             "P_active": n / 6, "D": d, "batch_tokens": b, "lr": lr, "seed": 0, "trunk": f"r{i}",
             "warmup_steps": 20, "branch_step": 0, "noise_probe": True}
            for i, (k, n, b, lr, d) in enumerate(rows)
        ]
    )  # fmt: skip
    return design, pd.DataFrame({"run_id": design["run_id"], "tokens": design["D"].astype(float)})


@pytest.fixture(scope="module")
def simulated():
    design, evals = _design()
    runs, curve, tests = simulate_study(design, evals, TRUTH, QUIET, seed=11)
    return runs, curve, analyse(runs, curve, tests, bootstrap=30, seed=1)


def test_a_simulated_study_recovers_its_truth(simulated):
    """The study's analyses on a quiet simulation find the truth's effects: B_opt MoE ÷ dense at equal loss
    3000/5000 = 0.6 (equal exponents), lr_opt 6.75e-3/4.5e-3 = 1.5, noise scale 1.2e5/2e5 = 0.6; and on the
    ladders alone with no loss away from the optima, each family's α_N = β/(α+β): 0.5 dense, 0.35/0.6 MoE."""
    _, _, analyses = simulated
    h = analyses.hyperparams
    assert h.batch_comparison.ratio == pytest.approx(0.6, rel=0.1)
    assert h.lr_comparison.ratio == pytest.approx(1.5, rel=0.1)
    assert analyses.noise.comparison.ratio == pytest.approx(0.6, rel=0.05)
    design, evals = _design()
    ladder = design[design["D"] == 2**21]
    flat = StudyTruth(TRUTH.families, curvature_batch=0.0, curvature_lr=0.0)
    no_run_effect = StudyNoise(run=0.0, step=0.003, noise_scale=0.02, noise_scale_run=0.0, eval=0.001)
    tests = evals[evals["run_id"].isin(ladder["run_id"])]
    runs, curve, tests = simulate_study(ladder, tests, flat, no_run_effect, 3)
    fits = analyse(runs, curve, tests, bootstrap=0).allocation.fits
    assert fits["dense"]["derived"]["alpha_N"] == pytest.approx(0.5, abs=0.015)
    assert fits["moe"]["derived"]["alpha_N"] == pytest.approx(0.35 / 0.6, abs=0.015)


def test_measure_truth_recovers_the_simulated_truth(simulated):
    """What measure_truth reads from a simulated store is the truth and noise it was drawn from."""
    runs, curve, analyses = simulated
    truth, noise = measure_truth(runs, curve, analyses)
    assert noise.step == pytest.approx(QUIET.step, rel=0.1)
    assert noise.noise_scale == pytest.approx(QUIET.noise_scale, rel=0.1)
    assert truth.curvature_batch == pytest.approx(CURVATURE, rel=0.3)
    assert truth.curvature_lr == pytest.approx(CURVATURE, rel=0.3)
    for kind in ("dense", "moe"):
        measured, true = truth.families[kind], TRUTH.families[kind]
        for law in ("batch", "lr"):  # the optimum at a loss of 2, inside the grids' range
            (lam, exponent), (true_lam, true_exponent) = getattr(measured, law), getattr(true, law)
            assert lam / 2**exponent == pytest.approx(true_lam / 2**true_exponent, rel=0.1), (kind, law)
    # the noise-scale laws give the truth's MoE ÷ dense at the comparison's loss (their exponents carry the
    # trainer's moving-average lag, as a real store's do, so they are not compared one by one)
    (lam_d, e_d), (lam_m, e_m) = truth.families["dense"].noise_scale, truth.families["moe"].noise_scale
    at = analyses.noise.comparison.reference
    assert (lam_m / at**e_m) / (lam_d / at**e_d) == pytest.approx(0.6, rel=0.05)
    # no repeated seeds in a simulated store: the run effect is the stated default, not measured
    assert "no repeated seeds" in noise.source


def test_the_plan_is_the_studys_analyses_over_its_replicates():
    """plan_study's widths equal a brute-force loop: simulate with each replicate's seed, analyse, read the
    verdicts (same seeds, same code path as the study's report)."""
    design, evals = _design()
    noise = StudyNoise(run=0.02, step=0.03, noise_scale=0.05, noise_scale_run=0.1, eval=0.005)
    plan = plan_study(design, evals, TRUTH, noise, replicates=2, bootstrap=20, seed=5)
    brute = []
    for sim_seed, fit_seed in replicate_seeds(5, 2):
        runs, curve, tests = simulate_study(design, evals, TRUTH, noise, sim_seed)
        brute.append(analyse(runs, curve, tests, bootstrap=20, seed=fit_seed).verdicts.rows)
    assert [c.claim for c in plan.claims] == [v.claim for v in brute[0]]
    for i, claim in enumerate(plan.claims):
        rows = [b[i] for b in brute if b[i].lower is not None and b[i].upper is not None]
        widths = [math.log(r.upper / r.lower) if claim.ratio else r.upper - r.lower for r in rows]
        assert claim.width == (pytest.approx(float(np.median(widths))) if widths else None)
    # noisier runs widen every ratio's interval against the quiet study
    quiet = plan_study(design, evals, TRUTH, QUIET, replicates=2, bootstrap=20, seed=5)
    for loud, calm in zip(plan.claims, quiet.claims, strict=True):
        if loud.ratio and loud.width is not None:
            assert loud.width > calm.width, loud.measure


def test_a_design_without_moe_runs_tests_no_claim():
    design, evals = _design(kinds=("dense",))
    plan = plan_study(design, evals, TRUTH, QUIET, replicates=2, bootstrap=10)
    assert all(c.width is None and c.verdicts["not tested"] == 1.0 for c in plan.claims)


def test_bad_designs_and_noise_are_refused():
    design, evals = _design()
    with pytest.raises(AnalysisError, match="noise_probe"):
        plan_study(design.drop(columns=["noise_probe"]), evals, TRUTH, QUIET)
    with pytest.raises(AnalysisError, match=r"noise\.step"):
        StudyNoise(run=0.01, step=-1.0, noise_scale=0.0, noise_scale_run=0.0, eval=0.0)
    with pytest.raises(AnalysisError, match="replicates"):
        plan_study(design, evals, TRUTH, QUIET, replicates=1)


def test_plan_study_cli_names_a_missing_store(tmp_path):
    invoke_one_line_error(["plan", "study", "--store", str(tmp_path / "none.sqlite")], "--store", tmp_path)


def test_the_truth_file_round_trips_and_names_a_bad_field(tmp_path):
    data = truth_to_dict(TRUTH, QUIET)
    assert truth_from_dict(data) == (TRUTH, QUIET)
    del data["truth"]["moe"]["lr"]["exponent"]
    with pytest.raises(AnalysisError, match=r"truth\.moe\.lr: exponent is missing"):
        truth_from_dict(data)
    data = truth_to_dict(TRUTH, QUIET)
    data["noise"]["step"] = "big"
    path = tmp_path / "truth.yaml"
    path.write_text(yaml.safe_dump(data))
    line = invoke_one_line_error(
        ["plan", "study", "--truth", str(path), "--preset", "micro"], "noise.step", tmp_path
    )
    assert "must be a number" in line


def test_plan_study_cli_plans_the_micro_preset_with_its_measured_truth(tmp_path):
    """Without a store the micro preset is planned under the micro study's measured truth: every claim the
    report judges comes back, in the report's order, and the written truth file reads back as that truth."""
    written = tmp_path / "micro-truth.yaml"
    args = ["plan", "study", "--preset", "micro", "--replicates", "2", "--bootstrap", "10", "--json"]
    result = CliRunner().invoke(app, [*args, "--write-truth", str(written)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["design"] == "116 runs of micro"
    assert [c["measure"] for c in payload["claims"]] == [
        "test loss MoE ÷ dense", "α_N(MoE) − α_N(dense)", "B_opt MoE ÷ dense", "lr_opt MoE ÷ dense",
        "B_simple MoE ÷ dense",
    ]  # fmt: skip
    assert truth_from_dict(yaml.safe_load(written.read_text())) == truth_from_dict(MICRO_TRUTH)


def test_a_branch_is_its_trunk_up_to_its_branch_step():
    """A cooldown branch stores its trunk's stable phase: the same losses and noise scales up to its branch
    step, its own after; the warm-up shows in the simulated LR (the analyses skip it)."""
    design, _ = _design(kinds=("dense",))
    trunk = design.iloc[[0]].assign(run_id="trunk", trunk="trunk")
    branch = design.iloc[[0]].assign(run_id="branch", trunk="trunk", D=2**20, branch_step=700)
    pair = pd.concat([branch, trunk], ignore_index=True)  # the branch first: order must not matter
    tests = pd.DataFrame({"run_id": ["trunk", "branch"], "tokens": [2.0**21, 2.0**20]})
    _, curve, _ = simulate_study(pair, tests, TRUTH, StudyNoise(0.02, 0.05, 0.5, 0.3, 0.0), seed=4)
    t = curve[curve["run_id"] == "trunk"].set_index("step")
    b = curve[curve["run_id"] == "branch"].set_index("step")
    assert len(b) == 1024 and len(t) == 2048
    shared = b.index <= 700
    np.testing.assert_array_equal(b.loc[shared, "lm_loss"], t.loc[b.index[shared], "lm_loss"])
    np.testing.assert_array_equal(b.loc[shared, "noise_scale"], t.loc[b.index[shared], "noise_scale"])
    assert (b.loc[~shared, "lm_loss"] != t.loc[b.index[~shared], "lm_loss"]).all()
    assert t.loc[10, "lr"] == pytest.approx(1e-3 * 10 / 20) and t.loc[20, "lr"] == t.loc[2048, "lr"] == 1e-3
