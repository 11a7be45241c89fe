"""The coordinator turns workers' events into typed ones that the store's recorder and the display both
receive, in the same order; the executors' option errors say how to fix them."""

from __future__ import annotations

import io

import pytest

from archscale.errors import ArchscaleError
from archscale.store import ResultsStore
from archscale.sweeps.executor import Coordinator, LocalExecutor
from archscale.sweeps.progress import (
    ProgressDisplay,
    RunEnded,
    RunEvaluated,
    RunInterrupted,
    RunProgressed,
    RunStarted,
    StoreRecorder,
)
from archscale.training.run_config import RunConfig

RUN = RunConfig.from_dict({"model": "dense-100k", "tokens": 10 * 4 * 64, "batch_size": 4, "lr": 1e-3,
                           "seq_len": 64, "model_name": "m"})  # fmt: skip
ROW = {"step": 6, "tokens": 6 * 256, "loss": 2.4, "lm_loss": 2.4, "lr": 1e-3}
EVAL = {"step": 6, "tokens": 6 * 256, "split": "test", "subset": "all", "loss": 2.5, "n_tokens": 10,
        "n_bytes": 10, "bits_per_byte": 3.6}  # fmt: skip


class Spy:
    """Passes each event on to ``listener`` and keeps it."""

    def __init__(self, listener) -> None:
        self.listener, self.seen = listener, []

    def handle(self, event) -> None:
        self.seen.append(event)
        self.listener.handle(event)


def _coordinator(store, stream) -> tuple[Coordinator, Spy, Spy]:
    coordinator = Coordinator(store, [RUN], stream=stream, log_every=0.0)
    recorder, state, display = coordinator.listeners
    assert isinstance(recorder, StoreRecorder) and isinstance(display, ProgressDisplay)
    spies = Spy(recorder), Spy(display)
    coordinator.listeners = [spies[0], state, spies[1]]
    return coordinator, *spies


def test_the_recorder_and_the_display_receive_the_same_typed_events(tmp_path) -> None:
    stream = io.StringIO()
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(RUN)
        coordinator, recorder, display = _coordinator(store, stream)
        coordinator.event(RUN.run_id, "started", {"step": 0, "steps": 10})
        coordinator.event(RUN.run_id, "progress", {"step": 6, "steps": 10, "loss": 2.4, "tokens_per_s": 1e4,
                                                   "rows": [ROW]})  # fmt: skip
        coordinator.event(RUN.run_id, "evals", {"rows": [EVAL]})
        coordinator.event(RUN.run_id, "checkpoint", {"step": 6})  # a kind the sweep does not follow
        coordinator.result(
            {"run_id": RUN.run_id, "status": "failed", "message": "Traceback ...\nOSError: disk"}
        )
        coordinator.close()
        assert (
            recorder.seen
            == display.seen
            == [
                RunStarted(RUN.run_id, 0, 10),
                RunProgressed(RUN.run_id, 6, 2.4, 1e4, [ROW]),
                RunEvaluated(RUN.run_id, [EVAL]),
                RunEnded(RUN.run_id, "failed", message="Traceback ...\nOSError: disk"),
            ]
        )
        assert store.curve(RUN.run_id)["lm_loss"].tolist() == [2.4]  # the recorder wrote what it received
        assert store.evals(RUN.run_id)["loss"].tolist() == [2.5]
        assert store.status(RUN.run_id) == "failed"
    assert (
        coordinator.summary.failed == [RUN.run_id]
        and coordinator.summary.reasons[RUN.run_id] == "OSError: disk"
    )
    lines = stream.getvalue().splitlines()  # the display printed what it received
    assert any(line.endswith("running: m D=2.6e+03 B=4 lr=0.001 step 6/10 loss 2.400") for line in lines)
    assert lines[-1] == "sweep: 1/1 runs done (0 diverged, 1 failed)"


def test_an_interrupt_records_where_each_training_run_stopped(tmp_path) -> None:
    """The step of the last progress event, not the step the run started at."""
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(RUN)
        coordinator, recorder, display = _coordinator(store, io.StringIO())
        coordinator.event(RUN.run_id, "started", {"step": 2, "steps": 10})
        coordinator.event(
            RUN.run_id, "progress", {"step": 6, "loss": 2.4, "tokens_per_s": 1e4, "rows": [ROW]}
        )
        assert coordinator.interrupt() == [RUN.run_id]
        assert recorder.seen[-1] == display.seen[-1] == RunInterrupted(RUN.run_id, 6, 10)
        assert store.status(RUN.run_id) == "interrupted"
        assert (
            store.runs()
            .set_index("run_id")
            .loc[RUN.run_id, "message"]
            .startswith("interrupted at step 6 of 10")
        )
        assert coordinator.interrupt() == []  # nothing is training any more


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"workers": 0}, "give at least one worker process"), ({"threads": 0}, "give each worker a thread"),
     ({"devices": ()}, "give at least one, e.g. 'cpu' or 'cuda:0'")],
)  # fmt: skip
def test_executor_settings_that_cannot_work_are_refused_with_a_hint(kwargs, hint) -> None:
    with pytest.raises(ArchscaleError) as caught:
        LocalExecutor(**kwargs)
    assert caught.value.hint == hint
