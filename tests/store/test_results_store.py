"""The SQLite results store: idempotent runs, replace-on-conflict curves, law tables, export, versioning."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from archscale.store import SCHEMA_VERSION, ResultsStore, StoreError
from archscale.training.run_config import RunConfig


def make(model: str = "dense-100k", **changes) -> RunConfig:
    base = {"model": model, "tokens": 40 * 4 * 64, "batch_size": 4, "lr": 1e-3, "seq_len": 64}
    return RunConfig.from_dict({**base, **changes})


def curve_rows(steps, loss0: float = 5.0, tokens_per_step: int = 256) -> list[dict]:
    return [
        {"step": s, "tokens": s * tokens_per_step, "loss": loss0 / s, "lm_loss": loss0 / s - 0.01, "lr": 1e-3}
        for s in steps
    ]


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "sub" / "results.sqlite") as s:
        yield s


def test_add_run_is_idempotent_and_records_derived_columns(store):
    run = make("moe-100k", micro_batch_size=2)
    assert store.add_run(run, run.derived(), sweep="s1") == run.run_id
    store.set_status(run.run_id, "finished")
    assert store.add_run(run, sweep="s2") == run.run_id  # again: nothing changes
    rows = store.runs()
    assert len(rows) == 1
    row = rows.iloc[0]
    d = run.derived()
    assert (row["status"], row["sweep"], row["kind"], row["n_experts"], row["top_k"]) == (
        "finished",
        "s1",
        "moe",
        8,
        2,
    )
    assert (row["N"], row["P"], row["P_active"], row["P_total"], row["D"], row["C"]) == (
        d["N"], d["P"], d["P_active"], d["P_total"], d["D"], d["C"],
    )  # fmt: skip
    assert (row["batch_size"], row["batch_tokens"], row["lr"], row["model_name"]) == (
        4,
        256,
        1e-3,
        "moe-100k",
    )
    assert RunConfig.from_dict(store.config(run.run_id)).run_id == run.run_id


def test_status_transitions_and_unknown_runs(store):
    run_id = store.add_run(make())
    assert store.status(run_id) == "queued" and store.status("nope") is None
    store.set_status(run_id, "running")
    store.set_status(run_id, "diverged", diverged_step=17, message="loss 9.1 at step 17", wall_time=3.5)
    row = store.runs(run_id=run_id).iloc[0]
    assert (row["status"], row["diverged_step"], row["message"], row["wall_time"]) == (
        "diverged", 17, "loss 9.1 at step 17", 3.5,
    )  # fmt: skip
    store.set_status(run_id, "running")  # a retry clears the divergence but keeps the wall time
    row = store.runs(run_id=run_id).iloc[0]
    assert row["diverged_step"] is None or math.isnan(row["diverged_step"])
    assert row["wall_time"] == 3.5
    with pytest.raises(StoreError, match="status: must be one of"):
        store.set_status(run_id, "done")
    with pytest.raises(StoreError, match=r"run_id: no run 'nope'.*add_run"):
        store.set_status("nope", "finished")
    with pytest.raises(StoreError, match=r"run_id: no run 'nope'"):
        store.add_curve("nope", curve_rows([1]))


def test_curve_rows_replace_on_conflict(store):
    run_id = store.add_run(make())
    store.add_curve(run_id, curve_rows(range(1, 6)))
    relogged = curve_rows(range(4, 8), loss0=100.0)  # a resumed run re-logs steps 4 and 5
    relogged[0]["noise_scale"] = np.float64(12.5)
    relogged[0]["step"] = np.int64(4)  # NumPy scalars are accepted
    relogged[1]["loss"] = float("nan")
    relogged[2]["expert_fraction"] = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    store.add_curve(run_id, relogged)
    curve = store.curve(run_id)
    assert list(curve["step"]) == [1, 2, 3, 4, 5, 6, 7]
    assert curve["loss"].iloc[:3].tolist() == pytest.approx([5.0, 2.5, 5 / 3])
    assert curve["loss"].iloc[3] == pytest.approx(25.0) and math.isnan(curve["loss"].iloc[4])
    assert curve["noise_scale"].iloc[3] == 12.5
    assert curve["expert_fraction"].iloc[5] == [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]
    assert curve["expert_fraction"].iloc[0] is None


def test_bad_rows_name_the_column(store):
    run_id = store.add_run(make())
    with pytest.raises(StoreError, match=r"curve row 1: unknown column\(s\) \['los'\]"):
        store.add_curve(run_id, [{"step": 1}, {"step": 2, "los": 1.0}])
    with pytest.raises(StoreError, match=r"evals row 0: missing \['split'\]"):
        store.add_evals(run_id, [{"step": 1, "loss": 1.0}])
    assert store.curve(run_id).empty  # a rejected batch writes nothing


def test_evals_meta_and_finished_ids(store):
    a, b, c = (store.add_run(make(seed=s)) for s in range(3))
    store.add_evals(a, [{"step": 10, "tokens": 2560, "split": "test", "loss": 3.0, "n_tokens": 100},
                        {"step": 10, "split": "test", "subset": "books", "loss": 3.5}])  # fmt: skip
    store.add_evals(a, [{"step": 10, "tokens": 2560, "split": "test", "loss": 2.9, "n_tokens": 100}])
    evals = store.evals(a)
    assert len(evals) == 2
    assert store.evals(a, subset="all")["loss"].tolist() == [2.9]
    store.set_status(a, "finished")
    store.set_status(b, "diverged", diverged_step=3)
    store.set_status(c, "failed", message="Traceback ...")
    assert store.finished_ids() == {a, b}
    assert store.finished_ids(include_diverged=False) == {a}
    store.set_meta(a, "downstream", {"hellaswag": 0.31})
    store.set_meta(a, "downstream", {"hellaswag": 0.32})
    assert store.meta(a) == {"downstream": {"hellaswag": 0.32}} and store.meta(b) == {}


def test_runs_filters(store):
    ids = {(m, lr): store.add_run(make(m, lr=lr)) for m in ("dense-100k", "moe-100k") for lr in (1e-3, 2e-3)}
    assert set(store.runs(kind="moe")["run_id"]) == {ids["moe-100k", 1e-3], ids["moe-100k", 2e-3]}
    assert set(store.runs(lr=[2e-3], kind="dense")["run_id"]) == {ids["dense-100k", 2e-3]}
    assert len(store.runs(sweep=None)) == 4
    with pytest.raises(StoreError, match=r"runs filter: unknown column\(s\) \['learning_rate'\]"):
        store.runs(learning_rate=1e-3)
    hostile = "x' OR '1'='1"
    assert store.runs(run_id=hostile).empty and store.status(hostile) is None  # bound, never interpolated


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_round_trips(store, tmp_path, fmt):
    run_id = store.add_run(make("moe-100k"))
    rows = curve_rows(range(1, 4))
    rows[0]["expert_fraction"] = [[0.5, 0.5]]
    store.add_curve(run_id, rows)
    store.add_evals(run_id, [{"step": 3, "split": "test", "loss": 2.0}])
    store.set_meta(run_id, "note", "hello")
    paths = store.export(tmp_path / "out", fmt=fmt)
    assert [p.name for p in paths] == [f"{t}.{fmt}" for t in ("runs", "curve", "evals", "run_meta")]
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    runs, curve, evals, meta = (read(p) for p in paths)
    assert (
        runs["run_id"].tolist() == [run_id]
        and runs["P_active"].iloc[0] == make("moe-100k").derived()["P_active"]
    )
    assert curve["loss"].tolist() == pytest.approx([5.0, 2.5, 5 / 3])
    assert curve["expert_fraction"].iloc[0] == "[[0.5, 0.5]]"  # JSON text in files
    assert evals["subset"].tolist() == ["all"] and meta["value"].tolist() == ['"hello"']
    with pytest.raises(StoreError, match="fmt:"):
        store.export(tmp_path / "x", fmt="xlsx")


def test_wal_mode_and_persistence(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as s:
        run_id = s.add_run(make())
        s.add_curve(run_id, curve_rows([1, 2]))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    with ResultsStore(path) as s:
        assert len(s.curve(run_id)) == 2


def test_committed_writes_survive_kill_9(tmp_path):
    path = tmp_path / "r.sqlite"
    code = textwrap.dedent(f"""
        import os, signal
        from archscale.store import ResultsStore
        from archscale.training.run_config import RunConfig
        s = ResultsStore({str(path)!r})
        run_id = s.add_run(RunConfig.from_dict(
            {{"model": "dense-100k", "tokens": 10240, "batch_size": 4, "lr": 1e-3, "seq_len": 64}}))
        s.add_curve(run_id, [{{"step": i, "loss": 1.0 / i}} for i in range(1, 11)])
        s.set_status(run_id, "running")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    with ResultsStore(path) as s:
        (run_id,) = s.runs()["run_id"]
        assert s.status(run_id) == "running" and list(s.curve(run_id)["step"]) == list(range(1, 11))


def test_newer_schema_and_foreign_files_are_refused(tmp_path):
    newer = tmp_path / "newer.sqlite"
    ResultsStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade archscale"):
        ResultsStore(newer)

    foreign = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError, match="not an archscale store"):
        ResultsStore(foreign)

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all, just some bytes" * 100)
    with pytest.raises(StoreError, match="not an SQLite results store"):
        ResultsStore(garbage)


def test_commands_opening_a_new_store_at_once_create_its_schema_once(tmp_path):
    """Two sweeps started together both open the new file: the schema must be created exactly once, not
    fail in the second with 'table runs already exists' (seen in CI before the creation was serialised)."""
    import multiprocessing as mp

    path = tmp_path / "new.sqlite"
    ctx = mp.get_context("spawn")
    with ctx.Pool(6) as pool:
        errors = pool.map(_open_store, [str(path)] * 12)
    assert errors == [None] * 12
    with ResultsStore(path) as store:
        assert store.runs().empty


def _open_store(path: str) -> str | None:
    try:
        ResultsStore(path).close()
    except Exception as error:  # reported back to the test, which shows it
        return repr(error)
    return None


def _busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


def test_a_store_briefly_busy_while_opened_is_waited_for_and_one_that_stays_busy_is_refused(
    tmp_path, monkeypatch
):
    """SQLite can answer 'busy' without waiting while another process creates or closes the WAL files (the
    CI failure of two sweeps opening one new store): opening retries that passing state, up to a limit."""
    from archscale.store import results

    real_connect, calls = ResultsStore._connect, []

    def busy_twice(self):
        calls.append(1)
        if len(calls) <= 2:
            raise _busy()
        return real_connect(self)

    monkeypatch.setattr(ResultsStore, "_connect", busy_twice)
    with ResultsStore(tmp_path / "s.sqlite") as store:
        assert store.runs().empty and len(calls) == 3

    def always_busy(self):
        raise _busy()

    monkeypatch.setattr(ResultsStore, "_connect", always_busy)
    monkeypatch.setattr(results, "_OPEN_TIMEOUT_S", 0.2)
    with pytest.raises(StoreError, match="database is locked"):
        ResultsStore(tmp_path / "s.sqlite")
