"""The chunked cross-entropy: the same loss and gradients as the full logits, never more than one chunk of
logits at a time, and the plain computation below the chunk size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archscale.models import build_model, get_preset
from archscale.models import loss as loss_module
from archscale.models.loss import chunked_cross_entropy
from fp32_helpers import assert_fp32_close


def _full(hidden, weight, targets):
    return F.cross_entropy((hidden @ weight.T).float().flatten(0, 1), targets.flatten())


def test_chunks_give_the_full_loss_and_its_gradients():
    torch.manual_seed(0)
    hidden = torch.randn(3, 50, 16, requires_grad=True)
    weight = torch.randn(40, 16, requires_grad=True)
    targets = torch.randint(0, 40, (3, 50))
    expected = _full(hidden, weight, targets)
    grads = torch.autograd.grad(expected, (hidden, weight))
    for chunk in (7, 64, 150, 10_000):  # uneven chunks, one chunk, more than all tokens
        got = chunked_cross_entropy(hidden, weight, targets, chunk_tokens=chunk)
        assert_fp32_close(got, expected, 150 + 40 + 16)  # tokens, vocabulary, hidden width
        for mine, theirs in zip(torch.autograd.grad(got, (hidden, weight)), grads, strict=True):
            assert_fp32_close(mine, theirs, 150 + 40 + 16)
    summed = chunked_cross_entropy(hidden, weight, targets, reduction="sum", chunk_tokens=7)
    torch.testing.assert_close(summed, expected * 150, rtol=1e-6, atol=1e-5)


def test_no_more_than_a_chunk_of_logits_exists_at_once(monkeypatch):
    rows = []
    plain = F.cross_entropy

    def recording(logits, *args, **kwargs):
        rows.append(logits.shape[0])
        return plain(logits, *args, **kwargs)

    monkeypatch.setattr(loss_module.F, "cross_entropy", recording)
    hidden = torch.randn(4, 64, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    chunked_cross_entropy(hidden, weight, torch.randint(0, 30, (4, 64)), chunk_tokens=32).backward()
    assert rows and max(rows) == 32  # forward and the checkpointed recomputation in backward


def test_the_model_switches_to_chunks_above_the_threshold_with_the_same_loss(monkeypatch):
    cfg = get_preset("moe-100k").replace(moe_backend="loop")
    torch.manual_seed(1)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 96))
    full = model(idx, idx)
    assert full.logits is not None
    monkeypatch.setattr("archscale.models.transformer.LOSS_CHUNK_TOKENS", 64)
    chunked = model(idx, idx)
    assert chunked.logits is None
    # the same hidden states either way: only the head's d_model, the vocabulary and the tokens differ
    head = cfg.d_model + cfg.vocab_size + idx.numel()
    for value in ("lm_loss", "loss"):
        assert_fp32_close(getattr(chunked, value), getattr(full, value), head)


def test_evaluation_equals_the_loss_of_the_full_logits():
    from archscale.training.evaluation import evaluate

    cfg = get_preset("dense-100k")
    model = build_model(cfg)
    windows = {"a": torch.randint(0, 256, (5, 65)), "b": torch.randint(0, 256, (3, 65))}
    rows = evaluate(model, windows, [1] * 257, batch_size=2)
    with torch.no_grad():
        for row in rows[:-1]:
            data = windows[row["subset"]]
            nats = F.cross_entropy(
                model(data[:, :-1]).logits.flatten(0, 1), data[:, 1:].flatten(), reduction="sum"
            )
            assert row["loss"] == pytest.approx(nats.item() / data[:, 1:].numel(), rel=1e-6)
