"""Held-out loss, overall and per subset, in nats per token and bits per byte.

Bits per byte = Σ nats over targets / (ln 2 · Σ UTF-8 bytes of the targets): exact for any tokeniser,
so runs with different vocabularies stay comparable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from archscale.models.loss import chunked_cross_entropy


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    windows: dict[str, torch.Tensor],
    token_bytes: np.ndarray,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> list[dict]:
    """One row per subset plus ``subset="all"`` (token-weighted over every evaluated window)."""
    was_training = model.training
    model.eval()
    byte_lengths = torch.as_tensor(np.asarray(token_bytes, dtype=np.int64))
    rows, total_nats, total_tokens, total_bytes = [], 0.0, 0, 0
    device_type = torch.device(device).type
    for subset, data in windows.items():
        nats, n_bytes = 0.0, 0
        for start in range(0, len(data), batch_size):
            chunk = data[start : start + batch_size]
            inputs, targets = chunk[:, :-1].to(device), chunk[:, 1:]
            with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                hidden, _ = model.features(inputs)  # on the device, a chunk of logits at a time
                loss = chunked_cross_entropy(
                    hidden, model.lm_head.weight, targets.to(device), reduction="sum"
                )
            nats += loss.item()
            n_bytes += int(byte_lengths[targets].sum())
        n_tokens = data[:, 1:].numel()
        rows.append(_row(subset, nats, n_tokens, n_bytes))
        total_nats, total_tokens, total_bytes = (
            total_nats + nats,
            total_tokens + n_tokens,
            total_bytes + n_bytes,
        )
    if rows:
        rows.append(_row("all", total_nats, total_tokens, total_bytes))
    model.train(was_training)
    return rows


def _row(subset: str, nats: float, n_tokens: int, n_bytes: int) -> dict:
    return {
        "subset": subset,
        "loss": nats / n_tokens,
        "bits_per_byte": nats / (math.log(2) * n_bytes) if n_bytes else float("nan"),
        "n_tokens": n_tokens,
        "n_bytes": n_bytes,
    }
