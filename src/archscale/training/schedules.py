"""Learning-rate schedules as pure functions of the step: linear warm-up, then cosine, WSD or constant.

Step ``s`` is the number of optimiser steps already taken (0 for the first update); a run has ``steps``
updates, ``s = 0 … steps-1``. With ``W`` warm-up steps the multiplier (LR / peak LR) is:

- warm-up, ``s < W``: ``(s+1)/(W+1)``, so the first update is not wasted at LR 0 and step ``W`` is the
  first at the peak;
- ``cosine`` (the paper's schedule): from the peak at ``s = W`` to ``min_lr_ratio`` exactly at the last
  step, ``m + (1-m)·½(1 + cos(π·(s-W)/(steps-1-W)))``;
- ``wsd`` (warmup-stable-decay, MiniCPM): the peak until the last ``K = round(decay_fraction·steps)``
  steps, which fall linearly to ``min_lr_ratio`` at the last step (``m + (1-m)·(1 - (s-(steps-K)+1)/K)``).
  A shorter WSD run with the same warm-up is the longer run's prefix up to its own decay, so one long run
  can be cooled down from checkpoints at several token counts;
- ``constant``: the peak after warm-up.

Steps past the end keep the last step's value (a scheduler stepped once more after training is harmless).
"""

from __future__ import annotations

import math


def wsd_decay_steps(steps: int, decay_fraction: float) -> int:
    """Number of decaying steps at the end of a WSD run (at least one, so the last step is at the floor)."""
    return max(1, round(decay_fraction * steps))


def lr_multiplier(
    step: int,
    *,
    steps: int,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    decay_fraction: float = 0.2,
    min_lr_ratio: float = 0.1,
) -> float:
    """LR / peak LR at optimiser step ``step`` (0-based) of a ``steps``-step run; see the module docstring."""
    if step < 0:
        raise ValueError(f"step: must be ≥ 0, got {step}")
    if not 0 <= warmup_steps < steps:
        raise ValueError(f"warmup_steps: must be in [0, steps={steps}), got {warmup_steps}")
    step = min(step, steps - 1)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    floor = min_lr_ratio
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = steps - 1 - warmup_steps
        progress = 1.0 if span == 0 else (step - warmup_steps) / span
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay = wsd_decay_steps(steps, decay_fraction)
        done = step - (steps - decay) + 1  # decaying steps taken, including this one
        return 1.0 if done <= 0 else floor + (1 - floor) * (1 - done / decay)
    raise ValueError(f"schedule: must be 'cosine', 'wsd' or 'constant', got {schedule!r}")
