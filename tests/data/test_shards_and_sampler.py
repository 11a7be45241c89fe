"""Token shards (content, reuse, corruption checks) and the samplers built on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from archscale.data import BatchSampler, CorruptShardError, DataError, eval_windows, get_shards, get_tokenizer
from archscale.data.shards import shard_dir, shard_token_counts

SEQ = 32


@pytest.fixture(scope="module")
def byte_tok():
    return get_tokenizer("bytes")


@pytest.fixture(scope="module")
def train(small_corpus, byte_tok):
    return get_shards(small_corpus, byte_tok, "train", progress=False)


def _subset_of(row: torch.Tensor) -> str:
    """Which alphabet a window came from (end-of-text ids and spaces carry no information)."""
    values = {int(v) for v in row if int(v) not in (256, ord(" "))}
    if values <= set(b"abcde"):
        return "letters"
    if values <= set(b"0123456789"):
        return "digits"
    assert values <= set("αβγδεζ".encode()), values
    return "greek"


def test_shards_hold_each_document_followed_by_end_of_text(small_corpus, byte_tok, train):
    for subset in small_corpus.subsets:
        tokens = np.asarray(train[subset])
        assert tokens.dtype == np.uint16
        ends = np.flatnonzero(tokens == byte_tok.eot_id)
        pieces = np.split(tokens, ends + 1)[:-1]
        texts = [byte_tok.decode(p[:-1].tolist()) for p in pieces]
        assert texts == list(small_corpus.documents(subset, "train"))
    counts = shard_token_counts(small_corpus)["bytes"]
    assert counts["letters"]["train"] == len(train["letters"])


def test_shards_are_built_once_and_reused(small_corpus, byte_tok, train):
    path = shard_dir(small_corpus, "bytes", "train") / "letters.bin"
    stamp = path.stat().st_mtime_ns
    again = get_shards(small_corpus, byte_tok, "train", progress=False)
    assert path.stat().st_mtime_ns == stamp
    assert np.array_equal(again["letters"], train["letters"])


def test_corrupted_or_truncated_shards_are_refused(small_corpus, byte_tok):
    get_shards(small_corpus, byte_tok, "validation", progress=False)
    path = shard_dir(small_corpus, "bytes", "validation") / "digits.bin"
    original = path.read_bytes()

    path.write_bytes(original[:-10])  # truncated
    with pytest.raises(CorruptShardError, match=r"corrupted/truncated shard .*digits\.bin.*rebuild with"):
        get_shards(small_corpus, byte_tok, "validation", progress=False)

    flipped = bytearray(original)
    flipped[5] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptShardError, match="sha256"):
        get_shards(small_corpus, byte_tok, "validation", progress=False)

    path.unlink()
    with pytest.raises(CorruptShardError, match="missing"):
        get_shards(small_corpus, byte_tok, "validation", progress=False)

    repaired = get_shards(small_corpus, byte_tok, "validation", rebuild=True, progress=False)
    assert np.asarray(repaired["digits"]).tobytes() == original


def test_stale_shards_are_rebuilt_not_refused(small_corpus, byte_tok):
    get_shards(small_corpus, byte_tok, "test", progress=False)
    meta = shard_dir(small_corpus, "bytes", "test") / "greek.json"
    record = json.loads(meta.read_text())
    meta.write_text(json.dumps({**record, "tokenizer_fingerprint": "an older tokenizer"}))
    stamp = meta.with_suffix(".bin").stat().st_mtime_ns
    shards = get_shards(small_corpus, byte_tok, "test", progress=False)
    assert meta.with_suffix(".bin").stat().st_mtime_ns != stamp
    assert json.loads(meta.read_text()) == record
    assert byte_tok.decode(np.asarray(shards["greek"]).tolist()) == "".join(
        small_corpus.documents("greek", "test")
    )


def test_batches_are_windows_of_the_shards(train):
    sampler = BatchSampler(train, batch_size=16, seq_len=SEQ, seed=3)
    batch = sampler.batch(0)
    assert batch.shape == (16, SEQ + 1) and batch.dtype == torch.int64
    for row in batch:
        haystack = np.asarray(train[_subset_of(row)]).tobytes()
        offset = haystack.find(row.numpy().astype(np.uint16).tobytes())
        assert offset >= 0 and offset % 2 == 0


def test_sampler_is_a_pure_function_of_seed_and_step(train):
    forward = BatchSampler(train, batch_size=8, seq_len=SEQ, seed=7)
    run = {step: forward.batch(step) for step in range(20)}
    resumed = BatchSampler(train, batch_size=8, seq_len=SEQ, seed=7)  # a restarted run from step 10
    for step in reversed(range(10, 20)):
        assert torch.equal(resumed.batch(step), run[step])
    assert not torch.equal(run[0], run[1])
    assert not torch.equal(BatchSampler(train, batch_size=8, seq_len=SEQ, seed=8).batch(0), run[0])


def test_mixture_weights(train):
    only_digits = BatchSampler(train, batch_size=64, seq_len=SEQ, seed=0, weights={"digits": 1.0})
    assert {_subset_of(r) for r in only_digits.batch(0)} == {"digits"}
    mixed = BatchSampler(train, batch_size=500, seq_len=SEQ, seed=1, weights={"letters": 3, "greek": 1})
    rows = [_subset_of(r) for step in range(8) for r in mixed.batch(step)]
    assert abs(rows.count("letters") / len(rows) - 0.75) < 0.03  # sd 0.007 for 4000 draws
    assert "digits" not in rows


def test_default_weights_follow_subset_sizes(train):
    sampler = BatchSampler(train, batch_size=500, seq_len=SEQ, seed=2)
    sizes = {s: len(train[s]) for s in train.subsets}
    assert sampler.weights == pytest.approx({s: n / sum(sizes.values()) for s, n in sizes.items()})
    rows = [_subset_of(r) for step in range(8) for r in sampler.batch(step)]
    for subset, weight in sampler.weights.items():
        assert abs(rows.count(subset) / len(rows) - weight) < 0.03


def test_epochs_count_the_most_repeated_subset(train):
    """Uniform sampling goes over every subset equally: tokens / all tokens. A mixture repeats its small,
    heavily weighted subset first: with digits alone, every token comes from digits."""
    sizes = {s: len(train[s]) for s in train.subsets}
    total = sum(sizes.values())
    uniform = BatchSampler(train, batch_size=4, seq_len=SEQ, seed=0)
    assert uniform.epochs(total) == pytest.approx(1.0) and uniform.epochs(total // 4) == pytest.approx(
        0.25, rel=1e-3
    )
    only_digits = BatchSampler(train, batch_size=4, seq_len=SEQ, seed=0, weights={"digits": 1.0})
    assert only_digits.epochs(1000) == pytest.approx(1000 / sizes["digits"])
    halves = BatchSampler(train, batch_size=4, seq_len=SEQ, seed=0, weights={"letters": 1, "greek": 1})
    assert halves.epochs(1000) == pytest.approx(500 / min(sizes["letters"], sizes["greek"]))


def test_sampler_rejects_bad_arguments(train):
    with pytest.raises(DataError, match="unknown subsets"):
        BatchSampler(train, 4, SEQ, 0, weights={"nope": 1.0})
    with pytest.raises(DataError, match="not all zero"):
        BatchSampler(train, 4, SEQ, 0, weights={"digits": 0.0})
    with pytest.raises(DataError, match="seq_len"):
        BatchSampler(train, 4, 10**6, 0)
    with pytest.raises(DataError, match="batch_size"):
        BatchSampler(train, 0, SEQ, 0)
    with pytest.raises(DataError, match="step"):
        BatchSampler(train, 4, SEQ, 0).batch(-1)


def test_eval_windows_cover_every_target_once(small_corpus, byte_tok):
    test = get_shards(small_corpus, byte_tok, "test", progress=False)
    windows = eval_windows(test, seq_len=SEQ)
    assert set(windows) == set(small_corpus.subsets)
    for subset, rows in windows.items():
        tokens = torch.from_numpy(np.asarray(test[subset], dtype=np.int64))
        n = (len(tokens) - 1) // SEQ
        assert rows.shape == (n, SEQ + 1)
        assert torch.equal(rows[:, 1:].reshape(-1), tokens[1 : 1 + n * SEQ])  # each target exactly once
        assert torch.equal(rows[:, 0], tokens[0 : n * SEQ : SEQ])


def test_eval_windows_cap_spreads_windows_deterministically(small_corpus, byte_tok):
    test = get_shards(small_corpus, byte_tok, "test", progress=False)
    capped = eval_windows(test, seq_len=SEQ, max_tokens_per_subset=4 * SEQ)
    full = eval_windows(test, seq_len=SEQ)
    for subset, rows in capped.items():
        assert rows.shape == (4, SEQ + 1)
        assert torch.equal(rows[0], full[subset][0]) and torch.equal(rows[-1], full[subset][-1])
        assert torch.equal(rows, eval_windows(test, seq_len=SEQ, max_tokens_per_subset=4 * SEQ)[subset])
    with pytest.raises(DataError, match="lower seq_len"):
        eval_windows(test, seq_len=10**6)
