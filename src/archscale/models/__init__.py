"""Dense and MoE model families, presets and scale accounting."""

from archscale.models.config import ConfigError, ModelConfig
from archscale.models.presets import PRESETS, get_preset, list_presets
from archscale.models.scale import (
    ParameterCounts,
    ScaleReport,
    count_parameters,
    flops_per_token,
    scale_report,
)
from archscale.models.transformer import ModelOutput, Transformer, build_model

__all__ = [
    "PRESETS",
    "ConfigError",
    "ModelConfig",
    "ModelOutput",
    "ParameterCounts",
    "ScaleReport",
    "Transformer",
    "build_model",
    "count_parameters",
    "flops_per_token",
    "get_preset",
    "list_presets",
    "scale_report",
]
