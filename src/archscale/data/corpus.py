"""A corpus on disk: named subsets, each split into train / validation / test JSONL files, and a manifest.

Layout of a corpus directory::

    manifest.json                 written last: its presence means the corpus is complete
    text/<subset>/<split>.jsonl   one {"group": ..., "text": ...} object per line, in hash order
    text/<subset>/subset.json     counts and hashes of one finished subset (lets a rebuild reuse it)
    licenses/                     copyright files of the source packages
    tokenizers/, shards/, tasks/  derived data, deleted whenever the text changes

Every builder (the mini-Pile recipe, users' files, in-memory documents) goes through :func:`write_subset`
and :func:`write_manifest`, so all corpora share one split rule and one manifest format.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archscale import __version__
from archscale.data.documents import Document, content_hash
from archscale.data.errors import CorpusNotFoundError, DataError
from archscale.data.io import read_json, sha256_file, write_json_atomic
from archscale.data.split import SPLITS, SplitSpec, assign_splits, group_order_key
from archscale.paths import data_home

FORMAT = "archscale-corpus/1"
MANIFEST = "manifest.json"
SUBSET_RECORD = "subset.json"
DERIVED_DIRS = ("tokenizers", "shards", "tasks")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def corpora_home() -> Path:
    """Where corpora named without a path live: ``data_home()/corpora``."""
    return data_home() / "corpora"


def check_subset_name(name: str) -> str:
    """Subset names become file names: lower-case letters, digits, ``_ . -``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataError(
            f"subset name {name!r} is not allowed: use lower-case letters, digits, '_', '.' or '-' "
            "(starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class Corpus:
    """A complete corpus: its directory and its manifest (see the module docstring for the layout)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def subsets(self) -> list[str]:
        return sorted(self.manifest["subsets"])

    @property
    def fingerprint(self) -> str:
        """Hash of all split files: changes whenever any text changes."""
        return str(self.manifest["fingerprint"])

    def subset_file(self, subset: str, split: str) -> Path:
        record = self._record(subset)
        if split not in SPLITS:
            raise DataError(f"split {split!r} is unknown: use one of {', '.join(SPLITS)}")
        return self.path / record["files"][split]["path"]

    def file_sha256(self, subset: str, split: str) -> str:
        """The recorded hash of one split file: what derived data (shards) is checked against."""
        self.subset_file(subset, split)
        return str(self._record(subset)["files"][split]["sha256"])

    def documents(self, subset: str, split: str) -> Iterator[str]:
        """The texts of one subset's split, in the stored (hash) order."""
        with open(self.subset_file(subset, split), encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)["text"]

    def num_documents(self, subset: str, split: str) -> int:
        return int(self._record(subset)["documents"][split])

    def num_bytes(self, subset: str, split: str) -> int:
        """UTF-8 bytes of the texts (not of the JSONL file)."""
        return int(self._record(subset)["bytes"][split])

    def _record(self, subset: str) -> dict[str, Any]:
        try:
            return self.manifest["subsets"][subset]
        except KeyError:
            raise DataError(
                f"corpus {self.path} has no subset {subset!r}; it has: {', '.join(self.subsets)}"
            ) from None


def resolve_corpus_path(path_or_name: str | Path) -> Path:
    """A path as given when it exists or looks like a path, else a name under :func:`corpora_home`."""
    path = Path(path_or_name).expanduser()
    if path.exists() or isinstance(path_or_name, Path) or len(path.parts) > 1:
        return path
    return corpora_home() / str(path_or_name)


def load_corpus(path_or_name: str | Path | Corpus = "minipile") -> Corpus:
    """Open a complete corpus by directory or by name (``"minipile"`` is the default corpus)."""
    if isinstance(path_or_name, Corpus):
        return path_or_name
    path = resolve_corpus_path(path_or_name)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        if path.is_dir() and (path / "text").is_dir():
            raise CorpusNotFoundError(
                f"corpus at {path} is incomplete (its build did not finish); "
                f"re-run `archscale data build --out {path}` (or the builder you used) to complete it"
            )
        raise CorpusNotFoundError(
            f"no corpus at {path}; build the default one with `archscale data build`, "
            "or your own with `archscale data import`"
        )
    manifest = read_json(manifest_path)
    if manifest.get("format") != FORMAT:
        raise DataError(
            f"{manifest_path} has format {manifest.get('format')!r}, expected {FORMAT!r}; rebuild it"
        )
    return Corpus(path=path, manifest=manifest)


def known_subsets(path_or_name: str | Path) -> list[str] | None:
    """The subsets a corpus holds or will hold: a built corpus's, or the default corpus's recipe before it is
    built; None when neither is known. Lets a sweep spec's mixture be checked before any run starts."""
    path = resolve_corpus_path(path_or_name)
    try:
        return load_corpus(path).subsets
    except (OSError, ValueError):  # not built, or unreadable: its runs report that themselves
        pass
    if path == corpora_home() / "minipile":
        from archscale.data.minipile.recipes import RECIPES  # the builder's modules, loaded only here

        return list(RECIPES)
    return None


def begin_build(root: Path) -> None:
    """Mark a corpus incomplete before changing its text, and drop what was derived from the old text."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    for name in DERIVED_DIRS:
        shutil.rmtree(root / name, ignore_errors=True)


def _cap_train(
    order: Sequence[str], sizes: Mapping[str, int], assignment: dict[str, str], max_bytes: int
) -> None:
    """Drop train groups (in hash order) beyond ``max_bytes`` of train text; held-out groups are untouched."""
    total = 0
    for group in order:
        if assignment[group] != "train":
            continue
        if total >= max_bytes:
            del assignment[group]
        else:
            total += sizes[group]


def write_subset(
    root: Path,
    name: str,
    documents: Iterable[Document],
    spec: SplitSpec,
    *,
    max_bytes: int | None = None,
    sources: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Deduplicate, split and write one subset; return (and store) its record.

    Exact duplicates (same text) are dropped, keeping the first. ``max_bytes`` caps the train split (whole
    groups, in hash order); validation and test stay exactly those of the uncapped subset, so losses
    measured on a capped corpus compare with the full one. The split files are renamed into place
    and ``subset.json`` is written last, so an interrupted write never looks finished.
    """
    check_subset_name(name)
    if max_bytes is not None and max_bytes <= 0:
        raise DataError(f"max_bytes for subset {name!r} must be positive, got {max_bytes}")
    seen: set[str] = set()
    by_group: dict[str, list[str]] = {}
    duplicates = 0
    for doc in documents:
        if not doc.text.strip():
            continue
        digest = content_hash(doc.text)
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        by_group.setdefault(doc.group, []).append(doc.text)
    if not by_group:
        raise DataError(f"subset {name!r} has no non-empty documents; check its source or input files")

    sizes = {g: sum(len(t.encode("utf-8")) for t in texts) for g, texts in by_group.items()}
    order = sorted(by_group, key=lambda g: (group_order_key(g), g))
    assignment = assign_splits(sizes, spec)
    if max_bytes is not None:
        _cap_train(order, sizes, assignment, max_bytes)

    folder = root / "text" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUBSET_RECORD).unlink(missing_ok=True)
    record: dict[str, Any] = {
        "documents": {},
        "bytes": {},
        "groups": {},
        "files": {},
        "duplicates_dropped": duplicates,
        "max_bytes": max_bytes,
        "split": spec.to_dict(),
        "sources": [dict(s) for s in sources],
    }
    for split in SPLITS:
        groups = [g for g in order if assignment.get(g) == split]
        path = folder / f"{split}.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for group in groups:
                for text in by_group[group]:
                    handle.write(json.dumps({"group": group, "text": text}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        record["documents"][split] = sum(len(by_group[g]) for g in groups)
        record["bytes"][split] = sum(sizes[g] for g in groups)
        record["groups"][split] = len(groups)
        record["files"][split] = {"path": path.relative_to(root).as_posix(), "sha256": sha256_file(path)}
    write_json_atomic(folder / SUBSET_RECORD, record)
    return record


def finished_subset(root: Path, name: str, spec: SplitSpec, max_bytes: int | None) -> dict[str, Any] | None:
    """The record of a subset already written with these settings and intact on disk, else None."""
    path = root / "text" / name / SUBSET_RECORD
    if not path.is_file():
        return None
    record = read_json(path)
    if record.get("split") != spec.to_dict() or record.get("max_bytes") != max_bytes:
        return None
    for entry in record["files"].values():
        file = root / entry["path"]
        if not file.is_file() or sha256_file(file) != entry["sha256"]:
            return None
    return record


def write_manifest(
    root: Path,
    name: str,
    subsets: Mapping[str, Mapping[str, Any]],
    *,
    extra: Mapping[str, Any] | None = None,
) -> Corpus:
    """Write ``manifest.json`` (last step of every build) and return the finished corpus.

    The manifest's ``sources`` gathers every subset's source packages (version, hash, licence) by key.
    """
    sources = {
        f"{source['kind']}:{source['name']}": source
        for record in subsets.values()
        for source in record.get("sources", [])
    }
    fingerprint = hashlib.sha256()
    for subset in sorted(subsets):
        for split in SPLITS:
            fingerprint.update(f"{subset}/{split}:{subsets[subset]['files'][split]['sha256']}\n".encode())
    manifest = {
        "format": FORMAT,
        "name": name,
        "archscale_version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "splits": list(SPLITS),
        "subsets": {s: dict(subsets[s]) for s in sorted(subsets)},
        "sources": dict(sorted(sources.items())),
        "fingerprint": fingerprint.hexdigest(),
        **dict(extra or {}),
    }
    write_json_atomic(root / MANIFEST, manifest)
    return Corpus(path=root, manifest=manifest)


def prepare_output(out: Path, overwrite: bool) -> Path:
    """Refuse to write over an existing corpus unless asked; then mark the directory as being built."""
    out = Path(out).expanduser()
    if (out / MANIFEST).exists() and not overwrite:
        raise DataError(
            f"a corpus already exists at {out}; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    if overwrite:
        shutil.rmtree(out / "text", ignore_errors=True)
    begin_build(out)
    return out


def build_corpus_from_documents(
    docs: Mapping[str, Iterable[str | Document]],
    out: Path,
    *,
    name: str | None = None,
    split_spec: SplitSpec | None = None,
    max_bytes_per_subset: int | None = None,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Corpus:
    """Build a corpus from in-memory texts, ``{subset: [text, ...]}``, with the standard split and manifest.

    A plain string is its own group (keyed by its content hash); pass :class:`Document` objects to keep
    related texts together in one split. ``extra`` adds fields to the manifest (e.g. where the text came from).
    """
    if not docs:
        raise DataError("docs is empty: give at least one subset, e.g. {'prose': ['text one', 'text two']}")
    out = prepare_output(out, overwrite)
    spec = split_spec or SplitSpec()
    records = {
        subset: write_subset(
            out, subset, (_as_document(subset, t) for t in texts), spec, max_bytes=max_bytes_per_subset
        )
        for subset, texts in docs.items()
    }
    return write_manifest(out, name or out.name, records, extra=extra)


def _as_document(subset: str, item: str | Document) -> Document:
    if isinstance(item, Document):
        return item
    if not isinstance(item, str):
        raise DataError(f"docs[{subset!r}] holds a {type(item).__name__}; give str texts or Document objects")
    return Document(item, content_hash(item)[:20])
