"""The coordinate check: passes under μP and fails under SP on the same tiny presets and widths; the CLI's
exit code, JSON and plot; the width scaling of a preset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from archscale.cli.models import app
from archscale.models import ConfigError, get_preset
from archscale.training.coord_check import coord_check, scaled_config

WIDTHS = [32, 64, 128, 256]


@pytest.mark.parametrize(("name", "parametrization"), [("dense-100k", "mup"), ("moe-100k", "mup"),
                                                        ("moe-100k", "completep")])  # fmt: skip
def test_coord_check_passes_under_mup_and_completep(name: str, parametrization: str) -> None:
    result = coord_check(get_preset(name), WIDTHS, parametrization, steps=5, lr=1e-2)
    assert result.passed, result.verdict()
    assert result.spread["embedding"] < 1.1
    assert all(abs(s) <= 0.4 for layer, s in result.slope.items() if layer.endswith((".attn", ".ffn")))


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_coord_check_fails_under_sp(name: str) -> None:
    result = coord_check(get_preset(name), WIDTHS, "sp", steps=5, lr=1e-2)
    assert not result.passed
    # SP's attention and feed-forward outputs grow at least linearly with width (slope ≥ 1 per layer)
    assert min(s for layer, s in result.slope.items() if layer.endswith((".attn", ".ffn"))) > 1.0
    assert result.verdict().startswith("FAIL")


def test_scaled_config_keeps_the_head_size_and_the_ffn_ratio() -> None:
    base = get_preset("moe-800k-g2")  # d_model 128, 4 heads of 32, expert d_ff 176, granularity 2
    cfg = scaled_config(base, 256, "completep", base_width=128)
    assert (cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.d_ff) == (256, 8, 32, 352)
    assert (cfg.granularity, cfg.base_width, cfg.base_depth) == (2, 128, base.n_layers)
    assert scaled_config(base, 64, "sp", base_width=64).parametrization == "sp"
    with pytest.raises(ConfigError, match="head size 32"):
        scaled_config(base, 48, "mup", base_width=48)


def test_cli_exit_codes_json_and_plot(tmp_path) -> None:
    runner = CliRunner()
    quick = ["--widths", "32", "64", "128", "--steps", "2", "--seeds", "1"]
    failed = runner.invoke(app, ["coord-check", "dense-100k", *quick, "--parametrization", "sp", "--json",
                                 "--out", str(tmp_path)])  # fmt: skip
    assert failed.exit_code == 1, failed.output
    report = json.loads(failed.stdout)
    assert report["passed"] is False and report["widths"] == [32, 64, 128]
    assert report["verdict"].startswith("FAIL: dense-100k sp")
    assert (tmp_path / "coord_check.png").stat().st_size > 0
    assert json.loads((tmp_path / "coord_check.json").read_text())["passed"] is False
    passed = runner.invoke(
        app, ["coord-check", "dense-100k", "--widths", "32,64,128,256"]
    )  # the defaults: μP
    assert passed.exit_code == 0, passed.output
    assert passed.stdout.strip().splitlines()[-1].startswith("PASS: dense-100k mup")
    bad = runner.invoke(app, ["coord-check", "dense-100k", "--widths", "64,x"])
    assert bad.exit_code == 2
