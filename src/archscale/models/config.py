"""Model configuration: one frozen dataclass for both families, validated on construction.

A dense model is ``kind="dense"``; an MoE model is ``kind="moe"`` with ``n_experts`` experts of hidden
width ``d_ff`` each and token-choice top-``top_k`` routing. Keeping one config (not two classes) lets
sweeps, accounting and export treat both families the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from archscale import fields
from archscale.errors import ArchscaleError

MoEBackend = Literal["auto", "grouped", "loop", "padded"]


class ConfigError(ArchscaleError):
    """A configuration field is invalid; the message names the field and how to fix it."""


@dataclass(frozen=True)
class ModelConfig:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    vocab_size: int = 256
    max_seq_len: int = 256
    kind: Literal["dense", "moe"] = "dense"
    n_experts: int = 1
    top_k: int = 1
    renormalize: bool = True  # Mixtral: top-k weights re-normalised to sum to 1; OLMoE: not
    aux_loss_weight: float = 0.01  # Switch load-balancing loss weight
    z_loss_weight: float = 0.001  # router z-loss weight (ST-MoE)
    moe_backend: MoEBackend = "auto"
    tie_embeddings: bool = False
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for f in (
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
            "vocab_size",
            "max_seq_len",
            "n_experts",
            "top_k",
        ):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"ModelConfig.{f}: must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0 and h <= 64]
            raise ConfigError(
                f"ModelConfig.n_heads: {self.n_heads} does not divide d_model={self.d_model}; "
                f"choose one of {divisors}"
            )
        if self.head_dim % 2:
            raise ConfigError(
                f"ModelConfig.n_heads: head_dim = d_model / n_heads = {self.head_dim} must be even for "
                "rotary embeddings; use fewer heads"
            )
        if self.kind not in ("dense", "moe"):
            raise ConfigError(f"ModelConfig.kind: must be 'dense' or 'moe', got {self.kind!r}")
        if self.kind == "dense" and (self.n_experts != 1 or self.top_k != 1):
            raise ConfigError(
                "ModelConfig.n_experts/top_k: a dense model has n_experts=1, top_k=1; use kind='moe'"
            )
        if self.top_k > self.n_experts:
            raise ConfigError(
                f"ModelConfig.top_k: {self.top_k} exceeds n_experts={self.n_experts}; set top_k ≤ n_experts"
            )
        if self.moe_backend not in get_args(MoEBackend):
            raise ConfigError(
                f"ModelConfig.moe_backend: must be one of {get_args(MoEBackend)}, got {self.moe_backend!r}"
            )
        for f in ("aux_loss_weight", "z_loss_weight"):
            if getattr(self, f) < 0:
                raise ConfigError(f"ModelConfig.{f}: must be ≥ 0, got {getattr(self, f)!r}")
        for f in ("rope_theta", "norm_eps", "init_std"):
            if not getattr(self, f) > 0:
                raise ConfigError(f"ModelConfig.{f}: must be > 0, got {getattr(self, f)!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def is_moe(self) -> bool:
        return self.kind == "moe"

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a plain mapping (YAML/JSON), rejecting unknown or missing fields by name."""
        return cls(**fields.mapping_for(cls, data, ConfigError))
