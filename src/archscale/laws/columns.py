"""The column contract of the laws and the reading of users' tables (CSV or Parquet)."""

from __future__ import annotations

import gzip
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archscale.laws.errors import DuplicateRowsWarning, LawDataError
from archscale.quantities import law_columns

COLUMNS: dict[str, str] = law_columns()
"""Default column names, each with its meaning (from :mod:`archscale.quantities`, which also says what the
store counts for it); other names are mapped onto these with ``--map COLUMN=YOUR_COLUMN``."""


Table = pd.DataFrame | Mapping[str, Any]
"""What a law fits on and predicts at: a DataFrame, or a mapping of column names to values."""


def numeric_column(table: Table, column: str) -> np.ndarray:
    """One column as floats. Dates, durations and booleans are refused, not converted: a date column
    would otherwise enter a law as nanoseconds since 1970, a plausible-looking token count."""
    values = np.asarray(table[column])
    if values.dtype.kind not in "iufO":
        raise LawDataError(
            f"column '{column}' holds {values.dtype} values, not numbers; write the numbers themselves into "
            f"'{column}', or map a numeric column onto it (CLI: --map {column}=YOUR_COLUMN)"
        )
    try:
        return values.astype(float, copy=False).ravel()
    except (TypeError, ValueError):
        raise LawDataError(
            f"column '{column}' must be numeric; convert or drop the non-numeric entries"
        ) from None


def positive_column(table: Table, column: str) -> np.ndarray:
    """One column as floats that may be logged; the error names the column, the row and the fix."""
    values = numeric_column(table, column)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise LawDataError(
            f"column '{column}' has {int(bad.sum())} non-positive or non-finite value(s) (first at row {first}: "
            f"{float(values[first])!r}); the laws work on logarithms, so every '{column}' must be a finite number > 0 — "
            "drop or fix those rows (dense runs count as experts = 1)"
        )
    return values


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


_UTF8_HINT = (
    "save it as UTF-8 (from Latin-1 or UTF-16: `iconv -f LATIN1 -t UTF-8` or `-f UTF-16`; a spreadsheet: "
    "'CSV UTF-8')"
)


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV (gzipped when it ends in .gz); what pandas and gzip raise becomes one line naming the fix."""
    try:
        return pd.read_csv(path)
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1].hex()
        raise LawDataError(f"--data {path}: not UTF-8 text (byte 0x{byte})", hint=_UTF8_HINT) from None
    except pd.errors.EmptyDataError:
        raise LawDataError(
            f"--data {path}: no header row (the file holds no columns)",
            hint="write a header of column names, then one row per point",
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise LawDataError(
            f"--data {path}: not a readable gzip file ({error or 'it ends early'})",
            hint="compress the CSV again (gzip FILE.csv), or pass it uncompressed as .csv",
        ) from None
    except pd.errors.ParserError as error:
        raise LawDataError(
            f"--data {path}: not a readable CSV ({error})",
            hint="separate columns by commas and give every row as many fields as the header",
        ) from None
    except OSError as error:
        raise LawDataError(
            f"--data {path}: cannot read it ({error.strerror or error})",
            hint="check the file's permissions, or pass another path",
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise LawDataError(
            f"--data {path}: not a readable Parquet file ({error})",
            hint="write it with DataFrame.to_parquet, or if it is a CSV, name it .csv",
        ) from None


def _read_file(path: Path) -> pd.DataFrame:
    """The raw table; one branch per supported format. A results store is not a table: which points it
    gives is an analysis rule (``archscale.analysis.points.law_points``), applied by ``archscale fit``."""
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise LawDataError(
            f"--data {path}: expected a .csv, .csv.gz, .parquet or .pq table "
            "or a results store (.sqlite, .db)"
        )
    if path.stat().st_size == 0:
        raise LawDataError(
            f"--data {path}: the file is empty (0 bytes)",
            hint="write the table into it: a header of column names, then one row per point",
        )
    table = _read_csv(path) if name.endswith((".csv", ".csv.gz")) else _read_parquet(path)
    if table.empty:
        raise LawDataError(
            f"--data {path}: the table has no rows (columns {list(table.columns)})",
            hint="add one row per point below the header",
        )
    return table


def _drop_duplicates(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``table`` with every row that repeats an earlier one exactly (all columns equal) dropped, and a
    warning saying how many: a table appended to itself would count each point twice and narrow every
    interval. Rows that only share a design point (seeds of one configuration) differ in their loss or run
    and stay."""
    repeated = table.duplicated()
    if not repeated.any():
        return table
    warnings.warn(
        DuplicateRowsWarning(
            f"--data {path}: dropped {int(repeated.sum())} of {len(table)} rows that repeat an earlier row "
            "exactly (every column equal), so each point counts once; if they are separate measurements, "
            "keep them with --keep-duplicates (read_table(..., keep_duplicates=True))"
        ),
        stacklevel=3,
    )
    return table[~repeated].reset_index(drop=True)


def read_table(
    path: str | Path, mapping: Mapping[str, str] | None = None, *, keep_duplicates: bool = False
) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet table, with ``mapping`` (our name → theirs) applied and exact
    duplicate rows counted once (with a :class:`DuplicateRowsWarning`) unless ``keep_duplicates``."""
    path = Path(path)
    if not path.is_file():
        raise LawDataError(f"--data {path}: no such file")
    table = _read_file(path)
    if not keep_duplicates:
        table = _drop_duplicates(table, path)
    return apply_mapping(table, mapping or {})
