"""All analyses together: on a study built to agree with the paper, and on a real results store."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.analysis import SUPPORTED, AnalysisError, from_store
from archscale.cli.main import app
from archscale.report import build_report
from archscale.store import ResultsStore


def test_a_study_built_like_the_paper_supports_every_claim(analyses):
    verdicts = {row.measure.split(" at ")[0]: row for row in analyses.verdicts.rows}
    assert [row.verdict for row in analyses.verdicts.rows] == [SUPPORTED] * 5
    assert verdicts["B_opt MoE ÷ dense"].effect == pytest.approx(0.6, abs=0.02)
    assert verdicts["lr_opt MoE ÷ dense"].effect == pytest.approx(1.5, abs=0.03)
    assert verdicts["α_N(MoE) − α_N(dense)"].effect == pytest.approx(0.0833, abs=0.02)
    payload = json.loads(json.dumps(analyses.to_dict(), allow_nan=False))
    assert set(payload) == {"loss_law", "allocation", "hyperparams", "noise", "generalisation", "verdicts",
                            "alpha_identification", "fair"}  # fmt: skip
    assert payload["loss_law"]["extrapolations"]["moe"]["mean_abs_rel_error"] < 0.003


def test_from_store_reads_the_stores_columns(store):
    analyses = from_store(store, bootstrap=10)
    assert analyses.loss_law.extrapolations["dense"].skipped is None
    assert analyses.loss_law.extrapolations["dense"].mean_abs_rel_error < 0.01
    assert analyses.noise.comparison.ratio == pytest.approx(0.6, abs=0.05)
    assert analyses.generalisation.loss_ratio.ratio < 1.0
    assert analyses.hyperparams.skipped.startswith("no batch-size × LR grid")
    rows = pd.DataFrame([row.to_dict() for row in analyses.verdicts.rows])
    assert rows.loc[rows["measure"].str.startswith("B_opt"), "verdict"].item() == "not tested"
    # Eq. 5 on 4 model sizes per family leaves ~1 degree of freedom for the run-to-run noise: no calibrated
    # interval, so no verdict, and the note says how many sizes it would need.
    alpha = rows.loc[rows["measure"].str.startswith("α_N"), ["verdict", "lower", "note"]].iloc[0]
    assert alpha["verdict"] == "not tested" and pd.isna(alpha["lower"])
    assert "needs >= 5 runs at distinct inputs and this fit has 4" in alpha["note"]


def test_an_empty_store_gives_reasons_not_errors(tmp_path):
    with ResultsStore(tmp_path / "empty.sqlite") as empty:
        analyses = from_store(empty, bootstrap=10)
    assert {row.verdict for row in analyses.verdicts.rows} == {"not tested"}
    assert all(row.note for row in analyses.verdicts.rows)
    assert analyses.loss_law.skipped and analyses.noise.skipped and analyses.generalisation.skipped
    json.dumps(analyses.to_dict(), allow_nan=False)


def test_runs_on_two_corpora_are_refused_unless_allowed(store, tmp_path):
    """A store whose runs trained on two corpus builds (e.g. one rebuilt after the package index moved) is
    not analysed as one study: the refusal names both fingerprints; asked for explicitly, it is."""
    mixed = tmp_path / "mixed.sqlite"
    with sqlite3.connect(store.path) as source, sqlite3.connect(mixed) as target:
        source.backup(target)
    with ResultsStore(mixed) as results:
        for i, run_id in enumerate(sorted(results.finished_ids())):  # 8 finished runs: 3 on a, 5 on b
            results.set_meta(run_id, "data", {"corpus": "a" * 64 if i < 3 else "b" * 64, "tokenizer": "t"})
        with pytest.raises(
            AnalysisError,
            match=r"2 different corpora \((?=.*aaaaaaaaaaaa \(3 runs\))(?=.*bbbbbbbbbbbb \(5 runs\))",
        ):
            from_store(results, bootstrap=0)
        assert from_store(results, bootstrap=0, allow_mixed_corpora=True).loss_law.skipped is None
    refused = CliRunner().invoke(app, ["report", "--store", str(mixed), "--out", str(tmp_path / "r")])
    assert refused.exit_code != 0 and "different corpora" in refused.output
    fit = CliRunner().invoke(app, ["fit", "chinchilla", "--size", "model_scale", "--data", str(mixed)])
    assert fit.exit_code == 2 and "different corpora" in fit.stderr
    report = build_report(mixed, tmp_path / "allowed", bootstrap=0, public=False, allow_mixed_corpora=True)
    assert report.summary["corpus_fingerprints"] == ["a" * 64, "b" * 64]
    assert f"{'a' * 64}, {'b' * 64}" in report.index.read_text()  # shown on the page
