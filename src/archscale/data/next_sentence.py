"""A multiple-choice task built from a corpus's held-out text, which micro models can score above chance.

Real benchmarks sit at chance for micro models, and their data come from a hub that is not reachable, so
the two-step downstream laws (task loss, then accuracy; Bhagia et al. 2024) need a task of their own. Each
item cuts a held-out document at a random character: the context is the ``CONTEXT_CHARS`` characters
before the cut, and the four choices are the ``CONTINUATION_CHARS`` characters from it (the true
continuation: "next sentence" loosely, the text's next 32 characters) and three as long cut the same way
from other documents of the same subset and split. Guessing scores 0.25. Cuts at line or sentence ends
were tried first and left models of 0.2-0.8M parameters at chance (0.25-0.29, benchmarks/RESULTS.md):
what follows a line end is barely predictable from the line; mid-text, finishing a word or a phrase is.
A cut never follows whitespace, because the harness moves a context's trailing whitespace into every
continuation, and the task loss (bits per byte of the correct choice) would count a byte its
denominator does not.

Why the distractors are fair: every choice has exactly the same length, so neither summed nor
length-normalised log-likelihood favours a short one (``acc`` and ``acc_norm`` agree up to multi-byte
characters); every choice starts where the true one may, at a uniformly drawn character (not a line
end, not after whitespace), so where a choice starts gives nothing away; they come from the same subset
and split, so the model must use the context (the word being spelled, names, indentation, syntax) rather
than tell code from prose, and none was trained on (the ``validation`` split is held out and is not the
split the test loss is measured on). A distractor that occurs anywhere in the item's own document is
redrawn, so exactly one choice continues the context.

Items are deterministic given the corpus and the seed: the cuts and the distractors each draw from their
own stream of ``numpy.random.SeedSequence`` derived from the seed. Documents are visited in a random
order, one item each, before any document gives a second, so a bounded item count spreads over the split.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from archscale.data.corpus import Corpus, load_corpus
from archscale.data.errors import DataError
from archscale.paths import write_atomic

TASK_NAME = "archscale_next_sentence"
CONTEXT_CHARS = 96  # with the continuation, 128 bytes of ASCII: the micro study's training context
CONTINUATION_CHARS = 32
CHOICES = 4
_STREAM = 0x6E657874  # "next": keeps these draws apart from other uses of the same user seed
_TRIES = 20


def _cut(text: str, low: int, rng: np.random.Generator) -> int | None:
    """A uniformly drawn position in ``text[low:]`` with a whole continuation after it, after a non-space
    character (the harness would move trailing whitespace into the continuation) and not at a line end;
    None when ``_TRIES`` draws find none."""
    high = len(text) - CONTINUATION_CHARS
    for _ in range(_TRIES if high >= low else 0):
        cut = int(rng.integers(low, high + 1))
        if not text[cut - 1].isspace() and text[cut] != "\n":
            return cut
    return None


def next_sentence_items(
    corpus: str | Path | Corpus = "minipile", *, split: str = "validation", seed: int = 0, items: int = 1000
) -> list[dict[str, Any]]:
    """Up to ``items`` multiple-choice items from ``split`` of ``corpus`` (fewer when it has no more cuts).

    Each item: ``context``, ``choices`` (four strings), ``answer`` (the index of the true continuation),
    ``subset`` and ``document`` (the document's index in that subset's split, in stored order). Only
    subsets with at least two documents in the split give items (distractors need another document).
    """
    if items < 1:
        raise DataError(f"items must be at least 1, got {items}")
    corpus = load_corpus(corpus)
    docs = [
        (subset, i, text)
        for subset in corpus.subsets
        for i, text in enumerate(corpus.documents(subset, split))
    ]
    by_subset: dict[str, list[int]] = defaultdict(list)
    for index, (subset, _, _) in enumerate(docs):
        by_subset[subset].append(index)
    eligible = [i for i, (subset, _, _) in enumerate(docs) if len(by_subset[subset]) >= 2]
    cut_seed, distractor_seed = np.random.SeedSequence([_STREAM, seed]).spawn(2)
    cut_rng, distractor_rng = np.random.default_rng(cut_seed), np.random.default_rng(distractor_seed)
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    added = True
    while len(out) < items and added:  # one pass: one item from each document, in a random order
        added = False
        for index in cut_rng.permutation(eligible)[: items - len(out)]:
            cut = _cut(docs[int(index)][2], CONTEXT_CHARS, cut_rng)
            if cut is None or (int(index), cut) in seen:
                continue
            item = _item(int(index), cut, docs, by_subset[docs[int(index)][0]], distractor_rng)
            if item is not None:
                seen.add((int(index), cut))
                out.append(item)
                added = True
    return out


def _item(
    index: int, cut: int, docs: list[tuple[str, int, str]], subset_docs: list[int], rng: np.random.Generator
) -> dict[str, Any] | None:
    """The item cut at ``cut`` of document ``index``; None when three fair distractors cannot be found."""
    subset, number, text = docs[index]
    others = [d for d in subset_docs if d != index]
    choices: list[str] = []
    for _ in range(_TRIES * (CHOICES - 1)):
        other = docs[others[int(rng.integers(len(others)))]][2]
        start = _cut(other, 1, rng)
        candidate = None if start is None else other[start : start + CONTINUATION_CHARS]
        if candidate is not None and candidate not in text and candidate not in choices:
            choices.append(candidate)
            if len(choices) == CHOICES - 1:
                answer = int(rng.integers(CHOICES))
                choices.insert(answer, text[cut : cut + CONTINUATION_CHARS])
                context = text[cut - CONTEXT_CHARS : cut]
                return {"context": context, "choices": choices, "answer": answer, "subset": subset,
                        "document": number}  # fmt: skip
    return None


def next_sentence_file(
    corpus: str | Path | Corpus = "minipile", *, split: str = "validation", seed: int = 0, items: int = 1000
) -> Path:
    """The items of :func:`next_sentence_items` as JSONL (one item a line) in the corpus's ``tasks/``
    folder, written on first use and reused after; the name carries the corpus's fingerprint, so a
    changed text never reuses old items (and a rebuild deletes the folder with the other derived data)."""
    corpus = load_corpus(corpus)
    path = corpus.path / "tasks" / f"{TASK_NAME}-{corpus.fingerprint[:12]}-{split}-seed{seed}-n{items}.jsonl"
    if not path.is_file():
        rows = next_sentence_items(corpus, split=split, seed=seed, items=items)
        if not rows:
            raise DataError(
                f"corpus {corpus.path} has no {split} documents to build {TASK_NAME} from: it needs a subset "
                f"with two or more {split} documents of over {CONTEXT_CHARS + CONTINUATION_CHARS} characters"
            )
        write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path
