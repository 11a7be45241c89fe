"""Run logging: TensorBoard scalars from a real tiny run, resume purging, W&B offline, option errors."""

from __future__ import annotations

import importlib.machinery
import math
import sys
import types

import pytest

from archscale.sweeps.run_logs import LoggingOptionError, LogOptions, RunLogger, event_scalars
from archscale.sweeps.worker import run_one
from archscale.training.run_config import RunConfig


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    # Only the tests that read TensorBoard files need the package: W&B and option checks run without it.
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def row(step: int, loss: float, **changes) -> dict:
    base = {
        "step": step, "tokens": 10 * step, "flops": 600 * step, "lm_loss": loss, "aux_loss": 0.0, "loss": loss,
        "lr": 1e-3, "grad_norm": 1.0, "expert_fraction": None, "tokens_per_s": 100.0, "wall_time": 0.1,
        "noise_scale": math.nan,
    }  # fmt: skip
    return {**base, **changes}


def test_event_scalars_match_hand_computed_values() -> None:
    shares = [[0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]]
    [(step, scalars)] = event_scalars(
        "progress", {"rows": [row(3, 2.5, expert_fraction=shares, noise_scale=40.0)]}, peak_flops=1e4
    )
    assert step == 3
    assert scalars["perf/mfu"] == pytest.approx(60 * 100 / 1e4)  # 600 FLOPs / 10 tokens · 100 tok/s / peak
    assert scalars["experts/cv/layer0"] == pytest.approx(math.sqrt(0.125 / 4) / 0.25)  # std 0.1768 / mean
    assert scalars["experts/max_load/layer0"] == pytest.approx(2.0)  # 0.5 · 4 experts
    assert scalars["experts/cv/layer1"] == 0.0 and scalars["experts/max_load/layer1"] == 1.0
    assert scalars["train/noise_scale"] == 40.0 and scalars["train/lm_loss"] == 2.5

    [(_, early)] = event_scalars("progress", {"rows": [row(1, 3.0)]})  # no estimate yet, no peak FLOP/s
    assert "train/noise_scale" not in early and "perf/mfu" not in early
    assert not any(tag.startswith("experts/") for tag in early)

    evals = [
        {"step": 8, "subset": s, "loss": v, "bits_per_byte": v / 2} for s, v in (("code", 1.0), ("all", 1.5))
    ]  # fmt: skip
    assert event_scalars("evals", {"rows": evals}) == [
        (8, {"test/loss/code": 1.0, "test/bits_per_byte/code": 0.5, "test/loss/all": 1.5, "test/bits_per_byte/all": 0.75})
    ]  # fmt: skip
    assert event_scalars("started", {"step": 0, "steps": 8}) == []


def test_tiny_moe_run_writes_every_standard_scalar(tiny_corpus, tmp_path) -> None:
    run = RunConfig.from_dict({
        "model": "moe-100k", "tokens": 8 * 64 * 12, "batch_size": 8, "micro_batch_size": 4, "seq_len": 64,
        "lr": 3e-3, "dataset": str(tiny_corpus.path), "eval_tokens_per_subset": 1024, "eval_at_tokens": [8 * 64 * 6],
    })  # fmt: skip
    events = []
    result = run_one(
        run.to_dict(),
        str(tmp_path),
        lambda kind, payload: events.append(kind),
        logs=LogOptions(peak_flops=1e9),
    )
    assert result["status"] == "finished" and "progress" in events  # the coordinator still gets every event
    scalars = read_scalars(tmp_path / "tb")
    layers = run.model.n_layers
    expected = {
        "train/loss", "train/lm_loss", "train/aux_loss", "train/grad_norm", "train/lr", "train/noise_scale",
        "perf/tokens_per_s", "perf/mfu",
        *(f"experts/{m}/layer{i}" for m in ("cv", "max_load") for i in range(layers)),
        *(f"test/{m}/{s}" for m in ("loss", "bits_per_byte") for s in ("code", "prose", "all")),
    }  # fmt: skip
    assert set(scalars) == expected

    curve = result["curve"]
    assert (
        [s for s, _ in scalars["train/lm_loss"]]
        == list(range(1, run.steps + 1))
        == [r["step"] for r in curve]
    )
    assert [v for _, v in scalars["train/lm_loss"]] == pytest.approx([r["lm_loss"] for r in curve], rel=1e-6)
    assert [v for _, v in scalars["train/aux_loss"]] == pytest.approx(
        [r["aux_loss"] for r in curve], rel=1e-6
    )
    noisy = [r for r in curve if not math.isnan(r["noise_scale"])]
    assert noisy and [s for s, _ in scalars["train/noise_scale"]] == [r["step"] for r in noisy]
    assert [v for _, v in scalars["train/noise_scale"]] == pytest.approx(
        [r["noise_scale"] for r in noisy], rel=1e-6
    )
    mfu = [run.derived()["N"] * r["tokens_per_s"] / 1e9 for r in curve]  # 6N+attention FLOPs/token
    assert [v for _, v in scalars["perf/mfu"]] == pytest.approx(mfu, rel=1e-5)
    last = curve[-1]["expert_fraction"][0]
    assert scalars["experts/max_load/layer0"][-1][1] == pytest.approx(max(last) * len(last), rel=1e-6)
    assert all(v >= 1.0 - 1e-6 for _, v in scalars["experts/max_load/layer0"])  # the busiest ≥ the mean

    final = {e["subset"]: e for e in result["evals"] if e["step"] == run.steps}
    assert [s for s, _ in scalars["test/loss/all"]] == [6, 12]
    assert scalars["test/loss/all"][-1][1] == pytest.approx(final["all"]["loss"], rel=1e-6)
    assert scalars["test/bits_per_byte/code"][-1][1] == pytest.approx(
        final["code"]["bits_per_byte"], rel=1e-6
    )


def feed(logger: RunLogger, start: int, stop: int, loss: float) -> None:
    logger("started", {"step": start, "steps": stop})
    logger("progress", {"rows": [row(s, loss) for s in range(start + 1, stop + 1)]})


def test_resumed_run_replaces_the_steps_logged_after_its_checkpoint(tmp_path) -> None:
    run = RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 8, "batch_size": 8, "lr": 1e-3})
    with RunLogger(run, tmp_path) as killed:
        feed(killed, 0, 6, loss=1.0)  # logged up to step 6, but its last checkpoint was at step 4
        assert [s for s, _ in read_scalars(tmp_path / "tb")["train/loss"]] == [
            1,
            2,
            3,
            4,
            5,
            6,
        ]  # on disk live
    with RunLogger(run, tmp_path) as resumed:
        feed(resumed, 4, 8, loss=2.0)
    assert read_scalars(tmp_path / "tb")["train/loss"] == [(s, 1.0) for s in range(1, 5)] + [
        (s, 2.0) for s in range(5, 9)
    ]


def test_tensorboard_off_writes_no_files(tmp_path) -> None:
    run = RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 8, "batch_size": 8, "lr": 1e-3})
    with RunLogger(run, tmp_path, LogOptions(tensorboard=False)) as logger:
        feed(logger, 0, 3, loss=1.0)
    assert not (tmp_path / "tb").exists()


class FakeWandbRun:
    def __init__(self, **kwargs) -> None:
        self.init, self.logged, self.finished = kwargs, [], False

    def log(self, data: dict, step: int) -> None:
        self.logged.append((step, data))

    def finish(self) -> None:
        self.finished = True


def test_wandb_runs_offline_with_the_same_scalars(tmp_path, monkeypatch) -> None:
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.runs = []
    fake.init = lambda **kwargs: fake.runs.append(FakeWandbRun(**kwargs)) or fake.runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run = RunConfig.from_dict({"model": "dense-100k", "tokens": 8 * 64 * 8, "batch_size": 8, "lr": 1e-3})
    with RunLogger(run, tmp_path, LogOptions(tensorboard=False, wandb=True, wandb_project="p")) as logger:
        feed(logger, 0, 2, loss=1.5)
    [wb] = fake.runs
    assert wb.init["mode"] == "offline" and wb.init["id"] == run.run_id and wb.init["project"] == "p"
    assert wb.init["dir"] == str(tmp_path) and wb.init["config"] == run.to_dict()
    assert [(s, d["train/loss"]) for s, d in wb.logged] == [(1, 1.5), (2, 1.5)]
    assert wb.finished


def test_bad_or_unavailable_options_name_the_field_and_the_fix(monkeypatch) -> None:
    with pytest.raises(LoggingOptionError, match="peak_flops"):
        LogOptions(peak_flops=-1.0)
    with pytest.raises(LoggingOptionError, match="peak_flops"):
        LogOptions(peak_flops=math.inf)
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(LoggingOptionError, match=r"wandb=True.*archscale\[wandb\]"):
        LogOptions(wandb=True)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(LoggingOptionError, match=r"archscale\[tb\]"):
        LogOptions(tensorboard=True)
    assert not LogOptions().uses_tensorboard  # the default quietly skips TensorBoard when it is missing
