"""Scale accounting: parameters, active parameters, FLOPs per token and compute, counted one way everywhere.

Counts come from the built module (on the meta device, so a 7B preset costs nothing), classified by role.
Conventions, stated once:

- ``nonembedding_params``: attention, feed-forward (all experts) and router matrices. Norm gains and the
  token embedding / LM head are reported separately (the paper's Table 3 counts matrices only).
- ``active_params``: non-embedding parameters one token uses: attention + router + the shared experts +
  top_k of E routed experts (top_k·G of E·G fine-grained ones: the same share).
- ``flops_per_token`` (model scale N in the DeepSeek / Wang et al. sense): training FLOPs per token,
  forward + backward = 6·active_params + the attention-score term. Per layer, QKᵀ and AV cost
  2·2·d·ctx forward; ×3 with backward; causal attention visits ctx = seq_len/2 keys on average
  (DeepSeek's 6·n_layer·d_model·l_seq), ``attention="full"`` counts all seq_len (what
  ``FlopCounterMode`` reports, as SDPA computes the masked half), ``"none"`` drops it (plain 6·P).
  The LM head (6·d·V) is excluded unless ``include_head=True``.
- Compute C = N·D for D training tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

from archscale.models.config import ModelConfig
from archscale.models.transformer import Transformer, build_model

AttentionConvention = Literal["causal", "full", "none"]


@dataclass(frozen=True)
class ParameterCounts:
    embedding: int  # token embedding, plus the LM head when untied
    norm: int
    attention: int
    feedforward: int  # all routed experts for MoE
    router: int
    feedforward_active: int  # top_k / E of the routed experts
    shared: int = 0  # the shared experts every token uses (MoE)

    @property
    def nonembedding(self) -> int:
        return self.attention + self.feedforward + self.shared + self.router

    @property
    def active(self) -> int:
        return self.attention + self.feedforward_active + self.shared + self.router

    @property
    def total(self) -> int:
        return self.embedding + self.norm + self.nonembedding


def count_parameters(model: Transformer) -> ParameterCounts:
    """Classify every parameter of a built model by role (tied weights are counted once)."""
    cfg = model.cfg
    sums = dict.fromkeys(("embedding", "norm", "attention", "feedforward", "router", "shared"), 0)
    for name, p in model.named_parameters():  # named_parameters() de-duplicates tied weights
        if name.startswith(("embed.", "lm_head.")):
            role = "embedding"
        elif p.dim() == 1:
            role = "norm"
        elif ".attn." in name:
            role = "attention"
        elif ".router." in name:
            role = "router"
        elif ".ffn.shared." in name:
            role = "shared"
        elif ".ffn." in name:
            role = "feedforward"
        else:
            raise ValueError(f"count_parameters: no role for parameter {name!r}")
        sums[role] += p.numel()
    active = sums["feedforward"] * cfg.routed_top_k // cfg.n_routed_experts
    return ParameterCounts(feedforward_active=active, **sums)


@lru_cache(maxsize=256)
def config_counts(cfg: ModelConfig) -> ParameterCounts:
    return count_parameters(build_model(cfg, device="meta"))


def flops_per_token(
    cfg: ModelConfig,
    seq_len: int | None = None,
    *,
    attention: AttentionConvention = "causal",
    include_head: bool = False,
) -> float:
    """Training FLOPs per token (forward + backward); see the module docstring for the conventions."""
    seq_len = cfg.max_seq_len if seq_len is None else seq_len
    flops = 6.0 * config_counts(cfg).active
    context = {"causal": seq_len / 2, "full": seq_len, "none": 0}[attention]
    flops += 3 * 2 * 2 * cfg.n_layers * cfg.d_model * context
    if include_head:
        flops += 6.0 * cfg.d_model * cfg.vocab_size
    return flops


def compute(cfg: ModelConfig, tokens: float, seq_len: int | None = None) -> float:
    """Training compute C = N·D with N the model scale (causal attention, no head)."""
    return flops_per_token(cfg, seq_len) * tokens


@dataclass(frozen=True)
class ScaleReport:
    total_params: int
    nonembedding_params: int
    active_params: int
    embedding_params: int
    norm_params: int
    flops_per_token: float  # model scale N: causal attention at seq_len, LM head excluded
    flops_per_token_6p: float  # plain 6·active_params convention
    seq_len: int
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    n_experts: int
    top_k: int
    vocab_size: int
    granularity: int
    n_shared_experts: int
    shared_params: int

    def to_dict(self) -> dict:
        return asdict(self)


def scale_report(cfg: ModelConfig, seq_len: int | None = None) -> ScaleReport:
    counts = config_counts(cfg)
    seq_len = cfg.max_seq_len if seq_len is None else seq_len
    return ScaleReport(
        total_params=counts.total,
        nonembedding_params=counts.nonembedding,
        active_params=counts.active,
        embedding_params=counts.embedding,
        norm_params=counts.norm,
        flops_per_token=flops_per_token(cfg, seq_len),
        flops_per_token_6p=flops_per_token(cfg, seq_len, attention="none"),
        seq_len=seq_len,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_ff=cfg.d_ff,
        n_experts=cfg.n_experts,
        top_k=cfg.top_k,
        vocab_size=cfg.vocab_size,
        granularity=cfg.granularity,
        n_shared_experts=cfg.n_shared_experts,
        shared_params=counts.shared,
    )
