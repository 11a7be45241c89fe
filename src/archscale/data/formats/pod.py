"""Render Perl POD (perlpod) to plain text without ``pod2text``: headings, paragraphs, verbatim blocks.

Formatting codes (``B<>``, ``C<< >>``, ``L<text|target>``, ``E<gt>``...) are resolved to their text;
``=begin``/``=end`` and ``=for`` blocks for other formatters are dropped.
"""

from __future__ import annotations

import html
import re

from archscale.data.documents import clean_text

_CODE_START = re.compile(r"([A-Z])(<+)(\s?)")
_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}


def _entity(name: str) -> str:
    if name in _ESCAPES:
        return _ESCAPES[name]
    if name.isdigit() or name.lower().startswith("0x"):
        return chr(int(name, 0) if not name.isdigit() else int(name))
    return html.unescape(f"&{name};")


def _link(body: str) -> str:
    """``L<text|target>`` shows text; ``L<name/"section">`` shows the section and page."""
    if "|" in body:
        return body.split("|", 1)[0]
    page, _, section = body.partition("/")
    section = section.strip('"')
    return f'"{section}" in {page}' if page and section else section or page


def expand_codes(text: str) -> str:
    """Replace POD formatting codes with their text, innermost first, honouring ``C<< ... >>`` delimiters."""
    out: list[str] = []
    stack: list[tuple[str, int, int]] = []  # (code letter, closing length, index in out where it began)
    pos = 0
    while pos < len(text):
        opening = _CODE_START.match(text, pos)
        if opening and (len(opening.group(2)) == 1 or opening.group(3)):
            width = len(opening.group(2))
            stack.append((opening.group(1), width, len(out)))
            pos = opening.end()
            continue
        if stack:
            letter, width, start = stack[-1]
            closing = (" " if width > 1 else "") + ">" * width
            if text.startswith(closing, pos) or (width > 1 and text.startswith(">" * width, pos)):
                stack.pop()
                body = "".join(out[start:])
                del out[start:]
                out.append(_resolve(letter, body.rstrip() if width > 1 else body))
                pos += len(closing) if text.startswith(closing, pos) else width
                continue
        out.append(text[pos])
        pos += 1
    while stack:  # unbalanced codes: keep their text
        stack.pop()
    return "".join(out)


def _resolve(letter: str, body: str) -> str:
    if letter == "E":
        return _entity(body)
    if letter == "L":
        return _link(body)
    if letter in ("X", "Z"):
        return ""
    return body


def pod_to_text(source: str) -> str:
    """Plain text of a ``.pod`` file (or of the POD inside a Perl module)."""
    out: list[str] = []
    in_pod = False
    skip_block = None  # name of a =begin block for another formatter
    for paragraph in re.split(r"\n[ \t]*\n", source.replace("\r\n", "\n")):
        if not paragraph.strip():
            continue
        if paragraph.startswith("="):
            command, _, rest = paragraph[1:].partition(" ")
            command = command.strip().split("\n")[0]
            rest = rest.strip()
            in_pod = command != "cut"
            if skip_block is not None:
                if command == "end" and rest.split()[:1] == [skip_block]:
                    skip_block = None
                continue
            if command == "begin":
                skip_block = rest.split()[0] if rest.split() and rest.split()[0] != "text" else None
            elif command.startswith("head"):
                out.append(expand_codes(" ".join(rest.split())))
            elif command == "item":
                item = expand_codes(" ".join(rest.split()))
                if item and item != "*":
                    out.append(item)
            continue
        if not in_pod or skip_block is not None:
            continue
        if paragraph[:1] in (" ", "\t"):
            out.append(paragraph)
        else:
            out.append(expand_codes(" ".join(paragraph.split())))
    return clean_text("\n\n".join(out))
