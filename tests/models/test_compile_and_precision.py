"""``--compile`` and bf16 on the CPU: the compiled model (graph capture and autograd, Dynamo's
``aot_eager`` backend: no C++ build) gives eager's outputs and gradients, dense and MoE each as one graph;
bf16 autocast stays within a stated tolerance of fp32."""

from __future__ import annotations

import pytest
import torch

from archscale.models import build_model, compile_model, get_preset
from fp32_helpers import assert_fp32_close, model_reduction_length


def _model_and_batch(name: str):
    cfg = get_preset(name)
    if cfg.is_moe:
        cfg = cfg.replace(moe_backend="loop")
    torch.manual_seed(0)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 64), generator=torch.Generator().manual_seed(1))
    return model, idx


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
@torch._dynamo.config.patch(capture_scalar_outputs=False)  # compile_model sets it; restored after
def test_the_compiled_model_equals_eager_in_outputs_and_gradients(name):
    """``fullgraph``: compile_model traces the MoE loop's data-dependent expert counts, no graph break."""
    model, idx = _model_and_batch(name)
    eager = model(idx, idx)
    eager.loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch._dynamo.reset()
    compiled = compile_model(model, backend="aot_eager", fullgraph=True)(idx, idx)
    compiled.loss.backward()
    torch.testing.assert_close(compiled.loss, eager.loss, rtol=1e-6, atol=1e-6)
    for n, p in model.named_parameters():
        assert_fp32_close(p.grad, expected[n], model_reduction_length(model.cfg, idx.numel()), msg=n)


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_bf16_autocast_loss_is_within_one_percent_of_fp32(name):
    """bf16 keeps 8 bits of mantissa: the loss of a freshly initialised model moves by well under 1 %."""
    model, idx = _model_and_batch(name)
    with torch.no_grad():
        fp32 = model(idx, idx).loss
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(idx, idx).loss
    assert bf16.dtype == torch.float32  # the loss itself is taken in fp32
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.01)
    assert bf16.item() != fp32.item()  # autocast did run in bf16


def _saved_bytes(model, idx) -> tuple[int, torch.Tensor, dict]:
    """Bytes the autograd graph keeps for the backward pass, the loss and the gradients."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(idx, idx).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    return sum(saved), loss.detach(), grads


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_activation_checkpointing_keeps_less_for_backward_with_the_same_gradients(name):
    model, idx = _model_and_batch(name)
    full_bytes, full_loss, full_grads = _saved_bytes(model, idx)
    model.checkpoint_activations = True
    kept_bytes, kept_loss, kept_grads = _saved_bytes(model, idx)
    torch.testing.assert_close(kept_loss, full_loss)
    for n, grad in full_grads.items():
        assert_fp32_close(kept_grads[n], grad, model_reduction_length(model.cfg, idx.numel()), msg=n)
    assert kept_bytes < 0.5 * full_bytes, (kept_bytes, full_bytes)
