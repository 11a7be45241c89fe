"""``build_report``: a results store in, a self-contained report directory out.

The directory holds ``index.html`` (tables and the fitted laws, figures referenced by relative path),
``figures/*.png`` and ``summary.json`` (every analysis result, the verdicts, the run inventory and the
environment, JSON-safe). The page and the JSON are written from the same values, so they cannot disagree.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from archscale.analysis import Analyses, from_store, jsonable
from archscale.analysis.curve_tables import predicted_ends, store_branch_predictions, store_step_table
from archscale.analysis.design_space import (
    DesignSpaceResult,
    design_space,
    has_design_variants,
)
from archscale.analysis.downstream import downstream_table
from archscale.analysis.downstream_chain import DownstreamPanel, downstream_panels
from archscale.analysis.lr_transfer import LRTransferResult, has_lr_ladders, store_lr_transfer
from archscale.analysis.public import PublicEvidence, clark_evidence, multipower_evidence, steplaw_evidence
from archscale.analysis.suite import paper_runs, sp_runs, store_runs
from archscale.errors import ArchscaleError
from archscale.laws import AnnealingLaw
from archscale.laws.resampling import spawn_seeds
from archscale.paths import write_atomic
from archscale.report.figures import (
    design_space_figure,
    downstream_figure,
    lr_transfer_figure,
    public_figures,
    write_figures,
)
from archscale.report.headline import Headline, headline_numbers
from archscale.report.page import render_page
from archscale.store import ResultsStore

REFERENCES = {"steplaw": steplaw_evidence}  # public data sets read from the user's path (not shipped)


class ReportError(ArchscaleError):
    """The report was asked for something it cannot do (e.g. an unknown reference data set)."""


PACKAGES = ("archscale", "torch", "numpy", "scipy", "pandas", "matplotlib", "tokenizers")


def environment() -> dict[str, Any]:
    """The machine and the software the report was made with."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "packages": versions,
    }


def run_inventory(store: ResultsStore, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: its shape, hyperparameters, status, epochs over its data, final training and test
    loss, wall time; ``runs``: the store's runs with their metadata (:func:`store_runs`) when at hand."""
    runs = store_runs(store) if runs is None else runs
    columns = ["run_id", "model_name", "kind", "n_experts", "top_k", "N", "P_active", "D", "C",
               "batch_size", "lr", "epochs", "status", "diverged_step", "wall_time"]  # fmt: skip
    inventory = runs[columns].copy()
    curve = store.curve()
    last = curve.sort_values("step").groupby("run_id")["lm_loss"].last()
    tested = store.evals(split="test", subset="all")
    final_test = tested.sort_values("step").groupby("run_id")[["loss", "bits_per_byte"]].last()
    inventory["final_train_loss"] = inventory["run_id"].map(last)
    inventory["final_test_loss"] = inventory["run_id"].map(final_test["loss"])
    inventory["final_test_bpb"] = inventory["run_id"].map(final_test["bits_per_byte"])
    return inventory.sort_values(["kind", "N", "batch_size", "lr"]).reset_index(drop=True)


@dataclass
class Report:
    """What ``build_report`` wrote, and the headline it found."""

    index: Path
    summary_path: Path
    figures: dict[str, Path]
    summary: dict[str, Any] = field(repr=False)
    head: Headline = field(repr=False)

    def headline(self) -> str:
        """The headline as terminal lines."""
        return self.head.text(self.summary["runs"])


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    bootstrap: int = 200,
    seed: int = 0,
    wall_time: float | None = None,
    public: bool = True,
    references: Mapping[str, str | Path] | None = None,
    allow_mixed_corpora: bool = False,
) -> Report:
    """Analyse the store's runs and write ``out_dir/index.html``, ``figures/`` and ``summary.json``.

    ``public``: also run the analyses on the shipped public data (Clark et al. 2022; Luo et al. 2025's curves for
    whether α_N is identified from whole curves) for the evidence panel;
    ``references``: public data sets archscale may not ship, by name and the folder holding them
    (``{"steplaw": path}``: Step Law's lr × batch grids).
    """
    unknown = sorted(set(references or {}) - set(REFERENCES))
    if unknown:
        raise ReportError(
            f"unknown reference {', '.join(unknown)}: choose from {', '.join(REFERENCES)} (NAME=PATH)"
        )
    store_path = Path(store_path)
    with ResultsStore(store_path, read_only=True) as store:
        if store.runs().empty:
            raise ReportError(f"--store {store_path}: the results store holds no runs; nothing to report")
        runs_seed, public_seed, ends_seed, downstream_seed, lr_seed = spawn_seeds(
            seed, 5
        )  # a prefix: the rest as before
        runs = store_runs(store)  # one metadata read per run, shared by the analyses and the fingerprints
        lr_transfer = None
        if has_lr_ladders(runs):  # μP (or CompleteP) LR ladders over widths: the transfer panel reads them
            lr_transfer = store_lr_transfer(
                runs,
                store.evals(split="test", subset="all"),
                bootstrap=bootstrap,
                seed=lr_seed,
            )
        design_runs = sp_runs(runs)  # the design-space panel reads the SP runs, not the ladders' designs
        design = None
        if has_design_variants(
            design_runs
        ):  # the paper's analyses read the paper's designs; the panel the rest
            design = design_space(design_runs, store.curve())
        analyses = from_store(
            store, paper_runs(runs), bootstrap=bootstrap, seed=runs_seed,
            allow_mixed_corpora=allow_mixed_corpora,
        )  # fmt: skip
        corpora = sorted(runs["corpus"].dropna().unique().tolist())
        inventory = run_inventory(store, runs)
        downstream = downstream_table(store, inventory)
        chains = downstream_panels(store, design_runs, bootstrap=bootstrap, seed=downstream_seed)
        branches = store_branch_predictions(store)
        ends = predicted_ends(store_step_table(store), AnnealingLaw(bootstrap=bootstrap, seed=ends_seed))
    clark_seed, *reference_seeds, multipower_seed = spawn_seeds(public_seed, 2 + len(references or {}))
    evidence = (
        [clark_evidence(bootstrap=bootstrap, seed=clark_seed),
         multipower_evidence(bootstrap=bootstrap, seed=multipower_seed)]
        if public else []
    )  # fmt: skip
    evidence += [
        REFERENCES[name](path, bootstrap=bootstrap, seed=reference_seed)
        for (name, path), reference_seed in zip((references or {}).items(), reference_seeds, strict=True)
    ]
    return write_report(
        analyses,
        out_dir,
        inventory=inventory,
        downstream=downstream,
        chains=chains,
        branches=branches,
        ends=ends,
        public=evidence,
        design=design,
        lr_transfer=lr_transfer,
        about={
            "store": str(store_path.resolve()),
            "corpus_fingerprints": corpora,
            "bootstrap": bootstrap,
            "study_wall_time_s": wall_time,
        },
    )


def write_report(
    analyses: Analyses,
    out_dir: str | Path,
    *,
    inventory: pd.DataFrame,
    downstream: list[dict[str, Any]] | None = None,
    chains: tuple[list[DownstreamPanel], str | None] | None = None,
    branches: pd.DataFrame | None = None,
    ends: pd.DataFrame | None = None,
    about: dict[str, Any] | None = None,
    public: Sequence[PublicEvidence] = (),
    design: DesignSpaceResult | None = None,
    lr_transfer: LRTransferResult | None = None,
) -> Report:
    """Write the report of ``analyses`` (from a store or from CSVs) with its run inventory.

    ``chains``: the two-step downstream chain per family and task, or why there is none
    (:func:`~archscale.analysis.downstream_chain.downstream_panels`).
    ``branches``: each cooldown branch's final loss predicted from its trunk by the whole-curve laws
    (:func:`~archscale.analysis.curve_tables.store_branch_predictions`); ``ends``: where each unfinished run
    will end (:func:`~archscale.analysis.curve_tables.predicted_ends`). ``about`` adds free-form facts to ``summary.json`` and the page's last table (e.g. ``store``,
    ``bootstrap``, ``study_wall_time_s``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = write_figures(analyses, out_dir / "figures") | public_figures(public, out_dir / "figures")
    if design is not None:
        figures["design_space"] = design_space_figure(design, out_dir / "figures" / "design_space.png")
    if lr_transfer is not None:
        figures["lr_transfer"] = lr_transfer_figure(lr_transfer, out_dir / "figures" / "lr_transfer.png")
    panels, no_chain = chains or ([], "No downstream points were given to the report.")
    if panels:
        figures["downstream_chain"] = downstream_figure(panels, out_dir / "figures" / "downstream_chain.png")
    head = headline_numbers(analyses, public)
    summary = {
        **(about or {}),
        "environment": environment(),
        "headline": head,
        "runs": {
            "total": len(inventory),
            "by_status": inventory["status"].value_counts().to_dict(),
            "max_epochs": None if inventory["epochs"].isna().all() else float(inventory["epochs"].max()),
            "over_one_epoch": int((inventory["epochs"] > 1).sum()),
            "inventory": inventory,
        },
        "downstream": downstream or [],
        "downstream_chain": {"panels": [panel.to_dict() for panel in panels], "note": no_chain},
        "branch_predictions": [] if branches is None else branches,
        "predicted_ends": [] if ends is None else ends,
        "analyses": analyses,
        "public_evidence": list(public),
        "design_space": design,
        "lr_transfer": lr_transfer,
    }
    summary = jsonable(summary)
    summary_path = out_dir / "summary.json"
    write_atomic(summary_path, json.dumps(summary, indent=1, allow_nan=False))
    index = out_dir / "index.html"
    relative = {name: path.relative_to(out_dir).as_posix() for name, path in figures.items()}
    write_atomic(index, render_page(analyses, summary, head, relative, public))
    return Report(index=index, summary_path=summary_path, figures=figures, summary=summary, head=head)
