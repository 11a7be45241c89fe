"""Training options: no torch here, so sweeps and the CLI can pass them without importing it."""

from __future__ import annotations

from dataclasses import dataclass

from archscale.errors import ArchscaleError


@dataclass(frozen=True)
class TrainOptions:
    """How a run trains, never what it computes (none of this enters the run's identity).

    ``compile``: ``torch.compile`` the model (:func:`archscale.models.transformer.compile_model`; on CPU it
    pays off only on runs of thousands of steps). ``checkpoint_activations``: keep only each block's input
    for the backward pass and recompute the rest (less memory, about a third more compute). ``shard``: FSDP2
    over the ``torchrun`` group instead of DDP (each rank holds 1/world of the weights, gradients and
    optimiser state; bf16 parameters with fp32 gradient reduction on GPUs) for models that outgrow one GPU.
    For both, None (the default) lets the run's memory plan decide (:func:`archscale.models.memory.plan_memory`:
    recompute or shard only where the run would not fit otherwise; a lone process never shards); True or
    False fixes the choice. ``bf16``: bf16 autocast on GPUs (the CPU always computes in fp32); False computes
    in fp32 there too, e.g. to check a GPU's curve against the CPU's (torch's default keeps TF32 off).
    ``device_share``: the share of a GPU's memory the run may plan for (Ray's fractional GPUs: runs that share
    a GPU each fit their share, not the whole device).
    """

    compile: bool = False
    checkpoint_activations: bool | None = None
    shard: bool | None = None
    bf16: bool = True
    device_share: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.device_share <= 1:
            raise ArchscaleError(
                f"device_share: must be in (0, 1], got {self.device_share!r}",
                hint="a share of one GPU, e.g. 0.5 for two runs per GPU",
            )
