"""The results store's SQLite schema: runs, per-step curves, evals and free-form run metadata.

The version lives in ``PRAGMA user_version``; a file written by a newer archscale is refused rather than
misread. Column lists here are the single source for inserts and for validating row keys.

What each scale column counts, in which unit, and which law column it becomes is written once in
:mod:`archscale.quantities` (``store_quantity("runs", "P_active")``); the SQL comments below are short
reminders of it, kept as they were because a store's ``sqlite_master`` records them. Note ``batch_size``:
sequences per step here, tokens per step (this table's ``batch_tokens``) in the laws; and ``P`` and
``P_active`` exclude the token embedding and LM head (``P_total`` counts them).
"""

from __future__ import annotations

SCHEMA_VERSION = 2  # 2: status 'interrupted' (a run stopped by Ctrl-C; re-running resumes it)
STATUSES: tuple[str, ...] = ("queued", "running", "finished", "diverged", "failed", "interrupted")

RUN_COLUMNS: tuple[str, ...] = (
    "run_id", "config", "model_name", "kind", "n_experts", "top_k", "N", "P", "P_active", "P_total", "D", "C",
    "batch_size", "batch_tokens", "seq_len", "lr", "seed", "schedule", "dataset", "status", "diverged_step",
    "message", "created", "updated", "wall_time", "sweep",
)  # fmt: skip
CURVE_COLUMNS: tuple[str, ...] = (
    "run_id", "step", "tokens", "flops", "loss", "lm_loss", "aux_loss", "lr", "grad_norm", "tokens_per_s",
    "wall_time", "noise_scale", "expert_fraction",
)  # fmt: skip
EVAL_COLUMNS: tuple[str, ...] = (
    "run_id", "step", "tokens", "split", "subset", "loss", "bits_per_byte", "n_tokens", "n_bytes",
)  # fmt: skip

DDL = f"""
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    config        TEXT NOT NULL,              -- RunConfig.to_dict() as canonical JSON
    model_name    TEXT,
    kind          TEXT NOT NULL CHECK (kind IN ('dense', 'moe')),
    n_experts     INTEGER NOT NULL,
    top_k         INTEGER NOT NULL,
    N             REAL NOT NULL,              -- model scale: training FLOPs per token
    P             INTEGER NOT NULL,           -- non-embedding parameters (all experts)
    P_active      INTEGER NOT NULL,           -- non-embedding parameters one token uses
    P_total       INTEGER NOT NULL,
    D             INTEGER NOT NULL,           -- trained tokens
    C             REAL NOT NULL,              -- N * D
    batch_size    INTEGER NOT NULL,           -- sequences per step
    batch_tokens  INTEGER NOT NULL,           -- tokens per step
    seq_len       INTEGER NOT NULL,
    lr            REAL NOT NULL,              -- peak learning rate
    seed          INTEGER NOT NULL,
    schedule      TEXT NOT NULL,
    dataset       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
    diverged_step INTEGER,
    message       TEXT,
    created       TEXT NOT NULL,              -- ISO 8601, UTC
    updated       TEXT NOT NULL,
    wall_time     REAL,                       -- seconds of training
    sweep         TEXT                        -- the sweep that first added the run
);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE curve (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step            INTEGER NOT NULL,         -- optimiser steps done
    tokens          INTEGER,                  -- tokens seen
    flops           REAL,                     -- training FLOPs spent
    loss            REAL,                     -- the objective: lm_loss + aux_loss
    lm_loss         REAL,                     -- next-token cross-entropy, nats/token
    aux_loss        REAL,                     -- MoE auxiliary losses (weighted)
    lr              REAL,
    grad_norm       REAL,                     -- before clipping
    tokens_per_s    REAL,
    wall_time       REAL,
    noise_scale     REAL,                     -- B_simple, in the units the trainer used
    expert_fraction TEXT,                     -- JSON: per MoE layer, the share of tokens per expert
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE evals (
    run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step          INTEGER NOT NULL,
    tokens        INTEGER,
    split         TEXT NOT NULL,
    subset        TEXT NOT NULL DEFAULT 'all',
    loss          REAL,                       -- nats/token
    bits_per_byte REAL,
    n_tokens      INTEGER,
    n_bytes       INTEGER,
    PRIMARY KEY (run_id, step, split, subset)
) WITHOUT ROWID;
CREATE TABLE run_meta (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,                     -- JSON
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
PRAGMA user_version = {SCHEMA_VERSION};
"""


def runs_table_ddl(name: str = "runs") -> str:
    """The ``CREATE TABLE`` statement of the runs table, under ``name`` (a migration builds it aside)."""
    start = DDL.index("CREATE TABLE runs (")
    statement = DDL[start : DDL.index(");", start) + 1]
    return statement.replace("CREATE TABLE runs (", f"CREATE TABLE {name} (", 1)


MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (  # a CHECK constraint cannot be altered: rebuild the table (sqlite.org/lang_altertable.html)
        runs_table_ddl("runs_v2"),
        "INSERT INTO runs_v2 SELECT * FROM runs",
        "DROP TABLE runs",
        "ALTER TABLE runs_v2 RENAME TO runs",
        "CREATE INDEX runs_status ON runs (status)",
        "PRAGMA user_version = 2",
    ),
}
"""Statements that take a store of schema version ``v`` to ``v + 1``, run in one transaction."""
