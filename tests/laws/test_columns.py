"""Reading users' tables: CSV or Parquet, with a column mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archscale.laws import alpha_N_gain, published_alpha_N_gain
from archscale.laws.base import registered_laws
from archscale.laws.columns import COLUMNS, parse_mapping, read_table
from archscale.laws.errors import LawDataError
from archscale.laws.power import PowerLaw


def test_every_column_a_law_reads_is_in_the_contract():
    """The contract documents what users must name their columns: every input and target of every law in
    its default configuration must be in it (a law reading an undocumented column would fail for users)."""
    read = set()
    for cls in registered_laws().values():
        law = cls() if cls is not PowerLaw else PowerLaw(target="batch_size", inputs=("loss",))
        read |= {*law.inputs, law.target}
    read |= {"run_id"}  # the bootstrap's unit
    assert read <= set(COLUMNS), read - set(COLUMNS)
    assert all(COLUMNS[name] for name in read)  # each with its description


def test_mapping_renames_and_wins_over_an_existing_column(tmp_path):
    frame = pd.DataFrame(
        {"params": [1.0, 2.0], "dense_parameter_count": [3.0, 4.0], "loss_validation": [2.5, 2.4]}
    )
    frame.to_csv(tmp_path / "runs.csv", index=False)
    frame.to_parquet(tmp_path / "runs.parquet")
    mapping = parse_mapping(["params=dense_parameter_count", " loss = loss_validation "])
    assert mapping == {"params": "dense_parameter_count", "loss": "loss_validation"}
    for name in ("runs.csv", "runs.parquet"):
        table = read_table(tmp_path / name, mapping)
        assert sorted(table.columns) == ["loss", "params"]
        assert table["params"].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("items", "needle"),
    [(["params"], "COLUMN=YOUR_COLUMN"), (["a=b", "a=c"], "names 'a' twice"), (["=x"], "got")],
)
def test_bad_mappings_are_refused(items, needle):
    with pytest.raises(LawDataError, match=needle):
        parse_mapping(items)


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(LawDataError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "runs.json").write_text("{}")
    with pytest.raises(LawDataError, match=r"expected a \.csv"):
        read_table(tmp_path / "runs.json")
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(LawDataError, match=r"--map refers to column\(s\) \['n'\] that the table lacks"):
        read_table(tmp_path / "runs.csv", {"params": "n"})


def test_the_papers_16_37_percent_is_its_table1_alpha_N_ratio():
    """Wang et al.: "MoE Models demonstrate an approximate 16.37 % improvement in data utilization" — exactly
    α_N(MoE) / α_N(dense) − 1 of its Table 1 (0.590 / 0.507 − 1 = 0.16371…), read from the catalogue."""
    assert round(published_alpha_N_gain(), 4) == 0.1637
    assert alpha_N_gain(np.array([0.590, 0.507]), 0.507) == pytest.approx([0.590 / 0.507 - 1, 0.0])
