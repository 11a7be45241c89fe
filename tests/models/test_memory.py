"""The memory estimate against the CPU allocator's measured peak, and its arithmetic against hand counts."""

from __future__ import annotations

import pytest
import torch

from archscale.errors import ArchscaleError
from archscale.models import get_preset
from archscale.models.memory import GIB, estimate_memory, plan_memory
from archscale.models.scale import config_counts
from memory_helpers import measured_peak

CASES = [  # preset, rows per micro-batch, seq_len, micro-batches, checkpointed, bf16 autocast
    ("dense-800k", 16, 256, 2, False, False),
    ("moe-800k", 8, 256, 1, False, False),
    ("dense-100k", 48, 256, 1, False, False),  # 12288 tokens: the chunked loss
    ("dense-800k", 16, 256, 2, True, False),
    ("moe-800k", 8, 256, 2, True, False),
    ("dense-800k", 8, 256, 2, False, True),
    ("moe-800k", 8, 256, 1, False, True),
]


@pytest.mark.parametrize(("preset", "rows", "seq_len", "n_micro", "recompute", "bf16"), CASES)
def test_estimate_is_within_15_percent_of_the_measured_peak(preset, rows, seq_len, n_micro, recompute, bf16):
    torch.set_num_threads(1)
    cfg = get_preset(preset).replace(moe_backend="loop")
    peak = measured_peak(cfg, rows, seq_len, n_micro, recompute=recompute, bf16=bf16)
    estimate = estimate_memory(
        cfg, rows, seq_len, accumulates=n_micro > 1, checkpoint_activations=recompute, bf16=bf16
    )
    assert 0.85 * peak <= estimate.total <= 1.15 * peak, (estimate.describe(), peak / GIB)


def test_weights_gradients_and_adamw_state_are_16_bytes_per_parameter_split_by_fsdp() -> None:
    cfg = get_preset("dense-7b")
    params = config_counts(cfg).total
    one = estimate_memory(cfg, 1, 2048)
    assert (one.weights, one.gradients, one.optimizer) == (4 * params, 4 * params, 8 * params)
    eight = estimate_memory(cfg, 1, 2048, ranks=8, shard=True, bf16=True)
    assert eight.optimizer == 8 * params // 8
    # each rank's shard plus no more than a few blocks gathered: far below one GPU's whole copy
    assert 4 * params // 8 < eight.weights < 4 * params // 4
    assert eight.activations < one.activations  # bf16 matmul operands
    ddp = estimate_memory(cfg, 1, 2048, ranks=8)
    assert ddp.gradients == 2 * one.gradients and ddp.optimizer == one.optimizer


def test_activations_grow_with_tokens_and_checkpointing_keeps_less() -> None:
    cfg = get_preset("moe-200m")
    small, big = (estimate_memory(cfg, rows, 1024).activations for rows in (2, 4))
    assert big > small
    assert estimate_memory(cfg, 4, 1024, checkpoint_activations=True).activations < big / 4


def test_the_plan_takes_the_largest_pass_that_fits_and_refuses_with_the_numbers() -> None:
    cfg = get_preset("dense-100m")
    rows, seq_len = 64, 2048
    budget = 40 * GIB
    plan = plan_memory(cfg, rows, seq_len, budget, bf16=True, checkpoint_activations=False)
    micro = plan.rows
    assert rows % micro == 0 and plan.passes == rows // micro
    assert estimate_memory(cfg, micro, seq_len, accumulates=micro < rows, bf16=True).total <= budget
    bigger = next(m for m in range(micro + 1, rows + 1) if rows % m == 0)
    assert estimate_memory(cfg, bigger, seq_len, accumulates=bigger < rows, bf16=True).total > budget
    with pytest.raises(
        ArchscaleError,
        match=r"needs \d+ GiB \(weights .*\) per device at one row of RunConfig.seq_len=\d+ tokens a pass.*torchrun",
    ):
        plan_memory(get_preset("dense-7b"), rows, seq_len, 80 * GIB, bf16=True)
