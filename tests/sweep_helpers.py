"""Specs and commands the sweep tests share: a small grid on the tiny corpus, the CLI as a user starts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

ARCHSCALE = [sys.executable, "-m", "archscale.cli.main"]
GLOO_ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def write_spec(path: Path, corpus, **overrides) -> Path:
    spec = {
        "name": "test-sweep", "dataset": str(corpus.path), "seq_len": 64, "micro_batch_size": 4,
        "eval": {"tokens_per_subset": 2048}, "checkpoint_every_steps": 5,
        "grid": [
            {"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 30], "batch_sizes": [8], "lrs": [3e-3, 6e-3]},
            {"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 20], "batch_sizes": [4, 8], "lrs": [2e-3]},
        ],
    }  # fmt: skip
    spec.update(overrides)
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep_command(spec: Path, store: Path, workers: int) -> list[str]:
    """``archscale sweep run`` in a fresh interpreter, as a user starts it."""
    return [
        *ARCHSCALE,
        "sweep",
        "run",
        str(spec),
        "--store",
        str(store),
        "--workers",
        str(workers),
        "--no-progress",
    ]
