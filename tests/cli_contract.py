"""The command line's error contract, checked the same way everywhere: exit 1 or 2, one ``error:`` line on
stderr naming what is at fault, no traceback, and no file created, changed or removed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from archscale.cli.main import app


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes; SQLite's own ``-wal``/``-shm`` files, which a
    reader of a WAL-mode store may leave (empty of changes), are not the user's files and are left out."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def invoke_one_line_error(args: Sequence[str], named: str, root: Path) -> str:
    """Run the CLI with ``args`` (cwd ``root``) and assert the error contract; returns the error line."""
    before = snapshot(root)
    result = CliRunner().invoke(app, list(args))
    shown = " ".join(args)
    assert result.exit_code in (1, 2), (shown, result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (shown, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (shown, result.stderr)
    assert named in lines[0], (shown, lines[0])
    assert len(lines[0]) < 2000, (shown, len(lines[0]))
    assert "Traceback" not in result.output, shown
    assert snapshot(root) == before, (shown, set(snapshot(root)) ^ set(before))
    return lines[0]
