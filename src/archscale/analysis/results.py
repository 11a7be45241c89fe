"""What every analysis returns: plain dataclasses that turn into JSON-safe dicts (NaN becomes None).

Results hold numbers and arrays only (never fitted estimators), so a report, ``summary.json`` and the
figures all read the same values and a result can be rebuilt from its JSON by hand.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from archscale.laws import Law


def jsonable(value: Any) -> Any:
    """``value`` with NumPy/pandas types made plain and every non-finite float replaced by None."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    if isinstance(value, np.ndarray | np.generic):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot turn a {type(value).__name__} into JSON")


@dataclasses.dataclass
class Result:
    """Base of every analysis result: ``to_dict()`` gives the fields, JSON-safe."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def fit_summary(law: Law) -> dict[str, Any]:
    """A fitted law as a report shows it: formula, coefficients, derived quantities and their intervals."""
    return {
        "law": law.name,
        "formula": law.formula,
        "coefficients": law.coefficients_,
        "derived": law.derived_,
        "intervals": {k: list(v) for k, v in law.intervals_.items()},
        "level": law.level_ if law.bootstrap_ else None,
        "bootstrap": None
        if law.bootstrap_ is None
        else {k: getattr(law.bootstrap_, k) for k in ("n", "method", "resample", "not_converged", "on_bound")}
        | {"runs": law.bootstrap_.noise["n_groups"]},
        "no_interval": law.no_interval_,
        "n_points": law.n_points_,
        "on_bound": law.pinned_,
    }


@contextmanager
def recorded_warnings(into: list[str]) -> Iterator[None]:
    """Collect the warnings raised inside (e.g. a parameter on its bound, too few runs to resample) into
    ``into``, so a result carries the caveats of its fits instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message) for w in caught):
        if message not in into:
            into.append(message)
