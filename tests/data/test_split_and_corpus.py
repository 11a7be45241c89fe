"""Document-level splitting and the corpus format: disjoint, stable, complete-or-refused."""

from __future__ import annotations

import json
import random

import pytest

from archscale.data import (
    SPLITS,
    CorpusNotFoundError,
    DataError,
    Document,
    SplitSpec,
    build_corpus_from_documents,
    load_corpus,
)
from archscale.data.corpus import MANIFEST
from archscale.data.documents import clean_text, pack_entries
from archscale.data.split import assign_splits, group_order_key


def _books(n_books: int = 12, chapters: int = 5) -> list[Document]:
    rng = random.Random(0)
    words = ["whale", "sea", "ship", "captain", "storm", "harbour", "rope", "sail", "deck", "wind"]
    return [
        Document(f"Book {b} chapter {c}. " + " ".join(rng.choice(words) for _ in range(200)), f"book-{b}")
        for b in range(n_books)
        for c in range(chapters)
    ]


def _split_of_each_document(corpus) -> dict[tuple[str, str], set[str]]:
    where: dict[tuple[str, str], set[str]] = {}
    for subset in corpus.subsets:
        for split in SPLITS:
            for line in corpus.subset_file(subset, split).read_text().splitlines():
                record = json.loads(line)
                where.setdefault((subset, record["text"]), set()).add(split)
                where.setdefault((subset, "group:" + record["group"]), set()).add(split)
    return where


def test_clean_text_normalises_layout_but_keeps_words():
    raw = "\ufeffTitle\r\n\r\n\r\n\r\nline one  \x00\nline\ttwo\x07\r\n\n"
    assert clean_text(raw) == "Title\n\nline one\nline\ttwo"


def test_pack_entries_groups_by_size_and_keeps_every_entry():
    entries = [f"entry {i} " + "x" * 90 for i in range(50)]  # ~100 bytes each
    docs = list(pack_entries(entries, "dict", target_bytes=1000))
    assert [d.group for d in docs] == [f"dict/{i:05d}" for i in range(len(docs))]
    assert all(len(d.text.encode()) >= 1000 for d in docs[:-1])
    assert "\n\n".join(d.text for d in docs) == "\n\n".join(entries)


def test_split_targets_are_clamped():
    spec = SplitSpec()
    assert spec.target_bytes(200_000_000) == 1_000_000  # 2 % = 4 MB, clamped down
    assert spec.target_bytes(20_000_000) == 400_000  # 2 %
    assert spec.target_bytes(2_000_000) == 100_000  # 2 % = 40 KB, clamped up
    assert spec.target_bytes(300_000) == 30_000  # never more than 10 % of a small subset


def test_assign_splits_deals_groups_until_targets_are_met():
    sizes = {f"g{i}": 1_000 for i in range(100)}
    spec = SplitSpec(holdout_fraction=0.05, min_holdout_bytes=0)
    assignment = assign_splits(sizes, spec)
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}
    assert counts == {"train": 90, "validation": 5, "test": 5}
    assert assign_splits(dict(reversed(sizes.items())), spec) == assignment  # order of input is irrelevant
    assert set(assign_splits({"a": 5, "b": 5}, spec).values()) == {"train"}  # too few groups to hold out
    first, second, third = sorted("abc", key=group_order_key)
    small_second = {first: 100, second: 1, third: 100}  # test stays below target after its first group
    three = assign_splits(small_second, SplitSpec(min_holdout_bytes=0, max_holdout_share=0.4))
    assert three == {first: "validation", second: "test", third: "train"}  # train always keeps a group


def test_split_spec_rejects_bad_fields():
    with pytest.raises(DataError, match="holdout_fraction"):
        SplitSpec(holdout_fraction=0.7)
    with pytest.raises(DataError, match="min_holdout_bytes"):
        SplitSpec(min_holdout_bytes=10, max_holdout_bytes=5)


def test_split_is_disjoint_by_document_and_by_group(tmp_path):
    corpus = build_corpus_from_documents(
        {"novels": _books(), "notes": [f"note {i} " * 30 for i in range(40)]}, tmp_path
    )
    where = _split_of_each_document(corpus)
    assert all(len(splits) == 1 for splits in where.values())  # no text and no book in two splits
    for subset in corpus.subsets:
        assert all(corpus.num_documents(subset, s) > 0 for s in SPLITS)
        total = sum(len(t.encode()) for s in SPLITS for t in corpus.documents(subset, s))
        assert total == sum(corpus.num_bytes(subset, s) for s in SPLITS)


def test_split_is_stable_across_rebuilds_and_input_order(tmp_path):
    docs = _books()
    first = build_corpus_from_documents({"novels": docs}, tmp_path / "a")
    books = sorted({d.group for d in docs})
    random.Random(1).shuffle(books)  # books in another order, chapters still in reading order
    shuffled = [d for book in books for d in docs if d.group == book]
    second = build_corpus_from_documents({"novels": shuffled}, tmp_path / "b")
    assert first.fingerprint == second.fingerprint
    for split in SPLITS:
        assert sorted(first.documents("novels", split)) == sorted(second.documents("novels", split))
    # Chapters of a book keep their relative order inside the stored file.
    for split in SPLITS:
        texts = [t for t in first.documents("novels", split)]
        books = [t.split(" chapter")[0] for t in texts]
        for book in set(books):
            chapters = [int(t.split("chapter ")[1].split(".")[0]) for t in texts if t.startswith(book + " ")]
            assert chapters == sorted(chapters)


def test_duplicates_are_dropped_and_counted(tmp_path):
    corpus = build_corpus_from_documents(
        {"q": ["same text", "same text", "other", "third", "fourth"]}, tmp_path
    )
    assert sum(corpus.num_documents("q", s) for s in SPLITS) == 4
    assert corpus.manifest["subsets"]["q"]["duplicates_dropped"] == 1


def test_size_cap_trims_train_only_and_keeps_whole_groups(tmp_path):
    docs = _books(n_books=20)
    full = build_corpus_from_documents({"novels": docs}, tmp_path / "full")
    capped = build_corpus_from_documents({"novels": docs}, tmp_path / "capped", max_bytes_per_subset=20_000)
    for split in ("validation", "test"):  # held-out sets identical to the full corpus's
        assert capped.file_sha256("novels", split) == full.file_sha256("novels", split)
    book_bytes = sum(len(d.text.encode()) for d in docs if d.group == "book-0")
    assert 20_000 <= capped.num_bytes("novels", "train") < 20_000 + book_bytes
    train = list(capped.documents("novels", "train"))
    assert set(train) <= set(full.documents("novels", "train"))
    books = {t.split(" chapter")[0] for t in train}
    assert len(train) == 5 * len(books)  # whole books only


def test_load_corpus_refuses_missing_and_incomplete(tmp_path):
    with pytest.raises(CorpusNotFoundError, match="archscale data build"):
        load_corpus(tmp_path / "nothing")
    corpus = build_corpus_from_documents({"a": ["x y z", "1 2 3", "p q r"]}, tmp_path / "c")
    assert load_corpus(corpus.path).manifest == corpus.manifest
    (corpus.path / MANIFEST).unlink()  # as after an interrupted build
    with pytest.raises(CorpusNotFoundError, match="incomplete"):
        load_corpus(corpus.path)


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(DataError, match="subset name"):
        build_corpus_from_documents({"Bad Name!": ["text"]}, tmp_path / "a")
    with pytest.raises(DataError, match="holds a int"):
        build_corpus_from_documents({"ok": [3]}, tmp_path / "b")
    with pytest.raises(DataError, match="no non-empty documents"):
        build_corpus_from_documents({"ok": ["", "  "]}, tmp_path / "c")
    build_corpus_from_documents({"ok": ["a b", "c d", "e f"]}, tmp_path / "d")
    with pytest.raises(DataError, match="overwrite=True"):
        build_corpus_from_documents({"ok": ["a b"]}, tmp_path / "d")
    replaced = build_corpus_from_documents({"new": ["g h", "i j", "k l"]}, tmp_path / "d", overwrite=True)
    assert replaced.subsets == ["new"]
