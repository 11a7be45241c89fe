"""Model behaviour: causality, learning, configuration errors, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from archscale.cli.models import app
from archscale.models import ConfigError, ModelConfig, build_model, get_preset


def test_causal_mask_future_tokens_do_not_change_the_past() -> None:
    model = build_model(get_preset("dense-100k"))
    a = torch.randint(0, 256, (1, 32), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[0, 20:] = (b[0, 20:] + 1) % 256
    torch.testing.assert_close(model(a).logits[0, :20], model(b).logits[0, :20])


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_tiny_model_overfits_a_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(get_preset(name))
    batch = torch.randint(0, 256, (4, 33), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
    first = None
    for _ in range(150):
        out = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.lm_loss.item()
    assert first == pytest.approx(5.55, abs=0.15)  # ln 256: uniform over bytes at initialisation
    assert out.lm_loss.item() < first / 10


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"d_model": -8}, "d_model"),
        ({"n_heads": 3}, "n_heads"),
        ({"kind": "moe", "n_experts": 4, "top_k": 5}, "top_k"),
        ({"n_experts": 4}, "n_experts"),
        ({"moe_backend": "fast"}, "moe_backend"),
        ({"d_ff": 1.5}, "d_ff"),
    ],
)
def test_invalid_config_names_the_field(changes: dict, field: str) -> None:
    base = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128}
    with pytest.raises(ConfigError, match=f"ModelConfig.{field}"):
        ModelConfig.from_dict({**base, **changes})


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(ConfigError, match=r"unknown field.*'width'"):
        ModelConfig.from_dict({"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128, "width": 3})
    with pytest.raises(ConfigError, match=r"missing required field.*'d_ff'"):
        ModelConfig.from_dict({"d_model": 64, "n_layers": 2, "n_heads": 4})
    cfg = get_preset("moe-330k")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_sequence_longer_than_context_is_refused() -> None:
    model = build_model(get_preset("dense-100k"))
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 257, dtype=torch.long))


def test_cli_show_json_has_the_accounting_fields() -> None:
    result = CliRunner().invoke(app, ["show", "moe-200m", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in (
        "total_params",
        "nonembedding_params",
        "active_params",
        "flops_per_token",
        "n_layers",
        "d_model",
        "n_experts",
        "top_k",
    ):
        assert key in data
    assert (data["n_experts"], data["top_k"], data["d_model"]) == (8, 3, 640)
    assert data["active_params"] < data["nonembedding_params"] < data["total_params"]


def test_cli_unknown_preset_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["show", "dense-3t"])
    assert result.exit_code != 0
    assert "unknown model preset 'dense-3t'" in result.output
