"""Public dense-vs-MoE data shipped with the package (licences permitting), for the report's evidence panel.

Each data set comes with its source, licence and attribution (``ATTRIBUTION.md`` beside the files), and is
read unchanged: what the panel shows can be traced to the published file by its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from archscale.data.errors import DataError


@dataclass(frozen=True)
class PublicDataset:
    """A shipped file with what a report must say about it."""

    name: str
    file: str
    sha256: str
    source: str
    licence: str
    citation: str


CLARK2022 = PublicDataset(
    name="Clark et al. 2022 routing curves",
    file="clark2022_routing.csv.gz",
    sha256="c03e7531add85e594f368d33bac4a0220280be858a7ed12d147cf73af6a3819f",
    source="google-deepmind/scaling_laws_for_routing, data/curves.csv.gz",
    licence="CC BY 4.0, Copyright 2022 DeepMind Technologies Limited",
    citation="A. Clark et al., Unified Scaling Laws for Routed Language Models, ICML 2022",
)


def clark2022_curves() -> pd.DataFrame:
    """The Clark et al. 2022 curves (one row per run and eval step), checked against their published hash."""
    data = resources.files(__package__).joinpath(CLARK2022.file).read_bytes()
    if hashlib.sha256(data).hexdigest() != CLARK2022.sha256:
        raise DataError(f"the shipped {CLARK2022.file} does not match its SHA-256; reinstall archscale")
    with resources.as_file(resources.files(__package__).joinpath(CLARK2022.file)) as path:
        return pd.read_csv(path)
