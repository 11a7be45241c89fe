"""Hugging Face export: the exported checkpoint computes archscale's logits and tokenizes to its ids."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

pytest.importorskip("transformers")
from transformers import AutoModelForCausalLM, AutoTokenizer

from archscale.bridges.hf_export import ExportError, export_checkpoint, hf_architecture
from archscale.cli.main import app
from archscale.data import get_tokenizer
from archscale.data.tokenizer import BPETokenizer, ByteTokenizer, train_bpe
from archscale.models.parametrization import attention_scale, branch_multiplier, output_multiplier

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces,\ttabs\nand newlines\r\n",
    "naïve café — 日本語 😀",
    "a literal <|endoftext|> stays text",
    "",
]
CASES = [  # (family, renormalize, tied embeddings, the HF class that must compute the same function)
    ("dense", True, False, "LlamaForCausalLM"),
    ("dense", True, True, "LlamaForCausalLM"),
    ("moe", True, False, "MixtralForCausalLM"),
    ("moe", True, True, "MixtralForCausalLM"),
    ("moe", False, False, "Qwen2MoeForCausalLM"),
    ("moe", False, True, "Qwen2MoeForCausalLM"),
]


def cli() -> typer.Typer:
    return app


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def random_ids(shape: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.randint(0, ByteTokenizer.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("kind", "renormalize", "tie", "architecture"), CASES)
def test_exported_logits_equal_archscale(
    tmp_path: Path, tiny_model, kind, renormalize, tie, architecture
) -> None:
    model = tiny_model(kind, renormalize=renormalize, tie_embeddings=tie)
    export_checkpoint(model.cfg, model.state_dict(), ByteTokenizer(), tmp_path)

    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == architecture == hf_architecture(model.cfg)
    ids = random_ids((3, 96), seed=1)
    expected, actual = logits_of(model, ids), logits_of(hf, ids)
    assert expected.abs().max() > 1.0  # large enough that a wrong mapping could not hide in the tolerance
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    if tie:
        assert hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()


DESIGNS = [  # MoE design knobs (issue 15) and the HF class that must compute the same function
    ({"granularity": 2}, "MixtralForCausalLM"),
    ({"granularity": 2, "n_shared_experts": 1}, "Qwen2MoeForCausalLM"),
    ({"granularity": 2, "n_shared_experts": 1, "renormalize": False}, "Qwen2MoeForCausalLM"),
    ({"router_score": "sigmoid"}, "Glm4MoeForCausalLM"),
    ({"router_score": "sigmoid", "balance": "loss_free"}, "Glm4MoeForCausalLM"),
    ({"router_score": "sigmoid", "balance": "loss_free", "granularity": 2, "n_shared_experts": 1,
      "renormalize": False}, "Glm4MoeForCausalLM"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("design", "architecture"), DESIGNS, ids=[a + str(i) for i, (_, a) in enumerate(DESIGNS)]
)
def test_exported_moe_designs_compute_archscale_logits(
    tmp_path: Path, tiny_model, design, architecture
) -> None:
    model = tiny_model("moe", **design)
    biases = [b for name, b in model.named_buffers() if name.endswith("expert_bias")]
    for i, bias in enumerate(biases):  # a trained-looking selection bias, large enough to change choices
        bias.copy_(0.3 * torch.randn(bias.shape, generator=torch.Generator().manual_seed(i)))
    export_checkpoint(model.cfg, model.state_dict(), ByteTokenizer(), tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == architecture == hf_architecture(model.cfg)
    ids = random_ids((3, 96), seed=2)
    torch.testing.assert_close(logits_of(hf, ids), logits_of(model, ids), rtol=1e-4, atol=1e-4)
    if biases:  # the bias matters: without it the HF model routes differently
        for module in hf.modules():
            if hasattr(module, "e_score_correction_bias"):
                module.e_score_correction_bias.zero_()
        assert not torch.allclose(logits_of(hf, ids), logits_of(model, ids), rtol=1e-4, atol=1e-4)


PARAMETRIZATIONS = [  # μP and CompleteP at 2x and 4x their base shape: multipliers folded into the weights
    ("dense", {"parametrization": "mup", "base_width": 32}),
    ("moe", {"parametrization": "mup", "base_width": 16, "base_head_dim": 8}),
    ("moe", {"parametrization": "completep", "base_width": 32, "base_depth": 1, "tie_embeddings": True}),
    ("moe", {"parametrization": "completep", "base_width": 32, "base_depth": 1, "n_shared_experts": 1,
             "granularity": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "changes"), PARAMETRIZATIONS)
def test_exported_logits_equal_archscale_under_mup_and_completep(
    tmp_path: Path, tiny_model, kind, changes
) -> None:
    model = tiny_model(kind, **changes)
    export_checkpoint(model.cfg, model.state_dict(), ByteTokenizer(), tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = random_ids((3, 96), seed=3)
    torch.testing.assert_close(logits_of(hf, ids), logits_of(model, ids), rtol=1e-4, atol=1e-4)
    cfg = model.cfg  # each case exercises the head's 1/m and, beyond it, the attention scale or branch 1/m_L
    assert output_multiplier(cfg) < 1 and (attention_scale(cfg) or 1) * (branch_multiplier(cfg) or 1) != 1


def test_softmax_with_loss_free_balancing_has_no_hf_class(tmp_path: Path, tiny_model) -> None:
    model = tiny_model("moe", balance="loss_free")
    with pytest.raises(ExportError, match=r"ModelConfig\.balance: no transformers class"):
        export_checkpoint(model.cfg, model.state_dict(), ByteTokenizer(), tmp_path)
    assert not any(tmp_path.iterdir())


def test_routing_variants_compute_different_functions(tiny_model) -> None:
    """Renormalised and plain top-k weights must differ, or the MoE cases above could not tell them apart."""
    plain = tiny_model("moe", renormalize=False)
    renorm = tiny_model("moe", renormalize=True, seed=5)
    renorm.load_state_dict(plain.state_dict())
    ids = random_ids((2, 64), seed=2)
    assert (logits_of(plain, ids) - logits_of(renorm, ids)).abs().max() > 1e-2


def test_greedy_generation_matches_archscale(tmp_path: Path, tiny_model) -> None:
    """HF's cached generation (KV cache, generation config) continues text as archscale's argmax does."""
    model = tiny_model("moe", seed=3)
    export_checkpoint(model.cfg, model.state_dict(), ByteTokenizer(), tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([ByteTokenizer().encode("Once upon a time")])
    expected = ids
    for _ in range(12):
        next_id = logits_of(model, expected)[:, -1].argmax(-1, keepdim=True)
        expected = torch.cat([expected, next_id], dim=1)
    generated = hf.generate(ids, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert generated.tolist() == expected.tolist()


def test_byte_tokenizer_round_trips_with_archscale_ids(tmp_path: Path, tiny_model) -> None:
    byte = ByteTokenizer()
    model = tiny_model("dense")
    export_checkpoint(model.cfg, model.state_dict(), byte, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tok) == 257 and tok.eos_token_id == tok.pad_token_id == 256
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == list(text.encode("utf-8")) == byte.encode(text)
        assert tok.decode(ids) == text
    assert tok.decode([104, 105, 256], skip_special_tokens=True) == "hi"


def test_bpe_tokenizer_round_trips_with_archscale_ids(tmp_path: Path, tiny_model, tiny_corpus) -> None:
    bpe = get_tokenizer("bpe-320", tiny_corpus)
    model = tiny_model("dense", vocab_size=bpe.vocab_size)
    export_checkpoint(model.cfg, model.state_dict(), bpe, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.eos_token_id == bpe.eot_id == 319
    texts = [*TEXTS, *list(tiny_corpus.documents("prose", "test"))[:40]]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert ids == bpe.encode(text)
        assert tok.decode(ids) == text
    assert max(i for t in texts for i in bpe.encode(t)) > 255  # merges were used, not only bytes


def test_bpe_with_fewer_tokens_than_its_vocabulary_keeps_end_of_text_last(tmp_path: Path, tiny_model) -> None:
    """A BPE trained on little text runs out of merges; end-of-text must still get id vocab_size - 1."""
    path = train_bpe(["a tiny corpus", "runs out of merges"] * 3, 400, tmp_path / "bpe-400.json")
    assert len(json.loads(path.read_text())["model"]["vocab"]) < 399
    bpe = BPETokenizer(path, 400)
    model = tiny_model("dense", vocab_size=400)
    export_checkpoint(model.cfg, model.state_dict(), bpe, tmp_path / "hf")
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tok.eos_token_id == 399 and tok.convert_ids_to_tokens(399) == "<|endoftext|>"
    for text in ["a tiny corpus runs out of merges", *TEXTS]:
        assert tok(text)["input_ids"] == bpe.encode(text)
        assert tok.decode(tok(text)["input_ids"]) == text


def test_export_refuses_mismatched_weights_and_tokenizer(tmp_path: Path, tiny_model) -> None:
    model = tiny_model("dense")
    cfg, state = model.cfg, model.state_dict()
    with pytest.raises(ExportError, match="vocab_size is 300"):
        export_checkpoint(cfg.replace(vocab_size=300), state, ByteTokenizer(), tmp_path)
    with pytest.raises(ExportError, match=r"wrong shapes \['blocks.0.ffn.gate_up.weight"):
        export_checkpoint(cfg.replace(d_ff=128), state, ByteTokenizer(), tmp_path)
    with pytest.raises(ExportError, match=r"missing \['blocks.0.ffn.experts"):
        export_checkpoint(cfg.replace(kind="moe", n_experts=8, top_k=2), state, ByteTokenizer(), tmp_path)


def test_cli_exports_a_stored_run(tmp_path: Path, stored_run) -> None:
    out = tmp_path / "hf"
    args = [
        "export",
        stored_run.run_id,
        "--format",
        "hf",
        "--out",
        str(out),
        "--store",
        str(stored_run.store),
    ]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert f"exported run {stored_run.run_id} as LlamaForCausalLM" in result.output

    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([tok("def export(run): return run")["input_ids"]])
    torch.testing.assert_close(logits_of(hf, ids), logits_of(stored_run.model, ids), rtol=1e-4, atol=1e-4)


def test_cli_names_the_extra_to_install(tmp_path: Path, stored_run, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if the hf extra were not installed
    args = ["export", stored_run.run_id, "--out", str(tmp_path / "hf"), "--store", str(stored_run.store)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 1 and "pip install 'archscale[hf]'" in result.output


def test_cli_export_errors_name_the_fix(tmp_path: Path, stored_run) -> None:
    store, run_id = str(stored_run.store), stored_run.run_id
    invoke = CliRunner().invoke
    unknown = invoke(cli(), ["export", "0123456789ab", "--out", str(tmp_path / "a"), "--store", store])
    assert unknown.exit_code == 2 and "no run '0123456789ab'" in unknown.output

    (stored_run.store.parent / "results-runs" / run_id / "model.safetensors").unlink()
    unfinished = invoke(cli(), ["export", run_id, "--out", str(tmp_path / "b"), "--store", store])
    assert unfinished.exit_code == 2 and "no final weights" in unfinished.output

    gguf = invoke(cli(), ["export", run_id, "--format", "gguf", "--out", "x", "--store", store])
    assert gguf.exit_code == 2 and "unknown format 'gguf'" in gguf.output

    nowhere = invoke(cli(), ["export", run_id, "--out", "x", "--store", str(tmp_path / "none.sqlite")])
    assert nowhere.exit_code == 2 and "no results store" in nowhere.output
