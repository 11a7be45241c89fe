"""Next-token cross-entropy without the full logits: the output head and the loss, a chunk of tokens at a time.

At the paper's shapes one micro-batch of logits is large (16 × 8192 tokens × 32k vocabulary: 8.6 GB in
fp32, twice that with its gradient). Above ``chunk_tokens`` tokens the head and the loss run per chunk,
each chunk under activation checkpointing, so forward and backward hold one chunk's logits at a time; the
head's matmul is recomputed in the backward pass (about 2·d·V FLOPs per token). At or below it — every CPU
preset — the computation is the plain one, operation for operation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

LOSS_CHUNK_TOKENS = 8192  # at most this many tokens' logits exist at once


def _chunk_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum")


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    reduction: Literal["mean", "sum"] = "mean",
    chunk_tokens: int = LOSS_CHUNK_TOKENS,
) -> torch.Tensor:
    """Cross-entropy of the logits ``hidden @ weight.T`` (hidden: ``(..., d)``, targets: ``(...)``), in nats,
    summed or averaged over the tokens, materialising at most ``chunk_tokens`` rows of logits."""
    hidden, targets = hidden.flatten(0, -2), targets.flatten()
    if len(targets) <= chunk_tokens:
        total = F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum")
    else:
        parts = zip(hidden.split(chunk_tokens), targets.split(chunk_tokens), strict=True)
        if torch.is_grad_enabled():
            total = sum(checkpoint(_chunk_loss, h, weight, t, use_reentrant=False) for h, t in parts)
        else:
            total = sum(_chunk_loss(h, weight, t) for h, t in parts)
    return total / len(targets) if reduction == "mean" else total
