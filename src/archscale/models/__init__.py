"""Dense and MoE model families, presets and scale accounting.

Names are loaded on first use (PEP 562): importing ``archscale.models.config`` or
``archscale.models.presets`` does not load torch (the modules and the accounting do).
"""

from __future__ import annotations

from archscale.lazy import lazy_names

_SOURCES: dict[str, str] = {
    "ConfigError": "archscale.models.config",
    "ModelConfig": "archscale.models.config",
    "PRESETS": "archscale.models.presets",
    "get_preset": "archscale.models.presets",
    "list_presets": "archscale.models.presets",
    "optimizer_groups": "archscale.models.parametrization",
    "param_group_multipliers": "archscale.models.parametrization",
    "ParameterCounts": "archscale.models.scale",
    "ScaleReport": "archscale.models.scale",
    "count_parameters": "archscale.models.scale",
    "flops_per_token": "archscale.models.scale",
    "scale_report": "archscale.models.scale",
    "ModelOutput": "archscale.models.transformer",
    "Transformer": "archscale.models.transformer",
    "build_model": "archscale.models.transformer",
    "compile_model": "archscale.models.transformer",
}
__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy_names(__name__, _SOURCES)
