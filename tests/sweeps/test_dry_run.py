"""The dry-run plan: the accounting module's FLOPs, cooldown branches at the cost of their decay, epochs over
the built corpus, and nothing trained or written."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.models.scale import compute
from archscale.study import PRESETS, study_runs
from archscale.sweeps.dry_run import cpu_tokens_per_s, plan_runs
from archscale.training.run_config import RunConfig


@pytest.mark.parametrize("preset", PRESETS)
def test_the_plan_charges_each_run_the_accounting_modules_flops(preset):
    _, runs = study_runs(preset)
    for run, planned in zip(runs, plan_runs(runs), strict=True):
        assert planned.run_id == run.run_id and planned.tokens == run.trained_tokens
        assert planned.flops == pytest.approx(compute(run.model, run.trained_tokens, run.seq_len), rel=1e-12)


def test_a_cooldown_branch_costs_its_decay_only():
    base = {"model": "dense-100k", "batch_size": 8, "lr": 1e-3, "seq_len": 64, "schedule": "wsd",
            "decay_fraction": 0.2, "warmup_steps": 2, "eval_at_tokens": []}  # fmt: skip
    long, short = (RunConfig.from_dict(base | {"tokens": 8 * 64 * steps}) for steps in (100, 50))
    plan = {p.run_id: p for p in plan_runs([long, short])}
    assert plan[long.run_id].trained == 1.0
    assert plan[short.run_id].trained == pytest.approx(10 / 50)  # 50 steps, 10 of them decaying
    cpu = "cpu (1 thread, measured)"
    assert plan[short.run_id].seconds[cpu] == pytest.approx(
        0.2 * short.trained_tokens / cpu_tokens_per_s(short.derived()["N"])
    )


def test_cpu_rate_follows_the_measured_points():
    assert cpu_tokens_per_s(0.48e6) == pytest.approx(43e3)  # a measured point comes back as measured
    assert cpu_tokens_per_s(2.3e6) == pytest.approx(16e3)
    assert 16e3 < cpu_tokens_per_s(1.5e6) < 34e3  # between its neighbours


def test_sweep_dry_run_reports_epochs_and_trains_nothing(tiny_corpus, tmp_path):
    spec = {"name": "plan", "dataset": str(tiny_corpus.path), "seq_len": 64,
            "grid": [{"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 30], "batch_sizes": [8], "lrs": [1e-3]}]}  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    CliRunner().invoke(app, ["data", "shards", "--corpus", str(tiny_corpus.path), "--split", "train"])
    result = CliRunner().invoke(
        app, ["sweep", "run", str(path), "--store", str(tmp_path / "s.sqlite"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "2 runs, " in result.output and "training FLOPs" in result.output
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "s-runs").exists()
    epochs = plan_runs([RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 30, "batch_size": 8,
                                             "lr": 1e-3, "seq_len": 64, "dataset": str(tiny_corpus.path)})])[0].epochs  # fmt: skip
    from archscale.data import get_shards, get_tokenizer

    train = get_shards(tiny_corpus, get_tokenizer("bytes", tiny_corpus), "train")
    assert epochs == pytest.approx(8 * 64 * 30 / train.num_tokens)


def test_every_gpu_preset_run_fits_one_h200_and_the_plan_warns_about_one_that_does_not():
    from archscale.models.memory import GIB
    from archscale.sweeps.dry_run import format_plan

    _, runs = study_runs("gpu")
    assert max(p.gpu_bytes for p in plan_runs(runs)) < 141 * GIB  # each run trains on one H200 as specified
    big = RunConfig.from_dict({"model": "dense-7b", "tokens": 10**9, "batch_size": 64, "lr": 1e-4,
                               "seq_len": 2048, "micro_batch_size": 4})  # fmt: skip
    text = format_plan(plan_runs([big]))
    assert "warning: 1 runs need more than one 80 GiB GPU" in text and "--shard" in text
