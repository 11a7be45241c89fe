"""The Llama-style decoder used by both families: pre-norm blocks, RoPE, SDPA, SwiGLU or MoE FFN."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from archscale.models.config import ModelConfig
from archscale.models.layers import CausalSelfAttention, RMSNorm, SwiGLU, rotary_tables
from archscale.models.loss import LOSS_CHUNK_TOKENS, chunked_cross_entropy
from archscale.models.moe import MoEFeedForward, RouterStats
from archscale.models.parametrization import (
    branch_multiplier,
    output_multiplier,
    param_group,
    param_group_multipliers,
    residual_init_depth,
)


@dataclass
class ModelOutput:
    logits: torch.Tensor | None  # None when a loss was asked for over more than LOSS_CHUNK_TOKENS tokens
    lm_loss: torch.Tensor | None = None  # mean next-token cross-entropy (nats/token)
    aux_loss: torch.Tensor | None = None  # weighted balance + z losses, averaged over MoE layers
    balance_loss: torch.Tensor | None = None  # unweighted, averaged over MoE layers (for logging)
    z_loss: torch.Tensor | None = None
    expert_fraction: torch.Tensor | None = None  # (n_layers, n_experts) token-assignment shares

    @property
    def loss(self) -> torch.Tensor:
        """The training objective: LM loss plus the MoE auxiliary losses."""
        assert self.lm_loss is not None, "call the model with targets to get a loss"
        return self.lm_loss if self.aux_loss is None else self.lm_loss + self.aux_loss


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = MoEFeedForward(cfg) if cfg.is_moe else SwiGLU(cfg.d_model, cfg.d_ff)
        self.branch_multiplier = branch_multiplier(cfg)  # CompleteP's 1/m_L; None otherwise

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, RouterStats | None]:
        if self.branch_multiplier is not None:
            return self._scaled_forward(x, cos, sin)
        x = x + self.attn(self.attn_norm(x), cos, sin)
        h = self.ffn(self.ffn_norm(x))
        stats = None
        if isinstance(h, tuple):
            h, stats = h
        return x + h, stats

    def _scaled_forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, RouterStats | None]:
        """CompleteP: each residual branch × ``branch_multiplier`` before it is added."""
        x = x + self.branch_multiplier * self.attn(self.attn_norm(x), cos, sin)
        h = self.ffn(self.ffn_norm(x))
        stats = None
        if isinstance(h, tuple):
            h, stats = h
        return x + self.branch_multiplier * h, stats


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        cos, sin = rotary_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.checkpoint_activations = False  # recompute each block in the backward pass (memory for time)
        self.output_multiplier = output_multiplier(cfg)  # μP's 1/m on what the head reads; None under SP
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: N(0, std) everywhere, residual output projections scaled by 1/sqrt(2·layers).

        Under μP / CompleteP each std is further multiplied by its group's init multiplier
        (:mod:`archscale.models.parametrization`), and CompleteP takes the layers at the base depth."""
        if self.cfg.parametrization != "sp":
            self._reset_parametrized()
            return
        std = self.cfg.init_std
        residual_std = std / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)  # norm gains
            elif name.endswith(("out.weight", "down.weight", "w_down")):
                nn.init.normal_(p, 0.0, residual_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def _reset_parametrized(self) -> None:
        """SP's init (same tensors, same order of random draws) with μP's per-group std multipliers."""
        mults = param_group_multipliers(self.cfg)
        std = self.cfg.init_std
        residual_std = std / math.sqrt(2 * residual_init_depth(self.cfg))
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
                continue
            base = residual_std if name.endswith(("out.weight", "down.weight", "w_down")) else std
            nn.init.normal_(p, 0.0, base * mults[param_group(name)].init_std)

    def reset_rotary(self) -> None:
        """Refill the rotary tables (not saved with the weights): after ``to_empty`` from the meta device."""
        cos, sin = rotary_tables(self.cfg.head_dim, self.cfg.max_seq_len, self.cfg.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def features(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[RouterStats]]:
        """The normed final hidden states (what the output head reads: × 1/m under μP) and each MoE layer's
        router stats."""
        t = idx.shape[1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {t} exceeds ModelConfig.max_seq_len={self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(idx)
        stats: list[RouterStats] = []
        recompute = self.checkpoint_activations and torch.is_grad_enabled()
        for block in self.blocks:
            x, s = checkpoint(block, x, cos, sin, use_reentrant=False) if recompute else block(x, cos, sin)
            if s is not None:
                stats.append(s)
        if self.output_multiplier is not None:
            return self.norm(x) * self.output_multiplier, stats
        return self.norm(x), stats

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        """Logits, or with ``targets`` the loss: beyond ``LOSS_CHUNK_TOKENS`` tokens computed a chunk at a
        time without the full logits (``logits`` is then None)."""
        hidden, stats = self.features(idx)
        if targets is None or targets.numel() <= LOSS_CHUNK_TOKENS:
            out = ModelOutput(logits=self.lm_head(hidden))
            if targets is not None:
                out.lm_loss = F.cross_entropy(out.logits.float().flatten(0, 1), targets.flatten())
        else:
            out = ModelOutput(logits=None)
            out.lm_loss = chunked_cross_entropy(hidden, self.lm_head.weight, targets)
        if stats:
            out.balance_loss = torch.stack([s.balance_loss for s in stats]).mean()
            out.z_loss = torch.stack([s.z_loss for s in stats]).mean()
            out.aux_loss = self.cfg.aux_loss_weight * out.balance_loss + self.cfg.z_loss_weight * out.z_loss
            out.expert_fraction = torch.stack([s.expert_fraction for s in stats])
        return out

    @torch.no_grad()
    def update_expert_biases(self, fractions: torch.Tensor) -> None:
        """After an optimiser step, loss-free balancing's bias update in every MoE layer that uses it, from
        the step's token shares per expert (``ModelOutput.expert_fraction``: one row per MoE layer)."""
        layers = [b.ffn for b in self.blocks if isinstance(b.ffn, MoEFeedForward)]
        for layer, fraction in zip(layers, fractions, strict=True):
            if layer.expert_bias is not None:
                layer.update_bias(fraction.to(layer.expert_bias.device))


def compile_model(model: nn.Module, **options: object) -> nn.Module:
    """``torch.compile(model, **options)``, with data-dependent integers traced (Dynamo's
    ``capture_scalar_outputs``, a process-wide setting): the MoE loop's split sizes ``counts.tolist()``
    become symbolic instead of breaking the graph, so a dense or MoE (loop experts) model is one graph.

    On CPU (1 thread, tiny presets) compiled steps are 9-19 % faster for dense and MoE alike, after 30-40 s
    of compilation with an empty cache (benchmarks/RESULTS.md, "torch.compile on CPU"): it pays off on runs
    of thousands of steps, not on a study's seconds-long ones."""
    torch._dynamo.config.capture_scalar_outputs = True
    return torch.compile(model, **options)


def build_model(cfg: ModelConfig, device: str | torch.device | None = None) -> Transformer:
    """Build a model; ``device="meta"`` allocates nothing (used to count the parameters of big presets)."""
    with torch.device(device or "cpu"):
        return Transformer(cfg)
