"""Memory per device of a training step, before anything is allocated: weights, gradients, AdamW state and
the activations a micro-batch keeps for its backward pass.

Activations are counted from what this project's modules save for backward (``saved_tensors`` of each op),
per token and per layer, by dtype:

- always fp32: the residual stream entering each norm (2·d: attention and feed-forward), the norms' rstd
  (2), the attention's log-sum-exp per head (SDPA's flash and memory-efficient kernels keep no score
  matrix), the router's logits and probabilities (2·E) and top-k weights;
- the matmul operands, fp32 or bf16 under autocast: the normed inputs (2·d), QKV (3·d), rotated q and k
  (2·d), the attention output and its contiguous copy (2·d), and SwiGLU's gate, silu, up and product
  (4·d_ff; per routed copy of a token for MoE, with the token itself, the expert's output and its
  router-weighted copy, 3·d; and the shared experts' 4·width each);
- int64 indices: the input ids, and MoE's top-k choices, sort order and token index (3·top_k).

The head keeps the final norm's input and output, and the log-softmax over the vocabulary of up to
``LOSS_CHUNK_TOKENS`` tokens at once (beyond that, the chunked loss keeps only the hidden states). At the
start of the backward pass two more vocabulary-wide fp32 buffers exist (the gradients of the log-softmax and
of the logits): counted as ``transient``. MoE counts assume balanced routing; the padded CPU backend pads
every expert to the busiest one's rows, which this estimate leaves out.

Measured against the CPU allocator's peak over two training steps (tests/models/test_memory.py) and, by
``benchmarks/gpu_check.py``, against ``torch.cuda.max_memory_allocated``. :func:`plan_memory` turns it into
a run's placement: rows per pass, recomputation and sharding chosen to fit the devices' memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archscale.errors import ArchscaleError
from archscale.models.config import ModelConfig
from archscale.models.loss import LOSS_CHUNK_TOKENS
from archscale.models.scale import config_counts

FP32, BF16, INDEX = 4, 2, 8  # bytes per element
GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one device holds at the peak of a training step, by what holds them."""

    weights: int  # fp32 master weights (this rank's shard under FSDP, plus the gathered blocks)
    gradients: int
    optimizer: int  # AdamW's two moments, fp32
    activations: int  # saved for the backward pass of one micro-batch
    transient: int  # the loss's vocabulary-wide gradient buffers at the start of the backward pass
    accumulates: bool  # gradients exist while a micro-batch's activations do (several micro-batches a step)

    @property
    def total(self) -> int:
        """With one micro-batch a step the gradients fill in as the backward pass frees the activations, so
        whichever is larger sets the peak."""
        backward = self.activations + self.transient
        held = self.gradients + backward if self.accumulates else max(self.gradients, backward)
        return self.weights + self.optimizer + held

    def describe(self) -> str:
        parts = ("weights", "gradients", "optimizer", "activations", "transient")
        return (
            f"{self.total / GIB:.3g} GiB ("
            + ", ".join(f"{p} {getattr(self, p) / GIB:.3g}" for p in parts)
            + ")"
        )


def activation_bytes_per_token(cfg: ModelConfig, *, bf16: bool = False) -> tuple[int, int]:
    """Bytes saved for backward per token: (one layer, the head), from the module docstring's inventory."""
    act = BF16 if bf16 else FP32
    d, k, width = cfg.d_model, cfg.routed_top_k, cfg.expert_width
    # in fp32 one d-wide tensor per layer serves two ops and is kept once (measured with saved-tensor hooks)
    layer = FP32 * (4 * d + cfg.n_heads + 2) + act * 9 * d - (0 if bf16 else FP32 * d)
    if cfg.is_moe:
        layer += FP32 * (2 * cfg.n_routed_experts + k) + INDEX * 3 * k + act * k * (3 * d + 4 * width)
        layer += act * 4 * cfg.n_shared_experts * width
    else:
        layer += act * 4 * cfg.d_ff
    head = 2 * INDEX + FP32 * (2 * d + 1) + act * d  # ids and targets, the final norm's input and output
    return layer, head


def estimate_memory(
    cfg: ModelConfig,
    micro_batch: int,
    seq_len: int,
    *,
    accumulates: bool = True,
    ranks: int = 1,
    shard: bool = False,
    bf16: bool = False,
    checkpoint_activations: bool = False,
    noise_probe: bool = False,
) -> MemoryEstimate:
    """Peak bytes on one device for micro-batches of ``micro_batch`` × ``seq_len`` tokens.

    ``accumulates``: the step has several micro-batches, so gradients exist while activations do (with one,
    the gradients replace the activations as the backward pass frees them). ``ranks``: processes training
    the run; with ``shard`` (FSDP2) weights, gradients and optimiser state are split over them, plus the
    gathered weights of the root and of two blocks (the one computing, the one prefetched) in the compute
    dtype; without it, DDP keeps a second copy of the gradients in its communication buckets. ``bf16``:
    autocast, which also keeps a bf16 copy of every weight for the step. ``checkpoint_activations``: each
    layer keeps only its input, and one layer's activations exist at a time when it is recomputed.
    ``noise_probe``: the gradient-noise probe keeps a copy of this rank's gradients (runs of several
    micro-batches a step, :mod:`archscale.training.noise_probe`).
    """
    if micro_batch < 1 or seq_len < 1:
        raise ArchscaleError(f"micro_batch={micro_batch}, seq_len={seq_len}: both must be ≥ 1")
    counts = config_counts(cfg)
    params = counts.total
    layer_params = (params - counts.embedding - cfg.d_model) // cfg.n_layers
    root_params = params - cfg.n_layers * layer_params
    sharded = shard and ranks > 1
    share = ranks if sharded else 1
    weights = FP32 * params // share
    if sharded:
        weights += (BF16 if bf16 else FP32) * (root_params + 2 * layer_params)
    elif bf16:
        weights += BF16 * params
    gradients = FP32 * params // share
    if sharded:
        gradients += FP32 * layer_params  # a block's unsharded gradients before their reduce-scatter
    elif ranks > 1:
        gradients *= 2  # DDP's buckets
    if noise_probe:
        gradients += FP32 * params // share
    optimizer = 2 * FP32 * params // share

    tokens = micro_batch * seq_len
    layer, head = activation_bytes_per_token(cfg, bf16=bf16)
    loss_tokens = min(tokens, LOSS_CHUNK_TOKENS)
    vocab_row = FP32 * cfg.vocab_size  # one token's fp32 log-probabilities
    top = tokens * head + loss_tokens * vocab_row  # the head and loss, at the end of the forward pass
    transient = 2 * loss_tokens * vocab_row
    if checkpoint_activations:  # the peak is either the loss's, or one recomputed layer's in backward
        activations = tokens * cfg.n_layers * FP32 * cfg.d_model + max(top, tokens * layer - transient)
    else:
        activations = tokens * cfg.n_layers * layer + top
    return MemoryEstimate(weights, gradients, optimizer, activations, transient, accumulates)


@dataclass(frozen=True)
class MemoryPlan:
    """How a run's micro-batches are executed on each device: ``rows`` per forward/backward pass, ``passes``
    of them accumulated into one micro-batch (the run's ``micro_batch_size``, its identity, never changes),
    activations recomputed or not, and FSDP over ``ranks`` or not; ``estimate``: the peak per device."""

    rows: int
    passes: int
    checkpoint_activations: bool
    shard: bool
    ranks: int
    estimate: MemoryEstimate

    def describe(self) -> str:
        """One line, e.g. "2 rows × 4 passes, FSDP over 8, 31.2 GiB/device"."""
        parts = [
            f"{self.rows} row{'s' if self.rows > 1 else ''} × {self.passes} pass{'es' if self.passes > 1 else ''}"
        ]
        if self.ranks > 1:
            parts.append(f"{'FSDP' if self.shard else 'DDP'} over {self.ranks}")
        if self.checkpoint_activations:
            parts.append("activations recomputed")
        return ", ".join([*parts, f"{self.estimate.total / GIB:.3g} GiB/device"])

    def choices(self) -> dict[str, Any]:
        """What a checkpoint keeps of the plan, so a resumed run can train on in the same passes."""
        return {
            "rows": self.rows, "checkpoint_activations": self.checkpoint_activations, "shard": self.shard,
            "ranks": self.ranks,
        }  # fmt: skip


def plan_memory(
    cfg: ModelConfig,
    rows: int,
    seq_len: int,
    budget_bytes: float,
    *,
    ranks: int = 1,
    bf16: bool = False,
    micro_batch: int | None = None,
    shard: bool | None = None,
    checkpoint_activations: bool | None = None,
    noise_probe: bool = False,
    rows_per_pass: int | None = None,
) -> MemoryPlan:
    """The cheapest way to train a micro-batch of ``micro_batch`` rows (default: all this rank's ``rows``
    of a step) within ``budget_bytes`` per device: the largest pass dividing the micro-batch that fits,
    trying settings from the cheapest in compute to the most frugal — plain, FSDP over ``ranks`` (when
    there are several), recomputed activations, both. Sharding on one node costs communication that
    overlaps the compute, while recomputation costs about a third more compute on every step, so the plan
    shards before it recomputes. ``shard``/``checkpoint_activations``: True or False fixes that choice,
    None lets the plan decide; ``rows_per_pass`` fixes the rows a pass likewise. Refuses with the numbers
    when nothing fits."""
    micro = rows if micro_batch is None else micro_batch
    recompute_choices = (False, True) if checkpoint_activations is None else (checkpoint_activations,)
    shard_choices = (False, True) if shard is None and ranks > 1 else (bool(shard),)
    divisors = sorted((m for m in range(1, micro + 1) if micro % m == 0), reverse=True)
    if rows_per_pass is not None:
        if rows_per_pass not in divisors:
            raise ArchscaleError(
                f"rows_per_pass={rows_per_pass} does not divide the micro-batch of {micro} rows"
            )
        divisors = [rows_per_pass]
    for recompute in recompute_choices:
        for sharded in shard_choices:
            for pass_rows in divisors:
                estimate = estimate_memory(
                    cfg, pass_rows, seq_len, accumulates=pass_rows < rows, ranks=ranks, shard=sharded,
                    bf16=bf16, checkpoint_activations=recompute, noise_probe=noise_probe,
                )  # fmt: skip
                if estimate.total <= budget_bytes:
                    return MemoryPlan(pass_rows, micro // pass_rows, recompute, sharded, ranks, estimate)
    frugal = f"{'FSDP' if sharded else 'DDP'} over {ranks}, " if ranks > 1 else ""
    raise ArchscaleError(
        f"{cfg.name or 'the model'} needs {estimate.describe()} per device at one row of RunConfig.seq_len={seq_len} tokens a pass, "
        f"over the {budget_bytes / GIB:.3g} GiB available ({frugal}activations "
        f"{'recomputed' if recompute else 'kept'})",
        hint="train it on more GPUs (`torchrun --nproc-per-node N … train`: the plan shards it where it must), "
        "leave recomputed activations to the plan (no --no-checkpoint-activations), or use a shorter seq_len",
    )
