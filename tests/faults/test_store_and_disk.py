"""Stores and filesystems that fight back: damaged pages, empty files, read-only and full filesystems, two
stores sharing a run folder, a store that fills up mid-sweep. Each ends in one line, nothing recorded lost."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore, StoreError
from archscale.store.results import StoreWriteError
from archscale.training.run_config import RunConfig


def _run(lr: float = 1e-3) -> RunConfig:
    return RunConfig.from_dict(
        {"model": "dense-100k", "tokens": 40 * 4 * 64, "batch_size": 4, "lr": lr, "seq_len": 64}
    )


def _store_with_a_finished_run(path: Path, steps: int = 40) -> str:
    run = _run()
    with ResultsStore(path) as store:
        store.add_run(run)
        store.add_curve(
            run.run_id, [{"step": s, "lm_loss": 5.0 / s, "loss": 5.0 / s} for s in range(1, steps + 1)]
        )
        store.set_status(run.run_id, "finished", wall_time=1.0)
    return run.run_id


@pytest.fixture
def tmpfs(tmp_path):
    """A small filesystem of its own (root only: skipped elsewhere); yields its mount point."""
    mount = tmp_path / "fs"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_unknown_status_filter_is_refused(one_line_error, tmp_path):
    _store_with_a_finished_run(tmp_path / "s.sqlite")
    one_line_error(["runs", "list", "--store", "s.sqlite", "--status", "bogus"], "--status")


def test_readers_never_turn_an_empty_file_into_a_store(one_line_error, tmp_path):
    (tmp_path / "empty.sqlite").write_bytes(b"")
    for args in (
        ["runs", "list"],
        ["runs", "export", "out"],
        ["report", "--out", "rep"],
        ["fit", "wang", "--data"],
    ):
        store = ["--store", "empty.sqlite"] if args[0] != "fit" else ["empty.sqlite"]
        one_line_error([*args, *store], "empty.sqlite")
    assert (tmp_path / "empty.sqlite").read_bytes() == b""


def test_damaged_pages_are_reported_not_traced(one_line_error, tmp_path):
    _store_with_a_finished_run(tmp_path / "s.sqlite", steps=2000)
    data = bytearray((tmp_path / "s.sqlite").read_bytes())
    assert len(data) > 20 * 4096
    data[4096 * 2 : 4096 * 18] = uuid.uuid4().bytes * (16 * 4096 // 16)  # pages 3-18: curve b-tree
    (tmp_path / "s.sqlite").write_bytes(bytes(data))
    one_line_error(["runs", "list", "--store", "s.sqlite"], "damaged")
    one_line_error(["report", "--store", "s.sqlite", "--out", "rep"], "s.sqlite")
    one_line_error(["fit", "wang", "--data", "s.sqlite"], "s.sqlite")


def test_a_store_on_a_read_only_filesystem_is_read(tmpfs, tmp_path, monkeypatch):
    run_id = _store_with_a_finished_run(tmpfs / "s.sqlite")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    monkeypatch.chdir(tmp_path)
    listing = CliRunner().invoke(app, ["runs", "list", "--store", str(tmpfs / "s.sqlite")])
    assert listing.exit_code == 0, listing.output
    assert run_id in listing.output and "finished" in listing.output
    exported = CliRunner().invoke(app, ["runs", "export", "out", "--store", str(tmpfs / "s.sqlite")])
    assert exported.exit_code == 0 and (tmp_path / "out" / "curve.parquet").exists()


def test_a_full_disk_is_one_line_and_keeps_what_was_committed(tmpfs):
    run_id = _store_with_a_finished_run(tmpfs / "s.sqlite")
    other = _run(lr=2e-3)
    with ResultsStore(tmpfs / "s.sqlite") as store:
        store.add_run(other)
        with pytest.raises(StoreWriteError, match=r"cannot write the results store .*disk is full"):
            for start in range(0, 10**6, 1000):  # far more than 512 kB of curve
                store.add_curve(
                    other.run_id,
                    [{"step": s, "lm_loss": 1.0, "loss": 1.0} for s in range(start, start + 1000)],
                )
    with ResultsStore(tmpfs / "s.sqlite", read_only=True) as store:
        assert len(store.curve(run_id)) == 40 and store.status(run_id) == "finished"


@pytest.mark.parametrize("command", [["runs", "export", "{fs}/out"], ["report", "--out", "{fs}/rep"]])
def test_outputs_to_a_full_disk_are_one_line_and_leave_no_partial_file(
    one_line_error, tmpfs, tmp_path, command
):
    _store_with_a_finished_run(tmp_path / "s.sqlite", steps=4000)
    (tmpfs / "filler").write_bytes(b"\0" * (500 * 1024))  # leave ~12 kB
    args = [part.format(fs=tmpfs) for part in command] + ["--store", "s.sqlite"]
    line = one_line_error(args, str(tmpfs))
    assert "No space left on device" in line or "disk is full" in line
    assert not [p for p in tmpfs.rglob("*tmp*")], "a temporary file was left behind"


@pytest.mark.parametrize("command", [["runs", "export", "{target}"], ["report", "--out", "{target}"]])
@pytest.mark.parametrize("target", ["afile", "afile/below"])
def test_outputs_onto_a_file_or_below_one_are_one_line(one_line_error, tmp_path, command, target):
    _store_with_a_finished_run(tmp_path / "s.sqlite")
    (tmp_path / "afile").write_text("keep me")
    one_line_error([part.format(target=target) for part in command] + ["--store", "s.sqlite"], "afile")
    assert (tmp_path / "afile").read_text() == "keep me"


def test_two_stores_sharing_a_run_folder_share_the_training_lock(tmp_path):
    with (
        ResultsStore(tmp_path / "x.sqlite") as first,
        first.writing_runs(),
        ResultsStore(tmp_path / "x.db") as second,
    ):
        refused = pytest.raises(StoreError, match="is training runs into this store")
        with refused, second.writing_runs():
            pass


def test_an_old_store_is_upgraded_and_keeps_its_runs(tmp_path):
    """A schema-1 store (no 'interrupted' status) gains it without losing runs, curves or metadata."""
    path = tmp_path / "old.sqlite"
    run_id = _store_with_a_finished_run(path)
    with sqlite3.connect(path) as db:  # rebuild the runs table as schema 1 had it
        ddl = db.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        db.execute("PRAGMA legacy_alter_table = ON")  # keep the curves referring to "runs"
        db.execute("ALTER TABLE runs RENAME TO runs_new")
        db.execute(ddl.replace(", 'interrupted'", ""))
        db.execute("INSERT INTO runs SELECT * FROM runs_new")
        db.execute("DROP TABLE runs_new")
        db.execute("PRAGMA user_version = 1")
    with pytest.raises(sqlite3.IntegrityError), sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET status = 'interrupted'")
    with ResultsStore(path) as store:
        store.set_status(run_id, "interrupted")
        assert store.status(run_id) == "interrupted" and len(store.curve(run_id)) == 40
        assert store._rows("PRAGMA user_version", ())[0][0] == 2
        assert store._rows("PRAGMA foreign_key_check", ()) == []


def test_fit_out_on_a_full_disk_keeps_the_previous_fit(tmpfs, tmp_path, monkeypatch):
    """The previous fit stays whole (``plan`` still reads it) instead of being truncated to what fitted."""
    from archscale.laws import WangLaw

    grid = pd.DataFrame(
        list(itertools.product(np.geomspace(1e7, 3e9, 5), np.geomspace(1e9, 1e11, 4), [1.0, 4.0, 16.0])),
        columns=["model_scale", "tokens", "experts"],
    )
    coefficients = {"A": 30.0, "B": 400.0, "alpha": 0.3, "beta": 0.3, "gamma": -0.05, "sigma": 1.7}
    grid["loss"] = WangLaw.from_coefficients(coefficients).predict(grid)
    grid.to_csv(tmp_path / "runs.csv", index=False)
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "wang", "--data", "runs.csv", "--bootstrap", "0", "--out", str(tmpfs / "fit.json")]
    assert CliRunner().invoke(app, fit).exit_code == 0
    before = (tmpfs / "fit.json").read_bytes()
    (tmpfs / "filler").write_bytes(b"\0" * (tmpfs_free(tmpfs) - 64))  # less room than the fit takes
    failed = CliRunner().invoke(app, fit)
    assert failed.exit_code == 2 and "an existing fit there is kept" in failed.stderr
    assert (tmpfs / "fit.json").read_bytes() == before
    assert not [p for p in tmpfs.iterdir() if p.name.endswith(".tmp")]
    (tmpfs / "filler").unlink()
    plan = CliRunner().invoke(app, ["plan", "--fit", str(tmpfs / "fit.json"), "--compute", "1e21"])
    assert plan.exit_code == 0, plan.output


def tmpfs_free(mount: Path) -> int:
    stats = os.statvfs(mount)
    return stats.f_bavail * stats.f_frsize
