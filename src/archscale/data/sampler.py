"""Batches for training and fixed windows for evaluation, drawn from token shards.

:class:`BatchSampler` makes batch ``step`` a pure function of ``(seed, step)``: a resumed run asks for the
steps it has not done and sees exactly the batches it would have seen. Each row first picks a subset
(mixture weights), then a uniformly random window in it; windows may cross document boundaries, which
the end-of-text ids mark.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from archscale.data.errors import DataError
from archscale.data.shards import Shards


def epochs_over(tokens: float, sizes: Mapping[str, int], weights: Mapping[str, float] | None = None) -> float:
    """How many times ``tokens`` sampled tokens go over subsets of ``sizes`` tokens mixed by ``weights``
    (default: by size, i.e. uniform over the split), counted on the subset repeated most (its share of the
    tokens over its size): above 1, text is seen again (Muennighoff et al. 2023 measure what repeated data
    costs a scaling law)."""
    mix = dict(sizes) if weights is None else {s: w for s, w in weights.items() if w > 0 and s in sizes}
    total = sum(mix.values())
    return max(tokens * w / total / sizes[s] for s, w in mix.items())


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class BatchSampler:
    """Deterministic (batch_size, seq_len + 1) windows: inputs are ``[:, :-1]``, targets ``[:, 1:]``.

    ``weights`` maps subsets to mixture weights (normalised; subsets left out get 0). The default weighs
    each subset by its token count, i.e. uniform sampling over the whole split.
    """

    def __init__(
        self,
        shards: Shards,
        batch_size: int,
        seq_len: int,
        seed: int,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.batch_size = _positive_int("batch_size", batch_size)
        self.seq_len = _positive_int("seq_len", seq_len)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise DataError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.shards = shards
        raw = {s: float(len(shards[s])) for s in shards.subsets} if weights is None else dict(weights)
        unknown = sorted(set(raw) - set(shards.subsets))
        if unknown:
            raise DataError(f"weights name unknown subsets {unknown}; the shards hold {shards.subsets}")
        if any(not np.isfinite(w) or w < 0 for w in raw.values()) or sum(raw.values()) <= 0:
            raise DataError(f"weights must be finite, non-negative and not all zero, got {raw}")
        window = self.seq_len + 1
        self.subsets = [s for s in shards.subsets if raw.get(s, 0.0) > 0]
        short = [s for s in self.subsets if len(shards[s]) < window]
        if short:
            raise DataError(
                f"subsets {short} hold fewer than seq_len + 1 = {window} tokens; "
                "lower seq_len or give them weight 0"
            )
        total = sum(raw[s] for s in self.subsets)
        self.weights = {s: raw[s] / total for s in self.subsets}
        self._probs = np.array([self.weights[s] for s in self.subsets])
        self._highs = np.array([len(shards[s]) - window + 1 for s in self.subsets], dtype=np.int64)

    def epochs(self, tokens: int) -> float:
        """How many times ``tokens`` trained tokens go over this sampler's data (:func:`epochs_over`)."""
        return epochs_over(tokens, {s: len(self.shards[s]) for s in self.subsets}, self.weights)

    def batch(self, step: int) -> torch.Tensor:
        """The batch of ``step``: int64 ids of shape (batch_size, seq_len + 1)."""
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise DataError(f"step must be a non-negative integer, got {step!r}")
        rng = np.random.default_rng([self.seed, int(step)])
        which = rng.choice(len(self.subsets), size=self.batch_size, p=self._probs)
        starts = rng.integers(0, self._highs[which])
        window = self.seq_len + 1
        rows = np.empty((self.batch_size, window), dtype=np.int64)
        for row, (index, start) in enumerate(zip(which, starts, strict=True)):
            rows[row] = self.shards[self.subsets[index]][start : start + window]
        return torch.from_numpy(rows)

    def __repr__(self) -> str:
        return (
            f"BatchSampler(split={self.shards.split!r}, batch_size={self.batch_size}, seq_len={self.seq_len}, "
            f"seed={self.seed}, weights={ {s: round(w, 4) for s, w in self.weights.items()} })"
        )


def eval_windows(
    shards: Shards, seq_len: int, max_tokens_per_subset: int | None = None
) -> dict[str, torch.Tensor]:
    """Fixed evaluation windows per subset, shape (n, seq_len + 1), deterministic and spread over the subset.

    Consecutive windows overlap by one token, so every token after the first is a target exactly once
    when the whole subset fits in ``max_tokens_per_subset`` (default: no limit); otherwise ``n`` windows
    are taken evenly spaced across the subset. Loss over all subsets is the mean over all their targets.
    """
    seq_len = _positive_int("seq_len", seq_len)
    if max_tokens_per_subset is not None:
        _positive_int("max_tokens_per_subset", max_tokens_per_subset)
    windows = {}
    for subset in shards.subsets:
        tokens = shards[subset]
        available = (len(tokens) - 1) // seq_len
        if available < 1:
            raise DataError(
                f"the {shards.split} split of subset {subset!r} has {len(tokens)} tokens, fewer than "
                f"seq_len + 1 = {seq_len + 1}; lower seq_len or evaluate without this subset"
            )
        count = (
            available
            if max_tokens_per_subset is None
            else max(1, min(available, max_tokens_per_subset // seq_len))
        )
        picks = np.unique(np.linspace(0, available - 1, count).round().astype(np.int64))
        rows = np.stack(
            [np.asarray(tokens[i * seq_len : i * seq_len + seq_len + 1], dtype=np.int64) for i in picks]
        )
        windows[subset] = torch.from_numpy(rows)
    return windows
