"""Live run logging: the trainer's events become TensorBoard scalars (and W&B offline, on request).

``RunLogger`` is an event consumer the sweep worker puts in front of the coordinator's ``emit``, so every
executor (local processes, Ray tasks, in-process) logs the same way. The results store stays the record;
these files exist so a user can watch a sweep with ``tensorboard --logdir STORE-runs``.

Scalars (the x-axis is the optimiser step; tokens = step · batch · seq_len):

- ``train/loss`` (the objective), ``train/lm_loss``, ``train/aux_loss``, ``train/grad_norm``, ``train/lr``
- ``train/noise_scale`` (once the estimator has a value), ``perf/tokens_per_s``
- ``perf/mfu`` = FLOPs per token · tokens/s / ``peak_flops`` (only when ``peak_flops`` is given); FLOPs per
  token are the curve's own convention (6·N_active + attention, no embedding or head)
- ``experts/cv/layer{i}`` (std/mean of the experts' token shares, 0 = balanced) and
  ``experts/max_load/layer{i}`` (the busiest expert's share × E, 1 = balanced), MoE models only
- ``test/loss/{subset}``, ``test/bits_per_byte/{subset}`` for every subset and ``all``

Files are flushed after every event (about once a second). A resumed run restarts TensorBoard at its
checkpoint (``purge_step``), so steps a killed worker logged past its checkpoint are hidden rather than
doubled; the few steps it trained just before that checkpoint but had not yet sent as an event (under a
second's worth) stay missing from TensorBoard. The results store has every step.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from archscale.errors import ArchscaleError
from archscale.training.run_config import RunConfig

TB_DIR = "tb"


class LoggingOptionError(ArchscaleError):
    """A logging option is invalid or needs a package that is not installed."""


def importable(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@dataclass(frozen=True)
class LogOptions:
    """Where a run's scalars go besides the store; a small frozen value so executors can ship it to workers.

    ``tensorboard=None`` (the default) logs to ``<run_dir>/tb/`` whenever the ``tensorboard`` package is
    importable; ``False`` turns it off; ``True`` insists on it. W&B is off unless asked for and always runs in
    offline mode (``<run_dir>/wandb/``; upload later with ``wandb sync``).
    """

    tensorboard: bool | None = None
    wandb: bool = False
    wandb_project: str = "archscale"
    peak_flops: float | None = None  # per worker (one device); None: no MFU scalar

    def __post_init__(self) -> None:
        if self.tensorboard and not importable("tensorboard"):
            raise LoggingOptionError(
                "tensorboard=True: the tensorboard package is not installed; "
                "pip install 'archscale[tb]' (or turn TensorBoard logging off)"
            )
        if self.wandb and not importable("wandb"):
            raise LoggingOptionError(
                "wandb=True: the wandb package is not installed; pip install 'archscale[wandb]' "
                "(or leave W&B logging off)"
            )
        flops = self.peak_flops
        if flops is not None and (type(flops) not in (int, float) or not math.isfinite(flops) or flops <= 0):
            raise LoggingOptionError(
                f"peak_flops: must be a positive number of FLOP/s per worker (e.g. 989e12 for an H100 in "
                f"bf16), or None to skip MFU; got {flops!r}"
            )

    @property
    def uses_tensorboard(self) -> bool:
        return importable("tensorboard") if self.tensorboard is None else self.tensorboard


Scalars = dict[str, float]


def event_scalars(
    kind: str, payload: dict[str, Any], peak_flops: float | None = None
) -> list[tuple[int, Scalars]]:
    """The (step, {tag: value}) pairs one trainer event contributes; NaN and missing values are left out."""
    if kind == "progress":
        pairs = [(row["step"], _train_scalars(row, peak_flops)) for row in payload["rows"]]
    elif kind == "evals":
        by_step: dict[int, Scalars] = {}
        for row in payload["rows"]:
            scalars = by_step.setdefault(row["step"], {})
            scalars[f"test/loss/{row['subset']}"] = row["loss"]
            scalars[f"test/bits_per_byte/{row['subset']}"] = row["bits_per_byte"]
        pairs = list(by_step.items())
    else:
        return []
    return [
        (step, {k: float(v) for k, v in s.items() if v is not None and not math.isnan(v)})
        for step, s in pairs
    ]


def _train_scalars(row: dict[str, Any], peak_flops: float | None) -> dict[str, float | None]:
    scalars = {
        "train/loss": row["loss"], "train/lm_loss": row["lm_loss"], "train/aux_loss": row["aux_loss"],
        "train/grad_norm": row["grad_norm"], "train/lr": row["lr"], "train/noise_scale": row["noise_scale"],
        "perf/tokens_per_s": row["tokens_per_s"],
    }  # fmt: skip
    if peak_flops is not None:
        scalars["perf/mfu"] = row["flops"] / row["tokens"] * row["tokens_per_s"] / peak_flops
    if row.get("expert_fraction") is not None:
        shares = np.asarray(row["expert_fraction"], dtype=np.float64)  # (layers, experts), rows sum to 1
        mean = shares.mean(axis=1)
        for i, (cv, busiest) in enumerate(
            zip(shares.std(axis=1) / mean, shares.max(axis=1) / mean, strict=True)
        ):
            scalars[f"experts/cv/layer{i}"] = cv
            scalars[f"experts/max_load/layer{i}"] = busiest
    return scalars


class Sink(Protocol):
    def write(self, pairs: list[tuple[int, Scalars]]) -> None: ...
    def close(self) -> None: ...


class TensorBoardSink:
    def __init__(self, log_dir: Path, resume_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard keeps earlier events with step < purge_step: the checkpoint's steps survive, the
        # ones a killed worker logged past its checkpoint are hidden, and the resumed run logs them anew.
        self.writer = SummaryWriter(str(log_dir), purge_step=resume_step + 1 if resume_step else None)

    def write(self, pairs: list[tuple[int, Scalars]]) -> None:
        for step, scalars in pairs:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # once per event (≤ 1/s): a killed worker loses at most its last second

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, run: RunConfig, run_dir: Path, project: str) -> None:
        import wandb

        run_dir.mkdir(parents=True, exist_ok=True)  # W&B writes to <run_dir>/wandb/offline-run-*
        self.run = wandb.init(
            project=project, id=run.run_id, name=run.model_name or run.run_id, dir=str(run_dir),
            config=run.to_dict(), mode="offline", resume="allow",
        )  # fmt: skip

    def write(self, pairs: list[tuple[int, Scalars]]) -> None:
        for step, scalars in pairs:
            self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """Consumes one run's trainer events and writes their scalars to the enabled sinks.

    Sinks open on the ``started`` event, which carries the step a resumed run restarts from.
    """

    def __init__(self, run: RunConfig, run_dir: Path, options: LogOptions | None = None) -> None:
        self.run, self.run_dir = run, Path(run_dir)
        self.options = options or LogOptions()
        self.sinks: list[Sink] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "started":
            self.close()
            self.sinks = self._open(payload["step"])
        pairs = event_scalars(kind, payload, self.options.peak_flops)
        if pairs:
            for sink in self.sinks:
                sink.write(pairs)

    def _open(self, resume_step: int) -> list[Sink]:
        sinks: list[Sink] = []
        if self.options.uses_tensorboard:
            sinks.append(TensorBoardSink(self.run_dir / TB_DIR, resume_step))
        if self.options.wandb:
            sinks.append(WandbSink(self.run, self.run_dir, self.options.wandb_project))
        return sinks

    def tee(self, emit: Callable[[str, dict[str, Any]], None]) -> Callable[[str, dict[str, Any]], None]:
        """An event handler that logs each event, then passes it on to ``emit``."""

        def handler(kind: str, payload: dict[str, Any]) -> None:
            self(kind, payload)
            emit(kind, payload)

        return handler

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
