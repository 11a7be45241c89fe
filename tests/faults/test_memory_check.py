"""A CPU run that cannot fit in the machine's memory is refused before anything is allocated, with the
estimate; one whose micro-batch does not fit runs it in passes of fewer rows that do."""

from __future__ import annotations

import pytest

from archscale.errors import ArchscaleError
from archscale.models import get_preset
from archscale.models.memory import estimate_memory
from archscale.training import trainer as trainer_module
from archscale.training.trainer import Trainer, load_train_data
from training_helpers import make_run


def test_a_terabyte_model_is_refused_before_allocating(tiny_corpus, tmp_path) -> None:
    """d_model = 1e6: tens of TB of weights. Without the check, building the model fails in the allocator
    (a RuntimeError, or the OOM killer), not with this one line."""
    huge = {**get_preset("dense-100k").to_dict(), "d_model": 1_000_000, "n_heads": 2, "d_ff": 3_000_000}
    run = make_run(tiny_corpus, model=huge)
    with pytest.raises(
        ArchscaleError,
        match=r"needs .* GiB .* at one row of RunConfig.seq_len=\d+ tokens a pass, over the .* GiB available",
    ):
        Trainer(run, load_train_data(run), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_micro_batch_too_big_for_the_memory_left_runs_in_passes_that_fit(
    tiny_corpus, tmp_path, monkeypatch
) -> None:
    run = make_run(tiny_corpus, micro_batch_size=8)
    at_two = estimate_memory(run.model, 2, run.seq_len, accumulates=True).total
    at_four = estimate_memory(run.model, 4, run.seq_len, accumulates=True).total
    monkeypatch.setattr(trainer_module, "available_host_memory", lambda: (at_two + at_four) / 2)
    trainer = Trainer(run, load_train_data(run), tmp_path)
    assert (trainer.plan.rows, trainer.plan.passes) == (2, 4) and trainer.run.micro_batch_size == 8
    assert not (trainer.plan.shard or trainer.plan.checkpoint_activations)


def test_host_memory_is_read_from_the_kernel() -> None:
    with open("/proc/meminfo") as meminfo:
        total = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
    available = trainer_module.available_host_memory()
    assert available is not None and 0 < available <= total


def test_a_gpu_share_plans_within_its_share(monkeypatch) -> None:
    """Runs sharing a GPU (Ray's fractional GPUs) each plan within their share of its memory; the CPU's
    budget is the host's available memory whatever the share."""
    import torch

    class Properties:
        total_memory = 80 * 2**30

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties())
    assert trainer_module.default_memory_budget(torch.device("cuda:0"), 0.25) == 20 * 2**30
    assert trainer_module.default_memory_budget(torch.device("cuda:0")) == 80 * 2**30
    assert (
        trainer_module.default_memory_budget(torch.device("cpu"), 0.25)
        == trainer_module.available_host_memory()
    )


def test_a_ray_executor_with_a_gpu_fraction_gives_its_runs_that_share() -> None:
    pytest.importorskip("ray")
    from archscale.sweeps.ray_executor import RayExecutor
    from archscale.training.options import TrainOptions

    assert RayExecutor(num_gpus_per_run=0.5).train_options == TrainOptions(device_share=0.5)
    assert RayExecutor(num_gpus_per_run=2).train_options == TrainOptions(device_share=1.0)
    assert RayExecutor().train_options == TrainOptions()
    with pytest.raises(ArchscaleError, match="device_share"):
        TrainOptions(device_share=0.0)
