"""Extractors for the reference subsets: dictionary, encyclopedic and quotes.

Their natural units (entries, glosses, quotations) are a few hundred bytes, so consecutive entries are
packed into ~16 KB documents, each its own split group.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from archscale.data.documents import Document, clean_text, pack_entries, read_text_file
from archscale.data.formats.dictd import read_entries
from archscale.data.minipile.common import Roots, package_root, require_files

# GCIDE marks each sense's source on its own line ("[1913 Webster]") and writes accents as "['e]".
_SOURCE_TAG = r"\[(?:[^\]\n]*(?:Webster|WordNet|Century|RDH|MW10|NRS|DJW)[^\]\n]*|(?:PJC|AS|JC|CS)\.?)\]"
_GCIDE_SOURCE_LINE = re.compile(rf"^[ \t]*{_SOURCE_TAG}[ \t]*\n?", re.MULTILINE)
_GCIDE_SOURCE = re.compile(rf"[ \t]*{_SOURCE_TAG}")
_GCIDE_ACCENT = re.compile(r"\[([\'`=.~\-\"^,*])([A-Za-z]{1,2})\]")
_COMBINING = {"'": "\u0301", "`": "\u0300", "=": "\u0304", ".": "\u0307", "~": "\u0303", "-": "\u0306",
              '"': "\u0308", "^": "\u0302", ",": "\u0327", "*": "\u030a"}  # fmt: skip
_GCIDE_NAMED = re.compile(r"\[([A-Za-z]{1,2})(mac|um|\^|acute|grave|cir|til|ced)\]")
_NAMED_MARK = {"mac": "\u0304", "um": "\u0308", "^": "\u0306", "acute": "\u0301", "grave": "\u0300",
               "cir": "\u0302", "til": "\u0303", "ced": "\u0327"}  # fmt: skip
_GCIDE_SYMBOLS = {"[ae]": "æ", "[AE]": "Æ", "[oe]": "œ", "[OE]": "Œ", "[root]": "√", "[frac12]": "½",
                  "[frac14]": "¼", "[frac34]": "¾", "[deg]": "°", "[sect]": "§", "[pound]": "£", "[eth]": "ð", "[thorn]": "þ"}  # fmt: skip
_CROSS_REFERENCE = re.compile(r"[{}]")
_JARGON_ENTRY = re.compile(r"^   :[^:\n]+:", re.MULTILINE)
_JARGON_PART = re.compile(r"^(Chapter \d+\.|Glossary$|Appendix [A-Z]\.).*$", re.MULTILINE)
_WORDNET_POS = {"noun": "n.", "verb": "v.", "adj": "adj.", "adv": "adv."}
_ENTRY_SIZE = 16_000


def _accented(letters: str, mark: str) -> str:
    return unicodedata.normalize("NFC", letters + mark)


def clean_gcide(entry: str) -> str:
    """A GCIDE entry without source tags and cross-reference braces, its accent codes as Unicode."""
    entry = _GCIDE_SOURCE.sub("", _GCIDE_SOURCE_LINE.sub("", entry))
    entry = _GCIDE_ACCENT.sub(lambda m: _accented(m.group(2), _COMBINING[m.group(1)]), entry)
    entry = _GCIDE_NAMED.sub(lambda m: _accented(m.group(1), _NAMED_MARK[m.group(2)]), entry)
    for code, symbol in _GCIDE_SYMBOLS.items():
        entry = entry.replace(code, symbol)
    return clean_text(_CROSS_REFERENCE.sub("", entry))


def _dict_entries(root: Path, name: str) -> Iterator[str]:
    for index in require_files(root, f"usr/share/dictd/{name}.index"):
        yield from read_entries(index)


def dictionary(roots: Roots) -> Iterator[Document]:
    """GCIDE: Webster's 1913 Unabridged plus WordNet glosses, markup removed."""
    gcide = package_root(roots, "dict-gcide")
    yield from pack_entries((clean_gcide(e) for e in _dict_entries(gcide, "gcide")), "gcide", _ENTRY_SIZE)


def wordnet_glosses(data_file: Path) -> Iterator[str]:
    """``lemma, lemma (pos): gloss`` for each synset of a WordNet ``data.<pos>`` file."""
    pos = _WORDNET_POS[data_file.suffix.lstrip(".")]
    for line in read_text_file(data_file).splitlines():
        if line.startswith(" ") or " | " not in line:
            continue  # licence header, or a synset without gloss
        fields, gloss = line.split(" | ", 1)
        parts = fields.split()
        count = int(parts[3], 16)
        lemmas = [re.sub(r"\(\w+\)$", "", w).replace("_", " ") for w in parts[4 : 4 + 2 * count : 2]]
        yield f"{', '.join(lemmas)} ({pos}): {gloss.strip()}"


def jargon_sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """The Jargon File as (part name, units): chapters whole, the glossary as its entries."""
    parts = list(_JARGON_PART.finditer(text))
    for part, following in zip(parts, [*parts[1:], None], strict=False):
        body = text[part.start() : following.start() if following else len(text)]
        if part.group(1) == "Glossary":
            starts = [m.start() for m in _JARGON_ENTRY.finditer(body)]
            yield "glossary", [body[a:b] for a, b in zip(starts, [*starts[1:], len(body)], strict=False)]
        else:
            yield part.group(1).rstrip("."), [body]


def encyclopedic(roots: Roots) -> Iterator[Document]:
    """FOLDOC, the Devil's Dictionary, the elements, the Jargon File and WordNet glosses."""
    for package, name in (("dict-foldoc", "foldoc"), ("dict-devil", "devil"), ("dict-elements", "elements")):
        entries = (
            clean_text(_CROSS_REFERENCE.sub("", e)) for e in _dict_entries(package_root(roots, package), name)
        )
        yield from pack_entries(entries, name, _ENTRY_SIZE)
    jargon = package_root(roots, "jargon-text")
    for path in require_files(jargon, "usr/share/doc/jargon-text/jargon.txt.gz"):
        for section, units in jargon_sections(read_text_file(path)):
            cleaned = (
                clean_text(_CROSS_REFERENCE.sub("", "\n".join(s.strip() for s in u.split("\n"))))
                for u in units
            )
            yield from pack_entries(cleaned, f"jargon/{section}", _ENTRY_SIZE)
    wordnet = package_root(roots, "wordnet-base")
    for data_file in require_files(wordnet, "usr/share/wordnet/data.*"):
        if data_file.suffix.lstrip(".") in _WORDNET_POS:
            yield from pack_entries(
                wordnet_glosses(data_file), f"wordnet/{data_file.suffix[1:]}", _ENTRY_SIZE
            )


def fortune_entries(text: str) -> list[str]:
    """The quotations of a fortune(6) file, which separates them with lines holding only ``%``."""
    return [clean_text(e) for e in re.split(r"^%$", text, flags=re.MULTILINE) if e.strip()]


def quotes(roots: Roots) -> Iterator[Document]:
    """English fortune cookies (quotations, humour, tips) and an English Dhammapada."""
    for package in ("fortunes", "fortunes-bofh-excuses", "fortunes-debian-hints"):
        root = package_root(roots, package)
        for path in require_files(root, "usr/share/games/fortunes/*"):
            if not path.suffix:  # skip the .dat indexes and .u8 links
                yield from pack_entries(
                    fortune_entries(read_text_file(path)), f"fortunes/{path.name}", _ENTRY_SIZE
                )
    dhammapada = package_root(roots, "display-dhammapada")
    for path in require_files(dhammapada, "usr/share/display-dhammapada/dhammapada-english-transl.txt"):
        paragraphs = re.split(r"\n\s*\n", read_text_file(path))
        yield from pack_entries((clean_text(p) for p in paragraphs), f"dhammapada/{path.stem}", _ENTRY_SIZE)
