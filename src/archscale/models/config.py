"""Model configuration: one frozen dataclass for both families, validated on construction.

A dense model is ``kind="dense"``; an MoE model is ``kind="moe"`` with ``n_experts`` experts of hidden
width ``d_ff`` each and token-choice top-``top_k`` routing. Keeping one config (not two classes) lets
sweeps, accounting and export treat both families the same way.

The MoE design knobs beyond the paper's E:

- ``granularity`` G (Krajewski et al. 2024): every expert split into G experts of width ``d_ff / G``, so
  the layer has ``n_experts·G`` experts of which ``top_k·G`` are active: the same active and total
  parameters, finer routing;
- ``n_shared_experts``: of those ``n_experts·G`` experts, this many every token uses and the router never
  sees; the router chooses ``top_k·G − n_shared_experts`` of the rest (DeepSeekMoE's shared-expert
  isolation, Dai et al. 2024: active and total parameters stay those of the unshared layer);
- ``router_score``: softmax over the experts (Switch, Mixtral) or an independent sigmoid per expert
  (DeepSeek-V3); the top-k weights are re-normalised when ``renormalize``;
- ``balance``: the Switch auxiliary loss alone, or DeepSeek-V3's auxiliary-loss-free balancing (a
  per-expert bias added to the scores for the choice of experts only, moved by ``bias_update_rate`` after
  every step toward equal load); ``aux_loss_weight`` applies in both (set it to 0 for pure loss-free).

``parametrization`` chooses how initialisation, learning rates and a few forward multipliers scale with
width and depth: ``sp`` (standard, the default), ``mup`` (μP, anchored at ``base_width``) or ``completep``
(μP plus CompleteP's depth rules, anchored at ``base_width`` and ``base_depth``); the rules and their
sources are in :mod:`archscale.models.parametrization`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from archscale import fields
from archscale.errors import ArchscaleError

MoEBackend = Literal["auto", "grouped", "loop", "padded"]
RouterScore = Literal["softmax", "sigmoid"]
Balance = Literal["aux_loss", "loss_free"]
Parametrization = Literal["sp", "mup", "completep"]

DESIGN_DEFAULTS: dict[str, Any] = {
    "granularity": 1, "n_shared_experts": 0, "router_score": "softmax", "balance": "aux_loss",
    "bias_update_rate": 0.001,
}  # fmt: skip
"""The MoE design fields and their defaults (the paper's MoE). They came after runs were first stored, so a
run's identity leaves them out while they hold these values: stored run ids do not change."""

PARAMETRIZATION_DEFAULTS: dict[str, Any] = {
    "parametrization": "sp", "base_width": None, "base_depth": None, "base_head_dim": None,
}  # fmt: skip
"""The parametrisation fields and their defaults (SP). Like the design fields, a run's identity leaves them
out while they hold these values, so every SP run keeps its id."""


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
    granularity: int = 1
    n_shared_experts: int = 0
    router_score: RouterScore = "softmax"
    balance: Balance = "aux_loss"
    bias_update_rate: float = 0.001  # DeepSeek-V3's γ
    tie_embeddings: bool = False
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    parametrization: Parametrization = "sp"
    base_width: int | None = None  # μP/CompleteP: the d_model whose hyperparameters are transferred
    base_depth: int | None = None  # CompleteP: the n_layers whose hyperparameters are transferred
    base_head_dim: int | None = None  # μP/CompleteP attention anchor; None: this model's head_dim
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
            "granularity",
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
        if self.kind == "dense" and self.is_designed_moe:
            raise ConfigError(
                "ModelConfig.granularity/n_shared_experts/router_score/balance: MoE design fields need "
                "kind='moe'; leave them at their defaults for a dense model"
            )
        if self.d_ff % self.granularity:
            raise ConfigError(
                f"ModelConfig.granularity: {self.granularity} does not divide d_ff={self.d_ff}; "
                "choose a divisor of the expert width"
            )
        if (
            isinstance(self.n_shared_experts, bool)
            or not isinstance(self.n_shared_experts, int)
            or (self.n_shared_experts < 0)
        ):
            raise ConfigError(
                f"ModelConfig.n_shared_experts: must be an integer ≥ 0, got {self.n_shared_experts!r}"
            )
        if self.n_shared_experts >= self.top_k * self.granularity:
            raise ConfigError(
                f"ModelConfig.n_shared_experts: {self.n_shared_experts} leaves no routed expert among the "
                f"top_k·granularity = {self.top_k * self.granularity} active ones; use fewer shared experts"
            )
        for f, kinds in (("router_score", RouterScore), ("balance", Balance)):
            if getattr(self, f) not in get_args(kinds):
                raise ConfigError(
                    f"ModelConfig.{f}: must be one of {get_args(kinds)}, got {getattr(self, f)!r}"
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
        for f in ("rope_theta", "norm_eps", "init_std", "bias_update_rate"):
            if not getattr(self, f) > 0:
                raise ConfigError(f"ModelConfig.{f}: must be > 0, got {getattr(self, f)!r}")
        self._check_parametrization()

    def _check_parametrization(self) -> None:
        """μP needs ``base_width``; CompleteP needs ``base_width`` and ``base_depth``; SP takes none of the
        base fields (``base_head_dim`` is optional under μP and CompleteP)."""
        p = self.parametrization
        if p not in get_args(Parametrization):
            raise ConfigError(
                f"ModelConfig.parametrization: must be one of {get_args(Parametrization)}, got {p!r}"
            )
        needed = {"base_width": p != "sp", "base_depth": p == "completep"}
        for f, base_of in (("base_width", "d_model"), ("base_depth", "n_layers")):
            if needed[f] and getattr(self, f) is None:
                raise ConfigError(
                    f"ModelConfig.{f}: parametrization={p!r} needs the base model's {base_of}, whose "
                    f"tuned hyperparameters transfer; set {f}, e.g. {f}={getattr(self, base_of)}"
                )
        width_users, depth_users = ("mup", "completep"), ("completep",)
        for f, users in (
            ("base_width", width_users),
            ("base_depth", depth_users),
            ("base_head_dim", width_users),
        ):
            value = getattr(self, f)
            if value is None:
                continue
            if p not in users:
                raise ConfigError(
                    f"ModelConfig.{f}: only parametrization {' or '.join(map(repr, users))} uses it, not "
                    f"{p!r}; leave it unset"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"ModelConfig.{f}: must be a positive integer, got {value!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def is_moe(self) -> bool:
        return self.kind == "moe"

    @property
    def is_designed_moe(self) -> bool:
        """Any MoE design field away from the paper's MoE (:data:`DESIGN_DEFAULTS`)."""
        return any(getattr(self, f) != v for f, v in DESIGN_DEFAULTS.items())

    @property
    def n_routed_experts(self) -> int:
        return self.n_experts * self.granularity - self.n_shared_experts

    @property
    def routed_top_k(self) -> int:
        return self.top_k * self.granularity - self.n_shared_experts

    @property
    def expert_width(self) -> int:
        """Hidden width of each routed (and shared) expert."""
        return self.d_ff // self.granularity

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity_dict(self) -> dict[str, Any]:
        """The fields that define the model's function and training, for run ids: no name, numbers as they
        compare (10000 and 10000.0 are one rope_theta), the design and parametrisation fields only where
        set."""
        data = self.to_dict()
        data.pop("name")
        for f in dataclasses.fields(self):
            if isinstance(f.default, float):
                data[f.name] = float(data[f.name])
        for f, default in {**DESIGN_DEFAULTS, **PARAMETRIZATION_DEFAULTS}.items():
            if data[f] == default:
                data.pop(f)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a plain mapping (YAML/JSON), rejecting unknown or missing fields by name."""
        return cls(**fields.mapping_for(cls, data, ConfigError))
