"""Fixtures of the analysis tests: one synthetic study with known answers, and its analyses."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_synthetic import Run, family_law, grid, ladder, make_study

from archscale.analysis import Analyses, analyse, loss_points
from archscale.store import ResultsStore
from archscale.training.run_config import RunConfig


@pytest.fixture(scope="session")
def study() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, curve, evals: a 6-size ladder per family plus a 3-size batch-size × LR grid per family."""
    return make_study(ladder() + grid())


@pytest.fixture(scope="session")
def points(study) -> pd.DataFrame:
    runs, curve, _ = study
    return loss_points(runs, curve)


@pytest.fixture(scope="session")
def analyses(study) -> Analyses:
    return analyse(*study, bootstrap=20)


PRESETS = (
    "dense-100k",
    "dense-330k",
    "dense-800k",
    "dense-1.6m",
    "moe-100k",
    "moe-330k",
    "moe-800k",
    "moe-1.6m",
)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """A results store holding a ladder written through the store's own API (curves, evals, statuses)."""
    configs = [
        RunConfig.from_dict(
            {
                "model": p,
                "tokens": 512 * 400,
                "batch_size": 8,
                "lr": 1e-3,
                "seq_len": 64,
                "micro_batch_size": 4,
            }
        )
        for p in PRESETS
    ]
    specs = [
        Run(
            c.model.kind,
            c.derived()["N"],
            c.tokens_per_step,
            c.lr,
            c.trained_tokens,
            family_law(c.model.kind),
        )
        for c in configs
    ]
    runs, curve, evals = make_study(specs)
    with ResultsStore(tmp_path_factory.mktemp("store") / "results.sqlite") as s:
        for config, synthetic in zip(configs, runs["run_id"], strict=True):
            s.add_run(config, status="finished")
            rows = curve[curve["run_id"] == synthetic].drop(columns="run_id")
            s.add_curve(config.run_id, rows.to_dict(orient="records"))
            s.add_evals(
                config.run_id,
                evals[evals["run_id"] == synthetic].drop(columns="run_id").to_dict(orient="records"),
            )
        unfinished = RunConfig.from_dict(
            {"model": "dense-6.4m", "tokens": 512 * 400, "batch_size": 8, "lr": 1e-3, "seq_len": 64}
        )
        s.add_run(unfinished, status="failed")
        yield s
