"""How the report writes a number, a percentage and an interval: the terminal and the page alike.

One module, so that the two renderings of the headline cannot disagree (they once did), and one marker for a
missing value, :data:`MISSING`: the en dash of an empty table cell, which the page and ``archscale laws``
already showed (the terminal said "n/a").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

MISSING = "–"


def missing(value: Any) -> bool:
    """No value: None, or a float that is not finite (what ``summary.json`` stores as null)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: Any, spec: str = ".4g") -> str:
    """A float in ``spec``; anything else (a count, a name) as its text."""
    if missing(value):
        return MISSING
    return format(value, spec) if isinstance(value, float) else str(value)


def percent(value: float | None, spec: str = ".1f") -> str:
    """A fraction as a percentage."""
    return MISSING if missing(value) else f"{100 * value:{spec}} %"


def interval(bounds: Sequence[Any] | None, fmt: Callable[[Any], str] = number, absent: str = MISSING) -> str:
    """``[lower, upper]``, or ``absent`` when there is no interval (a sentence may say so in words)."""
    if not bounds or missing(bounds[0]) or missing(bounds[1]):
        return absent
    return f"[{fmt(bounds[0])}, {fmt(bounds[1])}]"
