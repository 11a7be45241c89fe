"""Hostile tables for ``archscale fit --data``: unreadable files and empty stores end in one line naming the
file and the fix; rows repeated exactly count once (with a warning) unless kept on purpose; dates in a
numeric column are refused instead of being read as nanoseconds."""

from __future__ import annotations

import gzip
import itertools
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.laws import DuplicateRowsWarning, LawDataError, WangLaw, read_table, registered_laws
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig

HEADER = "model_scale,tokens,experts,loss\n"
ROW = "1e9,1e10,1,2.5\n"


def _corrupt_gzip() -> bytes:
    """A valid gzip header and a stretch of zeros in the middle of its data."""
    data = bytearray(gzip.compress((HEADER + ROW * 2000).encode()))
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    return bytes(data)


TABLES: dict[str, tuple[str, bytes, str]] = {  # file name, its bytes, what the error line says besides it
    "header-only": ("runs.csv", HEADER.encode(), "the table has no rows"),
    "empty": ("runs.csv", b"", "the file is empty (0 bytes)"),
    "blank-lines": ("runs.csv", b"\n\n", "no header row"),
    "latin-1": (
        "runs.csv",
        (HEADER + ROW).replace("loss", "lo\xdf").encode("latin-1"),
        "not UTF-8 text (byte 0xdf)",
    ),
    "utf-16": ("runs.csv", (HEADER + ROW).encode("utf-16"), "not UTF-8 text (byte 0xff)"),
    "csv-named-parquet": ("runs.parquet", (HEADER + ROW).encode(), "not a readable Parquet file"),
    "truncated-gzip": (
        "runs.csv.gz",
        gzip.compress((HEADER + ROW * 50).encode())[:40],
        "not a readable gzip",
    ),
    "corrupt-gzip": ("runs.csv.gz", _corrupt_gzip(), "not a readable gzip file"),
    "not-gzip": ("runs.csv.gz", (HEADER + ROW).encode(), "not a readable gzip file"),
}


@pytest.mark.parametrize("law", sorted(registered_laws()))
@pytest.mark.parametrize("case", list(TABLES))
def test_an_unreadable_table_is_one_line_naming_the_file(
    one_line_error: Callable[..., str], tmp_path: Path, case: str, law: str
):
    name, content, says = TABLES[case]
    (tmp_path / name).write_bytes(content)
    line = one_line_error(["fit", law, "--data", name], f"--data {name}: {says}")
    assert ";" in line.split(says, 1)[1]  # the fix follows the cause


def _store(path: Path, statuses: list[str]) -> None:
    """A results store holding one dense run per status, none with a curve."""
    with ResultsStore(path) as store:
        for seed, status in enumerate(statuses):
            config = {"model": "dense-100k", "tokens": 5120, "batch_size": 8, "lr": 1e-3, "seq_len": 64}
            store.add_run(RunConfig.from_dict(config | {"seed": seed}), status=status)


@pytest.mark.parametrize(
    ("statuses", "held"), [([], "the store holds no runs"), (["failed", "queued"], "1 failed, 1 queued")]
)
def test_a_store_without_finished_runs_says_so(
    one_line_error: Callable[..., str], tmp_path: Path, statuses: list[str], held: str
):
    _store(tmp_path / "results.sqlite", statuses)
    line = one_line_error(
        ["fit", "wang", "--data", "results.sqlite"], "--data results.sqlite: no finished runs"
    )
    assert held in line and "archscale sweep run SPEC --store results.sqlite" in line


def _table(seed: int = 0) -> pd.DataFrame:
    """Curves of 12 runs (4 model scales × 3 expert counts, 5 points each) from a Wang law with a run
    effect and point noise."""
    rng = np.random.default_rng(seed)
    rows = itertools.product(np.geomspace(1e8, 1e10, 4), [1.0, 4.0, 16.0], np.geomspace(1e9, 1e11, 5))
    table = pd.DataFrame(list(rows), columns=["model_scale", "experts", "tokens"])
    table["run_id"] = [f"r{i // 5}" for i in range(len(table))]
    truth = {"A": 300.0, "B": 800.0, "alpha": 0.3, "beta": 0.32, "gamma": 0.15, "sigma": 1.7}
    effect = rng.normal(0.0, 0.01, 12)[np.arange(len(table)) // 5]
    table["loss"] = WangLaw.from_coefficients(truth).predict(table) * np.exp(
        effect + rng.normal(0.0, 0.003, len(table))
    )
    return table


def _fit(args: list[str]) -> tuple[dict, list[str]]:
    """``archscale fit`` with ``args`` and ``--json``: the payload and the stderr lines."""
    result = CliRunner().invoke(app, ["fit", "wang", *args, "--bootstrap", "40", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), [line for line in result.stderr.splitlines() if line.strip()]


def test_rows_repeated_exactly_count_once_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    table = _table()
    table.to_csv("once.csv", index=False)
    pd.concat([table, table], ignore_index=True).to_csv("twice.csv", index=False)
    once, quiet = _fit(["--data", "once.csv"])
    twice, warned = _fit(["--data", "twice.csv"])
    assert quiet == []
    assert warned == [
        "warning: --data twice.csv: dropped 60 of 120 rows that repeat an earlier row exactly (every column "
        "equal), so each point counts once; if they are separate measurements, keep them with "
        "--keep-duplicates (read_table(..., keep_duplicates=True))"
    ]
    assert twice["n_points"] == 60
    assert twice["intervals"] == once["intervals"] and twice["coefficients"] == once["coefficients"]

    kept, none = _fit(["--data", "twice.csv", "--keep-duplicates"])
    assert none == [] and kept["n_points"] == 120
    width = {name: hi - lo for name, (lo, hi) in once["intervals"].items()}
    assert kept["intervals"]["beta"][1] - kept["intervals"]["beta"][0] < width["beta"]  # what was at stake


def test_read_table_drops_exact_repeats_only(tmp_path: Path):
    table = _table()
    seeds = pd.concat([table, _table(seed=1).assign(run_id=table["run_id"] + "-seed1")], ignore_index=True)
    seeds.to_csv(tmp_path / "seeds.csv", index=False)  # each design point twice, with its own loss and run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_table(tmp_path / "seeds.csv")) == 120

    pd.concat([table, table.iloc[:7]], ignore_index=True).to_csv(tmp_path / "some.csv", index=False)
    with pytest.warns(DuplicateRowsWarning, match="dropped 7 of 67 rows"):
        deduplicated = read_table(tmp_path / "some.csv")
    pd.testing.assert_frame_equal(deduplicated, pd.read_csv(tmp_path / "some.csv").iloc[:60])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_table(tmp_path / "some.csv", keep_duplicates=True)) == 67


def test_keep_duplicates_is_refused_for_a_store(one_line_error: Callable[..., str], tmp_path: Path):
    _store(tmp_path / "results.sqlite", ["finished"])
    one_line_error(
        ["fit", "wang", "--data", "results.sqlite", "--keep-duplicates"], "--keep-duplicates applies to a CSV"
    )


def test_a_date_in_a_numeric_column_is_refused(one_line_error: Callable[..., str], tmp_path: Path):
    table = _table().assign(tokens=pd.date_range("2026-01-01", periods=60, freq="D"))
    table.to_parquet(tmp_path / "runs.parquet")
    line = one_line_error(["fit", "wang", "--data", "runs.parquet"], "column 'tokens' holds datetime64")
    assert "--map tokens=YOUR_COLUMN" in line
    with pytest.raises(LawDataError, match="column 'experts' holds bool values, not numbers"):
        WangLaw().fit(_table().assign(experts=True))
