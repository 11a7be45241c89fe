"""Users' own data: local ``.txt`` / ``.jsonl`` / ``.parquet`` files and Hugging Face ``datasets``.

Both builders produce an ordinary corpus (same split rule, manifest, tokenisers, shards, sampler), so a
study can swap the default mini-Pile for any text. Subsets come from the input (one per file or folder,
or a record field); the split groups records by ``group_field`` when given, else each record stands alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from archscale.data.corpus import Corpus, build_corpus_from_documents, check_subset_name
from archscale.data.documents import Document, content_hash, decode_text
from archscale.data.errors import DataError
from archscale.data.split import SplitSpec

SUFFIXES = (".txt", ".jsonl", ".parquet")


def _subset_name(raw: Any, where: str) -> str:
    name = str(raw).strip().lower().replace(" ", "_")
    try:
        return check_subset_name(name)
    except DataError as error:
        raise DataError(f"{where}: {error}") from None


def _record_document(
    record: Mapping[str, Any], text_field: str, group_field: str | None, where: str
) -> Document:
    if text_field not in record:
        fields = ", ".join(sorted(map(str, record))) or "none"
        raise DataError(
            f"{where} has no field {text_field!r} (fields: {fields}); set text_field / --text-field"
        )
    text = record[text_field]
    if not isinstance(text, str):
        raise DataError(f"{where}: field {text_field!r} holds {type(text).__name__}, not text")
    group = (
        str(record[group_field])
        if group_field and record.get(group_field) is not None
        else content_hash(text)[:20]
    )
    return Document(text, group)


def _records(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, record) for each record of a ``.jsonl`` or ``.parquet`` file."""
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise DataError(f"{path}:{number} is not valid JSON ({error.msg})") from None
                    if not isinstance(record, dict):
                        raise DataError(f"{path}:{number} is not a JSON object")
                    yield f"{path}:{number}", record
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            for index, record in enumerate(batch.to_pylist()):
                yield f"{path} row {index}", record


def _expand(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, default subset) pairs: a file is its own subset (its stem), a folder's files share its name."""
    pairs = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not files:
                raise DataError(f"folder {path} holds no {'/'.join(SUFFIXES)} files")
            pairs += [(f, path.name) for f in files]
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise DataError(f"{path}: unsupported file type; use {', '.join(SUFFIXES)}")
            pairs.append((path, path.stem))
        else:
            raise DataError(f"{path} does not exist")
    return pairs


def documents_from_files(
    paths: Sequence[str | Path],
    *,
    text_field: str = "text",
    subset_field: str | None = None,
    group_field: str | None = None,
) -> dict[str, list[Document]]:
    """Documents by subset from local files: a ``.txt`` file is one document; ``.jsonl`` / ``.parquet`` records
    are documents with their text in ``text_field`` and, if ``subset_field`` is given, their subset there."""
    if not paths:
        raise DataError("no input files given")
    subsets: dict[str, list[Document]] = {}
    for path, default_subset in _expand(paths):
        if path.suffix == ".txt":
            text = decode_text(path.read_bytes())
            subsets.setdefault(_subset_name(default_subset, str(path)), []).append(Document(text, str(path)))
            continue
        for where, record in _records(path):
            subset = record.get(subset_field) if subset_field else default_subset
            if subset is None:
                raise DataError(f"{where} has no field {subset_field!r}; set subset_field / --subset-field")
            doc = _record_document(record, text_field, group_field, where)
            subsets.setdefault(_subset_name(subset, where), []).append(doc)
    return subsets


def documents_from_hf(
    name: str,
    *,
    config: str | None = None,
    split: str = "train",
    text_field: str = "text",
    subset_field: str | None = None,
    group_field: str | None = None,
    streaming: bool = False,
    max_documents: int | None = None,
    **load_kwargs: Any,
) -> dict[str, list[Document]]:
    """Documents by subset from a Hugging Face data set (``datasets.load_dataset(name, config, split=...)``).

    ``streaming=True`` reads records lazily (no full download); ``max_documents`` stops early. Extra
    keyword arguments (``data_files``, ``cache_dir``, ``revision``...) go to ``load_dataset``. Without
    ``subset_field`` the subset is the data set's name.
    """
    try:
        from datasets import load_dataset
    except ImportError:
        raise DataError(
            "Hugging Face data sets need the `datasets` package: pip install 'archscale[hf]'"
        ) from None
    if max_documents is not None and max_documents < 1:
        raise DataError(f"max_documents must be positive, got {max_documents}")
    dataset = load_dataset(name, config, split=split, streaming=streaming, **load_kwargs)
    default_subset = _subset_name(Path(name).name, f"data set {name!r}")
    subsets: dict[str, list[Document]] = {}
    for index, record in enumerate(dataset):
        if max_documents is not None and index >= max_documents:
            break
        where = f"{name} record {index}"
        subset = _subset_name(record.get(subset_field), where) if subset_field else default_subset
        subsets.setdefault(subset, []).append(_record_document(record, text_field, group_field, where))
    if not subsets:
        raise DataError(f"data set {name!r} (split {split!r}) yielded no records")
    return subsets


def build_corpus_from_files(
    paths: Sequence[str | Path],
    out: Path,
    *,
    text_field: str = "text",
    subset_field: str | None = None,
    group_field: str | None = None,
    split_spec: SplitSpec | None = None,
    max_bytes_per_subset: int | None = None,
    overwrite: bool = False,
) -> Corpus:
    """A corpus from local files (see :func:`documents_from_files`), split and recorded like the mini-Pile."""
    docs = documents_from_files(
        paths, text_field=text_field, subset_field=subset_field, group_field=group_field
    )
    return build_corpus_from_documents(
        docs,
        out,
        split_spec=split_spec,
        max_bytes_per_subset=max_bytes_per_subset,
        overwrite=overwrite,
        extra={"input": {"files": [str(Path(p)) for p in paths], "text_field": text_field}},
    )


def build_corpus_from_hf(
    name: str,
    out: Path,
    *,
    split_spec: SplitSpec | None = None,
    max_bytes_per_subset: int | None = None,
    overwrite: bool = False,
    **hf_kwargs: Any,
) -> Corpus:
    """A corpus from a Hugging Face data set (see :func:`documents_from_hf` for the keyword arguments)."""
    docs = documents_from_hf(name, **hf_kwargs)
    source = {"huggingface": name, **{k: v for k, v in hf_kwargs.items() if isinstance(v, str | int | bool)}}
    return build_corpus_from_documents(
        docs,
        out,
        split_spec=split_spec,
        max_bytes_per_subset=max_bytes_per_subset,
        overwrite=overwrite,
        extra={"input": source},
    )
