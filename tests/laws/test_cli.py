"""`archscale fit`, `archscale plan` and `archscale laws …` through Typer, as the lead will register them."""

from __future__ import annotations

import json

import pytest
from laws_helpers import with_noise
from typer.testing import CliRunner

from archscale.cli.main import app

runner = CliRunner()


@pytest.fixture()
def runs_csv(tmp_path, wang_grid):
    """A user's CSV with its own column names."""
    table = with_noise(wang_grid, 0.01, seed=0).rename(
        columns={"model_scale": "flops_per_token", "loss": "val_loss"}
    )
    table["run"] = [f"r{i // 4}" for i in range(len(table))]
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    return path


MAP = ["--map", "model_scale=flops_per_token", "--map", "loss=val_loss", "--map", "run_id=run"]


def test_fit_json_follows_the_contract_and_feeds_plan_and_table1(tmp_path, runs_csv):
    fit_json = tmp_path / "moe.json"
    args = ["fit", "wang", "--data", str(runs_csv), *MAP, "--bootstrap", "20", "--holdout", "model_scale"]
    result = runner.invoke(app, [*args, "--json", "--out", str(fit_json)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"law", "coefficients", "intervals", "objective", "n_points", "audit"} <= set(payload)
    assert payload["law"] == "wang" and payload["n_points"] == 60
    assert set(payload["coefficients"]) == {"A", "B", "alpha", "beta", "gamma", "sigma"}
    assert set(payload["intervals"]) == set(payload["coefficients"]) | {"alpha_N", "alpha_D"}
    assert all(lo < hi for lo, hi in payload["intervals"].values())
    assert payload["bootstrap"]["resample"] == "run"
    assert payload["audit"]["held_out"] == [3e9] and payload["audit"]["n_test"] == 12
    assert json.loads(fit_json.read_text()) == payload

    plan = runner.invoke(
        app, ["plan", "--compute", "1e21", "--fit", str(fit_json), "--experts", "8", "--json"]
    )
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.stdout)
    assert planned["size"] == "model_scale" and planned["N_opt"] * planned["D_opt"] == pytest.approx(1e21)
    assert planned["intervals"]["loss"][0] <= planned["loss"] <= planned["intervals"]["loss"][1]

    table = runner.invoke(app, ["laws", "table1", "--fit", str(fit_json)])
    assert (
        table.exit_code == 0 and "| moe |" in table.stdout and "| MoE Model | 0.410 | 0.590 |" in table.stdout
    )


def test_fit_text_output_shows_the_summary_and_audit(runs_csv):
    result = runner.invoke(app, ["fit", "wang", "--data", str(runs_csv), *MAP, "--holdout", "model_scale:2"])
    assert result.exit_code == 0, result.output
    assert "WangLaw: L = A/(N^alpha E^gamma)" in result.stdout
    assert "extrapolation audit: held out model_scale = [" in result.stdout
    assert "200 parametric bootstrap refits" in result.stdout  # intervals by default, as in every command
    assert "inside the prediction interval" in result.stdout
    quick = runner.invoke(app, ["fit", "wang", "--data", str(runs_csv), *MAP, "--holdout", "model_scale:2",
                                "--bootstrap", "0"])  # fmt: skip
    assert quick.exit_code == 0 and "no interval (no bootstrap)" in quick.stdout


def test_power_law_options(tmp_path):
    path = tmp_path / "optima.csv"
    path.write_text("loss,batch_size\n" + "\n".join(f"{x},{1.21e9 / x**6.24}" for x in (2.2, 2.6, 3.0, 3.4)))
    result = runner.invoke(
        app, ["fit", "power", "--data", str(path), "--target", "batch_size", "--inputs", "loss", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["coefficients"]["exponent"] == pytest.approx(-6.24, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fit", "wang", "--data", "RUNS"], "needs column(s) ['model_scale']"),
        (
            ["fit", "wang", "--data", "RUNS", *MAP, "--target", "lr"],
            "--target does not apply to the wang law",
        ),
        (["fit", "gpt", "--data", "RUNS"], "unknown law 'gpt'"),
        (["fit", "wang", "--data", "RUNS", *MAP, "--holdout", "model_scale:x"], "--holdout takes COLUMN"),
        (["fit", "wang", "--data", "RUNS", *MAP, "--points", "final"], "drop --points, or pass the store"),
        (["plan", "--compute", "1e21"], "give at least one --fit"),
        (["plan", "--compute", "1e21", "--law", "wang2024-moe"], "publishes exponents only"),
    ],
)
def test_bad_input_is_one_clear_error_line(runs_csv, args, needle):
    result = runner.invoke(app, [str(runs_csv) if a == "RUNS" else a for a in args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and needle in result.stderr


def test_plan_from_published_laws():
    result = runner.invoke(
        app, ["plan", "--compute", "1e21", "--law", "chinchilla-approach3", "--law", "steplaw2025"]
    )
    assert result.exit_code == 0, result.output
    for line in ("N_opt", "D_opt", "loss", "batch_size", "lr", "(params)"):
        assert line in result.stdout


def test_laws_list_names_sources_and_units():
    result = runner.invoke(app, ["laws", "list", "--json"])
    assert result.exit_code == 0
    entries = {e["key"]: e for e in json.loads(result.stdout)["laws"]}
    assert entries["deepseek2024"]["formulas"][2] == "B_opt = 0.2920·C^0.3271"
    assert "B tokens" in entries["minicpm2024"]["units"]
    assert entries["wang2024-moe"]["allocation"] == {"alpha_N": 0.590, "alpha_D": 0.410}
    text = runner.invoke(app, ["laws", "list"]).stdout
    assert "steplaw2025\n  lr = 1.79·N^-0.713·D^0.307" in text
