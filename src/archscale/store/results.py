"""The results store: one SQLite file holding every run's config, status, training curve and evals.

SQLite in WAL mode, written by one process (the sweep coordinator; workers return results to it) and
readable by any number of others while a sweep runs. Every committed write survives ``kill -9`` of the
writer. Values always go through bound parameters; column names come only from ``schema``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from archscale.errors import ArchscaleError
from archscale.paths import write_atomic
from archscale.store.schema import (
    CURVE_COLUMNS,
    DDL,
    EVAL_COLUMNS,
    MIGRATIONS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    STATUSES,
)

DERIVED_KEYS: tuple[str, ...] = ("N", "P", "P_active", "P_total", "D", "C")
FINAL_STATUSES: tuple[str, ...] = ("finished", "diverged")
EXPORT_TABLES: tuple[str, ...] = ("runs", "curve", "evals", "run_meta")
_OPEN_TIMEOUT_S = 30.0  # how long opening waits for a store another process is writing or setting up


class StorableRun(Protocol):
    """What the store records of a run (``archscale.training.RunConfig`` is one). A protocol, not an import,
    so that opening a store loads no training code (nor torch)."""

    @property
    def run_id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def derived(self) -> dict[str, float]: ...


class StoreError(ArchscaleError):
    """The store cannot do what was asked; the message names the run, field or file and the fix."""


class StoreWriteError(StoreError):
    """The store could not be written (a full disk, a read-only filesystem): a failure, not a mistake."""

    exit_code = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """NumPy values to Python ones (sqlite3 cannot bind ``np.int64``); NaN is stored as NULL."""
    if isinstance(value, np.generic):
        return value.item()
    return value.tolist() if isinstance(value, np.ndarray) else value


def _given(**filters: Any) -> dict[str, Any]:
    """The filters that were given (None here means "any", not IS NULL)."""
    return {k: v for k, v in filters.items() if v is not None}


def run_root_for(store: str | Path) -> Path:
    """Run directories live beside the results store: ``results.sqlite`` -> ``results-runs/RUN_ID/``.

    Stores that differ only in their suffix (``x.sqlite``, ``x.db``) share ``x-runs/``, so the training lock
    is keyed on this folder, not on the store file."""
    return Path(store).with_name(Path(store).stem + "-runs")


class ResultsStore:
    """Runs, curves and evals of any number of sweeps in one SQLite file at ``path``.

    ``create=False`` opens an existing store only, so that a mistyped path is refused instead of becoming a
    new, empty store; ``read_only=True`` (for commands that only read) also never writes, so a store on a
    read-only filesystem or one another process is writing can be read.
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if (read_only or not create) and not self.path.is_file():
            raise StoreError(
                f"{self.path}: no results store there; check the path, or train into it first "
                "(`archscale sweep run SPEC --store PATH`)"
            )
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"{self.path}: cannot create its folder ({err.strerror}); pass a writable --store"
                ) from None
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                self._conn = self._connect()
                break
            except sqlite3.DatabaseError as err:
                # SQLite answers "busy" without waiting while another connection sets up or tears down the
                # WAL files (sqlite.org/wal.html, "Sometimes queries return SQLITE_BUSY"): a passing state,
                # so opening is retried for as long as a busy writer would be waited for.
                code = getattr(err, "sqlite_errorcode", 0) & 0xFF
                if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
                    raise StoreWriteError(
                        f"{self.path}: cannot open the results store ({err})",
                        hint="free space on that filesystem, or pass a --store on a writable one",
                    ) from None
                if code != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: not an SQLite results store ({err}); pass a new or existing store path"
                    ) from err
                time.sleep(0.05)
        if not read_only:
            self._conn.isolation_level = ""  # back to sqlite3's implicit transactions for every write below
            self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across process crashes
            self._conn.execute("PRAGMA foreign_keys = ON")

    def _connect(self) -> sqlite3.Connection:
        """A connection to the store in WAL mode, its tables created if the file is new (or upgraded if an
        older archscale wrote it); ``StoreError`` if the file cannot be opened as a store. Read-only: the
        file opened with ``mode=ro``, nothing created or upgraded. The connection is closed if this raises."""
        if self.read_only:
            conn = self._open_read_only()
        else:
            conn = sqlite3.connect(self.path, timeout=_OPEN_TIMEOUT_S, isolation_level=None)
        try:
            if self.read_only:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                problem = self._schema_problem(version, tables)
                if problem is None and version == 0:
                    problem = f"{self.path}: an empty file, not a results store; pass the path of a store"
                if problem is not None:
                    raise StoreError(problem)
                return conn
            conn.execute("PRAGMA journal_mode = WAL")
            # One process at a time reads the schema and, for a new file, creates it: two commands opening a
            # new store at once must not both create its tables. (Foreign keys are still off here, so an
            # upgrade that rebuilds the runs table does not cascade into the curves.)
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            problem = self._schema_problem(version, tables)
            if problem is None and version == 0:
                for statement in filter(str.strip, DDL.split(";")):
                    conn.execute(statement)
            elif problem is None:
                for old in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[old]:
                        conn.execute(statement)
            conn.execute("ROLLBACK" if problem else "COMMIT")
            if problem is not None:
                raise StoreError(problem)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        """A read-only connection. Reading a WAL-mode store needs its ``-shm`` file, which SQLite cannot
        create in a read-only folder; there no writer can be adding to a WAL either, so when there is no
        ``-wal`` file the store file alone is the whole store and is opened as immutable."""
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=_OPEN_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA user_version")
            return conn
        except sqlite3.OperationalError:
            conn.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() or os.access(self.path.parent, os.W_OK):
                raise
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)

    def _schema_problem(self, version: int, tables: list[str]) -> str | None:
        """Why this file cannot be opened as a store (None when it can)."""
        if version > SCHEMA_VERSION:
            return (
                f"{self.path}: written with store schema version {version}, but this archscale reads up to "
                f"version {SCHEMA_VERSION}; upgrade archscale to open it"
            )
        if version == 0 and tables:
            return (
                f"{self.path}: an SQLite file that is not an archscale store (tables {tables}); "
                "pass a new path for the store"
            )
        return None

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def writing_runs(self) -> Iterator[None]:
        """Hold the store's one training slot while a sweep trains into it (``STEM-runs.lock`` beside it).

        Two sweeps on one store, or on two stores that share a run folder (``x.sqlite``, ``x.db``), would each
        train unfinished runs into the same run directories; the second one is refused instead, naming the
        process that holds the slot. The lock is the operating
        system's (``flock``), so it is released when that process ends, even by ``kill -9``.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: no lock to take
            yield
            return
        root = run_root_for(self.path)
        lock = root.with_name(root.name + ".lock")
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StoreError(
                    f"{self.path}: {holder} is training runs into this store; wait for it to finish "
                    "(re-running the same command then resumes or skips its runs), or pass another --store"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"archscale (pid {os.getpid()}, `{' '.join(sys.argv[:4])}`, since {_now()})")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction; a full disk or a store that cannot be written becomes one clear error
        (SQLite rolls the transaction back, so what was committed before is intact)."""
        try:
            with self._conn:
                yield
        except sqlite3.DatabaseError as err:
            if not isinstance(err, sqlite3.OperationalError):
                raise self._damaged(err) from None
            raise StoreWriteError(
                f"{self.path}: cannot write the results store ({err}); everything recorded before is intact",
                hint="free space on that filesystem (or make it writable) and re-run the same command to resume",
            ) from None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------------
    def add_run(
        self,
        run: StorableRun,
        derived: Mapping[str, float] | None = None,
        status: str = "queued",
        sweep: str | None = None,
    ) -> str:
        """Record a run (a no-op if its ``run_id`` is already stored); returns the ``run_id``.

        ``derived`` is ``run.derived()`` (computed when omitted); the columns come from ``run.to_dict()``.
        """
        derived = run.derived() if derived is None else derived
        missing = [k for k in DERIVED_KEYS if k not in derived]
        if missing:
            raise StoreError(f"derived: missing {missing}; pass run.derived() or leave derived out")
        self._check_status(status)
        config, now = run.to_dict(), _now()
        model = config["model"]
        row = {
            "run_id": run.run_id,
            "config": json.dumps(config, sort_keys=True),
            "model_name": config.get("model_name") or model["name"],
            "kind": model["kind"],
            "n_experts": model["n_experts"],
            "top_k": model["top_k"],
            **{k: _plain(derived[k]) for k in DERIVED_KEYS},
            "batch_size": config["batch_size"],
            "batch_tokens": config["batch_size"] * config["seq_len"],
            "seq_len": config["seq_len"],
            "lr": config["lr"],
            "seed": config["seed"],
            "schedule": config["schedule"],
            "dataset": config["dataset"],
            "status": status,
            "created": now,
            "updated": now,
            "sweep": sweep,
        }
        columns = [c for c in RUN_COLUMNS if c in row]
        with self._writing():
            self._conn.execute(
                f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                "ON CONFLICT (run_id) DO NOTHING",
                [row[c] for c in columns],
            )
        return run.run_id

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        diverged_step: int | None = None,
        message: str | None = None,
        wall_time: float | None = None,
    ) -> None:
        """Move a run to ``status``; ``diverged_step`` and ``message`` are replaced, ``wall_time`` kept if None."""
        self._check_status(status)
        with self._writing():
            cur = self._conn.execute(
                "UPDATE runs SET status = ?, diverged_step = ?, message = ?, wall_time = COALESCE(?, wall_time), "
                "updated = ? WHERE run_id = ?",
                (status, _plain(diverged_step), message, _plain(wall_time), _now(), run_id),
            )
        if cur.rowcount == 0:
            raise self._unknown(run_id)

    def add_curve(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store training-curve rows (one per step); a step logged again replaces the earlier row."""
        self._insert(
            "curve", CURVE_COLUMNS, run_id, rows, required=("step",), json_columns=("expert_fraction",)
        )

    def add_evals(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store eval rows (``subset`` defaults to ``"all"``); replaces rows with the same step/split/subset."""
        rows = [{"subset": "all", **row} for row in rows]
        self._insert("evals", EVAL_COLUMNS, run_id, rows, required=("step", "split"), json_columns=())

    def set_meta(self, run_id: str, key: str, value: Any) -> None:
        """Attach a JSON-serialisable value to a run under ``key`` (e.g. downstream eval results)."""
        self._require_run(run_id)
        with self._writing():
            self._conn.execute(
                "INSERT OR REPLACE INTO run_meta (run_id, key, value) VALUES (?, ?, ?)",
                (run_id, key, json.dumps(value, sort_keys=True)),
            )

    def _insert(
        self,
        table: str,
        columns: Sequence[str],
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        required: Sequence[str],
        json_columns: Sequence[str],
    ) -> None:
        self._require_run(run_id)
        allowed = set(columns) - {"run_id"}
        values = []
        for i, row in enumerate(rows):
            unknown = sorted(set(row) - allowed)
            if unknown:
                raise StoreError(
                    f"{table} row {i}: unknown column(s) {unknown}; valid columns are {sorted(allowed)}"
                )
            absent = [c for c in required if row.get(c) is None]
            if absent:
                raise StoreError(f"{table} row {i}: missing {absent}")
            record = {"run_id": run_id, **{k: _plain(v) for k, v in row.items()}}
            for c in json_columns:
                if record.get(c) is not None:
                    record[c] = json.dumps(record[c])
            values.append([record.get(c) for c in columns])
        with self._writing():
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                values,
            )

    # ---- reading ---------------------------------------------------------------------------------
    def status(self, run_id: str) -> str | None:
        """The run's status, or None if the store does not hold it."""
        rows = self._rows("SELECT status FROM runs WHERE run_id = ?", (run_id,))
        return rows[0][0] if rows else None

    def finished_ids(self, *, include_diverged: bool = True) -> set[str]:
        """Runs that reached their end. Diverged runs count by default: re-running one repeats it exactly."""
        statuses = FINAL_STATUSES if include_diverged else ("finished",)
        query = f"SELECT run_id FROM runs WHERE status IN ({', '.join('?' * len(statuses))})"
        return {r[0] for r in self._rows(query, statuses)}

    def config(self, run_id: str) -> dict[str, Any]:
        """The run's stored configuration (``RunConfig.to_dict()``)."""
        rows = self._rows("SELECT config FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise self._unknown(run_id)
        return json.loads(rows[0][0])

    def meta(self, run_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT key, value FROM run_meta WHERE run_id = ? ORDER BY key", (run_id,))
        return {key: json.loads(value) for key, value in rows}

    def runs(self, **filters: Any) -> pd.DataFrame:
        """Runs as a DataFrame; ``filters`` match columns exactly (a list/tuple/set value means any of them)."""
        unknown = sorted(set(filters) - set(RUN_COLUMNS))
        if unknown:
            raise StoreError(
                f"runs filter: unknown column(s) {unknown}; valid columns are {list(RUN_COLUMNS)}"
            )
        return self._select("runs", filters, order="created, run_id")

    def curve(self, run_id: str | None = None) -> pd.DataFrame:
        """Training curves (all runs when ``run_id`` is None), ``expert_fraction`` parsed from JSON."""
        frame = self._select("curve", _given(run_id=run_id), order="run_id, step")
        frame["expert_fraction"] = [
            json.loads(v) if isinstance(v, str) else None for v in frame["expert_fraction"]
        ]
        return frame

    def evals(
        self, run_id: str | None = None, *, split: str | None = None, subset: str | None = None
    ) -> pd.DataFrame:
        """Eval rows, optionally of one run, split and subset (``"all"`` is the token-weighted total)."""
        filters = _given(run_id=run_id, split=split, subset=subset)
        return self._select("evals", filters, order="run_id, step, split, subset")

    def export(self, out_dir: str | Path, fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
        """Write runs, curves, evals and run metadata as ``out_dir/<table>.<fmt>`` (JSON columns as text)."""
        if fmt not in ("parquet", "csv"):
            raise StoreError(f"fmt: must be 'parquet' or 'csv', got {fmt!r}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for table in EXPORT_TABLES:
            frame = self._frame(f"SELECT * FROM {table}", [])
            path = out / f"{table}.{fmt}"
            if fmt == "parquet":
                write_atomic(path, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
            else:
                write_atomic(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
            paths.append(path)
        return paths

    # ---- helpers ---------------------------------------------------------------------------------
    def _frame(self, query: str, params: Iterable[Any]) -> pd.DataFrame:
        try:
            return pd.read_sql_query(query, self._conn, params=list(params))
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:  # damaged pages show when read
            raise self._damaged(err) from None

    def _rows(self, query: str, params: Sequence[Any]) -> list[tuple]:
        try:
            return self._conn.execute(query, params).fetchall()
        except sqlite3.DatabaseError as err:
            raise self._damaged(err) from None

    def _damaged(self, err: Exception) -> StoreError:
        return StoreError(
            f"{self.path}: the results store is damaged ({err})",
            hint="restore it from a copy, or salvage what is readable with `sqlite3 STORE .recover | sqlite3 NEW`",
        )

    def _select(self, table: str, filters: Mapping[str, Any], *, order: str) -> pd.DataFrame:
        """``SELECT *`` with equality filters (a collection: any of its values; None: IS NULL)."""
        clauses, params = [], []
        for column, value in filters.items():
            if isinstance(value, list | tuple | set | frozenset):
                clauses.append(f"{column} IN ({', '.join('?' * len(value))})")
                params.extend(_plain(v) for v in value)
            elif value is None:
                clauses.append(f"{column} IS NULL")
            else:
                clauses.append(f"{column} = ?")
                params.append(_plain(value))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._frame(f"SELECT * FROM {table}{where} ORDER BY {order}", params)

    def _require_run(self, run_id: str) -> None:
        if self.status(run_id) is None:
            raise self._unknown(run_id)

    def _unknown(self, run_id: str) -> StoreError:
        return StoreError(
            f"run_id: no run {run_id!r} in {self.path}",
            hint=f"`archscale runs list --store {self.path}` lists its runs (code: add one with add_run)",
        )

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise StoreError(f"status: must be one of {list(STATUSES)}, got {status!r}")
