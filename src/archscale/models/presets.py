"""Named model presets: the paper's Tables 3 and 4, and a ladder of tiny models for CPU studies.

Paper presets (Wang et al. 2024, Appendix A): the tables give width, layers, heads ("Head Size" is the
number of heads: 512/4 = 1664/13 = 128-wide heads), FFN width, and for MoE 8 experts, top-3. The paper
states neither vocabulary nor context; we use a Llama-2 vocabulary (32,000) and the 8,192-token
sequences its Figure 4 mentions.

Tiny presets: byte-level vocabulary (256) and 256-token context, because at these widths a large
vocabulary's head would cost more than the whole model. Each MoE rung shares the dense rung's backbone
and has 8 experts, top-2, each expert half the dense FFN width, so active FLOPs equal the dense rung's
(equal-compute comparisons) while total FFN parameters are 4x. Names give non-embedding (dense) or active
non-embedding (MoE) parameters.

MoE design presets (the design-space study): the 800k MoE rung with one knob turned at a time, all with
its active and total feed-forward parameters: granularity 2 and 4 (16 experts of half width, top-4; 32 of
a quarter, top-8), a shared expert at granularity 2 (DeepSeekMoE: 1 shared + top-3 of 15), sigmoid router
scores, and DeepSeek-V3's routing (sigmoid scores, loss-free bias balancing, no auxiliary loss).
"""

from __future__ import annotations

from archscale.models.config import ModelConfig

PAPER_VOCAB = 32000
PAPER_SEQ_LEN = 8192


def _paper_dense(name: str, d: int, layers: int, heads: int, ff: int) -> ModelConfig:
    return ModelConfig(
        d_model=d, n_layers=layers, n_heads=heads, d_ff=ff, vocab_size=PAPER_VOCAB,
        max_seq_len=PAPER_SEQ_LEN, name=name,
    )  # fmt: skip


def _paper_moe(name: str, d: int, layers: int, heads: int, ff: int) -> ModelConfig:
    return ModelConfig(
        d_model=d, n_layers=layers, n_heads=heads, d_ff=ff, vocab_size=PAPER_VOCAB,
        max_seq_len=PAPER_SEQ_LEN, kind="moe", n_experts=8, top_k=3, name=name,
    )  # fmt: skip


def _tiny_pair(label: str, d: int, layers: int, heads: int, ff: int) -> list[ModelConfig]:
    dense = ModelConfig(d_model=d, n_layers=layers, n_heads=heads, d_ff=ff, name=f"dense-{label}")
    moe = dense.replace(kind="moe", n_experts=8, top_k=2, d_ff=ff // 2, name=f"moe-{label}")
    return [dense, moe]


_PAPER: list[ModelConfig] = [
    # Table 3 (dense)
    _paper_dense("dense-50m", 512, 14, 4, 1536),
    _paper_dense("dense-100m", 768, 16, 6, 2048),
    _paper_dense("dense-500m", 1280, 24, 10, 3584),
    _paper_dense("dense-1b", 1664, 28, 13, 4480),
    _paper_dense("dense-7b", 4096, 32, 32, 11008),
    # Table 4 (MoE, 8 experts, top-3)
    _paper_moe("moe-200m", 640, 12, 8, 1792),
    _paper_moe("moe-700m", 1280, 16, 16, 3456),
    _paper_moe("moe-1.5b", 1600, 24, 20, 4352),
    _paper_moe("moe-3b", 2304, 28, 32, 6272),
]
PAPER_PRESETS: tuple[str, ...] = tuple(p.name for p in _PAPER if p.name)
"""The paper's presets (Tables 3 and 4), by name."""

_PRESETS: list[ModelConfig] = [
    *_PAPER,
    # tiny ladder (CPU studies): about 0.025M to 10M non-embedding parameters
    *_tiny_pair("25k", 32, 2, 2, 96),
    *_tiny_pair("50k", 48, 2, 2, 128),
    *_tiny_pair("100k", 64, 2, 2, 192),
    *_tiny_pair("200k", 80, 3, 2, 176),
    *_tiny_pair("330k", 96, 3, 3, 256),
    *_tiny_pair("800k", 128, 4, 4, 352),
    *_tiny_pair("1.6m", 160, 5, 5, 448),
    *_tiny_pair("2.7m", 192, 6, 6, 512),
    *_tiny_pair("6.4m", 256, 8, 8, 704),
    *_tiny_pair("10m", 320, 8, 10, 864),
]


def _design_variants(base: ModelConfig) -> list[ModelConfig]:
    label = base.name
    return [
        base.replace(granularity=2, name=f"{label}-g2"),
        base.replace(granularity=4, name=f"{label}-g4"),
        base.replace(granularity=2, n_shared_experts=1, name=f"{label}-g2-shared"),
        base.replace(router_score="sigmoid", name=f"{label}-sigmoid"),
        base.replace(
            router_score="sigmoid", balance="loss_free", aux_loss_weight=0.0, name=f"{label}-lossfree"
        ),
    ]


_PRESETS += _design_variants(next(p for p in _PRESETS if p.name == "moe-800k"))
PRESETS: dict[str, ModelConfig] = {p.name: p for p in _PRESETS if p.name}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def list_presets() -> list[str]:
    return list(PRESETS)
