"""The MoE design knobs: granularity, shared experts, sigmoid scores, loss-free balancing (issue 15)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archscale.models import ConfigError, build_model, count_parameters, get_preset
from archscale.models.moe import MoEFeedForward
from fp32_helpers import assert_fp32_close

VARIANTS = [
    "moe-800k",
    "moe-800k-g2",
    "moe-800k-g4",
    "moe-800k-g2-shared",
    "moe-800k-sigmoid",
    "moe-800k-lossfree",
]


def initialised_layer(cfg, seed: int = 0) -> MoEFeedForward:
    torch.manual_seed(seed)
    layer = MoEFeedForward(cfg.replace(moe_backend="loop"))
    for p in layer.parameters():  # the Transformer initialises experts; a bare layer must be given weights
        torch.nn.init.normal_(p, 0.0, 0.1)
    return layer


def reference_moe(layer: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """One token at a time, from the definitions: scores, the top choices by score (+ bias), their
    re-normalised scores as weights, each chosen expert a SwiGLU, plus the shared experts."""
    cfg = layer.cfg
    width = cfg.expert_width
    gate_up, down = layer.experts.w_gate_up, layer.experts.w_down
    rows = []
    for token in x:
        logits = layer.router.weight @ token
        scores = logits.softmax(-1) if cfg.router_score == "softmax" else logits.sigmoid()
        choice = scores if layer.expert_bias is None else scores + layer.expert_bias
        chosen = torch.argsort(choice, descending=True)[: cfg.routed_top_k]
        weights = scores[chosen] / (scores[chosen].sum() if cfg.renormalize else 1.0)
        y = torch.zeros_like(token)
        if layer.shared is not None:
            y = y + layer.shared(token)
        for expert, weight in zip(chosen, weights, strict=True):
            gate, up = gate_up[expert, :, :width], gate_up[expert, :, width:]
            y = y + weight * ((F.silu(token @ gate) * (token @ up)) @ down[expert])
        rows.append(y)
    return torch.stack(rows)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_computes_its_definition(name: str) -> None:
    cfg = get_preset(name)
    layer = initialised_layer(cfg)
    if layer.expert_bias is not None:  # a bias that changes the choice (scores are in (0, 1))
        layer.expert_bias.copy_(torch.linspace(-0.3, 0.3, cfg.n_routed_experts))
    x = torch.randn(64, cfg.d_model, generator=torch.Generator().manual_seed(1))
    out, stats = layer(x)
    torch.testing.assert_close(out, reference_moe(layer, x), rtol=1e-5, atol=1e-5)
    assert stats.expert_fraction.numel() == cfg.n_routed_experts
    assert stats.expert_fraction.sum() == pytest.approx(1.0)


def test_the_design_fields_at_their_defaults_are_the_papers_moe() -> None:
    cfg = get_preset("moe-800k")
    layer = initialised_layer(cfg)
    assert (cfg.n_routed_experts, cfg.routed_top_k, cfg.expert_width) == (cfg.n_experts, cfg.top_k, cfg.d_ff)
    assert layer.shared is None and layer.expert_bias is None
    assert "granularity" not in cfg.identity_dict()  # stored runs keep their ids
    assert "granularity" in get_preset("moe-800k-g2").identity_dict()


def test_splitting_each_expert_into_g_slices_computes_the_same_function() -> None:
    """Krajewski et al.'s granularity at equal parameters: cut each expert's hidden units into G slices,
    give every slice its expert's router row, scale the slices' down projections by G. The G slices of
    an expert tie in score, so top-(k·G) picks all slices of the top-k experts, each re-normalised weight is
    the expert's / G, and the slices' outputs add up to the expert's."""
    coarse_cfg = get_preset("moe-800k")
    coarse = initialised_layer(coarse_cfg)
    for g in (2, 4):
        fine = initialised_layer(coarse_cfg.replace(granularity=g), seed=5)
        width, fine_width = coarse_cfg.d_ff, coarse_cfg.d_ff // g
        with torch.no_grad():
            fine.router.weight.copy_(coarse.router.weight.repeat_interleave(g, dim=0))
            for e in range(coarse_cfg.n_experts):
                gate, up = coarse.experts.w_gate_up[e, :, :width], coarse.experts.w_gate_up[e, :, width:]
                for s in range(g):
                    cols = slice(s * fine_width, (s + 1) * fine_width)
                    fine.experts.w_gate_up[e * g + s] = torch.cat([gate[:, cols], up[:, cols]], dim=1)
                    fine.experts.w_down[e * g + s] = g * coarse.experts.w_down[e, cols]
        x = torch.randn(128, coarse_cfg.d_model, generator=torch.Generator().manual_seed(2))
        assert_fp32_close(fine(x)[0], coarse(x)[0], coarse_cfg.d_model + coarse_cfg.d_ff)


def test_shared_experts_keep_total_and_active_feedforward_parameters() -> None:
    """DeepSeekMoE's isolation: one of the 16 half-width experts shared, top-3 of the 15 others routed."""
    g2, shared = (
        count_parameters(build_model(get_preset(n), "meta")) for n in ("moe-800k-g2", "moe-800k-g2-shared")
    )
    cfg = get_preset("moe-800k")
    expert_params = (
        3 * cfg.d_model * (cfg.d_ff // 2) * cfg.n_layers
    )  # one half-width SwiGLU expert, all layers
    assert shared.shared == expert_params
    assert shared.feedforward + shared.shared == g2.feedforward == 16 * expert_params
    assert shared.feedforward_active + shared.shared == g2.feedforward_active == 4 * expert_params
    assert g2.router - shared.router == cfg.d_model * cfg.n_layers  # one router row fewer per layer


@pytest.mark.parametrize("name", VARIANTS[1:])
def test_each_variant_overfits_a_fixed_batch(name: str) -> None:
    cfg = get_preset(name).replace(d_model=64, n_heads=2, n_layers=2, d_ff=96 * 2)
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = torch.randint(0, cfg.vocab_size, (4, 33), generator=torch.Generator().manual_seed(3))
    losses = []
    for _ in range(80):
        out = model(batch[:, :-1], batch[:, 1:])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.update_expert_biases(out.expert_fraction)  # a no-op for the variants without a bias
        losses.append(out.lm_loss.item())
    assert losses[-1] < 0.2 * losses[0], losses[::10]


def test_loss_free_balancing_evens_out_a_skewed_router() -> None:
    """A router whose first expert scores high for every token (inputs share a mean direction, the router's
    first row points along it) sends that expert most of the load; DeepSeek-V3's bias updates alone (no
    weights trained) bring every expert within 30 % of the equal share in 400 steps; without them the skew
    stays."""
    cfg = get_preset("moe-800k-lossfree").replace(bias_update_rate=0.01)
    layer = initialised_layer(cfg)
    generator = torch.Generator().manual_seed(4)
    direction = torch.ones(cfg.d_model) / cfg.d_model**0.5
    with torch.no_grad():
        layer.router.weight[0] += 2.0 * direction

    def batch() -> torch.Tensor:
        return torch.randn(256, cfg.d_model, generator=generator) + 2.0 * direction

    equal = 1 / cfg.n_routed_experts
    with torch.no_grad():
        start = layer(batch())[1].expert_fraction
        assert start.max() > 3 * equal  # skewed (the top-2 of 8 always include expert 0)
        for _ in range(400):
            layer.update_bias(layer(batch())[1].expert_fraction)
        loads = torch.stack([layer(batch())[1].expert_fraction for _ in range(10)]).mean(0)
    assert (loads - equal).abs().max() < 0.3 * equal, loads
    assert layer.expert_bias[0] < 0  # the over-loaded expert was pushed down
    # the bias moves in steps of the rate: every entry a multiple of it, at most 400 of them
    steps = layer.expert_bias / cfg.bias_update_rate
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-3)
    assert steps.abs().max() <= 400


def test_design_fields_are_validated_by_name() -> None:
    moe = get_preset("moe-800k")
    with pytest.raises(ConfigError, match="granularity: 3 does not divide d_ff=176"):
        moe.replace(granularity=3)
    with pytest.raises(ConfigError, match="n_shared_experts: 2 leaves no routed expert"):
        moe.replace(n_shared_experts=2)
    with pytest.raises(ConfigError, match="router_score: must be one of"):
        moe.replace(router_score="relu")
    with pytest.raises(ConfigError, match="need kind='moe'"):
        get_preset("dense-800k").replace(granularity=2)
