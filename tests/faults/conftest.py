"""Fault injection: each hostile input or failure a realistic user meets, checked for the one-line error
contract (exit 1 or 2, one ``error:`` line naming what is at fault, no traceback) and for nothing on disk
created, truncated or lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli_contract import invoke_one_line_error


@pytest.fixture
def one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``one_line_error(args, named)``: the CLI run in ``tmp_path`` fails with one line naming ``named``."""
    monkeypatch.chdir(tmp_path)
    return lambda args, named: invoke_one_line_error(args, named, tmp_path)
