"""The dry-run plan: the accounting module's FLOPs, cooldown branches at the cost of their decay, epochs over
the built corpus, each run's start-up, evaluations and writes counted, and nothing trained or written.

Expectations are counted by hand or read from the code that does the work (the trainer's eval windows, the
shards' bytes, a real checkpoint), never timed."""

from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.data import eval_windows, get_shards, get_tokenizer
from archscale.models import build_model, get_preset
from archscale.models.scale import compute
from archscale.study import PRESETS, study_runs
from archscale.sweeps import dry_run
from archscale.sweeps.dry_run import (
    CHECKPOINT_BYTES_PER_PARAM,
    EVAL_TOKEN_COST,
    HASH_BYTES_PER_S,
    PASS_FLOOR_S,
    RUN_START_S,
    SWEEP_START_S,
    WEIGHT_BYTES_PER_PARAM,
    WRITE_BYTES_PER_S,
    WRITE_S,
    corpus_facts,
    cpu_tokens_per_s,
    eval_tokens,
    plan_runs,
    sweep_seconds,
)
from archscale.training.run_config import RunConfig
from memory_helpers import measured_peak

CPU, H100 = "cpu (1 thread, measured)", "H100 (assumed 40% MFU)"


@pytest.fixture
def run(tmp_path):
    """``run(**changes)``: a 100-step dense-100k run of 512-token steps on a corpus that is not built."""
    base = {"model": "dense-100k", "tokens": 8 * 64 * 100, "batch_size": 8, "lr": 1e-3, "seq_len": 64,
            "dataset": str(tmp_path / "not-built")}  # fmt: skip
    return lambda **changes: RunConfig.from_dict(base | changes)


@pytest.fixture(scope="module")
def built(tiny_corpus):
    """The tiny corpus with its byte-level train and test shards."""
    tokenizer = get_tokenizer("bytes", tiny_corpus)
    return {split: get_shards(tiny_corpus, tokenizer, split, progress=False) for split in ("train", "test")}


@pytest.mark.parametrize("preset", PRESETS)
def test_the_plan_charges_each_run_the_accounting_modules_flops(preset):
    _, runs = study_runs(preset)
    for run, planned in zip(runs, plan_runs(runs), strict=True):
        assert planned.run_id == run.run_id and planned.tokens == run.trained_tokens
        assert planned.flops == pytest.approx(compute(run.model, run.trained_tokens, run.seq_len), rel=1e-12)


def test_each_run_adds_its_start_up_and_the_sweep_adds_its_own_once(run):
    planned = plan_runs([run(lr=1e-3 * (i + 1)) for i in range(5)])  # five runs alike but for the LR
    per_run = planned[0].seconds
    for p in planned:
        assert p.parts[CPU]["start"] == pytest.approx(RUN_START_S)  # no shards built: nothing to re-hash
        assert p.seconds == pytest.approx(per_run)
    one, five = sweep_seconds(planned[:1]), sweep_seconds(planned)
    for device in (CPU, H100):
        assert one[device] == pytest.approx(SWEEP_START_S + per_run[device])
        assert five[device] - one[device] == pytest.approx(4 * per_run[device])
    assert sweep_seconds(planned, workers=2)[CPU] == pytest.approx(SWEEP_START_S + 5 * per_run[CPU] / 2)
    assert sweep_seconds(planned, workers=2)[H100] == pytest.approx(five[H100])  # one GPU: no CPU workers


def test_a_run_evaluated_at_k_points_pays_k_evaluations(run):
    step = 8 * 64
    end_only, three, default = plan_runs(
        [run(eval_at_tokens=[]), run(eval_at_tokens=[10 * step, 50 * step]), run()]
    )
    assert (end_only.evals, three.evals) == (1, 3)  # the end is always evaluated
    assert default.evals == 7  # steps 2, 3, 6, 12, 25, 50 (100 / 2^k, rounded) and 100
    n = run().derived()["N"]
    assert end_only.eval_tokens == 13 * 65536  # not built: the mini-Pile's 13 subsets, 65,536 tokens each
    assert end_only.parts[CPU]["evals"] == pytest.approx(
        13 * 65536 * EVAL_TOKEN_COST / cpu_tokens_per_s(n, "dense")
    )
    for device in (CPU, H100):
        assert three.parts[device]["evals"] == pytest.approx(3 * end_only.parts[device]["evals"])
        assert default.parts[device]["evals"] == pytest.approx(7 * end_only.parts[device]["evals"])
        assert three.parts[device]["train"] == pytest.approx(end_only.parts[device]["train"])


@pytest.mark.parametrize("per_subset", [4096, 10**7])
def test_an_evaluation_reads_the_windows_the_trainer_reads(tiny_corpus, built, per_subset):
    config = RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 10, "batch_size": 8, "lr": 1e-3,
                                  "seq_len": 64, "dataset": str(tiny_corpus.path), "eval_tokens_per_subset": per_subset})  # fmt: skip
    windows = eval_windows(built["test"], 64, per_subset)
    assert eval_tokens(config, corpus_facts(str(tiny_corpus.path), "bytes")) == 64 * sum(
        len(w) for w in windows.values()
    )


def test_each_run_re_hashes_its_shards_when_it_starts(tiny_corpus, built):
    config = RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 10, "batch_size": 8, "lr": 1e-3,
                                  "seq_len": 64, "dataset": str(tiny_corpus.path)})  # fmt: skip
    shard_bytes = sum(a.nbytes for shards in built.values() for a in shards.tokens.values())
    (planned,) = plan_runs([config])
    for device in (CPU, H100):
        assert planned.parts[device]["start"] == pytest.approx(RUN_START_S + shard_bytes / HASH_BYTES_PER_S)


def test_checkpoints_and_final_weights_are_charged_by_their_bytes(run):
    params = sum(p.numel() for p in build_model(run().model).parameters())
    every_10, once = plan_runs([run(checkpoint_every_steps=10), run(checkpoint_every_steps=100)])
    assert every_10.writes == 10  # after steps 10, 20, ..., 90, and the final state
    assert once.writes == 1  # the final state only
    weights = WRITE_S + WEIGHT_BYTES_PER_PARAM * params / WRITE_BYTES_PER_S
    state = WRITE_S + CHECKPOINT_BYTES_PER_PARAM * params / WRITE_BYTES_PER_S
    for device in (CPU, H100):
        assert every_10.parts[device]["writes"] == pytest.approx(10 * state + weights)
        assert once.parts[device]["writes"] == pytest.approx(state + weights)


def test_a_checkpoint_and_the_weights_are_as_big_as_the_plan_charges(tiny_corpus, tmp_path):
    from archscale.training.trainer import Trainer, load_train_data

    config = RunConfig.from_dict({"model": "moe-100k", "tokens": 4 * 32 * 2, "batch_size": 4, "lr": 1e-3,
                                  "seq_len": 32, "dataset": str(tiny_corpus.path), "eval_tokens_per_subset": 32})  # fmt: skip
    Trainer(config, load_train_data(config), tmp_path).fit()
    params = config.derived()["P_total"]
    state, weights = (
        (tmp_path / "checkpoint.pt").stat().st_size,
        (tmp_path / "model.safetensors").stat().st_size,
    )
    assert state == pytest.approx(CHECKPOINT_BYTES_PER_PARAM * params, rel=0.05)
    assert weights == pytest.approx(WEIGHT_BYTES_PER_PARAM * params, rel=0.05)


def test_a_cooldown_branch_costs_its_decay_only():
    base = {"model": "dense-100k", "batch_size": 8, "lr": 1e-3, "seq_len": 64, "schedule": "wsd",
            "decay_fraction": 0.2, "warmup_steps": 2, "checkpoint_every_steps": 10}  # fmt: skip
    step = 8 * 64
    long = RunConfig.from_dict(base | {"tokens": 100 * step, "eval_at_tokens": [20 * step]})
    short = RunConfig.from_dict(
        base | {"tokens": 50 * step, "eval_at_tokens": [20 * step, 45 * step], "checkpoint_every_steps": 5}
    )
    plan = {p.run_id: p for p in plan_runs([long, short])}
    assert plan[long.run_id].trained == 1.0
    assert plan[short.run_id].trained == pytest.approx(10 / 50)  # 50 steps, 10 of them decaying
    assert plan[short.run_id].parts[CPU]["train"] == pytest.approx(
        0.2 * short.trained_tokens / cpu_tokens_per_s(short.derived()["N"], "dense")
    )
    assert plan[short.run_id].evals == 2  # after steps 45 and 50; the one after step 20 is the trunk's
    assert plan[long.run_id].evals == 2  # after steps 20 and 100
    assert plan[short.run_id].writes == 2  # a checkpoint after step 45 and its final state
    assert (
        plan[long.run_id].writes == 11
    )  # 9 checkpoints, the branch's start state at step 40, the final state


def test_cpu_rate_follows_the_measured_points():
    dense_50k, dense_200k, dense_330k = (
        RunConfig.from_dict({"model": m, "tokens": 2048, "batch_size": 16, "lr": 1e-3, "seq_len": 128}).derived()["N"]
        for m in ("dense-50k", "dense-200k", "dense-330k")
    )  # fmt: skip
    assert cpu_tokens_per_s(dense_50k, "dense") == pytest.approx(
        62e3
    )  # a measured point comes back as measured
    assert cpu_tokens_per_s(dense_330k, "dense") == pytest.approx(19.4e3)
    assert 19.4e3 < cpu_tokens_per_s((dense_200k + dense_330k) / 2, "dense") < 27e3  # between its neighbours
    assert cpu_tokens_per_s(dense_200k, "moe") == pytest.approx(20.7e3, rel=0.02)  # moe-200k: 20.7k tokens/s


def test_no_gpu_run_is_faster_than_its_start_up_and_its_passes(run):
    tiny = run(model="dense-25k", tokens=4 * 8 * 100, batch_size=4, micro_batch_size=2, seq_len=8)
    (planned,) = plan_runs([tiny])
    assert planned.parts[H100]["train"] == pytest.approx(
        100 * 2 * PASS_FLOOR_S
    )  # 100 steps of 2 micro-batches
    assert planned.seconds[H100] > RUN_START_S + 100 * 2 * PASS_FLOOR_S
    assert sweep_seconds([planned] * 10_000)[H100] >= 10_000 * (RUN_START_S + 200 * PASS_FLOOR_S)


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
    assert "summed over the runs: start" in result.output and "evals" in result.output
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "s-runs").exists()
    epochs = plan_runs([RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 30, "batch_size": 8,
                                             "lr": 1e-3, "seq_len": 64, "dataset": str(tiny_corpus.path)})])[0].epochs  # fmt: skip
    train = get_shards(tiny_corpus, get_tokenizer("bytes", tiny_corpus), "train")
    assert epochs == pytest.approx(8 * 64 * 30 / train.num_tokens)


@pytest.mark.parametrize(
    ("batch_size", "micro_batch_size", "seq_len"),
    [(16, 8, 256), (2, 2, 64)],  # activations dominate; and gradients as large as the activations
)
def test_the_planned_gpu_memory_is_the_peak_measured_over_the_runs_training_steps(
    batch_size, micro_batch_size, seq_len
):
    """The plan's bytes against the CPU allocator's peak over two bf16-autocast steps of the same run: within
    10 %, where planning the whole batch as one micro-batch (+81 %), fp32 activations (+44 %) or gradients
    kept beside the activations without accumulation (+21 %) would not be."""
    torch.set_num_threads(1)
    config = RunConfig.from_dict({"model": "dense-800k", "tokens": batch_size * seq_len * 10, "lr": 1e-3,
                                  "batch_size": batch_size, "micro_batch_size": micro_batch_size, "seq_len": seq_len})  # fmt: skip
    (planned,) = plan_runs([config])
    peak = measured_peak(config.model, micro_batch_size, seq_len, batch_size // micro_batch_size, bf16=True)
    assert planned.gpu_bytes == pytest.approx(peak, rel=0.1)


def test_every_gpu_preset_run_is_placed_and_the_plan_says_how():
    """As specified every run fits one H200; on one 80 GiB H100 every run but moe-1.5b trains as specified,
    and moe-1.5b (124 GiB at its one-row micro-batch with the noise probe's copy of its gradients, 97 GiB
    with recomputed activations) is placed sharded over a node; a run too big for that is flagged."""
    from archscale.models.memory import GIB

    _, runs = study_runs("gpu")
    planned = plan_runs(runs)
    assert max(p.gpu_bytes for p in planned) < 141 * GIB  # each run trains on one H200 as specified
    for p in planned:
        assert p.memory is not None and p.memory.passes == 1 and not p.memory.checkpoint_activations
        assert p.memory.estimate.total <= dry_run.GPU_MEMORY_GIB * GIB
        assert (p.memory.ranks, p.memory.shard) == ((8, True) if p.model == "moe-1.5b" else (1, False))
        assert (p.gpu_bytes > dry_run.GPU_MEMORY_GIB * GIB) == (p.model == "moe-1.5b")
    text = dry_run.format_plan(planned)
    assert "1 runs fit no one 80 GiB GPU (up to 124 GiB at their micro-batch): they shard over a node" in text
    seventy_b = {
        **get_preset("dense-7b").to_dict(),
        "n_layers": 320,
    }  # 16 bytes a parameter: 140 GB a GPU of 8
    huge = RunConfig.from_dict(
        {"model": seventy_b, "tokens": 10**9, "batch_size": 64, "lr": 1e-4, "seq_len": 2048}
    )
    text = dry_run.format_plan(plan_runs([huge]))
    assert "fits no node" in text and "warning: 1 runs fit neither one 80 GiB GPU nor a node of 8" in text
