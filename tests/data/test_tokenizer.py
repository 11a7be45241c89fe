"""Tokenisers: exact round trips, byte accounting for bits-per-byte, and train-once-then-reload."""

from __future__ import annotations

import numpy as np
import pytest

from archscale.data import SPLITS, ByteTokenizer, DataError, build_corpus_from_documents, get_tokenizer
from archscale.data.tokenizer import smallest_uint, tokenizer_path

SAMPLES = [
    "plain ascii",
    "naïve café — “quotes” 漢字 🙂",
    "tabs\tand\nnewlines\n\n",
    "literal <|endoftext|> text",
    "",
]


def test_smallest_uint():
    assert smallest_uint(256) == np.uint8
    assert smallest_uint(257) == np.uint16
    assert smallest_uint(65_536) == np.uint16
    assert smallest_uint(65_537) == np.uint32


def test_bytes_tokenizer_round_trips_and_counts_bytes():
    tok = get_tokenizer("bytes")
    assert isinstance(tok, ByteTokenizer)
    assert (tok.vocab_size, tok.eot_id, tok.dtype) == (257, 256, np.uint16)
    for text in SAMPLES:
        ids = tok.encode(text)
        assert ids == list(text.encode("utf-8"))
        assert tok.decode(ids) == text
        assert tok.decode([*ids, tok.eot_id]) == text  # end-of-text decodes to nothing
        assert int(tok.token_bytes[ids].sum()) == len(text.encode("utf-8"))
    assert tok.token_bytes[tok.eot_id] == 0


@pytest.fixture(scope="module")
def bpe(small_corpus):
    return get_tokenizer("bpe-300", small_corpus)


def test_bpe_round_trips_every_subset_and_split(small_corpus, bpe):
    assert (bpe.vocab_size, bpe.eot_id) == (300, 299)
    for subset in small_corpus.subsets:
        for split in SPLITS:
            for text in small_corpus.documents(subset, split):
                ids = bpe.encode(text)
                assert bpe.decode(ids) == text
                assert int(bpe.token_bytes[ids].sum()) == len(text.encode("utf-8"))
                assert max(ids) < bpe.eot_id
    text = small_corpus.documents("letters", "train").__next__()
    assert len(bpe.encode(text)) < len(text.encode())  # merges were learned: it compresses


def test_bpe_never_emits_end_of_text_for_text(bpe):
    for text in SAMPLES:
        ids = bpe.encode(text)
        assert bpe.eot_id not in ids
        assert bpe.decode(ids) == text
        assert int(bpe.token_bytes[ids].sum()) == len(text.encode("utf-8"))
    batch = bpe.encode_batch(SAMPLES)
    assert [list(b) for b in batch] == [bpe.encode(t) for t in SAMPLES]


def test_bpe_is_saved_with_the_corpus_and_reloaded(small_corpus, bpe):
    path = tokenizer_path(small_corpus, 300)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    again = get_tokenizer("bpe-300", small_corpus)
    assert path.stat().st_mtime_ns == stamp  # not retrained
    assert again.fingerprint == bpe.fingerprint
    assert np.array_equal(again.token_bytes, bpe.token_bytes)


def test_tokenizer_specs_are_validated(small_corpus, tmp_path):
    for bad in ("wordpiece", "bpe-abc", "bpe_4096", "BYTES"):
        with pytest.raises(DataError, match="bytes' or 'bpe-<vocab>"):
            get_tokenizer(bad, small_corpus)
    with pytest.raises(DataError, match="at least"):
        get_tokenizer("bpe-100", small_corpus)
    with pytest.raises(DataError, match="pass corpus="):
        get_tokenizer("bpe-512")


def test_bpe_round_trips_the_corpus_it_was_not_trained_on(tmp_path, bpe):
    other = build_corpus_from_documents({"mixed": [s for s in SAMPLES if s] * 2}, tmp_path)
    for split in SPLITS:
        for text in other.documents("mixed", split):
            assert bpe.decode(bpe.encode(text)) == text
