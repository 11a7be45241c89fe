"""Mixture-of-Experts feed-forward block: a router (softmax or sigmoid scores, an optional selection bias
for loss-free balancing), token-choice top-k, routed experts as 3-D weights, optional shared experts.

Tokens are sorted by expert so every expert multiplies one contiguous slice; the slices run through a
pluggable backend: ``grouped`` (``torch._grouped_mm``, one kernel for all experts on CUDA), ``loop`` (a
plain per-expert loop over ``split(counts)``, the readable reference, the faster one on CPU, and one graph
under :func:`archscale.models.transformer.compile_model`) or ``padded`` (all experts in one batched matmul
over a zero-padded buffer, faster on CPU while the experts' matmuls are tiny).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from archscale.models.config import ModelConfig
from archscale.models.layers import SwiGLU


class RouterStats(NamedTuple):
    balance_loss: torch.Tensor  # Switch load-balancing loss, E·Σ f_e·P_e (1 when routing is uniform)
    z_loss: torch.Tensor  # mean squared log-partition of the router logits
    expert_fraction: torch.Tensor  # f_e: share of token-assignments sent to each expert (sums to 1)


def grouped_available() -> bool:
    return hasattr(torch, "_grouped_mm")


# On CPU 'auto' takes the padded backend while the expected rows per expert × d_model × d_ff (one
# expert's gate matmul, in multiply-adds) is at most this. Padded ÷ loop training-step time, 1 thread,
# routers at initialisation (largest expert count about 1.2-1.5x the mean), median of 3 runs: 0.92-0.98
# up to 295k, 0.97-1.01 at 393k, 0.99-1.09 from 590k up (benchmarks/RESULTS.md, "Padded MoE experts").
# Below it the loop's per-expert ops cost more than the padding's wasted rows; above it the padding does.
PADDED_MAX_EXPERT_MACS = 300_000


def resolve_backend(cfg: ModelConfig, device: torch.device | str, n_tokens: int) -> str:
    """The experts backend of a forward pass of ``n_tokens`` tokens on ``device``, from shapes alone.

    'auto' picks the grouped kernel on CUDA when torch has it and the widths meet its 16-byte stride rule.
    On CPU it picks the padded batched matmul for tiny experts (``PADDED_MAX_EXPERT_MACS``) and the loop
    otherwise: there ``torch._grouped_mm`` is itself a loop of matmuls with whole-batch element-wise ops
    between them, slower than the Python loop, whose per-expert element-wise ops stay in cache
    (benchmarks/RESULTS.md). Elsewhere, the loop.
    """
    if cfg.moe_backend != "auto":
        return cfg.moe_backend
    device_type = torch.device(device).type
    width = cfg.expert_width
    if device_type == "cuda" and grouped_available() and cfg.d_model % 8 == 0 and width % 8 == 0:
        return "grouped"
    rows_per_expert = n_tokens * cfg.routed_top_k / cfg.n_routed_experts
    if device_type == "cpu" and rows_per_expert * cfg.d_model * width <= PADDED_MAX_EXPERT_MACS:
        return "padded"
    return "loop"


class Experts(nn.Module):
    """E SwiGLU experts stored as (E, d_model, 2·d_ff) and (E, d_ff, d_model) weight tensors."""

    def __init__(self, n_experts: int, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_gate_up = nn.Parameter(torch.empty(n_experts, d_model, 2 * d_ff))
        self.w_down = nn.Parameter(torch.empty(n_experts, d_ff, d_model))

    def forward(self, x_sorted: torch.Tensor, counts: torch.Tensor, backend: str) -> torch.Tensor:
        if backend == "grouped":
            return self._grouped(x_sorted, counts)
        if backend == "padded":
            return self._padded(x_sorted, counts)
        return self._loop(x_sorted, counts)

    # All backends multiply by the gate and up halves of w_gate_up separately (weight views, no copy), as
    # SwiGLU does, rather than chunking one product: no concatenated gradient, contiguous element-wise ops.
    # The loop takes each expert's matrices from one ``unbind`` per weight, not by indexing ``w[e]``: the
    # backward of an index writes into a zeroed copy of the whole (E, ...) tensor, once per expert, which
    # made the fills cost more than the expert matmuls at small batches; unbind's backward is one stack.
    def _loop(self, x_sorted: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        w_gate, w_up = (w.unbind(0) for w in self.w_gate_up.chunk(2, dim=-1))
        w_down = self.w_down.unbind(0)
        outs = []
        for e, chunk in enumerate(x_sorted.split(counts.tolist())):
            outs.append((F.silu(chunk @ w_gate[e]) * (chunk @ w_up[e])) @ w_down[e])
        return torch.cat(outs)

    def _padded(self, x_sorted: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Three ``bmm`` over an (E, C, d_model) buffer that holds each expert's rows, C the largest count.

        A fixed handful of ops instead of the loop's handful per expert, for C·E - rows wasted rows of
        FLOPs. The padding rows are never gathered back, so they add nothing to outputs or gradients;
        zeros rather than ``empty`` keep stray NaNs out of the weight gradients' 0·x products.
        """
        n_experts, capacity = counts.numel(), int(counts.max())
        starts = counts.cumsum(0) - counts
        # sorted row starts[e] + i, the i-th row of expert e, goes to buffer row e·C + i
        slot = torch.arange(x_sorted.shape[0], device=counts.device) + torch.repeat_interleave(
            torch.arange(n_experts, device=counts.device) * capacity - starts, counts
        )
        buffer = x_sorted.new_zeros(n_experts * capacity, x_sorted.shape[1]).index_copy(0, slot, x_sorted)
        buffer = buffer.view(n_experts, capacity, -1)
        w_gate, w_up = self.w_gate_up.chunk(2, dim=-1)
        hidden = F.silu(torch.bmm(buffer, w_gate)) * torch.bmm(buffer, w_up)
        return torch.bmm(hidden, self.w_down).flatten(0, 1).index_select(0, slot)

    def _grouped(self, x_sorted: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        offsets = counts.cumsum(0).to(torch.int32)
        w_gate_up, w_down, x = self.w_gate_up, self.w_down, x_sorted
        if x.is_cuda and torch.is_autocast_enabled("cuda"):  # the CUDA kernel takes bf16 operands only
            dtype = torch.get_autocast_dtype("cuda")
            x, w_gate_up, w_down = x.to(dtype), w_gate_up.to(dtype), w_down.to(dtype)
        w_gate, w_up = w_gate_up.chunk(2, dim=-1)
        gate = torch._grouped_mm(x, w_gate, offs=offsets)
        up = torch._grouped_mm(x, w_up, offs=offsets)
        return torch._grouped_mm(F.silu(gate) * up, w_down, offs=offsets)


class MoEFeedForward(nn.Module):
    """``n_experts·granularity`` experts of width ``d_ff / granularity``: ``n_shared_experts`` of them every
    token uses (one SwiGLU of their summed width), and the router picks ``top_k·granularity −
    n_shared_experts`` of the others per token; see :mod:`archscale.models.config`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.moe_backend == "grouped" and not grouped_available():
            raise RuntimeError("moe_backend='grouped' needs torch._grouped_mm (PyTorch ≥ 2.8); use 'loop'")
        self.cfg = cfg
        self.n_experts, self.top_k, self.renormalize = cfg.n_routed_experts, cfg.routed_top_k, cfg.renormalize
        self.router = nn.Linear(cfg.d_model, self.n_experts, bias=False)
        self.experts = Experts(self.n_experts, cfg.d_model, cfg.expert_width)
        self.shared = (
            SwiGLU(cfg.d_model, cfg.n_shared_experts * cfg.expert_width) if cfg.n_shared_experts else None
        )
        if cfg.balance == "loss_free":  # saved with the weights: it decides which experts a token uses
            self.register_buffer("expert_bias", torch.zeros(self.n_experts))
        else:
            self.expert_bias = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Router logits and scores (fp32 even under autocast), and each token's chosen experts and weights.
        The selection bias, when there is one, changes which experts are chosen, never their weights."""
        logits = self.router(x).float()
        scores = logits.softmax(dim=-1) if self.cfg.router_score == "softmax" else logits.sigmoid()
        if self.expert_bias is None:
            weights, experts = scores.topk(self.top_k, dim=-1)
        else:
            experts = (scores + self.expert_bias).topk(self.top_k, dim=-1).indices
            weights = scores.gather(-1, experts)
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return logits, scores, experts, weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterStats]:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits, scores, experts, weights = self.route(x)

        flat = experts.flatten()
        order = flat.argsort(stable=True)  # (token, slot) assignments grouped by expert
        # bincount's output length depends on the data (minlength is a floor), which breaks a compiled graph
        counts = flat.new_zeros(self.n_experts).index_add_(0, flat, torch.ones_like(flat))
        token = order // self.top_k
        # index_select / index_add_ rather than fancy indexing: their backward passes are each other, a
        # plain gather and scatter-add, where x[token] would backpropagate through a slower index_put_.
        backend = resolve_backend(self.cfg, x.device, x.shape[0])
        y_sorted = self.experts(x.index_select(0, token), counts, backend)
        y_sorted = y_sorted * weights.flatten()[order].unsqueeze(-1).to(y_sorted.dtype)
        out = torch.zeros_like(x).index_add_(0, token, y_sorted.to(x.dtype))  # sums each token's top_k
        if self.shared is not None:
            out = out + self.shared(x)

        fraction = counts.float() / flat.numel()
        # the Switch loss reads each expert's mean share of the scores: softmax scores are shares already,
        # sigmoid scores are normalised per token (DeepSeek-V3's complementary balance loss does the same)
        shares = scores if self.cfg.router_score == "softmax" else scores / scores.sum(dim=-1, keepdim=True)
        stats = RouterStats(
            balance_loss=self.n_experts * (fraction * shares.mean(dim=0)).sum(),
            z_loss=torch.logsumexp(logits, dim=-1).square().mean(),
            expert_fraction=fraction.detach(),
        )
        return out.view(shape), stats

    @torch.no_grad()
    def update_bias(self, fraction: torch.Tensor) -> None:
        """Loss-free balancing (DeepSeek-V3): move each expert's selection bias by ``bias_update_rate``
        toward equal load, down for experts over their share of the step's tokens, up for those under."""
        self.expert_bias += self.cfg.bias_update_rate * torch.sign(fraction.mean() - fraction)


def register_bias_update(
    model: nn.Module, optimizer: torch.optim.Optimizer, step_load: Callable[[], torch.Tensor | None]
) -> RemovableHandle | None:
    """Loss-free balancing as an optimiser post-step hook, as torchtitan registers it, so a trainer only
    measures the load and knows nothing of how the model balances it: after every step, each MoE layer
    with a selection bias moves it by ``step_load()``, the step's token share per expert (one row per MoE
    layer, ``Transformer.update_expert_biases``). A step without a measured load (None) moves nothing:
    loading an optimiser's state takes a step on zero gradients. None where no layer has a bias."""
    if not any(isinstance(m, MoEFeedForward) and m.expert_bias is not None for m in model.modules()):
        return None

    def update(*_: object) -> None:
        load = step_load()
        if load is not None:
            model.update_expert_biases(load)

    return optimizer.register_step_post_hook(update)
