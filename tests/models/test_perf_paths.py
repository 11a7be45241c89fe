"""The fast paths equal their plain definitions, gradients included: rotary, SwiGLU, MoE dispatch/combine."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archscale.models import ModelConfig
from archscale.models.layers import SwiGLU, apply_rotary, rotary_tables
from archscale.models.moe import MoEFeedForward, grouped_available, resolve_backend


def _rotary_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Llama / HF ``apply_rotary_pos_emb``: x·cos + rotate_half(x)·sin, rotate_half(x) = (-x2, x1)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def test_rotary_matches_the_rotate_half_definition_and_its_gradient() -> None:
    cos, sin = rotary_tables(head_dim=8, max_seq_len=6, theta=100.0)
    cos, sin = cos.double(), sin.double()
    x = torch.randn(2, 6, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    c, s = cos.view(6, 1, 8), sin.view(6, 1, 8)  # (t, head, head_dim) broadcast over heads
    fast, ref = apply_rotary(x, c, s), _rotary_reference(x, c, s)
    torch.testing.assert_close(fast, ref)
    grad = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad(fast, x, grad)
    (g_ref,) = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(g_fast, g_ref)
    assert torch.autograd.gradcheck(lambda t: apply_rotary(t, c, s), (x,))


def test_rotary_preserves_norms_and_relative_positions() -> None:
    """A rotation: |RoPE(x)| = |x|, and <RoPE(q)_i, RoPE(k)_j> depends only on i - j."""
    cos, sin = rotary_tables(head_dim=16, max_seq_len=12, theta=10000.0)
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    rq = apply_rotary(q.expand(12, 16), cos, sin)
    rk = apply_rotary(k.expand(12, 16), cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(12))
    torch.testing.assert_close(rq[5] @ rk[3], rq[9] @ rk[7])
    torch.testing.assert_close(rq[4] @ rk[4], q @ k)


def test_swiglu_matches_the_fused_product_definition_and_keeps_the_gate_first_layout() -> None:
    """One matmul by the stored (2·d_ff, d_model) weight, chunked into (gate, up): the checkpoint layout."""
    torch.manual_seed(5)
    block = SwiGLU(d_model=8, d_ff=12).double()
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    gate, up = (x @ block.gate_up.weight.T).chunk(2, dim=-1)
    ref = (F.silu(gate) * up) @ block.down.weight.T
    fast = block(x)
    torch.testing.assert_close(fast, ref)
    grad = torch.randn_like(ref)
    params = [x, block.gate_up.weight, block.down.weight]
    for g_fast, g_ref in zip(
        torch.autograd.grad(fast, params, grad), torch.autograd.grad(ref, params, grad), strict=True
    ):
        torch.testing.assert_close(g_fast, g_ref)


def _moe_reference(layer: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """Dense over experts: every expert on every token, weighted by the renormalised top-k router mass."""
    probs = layer.router(x).softmax(-1)
    weights, experts = probs.topk(layer.top_k, dim=-1)
    weights = weights / weights.sum(-1, keepdim=True)
    gate_mass = torch.zeros_like(probs).scatter(-1, experts, weights)  # (tokens, E), zero off the top-k
    gate, up = torch.einsum("td,edf->etf", x, layer.experts.w_gate_up).chunk(2, dim=-1)
    y = torch.einsum("etf,efd->etd", F.silu(gate) * up, layer.experts.w_down)
    return torch.einsum("te,etd->td", gate_mass, y)


@pytest.mark.parametrize("backend", ["loop", "grouped"])
def test_moe_dispatch_and_combine_match_the_dense_definition_with_gradients(backend: str) -> None:
    cfg = ModelConfig(
        d_model=16, n_layers=1, n_heads=2, d_ff=24, kind="moe", n_experts=4, top_k=2, moe_backend=backend
    )
    if backend == "grouped" and not grouped_available():
        pytest.skip("torch._grouped_mm needs PyTorch >= 2.8")
    torch.manual_seed(4)
    layer = MoEFeedForward(cfg)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(1, 13, 16, requires_grad=True)
    out, _ = layer(x)
    ref = _moe_reference(layer, x[0])
    torch.testing.assert_close(out[0], ref, rtol=1e-5, atol=1e-6)
    grad = torch.randn_like(ref)
    params = [x, *layer.parameters()]
    fast_grads = torch.autograd.grad(out[0], params, grad)
    ref_grads = torch.autograd.grad(ref, params, grad)
    for name, g_fast, g_ref in zip(
        ["x", "router", "w_gate_up", "w_down"], fast_grads, ref_grads, strict=True
    ):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-5, msg=name)


def test_auto_backend_is_the_loop_on_cpu_and_the_grouped_kernel_on_cuda_when_aligned() -> None:
    cfg = ModelConfig(d_model=16, n_layers=1, n_heads=2, d_ff=24, kind="moe", n_experts=4, top_k=2)
    assert resolve_backend(cfg, "cpu") == "loop"
    assert resolve_backend(cfg, torch.device("cuda", 0)) == ("grouped" if grouped_available() else "loop")
    assert resolve_backend(cfg.replace(d_ff=20), "cuda") == "loop"  # 20 breaks the 16-byte stride rule
    assert resolve_backend(cfg.replace(moe_backend="grouped"), "cpu") == "grouped"  # explicit wins
    assert resolve_backend(cfg.replace(moe_backend="loop"), "cuda") == "loop"
