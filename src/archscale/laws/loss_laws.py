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

from archscale.laws.base import Law, Parameter, Term
from archscale.laws.columns import numeric_column
from archscale.laws.errors import LawDataError

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
    _gamma_starts: ClassVar[tuple[float, ...]] = (0.0,)  # starts of an expert exponent (WangLaw's gamma)

    def __post_init__(self) -> None:
        _check_size(self.size)
        super().__post_init__()

    @property
    def _symbol(self) -> str:
        return "P" if self.size == "params" else "N"

    @property
    def flops_factor(self) -> float:
        """k in C = k·S·D: 6 for parameters (the 6·P·D convention), 1 for the model scale N (C = N·D)."""
        return 6.0 if self.size == "params" else 1.0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.size, "tokens")

    @property
    def symbols(self) -> dict[str, str]:
        return {"loss": "L", self.size: self._symbol, "tokens": "D"}

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return (
            Parameter("log_A"),
            Parameter("log_B"),
            Parameter("log_sigma", _LOG_SIGMA_BOUNDS),
            Parameter("alpha", _EXPONENT_BOUNDS),
            Parameter("beta", _EXPONENT_BOUNDS),
        )

    @property
    def terms(self) -> tuple[Term, ...]:
        return (
            {"log_A": "1", "alpha": f"-{self.size}"},
            {"log_B": "1", "beta": "-tokens"},
            {"log_sigma": "1"},
        )

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: f"the A/{self._symbol}^alpha term needs several model sizes",
            "tokens": "the B/D^beta term needs several token counts D (points along each loss curve, or several "
            "budgets); with D fixed, fit ClarkLaw or PowerLaw on model size instead",
        }

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        gammas = self._gamma_starts
        if self.grid == "hoffmann":  # Hoffmann et al. 2022, App. D.2 (gamma added for the E factor)
            exps, sigmas, coefs = np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5), np.arange(0, 25.1, 5)
            rows = [
                {"log_A": a, "log_B": b, "log_sigma": e, "alpha": alpha, "beta": beta, "gamma": gamma}
                for alpha, beta, e, a, b, gamma in itertools.product(exps, exps, sigmas, coefs, coefs, gammas)
            ]
        else:  # scaled to the data: σ a share of the lowest loss, the rest split between the two terms
            y = np.exp(logy)
            mid_s, mid_d = np.median(logx[self.size]), np.median(logx["tokens"])
            mid_e = np.median(logx["experts"]) if "experts" in logx else 0.0
            rows = []
            for alpha, beta, share_sigma, share_a, gamma in itertools.product(
                (0.2, 0.5, 0.8), (0.2, 0.5, 0.8), (0.3, 0.7), (0.25, 0.75), gammas[:2]
            ):
                sigma = share_sigma * y.min()
                rest = np.median(y) - sigma
                log_a = math.log(share_a * rest) + alpha * mid_s + gamma * mid_e
                log_b = math.log((1 - share_a) * rest) + beta * mid_d
                rows.append({"log_A": log_a, "log_B": log_b, "log_sigma": math.log(sigma), "alpha": alpha,
                             "beta": beta, "gamma": gamma})  # fmt: skip
        return self._start_rows(rows)

    def _coefficients(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """σ last, as the paper lists it."""
        coefficients = super()._coefficients(theta)
        coefficients["sigma"] = coefficients.pop("sigma")
        return coefficients

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
    _gamma_starts: ClassVar[tuple[float, ...]] = (0.0, 0.5, 1.0)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*super().inputs, "experts")

    @property
    def symbols(self) -> dict[str, str]:
        return super().symbols | {"experts": "E"}

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return (*super().parameters, Parameter("gamma", (-5.0, 5.0)))

    @property
    def terms(self) -> tuple[Term, ...]:
        size_term, *rest = super().terms
        return ({**size_term, "gamma": "-experts"}, *rest)

    @property
    def varying(self) -> dict[str, str]:
        return super().varying | {
            "experts": "the E^gamma factor needs several expert counts (dense runs count as E = 1); with a single "
            "E use ChinchillaLaw(size='model_scale')"
        }


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
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(Parameter(name) for name in ("a", "b", "c", "d") if self.interaction or name != "c")

    @property
    def terms(self) -> tuple[Term, ...]:
        cross = {"c": "log10_cross"} if self.interaction else {}
        return ({"a": self.size, "b": "experts", **cross, "d": "ln10"},)

    def _log_features(self, logx: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray | float]:
        """ln L = ln10 · log10 L, and ln10 · log10 S · log10 E = ln S · ln E / ln10."""
        return {**logx, "log10_cross": logx[self.size] * logx["experts"] / math.log(10), "ln10": math.log(10)}

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the a log S term needs several model sizes",
            "experts": "b needs several expert counts (dense runs count as E = 1)",
        }


@dataclasses.dataclass(kw_only=True)
class KaplanComputeLaw(Law):
    """L(C) = L_inf + (C0/C)^α (Kaplan-style loss against compute, with an irreducible loss)."""

    name: ClassVar[str] = "kaplan"
    inputs: ClassVar[tuple[str, ...]] = ("compute",)
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("alpha_log_C0"),  # α log C0: the term is linear in it, C0 itself is not
        Parameter("alpha", _EXPONENT_BOUNDS),
        Parameter("log_L_inf", _LOG_SIGMA_BOUNDS),
    )
    terms: ClassVar[tuple[Term, ...]] = ({"alpha_log_C0": "1", "alpha": "-compute"}, {"log_L_inf": "1"})

    @property
    def formula(self) -> str:
        return "L = L_inf + (C0/C)^alpha  [C = compute]"

    @property
    def varying(self) -> dict[str, str]:
        return {"compute": "the (C0/C)^alpha term needs several compute budgets"}

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        y = np.exp(logy)
        mid_c = np.median(logx["compute"])
        rows = []
        for alpha, share in itertools.product((0.05, 0.1, 0.2, 0.4), (0.3, 0.6, 0.9)):
            floor = share * y.min()
            alpha_log_c0 = math.log(np.median(y) - floor) + alpha * mid_c
            rows.append({"alpha_log_C0": alpha_log_c0, "alpha": alpha, "log_L_inf": math.log(floor)})
        return self._start_rows(rows)

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
    def parameters(self) -> tuple[Parameter, ...]:
        scales = (
            Parameter("log_a"),
            Parameter("log_b"),
            Parameter("log_c", _LOG_SIGMA_BOUNDS),
            Parameter("log_g"),
        )
        return (*scales, *(Parameter(name, _EXPONENT_BOUNDS) for name in ("alpha", "beta", "gamma")))

    @property
    def terms(self) -> tuple[Term, ...]:
        size = f"-{self.size}"
        return (
            {"log_a": "1", "alpha": size},
            {"log_g": "1", "alpha": size, "gamma": "-granularity"},
            {"log_b": "1", "beta": "-tokens"},
            {"log_c": "1"},
        )

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the (g/G^gamma + a)/S^alpha term needs several model sizes",
            "tokens": "the b/D^beta term needs several token counts D",
            "granularity": "g and gamma need several granularities G (coarse experts count as G = 1)",
        }

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
            rows.append({"log_a": log_a, "log_b": log_b, "log_c": math.log(c), "log_g": log_g, "alpha": alpha,
                         "beta": beta, "gamma": gamma})  # fmt: skip
        return self._start_rows(rows)

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
    of terms linear in its nine coefficients, fitted like the other laws.

    N_act is whatever ``size`` column you give; the law assumes nothing about it beyond that. The published
    coefficients (catalogue ``ludziejewski2025``, the paper's Table 3) were fitted with N_act counting the
    embedding and unembedding (untied). archscale's law points do not: their ``active_params`` is the
    store's ``P_active``, non-embedding matrices only (``archscale.quantities``), and the design-space
    analysis fits this law on that column. A fit on law points is therefore in the non-embedding
    convention, and its coefficients are not comparable term by term with the published ones; to evaluate
    the published law on a run, add the run's embedding (and untied LM head) parameters to ``active_params``
    first. The numbers are unchanged: the catalogue keeps the paper's coefficients in the paper's convention.
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
    def parameters(self) -> tuple[Parameter, ...]:
        falling, signed = (-5.0, 0.0), (-5.0, 5.0)
        scales = (Parameter("log_a"), Parameter("log_b"), Parameter("log_c", _LOG_SIGMA_BOUNDS))
        exponents = (Parameter("alpha", falling), Parameter("beta", falling))
        return (
            *scales,
            *exponents,
            *(Parameter(name, signed) for name in ("gamma", "delta", "omega", "zeta")),
        )

    @property
    def terms(self) -> tuple[Term, ...]:
        n, e = self.size, "effective_experts"
        return (
            {"log_a": "1", "alpha": n, "gamma": f"{e}*{n}", "delta": e},
            {"log_b": "1", "beta": "tokens", "zeta": f"{e}*tokens", "omega": e},
            {"log_c": "1"},
        )

    def _log_features(self, logx: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray | float]:
        """Adds log Ê, the log of Clark et al.'s saturating expert count."""
        log_e = np.log(effective_experts(np.exp(logx["experts"]), self.e_start, self.e_max))
        return {**logx, "effective_experts": log_e}

    @property
    def varying(self) -> dict[str, str]:
        return {
            self.size: "the N term needs several model sizes",
            "tokens": "the D term needs several token counts",
            "experts": "delta, gamma, omega and zeta need several expert counts (dense runs count as E = 1)",
        }

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
            rows.append({"log_a": math.log(half) - alpha * mid_n, "log_b": math.log(half) - beta * mid_d,
                         "log_c": math.log(c), "alpha": alpha, "beta": beta, "gamma": 0.0, "delta": delta,
                         "omega": 0.0, "zeta": 0.0})  # fmt: skip
        return self._start_rows(rows)


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
    def parameters(self) -> tuple[Parameter, ...]:
        scales = (*(Parameter(f"log_{name}") for name in "abcd"), Parameter("log_e", _LOG_SIGMA_BOUNDS))
        signed = (-5.0, 5.0)
        exponents = (Parameter("alpha", _EXPONENT_BOUNDS), Parameter("beta", _EXPONENT_BOUNDS))
        return (*scales, *exponents, Parameter("lambda", signed), Parameter("delta", signed),
                Parameter("gamma", _EXPONENT_BOUNDS))  # fmt: skip

    @property
    def terms(self) -> tuple[Term, ...]:
        n, density = f"-{self.size}", "-sparsity"  # the log of 1 - S under the name sparsity (_log_inputs)
        return (
            {"log_a": "1", "alpha": n},
            {"log_b": "1", "beta": "-tokens"},
            {"log_c": "1", "lambda": density},
            {"log_d": "1", "delta": density, "gamma": n},
            {"log_e": "1"},
        )

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

    def _grid(self, logx: Mapping[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        y = np.exp(logy)
        mid_n, mid_d = np.median(logx[self.size]), np.median(logx["tokens"])
        rows = []
        for alpha, beta, share_e, lam, delta in itertools.product(
            (0.2, 0.5), (0.2, 0.5), (0.3, 0.7), (-0.3, 0.3), (-0.3, 0.3)
        ):
            e = share_e * y.min()
            quarter = 0.25 * (np.median(y) - e)
            rows.append({"log_a": math.log(quarter) + alpha * mid_n, "log_b": math.log(quarter) + beta * mid_d,
                         "log_c": math.log(quarter), "log_d": math.log(quarter) + alpha * mid_n, "log_e": math.log(e),
                         "alpha": alpha, "beta": beta, "lambda": lam, "delta": delta, "gamma": alpha})  # fmt: skip
        return self._start_rows(rows)
