"""All analyses together: on a study built to agree with the paper, and on a real results store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from archscale.analysis import SUPPORTED, from_store
from archscale.store import ResultsStore


def test_a_study_built_like_the_paper_supports_every_claim(analyses):
    verdicts = {row.measure.split(" at ")[0]: row for row in analyses.verdicts.rows}
    assert [row.verdict for row in analyses.verdicts.rows] == [SUPPORTED] * 5
    assert verdicts["B_opt MoE ÷ dense"].effect == pytest.approx(0.6, abs=0.02)
    assert verdicts["lr_opt MoE ÷ dense"].effect == pytest.approx(1.5, abs=0.03)
    assert verdicts["α_N(MoE) − α_N(dense)"].effect == pytest.approx(0.0833, abs=0.02)
    payload = json.loads(json.dumps(analyses.to_dict(), allow_nan=False))
    assert set(payload) == {"loss_law", "allocation", "hyperparams", "noise", "generalisation", "verdicts"}
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
