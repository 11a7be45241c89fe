"""Build the mini-Pile: fetch each subset's packages, unpack them in a scratch folder, extract, split, write.

Finished subsets are reused on a re-run (same split settings and size cap, files intact), downloads are
cached, and the manifest is written only once every requested subset is done, so an interrupted or failed
build leaves a corpus that :func:`~archscale.data.corpus.load_corpus` refuses as incomplete.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from archscale.data.corpus import (
    MANIFEST,
    Corpus,
    begin_build,
    corpora_home,
    finished_subset,
    load_corpus,
    write_manifest,
    write_subset,
)
from archscale.data.errors import DataError
from archscale.data.fetch import Fetched, fetch, find_license, unpack
from archscale.data.io import exclusive
from archscale.data.minipile.recipes import RECIPES
from archscale.data.split import SplitSpec
from archscale.paths import data_home


def default_cache() -> Path:
    """Where downloaded source packages are kept between builds."""
    return data_home() / "cache" / "packages"


def _build_subset(
    out: Path, name: str, fetched: Sequence[Fetched], spec: SplitSpec, max_bytes: int | None
) -> dict[str, Any]:
    """Unpack one subset's packages into a scratch folder, extract its documents and write the subset."""
    licenses = out / "licenses"
    licenses.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=f".unpack-{name}-") as scratch:
        roots, sources = {}, []
        for item in fetched:
            root = unpack(item, Path(scratch) / item.package.name)
            roots[item.package.name] = root
            license_path, license_name = find_license(item, root)
            copied = None
            if license_path is not None:
                copied = f"licenses/{item.package.kind}-{item.package.name}.txt"
                shutil.copyfile(license_path, out / copied)
            sources.append(item.record(copied, license_name))
        try:
            documents = RECIPES[name].extract(roots)
            return write_subset(out, name, documents, spec, max_bytes=max_bytes, sources=sources)
        except DataError as error:
            raise DataError(f"subset {name!r}: {error}") from error


def _up_to_date(out: Path, names: Sequence[str], records: Mapping[str, Any]) -> Corpus | None:
    if not (out / MANIFEST).is_file() or len(records) != len(names):
        return None
    corpus = load_corpus(out)
    return corpus if corpus.manifest["subsets"] == records else None


def build_minipile(
    out: Path | None = None,
    subsets: Sequence[str] | None = None,
    *,
    max_mb_per_subset: float | None = None,
    cache: Path | None = None,
    split_spec: SplitSpec | None = None,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
) -> Corpus:
    """Build (or complete, or reuse) the mini-Pile at ``out`` (default ``data_home()/corpora/minipile``).

    ``subsets`` picks the corpus's subsets (default: all 13); subsets built earlier with the same settings
    are reused. ``max_mb_per_subset`` caps each subset's train text (validation and test stay whole), for
    fast tests.
    ``jobs`` > 1 extracts subsets in parallel processes. ``log`` receives one line per step.
    """
    log = log or _quiet
    names = list(subsets) if subsets else list(RECIPES)
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        raise DataError(f"unknown subsets {', '.join(unknown)}; choose from: {', '.join(RECIPES)}")
    if max_mb_per_subset is not None and max_mb_per_subset <= 0:
        raise DataError(f"max_mb_per_subset must be positive, got {max_mb_per_subset}")
    if jobs < 1:
        raise DataError(f"jobs must be at least 1, got {jobs}")
    out = Path(out).expanduser() if out is not None else corpora_home() / "minipile"
    cache = Path(cache).expanduser() if cache is not None else default_cache()
    spec = split_spec or SplitSpec()
    max_bytes = int(max_mb_per_subset * 1_000_000) if max_mb_per_subset is not None else None

    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out / ".build.lock"):
        return _build(out, names, cache, spec, max_bytes, jobs, log)


def _build(
    out: Path,
    names: list[str],
    cache: Path,
    spec: SplitSpec,
    max_bytes: int | None,
    jobs: int,
    log: Callable[[str], None],
) -> Corpus:
    """The body of :func:`build_minipile`, run while holding the corpus's build lock."""
    records = {n: r for n in names if (r := finished_subset(out, n, spec, max_bytes)) is not None}
    corpus = _up_to_date(out, names, records)
    if corpus is not None:
        log(f"corpus at {out} is up to date ({len(names)} subsets)")
        return corpus
    begin_build(out)
    for stale in out.glob(".unpack-*"):  # scratch left by a build that was killed
        shutil.rmtree(stale, ignore_errors=True)
    for name in records:
        log(f"{name}: reusing the finished subset")
    todo = [n for n in names if n not in records]
    fetched: dict[str, Fetched] = {}
    for name in todo:
        for package in RECIPES[name].packages:
            if package.key not in fetched:
                log(f"fetching {package.kind} package {package.name}")
                fetched[package.key] = got = fetch(package, cache)
                if got.version != package.version:
                    log(
                        f"warning: {package.name} {package.version} (pinned) is no longer served; using "
                        f"{got.version}, recorded in the manifest (this corpus will not match the pinned one)"
                    )

    def inputs(name: str) -> tuple[Path, str, list[Fetched], SplitSpec, int | None]:
        return out, name, [fetched[p.key] for p in RECIPES[name].packages], spec, max_bytes

    start = time.perf_counter()
    if jobs == 1 or len(todo) == 1:
        for name in todo:
            records[name] = _build_subset(*inputs(name))
            _log_subset(log, name, records[name], start)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {name: pool.submit(_build_subset, *inputs(name)) for name in todo}
            for name, future in futures.items():
                records[name] = future.result()
                _log_subset(log, name, records[name], start)
    return write_manifest(
        out, "minipile", {n: records[n] for n in names}, extra={"recipe": "minipile", "max_bytes": max_bytes}
    )


def _quiet(_: str) -> None:
    """Say nothing (the default when no ``log`` is given)."""


def _log_subset(log: Callable[[str], None], name: str, record: Mapping[str, Any], start: float) -> None:
    mb = sum(record["bytes"].values()) / 1e6
    docs = sum(record["documents"].values())
    log(f"{name}: {docs} documents, {mb:.1f} MB ({time.perf_counter() - start:.0f} s since extraction began)")
