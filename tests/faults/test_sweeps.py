"""Sweeps under fire: Ctrl-C to the whole process group, a damaged checkpoint, a store that fills up mid-way.
Each ends in one line; runs are marked as what happened to them; a re-run gives the uninterrupted numbers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore
from archscale.sweeps import load_spec
from archscale.training import checkpoint

ARCHSCALE = [sys.executable, "-m", "archscale.cli.main"]


def _spec(tmp_path: Path, corpus) -> Path:
    spec = {
        "name": "faults", "dataset": str(corpus.path), "seq_len": 64, "micro_batch_size": 4,
        "eval": {"tokens_per_subset": 2048}, "checkpoint_every_steps": 5,
        "grid": [{"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 40], "batch_sizes": [8],
                  "lrs": [2e-3, 4e-3]}],
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _sweep(spec: Path, store: Path, *extra: str) -> list[str]:
    return ["sweep", "run", str(spec), "--store", str(store), "--no-progress", *extra]


def _finals(store: Path) -> dict[str, float]:
    with ResultsStore(store, read_only=True) as results:
        return results.curve().groupby("run_id")["lm_loss"].last().to_dict()


@pytest.fixture(scope="module")
def reference(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    spec = _spec(root, tiny_corpus)
    result = CliRunner().invoke(app, _sweep(spec, root / "ref.sqlite", "--workers", "0"))
    assert result.exit_code == 0, result.output
    return _finals(root / "ref.sqlite")


def test_ctrl_c_is_one_line_marks_runs_interrupted_and_a_rerun_resumes(tiny_corpus, tmp_path, reference):
    spec, store = _spec(tmp_path, tiny_corpus), tmp_path / "s.sqlite"
    command = [*ARCHSCALE, *_sweep(spec, store, "--workers", "2")]
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # Ctrl-C once both workers have checkpointed a run mid-way
        time.sleep(0.2)
        if len(list((tmp_path / "s-runs").glob("*/checkpoint.pt"))) >= 2:
            break
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), err
    assert "re-run the same command to resume" in lines[0]
    with ResultsStore(store, read_only=True) as results:
        statuses = results.runs().set_index("run_id")["status"].to_dict()
    assert "interrupted" in statuses.values() and "running" not in statuses.values(), statuses
    rerun = CliRunner().invoke(app, _sweep(spec, store, "--workers", "2"))
    assert rerun.exit_code == 0, rerun.output
    assert _finals(store) == reference


def test_a_damaged_checkpoint_fails_its_run_with_the_reason_and_restarts_when_asked(
    tiny_corpus, tmp_path, reference
):
    spec, store = _spec(tmp_path, tiny_corpus), tmp_path / "s.sqlite"
    victim = load_spec(spec).expand()[0].run_id
    (tmp_path / "s-runs" / victim).mkdir(parents=True)
    (tmp_path / "s-runs" / victim / checkpoint.STATE_FILE).write_bytes(os.urandom(4096))
    first = CliRunner().invoke(app, _sweep(spec, store, "--workers", "0"))
    assert first.exit_code == 1
    error = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"{victim}: checkpoint" in error[0] and "unreadable" in error[0], first.stderr
    listing = CliRunner().invoke(app, ["runs", "list", "--store", str(store), "--status", "failed"])
    assert listing.exit_code == 0
    rows = [line for line in listing.output.splitlines() if victim in line]
    assert len(rows) == 1 and "unreadable" in rows[0] and "--restart-bad-checkpoints" in rows[0]
    assert sorted(_finals(store)) == sorted(set(reference) - {victim})  # the others finished
    again = CliRunner().invoke(app, _sweep(spec, store, "--workers", "0", "--restart-bad-checkpoints"))
    assert again.exit_code == 0, again.output
    assert (tmp_path / "s-runs" / victim / "checkpoint.pt.bad").exists()
    assert _finals(store) == reference


def test_a_store_that_fills_up_mid_sweep_is_one_line_and_keeps_finished_runs(
    tiny_corpus, tmp_path, monkeypatch, reference
):
    spec, store = _spec(tmp_path, tiny_corpus), tmp_path / "s.sqlite"
    original = ResultsStore.add_curve

    def fill_up(self, run_id, rows):
        if self.finished_ids():  # one run is recorded in full, then the disk is full
            with self._writing():
                raise sqlite3.OperationalError("database or disk is full")
        original(self, run_id, rows)

    monkeypatch.setattr(ResultsStore, "add_curve", fill_up)
    result = CliRunner().invoke(app, _sweep(spec, store, "--workers", "0"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {store}: cannot write the results store"), lines
    monkeypatch.setattr(ResultsStore, "add_curve", original)
    with ResultsStore(store, read_only=True) as results:
        finished = results.finished_ids()
    assert len(finished) == 1
    assert {run_id: reference[run_id] for run_id in finished} == {r: _finals(store)[r] for r in finished}
    rerun = CliRunner().invoke(app, _sweep(spec, store, "--workers", "0"))
    assert rerun.exit_code == 0, rerun.output
    assert _finals(store) == reference
