"""Public dense-vs-MoE data for the report's evidence panel: shipped where the licence allows it, read from
a path the user gives where it does not.

Each data set comes with its source, licence and attribution (``ATTRIBUTION.md`` beside the shipped files),
and is read unchanged: what the panel shows can be traced to the published file by its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from archscale.data.errors import DataError
from archscale.data.io import sha256_file


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


STEPLAW = PublicDataset(
    name="Step Law lr × batch grids (Li et al. 2025)",
    file="dense_lr_bs_loss.csv, moe_lr_bs_loss.csv",
    sha256="9e46181076c04d450294d75dfe6f72adc416e231e154a07b337e378f9410002c, "
    "653d585244a7b227423007e8b796bc16d76f6d24eb87b1919b8f048a91897b92",
    source="step-law/steplaw, data/ (commits ba33510 and efbab63, March 2025)",
    licence="none stated by the repository: not shipped with archscale, read from the path you give",
    citation="H. Li et al., Predictable Scale: Part I, Optimal Hyperparameter Scaling Law in Large Language "
    "Model Pretraining, arXiv:2503.04715",
)
STEPLAW_SEQUENCE = 2048  # tokens per sequence of every Step Law run: batch sizes are given in sequences
_STEPLAW_COLUMNS = ("lr", "bs", "smooth loss", "D", "N")


def steplaw_grids(path: str | Path) -> pd.DataFrame:
    """Step Law's dense and MoE runs from the folder ``path`` (its repository's ``data/``), one row per run:
    ``kind``, ``model`` (dense: N; MoE: its sparsity, e.g. ``1in8``), ``N`` (total parameters), ``N_active``,
    ``tokens`` (D), ``lr``, ``batch_tokens`` (sequences × 2048) and ``loss`` (the smoothed final training
    loss, what the authors fit). ``sha256`` of each file is in ``attrs`` (another snapshot may differ)."""
    folder = Path(path).expanduser()
    frames, hashes = [], {}
    for kind in ("dense", "moe"):
        file = folder / f"{kind}_lr_bs_loss.csv"
        if not file.is_file():
            raise DataError(
                f"steplaw: no {file.name} in {folder}; give the folder holding Step Law's dense_lr_bs_loss.csv "
                "and moe_lr_bs_loss.csv (the step-law/steplaw repository's data/)"
            )
        table = pd.read_csv(file)
        missing = [
            c for c in (*_STEPLAW_COLUMNS, *(("moe_name", "Na") if kind == "moe" else ())) if c not in table
        ]
        if missing:
            raise DataError(
                f"steplaw: {file} lacks the column(s) {', '.join(missing)}; is it Step Law's file?"
            )
        hashes[file.name] = sha256_file(file)
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "model": table["N"].astype(str) if kind == "dense" else table["moe_name"].astype(str),
                    "N": table["N"].astype(float),
                    "N_active": table["N" if kind == "dense" else "Na"].astype(float),
                    "tokens": table["D"].astype(float),
                    "lr": table["lr"].astype(float),
                    "batch_tokens": table["bs"].astype(float) * STEPLAW_SEQUENCE,
                    "loss": table["smooth loss"].astype(float),
                }
            )
        )
    grids = pd.concat(frames, ignore_index=True)
    grids.attrs["sha256"] = hashes
    return grids
