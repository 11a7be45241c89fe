"""Run a sweep on a Ray cluster: one Ray task per run, events streamed back to the coordinator.

Each task reserves ``num_cpus_per_run`` CPUs (and ``num_gpus_per_run`` GPUs), pins torch to that many
threads, and calls the same ``run_one`` as the local executor. Tasks never touch the results store: they
push their events onto a Ray queue (an actor) and return their result; the driver drains the queue and
hands everything to the coordinator, the store's only writer. Resuming is the executor-independent one:
``run_sweep`` skips finished runs and each run restarts from the checkpoint in its run directory.

Run directories and the data set must be on a file system every node sees (one machine, or shared
storage), and archscale must be installed on every node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archscale.errors import ArchscaleError, ArchscaleRuntimeError
from archscale.sweeps.executor import Coordinator, run_dir_for
from archscale.sweeps.run_logs import LogOptions, importable
from archscale.sweeps.worker import limit_threads, run_one
from archscale.training.branches import Branch
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig

POLL_SECONDS = 0.5  # how often the driver drains progress events while waiting for results


class RayExecutorError(ArchscaleError):
    """Bad Ray executor settings, or a cluster that cannot hold one run."""


class RayUnavailableError(ArchscaleRuntimeError, ImportError):
    """The ``ray`` package is not installed."""


def _run_task(
    run_dict: dict[str, Any], run_dir: str, run_id: str, events: Any, threads: int, device: str,
    logs: LogOptions | None, options: TrainOptions,
) -> dict[str, Any]:  # fmt: skip
    """The body of one Ray task (module level, so workers import it rather than unpickle a closure)."""
    limit_threads(threads)
    return run_one(
        run_dict,
        run_dir,
        lambda kind, payload: events.put((run_id, kind, payload)),
        device,
        logs,
        options=options,
    )


class RayExecutor:
    """One Ray task per run; ``address=None`` joins the Ray instance already initialised in this process,
    or else starts a local one (``num_cpus`` CPUs; all of them when None) and shuts it down afterwards."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_run: int = 1,
        num_gpus_per_run: float = 0,
        *,
        num_cpus: int | None = None,
        logs: LogOptions | None = None,
    ) -> None:
        if not importable("ray"):
            raise RayUnavailableError("--executor ray needs Ray: pip install 'archscale[ray]'")
        if type(num_cpus_per_run) is not int or num_cpus_per_run < 1:  # bools are not counts
            raise RayExecutorError(f"num_cpus_per_run: must be an integer ≥ 1, got {num_cpus_per_run!r}")
        if type(num_gpus_per_run) not in (int, float) or num_gpus_per_run < 0:
            raise RayExecutorError(
                f"num_gpus_per_run: must be a number ≥ 0 (a fraction shares a GPU), got {num_gpus_per_run!r}"
            )
        if num_cpus is not None and address is not None:
            raise RayExecutorError("num_cpus: only for a local instance; leave it out when giving an address")
        self.address, self.num_cpus = address, num_cpus
        self.num_cpus_per_run, self.num_gpus_per_run = num_cpus_per_run, num_gpus_per_run
        # runs sharing a GPU (a fraction) each plan their memory within their share of it
        self.train_options = TrainOptions(
            device_share=min(1.0, num_gpus_per_run) if num_gpus_per_run > 0 else 1.0
        )
        self.logs = logs

    def execute(
        self,
        runs: Sequence[RunConfig],
        run_root: Path,
        coordinator: Coordinator,
        branches: Mapping[str, Branch] | None = None,
    ) -> None:
        """Each run as its own task; cooldown ``branches`` are trained in full here (their tasks may land on
        nodes that do not share the trunk's disk), which gives the same numbers at the full cost."""
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=self.num_cpus)
        try:
            self._check_resources([node["Resources"] for node in ray.nodes() if node["Alive"]])
            self._execute(ray, runs, run_root, coordinator)
        finally:
            if started:
                ray.shutdown()

    def _check_resources(self, nodes: list[dict[str, float]]) -> None:
        """A run needing more than any one node has would wait forever: fail before submitting anything."""
        for name, need in (("CPU", self.num_cpus_per_run), ("GPU", self.num_gpus_per_run)):
            largest = max((node.get(name, 0) for node in nodes), default=0)
            if need > largest:
                raise RayExecutorError(
                    f"num_{name.lower()}s_per_run={need:g}: the largest Ray node has {largest:g} {name}s, "
                    f"so no run could be scheduled; lower it or add a bigger node"
                )

    def _execute(self, ray: Any, runs: Sequence[RunConfig], run_root: Path, coordinator: Coordinator) -> None:
        from ray.util.queue import Queue

        events = Queue()
        task = ray.remote(num_cpus=self.num_cpus_per_run, num_gpus=self.num_gpus_per_run)(_run_task)
        device = "cuda" if self.num_gpus_per_run > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per task
        run_ids = {
            task.remote(
                run.to_dict(), str(run_dir_for(run_root, run)), run.run_id, events, self.num_cpus_per_run,
                device, self.logs, self.train_options,
            ): run.run_id
            for run in runs
        }  # fmt: skip
        pending = list(run_ids)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
                # A task's events were all queued before it returned, so draining now keeps them ahead
                # of its result (a late "started" would otherwise mark a finished run as running).
                for run_id, kind, payload in events.get_nowait_batch(events.qsize()):
                    coordinator.event(run_id, kind, payload)
                for ref in done:
                    coordinator.result(_result(ray, ref, run_ids[ref]))
        finally:
            for ref in pending:  # interrupted: stop the rest; their checkpoints remain for the next driver
                ray.cancel(ref, force=True)
            events.shutdown()


def _result(ray: Any, ref: Any, run_id: str) -> dict[str, Any]:
    """The task's result; a task Ray could not finish (its worker died) becomes a ``failed`` run."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:
        return {"run_id": run_id, "status": "failed", "message": f"Ray task failed: {err}"}
