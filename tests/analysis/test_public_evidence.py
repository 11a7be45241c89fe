"""The public evidence panel on the shipped Clark et al. 2022 curves."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from archscale.analysis import SUPPORTED
from archscale.analysis.public import clark_evidence, clark_final_table
from archscale.data.public import CLARK2022, clark2022_curves

# clark2022_routing/PROVENANCE.md, "Our own OLS fit", S-Base: n, a, b, c, d (log10, dense averaged per N).
RECORDED_S_BASE = (59, -0.0802, -0.0882, 0.0074, 1.0791)
PROVENANCE_SHA256 = "c03e7531add85e594f368d33bac4a0220280be858a7ed12d147cf73af6a3819f"


@pytest.fixture(scope="module")
def evidence():
    return clark_evidence(bootstrap=50)


def test_the_shipped_file_is_the_published_one():
    """Reading checks the shipped bytes against the SHA-256 the provenance note records (no ../shared needed)."""
    assert CLARK2022.sha256 == PROVENANCE_SHA256
    assert len(clark2022_curves()) == 5799  # PROVENANCE: 5799 rows


def test_the_shipped_file_equals_the_project_copy(shared_data):
    published = (shared_data / "clark2022_routing" / "curves.csv.gz").read_bytes()
    assert hashlib.sha256(published).hexdigest() == CLARK2022.sha256


def test_the_panel_reproduces_clarks_ols_coefficients(evidence):
    n, a, b, c, d = RECORDED_S_BASE
    assert len(clark_final_table(clark2022_curves(), "S-Base")) == n
    fitted = evidence.clark_fit["coefficients"]
    assert [fitted[k] for k in "abcd"] == pytest.approx([a, b, c, d], abs=6e-5)


def test_per_size_expert_slopes_follow_the_interaction_term(evidence):
    """Eq. 4 says the slope of log10 L in log10 E at size N is b + c·log10 N: with the recorded b and c it
    rises from −0.035 at 15M to −0.021 at 1.3B. The per-size fits must agree and shrink towards 0."""
    _, _, b, c, _ = RECORDED_S_BASE
    slopes = evidence.expert_slopes
    assert len(slopes) == 6
    for slope in slopes:
        assert slope.b == pytest.approx(b + c * math.log10(slope.params), abs=0.003)
        assert slope.lower < slope.b < slope.upper
    assert slopes[0].b < slopes[-1].b < 0


def test_the_panel_judges_the_claims_and_says_where_its_data_come_from(evidence):
    verdicts = {row.claim: row for row in evidence.verdicts}
    shrink = verdicts["The benefit of more experts shrinks with model size"]
    assert shrink.verdict == SUPPORTED and shrink.lower > 0  # c's interval excludes 0
    loss = verdicts["MoE reaches a lower test loss at equal compute"]
    assert loss.effect == pytest.approx(evidence.loss_ratio.ratio) and loss.lower <= loss.effect <= loss.upper
    alpha = verdicts["α_N(MoE) > α_N(dense): MoE should spend more of its compute on model scale"]
    if evidence.allocation.degenerate:  # a fit on a bound is marked and never judged
        assert alpha.verdict == "not tested" and "degenerate" in alpha.note
    payload = json.loads(json.dumps(evidence.to_dict(), allow_nan=False))
    assert payload["dataset"]["licence"].startswith("CC BY 4.0")
    assert "Clark" in payload["dataset"]["citation"]
