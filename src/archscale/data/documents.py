"""Documents and the text hygiene every extractor shares.

A :class:`Document` carries a ``group``: the unit the train/validation/test split assigns (a book, a play,
a source file). Chapters of one book share a group, so no book is ever split across sets.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# C0/C1 controls except tab and newline: they carry no text and upset tokeniser training.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUN = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a subset; ``group`` keeps related documents in the same split."""

    text: str
    group: str


def content_hash(text: str) -> str:
    """sha256 of the UTF-8 text: the identity used to drop exact duplicates."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_text(data: bytes) -> str:
    """Bytes to text: UTF-8 when valid, else Latin-1 (the legacy encoding of old docs and fortunes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text_file(path: Path) -> str:
    """A text file's contents, gunzipped when it ends in ``.gz`` (as Debian ships docs and man pages)."""
    data = path.read_bytes()
    return decode_text(gzip.decompress(data) if path.suffix == ".gz" else data)


def clean_text(text: str) -> str:
    """Normalise newlines, drop control characters, trailing blanks and runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


def pack_entries(entries: Iterable[str], group_prefix: str, target_bytes: int = 16_000) -> Iterator[Document]:
    """Join consecutive short entries (dictionary entries, quotes) into documents of about ``target_bytes``.

    Each packed document is its own group, named by its position, so the grouping is stable for stable input.
    """
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    chunk: list[str] = []
    size = 0
    index = 0
    for entry in entries:
        entry = entry.strip("\n")
        if not entry.strip():
            continue
        size += len(entry.encode("utf-8")) + (2 if chunk else 0)  # 2: the blank line joining entries
        chunk.append(entry)
        if size >= target_bytes:
            yield Document("\n\n".join(chunk), f"{group_prefix}/{index:05d}")
            chunk, size, index = [], 0, index + 1
    if chunk:
        yield Document("\n\n".join(chunk), f"{group_prefix}/{index:05d}")
