"""The generic power law y = λ · Π x_i^{a_i} (+ offset).

One estimator covers every hyperparameter and allocation law in the catalogue: B_opt(L) and lr_opt(L)
(paper Eq. 12, 15; MiniCPM), B_opt(C), lr_opt(C), M_opt(C), D_opt(C) (DeepSeek), lr(N, D) and B(D)
(Step Law), N_opt(C) from an IsoFLOP analysis. ``target`` and ``inputs`` name the table columns, so a
saved law knows what it predicts from what (``archscale plan`` chains laws by these names).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError
from archscale.laws.optimize import Bounds


@dataclasses.dataclass(kw_only=True)
class PowerLaw(Law):
    """y = λ · x^a (one input: coefficients ``lambda``, ``exponent``), optionally + ``offset`` (> 0).

    With several inputs the exponents are named ``exponent_<input>``. Without an offset the fit is linear in
    log space; ``loss="squared"`` then gives ordinary least squares of log y.
    """

    target: str = "y"
    inputs: tuple[str, ...] = ("x",)
    offset: bool = False

    name: ClassVar[str] = "power"

    def __post_init__(self) -> None:
        self.inputs = tuple(self.inputs)
        if not self.inputs:
            raise LawDataError("PowerLaw needs at least one input column, e.g. inputs=('loss',)")
        if self.target in self.inputs:
            raise LawDataError(f"PowerLaw target '{self.target}' cannot also be an input {self.inputs}")
        super().__post_init__()

    @property
    def _exponent_names(self) -> list[str]:
        return ["exponent"] if len(self.inputs) == 1 else [f"exponent_{c}" for c in self.inputs]

    @property
    def formula(self) -> str:
        factors = " · ".join(f"{c}^{e}" for c, e in zip(self.inputs, self._exponent_names, strict=True))
        return f"{self.target} = lambda · {factors}" + (" + offset" if self.offset else "")

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("log_lambda", *self._exponent_names, *(("log_offset",) if self.offset else ()))

    @property
    def varying(self) -> dict[str, str]:
        return {c: f"its exponent needs several values of '{c}'" for c in self.inputs}

    def _bounds(self) -> Bounds:
        return [(None, None)] * (1 + len(self.inputs)) + ([(-30.0, 30.0)] if self.offset else [])

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(logx[self.inputs[0]])
        design = np.zeros((1 + self.offset, n, len(self.theta_names)))
        design[0, :, 0] = 1.0
        for i, column in enumerate(self.inputs, start=1):
            design[0, :, i] = logx[column]
        if self.offset:
            design[1, :, -1] = 1.0
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        # Offset at a share of the smallest y; the power term then starts from least squares on y - offset.
        y = np.exp(logy)
        x = np.column_stack([np.ones_like(logy), *(logx[c] for c in self.inputs)])
        rows = []
        for share in (0.1, 0.5, 0.9):
            floor = share * y.min()
            power = np.linalg.lstsq(x, np.log(y - floor), rcond=None)[0]
            rows.append([*power, math.log(floor)])
        return np.array(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        coefficients = {"lambda": np.exp(theta[..., 0])}
        for i, name in enumerate(self._exponent_names, start=1):
            coefficients[name] = theta[..., i]
        if self.offset:
            coefficients["offset"] = np.exp(theta[..., -1])
        return coefficients

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        theta = [math.log(coefficients["lambda"]), *(coefficients[e] for e in self._exponent_names)]
        return np.array(theta + ([math.log(coefficients["offset"])] if self.offset else []))
