"""One training run, fully specified: model, token budget, batch, optimiser, schedule, data and evals.

``RunConfig`` is the unit a sweep expands into and the results store keys by. Fields left as ``None``
are derived on construction (``seq_len`` from the model, warm-up from the step count, eval points from
the budget, micro-batch = batch), so a stored config is explicit and ``run_id`` hashes what actually runs.

Conventions:

- One optimiser step consumes ``batch_size`` sequences of ``seq_len`` tokens; the run takes
  ``steps = tokens // tokens_per_step`` steps, so it never trains past its budget and ``D`` (the trained
  tokens) is ``steps · tokens_per_step``.
- ``run_id`` is a hash of everything that changes the numbers a run produces. ``model_name`` (a label),
  the model's ``name``, ``checkpoint_every_steps`` (resumption is exact) and ``keep_checkpoints`` (what is
  kept on disk, not what is computed) are left out, so a repeated sweep with a new label or checkpoint
  setting still finds its finished runs, and no stored run's identity changed when they were added.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from archscale import fields
from archscale.data import DataError, vocab_size_for
from archscale.models import ConfigError, ModelConfig, get_preset, scale_report
from archscale.training.schedules import lr_multiplier, wsd_decay_steps

Schedule = Literal["cosine", "wsd", "constant"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
COSMETIC_FIELDS: tuple[str, ...] = ("model_name", "checkpoint_every_steps", "keep_checkpoints")
DERIVABLE_FIELDS: tuple[str, ...] = (
    "seq_len", "warmup_steps", "eval_at_tokens", "micro_batch_size", "checkpoint_every_steps",
)  # fmt: skip
DEFAULT_WARMUP_FRACTION = 0.05  # of the steps: runs of any length warm up over the same share of training
DEFAULT_EVAL_HALVINGS = 6  # default evals at D/64, D/32, ..., D/2 and D (log-spaced, factor 2)
DEFAULT_CHECKPOINTS = 10  # checkpoints per run by default


def _int(name: str, value: Any, minimum: int = 1) -> int:
    return fields.integer(f"RunConfig.{name}", value, ConfigError, minimum)


def _real(name: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    return fields.real(
        f"RunConfig.{name}", value, ConfigError, low, high, low_open=low_open, high_open=high_open
    )


def _name(name: str, value: Any) -> str:
    return fields.text(f"RunConfig.{name}", value, ConfigError)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    tokens: int  # token budget; the run trains floor(tokens / tokens_per_step) whole steps
    batch_size: int  # sequences per optimiser step
    lr: float  # peak learning rate
    seq_len: int | None = None  # None: the model's max_seq_len
    model_name: str | None = None  # preset name or label (cosmetic)
    warmup_steps: int | None = None  # None: 5 % of the steps
    schedule: Schedule = "cosine"
    decay_fraction: float = 0.2  # WSD: share of the steps spent decaying to min_lr_ratio · lr
    min_lr_ratio: float = 0.1  # the paper's cosine decays 10x
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float | None = 1.0  # None: no clipping
    seed: int = 0
    dataset: str = "minipile"  # corpus name or path
    tokenizer: str = "bytes"
    mixture: dict[str, float] | None = None  # subset -> sampling weight (normalised to sum 1)
    eval_at_tokens: tuple[int, ...] | None = None  # None: log-spaced; the end of the run is always added
    eval_tokens_per_subset: int = 65536
    micro_batch_size: int | None = None  # None: batch_size (no accumulation, no noise-scale estimate)
    checkpoint_every_steps: int | None = None  # None: about 10 checkpoints per run (cosmetic)
    # keep the model weights at every eval step (checkpoint.kept_weights), for downstream evals (cosmetic)
    keep_checkpoints: bool = False
    _derived: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(
                f"RunConfig.model: expected a ModelConfig, got {type(self.model).__name__}; "
                "use RunConfig.from_dict for a mapping or a preset name"
            )
        self._set("_derived", frozenset(f for f in DERIVABLE_FIELDS if getattr(self, f) is None))
        self._check_scalars()
        self._resolve_batch()
        self._resolve_warmup()
        self._resolve_evals()
        every = self.checkpoint_every_steps
        every = (
            math.ceil(self.steps / DEFAULT_CHECKPOINTS)
            if every is None
            else _int("checkpoint_every_steps", every)
        )
        self._set("checkpoint_every_steps", every)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # the dataclass is frozen; only construction may resolve fields

    def _check_scalars(self) -> None:
        for name in ("tokens", "batch_size", "eval_tokens_per_subset"):
            _int(name, getattr(self, name))
        _int("seed", self.seed, minimum=0)
        fields.flag("RunConfig.keep_checkpoints", self.keep_checkpoints, ConfigError)
        for name, low, high, low_open, high_open in (
            ("lr", 0, math.inf, True, True),
            ("decay_fraction", 0, 1, True, False),
            ("min_lr_ratio", 0, 1, False, False),
            ("weight_decay", 0, math.inf, False, True),
            ("beta1", 0, 1, False, True),
            ("beta2", 0, 1, False, True),
        ):
            self._set(
                name, _real(name, getattr(self, name), low, high, low_open=low_open, high_open=high_open)
            )
        if self.grad_clip is not None:
            self._set(
                "grad_clip", _real("grad_clip", self.grad_clip, 0, math.inf, low_open=True, high_open=True)
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"RunConfig.schedule: must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        _name("dataset", self.dataset)
        _name("tokenizer", self.tokenizer)
        try:
            vocab = vocab_size_for(self.tokenizer)
        except DataError as err:
            raise ConfigError(f"RunConfig.tokenizer: {err}") from None
        if self.model.vocab_size != vocab:  # the tokeniser decides the vocabulary (bytes: 256 + end-of-text)
            self._set("model", self.model.replace(vocab_size=vocab))
        if self.model_name is not None:
            _name("model_name", self.model_name)
        if self.mixture is not None:
            self._set("mixture", self._normalised_mixture())

    def _resolve_batch(self) -> None:
        seq_len = self.model.max_seq_len if self.seq_len is None else _int("seq_len", self.seq_len)
        if seq_len > self.model.max_seq_len:
            raise ConfigError(
                f"RunConfig.seq_len: {seq_len} exceeds the model's max_seq_len={self.model.max_seq_len}; "
                "lower seq_len or raise model.max_seq_len"
            )
        self._set("seq_len", seq_len)
        if self.tokens < self.tokens_per_step:
            raise ConfigError(
                f"RunConfig.tokens: budget {self.tokens} is less than one step "
                f"(batch_size·seq_len = {self.tokens_per_step} tokens); raise tokens or lower batch_size"
            )
        micro = self.micro_batch_size
        micro = self.batch_size if micro is None else _int("micro_batch_size", micro)
        if self.batch_size % micro:
            raise ConfigError(
                f"RunConfig.micro_batch_size: {micro} does not divide batch_size={self.batch_size}; "
                "choose a divisor of the batch size"
            )
        self._set("micro_batch_size", micro)

    def _normalised_mixture(self) -> dict[str, float]:
        mix = self.mixture
        if not isinstance(mix, dict) or not mix:
            raise ConfigError(f"RunConfig.mixture: must be a non-empty mapping subset -> weight, got {mix!r}")
        for key, weight in mix.items():
            _name(f"mixture key {key!r}", key)
            _real(f"mixture[{key!r}]", weight, 0, math.inf, low_open=True, high_open=True)
        total = math.fsum(mix.values())
        return {key: mix[key] / total for key in sorted(mix)}

    def _resolve_warmup(self) -> None:
        steps = self.steps
        warmup = self.warmup_steps
        warmup = round(DEFAULT_WARMUP_FRACTION * steps) if warmup is None else _int("warmup_steps", warmup, 0)
        if warmup >= steps:
            raise ConfigError(
                f"RunConfig.warmup_steps: {warmup} warm-up steps leave nothing of the {steps}-step run; "
                "lower warmup_steps or raise tokens"
            )
        if self.schedule == "wsd" and warmup + wsd_decay_steps(steps, self.decay_fraction) > steps:
            raise ConfigError(
                f"RunConfig.warmup_steps: warm-up ({warmup}) plus the WSD decay "
                f"({wsd_decay_steps(steps, self.decay_fraction)} steps) exceed the {steps} steps; "
                "lower warmup_steps or decay_fraction"
            )
        self._set("warmup_steps", warmup)

    def _resolve_evals(self) -> None:
        steps, per_step, end = self.steps, self.tokens_per_step, self.trained_tokens
        if self.eval_at_tokens is None:
            points = {max(1, round(steps / 2**k)) * per_step for k in range(1, DEFAULT_EVAL_HALVINGS + 1)}
        else:
            if not isinstance(self.eval_at_tokens, tuple | list):
                raise ConfigError(
                    f"RunConfig.eval_at_tokens: must be a list of token counts, got {self.eval_at_tokens!r}"
                )
            points = set()
            for i, t in enumerate(self.eval_at_tokens):
                _int(f"eval_at_tokens[{i}]", t)
                if t > end:
                    raise ConfigError(
                        f"RunConfig.eval_at_tokens[{i}]: {t} is past the end of the run ({end} trained "
                        "tokens); drop it or raise tokens"
                    )
                points.add(t)
        self._set("eval_at_tokens", tuple(sorted(points | {end})))

    # ---- derived quantities ----------------------------------------------------------------------
    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def steps(self) -> int:
        return self.tokens // self.tokens_per_step

    @property
    def trained_tokens(self) -> int:
        """D: the tokens the run actually trains on (whole steps within the budget)."""
        return self.steps * self.tokens_per_step

    @property
    def n_micro_batches(self) -> int:
        return self.batch_size // self.micro_batch_size

    @property
    def measures_noise_scale(self) -> bool:
        """The two-batch-size noise-scale estimator needs at least two micro-batches per step."""
        return self.n_micro_batches > 1

    @property
    def eval_steps(self) -> tuple[int, ...]:
        """Optimiser steps after which to evaluate: the first step reaching each eval token count."""
        return tuple(
            sorted({min(self.steps, math.ceil(t / self.tokens_per_step)) for t in self.eval_at_tokens})
        )

    def lr_at(self, step: int) -> float:
        """The learning rate at optimiser step ``step`` (0-based)."""
        return self.lr * lr_multiplier(
            step,
            steps=self.steps,
            warmup_steps=self.warmup_steps,
            schedule=self.schedule,
            decay_fraction=self.decay_fraction,
            min_lr_ratio=self.min_lr_ratio,
        )

    def derived(self) -> dict[str, float | int]:
        """Scale quantities of this run: N (FLOPs/token), P (non-embedding), P_active, P_total, D, C = N·D."""
        report = scale_report(self.model, self.seq_len)
        n, d = report.flops_per_token, self.trained_tokens
        return {
            "N": n,
            "P": report.nonembedding_params,
            "P_active": report.active_params,
            "P_total": report.total_params,
            "D": d,
            "C": n * d,
            "steps": self.steps,
            "tokens_per_step": self.tokens_per_step,
        }

    # ---- identity and serialisation --------------------------------------------------------------
    @functools.cached_property  # fields never change after construction
    def config_sha256(self) -> str:
        """SHA-256 of the canonical JSON of the result-changing fields: the run's whole identity."""
        ident = self.to_dict()
        for name in COSMETIC_FIELDS:
            ident.pop(name)
        ident["model"] = self.model.identity_dict()
        text = json.dumps(ident, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """The first 12 hex digits of ``config_sha256``."""
        return self.config_sha256[:12]

    def __hash__(self) -> int:  # mixture is a dict, so the generated hash would fail
        return hash(self.run_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping of every field (derived ones resolved)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        data["model"] = self.model.to_dict()
        data["eval_at_tokens"] = list(self.eval_at_tokens)
        data["mixture"] = None if self.mixture is None else dict(self.mixture)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a mapping; ``model`` may be a preset name or a mapping of ModelConfig fields."""
        kwargs = fields.mapping_for(cls, data, ConfigError)
        model = kwargs["model"]
        if isinstance(model, str):
            try:
                kwargs["model"] = get_preset(model)
            except KeyError as err:
                raise ConfigError(f"RunConfig.model: {err.args[0]}") from None
            kwargs.setdefault("model_name", model)
        elif isinstance(model, dict):
            try:
                kwargs["model"] = ModelConfig.from_dict(model)
            except ConfigError as err:
                raise ConfigError(f"RunConfig.model: {err}") from None
        if isinstance(kwargs.get("eval_at_tokens"), list):
            kwargs["eval_at_tokens"] = tuple(kwargs["eval_at_tokens"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes``; fields that were derived are derived again (e.g. warm-up for new tokens)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        for name in self._derived:
            kwargs[name] = None
        kwargs.update(changes)
        return RunConfig(**kwargs)
