"""The layering the README draws is the code's: import-linter's contracts hold, and the torch-free layers
load without torch at run time too (where a lazy import would slip past a static check)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_opening_a_store_fitting_a_law_and_reporting_load_no_torch(tmp_path):
    script = f"""
import sys
import pandas as pd
from archscale.store import ResultsStore
from archscale.laws import PowerLaw
from archscale.report import build_report
from archscale.analysis.public import clark_evidence
with ResultsStore({str(tmp_path / "s.sqlite")!r}) as store:
    store.runs()
PowerLaw(target="y", inputs=("x",)).fit(pd.DataFrame({{"x": [1.0, 2, 4, 8], "y": [1.0, 0.8, 0.64, 0.51]}}))
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))[:5]
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
