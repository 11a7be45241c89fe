"""Render man(7) pages to plain text without groff: headings, filled paragraphs, verbatim blocks.

Only the man macro package and the common troff escapes are understood; unknown requests are dropped
(their arguments are layout, not text). Filled text is joined into one line per paragraph rather than
wrapped at 80 columns, which keeps the text free of layout artefacts.
"""

from __future__ import annotations

import re
import shlex

from archscale.data.documents import clean_text

_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’",
    "bu": "•", "co": "©", "rg": "®", "tm": "™", "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "mu": "×",
    "di": "÷", "+-": "±", "<=": "≤", ">=": "≥", "!=": "≠", "->": "→", "<-": "←", "de": "°", "ga": "`",
    "aa": "´", "Fo": "«", "Fc": "»", "pl": "+", "mi": "−", "eq": "=", "**": "*", "or": "|", "ba": "|",
    "dg": "†", "sc": "§", "ps": "¶", "ct": "¢", "Po": "£", "Eu": "€", "Ye": "¥", "ss": "ß",
}  # fmt: skip
_ESCAPE = re.compile(
    r"\\(?:"
    r"f(?:\[[^\]]*\]|\(..|.)"  # font change
    r"|s[-+]?(?:\d+|\(\d\d|\[[^\]]*\])"  # size change
    r"|[*n](?:\[[^\]]*\]|\(..|.)"  # string or number register
    r"|\((?P<g2>..)|\[(?P<gn>[^\]]*)\]"  # named glyph
    r"|[kmMVY](?:\[[^\]]*\]|\(..|.)|[hvwlLxoDbHSXZRzN]'[^']*'"  # motions and oddities with arguments
    r"|(?P<c>.))"
)
_SIMPLE = {
    "-": "-",
    "e": "\\",
    "\\": "\\",
    " ": " ",
    "~": " ",
    "0": " ",
    "t": "\t",
    "'": "´",
    "`": "`",
    '"': "",
}
_STRINGS = {"lq": "“", "rq": "”", "R": "®", "Tm": "™", "aq": "'"}
_JOIN = ("BR", "BI", "IR", "IB", "RB", "RI")
_PLAIN = ("B", "I", "SM", "SB")
_BREAKS = ("PP", "P", "LP", "sp", "br", "HP", "RS", "RE", "in", "ti", "ne", "bp")


def unescape(text: str) -> str:
    """Replace troff escapes in running text with the characters they stand for (or nothing)."""

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        name = match.group("g2") or match.group("gn")
        if name is not None:
            return _GLYPHS.get(name, "")
        if whole.startswith(("\\*", "\\n")):
            key = whole[2:].strip("[]").lstrip("(")
            return _STRINGS.get(key, "") if whole.startswith("\\*") else ""
        char = match.group("c")
        if char is not None:
            return _SIMPLE.get(char, "")
        return ""

    return _ESCAPE.sub(replace, text)


def _arguments(line: str) -> list[str]:
    try:
        return shlex.split(line.replace('""', "\x00"), posix=True)
    except ValueError:
        return line.split()


def man_to_text(source: str) -> str:
    """Plain text of a man page source (the contents of ``foo.1``, already decompressed)."""
    out: list[str] = []
    paragraph: list[str] = []
    fill = True
    table_header = False  # inside .TS, before the format line that ends with "."
    tag_next = False  # the next output line is a .TP tag: it stands on its own line
    skip_until = None

    def flush() -> None:
        if paragraph:
            out.append(" ".join(paragraph))
            paragraph.clear()

    def emit(text: str) -> None:
        nonlocal tag_next
        text = unescape(text).replace("\x00", '"')
        if fill:
            if text.strip():
                paragraph.append(text.strip())
                if tag_next:
                    flush()
                    tag_next = False
        else:
            out.append(text)

    for raw in re.sub(r"(?<!\\)\\\n", "", source).splitlines():
        if table_header:
            table_header = not raw.rstrip().endswith(".")
            continue
        if skip_until is not None:
            if raw.startswith(skip_until):
                skip_until = None
            continue
        if raw.startswith(('.\\"', "'\\\"", '.\\"', '\\"')):
            continue
        if not raw.startswith((".", "'")):
            emit(raw.replace("T{", "").replace("T}", ""))
            continue
        request, _, rest = raw[1:].strip().partition(" ")
        if request in ("de", "de1", "am", "ig"):
            skip_until = ".."
        elif request == "TS":
            flush()
            table_header, fill = True, False
        elif request == "TE":
            fill = True
        elif request in ("SH", "SS"):
            flush()
            out.append("")
            out.append(unescape(" ".join(_arguments(rest))).upper() if request == "SH" else unescape(rest))
        elif request == "TH":
            args = _arguments(rest)
            out.append(f"{args[0]}({args[1]})" if len(args) > 1 else " ".join(args))
        elif request in ("nf", "EX"):
            flush()
            fill = False
        elif request in ("fi", "EE"):
            fill = True
        elif request in _BREAKS or request in ("TP", "IP", "TQ", "PD"):
            flush()
            if request in ("PP", "P", "LP", "sp", "HP", "TP", "IP"):
                out.append("")
            tag_next = request == "TP"
            if request == "IP" and rest:
                tag_next = True
                emit(_arguments(rest)[0])
        elif request in _PLAIN:
            emit(" ".join(_arguments(rest)))
        elif request in _JOIN:
            emit("".join(_arguments(rest)))
        elif request in ("UR", "MT"):
            continue
        elif request in ("UE", "ME"):
            emit(" ".join(_arguments(rest)))
    flush()
    return clean_text("\n".join(out))
