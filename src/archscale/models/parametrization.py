"""How initialisation, AdamW hyperparameters and forward multipliers scale with width and depth: SP, μP, CompleteP.

Every rule is relative to a *base* model, the same architecture at ``d_model = base_width`` (and, for
CompleteP, ``n_layers = base_depth``): at the base shape μP and CompleteP are SP exactly (the same initial
weights, learning rates and logits), so a learning rate tuned on the base model under SP is the μP learning
rate of every width. m = d_model / base_width is the width multiplier and m_L = n_layers / base_depth the
depth multiplier. Every width-like dimension (d_ff, the expert width, the number of heads at a fixed head
size) is assumed to grow with d_model, so m is the fan-in ratio of every hidden matrix.

Per parameter group, multipliers of SP's value (init std σ, or σ/√(2L) for the residual output
projections; AdamW learning rate η, weight decay λ, ε):

========================  ==========  ===========  ==============  ===============================
group                     init std    Adam LR      weight decay    Adam ε
========================  ==========  ===========  ==============  ===============================
embedding                 1           1            1               1/m
attention, ffn (hidden)   1/√m        1/m          1 (CP: m)       1/m (CP: 1/(m·m_L))
experts, shared_experts   1/√m        1/m          1 (CP: m)       1/m (CP: 1/(m·m_L))
router                    1/m         1/m          1 (CP: m)       1/m (CP: 1/(m·m_L))
norm (block gains)        ones        1            0               1/m (CP: 1/(m·m_L))
final_norm                ones        1            0               1/m
output (LM head)          1           1            1               1/m
========================  ==========  ===========  ==============  ===============================

Forward: logits × 1/m (the head reads the normed hidden state × 1/m); attention logits × √d_base / d_head
instead of 1/√d_head; CompleteP: each residual branch × 1/m_L, and the residual projections' SP init
σ/√(2L) is taken at the base depth, σ/√(2·base_depth), so depth enters through the branch multiplier only.

Sources. Width rules: Yang et al. 2022, "Tensor Programs V" (arXiv 2203.03466), Table 3 (μP for Adam:
input weights init and LR constant; hidden init var 1/fan_in, LR 1/fan_in; output weights init var
1/fan_in², LR 1/fan_in) and its Table 8 equivalent with an output multiplier: the head here is Table 8's
form (forward × 1/m, init and LR unchanged), which for Adam is the same function and updates as Table 3's;
attention logits scaled 1/d_head are that paper's rule for attention, and the √d_base constant is the usual anchor that
keeps μP = SP at the base head size (microsoft/mup's README writes ``q @ k.T * 8 / d`` for d_head 64).
Depth and ε: Dey et al. 2025, "Don't be lazy: CompleteP" (arXiv 2505.01618), α = 1: branch × m_L^−α,
hidden LR × m_L^(α−1) = 1, hidden ε × m^−1·m_L^−α, embedding/unembedding ε × m^−1, hidden weight decay ×
m (λ·η stays width-independent) — read from the authors' reference implementation (EleutherAI/nanoGPT-mup,
branch ``completep``, ``configure_optimizers``: the ε split follows its fix citing the paper's Eq. 40); the
paper's Table 1 itself was not readable here. The μP ε (× 1/m everywhere) and the unscaled μP weight decay
are that implementation's μP branch. MoE: Małaśnicki et al. 2025 (arXiv 2508.09752) derive μP for MoE
with the experts as hidden layers and the router as a layer into a fixed (expert-count) dimension; only the
abstract was readable here, so the router rule — TP5's output-weight rule in Table 3's form (init 1/m, LR
1/m, no forward multiplier, so moe.py is untouched) — is this module's reading of "output-like", taken
from the project's notes (``../shared/notes/curve-task-and-mup-anchors.md``) and checked by the coordinate
check (:mod:`archscale.training.coord_check`), not by the paper's table. Shared experts are hidden layers
too. The tunable α_in, α_out of TP5 are fixed at 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archscale.models.config import ModelConfig

if TYPE_CHECKING:  # torch stays unloaded for config-only users of this module
    from torch import nn

GROUPS: tuple[str, ...] = (
    "embedding", "attention", "ffn", "router", "experts", "shared_experts", "norm", "final_norm", "output",
)  # fmt: skip
"""Parameter groups, in the order :func:`optimizer_groups` lists them."""

HIDDEN_GROUPS = ("attention", "ffn", "experts", "shared_experts")
DEFAULT_ADAM_EPS = 1e-8  # torch.optim.AdamW's default, what the trainer uses today


@dataclass(frozen=True)
class Multipliers:
    """One group's multipliers of SP's values: init std, AdamW learning rate, weight decay, ε."""

    init_std: float = 1.0
    lr: float = 1.0
    weight_decay: float = 1.0  # 0: the group is never decayed (gains), as SP's dim < 2 group
    eps: float = 1.0


def width_multiplier(cfg: ModelConfig) -> float:
    """m = d_model / base_width (1 under SP)."""
    return 1.0 if cfg.parametrization == "sp" else cfg.d_model / cfg.base_width


def depth_multiplier(cfg: ModelConfig) -> float:
    """m_L = n_layers / base_depth under CompleteP, else 1."""
    return cfg.n_layers / cfg.base_depth if cfg.parametrization == "completep" else 1.0


def param_group_multipliers(cfg: ModelConfig) -> dict[str, Multipliers]:
    """Each group's multipliers (module table), in :data:`GROUPS` order; all ones under SP (gains 0 decay)."""
    if cfg.parametrization == "sp":
        return {g: Multipliers(weight_decay=0.0 if "norm" in g else 1.0) for g in GROUPS}
    m, m_l = width_multiplier(cfg), depth_multiplier(cfg)
    complete = cfg.parametrization == "completep"
    hidden_wd = m if complete else 1.0  # CompleteP keeps λ·η width-independent
    hidden_eps = 1 / (m * m_l)  # m_l = 1 under μP
    hidden = Multipliers(init_std=1 / math.sqrt(m), lr=1 / m, weight_decay=hidden_wd, eps=hidden_eps)
    table = {
        "embedding": Multipliers(eps=1 / m),
        **dict.fromkeys(HIDDEN_GROUPS, hidden),
        "router": Multipliers(init_std=1 / m, lr=1 / m, weight_decay=hidden_wd, eps=hidden_eps),
        "norm": Multipliers(weight_decay=0.0, eps=hidden_eps),
        "final_norm": Multipliers(weight_decay=0.0, eps=1 / m),
        "output": Multipliers(eps=1 / m),
    }
    return {g: table[g] for g in GROUPS}


def param_group(name: str) -> str:
    """The group of a parameter of :class:`~archscale.models.transformer.Transformer`, by its name."""
    dotted = f".{name}"
    if dotted.endswith("norm.weight"):
        return "norm" if ".blocks." in dotted else "final_norm"
    for marker, group in (
        (".embed.", "embedding"), (".lm_head.", "output"), (".attn.", "attention"), (".router.", "router"),
        (".ffn.shared.", "shared_experts"), (".ffn.experts.", "experts"), (".ffn.", "ffn"),
    ):  # fmt: skip
        if marker in dotted:
            return group
    raise ValueError(f"parametrization: no parameter group for {name!r}")


# ---- forward multipliers: None where SP's code path runs unchanged ----------------------------------
def output_multiplier(cfg: ModelConfig) -> float | None:
    """The head reads the normed hidden state × 1/m (TP5 Table 8's output multiplier, α_out = 1)."""
    return None if cfg.parametrization == "sp" else cfg.base_width / cfg.d_model


def attention_scale(cfg: ModelConfig) -> float | None:
    """SDPA's ``scale``: 1/√d_head under SP (None: SDPA's default), √d_base / d_head under μP, with d_base =
    ``base_head_dim`` or the model's own head size (widths grown by adding heads: then this equals SP's)."""
    if cfg.parametrization == "sp":
        return None
    return math.sqrt(cfg.base_head_dim or cfg.head_dim) / cfg.head_dim


def branch_multiplier(cfg: ModelConfig) -> float | None:
    """CompleteP (α = 1): every residual branch × 1/m_L = base_depth / n_layers; None otherwise."""
    return cfg.base_depth / cfg.n_layers if cfg.parametrization == "completep" else None


def residual_init_depth(cfg: ModelConfig) -> int:
    """The L in the residual projections' init σ/√(2L): the base depth under CompleteP, else n_layers."""
    return cfg.base_depth if cfg.parametrization == "completep" else cfg.n_layers


# ---- AdamW parameter groups -----------------------------------------------------------------------
def optimizer_groups(
    model: nn.Module,
    cfg: ModelConfig,
    lr: float,
    weight_decay: float,
    eps: float = DEFAULT_ADAM_EPS,
) -> list[dict[str, Any]]:
    """AdamW parameter groups, each with its own ``lr``, ``weight_decay`` and an ``lr_multiplier`` for a
    schedule that sets the rate every step (``group["lr"] = lr_t * group["lr_multiplier"]``).

    SP: today's two groups exactly — parameters with dim ≥ 2 at ``weight_decay``, the rest at 0, in
    ``model.parameters()`` order, multiplier 1, no ``eps`` key (AdamW's default) — so SP training is
    bit-identical. μP / CompleteP: one group per non-empty entry of :data:`GROUPS`, in that order, with the
    multipliers of :func:`param_group_multipliers` and an explicit ``eps``.
    """
    named: Iterable[tuple[str, nn.Parameter]] = model.named_parameters()
    if cfg.parametrization == "sp":
        params = [p for _, p in named]
        return [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "lr": lr,
             "lr_multiplier": 1.0, "group": "decay"},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr": lr,
             "lr_multiplier": 1.0, "group": "no_decay"},
        ]  # fmt: skip
    by_group: dict[str, list[nn.Parameter]] = {g: [] for g in GROUPS}
    for name, p in named:
        by_group[param_group(name)].append(p)
    mults = param_group_multipliers(cfg)
    return [
        {
            "params": params,
            "lr": lr * mults[g].lr,
            "lr_multiplier": mults[g].lr,
            "weight_decay": weight_decay * mults[g].weight_decay,
            "eps": eps * mults[g].eps,
            "group": g,
        }
        for g, params in by_group.items()
        if params
    ]
