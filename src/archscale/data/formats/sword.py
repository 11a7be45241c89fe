"""Read Bible chapters from SWORD ``zText`` modules (Debian ``sword-text-*``), OSIS markup removed.

A zText module stores each testament as ``ot.bzs`` (12-byte little-endian block records: offset, size,
uncompressed size) over ``ot.bzz`` (zlib blocks). With ``BlockType=BOOK`` a block is one book, and OSIS
modules mark chapters with ``<chapter osisID="Gen.1" sID=.../>`` milestones, so chapters can be cut from
the decompressed book without a versification table.

Kept hand-written after trying pysword 0.2.8 (its last release, May 2022) on the KJV module (2026-12-02):
it returns verses, one per line with stray spaces, and drops the OSIS paragraph and poetry-line structure
that the chapters here keep; changing it would also change the corpus and every study trained on it.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archscale.data.documents import clean_text
from archscale.data.errors import DataError

_CHAPTER = re.compile(r'<chapter\b[^>]*\bosisID="([^".]+)\.(\d+)"[^>]*\bsID="[^"]*"[^>]*/>')
_DROP = re.compile(r"<(note|milestone)\b[^>]*?(/>|>.*?</\1>)", re.DOTALL)
_INLINE = re.compile(r"</?(w|transChange|divineName|name|hi|seg|foreign|rdg|catchWord)\b[^>]*>")
_PARAGRAPH = re.compile(
    r'<div\b[^>]*\btype="(x-p|paragraph|section|majorSection)"[^>]*>|</?(p|lg|title)\b[^>]*>'
)
_LINE = re.compile(r"</?(l|lb|item)\b[^>]*>")
_RUNNING_HEAD = re.compile(r'<milestone\b[^>]*\bn="([^"]+)"[^>]*\btype="x-usfm-h"')
_TAG = re.compile(r"<[^>]+>")
_BREAKS = re.compile(r"[ \t]*[\x01\x02][\s\x01\x02]*")
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Chapter:
    book: str  # OSIS book id, e.g. "Gen"
    book_title: str  # the running head, e.g. "Genesis" (the id where the module gives none)
    number: int
    text: str


def read_conf(path: Path) -> dict[str, str]:
    """The ``key=value`` settings of a ``mods.d/*.conf`` file (first value wins for repeated keys)."""
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), value.strip())
    return settings


def _gap(match: re.Match[str]) -> str:
    """A dropped note between two words leaves a space (``God<note/>created``), elsewhere nothing."""
    before = match.string[match.start() - 1 : match.start()]
    after = match.string[match.end() : match.end() + 1]
    return " " if before.isalnum() and after.isalnum() else ""


def osis_to_text(markup: str) -> str:
    """Plain text of an OSIS fragment: notes dropped, paragraphs and titles as blocks, verse lines as lines.

    Break tags become markers first (\\x01 paragraph, \\x02 line) so that a run of breaks collapses to one
    blank line if it holds any paragraph break, else to one newline.
    """
    text = _DROP.sub(_gap, _INLINE.sub("", markup))
    text = _LINE.sub("\x02", _PARAGRAPH.sub("\x01", text))
    text = html.unescape(_TAG.sub("", text))
    text = _BREAKS.sub(lambda m: "\n\n" if "\x01" in m.group() else "\n", text)
    return clean_text("\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")))


def split_chapters(book_markup: str) -> Iterator[Chapter]:
    """Cut one decompressed book block at its chapter milestones (text before chapter 1 is dropped)."""
    marks = list(_CHAPTER.finditer(book_markup))
    head = _RUNNING_HEAD.search(book_markup, 0, marks[0].start()) if marks else None
    for mark, following in zip(marks, [*marks[1:], None], strict=False):
        end = following.start() if following else len(book_markup)
        text = osis_to_text(book_markup[mark.end() : end])
        if text:
            title = html.unescape(head.group(1)) if head else mark.group(1)
            yield Chapter(mark.group(1), title, int(mark.group(2)), text)


def read_blocks(module_dir: Path, testament: str) -> Iterator[str]:
    """The decompressed blocks of one testament (``ot`` or ``nt``) of a zText module, in order."""
    index, data = module_dir / f"{testament}.bzs", module_dir / f"{testament}.bzz"
    if not index.is_file():
        return
    records = index.read_bytes()
    blob = data.read_bytes()
    for start in range(0, len(records) - 11, 12):
        offset, size, _ = struct.unpack_from("<III", records, start)
        if size:
            yield zlib.decompress(blob[offset : offset + size]).decode("utf-8", errors="replace")


def read_module(sword_root: Path, conf: Path) -> Iterator[Chapter]:
    """Every chapter of the module described by ``conf`` (a file under ``sword_root/mods.d``)."""
    settings = read_conf(conf)
    if settings.get("ModDrv", "").lower() != "ztext" or settings.get("SourceType", "").upper() != "OSIS":
        raise DataError(f"{conf}: only OSIS zText modules are supported (ModDrv={settings.get('ModDrv')})")
    if settings.get("CompressType", "ZIP").upper() != "ZIP":
        raise DataError(f"{conf}: only ZIP-compressed modules are supported")
    module_dir = sword_root / settings["DataPath"]
    for testament in ("ot", "nt"):
        for block in read_blocks(module_dir, testament):
            yield from split_chapters(block)
