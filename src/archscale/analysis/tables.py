"""The table a fit reads from what ``--data`` names: a CSV or Parquet table row by row, or a results store's
law points (the rule the report fits), per-step curves (whole-curve laws) or evaluated checkpoints
(the two-step chain). Errors name the option at fault (``--data``, ``--points``, ``--kind``…) and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from archscale.analysis.curve_tables import store_step_table
from archscale.analysis.downstream_chain import ladder_points
from archscale.analysis.errors import AnalysisError
from archscale.analysis.points import POINT_RULES, check_one_corpus, law_points, points_rule, store_runs
from archscale.laws.columns import apply_mapping, parse_mapping, read_table
from archscale.laws.errors import LawDataError
from archscale.store import ResultsStore, StoreError

STORE_SUFFIXES: tuple[str, ...] = (".sqlite", ".db")


def is_store(path: Path) -> bool:
    """Whether ``path`` names a results store (by its suffix) rather than a table."""
    return path.name.lower().endswith(STORE_SUFFIXES)


def law_table(
    path: Path,
    mapping: list[str] | None,
    points: str | None = None,
    kind: str | None = None,
    allow_mixed_corpora: bool = False,
    keep_duplicates: bool = False,
) -> tuple[pd.DataFrame, str | None]:
    """The table ``--data`` names, with ``--map`` applied, and the points rule used (None for a table): a
    CSV or Parquet file row by row (exact duplicate rows once, unless ``keep_duplicates``), or a results
    store's law points by the ``--points`` rule (``auto``, the points the report fits, when not given),
    optionally of one family (``kind``)."""
    if points is not None and points not in ("auto", *POINT_RULES):
        rules = ", ".join(map(repr, ("auto", *POINT_RULES)))
        raise LawDataError(f"--points must be one of {rules}, got {points!r}")
    renames = parse_mapping(mapping or [])
    if kind not in (None, "dense", "moe"):
        raise LawDataError(f"--kind must be 'dense' or 'moe', got {kind!r}")
    if not is_store(path):
        for flag, value in (("--points", points), ("--kind", kind)):
            if value is not None:
                raise LawDataError(
                    f"{flag} applies to a results store (.sqlite, .db); {path} is a table whose rows are "
                    f"fitted as given: drop {flag}, or pass the store"
                )
        return read_table(path, renames, keep_duplicates=keep_duplicates), None
    if keep_duplicates:
        raise LawDataError(
            f"--keep-duplicates applies to a CSV or Parquet table; {path} is a results store, whose law points "
            "never repeat: drop --keep-duplicates"
        )
    try:
        with ResultsStore(path, read_only=True) as store:
            runs = store_runs(store)
            if not (runs["status"] == "finished").any():
                held = ", ".join(f"{n} {status}" for status, n in runs["status"].value_counts().items())
                raise LawDataError(
                    f"--data {path}: no finished runs to fit (the store holds {held or 'no runs'})",
                    hint=f"train some into it (`archscale sweep run SPEC --store {path}`); "
                    f"`archscale runs list --store {path}` says why runs stopped",
                )
            check_one_corpus(runs[runs["status"] == "finished"], allow_mixed_corpora)
            rule = points_rule(runs, points or "auto")
            table = law_points(runs, store.curve(), rule=rule)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    if kind is not None:
        table = table[table["kind"] == kind].reset_index(drop=True)
        if table.empty:
            raise LawDataError(f"--data {path}: no finished {kind} runs; drop --kind or train some")
    return apply_mapping(table, renames), rule


def curve_table(
    path: Path, model: str | None, kind: str | None = None, *, sizes: bool = False
) -> pd.DataFrame:
    """A results store's runs as a per-step table for the whole-curve laws: of one model, or with ``sizes``
    (a law across model sizes) of every model of one family (``kind``)."""
    try:
        with ResultsStore(path, read_only=True) as store:
            table = store_step_table(store, kind=kind)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    models = sorted(table["model"].astype(str).unique())
    if sizes:
        if model is not None:
            raise LawDataError(
                "--model: a law across model sizes reads every size of a family; pass --kind instead"
            )
        if kind is None and table["kind"].nunique() > 1:
            raise LawDataError(f"--data {path} holds dense and MoE runs; a ladder is one family: pass --kind")
        return table
    if model is None and len(models) > 1:
        raise LawDataError(
            f"--data {path} holds runs of {len(models)} models ({', '.join(models)}); a whole-curve law "
            "describes one: pass --model NAME"
        )
    if model is not None:
        if model not in models:
            raise LawDataError(f"--model {model}: no runs of it in {path}; it holds {', '.join(models)}")
        table = table[table["model"] == model]
    return table.reset_index(drop=True)


def checkpoint_table(
    path: Path, mapping: list[str] | None, kind: str | None, keep_duplicates: bool
) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """The checkpoint table ``--data`` names and each task's chance accuracy (known for a store only)."""
    if not is_store(path):
        if kind is not None:
            raise LawDataError(f"--kind applies to a results store; {path} is a table: drop --kind")
        return read_table(path, parse_mapping(mapping or []), keep_duplicates=keep_duplicates), {}
    try:
        with ResultsStore(path, read_only=True) as store:
            points, chances = ladder_points(store, kind)
    except (AnalysisError, StoreError) as error:
        raise LawDataError(f"--data {path}: {error}") from error
    return apply_mapping(points, parse_mapping(mapping or [])), chances
