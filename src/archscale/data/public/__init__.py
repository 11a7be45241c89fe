"""Public dense-vs-MoE data for the report's evidence panel: shipped where the licence allows it, read from
a path the user gives where it does not.

Each data set comes with its source, licence and attribution (``ATTRIBUTION.md`` beside the shipped files),
and is read unchanged: what the panel shows can be traced to the published file by its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
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


def _clark_final_rows(curves: pd.DataFrame) -> pd.DataFrame:
    """Each Clark run's last eval."""
    return curves.loc[curves.groupby("hyper_id")["step"].idxmax()]


def clark2022_runs(curves: pd.DataFrame, router: str, experts: int | None = None) -> pd.DataFrame:
    """Dense runs at their base width (k = 1, no FFN widening) and the router's main grid (k = 1, every
    other block routed, seed 42), optionally at one expert count; every eval row of those runs."""
    dense = (curves["router_type"] == "Dense") & (curves["k"] == 1) & (curves["flop_increase"] == 1)
    routed = (
        (curves["router_type"] == router)
        & (curves["k"] == 1)
        & (curves["routing_frequency"] == 0.5)
        & (curves["seed"] == 42)
    )
    if experts is not None:
        routed &= curves["num_experts"] == experts
    rows = curves[dense | routed].copy()
    rows["kind"] = np.where(rows["router_type"] == "Dense", "dense", "moe")
    rows["run_id"] = rows["hyper_id"].astype(str)
    return rows


def clark2022_final(curves: pd.DataFrame, router: str) -> pd.DataFrame:
    """Clark's fitting table: final validation losses of the router's main grid, dense runs averaged per size
    as E = 1 (the 130M dense model exists only as three seeds), in the laws' column names."""
    final = clark2022_runs(_clark_final_rows(curves), router)
    dense = final[final["kind"] == "dense"].groupby("dense_parameter_count", as_index=False)
    dense = dense["loss_validation"].mean().assign(num_experts=1)
    routed = final.loc[final["kind"] == "moe", ["dense_parameter_count", "num_experts", "loss_validation"]]
    table = pd.concat([dense, routed], ignore_index=True)
    return table.rename(
        columns={"dense_parameter_count": "params", "num_experts": "experts", "loss_validation": "loss"}
    )


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


MULTIPOWER2025 = PublicDataset(
    name="Multi-power law loss curves (Luo et al. 2025)",
    file="multipower2025/csv_{25,100,400}/*.csv",
    sha256="c05166c3974711777092549a56eae838ce479a41fec1ad5f650a733098160ce3 (of SHA256SUMS, which lists each file's)",
    source="thu-yao-01-luo/MultiPowerLaw, loss_curve_repo/ (commit 8da9f19, March 2025)",
    licence="MIT, Copyright (c) 2025 Kairong Luo",
    citation="K. Luo et al., A Multi-Power Law for Loss Curve Prediction Across Learning Rate Schedules, "
    "ICLR 2025, arXiv:2503.12811",
)
MULTIPOWER_SIZES = {"25M": 25e6, "100M": 100e6, "400M": 400e6}
"""Model sizes of the curves, as the authors name them (their folder csv_25 holds the 25M model's curves)."""
MULTIPOWER_WARMUP, MULTIPOWER_PEAK, MULTIPOWER_END = 2160, 3e-4, 3e-5


def multipower_lr(schedule: str, steps: int) -> np.ndarray:
    """The learning rate at indices 0 … ``steps`` − 1 of the authors' schedule ``schedule`` (a file's stem:
    ``cosine_72000``, ``constant_24000``, ``wsd_20000_24000`` (exponential decay from step 20,000),
    ``wsdld_20000_24000`` (linear decay), ``wsdcon_9`` (3e-4, then 9e-5 from step 8,000 of 16,000)).

    Rebuilt from the definitions in the authors' ``src/lr_schedules.py`` and ``src/data_loader.py`` (linear
    warm-up from 0 over 2,160 steps, peak 3e-4, final 3e-5); the files' own ``lr`` column, which holds the
    rate at each logged step only, equals it there (checked in the tests)."""
    index = np.arange(steps, dtype=float)
    warm, peak, end = MULTIPOWER_WARMUP, MULTIPOWER_PEAK, MULTIPOWER_END
    lr = np.full(steps, peak)
    lr[:warm] = np.linspace(0.0, peak, warm)[: min(warm, steps)]
    kind, *numbers = schedule.split("_")
    if kind == "cosine":
        total = int(numbers[0])
        after = index >= warm
        lr[after] = end + 0.5 * (peak - end) * (1 + np.cos(np.pi * (index[after] - warm) / (total - warm)))
    elif kind in ("wsd", "wsdld"):
        decay, total = (int(n) for n in numbers)
        share = np.clip((index - decay) / (total - decay), 0.0, None)
        decaying = index >= decay
        if kind == "wsd":  # geometric interpolation from the peak to the final rate
            lr[decaying] = peak ** (1 - share[decaying]) * end ** share[decaying]
        else:
            lr[decaying] = peak * (1 - share[decaying]) + end * share[decaying]
    elif kind == "wsdcon":
        lr[index >= 8000] = int(numbers[0]) * 1e-5
    elif kind != "constant":
        raise DataError(f"multipower: unknown schedule {schedule!r}")
    return lr


def multipower2025_curves() -> pd.DataFrame:
    """The 27 curves (9 schedules × 25M/100M/400M), one row per logged step: ``size``, ``params``, ``schedule``,
    ``run_id`` (``400M/cosine_72000``), ``step``, ``lr``, ``loss``, each file checked against the shipped
    SHA256SUMS, itself checked against its published hash. As the authors do, the logged point at step
    24,000 of the 24,000-step runs is dropped (``src/data_loader.py``)."""
    root = resources.files(__package__).joinpath("multipower2025")
    sums = root.joinpath("SHA256SUMS").read_bytes()
    if hashlib.sha256(sums).hexdigest() != MULTIPOWER2025.sha256.split()[0]:
        raise DataError(
            "the shipped multipower2025/SHA256SUMS does not match its SHA-256; reinstall archscale"
        )
    frames = []
    for line in sums.decode().splitlines():
        digest, name = line.split()
        data = root.joinpath(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise DataError(
                f"the shipped multipower2025/{name} does not match its SHA-256; reinstall archscale"
            )
        size = re.fullmatch(r"csv_(\d+)/(.+)\.csv", name)
        with resources.as_file(root.joinpath(name)) as path:
            table = pd.read_csv(path)
        label = f"{size[1]}M"
        table = table[table["step"] < 24000] if table["step"].max() == 24000 else table
        frames.append(table.assign(size=label, params=MULTIPOWER_SIZES[label], schedule=size[2],
                                   run_id=f"{label}/{size[2]}"))  # fmt: skip
    curves = pd.concat(frames, ignore_index=True)
    return curves[["size", "params", "schedule", "run_id", "step", "lr", "loss"]]


def multipower2025_steps(size: str, schedules: Sequence[str], *, until: int | None = None) -> pd.DataFrame:
    """The curves of ``size`` under ``schedules`` as the whole-curve laws read them: one row per step from 1
    (``run_id``, ``params``, ``step``, ``lr``, ``loss`` empty where not logged). ``until``: keep only the
    steps up to it (an unfinished run)."""
    curves = multipower2025_curves()
    frames = []
    for schedule in schedules:
        logged = curves[(curves["size"] == size) & (curves["schedule"] == schedule)]
        if logged.empty:
            raise DataError(f"multipower: no curve {size}/{schedule}; sizes {list(MULTIPOWER_SIZES)}")
        last = int(logged["step"].max()) if until is None else min(until, int(logged["step"].max()))
        frame = pd.DataFrame({"run_id": f"{size}/{schedule}", "params": MULTIPOWER_SIZES[size],
                              "step": np.arange(1, last + 1), "lr": multipower_lr(schedule, last + 1)[1:],
                              "loss": np.nan})  # fmt: skip
        kept = logged[logged["step"] <= last]
        frame.loc[kept["step"].to_numpy() - 1, "loss"] = kept["loss"].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
