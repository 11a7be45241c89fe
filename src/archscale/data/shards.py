"""Token shards: each subset's split tokenised once into a flat memory-mapped array and reused.

Layout: ``<corpus>/shards/<tokenizer>/<split>/<subset>.bin`` (raw ids, smallest sufficient unsigned dtype,
every document followed by the end-of-text id) and ``<subset>.json`` (written last: dtype, token count,
sha256, and the tokeniser and text hashes it was built from). A shard whose text or tokeniser changed is
rebuilt; one whose size or hash no longer matches its record is refused with :class:`CorruptShardError`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from archscale.data.corpus import Corpus
from archscale.data.errors import CorruptShardError, DataError
from archscale.data.io import exclusive, read_json, sha256_file, temporary_path, write_json_atomic
from archscale.data.split import SPLITS
from archscale.data.tokenizer import Tokenizer

FORMAT = "archscale-shard/1"
_BATCH_DOCUMENTS = 256


@dataclass
class Shards:
    """The tokenised subsets of one split: ``shards[subset]`` is a read-only 1-D array of token ids."""

    corpus: Corpus
    tokenizer: Tokenizer
    split: str
    tokens: dict[str, np.ndarray] = field(repr=False)

    @property
    def subsets(self) -> list[str]:
        return list(self.tokens)

    @property
    def eot_id(self) -> int:
        return self.tokenizer.eot_id

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def num_tokens(self) -> int:
        return sum(len(t) for t in self.tokens.values())

    def __getitem__(self, subset: str) -> np.ndarray:
        try:
            return self.tokens[subset]
        except KeyError:
            raise DataError(
                f"no shard for subset {subset!r}; these shards hold: {', '.join(self.subsets)}"
            ) from None


def shard_dir(corpus: Corpus, tokenizer_name: str, split: str) -> Path:
    return corpus.path / "shards" / tokenizer_name / split


def _rebuild_hint(tokenizer: Tokenizer, split: str) -> str:
    return (
        f"rebuild with get_shards(corpus, tokenizer, {split!r}, rebuild=True) "
        f"or `archscale data shards --tokenizer {tokenizer.name} --split {split} --rebuild`"
    )


def _open(path: Path, record: dict[str, Any], tokenizer: Tokenizer, split: str, verify: bool) -> np.ndarray:
    """Memory-map a shard after checking its size (always) and sha256 (when ``verify``)."""
    dtype = np.dtype(record["dtype"])
    expected = int(record["tokens"]) * dtype.itemsize
    problem = None
    if not path.is_file():
        problem = "the file is missing"
    elif (size := path.stat().st_size) != expected:
        problem = f"{size} bytes on disk, {expected} recorded"
    elif verify and sha256_file(path) != record["sha256"]:
        problem = "its sha256 differs from the recorded one"
    if problem:
        raise CorruptShardError(
            f"corrupted/truncated shard {path}: {problem}; {_rebuild_hint(tokenizer, split)}"
        )
    if expected == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(int(record["tokens"]),))


def _write(
    path: Path, texts: Iterable[str], tokenizer: Tokenizer, advance: Callable[[int], object]
) -> dict[str, Any]:
    """Tokenise ``texts`` into ``path`` (via a temporary file) and return counts and hash."""
    dtype = tokenizer.dtype
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    digest = hashlib.sha256()
    tokens = documents = 0
    tmp = temporary_path(path)

    def flush(batch: list[str], handle: Any) -> int:
        pieces = [p for ids in tokenizer.encode_batch(batch) for p in (ids.astype(dtype, copy=False), eot)]
        chunk = np.concatenate(pieces).tobytes()
        digest.update(chunk)
        handle.write(chunk)
        advance(sum(len(t.encode("utf-8")) for t in batch))
        return len(chunk) // dtype.itemsize

    with open(tmp, "wb") as handle:
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            documents += 1
            if len(batch) == _BATCH_DOCUMENTS:
                tokens += flush(batch, handle)
                batch = []
        if batch:
            tokens += flush(batch, handle)
    os.replace(tmp, path)
    return {"dtype": dtype.name, "tokens": tokens, "documents": documents, "sha256": digest.hexdigest()}


def _fresh_or_built(
    corpus: Corpus,
    tokenizer: Tokenizer,
    split: str,
    names: Sequence[str],
    folder: Path,
    source: dict[str, str],
    rebuild: bool,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """The shard records of ``names``, building those missing, stale (other text or tokeniser) or asked for."""
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for subset in names:
        meta = folder / f"{subset}.json"
        record = read_json(meta) if meta.is_file() else None
        fresh = (
            record is not None
            and record.get("format") == FORMAT
            and record.get("tokenizer_fingerprint") == tokenizer.fingerprint
            and record.get("source_sha256") == source[subset]
        )
        if rebuild or not fresh:
            meta.unlink(missing_ok=True)
            todo.append(subset)
        else:
            records[subset] = record
    if todo:
        total = sum(corpus.num_bytes(s, split) for s in todo)
        terminal = sys.stderr.isatty()  # in a file or a pipe, a line per subset instead of a bar
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=f"{tokenizer.name} {split}",
            disable=not progress or not terminal,
        ) as bar:
            for number, subset in enumerate(todo, 1):
                bar.set_postfix_str(subset)
                if progress and not terminal:
                    print(
                        f"tokenising {split} with {tokenizer.name}: {subset} ({number}/{len(todo)})",
                        file=sys.stderr,
                    )
                record = _write(
                    folder / f"{subset}.bin", corpus.documents(subset, split), tokenizer, bar.update
                )
                record.update(
                    format=FORMAT,
                    tokenizer=tokenizer.name,
                    tokenizer_fingerprint=tokenizer.fingerprint,
                    source_sha256=source[subset],
                    bytes=corpus.num_bytes(subset, split),
                    eot_id=tokenizer.eot_id,
                )
                write_json_atomic(folder / f"{subset}.json", record)
                records[subset] = record
    return records


def get_shards(
    corpus: Corpus,
    tokenizer: Tokenizer,
    split: str = "train",
    *,
    subsets: Sequence[str] | None = None,
    rebuild: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> Shards:
    """Token arrays of ``split`` for each subset (default: all), building any that are missing or stale.

    ``verify`` re-hashes every shard on load (about a second per GB); its size is always checked.
    """
    if split not in SPLITS:
        raise DataError(f"split {split!r} is unknown: use one of {', '.join(SPLITS)}")
    names = list(subsets) if subsets is not None else corpus.subsets
    folder = shard_dir(corpus, tokenizer.name, split)
    folder.mkdir(parents=True, exist_ok=True)
    source = {s: corpus.file_sha256(s, split) for s in names}
    with exclusive(folder / ".lock"):
        records = _fresh_or_built(corpus, tokenizer, split, names, folder, source, rebuild, progress)
    tokens = {s: _open(folder / f"{s}.bin", records[s], tokenizer, split, verify) for s in names}
    return Shards(corpus=corpus, tokenizer=tokenizer, split=split, tokens=tokens)


def shard_token_counts(corpus: Corpus) -> dict[str, dict[str, dict[str, int]]]:
    """Tokens per tokeniser, subset and split, for every shard built so far (read from the records)."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for meta in sorted((corpus.path / "shards").glob("*/*/*.json")):
        record = read_json(meta)
        tokenizer, split, subset = meta.parent.parent.name, meta.parent.name, meta.stem
        counts.setdefault(tokenizer, {}).setdefault(subset, {})[split] = int(record["tokens"])
    return counts
