"""The whole-curve law across model sizes (CurveLadderLaw) and the held-out audit of curve laws."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from archscale.laws import law_class
from archscale.laws.audit import extrapolation_audit
from archscale.laws.curve_laws import CurveLadderLaw, losses_at_final_steps
from archscale.laws.errors import LawDataError
from curve_helpers import PEAK, SIZES, STEPS, TRUTH, curve_loss, eta, ladder


def test_the_ladder_law_recovers_its_coefficients_and_predicts_an_unseen_size() -> None:
    law = CurveLadderLaw().fit(ladder(SIZES[:3], ["cosine", "constant"], noise=1e-4, seed=0))
    for name, value in TRUTH.items():
        assert law.coefficients_[name] == pytest.approx(value, rel=0.05), name
    unseen = ladder(SIZES[3:], ["wsd"], noise=0.0, seed=1)
    np.testing.assert_allclose(law.predict(unseen), unseen["loss"].dropna(), rtol=1e-3)


def test_under_a_constant_rate_it_is_eq5_with_the_area_for_the_tokens() -> None:
    law = CurveLadderLaw.from_coefficients(TRUTH)
    eta = np.full(STEPS, PEAK)
    table = pd.DataFrame({"run_id": "c", "params": 1e8, "step": np.arange(1, STEPS + 1), "lr": eta})
    expected = 1.8 + 40.0 * 1e8**-0.25 + 0.6 * (PEAK * np.arange(1, STEPS + 1)) ** -0.45
    np.testing.assert_allclose(law.predict(table), expected, rtol=1e-12)


def test_two_sizes_need_the_size_exponent_fixed_and_then_keep_it() -> None:
    two = ladder(SIZES[:2], ["cosine", "constant"], noise=1e-4, seed=2)
    with pytest.raises(LawDataError, match=r"at least 3 model sizes.*alpha_fixed"):
        CurveLadderLaw().fit(two)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fixed exponent is the user's choice, not a fit stuck on a bound
        law = CurveLadderLaw(alpha_fixed=0.25).fit(two)
    assert law.coefficients_["alpha"] == 0.25
    assert law.pinned_ == []
    assert law.degenerate_ is None
    assert law.coefficients_["sigma"] == pytest.approx(TRUTH["sigma"], rel=0.02)
    again = law_class("curve-ladder").from_dict(law.to_dict())
    assert again.alpha_fixed == 0.25
    np.testing.assert_allclose(again.predict(two), law.predict(two), rtol=1e-12)


def test_a_run_with_two_sizes_is_refused() -> None:
    table = ladder(SIZES[:3], ["constant"], noise=0.0, seed=3)
    table.loc[table.index[-1], "params"] = 1.0
    with pytest.raises(LawDataError, match="'params' needs one value"):
        CurveLadderLaw().fit(table)


def test_the_audit_scores_each_held_out_runs_final_point_not_its_curve() -> None:
    table = ladder(SIZES, ["cosine", "constant"], noise=1e-4, seed=4)
    # a held-out run whose last evaluation sits before its last step, rows shuffled
    table = table.drop(table.index[(table["params"] == SIZES[3]) & (table["step"] > 1150)])
    table = table.sample(frac=1, random_state=0)
    audit = extrapolation_audit(CurveLadderLaw(), table, column="params")
    assert sorted(audit.points["run_id"]) == [f"{SIZES[3]:.0e}-constant", f"{SIZES[3]:.0e}-cosine"]
    assert audit.points["step"].tolist() == [1150, 1150]
    for point in audit.points.itertuples():
        run = table[table["run_id"] == point.run_id]
        assert point.observed == run.loc[run["step"] == 1150, "loss"].item()
        assert point.predicted == pytest.approx(curve_loss(eta(point.run_id.split("-")[1]), 1150, SIZES[3], **TRUTH),
                                                rel=2e-3)  # fmt: skip
    assert audit.to_dict()["points"][0].keys() >= {"run_id", "step", "observed", "predicted"}


def test_final_points_keeps_the_last_measured_step_of_each_run() -> None:
    table = pd.DataFrame({"run_id": ["b", "a", "b", "a", "a", "b"], "step": [2, 1, 1, 3, 2, 3],
                          "lr": 1.0, "loss": [5.0, 4.0, 6.0, np.nan, 3.0, np.nan]})  # fmt: skip
    kept = losses_at_final_steps(table)
    assert kept["run_id"].tolist() == ["b", "b", "b", "a", "a", "a"]
    assert kept["step"].tolist() == [1, 2, 3, 1, 2, 3]
    assert kept.dropna(subset=["loss"])[["run_id", "step", "loss"]].values.tolist() == [
        ["b", 2, 5.0],
        ["a", 2, 3.0],
    ]


def _store_ladder(path, models) -> None:
    """A store of WSD runs of ``models`` (one each, plus a MoE run) following the ladder law exactly in the
    stored non-embedding parameter count P."""
    from archscale.store import ResultsStore
    from archscale.training.run_config import RunConfig

    with ResultsStore(path) as store:
        for model in [*models, "moe-100k"]:
            run = RunConfig.from_dict({"model": model, "tokens": 300 * 4 * 64, "batch_size": 4, "seq_len": 64,
                                       "lr": PEAK, "schedule": "wsd", "warmup_steps": 20, "decay_fraction": 0.3})  # fmt: skip
            store.add_run(run)
            params = float(store.runs().set_index("run_id").loc[run.run_id, "P"])
            eta = np.array([run.lr_at(s) for s in range(run.steps)])
            peak = int(np.argmax(eta))
            gap = np.r_[np.zeros(peak + 1), eta[peak:-1] - eta[peak + 1 :]]
            momentum = np.zeros(len(eta))
            for i in range(1, len(eta)):
                momentum[i] = 0.999 * momentum[i - 1] + gap[i]
            loss = (TRUTH["sigma"] + TRUTH["A"] * params ** -TRUTH["alpha"]
                    + TRUTH["B"] * np.cumsum(eta) ** -TRUTH["beta"] - TRUTH["C"] * np.cumsum(momentum))  # fmt: skip
            store.add_curve(run.run_id, [{"step": t, "lm_loss": v, "loss": v, "lr": eta[t - 1]}
                                         for t, v in enumerate(loss, start=1)])  # fmt: skip
            store.set_status(run.run_id, "finished")


def test_fit_reads_a_family_of_sizes_from_a_store_and_audits_the_largest(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from archscale.cli.main import app

    path = tmp_path / "ladder.sqlite"
    _store_ladder(path, ["dense-50k", "dense-100k", "dense-200k", "dense-330k"])
    args = ["fit", "curve-ladder", "--data", str(path), "--kind", "dense", "--json"]
    result = CliRunner().invoke(app, [*args, "--holdout", "params:1"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["coefficients"]["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)
    (point,) = payload["audit"]["points"]
    assert point["params"] == 331776 and point["step"] == 300
    assert point["predicted"] == pytest.approx(point["observed"], rel=1e-3)
    mixed = CliRunner().invoke(app, [*args[:4], "--json"])
    assert mixed.exit_code == 2 and "pass --kind" in mixed.stderr
    one_size = CliRunner().invoke(app, ["fit", "annealing", "--data", str(path), "--model", "dense-50k",
                                        "--holdout", "params:1"])  # fmt: skip
    assert one_size.exit_code == 2 and "curve-ladder" in one_size.stderr


def test_the_curve_command_predicts_a_size_from_a_ladder_fit(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from archscale.cli.main import app

    fit = tmp_path / "ladder.json"
    fit.write_text(json.dumps(CurveLadderLaw.from_coefficients(TRUTH).to_dict()))
    args = ["curve", "--fit", str(fit), "--steps", "1000", "--lr", str(PEAK), "--warmup", "0",
            "--schedule", "constant", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--size", "1e8"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    expected = (
        TRUTH["sigma"] + TRUTH["A"] * 1e8 ** -TRUTH["alpha"] + TRUTH["B"] * (PEAK * 1000) ** -TRUTH["beta"]
    )
    assert payload["final_loss"] == pytest.approx(expected, rel=1e-12)
    assert payload["interval"] is None and "not bootstrapped" in payload["no_interval"]
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code == 2 and "--size" in missing.stderr


def test_runs_not_yet_evaluated_neither_break_the_intervals_nor_count_as_sizes() -> None:
    table = ladder(SIZES[:3], ["cosine", "constant"], noise=2e-3, seed=7)
    queued = ladder(SIZES[3:], ["constant"], noise=0.0, seed=8).assign(loss=np.nan)
    with_queued = pd.concat([queued, table], ignore_index=True)  # first, so its empty group is not the last
    law = CurveLadderLaw(bootstrap=20).fit(with_queued)
    assert law.no_interval_ is None and "alpha_N" in law.intervals_
    two_measured = pd.concat([queued, table[table["params"] != SIZES[2]]], ignore_index=True)
    with pytest.raises(LawDataError, match=r"at least 3 model sizes \(2 given\)"):
        CurveLadderLaw().fit(two_measured)


def test_an_option_another_law_does_not_take_is_named_as_typed(tmp_path) -> None:
    from typer.testing import CliRunner

    from archscale.cli.main import app

    path = tmp_path / "points.csv"
    pd.DataFrame({"params": [1e6, 2e6, 4e6], "tokens": 1e8, "loss": [3.0, 2.8, 2.7]}).to_csv(
        path, index=False
    )
    result = CliRunner().invoke(app, ["fit", "chinchilla", "--data", str(path), "--alpha-fixed", "0.3"])
    assert result.exit_code == 2 and "--alpha-fixed does not apply to the chinchilla law" in result.stderr


def test_a_branch_shares_its_trunks_run_effect_in_the_noise_model() -> None:
    from archscale.laws.curve_laws import noise_units

    table = ladder(SIZES[:3], ["cosine", "constant", "wsd"], noise=2e-3, seed=10)
    # each size's WSD run stands in for a cooldown branch of its constant trunk
    trunk = table["run_id"].str.replace("-wsd", "-constant")
    ids = list(dict.fromkeys(table["run_id"]))
    assert noise_units(table.assign(trunk=trunk), ids).tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 5]
    assert noise_units(table, ids).tolist() == list(range(9))
    grouped = CurveLadderLaw(bootstrap=10).fit(table.assign(trunk=trunk))
    apart = CurveLadderLaw(bootstrap=10).fit(table)
    assert grouped.bootstrap_.noise["n_groups"] == 6 and apart.bootstrap_.noise["n_groups"] == 9
    assert grouped.bootstrap_.noise["df_between"] < apart.bootstrap_.noise["df_between"]
