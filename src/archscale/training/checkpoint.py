"""Checkpoints that survive ``kill -9`` and are never resumed by the wrong run or from damaged bytes.

A checkpoint is written to a temporary file, fsynced, then renamed into place. It carries the identity of
the run that wrote it (``run_id``, the SHA-256 of its whole config, the config itself) and a SHA-256 of its
content (every tensor's dtype, shape and bytes, every other value's repr), so that a flipped bit, a
truncated file or another run's checkpoint copied into the folder is refused with the reason instead of
being resumed and recorded as a finished run with someone else's numbers. Training state goes through
``torch.save`` and is read back with ``torch.load(weights_only=True)``, which refuses arbitrary pickled
objects. Final weights are also written as safetensors, the format the export bridges read, and so are a
run's weights at its eval steps when it keeps them (``RunConfig.keep_checkpoints``), in ``checkpoints/``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from archscale.errors import ArchscaleError
from archscale.paths import write_atomic
from archscale.training.branches import branch_step
from archscale.training.run_config import RunConfig

STATE_FILE = "checkpoint.pt"
BRANCH_FILE = "branch.pt"  # a trunk's state at this run's decay start (see archscale.training.branches)
WEIGHTS_FILE = "model.safetensors"
KEPT_DIR = "checkpoints"  # weights kept at eval steps: checkpoints/step-00000123.safetensors
BAD_SUFFIX = ".bad"  # a refused checkpoint, moved aside when the user asks for a fresh start
_SEALED = ("identity", "content_sha256")  # the keys save_state adds to a run's state


class CheckpointError(ArchscaleError):
    """A checkpoint that must not be resumed: damaged, unreadable, or written by another run."""

    exit_code = 1


def _feed(digest: Any, value: Any) -> None:
    """Hash ``value`` canonically: tensors by dtype, shape and bytes; mappings in key order; leaves by repr
    (floats' repr round-trips exactly)."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().data if flat.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__[0]}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def content_sha256(state: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's whole content (its stored hash excluded)."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != "content_sha256"})
    return digest.hexdigest()


def identity(run: RunConfig) -> dict[str, Any]:
    return {"run_id": run.run_id, "config_sha256": run.config_sha256, "config": run.to_dict()}


def save_state(run_dir: Path, state: dict[str, Any], writer: RunConfig, name: str = STATE_FILE) -> None:
    """Write ``state`` of run ``writer`` sealed with the writer's identity and the content's hash."""
    sealed = {**state, "identity": identity(writer)}
    sealed["content_sha256"] = content_sha256(sealed)
    write_atomic(Path(run_dir) / name, lambda p: torch.save(sealed, p))


def load_state(run_dir: Path, run: RunConfig) -> dict[str, Any] | None:
    """``run``'s own latest checkpoint, else the state a trunk left for it as a branch, else None.

    Raises :class:`CheckpointError` (naming the file and the reason) for a file that cannot be read, whose
    content does not match its hash, or that another run wrote (a branch state must come from a trunk whose
    prefix ``run`` is, taken at ``run``'s decay start)."""
    path = next((p for p in (Path(run_dir) / n for n in (STATE_FILE, BRANCH_FILE)) if p.exists()), None)
    if path is None:
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, bit-flipped beyond unpickling, or not a checkpoint at all
        detail = " ".join(str(err).split())
        raise _refused(
            path, f"unreadable ({type(err).__name__}: {detail[:80]}{'…' * (len(detail) > 80)})"
        ) from None
    if not isinstance(state, dict) or not all(key in state for key in _SEALED):
        raise _refused(path, "no identity or content hash (not written by this archscale version)")
    if state["content_sha256"] != content_sha256(state):
        raise _refused(path, "its content does not match its SHA-256 (the file is damaged)")
    writer = state["identity"]
    if path.name == STATE_FILE:
        if writer.get("run_id") != run.run_id or writer.get("config_sha256") != run.config_sha256:
            raise _refused(path, f"written by run {writer.get('run_id')!r}, not by this run {run.run_id!r}")
    elif branch_step(run, RunConfig.from_dict(writer["config"])) != state["step"]:
        raise _refused(
            path,
            f"a state of run {writer.get('run_id')!r}, which is not this run's trunk at step {state['step']}",
        )
    return {k: v for k, v in state.items() if k not in _SEALED}


def _refused(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path}: {reason}; not resumed",
        hint="re-run with --restart-bad-checkpoints to move it aside and train this run from the start",
    )


def set_aside_bad(run_dir: Path, run: RunConfig) -> list[Path]:
    """Move each checkpoint of ``run`` that must not be resumed aside (``*.bad``), so the run resumes from
    the next good one or starts afresh; returns the moved files' new paths."""
    moved = []
    while True:
        try:
            load_state(run_dir, run)
            return moved
        except CheckpointError:
            path = next(Path(run_dir) / n for n in (STATE_FILE, BRANCH_FILE) if (Path(run_dir) / n).exists())
            moved.append(path.with_name(path.name + BAD_SUFFIX))
            os.replace(path, moved[-1])


def kept_path(run_dir: Path, step: int) -> Path:
    """Where the weights kept at ``step`` go (zero-padded, so the names sort by step)."""
    return Path(run_dir) / KEPT_DIR / f"step-{step:08d}.safetensors"


def save_weights(
    run_dir: Path, weights: dict[str, torch.Tensor], tie_embeddings: bool, step: int | None = None
) -> Path:
    """A model's state dict as safetensors: the final weights, or with ``step`` the weights kept at that step
    (weights only: nothing to resume from, a fraction of a checkpoint's size). Tied tensors are stored once,
    under the embedding's name."""
    state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    if tie_embeddings:
        state.pop("lm_head.weight", None)
    path = Path(run_dir) / WEIGHTS_FILE if step is None else kept_path(run_dir, step)
    return write_atomic(path, lambda p: save_file(state, str(p)))


def kept_weights(run_dir: Path, final_step: int) -> dict[int, Path]:
    """Every set of weights a run has on disk, by step: those kept at its eval steps, and its final weights
    (at ``final_step``, the run's last step) once it finished."""
    kept = {
        int(p.stem.removeprefix("step-")): p
        for p in (Path(run_dir) / KEPT_DIR).glob("step-*.safetensors")
        if p.stem.removeprefix("step-").isdigit()
    }
    final = Path(run_dir) / WEIGHTS_FILE
    return dict(sorted({**kept, **({final_step: final} if final.is_file() else {})}.items()))
