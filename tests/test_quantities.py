"""One vocabulary from the store to the laws (archscale.quantities): every law column and every store column
the law points read has one entry, and the law points carry the store's values under the laws' names —
batch size in tokens, not sequences."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from archscale.analysis.points import law_points
from archscale.laws import JointMoELaw, published
from archscale.laws.columns import COLUMNS
from archscale.quantities import QUANTITIES, law_columns, law_names, quantity, store_quantity
from archscale.store.schema import CURVE_COLUMNS, DDL, EVAL_COLUMNS, RUN_COLUMNS

TABLES = {"runs": RUN_COLUMNS, "curve": CURVE_COLUMNS, "evals": EVAL_COLUMNS}


def test_every_law_column_has_one_entry_and_every_entry_a_column():
    laws = [q.law for q in QUANTITIES if q.law is not None]
    assert len(laws) == len(set(laws))
    assert set(laws) == set(COLUMNS)
    assert law_columns() == COLUMNS
    assert all(text.strip() for text in COLUMNS.values())
    keys = [q.key for q in QUANTITIES]
    assert len(keys) == len(set(keys))
    for q in QUANTITIES:
        assert q.symbol and q.unit and q.definition, q.key


def test_store_names_are_the_schemas_columns_and_each_has_one_quantity():
    seen: set[str] = set()
    for q in QUANTITIES:
        for name in q.store:
            table, _, column = name.partition(".")
            assert column in TABLES[table], name
            assert name not in seen, name
            seen.add(name)


@pytest.mark.parametrize(
    ("table", "column", "law"),
    [
        ("runs", "N", "model_scale"),
        ("runs", "n_experts", "experts"),
        ("runs", "P", "params"),
        ("runs", "P_active", "active_params"),
        ("runs", "batch_tokens", "batch_size"),
        ("runs", "lr", "lr"),
        ("runs", "D", "tokens"),
        ("runs", "C", "compute"),
        ("curve", "tokens", "tokens"),
        ("curve", "lm_loss", "loss"),
        ("curve", "step", "step"),
    ],
)
def test_the_store_columns_the_law_points_read_map_to_the_laws_names(table, column, law):
    assert store_quantity(table, column).law == law
    assert law_names(table, column) == {column: law}


def test_store_columns_without_a_law_column_are_refused_not_passed_through():
    for column in ("batch_size", "P_total", "seq_len"):
        assert store_quantity("runs", column).law is None
        with pytest.raises(KeyError):
            law_names("runs", column)


def test_units_say_sequences_in_the_store_and_tokens_in_the_laws():
    assert quantity("batch_sequences").store == ("runs.batch_size",)
    assert quantity("batch_sequences").unit == "sequences"
    assert quantity("batch_tokens").unit == "tokens"
    assert "tokens" in COLUMNS["batch_size"] and "sequences" in COLUMNS["batch_size"]
    comment = {line.split()[0]: line.partition("--")[2].strip() for line in DDL.splitlines() if "--" in line}
    assert comment["batch_size"] == "sequences per step"
    assert comment["batch_tokens"] == "tokens per step"


def test_active_parameters_say_which_embedding_convention_each_side_uses():
    comment = {line.split()[0]: line.partition("--")[2].strip() for line in DDL.splitlines() if "--" in line}
    assert comment["P_active"].startswith("non-embedding")
    assert re.search(r"embedding.*excluded", quantity("active_params").definition)
    assert "ludziejewski2025" in COLUMNS["active_params"]
    assert "including the embedding" in published("ludziejewski2025").units
    doc = " ".join((JointMoELaw.__doc__ or "").split())
    assert "P_active" in doc and "embedding and unembedding" in doc


def _store_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    config = {
        "a-dense": {"model": {"n_experts": 1, "top_k": 1, "granularity": 1}},
        "b-moe": {"model": {"n_experts": 8, "top_k": 2, "granularity": 2}},
    }
    runs = pd.DataFrame(
        {
            "run_id": ["a-dense", "b-moe", "c-failed"],
            "kind": ["dense", "moe", "dense"],
            "status": ["finished", "finished", "failed"],
            "n_experts": [1, 8, 1],
            "N": [6.0e6, 3.0e6, 1.0e6],
            "P": [1_000_000, 4_000_000, 150_000],
            "P_active": [1_000_000, 500_000, 150_000],
            "P_total": [1_200_000, 4_300_000, 200_000],
            "D": [2048, 4096, 1024],
            "C": [6.0e6 * 2048, 3.0e6 * 4096, 1.0e6 * 1024],
            "batch_size": [8, 16, 8],  # sequences
            "seq_len": [128, 128, 128],
            "batch_tokens": [1024, 2048, 1024],  # tokens
            "lr": [1e-3, 2e-3, 4e-3],
            "config": [json.dumps(config[r]) for r in ("a-dense", "b-moe", "a-dense")],
        }
    )
    curve = pd.DataFrame(
        {
            "run_id": ["a-dense", "a-dense", "b-moe", "b-moe", "b-moe", "c-failed"],
            "step": [1, 2, 1, 2, 3, 1],
            "tokens": [1024, 2048, 2048, 4096, 6144, 1024],
            "lm_loss": [4.0, 3.5, 4.2, 3.9, np.nan, 5.0],
        }
    )
    return runs, curve


def test_law_points_carry_the_store_values_under_the_laws_names():
    runs, curve = _store_tables()
    points = law_points(runs, curve, rule="final")
    expected = pd.DataFrame(
        {
            "run_id": ["a-dense", "b-moe"],
            "kind": ["dense", "moe"],
            "model_scale": [6.0e6, 3.0e6],
            "experts": [1.0, 8.0],
            "tokens": [2048.0, 4096.0],
            "loss": [3.5, 3.9],
            "params": [1_000_000, 4_000_000],
            "active_params": [1_000_000, 500_000],  # P_active: non-embedding
            "batch_size": [1024, 2048],  # batch_tokens, not the 8 and 16 sequences
            "lr": [1e-3, 2e-3],
            "granularity": [1.0, 2.0],
            "sparsity": [0.0, 0.75],
            "compute": [6.0e6 * 2048, 3.0e6 * 4096],
        }
    )
    pd.testing.assert_frame_equal(points, expected, check_dtype=False)
    assert points["batch_size"].tolist() != runs["batch_size"].iloc[:2].tolist()
