"""Process-group set-up for ``torchrun`` (one process per device, gloo on CPU, NCCL on GPU) and the
FSDP2 sharding of a model over the group."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from archscale.models import ModelConfig, Transformer, build_model

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes in the environment; a single process needs nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def sum_across_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def mean_across_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    return sum_across_ranks(value, info) / info.world_size  # gloo has no AVG


def min_across_ranks(value: float, info: DistInfo, device: torch.device) -> float:
    """The smallest of the ranks' ``value``s, on every rank (e.g. the memory every rank can give a run, so
    that all of them plan it alike)."""
    if not info.enabled:
        return value
    box = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MIN)
    return box.item()


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of an FSDP parameter or gradient (a DTensor); any other tensor as it is."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def whole_value(tensor: torch.Tensor) -> torch.Tensor:
    """The full value of a DTensor (e.g. a gradient norm over sharded gradients); any other tensor as it is."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def average_gradients(params: list[torch.Tensor], info: DistInfo) -> None:
    """All-reduce (mean) the gradients in one flat buffer: the explicit form of DDP's synchronisation."""
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    chunks = flat.split([g.numel() for g in grads])
    torch._foreach_copy_(grads, [c.view_as(g) for c, g in zip(chunks, grads, strict=True)])


def shard_model(
    cfg: ModelConfig, device: torch.device, info: DistInfo, *, param_dtype: torch.dtype | None = None
) -> Transformer:
    """The model sharded with FSDP2 over the group's ``info.world_size`` ranks: each block one unit (its
    weights gathered just before it runs, freed after), the embedding, final norm and head in the root.

    No rank ever holds the whole model on ``device``: every rank builds it without memory (meta), shards
    it, and receives its shards of the weights rank 0 drew on the CPU (from the seed set by the caller, so
    the initial weights are those of a one-process run on the CPU). Parameters are computed in
    ``param_dtype`` (bf16 on GPUs; None keeps fp32) and gradients are reduced in fp32.
    """
    weights = build_model(cfg, "cpu").state_dict() if info.is_main else {}
    model = build_model(cfg, "meta")
    mesh = init_device_mesh(device.type, (info.world_size,))
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    model.to_empty(device=device)
    model.reset_rotary()
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, weights, options=options)
    return model


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``auto`` → ``cuda:LOCAL_RANK`` when a GPU is visible, else ``cpu``; ``cuda`` → ``cuda:LOCAL_RANK``
    (each torchrun rank its own GPU); anything else as given. A CUDA device becomes this process's current
    device."""
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local_rank}"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    return device


def share_from_rank0(value: T | None, info: DistInfo) -> T:
    """Rank 0's ``value`` on every rank (a picklable Python object; ``value`` is ignored off rank 0)."""
    if info.world_size == 1:
        return value  # type: ignore[return-value]
    box = [value if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def shutdown(info: DistInfo, *, together: bool = False) -> None:
    """Leave the process group. ``together`` (every rank finished normally): wait for the others first — a
    rank tearing gloo down while its peer still holds the connection can abort the peer at exit ("terminate
    called without an active exception", seen once in CI under FSDP). After a failure no rank waits: the
    others may be stuck in a collective, and torchrun stops them."""
    if info.enabled and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()
