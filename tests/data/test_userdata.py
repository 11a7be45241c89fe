"""Users' data: local .txt / .jsonl / .parquet files and Hugging Face `datasets` over a local file."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archscale.data import (
    SPLITS,
    DataError,
    build_corpus_from_files,
    build_corpus_from_hf,
    documents_from_files,
    documents_from_hf,
    get_shards,
    get_tokenizer,
)


def _all_texts(corpus, subset):
    return sorted(t for s in SPLITS for t in corpus.documents(subset, s))


@pytest.fixture
def inputs(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(4):
        (notes / f"note{i}.txt").write_text(f"Note number {i}.\nIt has two lines.\n")
    records = [
        {"text": f"record {i} says hello", "kind": "chat" if i % 2 else "mail", "thread": i // 4}
        for i in range(12)
    ]
    jsonl = tmp_path / "messages.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    parquet = tmp_path / "papers.parquet"
    pq.write_table(pa.table({"body": [f"abstract {i}: results" for i in range(5)]}), parquet)
    return {"notes": notes, "jsonl": jsonl, "parquet": parquet, "records": records}


def test_files_become_subsets(tmp_path, inputs):
    corpus = build_corpus_from_files([inputs["notes"], inputs["jsonl"]], tmp_path / "c")
    assert corpus.subsets == ["messages", "notes"]
    assert _all_texts(corpus, "notes") == sorted(f"Note number {i}.\nIt has two lines.\n" for i in range(4))
    assert _all_texts(corpus, "messages") == sorted(r["text"] for r in inputs["records"])
    assert corpus.manifest["input"]["files"] == [str(inputs["notes"]), str(inputs["jsonl"])]


def test_subset_and_group_fields(inputs):
    docs = documents_from_files([inputs["jsonl"]], subset_field="kind", group_field="thread")
    assert sorted(docs) == ["chat", "mail"]
    assert {d.group for d in docs["chat"]} == {"0", "1", "2"}
    assert len(docs["chat"]) == len(docs["mail"]) == 6


def test_parquet_with_a_custom_text_field(tmp_path, inputs):
    corpus = build_corpus_from_files([inputs["parquet"]], tmp_path / "c", text_field="body")
    assert _all_texts(corpus, "papers") == sorted(f"abstract {i}: results" for i in range(5))
    tok = get_tokenizer("bytes")
    shards = get_shards(corpus, tok, "train", progress=False)
    assert len(shards["papers"]) == sum(len(t.encode()) + 1 for t in corpus.documents("papers", "train"))


def test_bad_files_get_clear_errors(tmp_path, inputs):
    with pytest.raises(DataError, match=r"no field 'text'.*--text-field"):
        documents_from_files([inputs["parquet"]])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2 is not valid JSON"):
        documents_from_files([bad])
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        documents_from_files([csv])
    with pytest.raises(DataError, match="does not exist"):
        documents_from_files([tmp_path / "missing.txt"])


def test_hugging_face_datasets_from_a_local_file(tmp_path, inputs):
    kwargs = {"data_files": str(inputs["jsonl"]), "cache_dir": str(tmp_path / "hf-cache")}
    eager = documents_from_hf("json", subset_field="kind", **kwargs)
    streamed = documents_from_hf("json", subset_field="kind", streaming=True, **kwargs)
    assert {k: [d.text for d in v] for k, v in eager.items()} == {
        k: [d.text for d in v] for k, v in streamed.items()
    }
    assert sorted(d.text for d in eager["chat"]) == sorted(
        r["text"] for r in inputs["records"] if r["kind"] == "chat"
    )
    limited = documents_from_hf("json", streaming=True, max_documents=5, **kwargs)
    assert [d.text for d in limited["json"]] == [r["text"] for r in inputs["records"][:5]]
    corpus = build_corpus_from_hf("json", tmp_path / "c", streaming=True, **kwargs)
    assert corpus.subsets == ["json"]
    assert corpus.manifest["input"]["huggingface"] == "json"
    with pytest.raises(DataError, match="no field 'body'"):
        documents_from_hf("json", text_field="body", **kwargs)
