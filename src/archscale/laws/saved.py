"""Fits saved by ``archscale fit --out``, read back as laws (for ``archscale plan`` and ``laws table1``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archscale.laws.base import Law
from archscale.laws.errors import LawDataError


def read_fit(path: Path) -> Law:
    """A fit saved by ``archscale fit --out``; a missing or unreadable file names ``--fit`` and the fix."""
    return Law.from_dict(_saved(path))


def read_fits(path: Path) -> list[tuple[str, Law]]:
    """The labelled fits of a saved file: one, or a two-step fit's chain per task (tasks that could not be
    fitted left out), each labelled with its task."""
    data = _saved(path)
    if "tasks" in data:
        return [
            (f"{path} ({task})", Law.from_dict(fit)) for task, fit in data["tasks"].items() if "law" in fit
        ]
    return [(f"{path} ({data['task']})" if data.get("task") else str(path), Law.from_dict(data))]


def _saved(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LawDataError(
            f"--fit {path}: no such file; save one with `archscale fit ... --out FILE`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LawDataError(
            f"--fit {path}: not a saved fit ({error}); pass a file from `archscale fit --out`"
        ) from None
    if not isinstance(data, dict):
        raise LawDataError(
            f"--fit {path}: not a saved fit (a JSON object); pass a file from `archscale fit --out`"
        )
    return data
