"""The coordinate check (Yang et al. 2022, "Tensor Programs V"; microsoft/mup's coord check): does every
layer's activation size stay put as the model widens, over the first steps of training at a large rate?

A preset is rebuilt at each width (d_model = width, heads added at the preset's head size, d_ff — the expert
width for MoE — in proportion; the smallest width is the μP base width, and CompleteP's base depth is the
preset's depth) and trained ``steps`` AdamW steps (β = 0.9, 0.95, no weight decay, the groups of
:func:`~archscale.models.parametrization.optimizer_groups`) on one fixed batch of 8 × 64 uniformly random
token ids, once per seed ``seed … seed + seeds − 1`` (the seed draws the initial weights and, from its own
``torch.Generator``, the batch); mean |x| is averaged over the seeds. No corpus: the check measures how the
updates scale with width, which random tokens expose; a Zipf-distributed batch (text's rough statistics)
was tried and measured noisier at lr 1e-2. Forward hooks record the mean |x| of the embedding output, each
block's attention and feed-forward outputs (before any CompleteP branch multiplier), each router's logits
(MoE) and the logits, in the forward pass before the first update and after each update (``steps + 1``
records).

Judged statistic, per layer: the slope of log(mean |x|) on log(width), least squares over the widths, after
the last update (``slope``); also reported: the spread, max / min over the widths of mean |x| at that step
(``spread``). The check passes when every hidden layer (embedding, attention, feed-forward) has
|slope| ≤ ``max_slope``, by default 0.4 (at most 1.32× per width doubling). Why a slope and why 0.4: the
smallest mistake a width rule can make is a factor √m, a slope of ±0.5 (SP's fixed init std is +0.5 per
matmul, +1 for the attention and SwiGLU outputs, which stack two; a missing Adam LR factor 1/m is +1), so
0.4 sits below every such mistake. Measured with the defaults (5 steps, 3 seeds, lr 1e-2): μP's largest
hidden-layer |slope| after the last step 0.13–0.30 (dense-100k and moe-100k, widths 32–256 and 64–512,
seeds 0–2 and 3–5), SP's 2.9–3.5. μP's slopes are not 0 at these widths: with n ≲ the batch's 512 tokens
an Adam step's change of a layer's output has a width-independent part and a random part that shrinks as
1/√m (slope −0.5 where it dominates), so narrow models move more; intermediate steps reach 0.42, and fewer
seeds or steps are noisier (1 seed, 3 steps, widths 64–256: 0.74), so judge with the defaults or more.
The slope uses every width, so one width caught in a loss oscillation moves it less than the max/min ratio
(which reached 2.7× once for μP). HF's μP work reports 1.02–1.05× per hidden layer
over widths 64–256, averaged over many batches, i.e. |slope| ≤ 0.035: a cleaner measurement than a few
steps on one batch allow. Router logits and the output logits are reported, not judged: they are output
layers, which under μP start at 1/√m of the base's and grow with training (HF reports 1.52× for the head).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from archscale.models import ConfigError, ModelConfig, build_model
from archscale.models.config import Parametrization
from archscale.models.moe import MoEFeedForward
from archscale.models.parametrization import optimizer_groups

DEFAULT_MAX_SLOPE = 0.4
DEFAULT_SEEDS = 3  # initialisations (and batches) averaged per width
DEFAULT_BATCH = (8, 64)  # sequences × tokens per sequence in the fixed batch


def scaled_config(
    base: ModelConfig, width: int, parametrization: Parametrization, base_width: int
) -> ModelConfig:
    """``base`` at d_model = ``width``: heads of the preset's size, d_ff in proportion (a multiple of the
    granularity), parametrised with ``base_width`` (and base depth = the preset's depth for CompleteP)."""
    if width % base.head_dim:
        raise ConfigError(
            f"coord-check --widths: {width} is not a multiple of the preset's head size {base.head_dim}; "
            "choose widths that are"
        )
    step = base.granularity
    d_ff = max(step, round(base.d_ff * width / base.d_model / step) * step)
    extra: dict[str, Any] = {}
    if parametrization != "sp":
        extra = {"base_width": base_width}
    if parametrization == "completep":
        extra["base_depth"] = base.n_layers
    return base.replace(
        d_model=width, n_heads=width // base.head_dim, d_ff=d_ff, parametrization=parametrization,
        name=f"{base.name}-w{width}", **extra,
    )  # fmt: skip


def _mean_abs_hooks(model: torch.nn.Module, record: dict[str, float]) -> list[Any]:
    """Forward hooks writing each watched module's mean |output| into ``record`` (layer name -> value)."""

    def watch(module: torch.nn.Module, layer: str) -> Any:
        def hook(_m: torch.nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output
            record[layer] = out.detach().float().abs().mean().item()

        return module.register_forward_hook(hook)

    handles = [watch(model.embed, "embedding")]
    for i, block in enumerate(model.blocks):
        handles += [watch(block.attn, f"block{i}.attn"), watch(block.ffn, f"block{i}.ffn")]
        if isinstance(block.ffn, MoEFeedForward):
            handles.append(watch(block.ffn.router, f"block{i}.router"))
    handles.append(watch(model.lm_head, "logits"))
    return handles


def is_hidden(layer: str) -> bool:
    """Judged layers: the embedding and every block's attention and feed-forward outputs."""
    return layer == "embedding" or layer.endswith((".attn", ".ffn"))


def fixed_batch(vocab_size: int, batch: int, length: int, seed: int) -> torch.Tensor:
    """Uniformly random token ids from a ``torch.Generator`` seeded with ``seed``."""
    return torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def trace_width(cfg: ModelConfig, steps: int, lr: float, seed: int) -> list[dict[str, float]]:
    """Mean |x| per layer before the first update and after each of ``steps`` updates."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    batch, seq = DEFAULT_BATCH
    tokens = fixed_batch(cfg.vocab_size, batch, seq + 1, seed)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    optimizer = torch.optim.AdamW(
        optimizer_groups(model, cfg, lr, weight_decay=0.0), lr=lr, betas=(0.9, 0.95), fused=True
    )
    trace: list[dict[str, float]] = []
    record: dict[str, float] = {}
    handles = _mean_abs_hooks(model, record)
    try:
        for step in range(steps + 1):
            record.clear()
            loss = model(inputs, targets).loss
            trace.append(dict(record))
            if step < steps:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        for h in handles:
            h.remove()
    return trace


@dataclass
class CoordCheck:
    preset: str
    parametrization: str
    widths: list[int]
    steps: int
    lr: float
    seed: int
    seeds: int
    max_slope: float
    mean_abs: dict[str, list[list[float]]]  # layer -> per width, per record (steps + 1)
    spread: dict[str, float] = field(default_factory=dict)  # layer -> max/min over widths, last record
    slope: dict[str, float] = field(default_factory=dict)  # layer -> d log mean|x| / d log width, last record
    passed: bool = False

    def __post_init__(self) -> None:
        logw = [math.log(w) for w in self.widths]
        for layer, per_width in self.mean_abs.items():
            last = [values[-1] for values in per_width]
            self.spread[layer] = max(last) / min(last) if min(last) > 0 else math.inf
            self.slope[layer] = _slope(logw, [math.log(max(v, 1e-30)) for v in last])
        self.passed = all(abs(s) <= self.max_slope for layer, s in self.slope.items() if is_hidden(layer))

    @property
    def worst(self) -> tuple[str, float]:
        """The hidden layer with the steepest slope, and that slope."""
        return max(((k, v) for k, v in self.slope.items() if is_hidden(k)), key=lambda kv: abs(kv[1]))

    def verdict(self) -> str:
        layer, slope = self.worst
        spread = max(v for k, v in self.spread.items() if is_hidden(k))
        return (
            f"{'PASS' if self.passed else 'FAIL'}: {self.preset} {self.parametrization}, widths "
            f"{'/'.join(map(str, self.widths))}, {self.steps} steps at lr {self.lr:g}: steepest hidden layer "
            f"{layer} |slope| {abs(slope):.2f} {'≤' if self.passed else '>'} {self.max_slope:g} "
            f"(largest hidden spread {spread:.3g}x)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict()}


def _slope(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum((a - mx) ** 2 for a in x)


def coord_check(
    base: ModelConfig,
    widths: list[int],
    parametrization: Parametrization = "mup",
    *,
    steps: int = 5,
    lr: float = 1e-2,
    seed: int = 0,
    seeds: int = DEFAULT_SEEDS,
    max_slope: float = DEFAULT_MAX_SLOPE,
) -> CoordCheck:
    """Train ``base`` at each width (module docstring) and judge the spread of every hidden layer."""
    widths = sorted(set(widths))
    if len(widths) < 2:
        raise ConfigError("coord-check --widths: give at least two distinct widths")
    if steps < 1 or seeds < 1 or not lr > 0 or not max_slope > 0:
        raise ConfigError("coord-check: --steps and --seeds must be ≥ 1, --lr and --max-slope > 0")
    mean_abs: dict[str, list[list[float]]] = {}
    for w in widths:
        cfg = scaled_config(base, w, parametrization, widths[0])
        runs = [trace_width(cfg, steps, lr, s) for s in range(seed, seed + seeds)]
        for layer in runs[0][0]:
            per_step = [sum(run[t][layer] for run in runs) / seeds for t in range(steps + 1)]
            mean_abs.setdefault(layer, []).append(per_step)
    return CoordCheck(
        preset=base.name or "model", parametrization=parametrization, widths=widths, steps=steps, lr=lr,
        seed=seed, seeds=seeds, max_slope=max_slope, mean_abs=mean_abs,
    )  # fmt: skip


def plot(result: CoordCheck, path: str) -> None:
    """One panel per record (step): mean |x| vs width per layer, log-log, as TP5 draws it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = result.steps + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    for step, ax in enumerate(axes[0]):
        for layer, per_width in result.mean_abs.items():
            style = "-" if is_hidden(layer) else "--"
            ax.plot(result.widths, [v[step] for v in per_width], style, marker="o", ms=3, label=layer)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"step {step}")
        ax.set_xlabel("width")
    axes[0][0].set_ylabel("mean |activation|")
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.suptitle(result.verdict(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
