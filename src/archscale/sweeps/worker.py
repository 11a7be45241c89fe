"""What one worker does with one run, whatever executes it (a local process, a Ray task, the caller).

Workers never touch the results store: they send events and return a result dict, and the coordinating
process writes. That keeps SQLite single-writer and lets any executor reuse this function.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archscale.errors import ArchscaleError
from archscale.store import StoreError
from archscale.sweeps.run_logs import LogOptions, RunLogger
from archscale.training.distributed import DistInfo
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig

Emit = Callable[[str, dict[str, Any]], None]


def limit_threads(n: int = 1) -> None:
    """One compute thread per worker; passive OpenMP waits (spinning threads starve a 2-core box).

    Must run before torch starts its thread pools, so executors call it in the child at start-up.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    torch.set_num_threads(n)


def run_one(
    run_dict: dict[str, Any],
    run_dir: str,
    emit: Emit,
    device: str = "cpu",
    logs: LogOptions | None = None,
    branches: dict[int, list[str]] | None = None,
    dist_info: DistInfo | None = None,
    options: TrainOptions = TrainOptions(),
) -> dict[str, Any]:
    """Train (or resume) one run; returns ``RunResult`` as a dict, or a ``failed`` result with the traceback.

    Events go to the run's TensorBoard/W&B logger (``logs``; default ``LogOptions()``) and then to ``emit``.
    ``branches``: step → run directories to seed with this run's state (cooldown branches). ``dist_info``:
    this process's rank when every rank of a ``torchrun`` group trains the run together (DDP).
    """
    from archscale.training.trainer import Trainer, load_train_data

    run = RunConfig.from_dict(run_dict)
    try:
        with RunLogger(run, Path(run_dir), logs) as logger:
            trainer = Trainer(
                run,
                load_train_data(run),
                Path(run_dir),
                device=device,
                dist_info=dist_info,
                options=options,
                on_event=logger.tee(emit),
                branches=branches,
            )
            return asdict(trainer.fit())
    # workers never touch the store: a StoreError here is an in-process coordinator's, and ends the sweep
    except StoreError:
        raise
    # a run the user can fix (e.g. too big for the device): the one line says how
    except ArchscaleError as err:
        return {"run_id": run.run_id, "status": "failed", "message": str(err)}
    except Exception:  # one broken run must not stop a sweep: report it and let the coordinator record it
        return {"run_id": run.run_id, "status": "failed", "message": traceback.format_exc(limit=20)}
