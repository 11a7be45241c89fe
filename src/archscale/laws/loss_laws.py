"""Loss laws of the paper and the work it builds on.

- :class:`ChinchillaLaw` — paper Eq. 1 (Hoffmann et al. 2022): L = A/P^α + B/D^β + σ, P parameters or model scale N.
- :class:`WangLaw` — paper Eq. 5: L = A/(N^α E^γ) + B/D^β + σ, N = non-embedding FLOPs per token.
- :class:`ClarkLaw` — Clark et al. 2022, paper Eq. 2 / Eq. 4 in **log10** (as Clark; the paper writes log).
- :class:`KaplanComputeLaw` — Kaplan-style L(C) = L∞ + (C0/C)^α.
- :class:`GranularityLaw` — Krajewski et al. 2024: L = c + (g/G^γ + a)/S^α + b/D^β, G the MoE granularity.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np

from archscale.laws.base import Law, numeric_column
from archscale.laws.errors import LawDataError
from archscale.laws.optimize import Bounds

_SIZES = ("params", "model_scale")
_LOG_SIGMA_BOUNDS = (-20.0, 20.0)  # σ in [2e-9, 5e8]: the lower bound only catches a vanishing σ
_EXPONENT_BOUNDS = (0.0, 5.0)  # a loss term must fall with scale


def _check_size(size: str) -> None:
    if size not in _SIZES:
        raise LawDataError(f"size must be 'params' (P) or 'model_scale' (N, FLOPs per token), got {size!r}")


@dataclasses.dataclass(kw_only=True)
class ChinchillaLaw(Law):
    """L = A/S^α + B/D^β + σ (paper Eq. 1), S = ``params`` (P, with C = 6·P·D) or ``model_scale`` (N, C = N·D)."""

    size: Literal["params", "model_scale"] = "params"

    name: ClassVar[str] = "chinchilla"
    grids: ClassVar[tuple[str, ...]] = ("default", "hoffmann")
    _with_experts: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_size(self.size)
        super().__post_init__()

    @property
    def _symbol(self) -> str:
        return "P" if self.size == "params" else "N"

    @property
    def formula(self) -> str:
        return f"L = A/{self._symbol}^alpha + B/D^beta + sigma  [{self._symbol} = {self.size}, D = tokens]"

    @property
    def flops_factor(self) -> float:
        """k in C = k·S·D: 6 for parameters (the 6·P·D convention), 1 for the model scale N (C = N·D)."""
        return 6.0 if self.size == "params" else 1.0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "tokens", "experts") if self._with_experts else (self.size, "tokens")

    @property
    def theta_names(self) -> tuple[str, ...]:
        names = ("log_A", "log_B", "log_sigma", "alpha", "beta")
        return (*names, "gamma") if self._with_experts else names

    @property
    def varying(self) -> dict[str, str]:
        need = {
            self.size: f"the A/{self._symbol}^alpha term needs several model sizes",
            "tokens": "the B/D^beta term needs several token counts D (points along each loss curve, or several "
            "budgets); with D fixed, fit ClarkLaw or PowerLaw on model size instead",
        }
        if self._with_experts:
            need["experts"] = (
                "the E^gamma factor needs several expert counts (dense runs count as E = 1); with a single E "
                "use ChinchillaLaw(size='model_scale')"
            )
        return need

    def _bounds(self) -> Bounds:
        bounds: Bounds = [(None, None), (None, None), _LOG_SIGMA_BOUNDS, _EXPONENT_BOUNDS, _EXPONENT_BOUNDS]
        return [*bounds, (-5.0, 5.0)] if self._with_experts else bounds

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(logx[self.size])
        design = np.zeros((3, n, len(self.theta_names)))
        design[0, :, 0] = 1.0  # log A - alpha log S (- gamma log E)
        design[0, :, 3] = -logx[self.size]
        design[1, :, 1] = 1.0  # log B - beta log D
        design[1, :, 4] = -logx["tokens"]
        design[2, :, 2] = 1.0  # log sigma
        if self._with_experts:
            design[0, :, 5] = -logx["experts"]
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        gammas = (0.0, 0.5, 1.0) if self._with_experts else (0.0,)
        if self.grid == "hoffmann":  # Hoffmann et al. 2022, App. D.2 (gamma added for the E factor)
            exps, sigmas, coefs = np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5), np.arange(0, 25.1, 5)
            rows = [
                (a, b, e, alpha, beta, gamma)
                for alpha, beta, e, a, b, gamma in itertools.product(exps, exps, sigmas, coefs, coefs, gammas)
            ]
        else:  # scaled to the data: σ a share of the lowest loss, the rest split between the two terms
            y = np.exp(logy)
            mid_s, mid_d = np.median(logx[self.size]), np.median(logx["tokens"])
            mid_e = np.median(logx["experts"]) if self._with_experts else 0.0
            rows = []
            for alpha, beta, share_sigma, share_a, gamma in itertools.product(
                (0.2, 0.5, 0.8), (0.2, 0.5, 0.8), (0.3, 0.7), (0.25, 0.75), gammas[:2]
            ):
                sigma = share_sigma * y.min()
                rest = np.median(y) - sigma
                log_a = math.log(share_a * rest) + alpha * mid_s + gamma * mid_e
                log_b = math.log((1 - share_a) * rest) + beta * mid_d
                rows.append((log_a, log_b, math.log(sigma), alpha, beta, gamma))
        return np.array(rows)[:, : len(self.theta_names)]

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        coefficients = {"A": np.exp(theta[..., 0]), "B": np.exp(theta[..., 1]), "alpha": theta[..., 3]}
        coefficients["beta"] = theta[..., 4]
        if self._with_experts:
            coefficients["gamma"] = theta[..., 5]
        coefficients["sigma"] = np.exp(theta[..., 2])
        return coefficients

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        c = coefficients
        theta = [math.log(c["A"]), math.log(c["B"]), math.log(c["sigma"]), c["alpha"], c["beta"]]
        return np.array([*theta, c["gamma"]] if self._with_experts else theta)

    def _derived(self, coefficients: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Allocation exponents (paper Eq. 7-8): N_opt ∝ C^alpha_N, D_opt ∝ C^alpha_D."""
        alpha, beta = coefficients["alpha"], coefficients["beta"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"alpha_N": beta / (alpha + beta), "alpha_D": alpha / (alpha + beta)}


@dataclasses.dataclass(kw_only=True)
class WangLaw(ChinchillaLaw):
    """L(N, D, E) = A/(N^α E^γ) + B/D^β + σ (paper Eq. 5), N = non-embedding FLOPs per token, E experts."""

    size: Literal["params", "model_scale"] = "model_scale"

    name: ClassVar[str] = "wang"
    _with_experts: ClassVar[bool] = True

    @property
    def formula(self) -> str:
        s = self._symbol
        return f"L = A/({s}^alpha E^gamma) + B/D^beta + sigma  [{s} = {self.size}, D = tokens, E = experts]"


@dataclasses.dataclass(kw_only=True)
class ClarkLaw(Law):
    """Clark et al. 2022 routed law in log10: log L = a log S + b log E (+ c log S log E) + d.

    ``interaction=True`` is paper Eq. 4, ``False`` the separable Eq. 2. Dense runs enter as E = 1. Fitted by
    least squares in log10, as Clark et al. fit it (``loss="huber"`` stays an option).
    """

    loss: Literal["huber", "squared"] = "squared"
    interaction: bool = True
    size: Literal["params", "model_scale"] = "params"

    name: ClassVar[str] = "clark"

    def __post_init__(self) -> None:
        _check_size(self.size)
        super().__post_init__()

    @property
    def formula(self) -> str:
        cross = " + c log10 S log10 E" if self.interaction else ""
        return f"log10 L = a log10 S + b log10 E{cross} + d  [S = {self.size}, E = experts]"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "experts")

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("a", "b", "c", "d") if self.interaction else ("a", "b", "d")

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the a log S term needs several model sizes",
            "experts": "b needs several expert counts (dense runs count as E = 1)",
        }

    def _bounds(self) -> Bounds:
        return [(None, None)] * len(self.theta_names)

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        # ln L = ln10 · log10 L, and ln10 · log10 S · log10 E = ln S · ln E / ln10.
        ln_s, ln_e = logx[self.size], logx["experts"]
        columns = [ln_s, ln_e, ln_s * ln_e / math.log(10)] if self.interaction else [ln_s, ln_e]
        return np.column_stack([*columns, np.full_like(ln_s, math.log(10))])[None]

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        return {name: theta[..., i] for i, name in enumerate(self.theta_names)}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        return np.array([coefficients[name] for name in self.theta_names])


@dataclasses.dataclass(kw_only=True)
class KaplanComputeLaw(Law):
    """L(C) = L_inf + (C0/C)^α (Kaplan-style loss against compute, with an irreducible loss)."""

    name: ClassVar[str] = "kaplan"

    @property
    def formula(self) -> str:
        return "L = L_inf + (C0/C)^alpha  [C = compute]"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("compute",)

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("alpha_log_C0", "alpha", "log_L_inf")

    @property
    def varying(self) -> dict[str, str]:
        return {"compute": "the (C0/C)^alpha term needs several compute budgets"}

    def _bounds(self) -> Bounds:
        return [(None, None), _EXPONENT_BOUNDS, _LOG_SIGMA_BOUNDS]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(logx["compute"])
        design = np.zeros((2, n, 3))
        design[0, :, 0] = 1.0  # alpha log C0 - alpha log C
        design[0, :, 1] = -logx["compute"]
        design[1, :, 2] = 1.0  # log L_inf
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        y = np.exp(logy)
        mid_c = np.median(logx["compute"])
        rows = []
        for alpha, share in itertools.product((0.05, 0.1, 0.2, 0.4), (0.3, 0.6, 0.9)):
            floor = share * y.min()
            rows.append((math.log(np.median(y) - floor) + alpha * mid_c, alpha, math.log(floor)))
        return np.array(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        alpha = theta[..., 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            c0 = np.exp(theta[..., 0] / alpha)
        return {"L_inf": np.exp(theta[..., 2]), "C0": c0, "alpha": alpha}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        c = coefficients
        return np.array([c["alpha"] * math.log(c["C0"]), c["alpha"], math.log(c["L_inf"])])


@dataclasses.dataclass(kw_only=True)
class GranularityLaw(Law):
    """L(S, D, G) = c + (g/G^γ + a)/S^α + b/D^β: the fine-grained MoE law of Krajewski, Ludziejewski et al.
    2024 (arXiv:2402.07871), G the granularity (each expert 1/G of the dense feed-forward width).

    Four positive terms: a/S^α and b/D^β are Chinchilla's, c the irreducible loss, and g/(G^γ S^α) the
    part of the model-size term that finer experts remove. S = ``params`` or ``model_scale`` as for
    :class:`ChinchillaLaw`.
    """

    size: Literal["params", "model_scale"] = "params"

    name: ClassVar[str] = "granularity"

    def __post_init__(self) -> None:
        _check_size(self.size)
        super().__post_init__()

    @property
    def formula(self) -> str:
        s = "P" if self.size == "params" else "N"
        return (
            f"L = c + (g/G^gamma + a)/{s}^alpha + b/D^beta  [{s} = {self.size}, D = tokens, G = granularity]"
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "tokens", "granularity")

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("log_a", "log_b", "log_c", "log_g", "alpha", "beta", "gamma")

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the (g/G^gamma + a)/S^alpha term needs several model sizes",
            "tokens": "the b/D^beta term needs several token counts D",
            "granularity": "g and gamma need several granularities G (coarse experts count as G = 1)",
        }

    def _bounds(self) -> Bounds:
        return [(None, None)] * 2 + [_LOG_SIGMA_BOUNDS, (None, None)] + [_EXPONENT_BOUNDS] * 3

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(logx[self.size])
        design = np.zeros((4, n, 7))
        design[0, :, 0], design[0, :, 4] = 1.0, -logx[self.size]  # log a - alpha log S
        design[1, :, 3], design[1, :, 4] = 1.0, -logx[self.size]  # log g - gamma log G - alpha log S
        design[1, :, 6] = -logx["granularity"]
        design[2, :, 1], design[2, :, 5] = 1.0, -logx["tokens"]  # log b - beta log D
        design[3, :, 2] = 1.0  # log c
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        """Scaled to the data: c a share of the lowest loss, the rest split among the other three terms."""
        y = np.exp(logy)
        mid_s, mid_d, mid_g = (np.median(logx[k]) for k in (self.size, "tokens", "granularity"))
        rows = []
        for alpha, beta, gamma, share_c, share_g in itertools.product(
            (0.2, 0.5), (0.2, 0.5), (0.3, 0.8), (0.3, 0.7), (0.2, 0.5)
        ):
            c = share_c * y.min()
            rest = np.median(y) - c
            size_share = 0.5 * rest
            log_a = math.log((1 - share_g) * size_share) + alpha * mid_s
            log_g = math.log(share_g * size_share) + alpha * mid_s + gamma * mid_g
            log_b = math.log(0.5 * rest) + beta * mid_d
            rows.append((log_a, log_b, math.log(c), log_g, alpha, beta, gamma))
        return np.array(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        names = ("a", "b", "c", "g")
        coefficients = {name: np.exp(theta[..., i]) for i, name in enumerate(names)}
        return coefficients | {"alpha": theta[..., 4], "beta": theta[..., 5], "gamma": theta[..., 6]}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        c = coefficients
        logs = [math.log(c[name]) for name in ("a", "b", "c", "g")]
        return np.array([*logs, c["alpha"], c["beta"], c["gamma"]])

    def _derived(self, coefficients: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Allocation exponents at fixed G (the (g/G^γ + a) factor is a constant then)."""
        alpha, beta = coefficients["alpha"], coefficients["beta"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"alpha_N": beta / (alpha + beta), "alpha_D": alpha / (alpha + beta)}


def effective_experts(experts: np.ndarray, e_start: float, e_max: float) -> np.ndarray:
    """Clark et al. 2022's saturating expert count Ê: 1/Ê = 1/(E − 1 + (1/E_start − 1/E_max)^−1) + 1/E_max.
    Ê(1) = E_start (dense), Ê → E_max as E grows."""
    return 1.0 / (1.0 / (experts - 1.0 + 1.0 / (1.0 / e_start - 1.0 / e_max)) + 1.0 / e_max)


@dataclasses.dataclass(kw_only=True)
class JointMoELaw(Law):
    """L(N_act, D, Ê) = a·Ê^δ·N_act^(α + γ ln Ê) + b·Ê^ω·D^(β + ζ ln Ê) + c: the joint dense-and-MoE law of
    Ludziejewski et al. 2025 (arXiv:2502.05172, Eq. 1), Ê the saturating expert count of Clark et al. 2022
    (:func:`effective_experts`; dense models are E = 1).

    Exponents keep the paper's signs (α, β < 0 for a falling loss). ``e_start`` and ``e_max`` shape Ê and
    are held fixed (default: the paper's fit, Table 3); with Ê fixed the law is a sum of three exponentials
    of terms linear in its nine coefficients, fitted like the other laws. N_act is the active parameter
    count in the paper's sense (embedding and unembedding included) or whatever ``size`` column you give.
    """

    size: Literal["active_params", "params", "model_scale"] = "active_params"
    e_start: float = 2.0732  # Ludziejewski et al. 2025, Table 3
    e_max: float = 290.4521

    name: ClassVar[str] = "joint_moe"

    def __post_init__(self) -> None:
        if self.size not in ("active_params", "params", "model_scale"):
            raise LawDataError(f"size must be 'active_params', 'params' or 'model_scale', got {self.size!r}")
        if not 1.0 < self.e_start < self.e_max:
            raise LawDataError(f"need 1 < e_start < e_max, got e_start={self.e_start}, e_max={self.e_max}")
        super().__post_init__()

    @property
    def formula(self) -> str:
        return (
            "L = a Ê^delta N^(alpha + gamma ln Ê) + b Ê^omega D^(beta + zeta ln Ê) + c  "
            f"[N = {self.size}, D = tokens, Ê = Ê(experts; E_start={self.e_start:g}, E_max={self.e_max:g})]"
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "tokens", "experts")

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("log_a", "log_b", "log_c", "alpha", "beta", "gamma", "delta", "omega", "zeta")

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the N term needs several model sizes",
            "tokens": "the D term needs several token counts",
            "experts": "delta, gamma, omega and zeta need several expert counts (dense runs count as E = 1)",
        }

    def _bounds(self) -> Bounds:
        signed = (-5.0, 5.0)
        return [(None, None), (None, None), _LOG_SIGMA_BOUNDS, (-5.0, 0.0), (-5.0, 0.0), *[signed] * 4]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        log_n, log_d = logx[self.size], logx["tokens"]
        log_e = np.log(effective_experts(np.exp(logx["experts"]), self.e_start, self.e_max))
        design = np.zeros((3, len(log_n), 9))
        design[0, :, 0], design[0, :, 3], design[0, :, 5], design[0, :, 6] = 1.0, log_n, log_e * log_n, log_e
        design[1, :, 1], design[1, :, 4], design[1, :, 8], design[1, :, 7] = 1.0, log_d, log_e * log_d, log_e
        design[2, :, 2] = 1.0
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        """Chinchilla-like starts (no expert dependence) scaled to the data, then small expert effects."""
        y = np.exp(logy)
        mid_n, mid_d = np.median(logx[self.size]), np.median(logx["tokens"])
        rows = []
        for alpha, beta, share_c, delta in itertools.product(
            (-0.2, -0.5), (-0.2, -0.5), (0.3, 0.7), (0.0, -0.2)
        ):
            c = share_c * y.min()
            half = 0.5 * (np.median(y) - c)
            rows.append((math.log(half) - alpha * mid_n, math.log(half) - beta * mid_d, math.log(c),
                         alpha, beta, 0.0, delta, 0.0, 0.0))  # fmt: skip
        return np.array(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        out = {"a": np.exp(theta[..., 0]), "b": np.exp(theta[..., 1]), "c": np.exp(theta[..., 2])}
        return out | {name: theta[..., i] for i, name in enumerate(self.theta_names) if i >= 3}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        c = coefficients
        return np.array([math.log(c["a"]), math.log(c["b"]), math.log(c["c"]),
                         *(c[name] for name in self.theta_names[3:])])  # fmt: skip


@dataclasses.dataclass(kw_only=True)
class SparsityLaw(Law):
    """L(N, D, S) = a/N^α + b/D^β + c/(1−S)^λ + d/((1−S)^δ N^γ) + e: the sparsity-aware law of Abnar et al.
    2025 (arXiv:2501.12370, Eq. 6), S = (E − K)/E the share of experts a token does not use (dense: S = 0),
    N total parameters (``size``). λ and δ may take either sign (the paper reports λ < 0); its fitted values
    (its Appendix F) could not be read here, so no published coefficients come with it.
    """

    size: Literal["params", "model_scale", "active_params"] = "params"

    name: ClassVar[str] = "sparsity"

    def __post_init__(self) -> None:
        if self.size not in ("params", "model_scale", "active_params"):
            raise LawDataError(f"size must be 'params', 'model_scale' or 'active_params', got {self.size!r}")
        super().__post_init__()

    @property
    def formula(self) -> str:
        return (
            "L = a/N^alpha + b/D^beta + c/(1-S)^lambda + d/((1-S)^delta N^gamma) + e  "
            f"[N = {self.size}, D = tokens, S = sparsity]"
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "tokens", "sparsity")

    @property
    def theta_names(self) -> tuple[str, ...]:
        return ("log_a", "log_b", "log_c", "log_d", "log_e", "alpha", "beta", "lambda", "delta", "gamma")

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the N terms need several model sizes",
            "tokens": "the b/D^beta term needs several token counts",
            "sparsity": "c, lambda and delta need several sparsities S (dense runs count as S = 0; the spread "
            "is measured on 1 - S)",
        }

    def _log_inputs(self, table) -> dict[str, np.ndarray]:
        """Under the name ``sparsity`` the law works with log(1 − S), the log of the share of experts a token
        uses (0 for a dense model), so S = 0 is a valid point."""
        if "sparsity" in table:
            sparsity = numeric_column(table, "sparsity")
            if not ((sparsity >= 0) & (sparsity < 1)).all():
                raise LawDataError("column 'sparsity' must lie in [0, 1): S = (E − K)/E, 0 for a dense model")
            table = {**{k: table[k] for k in table.keys()}, "sparsity": 1.0 - sparsity}  # noqa: SIM118
        return super()._log_inputs(table)

    def _bounds(self) -> Bounds:
        signed = (-5.0, 5.0)
        return [(None, None)] * 4 + [
            _LOG_SIGMA_BOUNDS,
            _EXPONENT_BOUNDS,
            _EXPONENT_BOUNDS,
            signed,
            signed,
            _EXPONENT_BOUNDS,
        ]

    def _design(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        log_n, log_d, log_density = logx[self.size], logx["tokens"], logx["sparsity"]  # log(1 - S)
        design = np.zeros((5, len(log_n), 10))
        design[0, :, 0], design[0, :, 5] = 1.0, -log_n  # log a - alpha log N
        design[1, :, 1], design[1, :, 6] = 1.0, -log_d  # log b - beta log D
        design[2, :, 2], design[2, :, 7] = 1.0, -log_density  # log c - lambda log(1 - S)
        design[3, :, 3], design[3, :, 8], design[3, :, 9] = (
            1.0,
            -log_density,
            -log_n,
        )  # log d - delta.. - gamma..
        design[4, :, 4] = 1.0  # log e
        return design

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        y = np.exp(logy)
        mid_n, mid_d = np.median(logx[self.size]), np.median(logx["tokens"])
        rows = []
        for alpha, beta, share_e, lam, delta in itertools.product(
            (0.2, 0.5), (0.2, 0.5), (0.3, 0.7), (-0.3, 0.3), (-0.3, 0.3)
        ):
            e = share_e * y.min()
            quarter = 0.25 * (np.median(y) - e)
            rows.append((math.log(quarter) + alpha * mid_n, math.log(quarter) + beta * mid_d, math.log(quarter),
                         math.log(quarter) + alpha * mid_n, math.log(e), alpha, beta, lam, delta, alpha))  # fmt: skip
        return np.array(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        logs = {name: np.exp(theta[..., i]) for i, name in enumerate("abcde")}
        return logs | {name: theta[..., i] for i, name in enumerate(self.theta_names) if i >= 5}

    def _theta(self, coefficients: Mapping[str, float]) -> np.ndarray:
        c = coefficients
        return np.array(
            [*(math.log(c[name]) for name in "abcde"), *(c[name] for name in self.theta_names[5:])]
        )
