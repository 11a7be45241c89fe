"""Fixtures of the data-layer tests: a small in-memory corpus whose subsets use disjoint alphabets."""

from __future__ import annotations

import random

import pytest

from archscale.data import build_corpus_from_documents

ALPHABETS = {
    "letters": "abcde ",
    "digits": "0123456789 ",
    "greek": "αβγδεζ ",  # two UTF-8 bytes per letter: exercises multi-byte round trips
}


def make_documents(n_docs: int = 60, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {
        name: ["".join(rng.choice(alphabet) for _ in range(rng.randint(150, 250))) for _ in range(n_docs)]
        for name, alphabet in ALPHABETS.items()
    }


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """Three subsets of 60 documents each; a fresh copy per test module (tests may corrupt its shards)."""
    return build_corpus_from_documents(make_documents(), tmp_path_factory.mktemp("corpus"), name="small")
