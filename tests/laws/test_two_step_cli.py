"""`archscale fit two-step` and `archscale plan --fit two_step.json` on synthetic ladders with a known truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.laws.downstream_laws import LadderTruth
from cli_contract import invoke_one_line_error

runner = CliRunner()
SIZES = 20e6 * 2.0 ** np.arange(6)  # 20M … 640M × 4 token counts: 24 runs, 20 checkpoints each
TRUTH = LadderTruth()
AT_CHANCE = LadderTruth(step2={"a": 0.0, "L0": 0.9, "k": 5.0, "b": 0.25})
TARGETS = [(6.4e9, 400 * 6.4e9), (1e9, 2e10)]  # 10× the largest size at 400 tokens/param; a small model


@pytest.fixture(scope="module")
def ladders(tmp_path_factory):
    """One task's table, and a two-task table (a good task and one at chance) with a ``task`` column."""
    root = tmp_path_factory.mktemp("two-step")
    good = TRUTH.ladder(SIZES, seed=1)
    good.to_csv(root / "one.csv", index=False)
    both = pd.concat([good.assign(task="good"), AT_CHANCE.ladder(SIZES, seed=2).assign(task="coin")])
    both.to_csv(root / "two.csv", index=False)
    return root


def _predict_args() -> list[str]:
    return [arg for n, d in TARGETS for arg in ("--predict", f"params={n:g},tokens={d:g}")]


def test_fit_two_step_forecasts_each_target_per_task_and_flags_the_task_at_chance(ladders):
    args = ["fit", "two-step", "--data", str(ladders / "two.csv"), *_predict_args(), "--chance", "0.25",
            "--bootstrap", "100", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["tasks"]) == {"good", "coin"} and len(payload["predictions"]) == len(TARGETS)
    for (params, tokens), forecast in zip(TARGETS, payload["predictions"], strict=True):
        assert (forecast["params"], forecast["tokens"]) == (params, tokens)
        good, coin = forecast["tasks"]["good"], forecast["tasks"]["coin"]
        loss = TRUTH.task_loss(params, tokens)
        accuracy = float(TRUTH.accuracy(loss))
        assert good["accuracy"] == pytest.approx(accuracy, abs=0.03)
        assert good["accuracy_interval"][0] <= accuracy <= good["accuracy_interval"][1]
        assert good["task_loss_interval"][0] <= loss <= good["task_loss_interval"][1]
        assert coin["accuracy"] is None and coin["accuracy_interval"] is None
        assert "at chance" in coin["unpredictable"]
    assert "at chance" in payload["tasks"]["coin"]["unpredictable"]

    text = runner.invoke(app, args[:-1])
    assert text.exit_code == 0, text.output
    rows = [line.split() for line in text.stdout.splitlines() if line.strip().startswith(("good ", "coin "))]
    assert [row[:3] for row in rows] == [["good", "6.4e+09", "2.56e+12"], ["coin", "6.4e+09", "2.56e+12"],
                                         ["good", "1e+09", "2e+10"], ["coin", "1e+09", "2e+10"]]  # fmt: skip
    assert rows[1][-1] == "–" and "task is at chance" in text.stdout


def test_a_saved_two_step_fit_forecasts_the_plans_optimum(ladders, tmp_path):
    fit_json = tmp_path / "two_step.json"
    args = ["fit", "two-step", "--data", str(ladders / "one.csv"), "--chance", "0.25", "--bootstrap", "60"]
    fitted = runner.invoke(app, [*args, "--out", str(fit_json), "--json"])
    assert fitted.exit_code == 0, fitted.output
    assert json.loads(fit_json.read_text())["predictions"] == []  # no --predict: the fit alone

    plan = runner.invoke(app, ["plan", "--compute", "1e23", "--law", "chinchilla-approach3", "--fit",
                               str(fit_json), "--json"])  # fmt: skip
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.stdout)
    (forecast,) = planned["downstream"]
    assert (forecast["params"], forecast["tokens"]) == (planned["N_opt"], planned["D_opt"])
    accuracy = float(TRUTH.accuracy(TRUTH.task_loss(planned["N_opt"], planned["D_opt"])))
    assert forecast["accuracy"] == pytest.approx(accuracy, abs=0.03)
    assert forecast["accuracy_interval"][0] <= accuracy <= forecast["accuracy_interval"][1]
    shown = runner.invoke(
        app, ["plan", "--compute", "1e23", "--law", "chinchilla-approach3", "--fit", str(fit_json)]
    )
    assert f"accuracy by {fit_json}: {forecast['accuracy']:.3f} [" in shown.stdout

    # a plan sized in FLOPs per token (model_scale) is refused, not converted by a guessed ratio
    invoke_one_line_error(["plan", "--compute", "1e23", "--law", "deepseek2024", "--fit", str(fit_json)],
                          "the plan's N_opt is model_scale", tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    "given",
    ["params=1e9", "tokens=1e9", "params=abc,tokens=1e9", "params=1e9,tokens=-5", "params=1e9,tokens=1e9,x=1",
     "1e9,1e10", "params=inf,tokens=1e9"],
)  # fmt: skip
def test_a_bad_predict_is_one_line_naming_the_form(ladders, given):
    line = invoke_one_line_error(
        ["fit", "two-step", "--data", str(ladders / "one.csv"), "--predict", given], "--predict", ladders
    )
    assert "params=N,tokens=D" in line


def test_predict_and_chance_belong_to_the_two_step_law(ladders):
    one = str(ladders / "one.csv")
    invoke_one_line_error(["fit", "chinchilla", "--data", one, "--predict", "params=1e9,tokens=1e10"],
                          "--predict", ladders)  # fmt: skip
    invoke_one_line_error(["fit", "chinchilla", "--data", one, "--chance", "0.25"], "--chance", ladders)
    invoke_one_line_error(["fit", "two-step", "--data", one, "--holdout", "params"], "--holdout", ladders)
