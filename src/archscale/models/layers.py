"""Building blocks shared by the dense and MoE families: RMSNorm, rotary embeddings, attention, SwiGLU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archscale.models.config import ModelConfig
from archscale.models.parametrization import attention_scale


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotary_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables in the rotate-half layout (Llama/HF convention, so checkpoints export unchanged)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x·cos + rotate_half(x)·sin without materialising rotate_half(x) (no neg, no cat).

    The tables repeat their first half (see ``rotary_tables``), so rotate_half(x)·sin is (-x2·s, x1·s) with
    s the first half of ``sin``: one multiply over x, then one fused multiply-add per half.
    """
    half = x.shape[-1] // 2
    s = sin[..., :half]
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], s, value=-1.0)
    out[..., half:].addcmul_(x[..., :half], s)
    return out


class _Rotary(torch.autograd.Function):
    """The rotation is orthogonal, so its backward is the same rotation by -θ: nothing but the tables is
    saved, and autograd does not keep (or re-read) the rotated activations."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        return _rotate(grad, cos, -sin), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x`` (..., head_dim) with tables from ``rotary_tables`` broadcast against it."""
    return _Rotary.apply(x, cos, sin)


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention; one fused QKV matmul, SDPA for the kernel. The logit scale is SDPA's
    1/√d_head under SP and √d_base / d_head under μP (:func:`~archscale.models.parametrization.attention_scale`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.scale = attention_scale(cfg)  # None under SP: SDPA's default

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).unbind(2)  # (b, t, head, hd)
        # broadcast over heads, in q's dtype: fp32 tables would promote bf16 q and k to fp32 under autocast
        cos, sin = cos.view(t, 1, -1).to(q.dtype), sin.view(t, 1, -1).to(q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=self.scale
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    """Dense feed-forward block: down(silu(gate(x)) * up(x)), gate and up stored as one weight.

    The two halves are applied as two matmuls on weight views rather than one matmul and a ``chunk`` of
    its output: that spares backward a concatenation of the two activation gradients and gives the
    element-wise ops contiguous operands, which on CPU roughly halves their cost (benchmarks/RESULTS.md).
    """

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_gate, w_up = self.gate_up.weight.chunk(2, dim=0)
        return self.down(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up))
