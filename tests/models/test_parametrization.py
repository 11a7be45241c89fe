"""Parametrisations (SP, μP, CompleteP): SP bit for bit as before, the per-group multiplier table, the
optimiser groups, the forward multipliers, and configuration errors."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from archscale.models import ConfigError, ModelConfig, build_model, get_preset
from archscale.models.parametrization import (
    GROUPS,
    Multipliers,
    attention_scale,
    branch_multiplier,
    optimizer_groups,
    output_multiplier,
    param_group,
    param_group_multipliers,
)
from archscale.training.run_config import RunConfig

# Computed from the code before parametrisations existed (same seed, same batch): SHA-256 over every
# parameter's name and float32 bytes in named_parameters() order, and the first forward's losses.
SP_GOLDEN = {
    "dense-100k": ("e4ad7fdf4b074a0ce3141c99ac3d5c303cd5fa9af8e38c3be0af42b6f2bfb7ae", 5.556702613830566, 5.556702613830566),
    "moe-100k": ("bdd85b8f1b2d8074c530cf56feeca74ccd62be8102ac0918ed614de58e364be5", 5.563591480255127, 5.578137397766113),
    "moe-800k-g2-shared": ("bdc3edb53df1ffe2501aef6ab7056062222118c8f915bb75aae43ad9f3b0277b", 5.617880344390869, 5.635727882385254),
}  # fmt: skip
RUN_ID_GOLDEN = {"dense-100k": "71577f11dcd5", "moe-100k": "538945ce145d", "moe-800k-g2-shared": "83d5e1d832cd",
                 "dense-50m": "7f243799caf5"}  # fmt: skip


def _weights_sha(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def _batch() -> torch.Tensor:
    return torch.randint(0, 256, (2, 33), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(SP_GOLDEN))
def test_sp_initial_weights_and_first_loss_are_bit_identical_to_before(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(get_preset(name))
    batch = _batch()
    out = model(batch[:, :-1], batch[:, 1:])
    assert (_weights_sha(model), out.lm_loss.item(), out.loss.item()) == SP_GOLDEN[name]


@pytest.mark.parametrize("name", list(RUN_ID_GOLDEN))
def test_sp_run_ids_are_unchanged(name: str) -> None:
    run = RunConfig.from_dict({"model": name, "tokens": 1_000_000, "batch_size": 8, "lr": 1e-3})
    assert run.run_id == RUN_ID_GOLDEN[name]
    assert "parametrization" not in run.model.identity_dict()


def test_a_parametrised_model_has_its_own_run_id() -> None:
    cfg = get_preset("dense-100k").replace(parametrization="mup", base_width=64)
    run = RunConfig.from_dict({"model": cfg.to_dict(), "tokens": 1_000_000, "batch_size": 8, "lr": 1e-3})
    assert run.model.identity_dict()["parametrization"] == "mup"
    assert run.run_id != RUN_ID_GOLDEN["dense-100k"]


def _today_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The trainer's groups before parametrisations existed."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_sp_optimizer_groups_are_todays_two_groups(name: str) -> None:
    cfg = get_preset(name)
    model = build_model(cfg)
    groups = optimizer_groups(model, cfg, lr=3e-3, weight_decay=0.1)
    today = _today_groups(model, 0.1)
    assert len(groups) == 2
    for got, want in zip(groups, today, strict=True):
        assert [id(p) for p in got["params"]] == [id(p) for p in want["params"]]
        assert got["weight_decay"] == want["weight_decay"]
        assert got["lr"] == 3e-3 and got["lr_multiplier"] == 1.0 and "eps" not in got


def _train(cfg: ModelConfig, groups_of, steps: int = 3) -> float:
    torch.manual_seed(0)
    model = build_model(cfg)
    batch = _batch()
    opt = torch.optim.AdamW(groups_of(model), lr=1e-2, betas=(0.9, 0.95), fused=True)
    for _ in range(steps):
        for group in opt.param_groups:  # how the trainer sets a scheduled rate
            group["lr"] = 1e-2 * group.get("lr_multiplier", 1.0)
        loss = model(batch[:, :-1], batch[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model(batch[:, :-1], batch[:, 1:]).loss.item()


@pytest.mark.parametrize("name", ["dense-100k", "moe-100k"])
def test_sp_training_with_optimizer_groups_is_bit_identical_to_todays_groups(name: str) -> None:
    cfg = get_preset(name)
    today = _train(cfg, lambda m: _today_groups(m, 0.1))
    assert _train(cfg, lambda m: optimizer_groups(m, cfg, 1e-2, 0.1)) == today


@pytest.mark.parametrize("name", ["dense-100k", "moe-800k-g2-shared"])
def test_mup_and_completep_at_the_base_shape_are_sp(name: str) -> None:
    """The anchor: at base width (and depth) the weights, and the losses after three AdamW steps, are SP's."""
    sp = get_preset(name)
    sp_loss = _train(sp, lambda m: optimizer_groups(m, sp, 1e-2, 0.1))
    for cfg in (
        sp.replace(parametrization="mup", base_width=sp.d_model),
        sp.replace(parametrization="completep", base_width=sp.d_model, base_depth=sp.n_layers),
    ):
        torch.manual_seed(0)
        assert _weights_sha(build_model(cfg)) == _weights_sha(_seeded(sp))
        assert _train(cfg, lambda m, c=cfg: optimizer_groups(m, c, 1e-2, 0.1)) == pytest.approx(
            sp_loss, rel=1e-6
        )


def _seeded(cfg: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(cfg)


# ---- the multiplier table, written out by hand for base width 64 at widths 64 and 256 -----------------
def _dense(width: int, **kw) -> ModelConfig:
    return ModelConfig(d_model=width, n_layers=4, n_heads=width // 32, d_ff=3 * width, **kw)


ONE = Multipliers()
GAIN = Multipliers(weight_decay=0.0)
TABLE = {  # (parametrization, width) -> group -> (init std, lr, weight decay, eps) multipliers
    ("mup", 64): {g: (1, 1, 0 if "norm" in g else 1, 1) for g in GROUPS},
    ("mup", 256): {
        "embedding": (1, 1, 1, 1 / 4), "attention": (1 / 2, 1 / 4, 1, 1 / 4), "ffn": (1 / 2, 1 / 4, 1, 1 / 4),
        "router": (1 / 4, 1 / 4, 1, 1 / 4), "experts": (1 / 2, 1 / 4, 1, 1 / 4),
        "shared_experts": (1 / 2, 1 / 4, 1, 1 / 4), "norm": (1, 1, 0, 1 / 4), "final_norm": (1, 1, 0, 1 / 4),
        "output": (1, 1, 1, 1 / 4),
    },
    # CompleteP at depth 4 on base depth 2 (m_L = 2): hidden ε also × 1/m_L, hidden weight decay × m
    ("completep", 64): {
        "embedding": (1, 1, 1, 1), "attention": (1, 1, 1, 1 / 2), "ffn": (1, 1, 1, 1 / 2),
        "router": (1, 1, 1, 1 / 2), "experts": (1, 1, 1, 1 / 2), "shared_experts": (1, 1, 1, 1 / 2),
        "norm": (1, 1, 0, 1 / 2), "final_norm": (1, 1, 0, 1), "output": (1, 1, 1, 1),
    },
    ("completep", 256): {
        "embedding": (1, 1, 1, 1 / 4), "attention": (1 / 2, 1 / 4, 4, 1 / 8), "ffn": (1 / 2, 1 / 4, 4, 1 / 8),
        "router": (1 / 4, 1 / 4, 4, 1 / 8), "experts": (1 / 2, 1 / 4, 4, 1 / 8),
        "shared_experts": (1 / 2, 1 / 4, 4, 1 / 8), "norm": (1, 1, 0, 1 / 8), "final_norm": (1, 1, 0, 1 / 4),
        "output": (1, 1, 1, 1 / 4),
    },
}  # fmt: skip


@pytest.mark.parametrize("key", list(TABLE))
def test_multipliers_per_group_equal_the_hand_written_table(key: tuple[str, int]) -> None:
    parametrization, width = key
    extra = {"base_depth": 2} if parametrization == "completep" else {}
    cfg = _dense(width, parametrization=parametrization, base_width=64, **extra)
    got = param_group_multipliers(cfg)
    assert list(got) == list(GROUPS)
    for group, (init, lr, wd, eps) in TABLE[key].items():
        assert got[group] == Multipliers(init_std=init, lr=lr, weight_decay=wd, eps=eps), group


def test_sp_multipliers_are_all_one() -> None:
    got = param_group_multipliers(get_preset("dense-100k"))
    assert got == {g: GAIN if "norm" in g else ONE for g in GROUPS}


def test_forward_multipliers() -> None:
    sp = _dense(256)
    assert (output_multiplier(sp), attention_scale(sp), branch_multiplier(sp)) == (None, None, None)
    mup = _dense(256, parametrization="mup", base_width=64)
    assert output_multiplier(mup) == 0.25 and branch_multiplier(mup) is None
    assert attention_scale(mup) == pytest.approx(1 / math.sqrt(32))  # same head size as the base: SP's
    wide_heads = mup.replace(n_heads=2, base_head_dim=32)  # head size 128 on a base of 32: × √32 / 128
    assert attention_scale(wide_heads) == pytest.approx(math.sqrt(32) / 128)
    cp = _dense(256, parametrization="completep", base_width=64, base_depth=2)
    assert branch_multiplier(cp) == 0.5 and output_multiplier(cp) == 0.25


def test_every_parameter_has_a_group() -> None:
    names = {
        name: param_group(name)
        for preset in ("dense-100k", "moe-800k-g2-shared")
        for name, _ in build_model(get_preset(preset), "meta").named_parameters()
    }
    assert names["embed.weight"] == "embedding" and names["lm_head.weight"] == "output"
    assert names["norm.weight"] == "final_norm" and names["blocks.0.attn_norm.weight"] == "norm"
    assert names["blocks.1.attn.qkv.weight"] == names["blocks.1.attn.out.weight"] == "attention"
    assert names["blocks.0.ffn.gate_up.weight"] == names["blocks.0.ffn.down.weight"] == "ffn"
    assert names["blocks.0.ffn.router.weight"] == "router"
    assert names["blocks.0.ffn.experts.w_gate_up"] == names["blocks.0.ffn.experts.w_down"] == "experts"
    assert names["blocks.0.ffn.shared.down.weight"] == "shared_experts"
    with pytest.raises(ValueError, match="no parameter group"):
        param_group("blocks.0.mystery.weight")


def test_mup_init_and_optimizer_groups_follow_the_table() -> None:
    base = get_preset("moe-800k-g2-shared")  # d_model 128
    cfg = base.replace(d_model=512, n_heads=16, d_ff=4 * base.d_ff, parametrization="mup", base_width=128)
    torch.manual_seed(0)
    model = build_model(cfg)
    std = dict(model.named_parameters())
    residual = cfg.init_std / math.sqrt(2 * cfg.n_layers)
    for name, want in (
        ("embed.weight", 0.02), ("lm_head.weight", 0.02), ("blocks.0.attn.qkv.weight", 0.01),
        ("blocks.0.attn.out.weight", residual / 2), ("blocks.0.ffn.router.weight", 0.005),
        ("blocks.0.ffn.experts.w_gate_up", 0.01), ("blocks.0.ffn.shared.down.weight", residual / 2),
    ):  # fmt: skip
        assert std[name].std().item() == pytest.approx(want, rel=0.05), name
    groups = optimizer_groups(model, cfg, lr=1e-2, weight_decay=0.1, eps=1e-8)
    assert [g["group"] for g in groups] == [g for g in GROUPS if g != "ffn"]  # MoE: no dense FFN
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    by = {g["group"]: g for g in groups}
    assert by["attention"]["lr"] == pytest.approx(2.5e-3) and by["attention"]["lr_multiplier"] == 0.25
    assert by["embedding"]["lr"] == 1e-2 and by["norm"]["weight_decay"] == 0.0
    assert by["output"]["eps"] == pytest.approx(2.5e-9)


def test_mup_head_reads_the_hidden_state_times_one_over_m() -> None:
    model = build_model(_dense(256, parametrization="mup", base_width=64))
    idx = _batch()[:, :16]
    hidden, _ = model.features(idx)
    logits = model(idx).logits
    model.output_multiplier = None  # the same network without the multiplier
    unscaled, _ = model.features(idx)
    torch.testing.assert_close(hidden, unscaled * 0.25)
    torch.testing.assert_close(logits, model.lm_head(unscaled) * 0.25, rtol=1e-5, atol=1e-6)


def test_completep_scales_each_residual_branch() -> None:
    model = build_model(
        _dense(64, parametrization="completep", base_width=64, base_depth=2)
    )  # 4 layers: × 1/2
    block, cos, sin = model.blocks[0], model.rope_cos[:8], model.rope_sin[:8]
    x = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0))
    h = x + 0.5 * block.attn(block.attn_norm(x), cos, sin)
    want = h + 0.5 * block.ffn(block.ffn_norm(h))
    torch.testing.assert_close(block(x, cos, sin)[0], want)


@pytest.mark.parametrize(
    ("changes", "field", "fix"),
    [
        ({"parametrization": "mup"}, "ModelConfig.base_width", "set base_width"),
        ({"parametrization": "completep", "base_width": 64}, "ModelConfig.base_depth", "set base_depth"),
        ({"parametrization": "mup", "base_width": 0}, "ModelConfig.base_width", "positive integer"),
        ({"parametrization": "mup", "base_width": -64}, "ModelConfig.base_width", "positive integer"),
        ({"parametrization": "mup", "base_width": 64, "base_head_dim": 0}, "ModelConfig.base_head_dim", "positive"),
        ({"base_width": 64}, "ModelConfig.base_width", "leave it unset"),
        ({"parametrization": "mup", "base_width": 64, "base_depth": 2}, "ModelConfig.base_depth", "leave it unset"),
        ({"parametrization": "ntk"}, "ModelConfig.parametrization", "'sp', 'mup', 'completep'"),
    ],
)  # fmt: skip
def test_bad_parametrization_is_refused_naming_the_field(changes: dict, field: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        get_preset("dense-100k").replace(**changes)
    assert str(err.value).startswith(field) and fix in str(err.value)
