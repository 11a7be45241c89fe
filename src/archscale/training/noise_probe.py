"""The gradient noise scale's measurement inside one optimiser step, read off gradient accumulation.

A micro-batch's own gradient is the accumulated gradient minus what it held before that micro-batch, so
the small-batch norms cost a subtraction and a norm per micro-batch and no extra backward pass. Under
DDP every micro-batch gradient is kept local (``no_sync``) so its norm is a genuine small-batch sample on
every rank, and the ranks average the gradients once at the end; that makes N processes compute exactly
what one process computes for the same global batch. Under FSDP every backward averages the ranks'
gradients into their shards, so a micro-batch's gradient is that of micro-batch × world rows: the small
batch of the estimate, measured when each rank takes at least two micro-batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from archscale.training.distributed import DistInfo, local_part, mean_across_ranks, sum_across_ranks
from archscale.training.noise_scale import NoiseScaleEstimator
from archscale.training.run_config import RunConfig


class GradientNoiseProbe:
    """One step's micro-batch gradient norms, handed with the step gradient's norm to the run's estimator.

    Call :meth:`after_backward` after each micro-batch's backward (after its last pass, where the run's memory
    plan splits it into passes: the probe reads micro-batches, never passes) and :meth:`update` once the step's
    gradient is complete (and averaged over the ranks), before it is clipped.
    """

    def __init__(
        self, params: Sequence[torch.Tensor], n_micro: int, small_tokens: int, big_tokens: int, dist: DistInfo,
        *, sharded: bool,
    ) -> None:  # fmt: skip
        self.params, self.n_micro, self.dist, self.sharded = list(params), n_micro, dist, sharded
        self.small_tokens, self.big_tokens = small_tokens, big_tokens
        self.previous = [
            torch.zeros_like(local_part(p)) for p in self.params
        ]  # gradient before this micro-batch
        self.sq_norms: list[torch.Tensor] = []

    @classmethod
    def for_step(
        cls, run: RunConfig, params: Sequence[torch.Tensor], n_micro: int, dist: DistInfo, *, sharded: bool
    ) -> GradientNoiseProbe | None:
        """A probe for a step of ``n_micro`` micro-batches on this rank, or None where the step has no two
        batch sizes to compare (one micro-batch per step; under FSDP, one per rank)."""
        if not (n_micro > 1 if sharded else run.measures_noise_scale):
            return None
        micro_rows = run.micro_batch_size * (dist.world_size if sharded else 1)
        return cls(params, n_micro, micro_rows * run.seq_len, run.tokens_per_step, dist, sharded=sharded)

    def after_backward(self) -> None:
        """Take the norm of the micro-batch just accumulated (its loss was divided by ``n_micro``)."""
        grads = [local_part(p.grad) for p in self.params]
        torch._foreach_sub_(
            self.previous, grads
        )  # in place, no third copy of the gradients: |prev − g| = |g − prev|
        diff_norms = torch.stack(torch._foreach_norm(self.previous))
        self.sq_norms.append(self.n_micro**2 * diff_norms.square().sum())
        torch._foreach_copy_(self.previous, grads)

    def update(self, estimator: NoiseScaleEstimator, step_grad_norm: float) -> None:
        """Add the step to ``estimator`` (a collective: every rank calls it), in tokens."""
        small = torch.stack(self.sq_norms)
        small = sum_across_ranks(small, self.dist) if self.sharded else small  # a shard's part of each
        small_mean = mean_across_ranks(small.mean(), self.dist).item()
        estimator.update([small_mean], step_grad_norm**2, self.small_tokens, self.big_tokens)
