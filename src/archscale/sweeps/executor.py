"""Run a list of training runs and record them: the coordinator plus pluggable executors.

The coordinator turns what workers send into typed events for the store's recorder (the only writer) and
the progress display (:mod:`archscale.sweeps.progress`); an executor only decides where runs execute. ``LocalExecutor`` runs K worker processes pinned to one thread each;
``InProcessExecutor`` runs them one after another in this process (debugging, tests); the Ray executor
(``archscale.sweeps.ray_executor``) sends each run to a cluster as a task. Resuming is the same for all:
finished or diverged runs are skipped, unfinished ones restart from their last checkpoint.

Cooldown branches (:mod:`archscale.training.branches`): a WSD run that is the prefix of a longer one runs
in the same task right after it, starting from the state the longer run left at its decay start; the
results store records the lineage (``store.meta(run_id)["branch"]``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch

from archscale.errors import ArchscaleError, ArchscaleRuntimeError, Interrupted
from archscale.store import ResultsStore
from archscale.store.results import run_root_for
from archscale.sweeps.progress import (
    LOG_EVERY_S,
    ProgressDisplay,
    RunEnded,
    RunInterrupted,
    StoreRecorder,
    SweepEvent,
    SweepListener,
    SweepState,
    SweepSummary,
    event_from_worker,
)
from archscale.sweeps.run_logs import LogOptions
from archscale.sweeps.spec import SpecError, order_longest_first
from archscale.sweeps.worker import limit_threads, run_one
from archscale.training import checkpoint
from archscale.training.branches import Branch, plan_branches
from archscale.training.distributed import (
    DistInfo,
    init_distributed,
    resolve_device,
    share_from_rank0,
    shutdown,
)
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig

default_run_root = run_root_for


def run_dir_for(run_root: Path, run: RunConfig) -> Path:
    return Path(run_root) / run.run_id


class Coordinator:
    """Receives workers' events and results as typed events and hands each to the sweep's listeners: the
    store's recorder, the sweep's state, and the display (:mod:`archscale.sweeps.progress`)."""

    def __init__(
        self,
        store: ResultsStore,
        runs: Sequence[RunConfig],
        *,
        progress: bool = True,
        stream: TextIO | None = None,
        log_every: float = LOG_EVERY_S,
    ) -> None:
        self.state = SweepState(SweepSummary(total=len(runs), skipped=0))
        self.summary = self.state.summary
        self.display = ProgressDisplay(
            {r.run_id: _label(r) for r in runs},
            self.state,
            progress=progress,
            stream=stream,
            log_every=log_every,
        )
        # the display reads the state, so the state hears of each event first
        self.listeners: list[SweepListener] = [StoreRecorder(store), self.state, self.display]

    def publish(self, event: SweepEvent) -> None:
        for listener in self.listeners:
            listener.handle(event)

    def event(self, run_id: str, kind: str, payload: dict[str, Any]) -> None:
        """A worker's event (``Trainer`` kinds: started, progress, evals)."""
        typed = event_from_worker(run_id, kind, payload)
        if typed is not None:
            self.publish(typed)

    def result(self, result: dict[str, Any]) -> None:
        """A worker's result dict (``run_one``)."""
        self.publish(RunEnded.from_result(result))

    def interrupt(self) -> list[str]:
        """Mark the runs that were training as interrupted (their checkpoints stay); returns their ids."""
        stopped = dict(self.state.running)
        for run_id, position in stopped.items():
            self.publish(RunInterrupted(run_id, position.step, position.steps))
        return list(stopped)

    def close(self) -> None:
        self.display.close()


@dataclass(frozen=True)
class RunTask:
    """One run as a worker receives it: its config as a dict (it crosses process boundaries), its run
    directory and id, and the cooldown branches to seed from it: step → their run directories."""

    config: dict[str, Any]
    run_dir: str
    run_id: str
    branches: dict[int, list[str]]


Task = list[RunTask]
"""Runs one worker trains in order: a run, then the cooldown branches that start from its state."""


def tasks_for(runs: Sequence[RunConfig], run_root: Path, branches: Mapping[str, Branch] | None) -> list[Task]:
    """Each run as a task, in the given order, except that a branch runs in its trunk's task right after it
    (so it starts from the state the trunk leaves at its decay start)."""
    branches = branches or {}
    present = {run.run_id for run in runs}
    of_trunk: dict[str, list[RunConfig]] = defaultdict(list)
    for run in runs:
        branch = branches.get(run.run_id)
        if branch is not None and branch.trunk_id in present:
            of_trunk[branch.trunk_id].append(run)

    def entry(run: RunConfig) -> RunTask:
        seeds: dict[int, list[str]] = defaultdict(list)
        for child in of_trunk[run.run_id]:
            seeds[branches[child.run_id].step].append(str(run_dir_for(run_root, child)))
        return RunTask(run.to_dict(), str(run_dir_for(run_root, run)), run.run_id, dict(seeds))

    queued = {child.run_id for children in of_trunk.values() for child in children}
    return [[entry(run), *map(entry, of_trunk[run.run_id])] for run in runs if run.run_id not in queued]


class Executor(Protocol):
    def execute(
        self,
        runs: Sequence[RunConfig],
        run_root: Path,
        coordinator: Coordinator,
        branches: Mapping[str, Branch] | None = None,
    ) -> None: ...


class InProcessExecutor:
    """Runs one after another in the calling process; under ``torchrun``, with every rank of the group
    training each run together (DDP: pass the rank's ``info``).

    Rank 0 decides what to train (the store says what is done) and sends the task list to the other ranks,
    so all ranks train the same runs in the same order; only rank 0 logs and reports.
    """

    def __init__(
        self,
        device: str = "cpu",
        logs: LogOptions | None = None,
        *,
        info: DistInfo | None = None,
        options: TrainOptions = TrainOptions(),
    ) -> None:
        self.device, self.logs, self.info, self.options = device, logs, info or DistInfo(), options

    def _train(self, work: list[Task], coordinator: Coordinator | None) -> None:
        logs = self.logs if coordinator is not None else LogOptions(tensorboard=False)
        for task in work:
            for job in task:
                emit = _ignore if coordinator is None else partial(coordinator.event, job.run_id)
                result = run_one(
                    job.config, job.run_dir, emit, self.device, logs, job.branches, self.info, self.options
                )
                if coordinator is not None:
                    coordinator.result(result)

    def execute(
        self,
        runs: Sequence[RunConfig],
        run_root: Path,
        coordinator: Coordinator,
        branches: Mapping[str, Branch] | None = None,
    ) -> None:
        work = tasks_for(runs, run_root, branches)
        self._train(share_from_rank0(work, self.info), coordinator)

    def follow(self) -> None:
        """On the other ranks of a ``torchrun`` group: receive rank 0's task list and train it alongside."""
        self._train(share_from_rank0(None, self.info), None)


def _ignore(_kind: str, _payload: dict[str, Any]) -> None:
    """The other ranks' events: rank 0 reports the run."""


def _worker_main(
    tasks: mp.Queue, events: mp.Queue, parent_pid: int, logs: LogOptions | None, threads: int, device: str
) -> None:
    """One worker process on one device: a GPU ``cuda:N`` is made the only one it sees, so nothing it runs
    can touch another worker's GPU; every result says which device trained it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the coordinator, which stops the workers
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    local = "cuda:0" if device.startswith("cuda:") else device
    limit_threads(threads)
    while (task := tasks.get()) is not None:
        for job in task:

            def emit(kind: str, payload: dict[str, Any], run_id: str = job.run_id) -> None:
                if (
                    os.getppid() != parent_pid
                ):  # the coordinator is gone (killed): stop, the checkpoint remains
                    os._exit(1)
                events.put((run_id, kind, payload))

            result = run_one(job.config, job.run_dir, emit, local, logs=logs, branches=job.branches)
            events.put((job.run_id, "result", result | {"device": device}))


class LocalExecutor:
    """K spawned worker processes pulling runs longest-first from a queue, ``threads`` compute threads each.

    One thread per worker is the default: on a busy 2-core box two 1-thread workers keep full speed where
    one 2-thread worker loses to OpenMP synchronisation (benchmarks/RESULTS.md, ``sweep_workers.py``).
    ``devices`` places worker i on ``devices[i % len(devices)]``: one worker per GPU of a node
    (``["cuda:0", …]``), or several per GPU where small runs leave memory (``workers`` a multiple of the
    GPUs); a run that fails on one device is recorded and the others go on.
    """

    def __init__(
        self,
        workers: int = 2,
        logs: LogOptions | None = None,
        threads: int = 1,
        devices: Sequence[str] = ("cpu",),
    ) -> None:
        if workers < 1:
            raise SpecError(f"workers: must be ≥ 1, got {workers}", hint="give at least one worker process")
        if threads < 1:
            raise SpecError(
                f"threads: must be ≥ 1 per worker, got {threads}", hint="give each worker a thread"
            )
        if not devices:
            raise SpecError("devices: no device given", hint="give at least one, e.g. 'cpu' or 'cuda:0'")
        self.workers, self.logs, self.threads, self.devices = workers, logs, threads, tuple(devices)

    def execute(
        self,
        runs: Sequence[RunConfig],
        run_root: Path,
        coordinator: Coordinator,
        branches: Mapping[str, Branch] | None = None,
    ) -> None:
        ctx = mp.get_context("spawn")
        tasks, events = ctx.Queue(), ctx.Queue()
        work = tasks_for(runs, run_root, branches)
        for task in work:
            tasks.put(task)
        n = min(self.workers, len(work))
        for _ in range(n):
            tasks.put(None)
        procs = [
            ctx.Process(
                target=_worker_main,
                args=(
                    tasks,
                    events,
                    os.getpid(),
                    self.logs,
                    self.threads,
                    self.devices[i % len(self.devices)],
                ),
                daemon=True,
            )
            for i in range(n)
        ]
        for p in procs:
            p.start()
        remaining = len(runs)
        try:
            while remaining:
                try:
                    run_id, kind, payload = events.get(timeout=5.0)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise ArchscaleRuntimeError(
                            "all sweep workers exited before finishing",
                            hint="see the log above; re-run the same command to resume from the checkpoints",
                        ) from None
                    continue
                if kind == "result":
                    coordinator.result(payload)
                    remaining -= 1
                else:
                    coordinator.event(run_id, kind, payload)
        except BaseException:  # Ctrl-C or a store that cannot be written: stop the workers now (their
            # checkpoints are kept) instead of waiting for runs whose results could not be recorded
            for p in procs:
                p.terminate()
            raise
        finally:
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()


DEFAULT_WORKERS = 2  # one single-thread worker per core of a 2-core box (benchmarks/RESULTS.md)


def executor_for(
    device: str, workers: int | None = None, threads: int = 1, gpus: int | None = None
) -> Executor:
    """The local executor for ``device``. CPU: ``workers`` processes (default 2; 0: in this process). ``cuda``
    (every visible GPU, ``gpus`` of them): one worker per GPU, or ``workers`` spread over them (a multiple
    of the GPUs puts several small runs on each); one GPU with no ``workers`` trains in this process.
    ``cuda:N``: that GPU alone, in this process. ``auto``: ``cuda`` when a GPU is visible, else ``cpu``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        chosen = DEFAULT_WORKERS if workers is None else workers
        return LocalExecutor(chosen, threads=threads) if chosen > 0 else InProcessExecutor("cpu")
    if device == "cuda":
        if gpus is None:
            gpus = torch.cuda.device_count()
        if gpus < 1:
            raise SpecError("--device cuda: no GPU is visible; use --device cpu")
        if gpus == 1 and not workers:
            return InProcessExecutor("cuda:0")
        devices = [f"cuda:{i}" for i in range(gpus)]
        return LocalExecutor(workers or gpus, threads=threads, devices=devices)
    if workers:
        raise SpecError(
            f"--workers applies to CPU runs and to --device cuda (every visible GPU); on {device} alone the runs "
            "train one at a time in this process"
        )
    try:
        one = torch.device(device)
    except RuntimeError:
        raise SpecError(f"--device {device!r} is not a device: use cpu, cuda, cuda:N or auto") from None
    if one.type == "cuda" and (one.index or 0) >= torch.cuda.device_count():
        raise SpecError(
            f"--device {device}: {torch.cuda.device_count()} GPUs are visible; use cuda:N for N below that, or cpu"
        )
    return InProcessExecutor(device)


def run_sweep(
    runs: Sequence[RunConfig],
    store: ResultsStore,
    run_root: Path,
    executor: Executor,
    *,
    sweep: str | None = None,
    progress: bool = True,
    restart_bad_checkpoints: bool = False,
) -> SweepSummary:
    """Record every run with its cooldown-branch lineage, skip those already final, run the rest
    longest-first (each branch right after its trunk), write everything back. Another sweep training into
    the same store at the same time is refused (:meth:`ResultsStore.writing_runs`), so no run trains twice.

    A run whose checkpoint is damaged or another run's fails with that reason; ``restart_bad_checkpoints``
    moves such checkpoints aside (``*.bad``) first, so the run trains from the start instead."""
    with store.writing_runs():
        branches = plan_branches(runs)
        for run in runs:
            store.add_run(run, sweep=sweep)
            if run.run_id in branches:
                store.set_meta(run.run_id, "branch", asdict(branches[run.run_id]))
        done = set(store.finished_ids())
        todo = order_longest_first([r for r in runs if r.run_id not in done])
        if restart_bad_checkpoints:
            for run in todo:
                checkpoint.set_aside_bad(run_dir_for(run_root, run), run)
        prepare_data(todo)
        coordinator = Coordinator(store, todo, progress=progress)
        coordinator.summary.total, coordinator.summary.skipped = len(runs), len(runs) - len(todo)
        try:
            executor.execute(todo, Path(run_root), coordinator, branches=branches)
        except KeyboardInterrupt:
            stopped = coordinator.interrupt()
            raise Interrupted(
                f"interrupted: {len(stopped)} runs stopped at their last checkpoint (status 'interrupted'); "
                "re-run the same command to resume"
            ) from None
        finally:
            coordinator.close()
        return coordinator.summary


def train_in_process_group(
    runs: Sequence[RunConfig],
    store_path: Path,
    *,
    device: str = "auto",
    options: TrainOptions = TrainOptions(),
    sweep: str | None = None,
    restart_bad_checkpoints: bool = False,
) -> SweepSummary | None:
    """Train ``runs`` with every rank of the ``torchrun`` group this process belongs to (or alone, without
    torchrun): rank 0 records into the store at ``store_path`` and returns the summary, the others None."""
    info = init_distributed()
    if options.shard and not info.enabled:
        raise ArchscaleError(
            "--shard: FSDP shards a model over the ranks of a torchrun group, and this process is alone",
            hint="start it with `torchrun --nproc-per-node N` (N ≥ 2) or leave --shard out",
        )
    finished = False
    try:
        executor = InProcessExecutor(resolve_device(device, info.local_rank), info=info, options=options)
        summary = None
        if info.is_main:
            with ResultsStore(store_path) as store:
                summary = run_sweep(
                    runs, store, default_run_root(store_path), executor, sweep=sweep,
                    restart_bad_checkpoints=restart_bad_checkpoints,
                )  # fmt: skip
        else:
            executor.follow()
        finished = True
        return summary
    finally:
        shutdown(info, together=finished)


def check_corpora(runs: Sequence[RunConfig]) -> None:
    """Every run's corpus exists, checked before a store is created or a run starts: a missing one raises
    :class:`~archscale.data.errors.CorpusNotFoundError`, whose one line says how to build or import it."""
    from archscale.data import load_corpus

    for dataset in sorted({r.dataset for r in runs}):
        load_corpus(dataset)


def prepare_data(runs: Sequence[RunConfig]) -> None:
    """Build tokenisers and shards once, here, before workers race to build them in parallel."""
    from archscale.data import get_shards, get_tokenizer, load_corpus

    for dataset, tokenizer in sorted({(r.dataset, r.tokenizer) for r in runs}):
        corpus = load_corpus(dataset)
        tok = get_tokenizer(tokenizer, corpus)
        for split in ("train", "test"):
            get_shards(corpus, tok, split)


def _label(run: RunConfig) -> str:
    name = run.model_name or f"{run.model.kind}-d{run.model.d_model}"
    return f"{name} D={run.tokens:.2g} B={run.batch_size} lr={run.lr:.2g}"
