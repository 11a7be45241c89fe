"""The column contract of the laws and the reading of users' tables (CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from archscale.laws.errors import LawDataError

COLUMNS: dict[str, str] = {
    "run_id": "run identifier (bootstrap resamples whole runs)",
    "params": "P, number of parameters",
    "model_scale": "N, non-embedding FLOPs per token (model scale)",
    "active_params": "N_act, parameters one token uses (MoE; all of them for a dense model)",
    "tokens": "D, training tokens",
    "experts": "E, number of experts (dense = 1)",
    "granularity": "G, MoE granularity: dense feed-forward width / expert width (coarse experts = 1)",
    "sparsity": "S = (E - K)/E, the share of experts a token does not use (dense = 0)",
    "compute": "C, training compute in FLOPs",
    "loss": "loss in nats per token",
    "batch_size": "batch size, in tokens for the published laws",
    "lr": "peak learning rate",
}
"""Default column names; other names are mapped onto these with ``--map COLUMN=YOUR_COLUMN``."""


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["params=dense_parameter_count", …]`` → ``{"params": "dense_parameter_count", …}``."""
    mapping: dict[str, str] = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise LawDataError(f"--map takes COLUMN=YOUR_COLUMN (e.g. params=n_params), got {item!r}")
        if ours.strip() in mapping:
            raise LawDataError(f"--map names '{ours.strip()}' twice")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def apply_mapping(table: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Rename the user's columns onto archscale's (``mapping``: our name → theirs); a mapping wins over a
    column that already carries the default name."""
    absent = sorted(theirs for theirs in mapping.values() if theirs not in table)
    if absent:
        raise LawDataError(
            f"--map refers to column(s) {absent} that the table lacks; it has {list(table.columns)}"
        )
    sources = set(mapping.values())
    replaced = [ours for ours in mapping if ours in table and ours not in sources]
    return table.drop(columns=replaced).rename(columns={theirs: ours for ours, theirs in mapping.items()})


def _read_file(path: Path) -> pd.DataFrame:
    """The raw table; one branch per supported format. A results store is not a table: which points it
    gives is an analysis rule (``archscale.analysis.curves.law_points``), applied by ``archscale fit``."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    raise LawDataError(
        f"--data {path}: expected a .csv, .csv.gz, .parquet or .pq table "
        "(for a results store, build the points with archscale.analysis.curves.law_points)"
    )


def read_table(path: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet table, with ``mapping`` (our name → theirs) applied."""
    path = Path(path)
    if not path.is_file():
        raise LawDataError(f"--data {path}: no such file")
    return apply_mapping(_read_file(path), mapping or {})
