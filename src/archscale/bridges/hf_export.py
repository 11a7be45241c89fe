"""Export an archscale model as a Hugging Face ``transformers`` checkpoint that loads offline.

archscale's decoder is Llama-shaped (pre-norm RMSNorm, rotate-half RoPE, SwiGLU, no biases), so the
export only renames and splits tensors; nothing is approximated. The HF class is chosen to compute the
same function exactly:

- dense → ``LlamaForCausalLM``;
- MoE with softmax scores, renormalised top-k weights and no shared expert (the paper's MoE, at any
  granularity) → ``MixtralForCausalLM``;
- other softmax MoE (top-k weights not renormalised, or shared experts) → ``Qwen2MoeForCausalLM`` with
  ``norm_topk_prob`` = ``renormalize``. Qwen2-MoE always has q/k/v biases and a shared expert behind a
  sigmoid gate: the biases and the gate's weights are exported as zeros, and the shared experts' down
  projection doubled (the gate is then exactly sigmoid(0) = 1/2); without shared experts a width-1 shared
  expert of zeros adds exactly 0. OLMoE also has the renormalisation switch, but its attention always
  applies RMSNorm to q and k (QK-norm), which archscale does not, so it cannot reproduce the logits;
- MoE with sigmoid scores (with or without loss-free balancing's bias, with or without shared experts)
  → ``Glm4MoeForCausalLM`` (DeepSeek-V3's router: choice by score + bias, weights from the scores; one
  group, scaling factor 1, full-width rotary, no QK-norm, every layer MoE). DeepSeek-V3's own class
  cannot be used: its attention is multi-head latent attention, not archscale's;
- softmax scores with loss-free balancing: no ``transformers`` class chooses experts by softmax score
  plus a bias, so these refuse to export (train with ``router_score="sigmoid"`` to export).

Weights are written in the per-expert layout published Mixtral, Qwen2-MoE and GLM-4.5 checkpoints use,
which ``transformers`` reads. The tokenizer is exported as a fast tokenizer giving archscale's
ids: the byte-level one (ids 0-255 = bytes) becomes a merge-free byte-level BPE; a trained BPE is copied.
Both get archscale's end-of-text id (``vocab_size - 1``) as ``<|endoftext|>``, and text is never split
on that string, so every text encodes to the same ids as in archscale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from archscale.data import get_tokenizer, load_corpus
from archscale.data.tokenizer import BPETokenizer, ByteTokenizer, Tokenizer, parse_spec, tokenizer_path
from archscale.errors import ArchscaleError
from archscale.models import ModelConfig, build_model
from archscale.models.parametrization import attention_scale, branch_multiplier, output_multiplier
from archscale.store import ResultsStore
from archscale.training.checkpoint import WEIGHTS_FILE, kept_path, kept_weights
from archscale.training.run_config import RunConfig

EOT_TOKEN = "<|endoftext|>"
HF_WEIGHTS_FILE = "model.safetensors"


class ExportError(ArchscaleError):
    """The run or model cannot be exported; the message names the run, file or field and the fix."""


def hf_architecture(cfg: ModelConfig) -> str:
    """The ``transformers`` class that computes exactly what ``cfg``'s model computes."""
    if not cfg.is_moe:
        return "LlamaForCausalLM"
    if cfg.router_score == "sigmoid":
        return "Glm4MoeForCausalLM"
    if cfg.balance == "loss_free":
        raise ExportError(
            "ModelConfig.balance: no transformers class chooses experts by softmax score plus a bias "
            "(loss-free balancing with router_score='softmax'); models with router_score='sigmoid' export "
            "as Glm4MoeForCausalLM"
        )
    return "MixtralForCausalLM" if cfg.renormalize and not cfg.n_shared_experts else "Qwen2MoeForCausalLM"


def hf_config(cfg: ModelConfig, dtype: torch.dtype = torch.float32):
    """The ``transformers`` config of ``cfg``'s HF twin (end-of-text as EOS and pad, no BOS)."""
    from transformers import Glm4MoeConfig, LlamaConfig, MixtralConfig, Qwen2MoeConfig

    eot = cfg.vocab_size - 1
    architecture = hf_architecture(cfg)
    common = dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads,
        head_dim=cfg.head_dim,
        hidden_act="silu",
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta, "partial_rotary_factor": 1.0},
        tie_word_embeddings=cfg.tie_embeddings,
        initializer_range=cfg.init_std,
        bos_token_id=None,
        eos_token_id=eot,
        pad_token_id=eot,
        dtype=str(dtype).removeprefix("torch."),
        architectures=[architecture],
    )
    if not cfg.is_moe:
        return LlamaConfig(intermediate_size=cfg.d_ff, attention_bias=False, mlp_bias=False, **common)
    width = cfg.expert_width
    router = dict(num_experts_per_tok=cfg.routed_top_k, router_aux_loss_coef=cfg.aux_loss_weight)
    if architecture == "MixtralForCausalLM":
        return MixtralConfig(
            intermediate_size=width,
            num_local_experts=cfg.n_routed_experts,
            sliding_window=None,
            **router,
            **common,
        )
    if architecture == "Glm4MoeForCausalLM":
        return Glm4MoeConfig(
            intermediate_size=width,  # the dense layers' width; every layer here is MoE
            moe_intermediate_size=width,
            n_routed_experts=cfg.n_routed_experts,
            n_shared_experts=cfg.n_shared_experts,
            routed_scaling_factor=1.0,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=0,
            norm_topk_prob=cfg.renormalize,
            use_qk_norm=False,
            attention_bias=False,
            num_mtp_layers=0,
            **router,
            **common,
        )
    return Qwen2MoeConfig(
        intermediate_size=width,
        moe_intermediate_size=width,
        num_experts=cfg.n_routed_experts,
        norm_topk_prob=cfg.renormalize,
        shared_expert_intermediate_size=cfg.n_shared_experts * width or 1,
        qkv_bias=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        use_sliding_window=False,
        **router,
        **common,
    )


def _attention(state: dict[str, torch.Tensor], i: int, d: int) -> dict[str, torch.Tensor]:
    q, k, v = state[f"blocks.{i}.attn.qkv.weight"].split(d)  # fused rows: q, then k, then v
    out = state[f"blocks.{i}.attn.out.weight"]
    return {"q_proj.weight": q, "k_proj.weight": k, "v_proj.weight": v, "o_proj.weight": out}


def _swiglu(gate_up: torch.Tensor, down: torch.Tensor, names: tuple[str, str, str]) -> dict:
    """A SwiGLU as (gate, up, down) ``nn.Linear`` weights from archscale's fused (gate; up) rows."""
    gate, up = gate_up.split(gate_up.shape[0] // 2)
    return {f"{name}.weight": w for name, w in zip(names, (gate, up, down), strict=True)}


def _experts(state: dict[str, torch.Tensor], i: int, cfg: ModelConfig, names: tuple[str, str, str]) -> dict:
    """Routed experts named per expert as the HF class names them (archscale multiplies x @ W;
    ``nn.Linear`` stores W transposed)."""
    gate_up, down = state[f"blocks.{i}.ffn.experts.w_gate_up"], state[f"blocks.{i}.ffn.experts.w_down"]
    out = {}
    for e in range(cfg.n_routed_experts):
        for name, w in _swiglu(gate_up[e].T, down[e].T, names).items():
            out[f"experts.{e}.{name}"] = w
    return out


def _moe(state: dict[str, torch.Tensor], i: int, cfg: ModelConfig, architecture: str) -> tuple[str, dict]:
    """The layer's MoE tensors under the HF class's names, and the module prefix they go under."""
    ffn = f"blocks.{i}.ffn"
    zeros = state["embed.weight"].new_zeros
    d, names = cfg.d_model, ("gate_proj", "up_proj", "down_proj")
    if architecture == "MixtralForCausalLM":
        return "block_sparse_moe", {
            "gate.weight": state[f"{ffn}.router.weight"],
            **_experts(state, i, cfg, ("w1", "w3", "w2")),
        }
    out = {"gate.weight": state[f"{ffn}.router.weight"], **_experts(state, i, cfg, names)}
    shared = (
        (state[f"{ffn}.shared.gate_up.weight"], state[f"{ffn}.shared.down.weight"])
        if cfg.n_shared_experts
        else None
    )
    if architecture == "Glm4MoeForCausalLM":
        out["gate.e_score_correction_bias"] = state.get(f"{ffn}.expert_bias", zeros(cfg.n_routed_experts))
        if shared is not None:
            out |= {f"shared_experts.{k}": w for k, w in _swiglu(*shared, names).items()}
        return "mlp", out
    if shared is None:  # Qwen2-MoE: a width-1 shared expert of zeros adds exactly 0
        shared = (zeros(2, d), zeros(d, 1))
    gate_up, down = shared
    out |= {f"shared_expert.{k}": w for k, w in _swiglu(gate_up, 2 * down, names).items()}
    out["shared_expert_gate.weight"] = zeros(1, d)  # sigmoid(0) = 1/2, undone by the doubled down projection
    return "mlp", out


def hf_state_dict(cfg: ModelConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """archscale tensors renamed (and split) into the HF class's checkpoint names, contiguous and unshared."""
    d = cfg.d_model
    architecture = hf_architecture(cfg)
    out = {"model.embed_tokens.weight": state["embed.weight"], "model.norm.weight": state["norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"]
    for i in range(cfg.n_layers):
        layer = f"model.layers.{i}"
        out[f"{layer}.input_layernorm.weight"] = state[f"blocks.{i}.attn_norm.weight"]
        out[f"{layer}.post_attention_layernorm.weight"] = state[f"blocks.{i}.ffn_norm.weight"]
        for name, w in _attention(state, i, d).items():
            out[f"{layer}.self_attn.{name}"] = w
        if not cfg.is_moe:
            gate_up, down = state[f"blocks.{i}.ffn.gate_up.weight"], state[f"blocks.{i}.ffn.down.weight"]
            prefix, mlp = "mlp", _swiglu(gate_up, down, ("gate_proj", "up_proj", "down_proj"))
        else:
            prefix, mlp = _moe(state, i, cfg, architecture)
        if architecture == "Qwen2MoeForCausalLM":
            for proj in ("q_proj", "k_proj", "v_proj"):
                out[f"{layer}.self_attn.{proj}.bias"] = state["embed.weight"].new_zeros(d)
        for name, w in mlp.items():
            out[f"{layer}.{prefix}.{name}"] = w
    return {k: v.detach().cpu().contiguous().clone() for k, v in _fold_multipliers(cfg, out).items()}


def _fold_multipliers(cfg: ModelConfig, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """μP's and CompleteP's forward multipliers folded into the weights the HF classes multiply by, so the
    export computes archscale's logits with the HF code unchanged: the head's 1/m into the final norm's gain
    (the head reads its output; this also holds for a head tied to the embedding), the attention scale into
    the query rows (RoPE is linear, so the scale passes through it), the residual branch's 1/m_L into each
    branch's last projection (attention out, the down projection of every dense, routed and shared expert)."""
    head, scale, branch = output_multiplier(cfg), attention_scale(cfg), branch_multiplier(cfg)
    folded = dict(out)
    for name, w in out.items():
        factor = 1.0
        if name == "model.norm.weight" and head is not None:
            factor *= head
        if name.endswith("self_attn.q_proj.weight") and scale is not None:
            factor *= scale * math.sqrt(cfg.head_dim)  # HF scales the logits by 1/√d_head
        if name.endswith(("o_proj.weight", "down_proj.weight", ".w2.weight")) and branch is not None:
            factor *= branch
        if factor != 1.0:
            folded[name] = w * factor
    return folded


def check_state(cfg: ModelConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with exactly the tensors and shapes of ``cfg``'s model (a tied head stored once or twice)."""
    expected = {k: v.shape for k, v in build_model(cfg, device="meta").state_dict().items()}
    if cfg.tie_embeddings:
        expected.pop("lm_head.weight")
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [
        f"{k}: {tuple(state[k].shape)} != {tuple(shape)}"
        for k, shape in expected.items()
        if k in state and state[k].shape != shape
    ]
    if missing or unexpected or wrong:
        raise ExportError(
            f"weights do not fit the model config (missing {missing[:4]}, unexpected {unexpected[:4]}, "
            f"wrong shapes {wrong[:4]}); export the weights with the config they were trained with"
        )
    return state


def _byte_vocabulary() -> dict[str, int]:
    """GPT-2's reversible byte → printable character map, as ByteLevel pre-tokenisers spell bytes.

    Printable Latin-1 bytes stand for themselves; the other 68 are shifted to code points 256, 257, ...
    in byte order. The token of byte ``b`` gets id ``b``, as in archscale's byte tokenizer.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    shifted = [b for b in range(256) if b not in printable]
    chars = {b: chr(b) for b in printable} | {b: chr(256 + n) for n, b in enumerate(shifted)}
    return {chars[b]: b for b in range(256)}


def _backend_tokenizer(tokenizer: Tokenizer):
    """A ``tokenizers.Tokenizer`` giving ``tokenizer``'s ids, with the end-of-text token at its id."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    if isinstance(tokenizer, ByteTokenizer):
        backend = HFTokenizer(models.BPE(vocab=_byte_vocabulary(), merges=[]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        backend.decoder = decoders.ByteLevel()
    elif isinstance(tokenizer, BPETokenizer):
        backend = HFTokenizer.from_file(str(tokenizer.path))
    else:
        raise ExportError(
            f"tokenizer {tokenizer.name!r}: no Hugging Face export for {type(tokenizer).__name__}"
        )
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]
    for i in range(len(vocab), tokenizer.eot_id):  # ids a BPE trained on little text left unused
        vocab[f"<|unused_{i}|>"] = i  # no merge forms these strings, so no text encodes to them
    spec["added_tokens"] = [
        {"id": tokenizer.eot_id, "content": EOT_TOKEN, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
    ]  # fmt: skip
    return HFTokenizer.from_str(json.dumps(spec))


def hf_tokenizer(tokenizer: Tokenizer, model_max_length: int):
    """A ``PreTrainedTokenizerFast`` that encodes every text to ``tokenizer``'s ids and decodes them back."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_backend_tokenizer(tokenizer),
        eos_token=EOT_TOKEN,
        pad_token=EOT_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        split_special_tokens=True,  # literal "<|endoftext|>" in text stays text, as in archscale
    )


def export_checkpoint(
    cfg: ModelConfig, state: dict[str, torch.Tensor], tokenizer: Tokenizer, out: str | Path
) -> Path:
    """Write ``cfg`` + ``state`` + ``tokenizer`` to ``out`` as an HF checkpoint; returns ``out``.

    ``AutoModelForCausalLM.from_pretrained(out)`` and ``AutoTokenizer.from_pretrained(out)`` then work
    without a network.
    """
    from transformers import GenerationConfig

    if tokenizer.vocab_size != cfg.vocab_size:
        raise ExportError(
            f"tokenizer {tokenizer.name!r} has {tokenizer.vocab_size} ids but the model's vocab_size is "
            f"{cfg.vocab_size}; export with the tokenizer the model was trained with"
        )
    state = check_state(cfg, state)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = state["embed.weight"].dtype
    hf_config(cfg, dtype).save_pretrained(out)
    eot = cfg.vocab_size - 1
    GenerationConfig(eos_token_id=eot, pad_token_id=eot).save_pretrained(out)
    save_file(hf_state_dict(cfg, state), str(out / HF_WEIGHTS_FILE), metadata={"format": "pt"})
    hf_tokenizer(tokenizer, cfg.max_seq_len).save_pretrained(out)
    return out


def run_tokenizer(run_config: dict[str, Any]) -> Tokenizer:
    """The tokenizer a stored run trained with; a BPE one must already exist in its corpus (never retrained)."""
    spec = run_config["tokenizer"]
    vocab = parse_spec(spec)
    if vocab is None:
        return ByteTokenizer()
    corpus = load_corpus(run_config["dataset"])
    path = tokenizer_path(corpus, vocab)
    if not path.is_file():
        raise ExportError(
            f"tokenizer {spec}: {path} is missing; export on the machine holding the corpus the run used"
        )
    return get_tokenizer(spec, corpus)


def run_weights(store: ResultsStore, run_id: str, run_root: str | Path) -> dict[int, Path]:
    """The weights run ``run_id`` has on disk by step: kept ones (``keep_checkpoints``) and the final ones."""
    final_step = RunConfig.from_dict(store.config(run_id)).steps
    return kept_weights(Path(run_root) / run_id, final_step)


def load_run(
    store: ResultsStore, run_id: str, run_root: str | Path, step: int | None = None
) -> tuple[ModelConfig, dict, Tokenizer]:
    """A stored run's model config, weights and tokenizer (the tokenizer decides the vocabulary): its final
    weights, or those kept at ``step``."""
    run_config = store.config(run_id)
    tokenizer = run_tokenizer(run_config)
    cfg = ModelConfig.from_dict(run_config["model"]).replace(vocab_size=tokenizer.vocab_size)
    run_dir = Path(run_root) / run_id
    weights = run_dir / WEIGHTS_FILE if step is None else kept_path(run_dir, step)
    if step is None and not weights.is_file():
        raise ExportError(
            f"run {run_id}: no final weights at {weights} (status {store.status(run_id)!r}); "
            "only finished runs can be exported: finish it with `archscale sweep run`"
        )
    if not weights.is_file():
        raise ExportError(
            f"run {run_id}: no weights kept at step {step} ({weights})",
            hint="list a run's weights with `archscale runs checkpoints RUN_ID`",
        )
    return cfg, load_file(str(weights)), tokenizer


def export_run(
    store: ResultsStore, run_id: str, run_root: str | Path, out: str | Path, step: int | None = None
) -> Path:
    """Export the run ``run_id`` (weights under ``run_root/run_id``: the final ones, or those kept at
    ``step``) to ``out``."""
    cfg, state, tokenizer = load_run(store, run_id, run_root, step)
    return export_checkpoint(cfg, state, tokenizer, out)
