"""What every mini-Pile extractor shares: the unpacked package roots and layout-checked file lookups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from archscale.data.errors import DataError

Roots = Mapping[str, Path]
"""Unpacked source packages of one subset, by package name."""


def package_root(roots: Roots, name: str) -> Path:
    try:
        return roots[name]
    except KeyError:
        raise DataError(f"package {name!r} was not fetched for this subset") from None


def find_files(root: Path, pattern: str, exclude: Sequence[str] = ()) -> list[Path]:
    """Regular files under ``root`` matching ``pattern``, sorted, minus those with an excluded path part.

    Files reached through a symbolic link (Debian links doc folders to each other) are skipped, so no
    file is read twice.
    """
    real_root = root.resolve()
    return sorted(
        p
        for p in root.glob(pattern)
        if p.is_file()
        and p.resolve() == real_root / p.relative_to(root)
        and not set(p.relative_to(root).parts) & set(exclude)
    )


def require_files(root: Path, pattern: str, exclude: Sequence[str] = ()) -> list[Path]:
    """Like :func:`find_files`, but an empty result means the package layout changed: say so."""
    found = find_files(root, pattern, exclude)
    if not found:
        raise DataError(
            f"no files match {pattern!r} under {root}: the package layout differs from the recipe"
        )
    return found
