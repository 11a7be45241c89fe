"""One set of field checks for every configuration (model, run, sweep spec): each takes the field's path
for the message and the error class of its owner, and returns the checked value.

Numbers may arrive as text (YAML 1.1 reads ``1e-3`` as a string), so they are parsed before checking.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from typing import Any

from archscale.errors import ArchscaleError

Error = type[ArchscaleError]
SHOWN_CHARS = 80
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = SHOWN_CHARS


def shown(value: Any) -> str:
    """``repr(value)`` cut to about ``SHOWN_CHARS`` characters (``…`` marks the cut): an error line quotes a
    user's value, never all of a huge one, and nested containers are abbreviated without building their
    whole repr."""
    return cut(_REPR.repr(value))


def cut(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARS`` characters, ``…`` marking the cut."""
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def number(path: str, value: Any, error: Error) -> float:
    """A finite number (text such as ``"1e-3"`` is parsed)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise error(f"{path}: must be a number, got {shown(value)}") from None
    too_big = isinstance(value, int) and abs(value) >= 2**1023  # 10**400 overflows math.isfinite
    if too_big or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise error(f"{path}: must be a number, got {shown(value)}")
    return value


def real(
    path: str,
    value: Any,
    error: Error,
    low: float = 0.0,
    high: float = math.inf,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    """A finite number in the given interval (by default positive), as a float."""
    checked = number(path, value, error)
    inside = (checked > low if low_open else checked >= low) and (
        checked < high if high_open else checked <= high
    )
    if not inside:
        if (low, high, low_open) == (0.0, math.inf, True):
            raise error(f"{path}: must be a positive number, got {shown(value)}")
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise error(f"{path}: must be a number in {interval}, got {shown(value)}")
    return float(checked)


def count(path: str, value: Any, error: Error, minimum: int = 1) -> int:
    """A whole number ≥ ``minimum``; ``1.0e6`` and ``"2e6"`` are accepted when they are whole."""
    checked = number(path, value, error)
    if checked != int(checked) or checked < minimum:
        raise error(f"{path}: must be a whole number ≥ {minimum}, got {shown(value)}")
    return int(checked)


def integer(path: str, value: Any, error: Error, minimum: int = 1) -> int:
    """A Python ``int`` ≥ ``minimum`` (no float, text or bool): for typed configurations, where a float would
    silently change what is hashed and stored."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{path}: must be an integer ≥ {minimum}, got {shown(value)}")
    return value


def flag(path: str, value: Any, error: Error) -> bool:
    """A YAML/JSON boolean (``true``/``false``); 0, 1 and text are refused rather than read as truth values."""
    if not isinstance(value, bool):
        raise error(f"{path}: must be true or false, got {shown(value)}")
    return value


def text(path: str, value: Any, error: Error) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{path}: must be a non-empty string, got {shown(value)}")
    return value


def mapping_for(cls: type, data: Any, error: Error) -> dict[str, Any]:
    """``data`` checked as the constructor fields of the dataclass ``cls``: a mapping, no unknown field, every
    field without a default present."""
    owner = cls.__name__
    if not isinstance(data, dict):
        raise error(f"{owner}: expected a mapping of fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise error(f"{owner}: unknown field(s) {shown(unknown)}; valid fields are {sorted(fields)}")
    required = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise error(f"{owner}: missing required field(s) {missing}")
    return dict(data)
