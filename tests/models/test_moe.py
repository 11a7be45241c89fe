"""MoE block: equivalence with dense, backend agreement, routing semantics, auxiliary losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from archscale.models import ModelConfig, build_model
from archscale.models.moe import MoEFeedForward, grouped_available
from fp32_helpers import assert_fp32_close, model_reduction_length

SMALL = ModelConfig(d_model=32, n_layers=2, n_heads=4, d_ff=48, max_seq_len=16)


def test_single_expert_top1_moe_equals_dense() -> None:
    dense = build_model(SMALL)
    moe = build_model(SMALL.replace(kind="moe", n_experts=1, top_k=1, moe_backend="loop"))
    state = dense.state_dict()
    moe_state = moe.state_dict()
    for key, value in state.items():
        if ".ffn.gate_up." in key:
            moe_state[key.replace("gate_up.weight", "experts.w_gate_up")] = value.T.unsqueeze(0)
        elif ".ffn.down." in key:
            moe_state[key.replace("down.weight", "experts.w_down")] = value.T.unsqueeze(0)
        else:
            moe_state[key] = value
    moe.load_state_dict(moe_state)
    idx = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(moe(idx).logits, dense(idx).logits)


@pytest.mark.skipif(not grouped_available(), reason="torch._grouped_mm needs PyTorch >= 2.8")
def test_grouped_and_loop_backends_agree_on_outputs_and_gradients() -> None:
    cfg = SMALL.replace(kind="moe", n_experts=4, top_k=2, moe_backend="loop")
    loop = build_model(cfg)
    grouped = build_model(cfg.replace(moe_backend="grouped"))
    grouped.load_state_dict(loop.state_dict())
    idx = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(2))
    out_l, out_g = loop(idx, idx), grouped(idx, idx)
    torch.testing.assert_close(out_g.logits, out_l.logits, rtol=1e-5, atol=1e-5)
    out_l.loss.backward()
    out_g.loss.backward()
    for (name, p_l), p_g in zip(loop.named_parameters(), grouped.parameters(), strict=True):
        assert_fp32_close(p_g.grad, p_l.grad, model_reduction_length(cfg, idx.numel()), msg=name)


def _reference_moe(layer: MoEFeedForward, x: torch.Tensor, renormalize: bool) -> torch.Tensor:
    """Token by token, expert by expert: the definition of top-k routing."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        probs = (layer.router.weight @ x[t]).softmax(-1)
        weights, experts = probs.topk(layer.top_k)
        if renormalize:
            weights = weights / weights.sum()
        for w, e in zip(weights, experts.tolist(), strict=True):
            gate, up = (x[t] @ layer.experts.w_gate_up[e]).chunk(2)
            out[t] += w * ((F.silu(gate) * up) @ layer.experts.w_down[e])
    return out


@pytest.mark.parametrize("renormalize", [True, False])
def test_routing_matches_the_per_token_definition(renormalize: bool) -> None:
    cfg = SMALL.replace(kind="moe", n_experts=5, top_k=2, renormalize=renormalize, moe_backend="loop")
    torch.manual_seed(3)
    layer = MoEFeedForward(cfg)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(1, 11, cfg.d_model)
    out, stats = layer(x)
    with torch.no_grad():
        assert_fp32_close(out[0], _reference_moe(layer, x[0], renormalize), cfg.d_model + cfg.d_ff)
    assert stats.expert_fraction.sum().item() == pytest.approx(1.0)


def test_balance_and_z_loss_hand_computed() -> None:
    cfg = ModelConfig(
        d_model=8, n_layers=1, n_heads=2, d_ff=8, kind="moe", n_experts=2, top_k=1, moe_backend="loop"
    )
    layer = MoEFeedForward(cfg)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = math.log(3)  # one-hot token e0 -> probs (3/4, 1/4)
        layer.router.weight[1, 1] = math.log(3)  # one-hot token e1 -> probs (1/4, 3/4)
    x = torch.zeros(1, 3, 8)
    x[0, 0, 0] = x[0, 1, 0] = x[0, 2, 1] = 1.0
    _, stats = layer(x)
    # f = (2/3, 1/3); P = ((3/4+3/4+1/4)/3, (1/4+1/4+3/4)/3); loss = E·Σ f·P = 2·(3.5 + 1.25)/9
    assert stats.balance_loss.item() == pytest.approx(2 * (3.5 + 1.25) / 9)
    assert stats.z_loss.item() == pytest.approx(math.log(4) ** 2)
    torch.testing.assert_close(stats.expert_fraction, torch.tensor([2 / 3, 1 / 3]))


def test_balance_loss_rises_with_skew_and_its_gradient_rebalances_the_router() -> None:
    """The Switch loss E·Σ f·P is 1 at balance and E when one expert takes every token with certainty; by
    hand, every token on expert 0 with router logits (log 3, 0, 0, 0) gives P_0 = 1/2 and a loss of 2.
    Minimising it alone must move a skewed router towards balance (a sign error would not)."""
    cfg = ModelConfig(
        d_model=8, n_layers=1, n_heads=2, d_ff=8, kind="moe", n_experts=4, top_k=1, moe_backend="loop"
    )
    layer = MoEFeedForward(cfg)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = math.log(3)
    same = torch.zeros(1, 5, 8)
    same[..., 0] = 1.0  # five identical tokens, all routed to expert 0
    _, stats = layer(same)
    assert stats.balance_loss.item() == pytest.approx(4 * 0.5)
    assert stats.z_loss.item() == pytest.approx(math.log(6) ** 2)

    torch.manual_seed(0)
    tokens = torch.randn(1, 256, 8)
    tokens[..., 0] += 2.0  # a feature every token shares, which the router weighs towards expert 0
    with torch.no_grad():
        layer.router.weight.normal_(std=0.1)
        layer.router.weight[0, 0] += 1.0
    _, before = layer(tokens)
    optimiser = torch.optim.SGD(layer.router.parameters(), lr=0.5)
    for _ in range(100):
        optimiser.zero_grad()
        layer(tokens)[1].balance_loss.backward()
        optimiser.step()
    _, after = layer(tokens)
    assert before.expert_fraction[0].item() > 0.9 and before.balance_loss.item() > 2.0
    assert after.expert_fraction.max().item() < 0.4 and after.balance_loss.item() < 1.05


def test_model_reports_aux_loss_and_expert_fractions() -> None:
    cfg = SMALL.replace(kind="moe", n_experts=4, top_k=2, aux_loss_weight=0.5, z_loss_weight=0.25)
    out = build_model(cfg)(torch.zeros(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long))
    assert out.expert_fraction.shape == (cfg.n_layers, 4)
    torch.testing.assert_close(out.aux_loss, 0.5 * out.balance_loss + 0.25 * out.z_loss)
    torch.testing.assert_close(out.loss, out.lm_loss + out.aux_loss)
