"""Progress of a sweep: bars on a terminal; in a file or a pipe, whole lines at a steady pace instead of the
carriage-return fragments a bar writes there."""

from __future__ import annotations

import io

from archscale.store import ResultsStore
from archscale.sweeps.executor import Coordinator
from archscale.training.run_config import RunConfig


def _run() -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": "dense-100k",
            "tokens": 10 * 4 * 64,
            "batch_size": 4,
            "lr": 1e-3,
            "seq_len": 64,
            "model_name": "m",
        }
    )


def _drive(coordinator: Coordinator, run: RunConfig) -> None:
    coordinator.event(run.run_id, "started", {"step": 0, "steps": 10})
    for step in (3, 6):
        row = {
            "step": step,
            "tokens": step * 256,
            "loss": 3.0 - step / 10,
            "lm_loss": 3.0 - step / 10,
            "lr": 1e-3,
        }
        coordinator.event(
            run.run_id, "progress", {"rows": [row], "step": step, "loss": row["loss"], "tokens_per_s": 1e4}
        )
    coordinator.result({"run_id": run.run_id, "status": "failed", "message": "stopped by the test"})
    coordinator.close()


def test_without_a_terminal_progress_is_plain_lines(tmp_path):
    run, stream = _run(), io.StringIO()
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(run)
        _drive(Coordinator(store, [run], stream=stream, log_every=0.0), run)
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text  # no bar redraws, no cursor movement
    lines = text.splitlines()
    assert lines[0].startswith("sweep: 0/1 runs done") and "running: m D=2.6e+03 B=4" in lines[0]
    assert any(line.endswith("step 6/10 loss 2.400") for line in lines)
    assert lines[-1] == "sweep: 1/1 runs done (0 diverged, 1 failed)"


def test_lines_come_at_most_every_log_every_seconds_and_never_when_asked_for_no_progress(tmp_path):
    run = _run()
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(run)
        paced, quiet = io.StringIO(), io.StringIO()
        _drive(Coordinator(store, [run], stream=paced, log_every=3600.0), run)
        _drive(Coordinator(store, [run], stream=quiet, progress=False), run)
    assert paced.getvalue().splitlines() == [
        "sweep: 1/1 runs done (0 diverged, 1 failed)"
    ]  # the closing line only
    assert quiet.getvalue() == ""


def test_a_sweep_with_every_run_already_done_prints_no_empty_progress_line(tmp_path):
    """Re-running a finished sweep: no "sweep: 0/0 runs done" before its summary line."""
    run, stream = _run(), io.StringIO()
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.add_run(run)
        coordinator = Coordinator(store, [run], stream=stream, log_every=0.0)
        coordinator.summary.skipped = 1  # as run_sweep sets it for a run the store holds as finished
        coordinator.close()
    assert stream.getvalue() == ""
