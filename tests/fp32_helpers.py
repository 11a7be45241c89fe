"""Tolerances for comparing two fp32 computations of the same values (a uniquely named module, so it never
collides with another conftest).

Two kernels, or one kernel on two CPU families (AVX2, AVX-512, NEON), sum in different orders; a length-K
sum's rounding error is bounded by about K ulps of its largest terms (Higham's γ_K). So the tolerance is a few
ulps × K × the largest value compared: the same on every CPU, and still ~1e-4 of the values or less, far
below what a wrong weight or a dropped term moves.
"""

from __future__ import annotations

import torch

ULPS = 4
EPS = torch.finfo(torch.float32).eps  # one ulp at 1.0


def assert_fp32_close(actual: torch.Tensor, expected: torch.Tensor, reduction_length: int, msg=None) -> None:
    """``reduction_length``: the summed lengths of the reductions feeding each value."""
    atol = ULPS * EPS * reduction_length * expected.detach().abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol, msg=msg)


def model_reduction_length(cfg, tokens: int) -> int:
    """A whole model's: per layer attention over the sequence, d_model into each projection and d_ff out of
    the feed-forward; the head's d_model; and, for weight gradients, the sum over the batch's tokens."""
    return cfg.n_layers * (cfg.max_seq_len + cfg.d_model + cfg.d_ff) + cfg.d_model + tokens
