"""A sweep's progress as typed events, and what follows them: the sweep's state, its record in the results
store, and its display.

Workers send ``(run_id, kind, payload)`` across a process or Ray boundary; the coordinator turns each into
one of the events below and hands it to every listener in turn, so the store's record and the terminal's
bars follow one stream, and neither knows of the other.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from tqdm.auto import tqdm

from archscale.errors import one_line
from archscale.store import FINAL_STATUSES, ResultsStore

LOG_EVERY_S = 10.0  # a progress line this often when the output is not a terminal


@dataclass(frozen=True)
class RunStarted:
    """A run began training (or resumed) at ``step`` of ``steps``."""

    run_id: str
    step: int
    steps: int


@dataclass(frozen=True)
class RunProgressed:
    """A run reached ``step``; ``rows`` are its curve rows since the last such event."""

    run_id: str
    step: int
    loss: float
    tokens_per_s: float
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class RunEvaluated:
    """A run's held-out evaluation rows at one step."""

    run_id: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class RunEnded:
    """A run's result: its final status and, when that is final, its whole curve and evals."""

    run_id: str
    status: str  # "finished", "diverged" or "failed"
    curve: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # corpus and tokeniser fingerprints, epochs
    diverged_step: int | None = None
    message: str | None = None
    wall_time: float | None = None

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> RunEnded:
        """From a worker's result dict (``RunResult`` as a dict, or a failed run's id, status and message)."""
        fields = ("curve", "evals", "data", "diverged_step", "message", "wall_time")
        return cls(result["run_id"], result["status"], **{k: result[k] for k in fields if k in result})


@dataclass(frozen=True)
class RunInterrupted:
    """The sweep was stopped while this run trained; its last checkpoint stays for a resume."""

    run_id: str
    step: int
    steps: int


SweepEvent = RunStarted | RunProgressed | RunEvaluated | RunEnded | RunInterrupted


def event_from_worker(run_id: str, kind: str, payload: Mapping[str, Any]) -> SweepEvent | None:
    """A worker's ``(kind, payload)`` event as a typed one; None for a kind the sweep does not follow."""
    if kind == "started":
        return RunStarted(run_id, payload["step"], payload["steps"])
    if kind == "progress":
        return RunProgressed(
            run_id, payload["step"], payload["loss"], payload["tokens_per_s"], payload["rows"]
        )
    if kind == "evals":
        return RunEvaluated(run_id, payload["rows"])
    return None


class SweepListener(Protocol):
    """Follows a sweep's events, each in the order the coordinator hands them out."""

    def handle(self, event: SweepEvent) -> None: ...


@dataclass
class SweepSummary:
    total: int
    skipped: int
    finished: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # failed run -> why, in one line


@dataclass
class RunPosition:
    step: int
    steps: int
    loss: float | None = None


@dataclass
class SweepState:
    """What the sweep has done: the summary of ended runs and where the training ones are."""

    summary: SweepSummary
    running: dict[str, RunPosition] = field(default_factory=dict)

    def handle(self, event: SweepEvent) -> None:
        match event:
            case RunStarted(run_id, step, steps):
                self.running[run_id] = RunPosition(step, steps)
            case RunProgressed(run_id, step, loss) if run_id in self.running:
                self.running[run_id].step, self.running[run_id].loss = step, loss
            case RunEnded(run_id, status, message=message):
                summary = self.summary
                getattr(summary, status if status in ("finished", "diverged") else "failed").append(run_id)
                if status == "failed":
                    summary.reasons[run_id] = one_line(message or "no reason recorded")
                self.running.pop(run_id, None)
            case RunInterrupted(run_id):
                self.running.pop(run_id, None)


class StoreRecorder:
    """Writes every event into the results store (the sweep's only writer)."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store

    def handle(self, event: SweepEvent) -> None:
        store = self.store
        match event:
            case RunStarted(run_id):
                store.set_status(run_id, "running")
            case RunProgressed(run_id, rows=rows):
                store.add_curve(run_id, rows)
            case RunEvaluated(run_id, rows):
                store.add_evals(run_id, rows)
            case RunEnded(run_id, status):
                if status in FINAL_STATUSES:
                    store.add_curve(run_id, event.curve)
                    store.add_evals(run_id, event.evals)
                    store.set_meta(run_id, "data", event.data)
                store.set_status(
                    run_id, status, diverged_step=event.diverged_step, message=event.message,
                    wall_time=event.wall_time,
                )  # fmt: skip
            case RunInterrupted(run_id, step, steps):
                store.set_status(
                    run_id, "interrupted",
                    message=f"interrupted at step {step} of {steps}; re-run to resume from its last checkpoint",
                )  # fmt: skip


class ProgressDisplay:
    """One bar per training run and one for the sweep on a terminal; in a file or a pipe, a plain line of
    the sweep's ``state`` every ``log_every`` seconds instead of the fragments a bar writes there."""

    def __init__(
        self,
        labels: Mapping[str, str],
        state: SweepState,
        *,
        progress: bool = True,
        stream: TextIO | None = None,
        log_every: float = LOG_EVERY_S,
    ) -> None:
        self.labels, self.state = labels, state
        self.stream = stream or sys.stderr
        self.bars_on = progress and self.stream.isatty()
        self.log_every = log_every if progress and not self.bars_on else None
        self.last_log = time.monotonic()
        self.overall = tqdm(
            total=state.summary.total,
            desc="sweep",
            unit="run",
            position=0,
            disable=not self.bars_on,
            file=self.stream,
        )
        self.bars: dict[str, tqdm] = {}

    def handle(self, event: SweepEvent) -> None:
        match event:
            case RunStarted(run_id, step, steps):
                self.bars[run_id] = tqdm(
                    total=steps, initial=step, desc=self.labels.get(run_id, run_id), unit="step",
                    position=len(self.bars) + 1, leave=False, disable=not self.bars_on, file=self.stream,
                )  # fmt: skip
            case RunProgressed(run_id, step, loss, tokens_per_s):
                bar = self.bars.get(run_id)
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:.3g}")
                self._log_line()
            case RunEnded(run_id):
                bar = self.bars.pop(run_id, None)
                if bar is not None:
                    bar.close()
                summary = self.state.summary
                self.overall.update(1)
                self.overall.set_postfix(diverged=len(summary.diverged), failed=len(summary.failed))
                self._log_line()

    def _log_line(self, force: bool = False) -> None:
        """Without a terminal: one line of the sweep's state, at most every ``log_every`` seconds."""
        if self.log_every is None or (not force and time.monotonic() - self.last_log < self.log_every):
            return
        self.last_log = time.monotonic()
        s = self.state.summary
        done = len(s.finished) + len(s.diverged) + len(s.failed)
        running = "; ".join(
            f"{self.labels.get(run_id, run_id)} step {position.step}/{position.steps}"
            + ("" if position.loss is None else f" loss {position.loss:.3f}")
            for run_id, position in self.state.running.items()
        )
        print(
            f"sweep: {done}/{s.total - s.skipped} runs done ({len(s.diverged)} diverged, {len(s.failed)} failed)"
            + (f"; running: {running}" if running else ""),
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.overall.close()
        if self.state.summary.total > self.state.summary.skipped:  # else the sweep's summary says it all
            self._log_line(force=True)
