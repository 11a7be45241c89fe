"""A new log-sum-exp law is declared in about 15 lines: parameters by name, terms by log-input (laws/base.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pytest

from archscale.laws import base
from archscale.laws.base import Law, Parameter, Term
from archscale.laws.loss_laws import ChinchillaLaw, WangLaw


@pytest.fixture
def floor_power_law(monkeypatch: pytest.MonkeyPatch) -> type[Law]:
    """The law of base.py's docstring, registered only for the test: the registry lists the shipped laws."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    @dataclasses.dataclass(kw_only=True)
    class FloorPowerLaw(Law):
        name: ClassVar[str] = "floor-power"
        target: ClassVar[str] = "y"
        inputs: ClassVar[tuple[str, ...]] = ("x",)
        varying: ClassVar[dict[str, str]] = {"x": "alpha needs several x"}
        parameters: ClassVar[tuple[Parameter, ...]] = (
            Parameter("log_A"), Parameter("log_sigma", (-20.0, 20.0)), Parameter("alpha", (0.0, 5.0))
        )  # fmt: skip
        terms: ClassVar[tuple[Term, ...]] = ({"log_A": "1", "alpha": "-x"}, {"log_sigma": "1"})

        def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
            floor = 0.5 * np.exp(logy.min())
            return self._start_rows([{"log_A": np.log(np.exp(logy).max() - floor), "log_sigma": np.log(floor),
                                      "alpha": alpha} for alpha in (0.2, 0.5, 1.0)])  # fmt: skip

    return FloorPowerLaw


def test_a_declared_law_fits_a_known_truth(floor_power_law: type[Law]):
    x = np.geomspace(1.0, 1e4, 30)
    law = floor_power_law(loss="squared").fit({"x": x, "y": 5.0 / x**0.5 + 0.3})
    assert law.coefficients_ == pytest.approx({"A": 5.0, "sigma": 0.3, "alpha": 0.5}, rel=1e-5)
    assert law.formula == "y = A/x^alpha + sigma"
    assert law.predict({"x": np.array([100.0])}) == pytest.approx([0.8], rel=1e-6)


def test_the_declaration_gives_the_design_bounds_and_the_inverse(floor_power_law: type[Law]):
    law = floor_power_law()
    design = law._design({"x": np.log(np.array([1.0, 10.0]))})
    np.testing.assert_array_equal(
        design[0], [[1.0, 0.0, 0.0], [1.0, 0.0, -np.log(10.0)]]
    )  # log A - alpha log x
    np.testing.assert_array_equal(design[1], [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # log sigma
    assert law._bounds() == [(None, None), (-20.0, 20.0), (0.0, 5.0)]
    fixed = floor_power_law.from_coefficients({"A": 2.0, "sigma": 0.1, "alpha": 0.7})
    np.testing.assert_allclose(fixed.theta_, [np.log(2.0), np.log(0.1), 0.7])


def test_the_loss_laws_derive_their_formulas():
    assert ChinchillaLaw().formula == "L = A/P^alpha + B/D^beta + sigma  [P = params, D = tokens]"
    assert WangLaw().formula == (
        "L = A/(N^alpha E^gamma) + B/D^beta + sigma  [N = model_scale, D = tokens, E = experts]"
    )
