"""Estimators: exact recovery on noiseless data, refusals, bound warnings and the JSON round trip."""

from __future__ import annotations

import itertools
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from laws_helpers import WANG_TRUE, with_noise

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError, NotFittedError, OnBoundWarning
from archscale.laws.loss_laws import ChinchillaLaw, ClarkLaw, KaplanComputeLaw, WangLaw
from archscale.laws.power import PowerLaw


def _recovers(law: Law, truth: dict, table: pd.DataFrame, rel: float = 1e-4) -> None:
    table = table.copy()
    table[law.target] = type(law).from_coefficients(truth, **law.config()).predict(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean fit: no bound hits, converged
        fitted = law.fit(table)
    assert fitted.converged_
    for name, value in truth.items():
        assert fitted.coefficients_[name] == pytest.approx(value, rel=rel), name


def test_wang_law_recovers_its_coefficients(wang_grid):
    _recovers(WangLaw(), WANG_TRUE, wang_grid)


def test_chinchilla_law_recovers_hoffmann_coefficients(wang_grid):
    table = wang_grid[wang_grid.experts == 1].rename(columns={"model_scale": "params"})
    truth = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}
    _recovers(ChinchillaLaw(), truth, table)
    _recovers(ChinchillaLaw(grid="hoffmann"), truth, table)


@pytest.mark.parametrize("interaction", [True, False])
def test_clark_law_recovers_its_coefficients(interaction):
    table = pd.DataFrame(
        {"params": np.repeat([1e7, 1e8, 1e9], 4), "experts": np.tile([1.0, 4.0, 16.0, 64.0], 3)}
    )
    truth = (
        {"a": -0.08, "b": -0.1, "c": 0.009, "d": 1.1} if interaction else {"a": -0.08, "b": -0.1, "d": 1.1}
    )
    _recovers(ClarkLaw(interaction=interaction), truth, table, rel=1e-8)


def test_kaplan_compute_law_recovers_its_coefficients():
    table = pd.DataFrame({"compute": np.geomspace(1e17, 1e22, 12)})
    _recovers(KaplanComputeLaw(), {"L_inf": 1.8, "C0": 2e14, "alpha": 0.12}, table)


def test_power_laws_recover_their_coefficients():
    x = pd.DataFrame({"loss": np.linspace(2.2, 3.6, 10)})
    _recovers(
        PowerLaw(target="batch_size", inputs=("loss",)), {"lambda": 1.21e9, "exponent": -6.24}, x, rel=1e-8
    )
    _recovers(
        PowerLaw(target="y", inputs=("loss",), offset=True),
        {"lambda": 50.0, "exponent": -2.0, "offset": 3.0},
        x,
    )
    nd = pd.DataFrame({"params": np.repeat([2e8, 5e8, 1e9], 3), "tokens": np.tile([4e9, 2e10, 1e11], 3)})
    truth = {"lambda": 1.79, "exponent_params": -0.713, "exponent_tokens": 0.307}
    _recovers(PowerLaw(target="lr", inputs=("params", "tokens")), truth, nd, rel=1e-8)


def test_hoffmann_grid_reaches_the_default_grids_optimum(wang_grid):
    noisy = with_noise(wang_grid, 0.01, seed=3)
    default, full = WangLaw().fit(noisy), WangLaw(grid="hoffmann").fit(noisy)
    assert full.objective_ == pytest.approx(default.objective_, rel=1e-6)
    assert full.coefficients_["alpha"] == pytest.approx(default.coefficients_["alpha"], rel=1e-3)


@pytest.mark.parametrize(
    ("law", "change", "needle"),
    [
        (WangLaw(), lambda t: t.drop(columns="tokens"), "--map tokens="),
        (WangLaw(), lambda t: t.assign(tokens=2e10), "'tokens' spans a single value"),
        (WangLaw(), lambda t: t.assign(tokens=np.linspace(2.49e5, 2.5e5, len(t))), "too little to fit"),
        (WangLaw(), lambda t: t.assign(experts=8.0), "ChinchillaLaw(size='model_scale')"),
        (WangLaw(), lambda t: t.assign(experts=np.where(t.index == 7, 0.0, t.experts)), "first at row 7"),
        (WangLaw(), lambda t: t.assign(loss=np.where(t.index == 2, np.nan, t.loss)), "column 'loss'"),
        (WangLaw(), lambda t: t.assign(experts="eight"), "must be numeric"),
        (ChinchillaLaw(size="model_scale"), lambda t: t.iloc[[0, 4, 13, 50]], "only 4 distinct"),
    ],
)
def test_refusals_name_what_is_missing(wang_grid, law, change, needle):
    with pytest.raises(LawDataError, match=None) as error:
        law.fit(change(wang_grid))
    assert needle in str(error.value)


def test_bad_options_are_refused():
    with pytest.raises(LawDataError, match="size must be"):
        ChinchillaLaw(size="layers")
    with pytest.raises(LawDataError, match="grid 'hoffmann' is not available for clark"):
        ClarkLaw(grid="hoffmann")
    with pytest.raises(LawDataError, match="loss must be"):
        WangLaw(loss="mae")
    with pytest.raises(LawDataError, match="cannot also be an input"):
        PowerLaw(target="loss", inputs=("loss",))
    with pytest.raises(LawDataError, match="takes coefficients"):
        ChinchillaLaw.from_coefficients({"A": 1.0})


def test_optimum_on_a_bound_is_warned(wang_grid):
    # Loss that rises with D (over-training): no B/D^beta term with beta in [0, 5] fits, beta hits a bound.
    no_data_term = WangLaw.from_coefficients(WANG_TRUE).predict(wang_grid.assign(tokens=1e30))
    table = wang_grid.assign(loss=no_data_term * (wang_grid.tokens / 1e9) ** 0.02)
    with pytest.warns(OnBoundWarning, match="beta = 5 sits on its bound"):
        law = WangLaw().fit(table)
    assert law.pinned_ == ["beta", "log_B"]  # B/D^5 is ~0 on this grid: the B term has faded too
    assert (
        law.degenerate_
        == "beta, log_B ended on its bound or faded out of the law, so the data do not pin the law down"
    )
    assert f"degenerate: {law.degenerate_}" in law.summary()


def test_a_term_that_fades_before_its_bound_is_flagged():
    # No irreducible loss: sigma heads to 0, and L-BFGS-B stops (sigma ~ 1e-6 of the loss) long before
    # log sigma reaches its bound of -20, so only the faded check can say the data do not pin sigma down.
    grid = pd.DataFrame(
        list(itertools.product(np.geomspace(1e7, 3e9, 5), np.geomspace(1e9, 1e11, 4))),
        columns=["params", "tokens"],
    )
    grid["loss"] = 400 / grid["params"] ** 0.34 + 410 / grid["tokens"] ** 0.28
    with pytest.warns(OnBoundWarning, match="log_sigma has faded out of the law"):
        law = ChinchillaLaw().fit(grid)
    assert law.theta_[2] > -19  # not on the bound itself
    assert law.pinned_ == ["log_sigma"]
    assert law.degenerate_.startswith("log_sigma ended on its bound or faded out of the law")
    assert Law.from_dict(json.loads(json.dumps(law.to_dict()))).pinned_ == ["log_sigma"]


def test_unfitted_law_says_how_to_fit():
    with pytest.raises(NotFittedError, match="call fit"):
        _ = WangLaw().coefficients_
    with pytest.raises(NotFittedError, match="bootstrap=K"):
        WangLaw.from_coefficients(WANG_TRUE).predict_interval(
            {"model_scale": [1e9], "tokens": [1e10], "experts": [1]}
        )


def test_json_round_trip_keeps_fit_and_intervals(wang_grid):
    law = WangLaw(bootstrap=20, seed=1).fit(with_noise(wang_grid, 0.01, seed=0))
    data = json.loads(json.dumps(law.to_dict()))
    assert {"law", "coefficients", "intervals", "objective", "n_points"} <= set(data)
    assert set(data["coefficients"]) == {"A", "B", "alpha", "beta", "gamma", "sigma"}
    loaded = Law.from_dict(data)
    assert isinstance(loaded, WangLaw) and loaded.config() == law.config()
    assert loaded.coefficients_ == law.coefficients_
    assert loaded.intervals_ == law.intervals_
    np.testing.assert_array_equal(loaded.predict(wang_grid), law.predict(wang_grid))
    np.testing.assert_array_equal(loaded.predict_interval(wang_grid), law.predict_interval(wang_grid))
    np.testing.assert_array_equal(
        loaded.predict_interval(wang_grid, new_run=True), law.predict_interval(wang_grid, new_run=True)
    )


def test_summary_lists_coefficients_with_intervals(wang_grid):
    law = WangLaw(bootstrap=20).fit(with_noise(wang_grid, 0.01, seed=0))
    text = law.summary()
    lo, hi = law.intervals_["gamma"]
    assert f"gamma    {law.coefficients_['gamma']:.6g}  [{lo:.6g}, {hi:.6g}]" in text
    assert "20 parametric bootstrap refits, noise unit point (60 points, seed 0)" in text
    # 60 points, 6 coefficients; the noise put on the loss is 1 % in log units
    assert re.search(
        r"residual scale 0\.0\d+ \(rms of log residuals\), 54 degrees of freedom \(60 points - 6", text
    )
