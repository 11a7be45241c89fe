"""Read dictd databases (``NAME.index`` + ``NAME.dict.dz``), the format of Debian's ``dict-*`` packages.

The index has one ``headword<TAB>offset<TAB>length`` line per headword, offsets and lengths in dictd's
base64 digits; the ``.dict.dz`` is dictzip, which plain gzip reads. Several headwords can share one entry.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from archscale.data.documents import decode_text
from archscale.data.errors import DataError

_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = {c: i for i, c in enumerate(_DIGITS)}


def decode_number(digits: str) -> int:
    """A dictd base64 number (most significant digit first), e.g. ``"Bp"`` -> 105."""
    value = 0
    for char in digits:
        try:
            value = value * 64 + _VALUE[char]
        except KeyError:
            raise DataError(f"invalid dictd index number {digits!r}") from None
    return value


def read_entries(index: Path) -> Iterator[str]:
    """Every entry of the database ``index`` belongs to, once each, in file order, skipping its metadata.

    The ``.dict.dz`` (or uncompressed ``.dict``) must sit beside the index with the same stem.
    """
    stem = index.with_suffix("")
    data_path = next((p for p in (Path(f"{stem}.dict.dz"), Path(f"{stem}.dict")) if p.is_file()), None)
    if data_path is None:
        raise DataError(f"dictd data file {stem}.dict.dz not found beside {index}")
    data = gzip.decompress(data_path.read_bytes()) if data_path.suffix == ".dz" else data_path.read_bytes()
    spans = set()
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0].startswith(("00-database", "00database")):
            continue
        spans.add((decode_number(fields[1]), decode_number(fields[2])))
    for offset, length in sorted(spans):
        yield decode_text(data[offset : offset + length])
