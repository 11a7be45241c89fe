"""Shared test fixtures, among them a small real corpus built offline from the Python standard library."""

from __future__ import annotations

import importlib
import inspect
import os
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# One thread per process: the CI box has 2 cores and OpenMP spinning slows small ops badly.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (public data sets with PROVENANCE.md)."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        if os.environ.get("CI"):  # in CI the published-data checks must run, not vanish
            pytest.fail("../shared/data is not beside this checkout: the published-data checks cannot run")
        pytest.skip("../shared/data is not beside this checkout")
    return path


DOC_MODULES = [
    "argparse", "collections", "csv", "datetime", "decimal", "email", "fractions", "functools", "heapq",
    "http.client", "inspect", "itertools", "json", "logging", "os", "pathlib", "random", "re", "shutil",
    "statistics", "string", "subprocess", "tarfile", "textwrap", "threading", "unittest", "zipfile",
]  # fmt: skip


def _docstrings() -> list[str]:
    docs = []
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        parts = [inspect.getdoc(module) or ""]
        parts += [inspect.getdoc(obj) or "" for _, obj in inspect.getmembers(module) if callable(obj)]
        docs.append("\n\n".join(p for p in parts if p))
    return docs


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory):
    """Two subsets (``code``: json and email packages; ``prose``: docstrings), about 0.7 MB."""
    from archscale.data import build_corpus_from_documents

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = [p.read_text(encoding="utf-8") for p in sorted((stdlib / "json").glob("*.py"))]
    code += [p.read_text(encoding="utf-8") for p in sorted((stdlib / "email").glob("*.py"))]
    return build_corpus_from_documents(
        {"code": code, "prose": _docstrings()}, tmp_path_factory.mktemp("corpus") / "tiny"
    )
