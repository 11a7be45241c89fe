"""When the training loop evaluates, keeps weights and checkpoints, against steps counted by hand."""

from __future__ import annotations

from archscale.training.run_config import RunConfig
from archscale.training.step_schedule import StepSchedule


def test_a_runs_schedule_against_hand_counted_steps() -> None:
    """40 steps of 8 × 64 = 512 tokens. Evals: 700 tokens are first reached after step 2 (ceil, not floor:
    step 1 has seen only 512), 2560 after step 5, and the end (step 40) always. Checkpoints every 10 steps
    but the last (the end saves its state anyway); weights are kept at the evals before the end only."""
    run = RunConfig.from_dict(
        {"model": "dense-100k", "tokens": 8 * 64 * 40, "batch_size": 8, "seq_len": 64, "lr": 1e-3,
         "eval_at_tokens": [700, 5 * 512], "checkpoint_every_steps": 10, "keep_checkpoints": True}
    )  # fmt: skip
    schedule = StepSchedule.for_run(run)
    steps = range(1, 41)
    assert [s for s in steps if schedule.should_eval(s)] == [2, 5, 40]
    assert [s for s in steps if schedule.should_keep_weights(s)] == [2, 5]
    assert [s for s in steps if schedule.should_checkpoint(s)] == [10, 20, 30]


def test_weights_are_kept_only_when_asked_and_a_period_longer_than_the_run_never_checkpoints() -> None:
    schedule = StepSchedule(steps=12, eval_steps=frozenset({3, 12}), checkpoint_every=20)
    assert not any(schedule.should_keep_weights(s) for s in range(1, 13))
    assert not any(schedule.should_checkpoint(s) for s in range(1, 13))
    assert [s for s in range(1, 13) if StepSchedule(12, frozenset({3, 12}), 4).should_checkpoint(s)] == [4, 8]
