"""When a run evaluates, keeps weights and checkpoints, asked by step, so the training loop reads as what
it does. ``step`` is the number of optimiser steps taken (1 after the first update)."""

from __future__ import annotations

from dataclasses import dataclass

from archscale.training.run_config import RunConfig


@dataclass(frozen=True)
class StepSchedule:
    """``eval_steps``: the steps after which the run evaluates (the last always among them);
    ``checkpoint_every``: the checkpoint period in steps; ``keep_weights``: whether eval steps before the
    end keep the weights (the end's are the final weights, saved anyway)."""

    steps: int
    eval_steps: frozenset[int]
    checkpoint_every: int
    keep_weights: bool = False

    @classmethod
    def for_run(cls, run: RunConfig) -> StepSchedule:
        return cls(run.steps, frozenset(run.eval_steps), run.checkpoint_every_steps, run.keep_checkpoints)

    def should_eval(self, step: int) -> bool:
        return step in self.eval_steps

    def should_keep_weights(self, step: int) -> bool:
        return self.keep_weights and self.should_eval(step) and step < self.steps

    def should_checkpoint(self, step: int) -> bool:
        """Every ``checkpoint_every`` steps but the last, whose state the end of the run saves anyway."""
        return step % self.checkpoint_every == 0 and step < self.steps
