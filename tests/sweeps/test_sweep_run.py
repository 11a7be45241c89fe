"""Sweeps end to end through the CLI: parallel workers, kill -9 and resume, divergence, torchrun."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore
from sweep_helpers import ARCHSCALE, GLOO_ENV, sweep_command, write_spec


def final_losses(store: Path) -> dict[str, float]:
    with ResultsStore(store) as results:
        curve = results.curve()
    return curve.groupby("run_id")["lm_loss"].last().to_dict()


def test_sweep_of_eight_runs_stores_every_curve(tiny_corpus, tmp_path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus)
    store = tmp_path / "results.sqlite"
    result = CliRunner().invoke(app, ["sweep", "run", str(spec), "--store", str(store), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "8 runs, 0 already done, 8 finished" in result.output
    with ResultsStore(store) as results:
        runs = results.runs()
        curve = results.curve()
        evals = results.evals()
    assert len(runs) == 8 and set(runs.status) == {"finished"}
    steps = curve.groupby("run_id")["step"].agg(["count", "max"])
    expected = {r.run_id: r.D // (r.batch_size * 64) for r in runs.itertuples()}
    assert steps["count"].to_dict() == expected and steps["max"].to_dict() == expected
    assert set(evals.subset) == {"code", "prose", "all"}
    again = CliRunner().invoke(app, ["sweep", "run", str(spec), "--store", str(store), "--workers", "2"])
    assert "8 already done" in again.output
    listing = CliRunner().invoke(app, ["runs", "list", "--store", str(store)])
    assert listing.output.count("finished") == 8


def test_kill_minus_nine_then_rerun_loses_nothing_and_matches(tiny_corpus, tmp_path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus)
    reference = tmp_path / "reference.sqlite"
    subprocess.run(sweep_command(spec, reference, workers=0), check=True)

    store = tmp_path / "killed.sqlite"
    command = sweep_command(spec, store, workers=2)
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some runs are finished and others are mid-way
        time.sleep(0.2)
        if store.exists():
            with sqlite3.connect(store) as db:
                try:
                    done = db.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0]
                except sqlite3.OperationalError:  # the file exists, its schema is still being created
                    continue
                checkpoints = list((tmp_path / "killed-runs").glob("*/checkpoint.pt"))
            if done >= 1 and len(checkpoints) > done:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultsStore(store) as results:
        finished_before = results.finished_ids()
    assert 1 <= len(finished_before) < 8, "the kill should land mid-sweep"

    subprocess.run(command, check=True)
    with ResultsStore(store) as results:
        assert results.finished_ids() == set(final_losses(reference))
    assert final_losses(store) == final_losses(reference)


def test_two_sweeps_started_on_one_store_train_every_run_exactly_once(tiny_corpus, tmp_path) -> None:
    """Both commands start together; the store admits one sweep at a time, so the second is refused (one
    line naming the first) or, if it starts after the first ended, finds every run done. Never both."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus)
    store = tmp_path / "shared.sqlite"
    command = sweep_command(spec, store, workers=1)
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    codes = [first.returncode, second.returncode]
    trained = [out for (out, _), code in zip(outputs, codes, strict=True) if "8 finished" in out]
    refused = [err for (_, err), code in zip(outputs, codes, strict=True) if code != 0]
    assert len(trained) == 1, outputs
    assert refused, outputs  # 8 runs take far longer than two interpreters take to start
    assert len(refused) == 1 and refused[0].count("\n") == 1 and "Traceback" not in refused[0]
    assert "is training runs into this store; wait for it to finish" in refused[0]
    with ResultsStore(store) as results:
        runs, curve = results.runs(), results.curve()
    assert len(runs) == 8 and set(runs["status"]) == {"finished"}
    assert not curve.duplicated(["run_id", "step"]).any()  # no step written twice
    rerun = subprocess.run(command, capture_output=True, text=True, check=True)  # the slot was released
    assert "8 already done" in rerun.stdout


def test_diverged_run_is_recorded_while_the_others_finish(tiny_corpus, tmp_path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus,
        grid=[{"models": ["dense-100k"], "tokens": [8 * 64 * 20], "batch_sizes": [8], "lrs": [3e-3, 50.0]}],
        schedule={"warmup_steps": 0},
    )  # fmt: skip
    store = tmp_path / "results.sqlite"
    result = CliRunner().invoke(app, ["sweep", "run", str(spec), "--store", str(store), "--workers", "2"])
    assert result.exit_code == 0, result.output
    with ResultsStore(store) as results:
        runs = results.runs().set_index("lr")
    assert runs.loc[3e-3, "status"] == "finished"
    assert runs.loc[50.0, "status"] == "diverged" and runs.loc[50.0, "diverged_step"] >= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"grid": [{"models": ["dense-9t"], "tokens": [1000], "batch_sizes": [8], "lrs": [1e-3]}]},
            "unknown preset 'dense-9t'",
        ),
        (
            {
                "grid": [
                    {"models": ["dense-100k"], "tokens": [8 * 64 * 4], "batch_sizes": [8], "lrs": [-1e-3]}
                ]
            },
            "lrs[0]",
        ),
        ({"grid": [{"models": ["dense-100k"], "tokens": [8 * 64 * 4], "lrs": [1e-3]}]}, "batch_sizes"),
        (
            {"grid": [{"models": ["dense-100k"], "tokens": ["many"], "batch_sizes": [8], "lrs": [1e-3]}]},
            "tokens[0]",
        ),
    ],
)
def test_malformed_spec_fails_before_any_run(tiny_corpus, tmp_path, change, message) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus, **change)
    store = tmp_path / "results.sqlite"
    result = CliRunner().invoke(app, ["sweep", "run", str(spec), "--store", str(store)])
    assert result.exit_code != 0
    assert message in result.output
    assert not store.exists()


def two_process_train(spec: Path, store: Path, *options: str) -> list[str]:
    """``archscale train`` under ``torchrun`` with two CPU processes (gloo), as a user starts it."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return [
        *torchrun,
        "-m",
        "archscale.cli.main",
        "train",
        str(spec),
        "--store",
        str(store),
        "--device",
        "cpu",
        *options,
    ]


def test_torchrun_two_gloo_processes_match_one_process(tiny_corpus, tmp_path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus,
        grid=[{"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 12], "batch_sizes": [8], "lrs": [3e-3]}],
    )  # fmt: skip
    single, double = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    subprocess.run([*ARCHSCALE, "train", str(spec), "--store", str(single), "--device", "cpu"], check=True)
    group = two_process_train(spec, double)
    subprocess.run(group, check=True, env=GLOO_ENV)
    with ResultsStore(single) as a, ResultsStore(double) as b:
        one, two = a.curve(), b.curve()
    assert len(one) == len(two) == 2 * 12
    for column in ("lm_loss", "grad_norm", "noise_scale"):
        assert two[column].to_numpy() == pytest.approx(one[column].to_numpy(), rel=1e-4, nan_ok=True), column
    # Again on the finished store: rank 0 tells the other rank there is nothing to train (a rank that
    # decided alone would train a run rank 0 skips, and the group would hang on its first all-reduce).
    again = subprocess.run(group, check=True, env=GLOO_ENV, capture_output=True, text=True, timeout=300)
    assert "2 runs, 2 already done, 0 finished" in again.stdout


def test_fsdp_two_gloo_processes_match_one_process(tiny_corpus, tmp_path) -> None:
    """FSDP2 (``--shard``) over two gloo processes trains the curve one process trains: the same losses,
    gradient norms, evals and final weights. The ladder has WSD cooldown branches, so the sharded state is
    gathered into checkpoints and branch files and loaded back into shards on both ranks."""
    from safetensors.torch import load_file

    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus, schedule={"kind": "wsd", "warmup_steps": 2},
        eval={"at_tokens": [16 * 64 * 4], "tokens_per_subset": 2048},
        grid=[{"models": ["dense-100k", "moe-100k"], "tokens": [16 * 64 * 12, 16 * 64 * 8], "batch_sizes": [16],
               "lrs": [3e-3]}],
    )  # fmt: skip
    single, sharded = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    subprocess.run([*ARCHSCALE, "train", str(spec), "--store", str(single), "--device", "cpu"], check=True)
    subprocess.run(two_process_train(spec, sharded, "--shard"), check=True, env=GLOO_ENV)
    with ResultsStore(single) as a, ResultsStore(sharded) as b:
        one, two = a.curve(), b.curve()
        evals_one, evals_two = a.evals(), b.evals()
        branches = [r for r in b.runs()["run_id"] if "branch" in b.meta(r)]
    assert len(branches) == 2 and len(one) == len(two) == 2 * (12 + 8)
    for column in ("lm_loss", "grad_norm"):
        assert two[column].to_numpy() == pytest.approx(one[column].to_numpy(), rel=1e-4), column
    assert evals_two["loss"].to_numpy() == pytest.approx(evals_one["loss"].to_numpy(), rel=1e-4)
    # a micro-batch gradient under FSDP is the two ranks' mean: measured, from a batch of 2 micro-batches
    assert two["noise_scale"].notna().all() and (two["noise_scale"] > 0).all()
    for run_id in one["run_id"].unique():
        w1 = load_file(tmp_path / "one-runs" / run_id / "model.safetensors")
        w2 = load_file(tmp_path / "two-runs" / run_id / "model.safetensors")
        assert w1.keys() == w2.keys()
        for name in w1:
            torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5)


def test_shard_needs_a_process_group(tiny_corpus, tmp_path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus)
    result = subprocess.run(
        [*ARCHSCALE, "train", str(spec), "--store", str(tmp_path / "s.sqlite"), "--device", "cpu", "--shard"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "torchrun" in result.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_local_executor_needs_a_thread_per_worker() -> None:
    from archscale.sweeps.executor import LocalExecutor

    with pytest.raises(ValueError, match="threads: must be ≥ 1"):
        LocalExecutor(2, threads=0)
    assert LocalExecutor(1, threads=2).threads == 2


def test_workers_are_placed_one_per_device_and_a_failing_run_stays_alone(tiny_corpus, tmp_path) -> None:
    """Stand-in devices on the CPU (``cpu:0``, ``cpu:1``: torch trains on the CPU for both) take the place of
    a node's GPUs: each worker keeps its device, every run records where it trained, both devices are used,
    and a run that fails (an unknown tokeniser) is recorded as failed while the others finish."""
    from archscale.sweeps.executor import Coordinator, LocalExecutor, default_run_root
    from archscale.sweeps.spec import order_longest_first
    from archscale.training.run_config import RunConfig

    base = {"dataset": str(tiny_corpus.path), "seq_len": 64, "batch_size": 8, "lr": 3e-3, "tokens": 8 * 64 * 6,
            "eval_tokens_per_subset": 512}  # fmt: skip
    runs = [
        RunConfig.from_dict(base | {"model": m, "seed": s})
        for m in ("dense-100k", "moe-100k")
        for s in (0, 1)
    ]
    broken = RunConfig.from_dict(base | {"model": "dense-100k", "tokenizer": "bpe-7"})  # fails in its worker
    store = tmp_path / "placed.sqlite"

    devices: dict[str, str | None] = {}

    class Recording(Coordinator):
        def result(self, result):
            devices[result["run_id"]] = result.get("device")
            super().result(result)

    executor = LocalExecutor(2, devices=["cpu:0", "cpu:1"])
    with ResultsStore(store) as results:
        for run in [*runs, broken]:
            results.add_run(run)
        coordinator = Recording(results, [*runs, broken], progress=False)
        executor.execute(order_longest_first([*runs, broken]), default_run_root(store), coordinator)
        status = results.runs().set_index("run_id")["status"]
    assert status[broken.run_id] == "failed" and all(status[r.run_id] == "finished" for r in runs)
    assert set(devices.values()) == {"cpu:0", "cpu:1"}  # both devices trained runs
    assert set(devices) == {r.run_id for r in [*runs, broken]}


def test_executor_for_every_visible_gpu() -> None:
    from archscale.sweeps.executor import InProcessExecutor, LocalExecutor, executor_for

    four = executor_for("cuda", gpus=4)
    assert isinstance(four, LocalExecutor) and four.devices == ("cuda:0", "cuda:1", "cuda:2", "cuda:3")
    assert four.workers == 4
    assert executor_for("cuda", workers=8, gpus=4).workers == 8  # two small runs per GPU
    assert isinstance(executor_for("cuda", gpus=1), InProcessExecutor)
    assert isinstance(executor_for("cpu", workers=0), InProcessExecutor)
    with pytest.raises(ValueError, match="no GPU is visible"):
        executor_for("cuda", gpus=0)
    with pytest.raises(ValueError, match="--workers applies to CPU runs"):
        executor_for("cuda:1", workers=2)


def test_train_with_activation_checkpointing_gives_the_same_curve(tiny_corpus, tmp_path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus,
        grid=[{"models": ["moe-100k"], "tokens": [8 * 64 * 6], "batch_sizes": [8], "lrs": [3e-3]}],
    )  # fmt: skip
    for name, extra in (("plain", []), ("recomputed", ["--checkpoint-activations"])):
        args = ["train", str(spec), "--store", str(tmp_path / f"{name}.sqlite"), "--device", "cpu", *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    plain, recomputed = final_losses(tmp_path / "plain.sqlite"), final_losses(tmp_path / "recomputed.sqlite")
    assert recomputed == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize(
    ("command", "named"),
    [(["study", "--device", "bogus"], "--device 'bogus' is not a device"),
     (["sweep", "run", "SPEC", "--device", "cuda:64"], "--device cuda:64: ")],
)  # fmt: skip
def test_a_device_that_is_not_there_is_refused_before_anything_is_written(
    tiny_corpus, tmp_path, command, named
) -> None:
    """A typo in --device once failed every run one by one (116 failed runs for the micro study)."""
    from cli_contract import invoke_one_line_error

    spec = write_spec(tmp_path / "spec.yaml", tiny_corpus)
    args = [str(spec) if a == "SPEC" else a for a in command]
    invoke_one_line_error(
        [*args, "--store" if "sweep" in args else "--out", str(tmp_path / "out")], named, tmp_path
    )
