"""`archscale plan` with a whole-curve fit: the planned run's steps, the WSD decay fraction the law prefers
(checked by brute force over the same fractions with the schedule and the law written out again), the final
loss under cosine, and the interval of a bootstrapped fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.laws.curve_laws import AnnealingLaw, CurveLadderLaw

LADDER = {"sigma": 1.8, "A": 40.0, "alpha": 0.25, "B": 0.6, "beta": 0.45, "C": 0.1}
ANNEALING = {"L0": 2.0, "A": 0.8, "alpha": 0.4, "C": 1.0}
BATCH, LR, FLOOR = 65536, 1e-3, 0.1
PLAN = ["plan", "--compute", "1e17", "--law", "chinchilla-approach3", "--law", "steplaw2025"]
runner = CliRunner()


def _rates(steps: int, warmup: int, schedule: str, fraction: float = 0.2) -> np.ndarray:
    """archscale's warm-up, then WSD (linear decay over round(fraction·steps) steps) or cosine, to FLOOR."""
    s = np.arange(steps)
    if schedule == "wsd":
        decay = max(1, round(fraction * steps))
        done = s - (steps - decay) + 1
        rates = np.where(done <= 0, 1.0, FLOOR + (1 - FLOOR) * (1 - done / decay))
    else:
        rates = FLOOR + (1 - FLOOR) * 0.5 * (1 + np.cos(np.pi * (s - warmup) / (steps - 1 - warmup)))
    return LR * np.where(s < warmup, (s + 1) / (warmup + 1), rates)


def _final(eta: np.ndarray, size: float) -> float:
    """The curve-ladder law at the last step by a literal loop (momentum from the end of the warm-up)."""
    peak = int(np.argmax(eta)) + 1
    momentum = annealed = 0.0
    for t in range(2, len(eta) + 1):
        momentum = 0.999 * momentum + (eta[t - 2] - eta[t - 1] if t > peak else 0.0)
        annealed += momentum
    c = LADDER
    return c["sigma"] + c["A"] * size ** -c["alpha"] + c["B"] * eta.sum() ** -c["beta"] - c["C"] * annealed


def _plan(tmp_path, law, *args: str):
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(law.to_dict()))
    return runner.invoke(app, [*PLAN, "--fit", str(path), *args])


def test_the_plan_chooses_the_decay_fraction_of_its_run_at_n_opt(tmp_path) -> None:
    law = CurveLadderLaw.from_coefficients(LADDER)
    result = _plan(tmp_path, law, "--batch-tokens", str(BATCH), "--lr", str(LR), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    choice = plan["schedule"]
    steps = int(plan["D_opt"] // BATCH)
    warmup = round(0.05 * steps)
    assert (choice["steps"], choice["warmup_steps"], choice["size"]) == (steps, warmup, plan["N_opt"])
    brute = {
        float(f): _final(_rates(steps, warmup, "wsd", float(f)), plan["N_opt"])
        for f in np.round(np.arange(0.05, 0.51, 0.05), 2)
    }
    best = min(brute, key=brute.get)
    assert 0.05 < best < 0.5  # an optimum inside the grid, so the choice is a real one
    assert choice["wsd_decay_fraction"] == best
    assert choice["wsd_final_loss"] == pytest.approx(brute[best], rel=1e-9)
    assert choice["cosine_final_loss"] == pytest.approx(
        _final(_rates(steps, warmup, "cosine"), plan["N_opt"]), rel=1e-9
    )
    assert choice["sources"] == {"batch_size": "--batch-tokens", "lr": "--lr", "warmup": "5 % of the steps"}
    assert choice["wsd_final_interval"] is None and "not bootstrapped" in choice["no_interval"]
    text = _plan(tmp_path, law, "--batch-tokens", str(BATCH), "--lr", str(LR)).stdout
    assert f"WSD decay fraction {best:g}: final loss {brute[best]:.4g}" in text


def test_batch_and_lr_come_from_the_plans_laws(tmp_path) -> None:
    result = _plan(tmp_path, CurveLadderLaw.from_coefficients(LADDER), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    choice = plan["schedule"]
    assert choice["batch_tokens"] == plan["batch_size"] and choice["lr"] == plan["lr"]
    assert choice["steps"] == int(plan["D_opt"] // plan["batch_size"])
    assert choice["sources"]["lr"] == "steplaw2025 (published)"


def test_a_one_size_fit_is_used_as_is_with_a_note_and_a_bootstrapped_one_gives_its_interval(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for run, (schedule, fraction) in enumerate((("cosine", 0.2), ("wsd", 0.2), ("wsd", 0.4))):
        eta = _rates(600, 30, schedule, fraction)
        area = np.cumsum(eta)
        gap = np.r_[0.0, eta[:-1] - eta[1:]] * (np.arange(600) > 30)
        annealed = np.cumsum(pd.Series(gap).ewm(alpha=0.001, adjust=False).mean() * 1000)
        loss = ANNEALING["L0"] + ANNEALING["A"] * area ** -ANNEALING["alpha"] - ANNEALING["C"] * annealed
        loss = loss * np.exp(2e-3 * rng.standard_normal() + 1e-3 * rng.standard_normal(600))
        frames.append(pd.DataFrame({"run_id": f"r{run}", "step": np.arange(1, 601), "lr": eta,
                                    "loss": np.where(np.arange(600) >= 30, loss, np.nan)}))  # fmt: skip
    law = AnnealingLaw(bootstrap=20).fit(pd.concat(frames, ignore_index=True))
    result = _plan(tmp_path, law, "--batch-tokens", str(BATCH), "--lr", str(LR), "--warmup", "100", "--json")
    assert result.exit_code == 0, result.output
    choice = json.loads(result.stdout)["schedule"]
    assert choice["warmup_steps"] == 100 and choice["size"] is None
    assert "describes the one model size it was fitted on" in choice["notes"][0]
    lower, upper = choice["wsd_final_interval"]
    assert lower < choice["wsd_final_loss"] < upper and choice["no_interval"] is None
    assert math.isfinite(choice["cosine_final_loss"])


@pytest.mark.parametrize(
    ("laws", "args", "needle"),
    [
        (["--law", "chinchilla-approach3"], [], "--batch-tokens: the curve fit"),
        (["--law", "chinchilla-approach3"], ["--batch-tokens", "65536"], "--lr: the curve fit"),
        (
            ["--law", "chinchilla-approach3"],
            ["--batch-tokens", "1e12", "--lr", "1e-3"],
            "--batch-tokens: D_opt",
        ),
        (["--law", "chinchilla-approach3"], ["--batch-tokens", "65536", "--lr", "0"], "--lr must be"),
        (
            ["--law", "chinchilla-approach3", "--law", "steplaw2025"],
            ["--warmup", "99999"],
            "--warmup must lie",
        ),
        (["--law", "deepseek2024"], [], "reads params, but the plan's N_opt is model_scale"),
    ],
)
def test_bad_schedule_input_is_one_clear_error_line(tmp_path, laws, args, needle) -> None:
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(CurveLadderLaw.from_coefficients(LADDER).to_dict()))
    result = runner.invoke(app, ["plan", "--compute", "1e17", *laws, "--fit", str(path), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and needle in result.stderr


def test_schedule_options_without_a_curve_fit_are_refused() -> None:
    result = runner.invoke(app, [*PLAN, "--lr", "1e-3"])
    assert result.exit_code == 2 and "--lr sets the planned run's schedule" in result.stderr
