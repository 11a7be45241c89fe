"""HTML pages to plain text with the standard library's ``html.parser``, dropping navigation and chrome.

Generated documentation (Sphinx, DocBook, the PostgreSQL and Django manuals) wraps each page in
navigation bars, sidebars and footers; those elements are skipped by tag and by class/id/role, so what is
left is the page's own text. Block elements become line or paragraph breaks; ``<pre>`` keeps its layout.

Kept hand-written after measuring the library the field uses for this, trafilatura 2.3.1 (2026-12-02, the
first 300 PostgreSQL 15 manual pages): it took 3.9 s against 1.1 s, dropped every page's title and the
paragraph breaks, needed the separate ``lxml_html_clean``, and kept no more of the manual's content (432
``CREATE`` statements against 435 here). Switching would also change the corpus, and with it every number
of every study trained on it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from archscale.data.documents import clean_text

_SKIP_TAGS = {"script", "style", "head", "nav", "noscript", "svg", "button", "form", "select", "textarea"}
_SKIP_MARKERS = re.compile(
    r"\b(nav|navigation|docnav|navheader|navfooter|sphinxsidebar|related|footer|breadcrumbs?|headerlink|toc|"
    r"skip-link|search|sidebar|banner|hd|ft|cookie)\b",
    re.IGNORECASE,
)
_VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "blockquote", "ul", "ol", "dl",
              "section", "article", "hr", "figure", "div"}  # fmt: skip
_LINE = {"br", "li", "tr", "dt", "dd", "caption", "figcaption", "title"}
_CELL = {"td", "th"}
_BREAKS = re.compile(r"[ \t]*[\x01\x02][\s\x01\x02]*")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip: list[str] = []  # open tags of a skipped element (we skip until it closes)
        self.pre = 0

    def _skipped(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in _SKIP_TAGS:
            return True
        marks = " ".join(v or "" for k, v in attrs if k in ("class", "id", "role"))
        return bool(marks and _SKIP_MARKERS.search(marks))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag == self.skip[0] and tag not in _VOID:
                self.skip.append(tag)
            return
        if tag not in _VOID and self._skipped(tag, attrs):
            self.skip.append(tag)
            return
        self._break(tag)
        if tag == "pre":
            self.pre += 1
        elif tag in _CELL:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[0]:
                self.skip.pop()
            return
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH:
            self.parts.append("\x01")
        elif tag in _LINE:
            self.parts.append("\x02")


def html_to_text(page: str) -> str:
    """The readable text of one HTML page."""
    parser = _TextExtractor()
    parser.feed(page)
    parser.close()
    text = _BREAKS.sub(lambda m: "\n\n" if "\x01" in m.group() else "\n", "".join(parser.parts))
    return clean_text(
        "\n".join(line.rstrip() if line.startswith(" ") else line.strip() for line in text.split("\n"))
    )
