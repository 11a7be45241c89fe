"""The fast paths equal their plain definitions, gradients included: rotary, SwiGLU, MoE dispatch/combine,
the padded experts backend."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archscale.models import ModelConfig, build_model, get_preset
from archscale.models.layers import SwiGLU, apply_rotary, rotary_tables
from archscale.models.moe import Experts, MoEFeedForward, grouped_available, resolve_backend
from fp32_helpers import assert_fp32_close, model_reduction_length


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


@pytest.mark.parametrize("backend", ["loop", "grouped", "padded"])
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
    assert_fp32_close(out[0], ref, cfg.d_model + cfg.d_ff)
    grad = torch.randn_like(ref)
    params = [x, *layer.parameters()]
    fast_grads = torch.autograd.grad(out[0], params, grad)
    ref_grads = torch.autograd.grad(ref, params, grad)
    for name, g_fast, g_ref in zip(
        ["x", "router", "w_gate_up", "w_down"], fast_grads, ref_grads, strict=True
    ):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "counts",
    [[5, 5, 5, 5], [17, 1, 1, 1], [0, 9, 11, 0], [0, 0, 20, 0]],
    ids=["balanced", "skewed", "two-empty-experts", "one-expert-takes-all"],
)
def test_padded_experts_equal_the_loop_with_gradients(counts: list[int]) -> None:
    """Outputs and input/weight gradients to fp32 rounding, whatever the counts."""
    torch.manual_seed(6)
    experts = Experts(n_experts=4, d_model=12, d_ff=20)
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.3)
    counts_t = torch.tensor(counts)
    x = torch.randn(sum(counts), 12, requires_grad=True)
    grad = torch.randn(sum(counts), 12)
    params = [x, experts.w_gate_up, experts.w_down]
    results = {}
    for backend in ("loop", "padded"):
        out = experts(x, counts_t, backend)
        results[backend] = (out, *torch.autograd.grad(out, params, grad))
    for name, padded, loop in zip(
        ["out", "x", "w_gate_up", "w_down"], results["padded"], results["loop"], strict=True
    ):
        assert_fp32_close(padded, loop, 12 + 20 + sum(counts), msg=name)  # d_model, d_ff, the tokens


def test_moe_model_with_padded_experts_equals_the_loop_in_outputs_and_gradients() -> None:
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, d_ff=48, max_seq_len=16, kind="moe", n_experts=4,
                      top_k=2, moe_backend="loop")  # fmt: skip
    loop = build_model(cfg)
    padded = build_model(cfg.replace(moe_backend="padded"))
    padded.load_state_dict(loop.state_dict())
    idx = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(3))
    out_l, out_p = loop(idx, idx), padded(idx, idx)
    assert_fp32_close(out_p.logits, out_l.logits, model_reduction_length(cfg, idx.numel()))
    out_l.loss.backward()
    out_p.loss.backward()
    for (name, p_l), p_p in zip(loop.named_parameters(), padded.parameters(), strict=True):
        assert_fp32_close(p_p.grad, p_l.grad, model_reduction_length(cfg, idx.numel()), msg=name)


def test_auto_backend_by_device_and_shape() -> None:
    """CUDA: grouped when aligned. CPU: padded while rows per expert × d_model × d_ff ≤ 3e5, else loop."""
    cfg = ModelConfig(d_model=16, n_layers=1, n_heads=2, d_ff=24, kind="moe", n_experts=4, top_k=2)
    assert resolve_backend(cfg, torch.device("cuda", 0), 4096) == (
        "grouped" if grouped_available() else "loop"
    )
    assert resolve_backend(cfg.replace(d_ff=20), "cuda", 4096) == "loop"  # 20 breaks the 16-byte stride rule
    assert resolve_backend(cfg, "cuda", 64) != "padded"  # the CPU rule, measured on CPU only
    assert resolve_backend(cfg, "cpu", 1562) == "padded"  # 781 rows x 16 x 24 = 299,904
    assert resolve_backend(cfg, "cpu", 1564) == "loop"  # 782 rows: 300,288
    moe_50k, moe_330k = get_preset("moe-50k"), get_preset("moe-330k")
    assert resolve_backend(moe_50k, "cpu", 2 * 128) == "padded"  # the study's sweeps: 2 x 128-token rows
    assert resolve_backend(moe_50k, "cpu", 4 * 128) == "loop"
    assert resolve_backend(moe_330k, "cpu", 2 * 128) == "loop"
    assert resolve_backend(cfg.replace(moe_backend="grouped"), "cpu", 64) == "grouped"  # explicit wins
    assert resolve_backend(cfg.replace(moe_backend="loop"), "cpu", 64) == "loop"
    assert resolve_backend(cfg.replace(moe_backend="padded"), "cuda", 4096) == "padded"


@pytest.mark.parametrize(("batch", "backend"), [(2, "padded"), (4, "loop")])
def test_moe_layer_resolves_auto_from_its_micro_batch_tokens(
    monkeypatch: pytest.MonkeyPatch, batch: int, backend: str
) -> None:
    """The rule sees the tokens of the whole micro-batch (batch x seq), not the batch dimension."""
    used = []
    forward = Experts.forward

    def spy(self: Experts, x_sorted: torch.Tensor, counts: torch.Tensor, backend: str) -> torch.Tensor:
        used.append(backend)
        return forward(self, x_sorted, counts, backend)

    monkeypatch.setattr(Experts, "forward", spy)
    layer = MoEFeedForward(get_preset("moe-50k"))
    layer(torch.randn(batch, 128, layer.cfg.d_model))
    assert used == [backend]
