"""The corpus's next-sentence task: items deterministic for a seed, one true continuation each, fair distractors."""

from __future__ import annotations

import re

import pytest

from archscale.data import DataError
from archscale.data.next_sentence import (
    CHOICES,
    CONTEXT_CHARS,
    CONTINUATION_CHARS,
    next_sentence_file,
    next_sentence_items,
)


def test_items_are_deterministic_for_a_seed_and_differ_for_another(tiny_corpus) -> None:
    first = next_sentence_items(tiny_corpus, seed=1, items=40)
    assert len(first) == 40
    assert next_sentence_items(tiny_corpus, seed=1, items=40) == first
    other = next_sentence_items(tiny_corpus, seed=2, items=40)
    assert {i["context"] for i in other} != {i["context"] for i in first}
    # a longer draw with the same seed begins with the same documents' items (one per document per pass)
    assert next_sentence_items(tiny_corpus, seed=1, items=10) == first[:10]


def test_each_item_has_one_true_continuation_from_its_own_document(tiny_corpus) -> None:
    docs = {s: list(tiny_corpus.documents(s, "validation")) for s in tiny_corpus.subsets}
    items = next_sentence_items(tiny_corpus, seed=0, items=60)
    assert {i["subset"] for i in items} == set(tiny_corpus.subsets)
    assert {i["answer"] for i in items} == set(range(CHOICES))  # the true one is not always first
    for item in items:
        own = docs[item["subset"]][item["document"]]
        choices, answer = item["choices"], item["answer"]
        assert len(choices) == CHOICES == len(set(choices))
        assert len(item["context"]) == CONTEXT_CHARS
        assert all(len(c) == CONTINUATION_CHARS for c in choices)  # same length: no length bias
        assert item["context"] + choices[answer] in own
        assert not item["context"][-1].isspace()  # the harness would move it into the continuation
        for index, distractor in enumerate(choices):
            if index == answer:
                continue
            assert distractor not in own  # so it cannot also continue the context
            assert distractor[0] != "\n"  # cut the same way as the true one: not at a line end
            sources = [d for d in docs[item["subset"]] if re.search(r"\S" + re.escape(distractor), d)]
            assert sources and own not in sources


def test_items_file_is_written_once_and_named_by_the_corpus_text(tiny_corpus) -> None:
    path = next_sentence_file(tiny_corpus, seed=3, items=5)
    assert path.parent == tiny_corpus.path / "tasks" and tiny_corpus.fingerprint[:12] in path.name
    assert len(path.read_text().splitlines()) == 5
    stamp = path.stat().st_mtime_ns
    assert next_sentence_file(tiny_corpus, seed=3, items=5) == path and path.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="at least 1"):
        next_sentence_items(tiny_corpus, items=0)
