"""Loss-free balancing's bias update runs as an optimiser post-step hook the model's MoE module registers."""

from __future__ import annotations

import torch

from archscale.models import build_model, get_preset
from archscale.models.moe import MoEFeedForward, register_bias_update

LOSS_FREE = get_preset("moe-100k").replace(router_score="sigmoid", balance="loss_free", bias_update_rate=0.01)


def _biases(model) -> list[torch.Tensor]:
    return [m.expert_bias.clone() for m in model.modules() if isinstance(m, MoEFeedForward)]


def test_each_optimiser_step_moves_the_biases_toward_equal_load_and_a_step_without_a_load_does_not() -> None:
    """Expert 0 took half the tokens of every layer: its bias goes down by the rate, the others' up. A step
    with no measured load (loading an optimiser's state takes one on zero gradients) moves nothing."""
    model = build_model(LOSS_FREE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    n_layers, n_experts = LOSS_FREE.n_layers, LOSS_FREE.n_routed_experts
    load = torch.full((n_layers, n_experts), 0.5 / (n_experts - 1))
    load[:, 0] = 0.5
    current: list[torch.Tensor | None] = [None]
    assert register_bias_update(model, optimizer, lambda: current[0]) is not None
    optimizer.step()
    assert all(torch.equal(b, torch.zeros(n_experts)) for b in _biases(model))
    current[0] = load
    optimizer.step()
    expected = torch.full((n_experts,), 0.01)
    expected[0] = -0.01
    for bias in _biases(model):
        torch.testing.assert_close(bias, expected, rtol=0, atol=0)


def test_a_model_without_selection_biases_registers_nothing() -> None:
    model = build_model(get_preset("moe-100k"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    assert register_bias_update(model, optimizer, lambda: torch.ones(1)) is None
    assert not optimizer._optimizer_step_post_hooks
