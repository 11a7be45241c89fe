"""Source-format readers, each checked against inputs written independently in the test."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from archscale.data import DataError
from archscale.data.formats.dictd import decode_number, read_entries
from archscale.data.formats.html import html_to_text
from archscale.data.formats.pod import pod_to_text
from archscale.data.formats.r_lazyload import read_lazyload_db
from archscale.data.formats.roff import man_to_text
from archscale.data.formats.sword import read_module
from archscale.data.minipile.literature import (
    detokenize_brown,
    render_conversations,
    split_chapters,
    strip_gutenberg,
)
from archscale.data.minipile.reference import clean_gcide, fortune_entries, jargon_sections, wordnet_glosses
from archscale.data.minipile.technical import looks_like_code

# --- a minimal R XDR serializer, written from R's documented format (R Internals, "Serialization") ---


def _int(v: int) -> bytes:
    return struct.pack(">i", v)


def _char(s: str) -> bytes:
    raw = s.encode()
    return _int(9 | ((1 << 3) << 12)) + _int(len(raw)) + raw  # CHARSXP, UTF-8 flag in the levels


def _sym(name: str) -> bytes:
    return _int(1) + _char(name)


def _attrs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    out = b""
    for tag, value in pairs:
        out += _int(2 | (1 << 10)) + tag + value  # LISTSXP with a tag
    return out + _int(254)  # NILVALUE ends the pairlist


def _strsxp(values: list[str | None], attrs: bytes = b"") -> bytes:
    body = b"".join(_int(9) + _int(-1) if v is None else _char(v) for v in values)
    return _int(16 | ((1 << 9) if attrs else 0)) + _int(len(values)) + body + attrs


def _intsxp(values: list[int], kind: int = 13) -> bytes:
    return _int(kind) + _int(len(values)) + b"".join(_int(v) for v in values)


def _vecsxp(items: list[bytes], attrs: bytes = b"") -> bytes:
    return _int(19 | ((1 << 9) if attrs else 0)) + _int(len(items)) + b"".join(items) + attrs


def _serialize(body: bytes) -> bytes:
    return b"X\n" + _int(3) + _int(0x040201) + _int(0x030500) + _int(5) + b"UTF-8" + body


def _lazyload_db(folder, objects: dict[str, bytes], compressed: int = 1) -> None:
    """Write ``Rdata.rdx`` + ``Rdata.rdb`` holding the serialized ``objects`` (R Internals' layout)."""
    blob, variables = b"", []
    for name, payload in objects.items():
        record = struct.pack(">I", len(payload)) + zlib.compress(payload)
        variables.append((name, len(blob), len(record)))
        blob += record
    names = _attrs([(_sym("names"), _strsxp([n for n, _, _ in variables]))])
    index = _vecsxp(
        [
            _vecsxp([_intsxp([off, size]) for _, off, size in variables], names),
            _vecsxp([]),
            _intsxp([compressed], kind=10),  # compressed = TRUE (zlib)
        ],
        _attrs([(_sym("names"), _strsxp(["variables", "references", "compressed"]))]),
    )
    (folder / "Rdata.rdb").write_bytes(blob)
    (folder / "Rdata.rdx").write_bytes(gzip.compress(_serialize(index)))


def test_read_lazyload_db_round_trip(tmp_path):
    """Objects written by a serializer built from R's documented format come back as written, NA included."""
    _lazyload_db(
        tmp_path,
        {
            "emma": _serialize(_strsxp(["EMMA", "", "CHAPTER I", None, "Emma Woodhouse"])),
            "moby": _serialize(_strsxp(["Call me Ishmael."])),
        },
    )
    found = read_lazyload_db(tmp_path / "Rdata.rdx")
    assert {name: list(value) for name, value in found.items()} == {
        "emma": ["EMMA", "", "CHAPTER I", None, "Emma Woodhouse"],
        "moby": ["Call me Ishmael."],
    }


def test_a_broken_lazyload_db_is_refused_by_name(tmp_path):
    _lazyload_db(tmp_path, {"emma": b"A\n not an R object"})
    with pytest.raises(DataError, match="cannot decode an R object"):
        read_lazyload_db(tmp_path / "Rdata.rdx")
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(_serialize(_strsxp(["just", "text"]))))
    with pytest.raises(DataError, match="not an R lazy-load index"):
        read_lazyload_db(tmp_path / "Rdata.rdx")


def test_dictd_reads_each_entry_once_in_file_order(tmp_path):
    entries = [b"apple\n   A fruit.\n", b"banana\n   Another fruit.\n"]
    info = b"00-database-info\n   metadata\n"
    data = info + b"".join(entries)
    offsets = [len(info), len(info) + len(entries[0])]
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(n: int) -> str:
        out = ""
        while True:
            out = digits[n % 64] + out
            n //= 64
            if not n:
                return out

    lines = [
        f"00-database-info\t{b64(0)}\t{b64(len(info))}",
        f"apple\t{b64(offsets[0])}\t{b64(len(entries[0]))}",
        f"apples\t{b64(offsets[0])}\t{b64(len(entries[0]))}",  # a second headword for the same entry
        f"banana\t{b64(offsets[1])}\t{b64(len(entries[1]))}",
    ]
    (tmp_path / "fruit.index").write_text("\n".join(lines) + "\n")
    (tmp_path / "fruit.dict.dz").write_bytes(gzip.compress(data))
    assert decode_number("Bp") == 1 * 64 + 41
    assert list(read_entries(tmp_path / "fruit.index")) == [e.decode() for e in entries]


def test_sword_ztext_module_chapters(tmp_path):
    book = (
        '<div osisID="Gen" type="book"/><milestone n="Genesis" type="x-usfm-h"/>'
        '<chapter n="1" osisID="Gen.1" sID="Gen.1"/><title type="chapter">The Creation</title>'
        '<div sID="p1" type="x-p"/><w lemma="strong:H1">In</w> the <w>beginning</w> God'
        '<note placement="foot">Heb. Elohim</note><w>created</w> the heaven &amp; the earth.<div eID="p1" type="x-p"/>'
        '<chapter eID="Gen.1"/><chapter n="2" osisID="Gen.2" sID="Gen.2"/>'
        '<lg><l sID="l1"/>Thus the heavens<l eID="l1"/><l sID="l2"/>were finished.<l eID="l2"/></lg>'
    )
    blocks = [b"<milestone type='x-importer'/>", book.encode()]
    data, index = b"", b""
    for block in blocks:
        packed = zlib.compress(block)
        index += struct.pack("<III", len(data), len(packed), len(block))
        data += packed
    module = tmp_path / "modules" / "texts" / "ztext" / "test"
    module.mkdir(parents=True)
    (module / "ot.bzs").write_bytes(index)
    (module / "ot.bzz").write_bytes(data)
    conf = tmp_path / "mods.d" / "test.conf"
    conf.parent.mkdir()
    conf.write_text(
        "[Test]\nDataPath=./modules/texts/ztext/test/\nModDrv=zText\nSourceType=OSIS\nCompressType=ZIP\n"
    )
    chapters = list(read_module(tmp_path, conf))
    assert [(c.book, c.book_title, c.number) for c in chapters] == [
        ("Gen", "Genesis", 1),
        ("Gen", "Genesis", 2),
    ]
    assert chapters[0].text == "The Creation\n\nIn the beginning God created the heaven & the earth."
    assert chapters[1].text == "Thus the heavens\nwere finished."


def test_man_page_rendering():
    source = r""".\" a comment
.TH ECHO 1 2023-01-01 "GNU"
.SH NAME
echo \- display a line of text
.SH SYNOPSIS
.B echo
[\fISHORT-OPTION\fR]... [\fISTRING\fR]...
.SH DESCRIPTION
Echo the
.IR STRING (s)
to standard output \(em or not.
.TP
.B \-n
do not output the trailing newline
.PP
Example:
.nf
    echo hi
    echo there
.fi
"""
    assert man_to_text(source) == (
        "ECHO(1)\n\nNAME\necho - display a line of text\n\nSYNOPSIS\necho [SHORT-OPTION]... [STRING]...\n\n"
        "DESCRIPTION\nEcho the STRING(s) to standard output — or not.\n\n-n\ndo not output the trailing newline\n\n"
        "Example:\n    echo hi\n    echo there"
    )


def test_pod_rendering():
    source = """=head1 NAME

perlfoo - a B<bold> example

=begin html

<p>dropped</p>

=end html

=head2 Usage

Compare C<< $a <=> $b >> with L<perlop/"Equality Operators"> and L<the guide|perlintro>; E<gt> is escaped.

    my $x = 1;  # verbatim

=cut

sub ignored { }
"""
    assert pod_to_text(source) == (
        "NAME\n\nperlfoo - a bold example\n\nUsage\n\n"
        'Compare $a <=> $b with "Equality Operators" in perlop and the guide; > is escaped.\n\n'
        "    my $x = 1;  # verbatim"
    )


def test_html_drops_navigation_and_keeps_structure():
    page = """<html><head><title>T</title><style>p {}</style></head><body>
    <div class="navheader"><a href="x">Prev</a> | <a>Next</a></div>
    <h1>Queries<a class="headerlink" href="#q">¶</a></h1>
    <p>Make   a
    query &amp; read it.</p>
    <pre>for x in y:
    print(x)</pre>
    <ul><li>one</li><li>two</li></ul>
    <script>var x = 1;</script>
    <div class="footer">Copyright</div></body></html>"""
    assert html_to_text(page) == "Queries\n\nMake a query & read it.\n\nfor x in y:\n    print(x)\n\none\ntwo"


def test_brown_detokenisation():
    source = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, it/pps did/dod n't/* ./.\n\n\tA/at 1/2/cd cup/nn ./.\n"
    assert detokenize_brown(source) == 'The jury said "no", it did n\'t.\n\nA 1/2 cup.'.replace(
        "did n't", "didn't"
    )


def test_gutenberg_header_and_chapters():
    text = "Licence blah\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nFront\nCHAPTER 1. One\nalpha\nCHAPTER 2. Two\nbeta\nEnd of Project Gutenberg's X\nlicence"
    body = strip_gutenberg(text)
    docs = list(split_chapters(body, "x"))
    assert [d.text for d in docs] == ["Front", "CHAPTER 1. One\nalpha", "CHAPTER 2. Two\nbeta"]
    assert {d.group for d in docs} == {"x"}


def test_reference_entry_parsers(tmp_path):
    data = tmp_path / "data.noun"
    data.write_text(
        "  1 This software and database is being provided\n"
        "00001740 03 n 02 entity 0 physical_thing(a) 0 000 | that which is perceived to exist  \n"
    )
    assert list(wordnet_glosses(data)) == ["entity, physical thing (n.): that which is perceived to exist"]
    assert fortune_entries("one\n%\ntwo\nlines\n%\n") == ["one", "two\nlines"]
    assert (
        clean_gcide("Caf\\['e]\\, n. See {Coffee}.\n   [1913 Webster]\n   Ages [ae]on.")
        == "Caf\\é\\, n. See Coffee.\n   Ages æon."
    )
    jargon = (
        "Chapter 1. Intro\ntext\nGlossary\nindex list\n   :foo: n.\n   Meaning.\n   :bar: v.\n   Other.\n"
    )
    sections = list(jargon_sections(jargon))
    assert sections[0] == ("Chapter 1", ["Chapter 1. Intro\ntext\n"])
    assert sections[1] == ("glossary", ["   :foo: n.\n   Meaning.\n", "   :bar: v.\n   Other.\n"])


def test_chatterbot_yaml_and_code_filter():
    yml = "categories:\n- AI\nconversations:\n- - What is AI?\n  - A field of study.\n- - Hi\n  - Hello\n"
    assert render_conversations(yml) == "What is AI?\nA field of study.\n\nHi\nHello"
    assert looks_like_code("def f(x):\n    return x + 1\n")
    assert not looks_like_code("x = [" + "1, " * 600 + "]\n")  # one very long line: data, not code
    assert not looks_like_code("# ====== ------ ======\n" * 50)  # mostly punctuation: a banner, not code
