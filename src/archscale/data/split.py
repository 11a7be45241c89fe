"""Deterministic document-level train / validation / test split.

Groups (books, plays, files) are ordered by the sha256 of their name, and taken in that order into
validation and test until each holds its byte target; the rest is train. The order depends only on group
names, so a rebuild, or a rebuild from documents given in another order, yields the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from archscale.data.errors import DataError

SPLITS = ("train", "validation", "test")
HOLDOUT = ("validation", "test")


@dataclass(frozen=True)
class SplitSpec:
    """How many bytes of each subset go to validation and to test (each, not together).

    The target is ``holdout_fraction`` of the subset, clamped to ``[min_holdout_bytes, max_holdout_bytes]``
    and never above ``max_holdout_share`` of the subset, so a tiny subset still keeps most text for training.
    """

    holdout_fraction: float = 0.02
    min_holdout_bytes: int = 100_000
    max_holdout_bytes: int = 1_000_000
    max_holdout_share: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.holdout_fraction < 0.5:
            raise DataError(f"holdout_fraction must be in [0, 0.5), got {self.holdout_fraction}")
        if not 0 <= self.min_holdout_bytes <= self.max_holdout_bytes:
            raise DataError(
                "need 0 <= min_holdout_bytes <= max_holdout_bytes, got "
                f"{self.min_holdout_bytes} and {self.max_holdout_bytes}"
            )
        if not 0 < self.max_holdout_share < 0.5:
            raise DataError(f"max_holdout_share must be in (0, 0.5), got {self.max_holdout_share}")

    def target_bytes(self, total_bytes: int) -> int:
        """Bytes wanted in each held-out split of a subset of ``total_bytes``."""
        target = min(max(self.holdout_fraction * total_bytes, self.min_holdout_bytes), self.max_holdout_bytes)
        return int(min(target, self.max_holdout_share * total_bytes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_order_key(group: str) -> str:
    """The position of a group in the split order: a hash, so the order is arbitrary but stable."""
    return hashlib.sha256(group.encode("utf-8")).hexdigest()


def assign_splits(group_bytes: Mapping[str, int], spec: SplitSpec) -> dict[str, str]:
    """Map each group to a split.

    With fewer than three groups everything is train (a held-out set would be the whole subset). Otherwise
    groups are dealt in hash order to whichever held-out split is furthest below its target, so each gets
    at least one group, and the last group is always left to train.
    """
    assignment = dict.fromkeys(group_bytes, "train")
    if len(group_bytes) < 3:
        return assignment
    target = max(spec.target_bytes(sum(group_bytes.values())), 1)
    filled = dict.fromkeys(HOLDOUT, 0)
    order = sorted(group_bytes, key=lambda g: (group_order_key(g), g))
    for group in order[:-1]:
        open_splits = [s for s in HOLDOUT if filled[s] < target]
        if not open_splits:
            break
        split = min(open_splits, key=lambda s: filled[s])
        assignment[group] = split
        filled[split] += group_bytes[group]
    return assignment
