"""Read R lazy-load databases (``data/Rdata.rdx`` + ``Rdata.rdb``), as CRAN packages ship their data sets.

The ``.rdx`` index is a gzip-compressed serialized R list ``variables`` (name -> (offset, length)) and
``compressed``; each ``.rdb`` record is a 4-byte big-endian length plus a zlib stream (or, for
``compressed`` 2/3, a type byte then bzip2/xz) of a serialized R object. Only the XDR serialization of plain
data (vectors, lists, pairlists, symbols, strings) is supported: enough for text data sets, and it fails
loudly on anything else rather than guess.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archscale.data.errors import DataError

# SEXP type codes from R's serialize.c / Rinternals.h.
_SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 1, 2, 9, 10, 13, 14, 16, 19
_REF, _NIL, _GLOBALENV, _EMPTYENV, _BASEENV = 255, 254, 253, 242, 241
_UTF8_FLAG, _LATIN1_FLAG = 1 << 3, 1 << 2
_NA_INT = -(2**31)


@dataclass
class RVector:
    """An R vector that carries attributes (``names``, ``class``...); plain vectors are Python lists."""

    data: list[Any]
    attributes: dict[str, Any] = field(default_factory=dict)

    def named(self) -> dict[str, Any]:
        names = self.attributes.get("names")
        if names is None or len(names) != len(self.data):
            raise DataError("R vector has no names attribute to index it by")
        return dict(zip(names, self.data, strict=True))


class _Reader:
    def __init__(self, data: bytes) -> None:
        if data[:2] != b"X\n":
            raise DataError(f"unsupported R serialization format {data[:2]!r} (only XDR 'X\\n' is read)")
        self.data, self.pos, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()  # R version that wrote it, minimum reader version
        if version == 3:
            self.take(self.int())  # native encoding name
        elif version != 2:
            raise DataError(f"unsupported R serialization version {version}")

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def length(self) -> int:
        n = self.int()
        if n == -1:
            upper, lower = self.int(), self.int()
            n = (upper << 32) + (lower & 0xFFFFFFFF)
        return n

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def item(self) -> Any:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in (_NIL, _GLOBALENV, _EMPTYENV, _BASEENV):
            return None
        if kind == _REF:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == _LIST:
            return self.pairlist(has_attr, has_tag)
        if kind == _CHAR:
            n = self.int()
            if n == -1:
                return None
            raw = self.take(n)
            return raw.decode("latin-1" if (flags >> 12) & _LATIN1_FLAG else "utf-8", errors="replace")
        if kind in (_LGL, _INT):
            n = self.length()
            values = [None if v == _NA_INT else v for v in struct.unpack_from(f">{n}i", self.data, self.pos)]
            self.pos += 4 * n
        elif kind == _REAL:
            n = self.length()
            values = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        elif kind in (_STR, _VEC):
            values = [self.item() for _ in range(self.length())]
        else:
            raise DataError(f"R object type {kind} is not supported by this reader (only plain data is)")
        if has_attr:
            return RVector(values, dict(self.item()))
        return values

    def pairlist(self, has_attr: int, has_tag: int) -> list[tuple[str | None, Any]]:
        items = []
        while True:
            if has_attr:
                self.item()
            tag = self.item() if has_tag else None
            items.append((tag, self.item()))
            flags = self.int()
            if flags & 0xFF != _LIST:
                if flags & 0xFF != _NIL:
                    raise DataError("malformed R pairlist")
                return items
            has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)


def unserialize(data: bytes) -> Any:
    """Decode one XDR-serialized R object into Python lists, strings, numbers and :class:`RVector`."""
    return _Reader(data).item()


def _decompress(record: bytes, method: int) -> bytes:
    if method == 1:
        return zlib.decompress(record[4:])
    if method in (2, 3):
        kind, body = record[4:5], record[5:]
        codecs = {b"0": lambda b: b, b"2": bz2.decompress, b"Z": lzma.decompress}
        if kind not in codecs:
            raise DataError(f"unknown R lazy-load compression type {kind!r}")
        return codecs[kind](body)
    return record


def read_lazyload_db(rdx: Path) -> dict[str, Any]:
    """All objects of a lazy-load database, by name (``rdx`` names the ``.rdx``; the ``.rdb`` sits beside it)."""
    index = unserialize(gzip.decompress(rdx.read_bytes())).named()
    method = index["compressed"][0] if isinstance(index["compressed"], list) else index["compressed"]
    blob = rdx.with_suffix(".rdb").read_bytes()
    objects = {}
    for name, (offset, length) in index["variables"].named().items():
        objects[name] = unserialize(_decompress(blob[int(offset) : int(offset) + int(length)], int(method)))
    return objects
