"""Published scaling laws, with their sources and units, as ready-to-use estimators.

Units matter more than anything here: batch sizes are in **tokens** (not sequences), compute in FLOPs
(Kaplan's PF-days are converted), N is whatever the source counted (non-embedding parameters, or
non-embedding FLOPs per token for DeepSeek's M). Every number carries its source in a comment.
"""

from __future__ import annotations

from dataclasses import dataclass

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError
from archscale.laws.loss_laws import ChinchillaLaw, GranularityLaw, JointMoELaw
from archscale.laws.power import PowerLaw

PF_DAY = 1e15 * 86_400  # FLOPs in one petaflop/s-day (Kaplan et al. 2020 measure compute in PF-days)


@dataclass(frozen=True)
class PublishedLaw:
    """One source's laws: ``laws`` evaluate them; ``allocation`` = (alpha_N, alpha_D) with N_opt ∝ C^alpha_N."""

    key: str
    source: str
    formulas: tuple[str, ...]
    units: str
    laws: tuple[Law, ...] = ()
    allocation: tuple[float, float] | None = None
    table1_label: str | None = None  # row label in the paper's Table 1, when the paper lists it


def _power(target: str, inputs: tuple[str, ...], **coefficients: float) -> PowerLaw:
    return PowerLaw.from_coefficients(coefficients, target=target, inputs=inputs)


CATALOGUE: tuple[PublishedLaw, ...] = (
    PublishedLaw(
        key="kaplan2020",
        source="Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361, §1.2 Eq. 1.1-1.4",
        formulas=(
            "L(N) = (N_c/N)^alpha_N, N_c = 8.8e13, alpha_N = 0.076",
            "L(D) = (D_c/D)^alpha_D, D_c = 5.4e13, alpha_D = 0.095",
            "L(C_min) = (C_c/C_min)^alpha_C, C_c = 3.1e8 PF-days, alpha_C = 0.050",
            "B_crit(L) = B*/L^(1/alpha_B), B* = 2e8 tokens, alpha_B = 0.21",
            "N_opt ∝ C^0.73, D_opt ∝ C^0.27",
        ),
        units="N non-embedding parameters, D tokens, C FLOPs (C_c converted from PF-days), L nats/token, "
        "B tokens (WebText2)",
        laws=(
            # Kaplan et al. 2020 Eq. 1.1: alpha_N = 0.076, N_c = 8.8e13 non-embedding parameters.
            _power("loss", ("params",), **{"lambda": 8.8e13**0.076, "exponent": -0.076}),
            # Eq. 1.2: alpha_D = 0.095, D_c = 5.4e13 tokens.
            _power("loss", ("tokens",), **{"lambda": 5.4e13**0.095, "exponent": -0.095}),
            # Eq. 1.3: alpha_C^min = 0.050, C_c^min = 3.1e8 PF-days.
            _power("loss", ("compute",), **{"lambda": (3.1e8 * PF_DAY) ** 0.050, "exponent": -0.050}),
            # Eq. 1.4: B_crit(L) = B*/L^(1/alpha_B), B* = 2e8 tokens, alpha_B = 0.21.
            _power("batch_size", ("loss",), **{"lambda": 2e8, "exponent": -1 / 0.21}),
        ),
        # Kaplan et al. 2020 §1.2 (N ∝ C^0.73, B ∝ C^0.24, S ∝ C^0.03); listed as 0.73 / 0.27 in the paper's Table 1.
        allocation=(0.73, 0.27),
        table1_label="OpenAI (OpenWebText2)",
    ),
    PublishedLaw(
        key="chinchilla-approach1",
        source="Hoffmann et al. 2022, Training Compute-Optimal LLMs, arXiv:2203.15556, Table 2 (approach 1)",
        formulas=("N_opt ∝ C^0.50, D_opt ∝ C^0.50",),
        units="N parameters, D tokens, C = 6·N·D FLOPs (MassiveText)",
        allocation=(0.50, 0.50),  # Hoffmann et al. 2022 Table 2, approach 1: a = 0.50, b = 0.50
    ),
    PublishedLaw(
        key="chinchilla-approach2",
        source="Hoffmann et al. 2022, arXiv:2203.15556, Table 2 (approach 2, IsoFLOP profiles)",
        formulas=("N_opt ∝ C^0.49, D_opt ∝ C^0.51",),
        units="N parameters, D tokens, C = 6·N·D FLOPs (MassiveText)",
        allocation=(
            0.49,
            0.51,
        ),  # Hoffmann et al. 2022 Table 2, approach 2; the paper's Table 1 quotes this row
        table1_label="Chinchilla (MassiveText)",
    ),
    PublishedLaw(
        key="chinchilla-approach3",
        source="Hoffmann et al. 2022, arXiv:2203.15556, §3.3 and Table 2 (approach 3, parametric loss)",
        formulas=("L = 406.4/P^0.34 + 410.7/D^0.28 + 1.69", "N_opt ∝ C^0.46, D_opt ∝ C^0.54"),
        units="P parameters, D tokens, C = 6·P·D FLOPs, L nats/token (MassiveText)",
        # Hoffmann et al. 2022 §3.3: E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28.
        laws=(
            ChinchillaLaw.from_coefficients(
                {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}, size="params"
            ),
        ),
        allocation=(0.46, 0.54),  # Hoffmann et al. 2022 Table 2, approach 3: a = 0.46, b = 0.54
    ),
    PublishedLaw(
        key="epoch2024",
        source="Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, arXiv:2404.10102 (re-fit of "
        "Hoffmann's approach 3 on 240 points read off their Figure 4)",
        formulas=("L = 482.01/P^0.3478 + 2085.43/D^0.3658 + 1.8172",),
        units="P parameters, D tokens, C = 6·P·D FLOPs, L nats/token",
        # Besiroglu et al. 2024, their re-fit: A = 482.01, B = 2085.43, E = 1.8172, alpha = 0.3478, beta = 0.3658.
        laws=(
            ChinchillaLaw.from_coefficients(
                {"A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658, "sigma": 1.8172}, size="params"
            ),
        ),
    ),
    PublishedLaw(
        key="deepseek2024",
        source="Bi et al. 2024, DeepSeek LLM, arXiv:2401.02954, §3.1 (hyperparameters) and §3.2 (allocation)",
        formulas=(
            "M_opt = 0.1715·C^0.5243",
            "D_opt = 5.8316·C^0.4757",
            "B_opt = 0.2920·C^0.3271",
            "lr_opt = 0.3118·C^-0.1250",
        ),
        units="M non-embedding FLOPs per token (model scale N), D tokens, C = M·D FLOPs, B tokens",
        laws=(
            # Bi et al. 2024 §3.2: M_opt = M_base·C^a, M_base = 0.1715, a = 0.5243; D_base = 5.8316, b = 0.4757.
            _power("model_scale", ("compute",), **{"lambda": 0.1715, "exponent": 0.5243}),
            _power("tokens", ("compute",), **{"lambda": 5.8316, "exponent": 0.4757}),
            # Bi et al. 2024 §3.1: B_opt = 0.2920·C^0.3271 (tokens), eta_opt = 0.3118·C^-0.1250.
            _power("batch_size", ("compute",), **{"lambda": 0.2920, "exponent": 0.3271}),
            _power("lr", ("compute",), **{"lambda": 0.3118, "exponent": -0.1250}),
        ),
        allocation=(0.5243, 0.4757),
    ),
    PublishedLaw(
        key="deepseek2024-owt2",
        source="Bi et al. 2024, arXiv:2401.02954, allocation fitted on OpenWebText2 (as quoted in Wang et al. "
        "2024 Table 1)",
        formulas=("M_opt ∝ C^0.578, D_opt ∝ C^0.422",),
        units="M non-embedding FLOPs per token, D tokens, C = M·D FLOPs",
        allocation=(0.578, 0.422),  # Wang et al. 2024 Table 1, row "DeepSeek (OpenWebText2)"
        table1_label="DeepSeek (OpenWebText2)",
    ),
    PublishedLaw(
        key="minicpm2024",
        source="Hu et al. 2024, MiniCPM, arXiv:2404.06395, §4.1 (optimal batch size against loss)",
        formulas=("B_opt = 1.21e9 / L^6.24",),
        units="B tokens, L nats/token (C4 validation loss)",
        laws=(
            _power("batch_size", ("loss",), **{"lambda": 1.21e9, "exponent": -6.24}),
        ),  # Hu et al. 2024 §4.1
    ),
    PublishedLaw(
        key="steplaw2025",
        source="Li et al. 2025, Predictable Scale: Part I (Step Law), arXiv:2503.04715, main result",
        formulas=("lr = 1.79·N^-0.713·D^0.307", "B = 0.58·D^0.571"),
        units="N parameters as counted by the authors, D tokens, B tokens",
        laws=(
            # Li et al. 2025: eta(N, D) = 1.79 N^-0.713 D^0.307; B(D) = 0.58 D^0.571 tokens.
            _power(
                "lr",
                ("params", "tokens"),
                **{"lambda": 1.79, "exponent_params": -0.713, "exponent_tokens": 0.307},
            ),
            _power("batch_size", ("tokens",), **{"lambda": 0.58, "exponent": 0.571}),
        ),
    ),
    PublishedLaw(
        key="wang2024-dense",
        source="Wang et al. 2024, Scaling Laws Across Model Architectures (dense vs MoE), Table 1",
        formulas=("N_opt ∝ C^0.507, D_opt ∝ C^0.493",),
        units="N non-embedding FLOPs per token (model scale), D tokens, C = N·D (The Pile)",
        allocation=(
            0.507,
            0.493,
        ),  # Wang et al. 2024 Table 1, "Dense Model": alpha_D = 0.493, alpha_N = 0.507
        table1_label="Dense Model",
    ),
    PublishedLaw(
        key="wang2024-moe",
        source="Wang et al. 2024, Scaling Laws Across Model Architectures (dense vs MoE), Table 1",
        formulas=("N_opt ∝ C^0.590, D_opt ∝ C^0.410 (8 experts, top-3)",),
        units="N non-embedding FLOPs per token (model scale), D tokens, C = N·D (The Pile)",
        allocation=(0.590, 0.410),  # Wang et al. 2024 Table 1, "MoE Model": alpha_D = 0.410, alpha_N = 0.590
        table1_label="MoE Model",
    ),
    PublishedLaw(
        key="krajewski2024",
        source="Krajewski, Ludziejewski et al. 2024, Scaling Laws for Fine-Grained Mixture of Experts, "
        "arXiv:2402.07871, Eq. 9 and Table 1 (expansion rate E = 64, Expert Choice routing, C4)",
        formulas=("L = 0.47 + (2.1/G^0.58 + 18.1)/N^0.115 + 30.8/D^0.147",),
        units="N total non-embedding parameters (all experts), D tokens, G = d_ff / d_expert, L nats/token "
        "(smoothed training loss, GPT-2 tokenizer)",
        laws=(
            # Krajewski et al. 2024 Table 1 (MoE): a 18.1, alpha 0.115, b 30.8, beta 0.147, g 2.1, gamma 0.58, c 0.47
            GranularityLaw.from_coefficients(
                {"a": 18.1, "alpha": 0.115, "b": 30.8, "beta": 0.147, "g": 2.1, "gamma": 0.58, "c": 0.47},
                size="params",
            ),
        ),
    ),
    PublishedLaw(
        key="ludziejewski2025",
        source="Ludziejewski et al. 2025, Joint MoE Scaling Laws: Mixture of Experts Can Be Memory Efficient, "
        "arXiv:2502.05172, Eq. 1 and Table 3 (Ê of Eq. 4)",
        formulas=(
            "L = 35.91 Ê^-0.2285 N_act^(-0.1889 + 0.0098 ln Ê) + 35.98 Ê^0.5529 D^(-0.1775 - 0.0259 ln Ê) + 1.3637",
            "1/Ê = 1/(E - 1 + (1/2.0732 - 1/290.4521)^-1) + 1/290.4521",
        ),
        units="N_act active parameters including the embedding and unembedding (untied), D tokens, E experts "
        "of a top-1 MoE with non-granular experts (dense E = 1), L final training loss (FineWeb-Edu, GPT-2 "
        "tokenizer)",
        laws=(
            # Ludziejewski et al. 2025 Table 3: a 35.91, alpha -0.1889, delta -0.2285, gamma 0.0098, b 35.98,
            # beta -0.1775, omega 0.5529, zeta -0.0259, E_start 2.0732, E_max 290.4521, c 1.3637
            JointMoELaw.from_coefficients(
                {
                    "a": 35.91,
                    "alpha": -0.1889,
                    "delta": -0.2285,
                    "gamma": 0.0098,
                    "b": 35.98,
                    "beta": -0.1775,
                    "omega": 0.5529,
                    "zeta": -0.0259,
                    "c": 1.3637,
                },
                e_start=2.0732,
                e_max=290.4521,
            ),
        ),
    ),
)


def published(key: str) -> PublishedLaw:
    """The catalogue entry ``key`` (see ``archscale laws list``)."""
    for entry in CATALOGUE:
        if entry.key == key:
            return entry
    raise LawDataError(f"no published law '{key}'; choose one of {[e.key for e in CATALOGUE]}")


def table1_rows() -> list[PublishedLaw]:
    """The paper's Table 1 rows, in its order."""
    return [entry for entry in CATALOGUE if entry.table1_label]
