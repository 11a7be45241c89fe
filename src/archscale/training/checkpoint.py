"""Checkpoints that survive ``kill -9``: written to a temporary file, fsynced, then renamed into place.

Training state (model, optimiser, step, estimator state) goes through ``torch.save`` and is read back
with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects. Final weights are also
written as safetensors, the format the export bridges read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

STATE_FILE = "checkpoint.pt"
BRANCH_FILE = "branch.pt"  # a trunk's state at this run's decay start (see archscale.training.branches)
WEIGHTS_FILE = "model.safetensors"


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(run_dir: Path, state: dict[str, Any], name: str = STATE_FILE) -> None:
    _atomic_write(Path(run_dir) / name, lambda p: torch.save(state, p))


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The run's own latest checkpoint, else the state a trunk left for it as a branch, else None."""
    path = next((p for p in (Path(run_dir) / n for n in (STATE_FILE, BRANCH_FILE)) if p.exists()), None)
    if path is None:
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say what to do rather than crash obscurely
        raise RuntimeError(f"checkpoint {path} is unreadable ({err}); delete it to restart this run") from err


def save_weights(run_dir: Path, weights: dict[str, torch.Tensor], tie_embeddings: bool) -> Path:
    """Final weights (a model's state dict) as safetensors; tied tensors are stored once, under the
    embedding's name."""
    state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    if tie_embeddings:
        state.pop("lm_head.weight", None)
    path = Path(run_dir) / WEIGHTS_FILE
    _atomic_write(path, lambda p: save_file(state, str(p)))
    return path
