"""The ladder planner: what it promises equals fitting its draws with the CLI; designs it cannot fit are
refused; its costs, screen and search hold against hand computations and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.laws import ChinchillaLaw, Law
from archscale.laws.errors import LawDataError
from archscale.laws.ladder import (
    LadderDesign,
    LadderGrid,
    LadderNoise,
    LadderRun,
    Replicate,
    evaluate_design,
    huber_variance_factor,
    linear_widths,
    parse_spec,
    replicate_tables,
    scaled_design,
    search_ladders,
)
from cli_contract import invoke_one_line_error

TRUTH = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}  # Hoffmann et al. 2022
TARGET = {"params": 1e9, "tokens": 2e10}
NOISE = LadderNoise(run=0.005, point=0.005)


def truth() -> ChinchillaLaw:
    return ChinchillaLaw.from_coefficients(TRUTH)


def spec(**changes) -> dict:
    """A design file: 5 sizes ×2 apart, 20 tokens per parameter, each read at 6 points along its curve."""
    runs = [
        {"params": n, "tokens": {"from": 20 * n / 16, "to": 20 * n, "points": 6}}
        for n in (1e7 * 2.0 ** np.arange(5)).tolist()
    ]
    base = {"law": {"name": "chinchilla", **TRUTH}, "runs": runs, "noise": {"run": 0.005, "point": 0.005},
            "target": dict(TARGET)}  # fmt: skip
    return base | changes


@pytest.mark.parametrize(
    ("options", "flags"),
    [({}, []), ({"size": "model_scale", "loss": "squared"}, ["--size", "model_scale", "--loss", "squared"])],
)
def test_an_evaluation_equals_fitting_its_draws_with_the_cli(tmp_path, options, flags):
    """The planner's replicates are what `archscale fit` gives on the same tables with the same seeds and
    the law's options: the α_N width, the target band's width and the degenerate flag of every replicate."""
    size = options.get("size", "params")
    runs = [
        {size: n, "tokens": {"from": 20 * n / 16, "to": 20 * n, "points": 6}}
        for n in (1e7 * 2.0 ** np.arange(5)).tolist()
    ]
    target = {size: TARGET["params"], "tokens": TARGET["tokens"]}
    parsed = parse_spec(spec(law={"name": "chinchilla", **TRUTH, **options}, runs=runs, target=target))
    evaluation = evaluate_design(parsed.truth, parsed.design, parsed.noise, parsed.target, bootstrap=40,
                                 replicates=3, seed=7)  # fmt: skip
    draws = list(replicate_tables(parsed.truth, parsed.design, parsed.noise, 3, seed=7))
    assert len({round(t["loss"].sum(), 9) for t, _ in draws}) == 3  # three different draws
    for (table, fit_seed), planned in zip(draws, evaluation.replicates, strict=True):
        data, out = tmp_path / "ladder.csv", tmp_path / "fit.json"
        table.to_csv(data, index=False)
        args = ["fit", "chinchilla", "--data", str(data), "--bootstrap", "40", "--seed", str(fit_seed), "--out",
                str(out), *flags]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        by_cli = Replicate.of(Law.from_dict(json.loads(out.read_text())), pd.DataFrame([target]))
        assert by_cli.degenerate == planned.degenerate
        assert by_cli.alpha_N_width == pytest.approx(planned.alpha_N_width, rel=1e-6)
        assert by_cli.target_loss_log_width == pytest.approx(planned.target_loss_log_width, rel=1e-6)


def test_a_design_with_one_size_is_refused_with_the_reason():
    one_size = spec(runs=[{"params": 1e7, "tokens": [1e8, 2e8, 4e8], "seeds": 3}])
    parsed = parse_spec(one_size)
    with pytest.raises(LawDataError, match=r"one model size.*several model sizes"):
        evaluate_design(parsed.truth, parsed.design, parsed.noise, parsed.target, replicates=1)


def test_a_design_that_reads_every_run_at_one_token_count_cannot_determine_the_law():
    """With D the same for every point, B/D^β and σ are one constant: 3 of 5 coefficients are pinned down."""
    parsed = parse_spec(spec(runs=[{"params": n, "tokens": [1e9]} for n in 1e7 * 2.0 ** np.arange(6)]))
    with pytest.raises(LawDataError, match="pin down 3 of its 5 coefficients"):
        evaluate_design(parsed.truth, parsed.design, parsed.noise, parsed.target, replicates=1)


def test_runs_read_only_at_their_ends_on_one_ray_leave_alpha_n_unknown():
    """At 20 tokens per parameter read only at each run's end, D moves with N: the screen gives α_N a width
    over 100× that of the same runs read along their curves, while a target on that ray stays predictable."""
    sizes = 1e7 * 2.0 ** np.arange(8)
    ends = LadderDesign(tuple(LadderRun(n, (20 * n,)) for n in sizes))
    curves = LadderDesign(tuple(LadderRun(n, tuple(np.geomspace(20 * n / 16, 20 * n, 8))) for n in sizes))
    at_ends, along = (linear_widths(truth(), d, NOISE, TARGET) for d in (ends, curves))
    assert at_ends["alpha_N_width"] > 100 * along["alpha_N_width"]
    assert at_ends["target_loss_log_width"] < 2 * along["target_loss_log_width"]


def test_the_cli_refuses_a_one_size_design_in_one_line(tmp_path):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(spec(runs=[{"params": 1e7, "tokens": [1e8, 2e8]}])))
    invoke_one_line_error(["plan", "ladder", "--evaluate", str(path)], "one model size", tmp_path)


def test_yaml_text_numbers_are_read_as_the_sweep_specs_read_them():
    """PyYAML reads 1e7 and 1.0e7 as text (YAML 1.1 wants 1.0e+7); the design file takes them as numbers."""
    design = yaml.safe_load(
        "law: {name: chinchilla, A: 406.4, B: 410.7, alpha: 0.34, beta: 0.28, sigma: 1.69}\n"
        "runs: [{params: 1.0e7, tokens: [1e8, 2.0e8], seeds: 2}, {params: 3e7, tokens: {from: 1e8, to: 4e8, points: 3}}]\n"
        "noise: {run: 0.01, point: 0.005}\ntarget: {params: 1e9, tokens: 2e10}\n"
    )
    assert isinstance(design["runs"][0]["params"], str)  # the reader's view, which the parser must undo
    parsed = parse_spec(design)
    assert [run.size for run in parsed.design.runs] == [1e7, 3e7]
    assert parsed.design.runs[0].tokens == (1e8, 2e8) and parsed.target == {"params": 1e9, "tokens": 2e10}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"noise": {"run": 0.01}}, "noise: missing key(s) ['point']"),
        ({"noise": {"run": "1%", "point": 0.01}}, "noise.run: must be a number"),
        (
            {"runs": [{"params": 1e7, "tokens": {"from": 10, "to": 5, "points": 3}}]},
            "runs[0].tokens: from (10)",
        ),
        ({"runs": [{"params": 1e7, "tokens": [1e8], "seeds": 0}]}, "runs[0].seeds: must be a whole number"),
        ({"runs": [{"size": 1e7, "tokens": [1e8]}]}, "runs[0]: unknown key(s) ['size']"),
        ({"target": {"params": 1e9}}, "target: missing key(s) ['tokens']"),
        ({"law": {"name": "chinchilla", "A": 1.0}}, "takes coefficients"),
        ({"law": {"name": "chinchilla", **TRUTH, "A": -400}}, "must be > 0"),
        ({"law": {"name": "chinchilla", **TRUTH, "alpha": -0.3}}, "outside the fitter's bounds"),
        ({"law": {"name": "chinchilla", **TRUTH, "bootstrap": 10}}, "set by the planner"),
        ({"runs": [{"params": 1e7, "tokens": [1e8], "branches": "false"}]}, "runs[0].branches must be true"),
        ({"target": {"params": 10**400, "tokens": 1e9}}, "target.params: must be a number"),
    ],
)
def test_a_bad_design_file_names_the_field(changes, named):
    with pytest.raises(LawDataError) as caught:
        parse_spec(spec(**changes))
    assert named in str(caught.value)


def test_cost_counts_seeds_and_each_branch_decay():
    """6·N·(longest + decay·other budgets)·seeds, by hand; points along a curve cost nothing extra."""
    branches = LadderRun(1e6, (1e7, 2e7, 4e7), seeds=2, branches=True)
    curve = LadderRun(1e6, (1e7, 2e7, 4e7), seeds=2)
    assert LadderDesign((branches,), decay=0.2).flops() == pytest.approx(6 * 1e6 * (4e7 + 0.2 * 3e7) * 2)
    assert LadderDesign((curve,)).flops() == pytest.approx(6 * 1e6 * 4e7 * 2)


def test_a_scaled_design_spends_the_budget_on_sizes_the_ratio_apart():
    design = scaled_design(3e18, 4, 3.0, 40.0, "branches", 2)
    sizes = [run.size for run in design.runs]
    assert design.flops() == pytest.approx(3e18)
    assert np.allclose(np.diff(np.log(sizes)), math.log(3.0))
    assert all(max(run.tokens) == pytest.approx(40 * run.size) and run.seeds == 2 for run in design.runs)


def test_the_linear_screen_scales_with_the_noise_and_matches_simulation():
    """For a least-squares fit the widths are linear in the noise (a doubled sd doubles them); for the
    default Huber fit on 8 sizes (many degrees of freedom, near-linear fits) the delta method is within 20 %
    of the simulated median widths."""
    design = scaled_design(1.8e18, 8, 2.0, 20.0, "curve", 1)
    squared = ChinchillaLaw.from_coefficients(TRUTH, loss="squared")
    small = linear_widths(squared, design, NOISE, TARGET)
    double = linear_widths(squared, design, LadderNoise(0.01, 0.01), TARGET)
    for name in small:
        assert double[name] == pytest.approx(2 * small[name], rel=1e-6)
    screen = linear_widths(truth(), design, NOISE, TARGET)
    simulated = evaluate_design(truth(), design, NOISE, TARGET, bootstrap=100, replicates=12, seed=1)
    for name, width in screen.items():
        assert simulated.expected(name) == pytest.approx(width, rel=0.2), name


@pytest.mark.parametrize(("k", "factor"), [(math.inf, 1.0), (0.0, math.pi / 2), (1.345, 1 / 0.95)])
def test_the_huber_variance_factor_at_known_thresholds(k, factor):
    """Least squares (k → ∞), least absolute deviations (k → 0: π/2) and Huber's 95 %-efficient k = 1.345."""
    assert huber_variance_factor(k) == pytest.approx(factor, rel=2e-3)


def test_runs_read_once_each_put_all_the_noise_in_the_run_effect():
    """One point per run leaves no within-run degrees of freedom: the screen, like the fitter, counts the
    point noise as run noise (the same widths as with it moved there), not a crash."""
    runs = tuple(LadderRun(n, (k * n,)) for n in 1e7 * 2.0 ** np.arange(6) for k in (10.0, 40.0))
    design = LadderDesign(runs)
    split = linear_widths(truth(), design, LadderNoise(0.004, 0.003), TARGET)
    merged = linear_widths(truth(), design, LadderNoise(0.005, 0.0), TARGET)
    for name in split:
        assert split[name] == pytest.approx(merged[name], rel=0.02)


def test_too_few_sizes_for_the_run_noise_give_no_interval():
    """4 sizes and one seed leave about one between-run degree of freedom: the law gives no interval (the
    calibrated floor), and the screen says so with an infinite width."""
    design = scaled_design(1.8e18, 4, 2.0, 20.0, "curve", 1)
    assert math.isinf(linear_widths(truth(), design, NOISE, TARGET)["target_loss_log_width"])
    evaluation = evaluate_design(truth(), design, NOISE, TARGET, bootstrap=20, replicates=2)
    assert evaluation.to_dict()["expected"]["interval_fraction"] == 0
    assert math.isinf(evaluation.score())


def test_the_search_best_is_no_worse_than_every_design_it_enumerated():
    """The search simulates only the screen's 2 best of 6 designs; simulating all 6 (brute force), none
    beats its pick by more than the Monte Carlo error of 10 replicates, and its pick uses 2 seeds (more
    between-run degrees of freedom at the same cost)."""
    grid = LadderGrid(
        sizes=(4, 5, 6), ratios=(2.0,), tokens_per_size=(20.0,), readings=("curve",), seeds=(1, 2)
    )
    search = search_ladders(truth(), 3e18, TARGET, NOISE, grid=grid, keep=2, bootstrap=40, replicates=10)
    assert len(search.screened) == 6 and len(search.evaluated) == 2
    brute = [
        evaluate_design(truth(), d, NOISE, TARGET, bootstrap=40, replicates=10, seed=5)
        for d, _ in search.screened
    ]
    assert search.best.score() <= 1.15 * min(e.score() for e in brute)
    assert search.best.design.runs[0].seeds == 2
    assert search.naive is not None and search.naive.flops == pytest.approx(3e18)


def test_the_cli_search_reports_best_and_naive_at_the_same_cost():
    args = ["plan", "ladder", "--law", "chinchilla-approach3", "--budget", "1e19", "--compute", "1e21",
            "--replicates", "3", "--bootstrap", "20", "--keep", "1", "--device", "H100", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    best, naive = payload["best"][0], payload["naive"]
    assert best["flops"] == pytest.approx(1e19) and naive["flops"] == pytest.approx(1e19)
    assert best["design"]["runs"][-1]["size"] < payload["target"]["params"]
    (hours,) = best["device_hours"].values()
    assert hours == pytest.approx(1e19 / (0.4 * 989e12) / 3600, rel=1e-6)  # the dry run's assumed H100 rate


def test_device_hours_of_a_model_scale_law_count_its_own_flops(tmp_path):
    """A law of model scale N costs N·D FLOPs (not 6·N·D): the hours follow the FLOPs shown."""
    size = "model_scale"
    runs = [{size: n, "tokens": [10 * n, 20 * n]} for n in (1e7 * 2.0 ** np.arange(6)).tolist()]
    design = spec(law={"name": "chinchilla", **TRUTH, "size": size}, runs=runs,
                  target={size: 1e9, "tokens": 2e10})  # fmt: skip
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(design))
    args = ["plan", "ladder", "--evaluate", str(path), "--replicates", "1", "--bootstrap", "10", "--device",
            "H100", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    flops = sum(n * 20 * n for n in 1e7 * 2.0 ** np.arange(6))
    assert payload["flops"] == pytest.approx(flops)
    assert payload["device_hours"]["H100 (assumed 40% MFU)"] == pytest.approx(flops / (0.4 * 989e12) / 3600)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["plan", "--json", "ladder", "--law", "chinchilla-approach3"], "--json is an option of `archscale plan`"),
        (["plan", "ladder", "--evaluate", "d.yaml", "--objective", "alpha_N"], "--objective is for a search"),
        (["plan", "ladder", "--law", "chinchilla-approach3", "--budget", "1e19", "--target-size", "1e9",
          "--target-tokens", "-5"], "the target needs tokens as a number > 0"),
    ],
)  # fmt: skip
def test_misplaced_and_impossible_options_are_refused(tmp_path, args, named):
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(spec()))
    args = [str(tmp_path / a) if a == "d.yaml" else a for a in args]
    invoke_one_line_error(args, named, tmp_path)
