"""Small real runs for the trainer's tests: a 40-step dense-100k run on the tiny corpus, and a crash."""

from __future__ import annotations

import pytest

from archscale.training.run_config import RunConfig
from archscale.training.trainer import Trainer, load_train_data


def make_run(corpus, **changes) -> RunConfig:
    base = {
        "model": "dense-100k", "tokens": 8 * 64 * 40, "batch_size": 8, "seq_len": 64, "lr": 3e-3,
        "dataset": str(corpus.path), "eval_tokens_per_subset": 2048, "checkpoint_every_steps": 10,
    }  # fmt: skip
    return RunConfig.from_dict({**base, **changes})


def train(run: RunConfig, run_dir, **kwargs):
    return Trainer(run, load_train_data(run), run_dir, **kwargs).fit()


class Crash(Exception):
    pass


def crash_after_step_25(run: RunConfig, run_dir) -> None:
    """Train ``run`` until a crash after step 25 (its last checkpoint before that stays on disk)."""

    def crash(kind, payload):
        if kind == "progress" and payload["step"] >= 25:
            raise Crash

    with pytest.raises(Crash):
        Trainer(run, load_train_data(run), run_dir, on_event=crash).fit()
