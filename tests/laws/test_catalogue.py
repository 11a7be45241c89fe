"""The published-law catalogue, Table 1 regeneration and plans chaining laws."""

from __future__ import annotations

import re

import pytest
from laws_helpers import with_noise

from archscale.laws.catalogue import CATALOGUE, PF_DAY, published, table1_rows
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import WangLaw
from archscale.laws.plan import make_plan
from archscale.laws.table1 import format_table1, table1


def test_every_entry_has_a_source_units_and_consistent_allocation():
    assert len({e.key for e in CATALOGUE}) == len(CATALOGUE)
    for entry in CATALOGUE:
        assert re.search(r"et al\. 20\d\d", entry.source) and entry.units and entry.formulas, entry.key
        if entry.allocation is not None:  # C ∝ N·D forces alpha_N + alpha_D = 1
            assert sum(entry.allocation) == pytest.approx(1.0, abs=1e-9), entry.key
    with_batch = [e for e in CATALOGUE if any(law.target == "batch_size" for law in e.laws)]
    assert [e.key for e in with_batch] == ["kaplan2020", "deepseek2024", "minicpm2024", "steplaw2025"]
    assert all("B tokens" in e.units for e in with_batch)  # tokens, not sequences


def test_transcribed_numbers_are_mutually_consistent():
    deepseek = {law.target: law for law in published("deepseek2024").laws}
    for compute in (1e20, 1e23):  # M_opt·D_opt = C: 0.1715 × 5.8316 = 1.0001 and 0.5243 + 0.4757 = 1
        point = {"compute": [compute]}
        product = deepseek["model_scale"].predict(point)[0] * deepseek["tokens"].predict(point)[0]
        assert product == pytest.approx(compute, rel=2e-4)
    hoffmann = published("chinchilla-approach3")
    assert hoffmann.laws[0].derived_["alpha_N"] == pytest.approx(hoffmann.allocation[0], abs=0.01)
    kaplan_compute = next(law for law in published("kaplan2020").laws if law.inputs == ("compute",))
    c_c = kaplan_compute.coefficients_["lambda"] ** (1 / 0.050)  # back to C_c, in FLOPs
    assert c_c == pytest.approx(3.1e8 * PF_DAY) and PF_DAY == 8.64e19


def test_table1_has_the_papers_rows_then_the_users_fits(wang_grid):
    published_only = table1()
    expected = [
        ("OpenAI (OpenWebText2)", 0.27, 0.73),
        ("Chinchilla (MassiveText)", 0.51, 0.49),
        ("DeepSeek (OpenWebText2)", 0.422, 0.578),
        ("Dense Model", 0.493, 0.507),
        ("MoE Model", 0.410, 0.590),
    ]
    assert (
        list(published_only[["architecture", "alpha_D", "alpha_N"]].itertuples(index=False, name=None))
        == expected
    )
    assert [e.table1_label for e in table1_rows()] == [row[0] for row in expected]

    law = WangLaw(bootstrap=30).fit(with_noise(wang_grid, 0.01, seed=0))
    extended = table1({"our MoE": law})
    row = extended.iloc[-1]
    assert row.architecture == "our MoE" and row.alpha_N == pytest.approx(law.derived_["alpha_N"])
    assert (row.alpha_N_lo, row.alpha_N_hi) == law.intervals_["alpha_N"]
    text = format_table1(extended)
    assert "| MoE Model | 0.410 | 0.590 |" in text
    assert f"| our MoE | {row.alpha_D:.3f} [{row.alpha_D_lo:.3f}, {row.alpha_D_hi:.3f}]" in text
    with pytest.raises(LawDataError, match="Table 1 needs a chinchilla/wang law"):
        table1({"lr": published("minicpm2024").laws[0]})


def test_plan_chains_allocation_then_hyperparameter_laws():
    laws = [("chinchilla-approach3", published("chinchilla-approach3").laws[0])]
    laws += [("steplaw2025", law) for law in published("steplaw2025").laws]
    laws += [("minicpm2024", law) for law in published("minicpm2024").laws]
    plan = make_plan(1e21, laws).to_dict()
    n, d = plan["N_opt"], plan["D_opt"]
    assert plan["size"] == "params" and 6 * n * d == pytest.approx(1e21)
    assert plan["lr"] == pytest.approx(1.79 * n**-0.713 * d**0.307)
    assert plan["batch_size"] == pytest.approx(0.58 * d**0.571)  # Step Law comes first, so it gives B
    assert plan["unused"] == ["minicpm2024 (batch_size): already given by steplaw2025"]
    assert abs(plan["numeric_check"]["rel_diff"]) < 1e-6
    assert plan["loss"] == pytest.approx(406.4 / n**0.34 + 410.7 / d**0.28 + 1.69)


def test_plan_from_deepseek_allocation_laws_alone():
    plan = make_plan(1e22, [("deepseek2024", law) for law in published("deepseek2024").laws]).to_dict()
    assert plan["size"] == "model_scale"
    assert plan["N_opt"] == pytest.approx(0.1715 * 1e22**0.5243)
    assert plan["batch_size"] == pytest.approx(0.2920 * 1e22**0.3271)
    assert plan["lr"] == pytest.approx(0.3118 * 1e22**-0.1250)
    assert plan["loss"] is None


def test_a_given_lr_takes_the_place_of_the_lr_law():
    """An LR given to the plan (a μP ladder's transferred optimum) is the plan's LR with its source and
    interval; DeepSeek's lr(C) is then unused, its batch size still chained; an open interval is left out."""
    laws = [("deepseek2024", law) for law in published("deepseek2024").laws]
    plan = make_plan(1e22, laws, given={"lr": (0.016, "mup transfer", [0.01, 0.02])}).to_dict()
    assert plan["lr"] == 0.016 and plan["sources"]["lr"] == "mup transfer"
    assert plan["intervals"]["lr"] == [0.01, 0.02]
    assert plan["batch_size"] == pytest.approx(0.2920 * 1e22**0.3271)
    assert plan["unused"] == ["deepseek2024 (lr): already given by mup transfer"]
    open_ended = make_plan(1e22, laws, given={"lr": (0.016, "mup transfer", [0.01, None])}).to_dict()
    assert "lr" not in open_ended["intervals"]


def test_plan_with_a_bootstrapped_fit_has_intervals(wang_grid):
    law = WangLaw(bootstrap=30).fit(with_noise(wang_grid, 0.01, seed=0))
    plan = make_plan(1e21, [("fit", law)], experts=8).to_dict()
    assert set(plan["intervals"]) >= {"N_opt", "D_opt", "loss"}
    lo, hi = plan["intervals"]["loss"]
    assert lo <= plan["loss"] <= hi


def test_plan_refuses_without_an_allocation():
    with pytest.raises(LawDataError, match="no law given yields N_opt and D_opt"):
        make_plan(1e21, [("minicpm2024", published("minicpm2024").laws[0])])
    with pytest.raises(LawDataError, match="no published law 'gpt5'"):
        published("gpt5")
