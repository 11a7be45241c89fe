"""Fixtures of the bridge tests: tiny random models and a results store holding one finished run.

The hub is switched off before ``transformers``/``datasets`` are imported (they read these variables
once), so nothing here can download a model or a data set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from archscale.models import Transformer, build_model, get_preset
from archscale.store import ResultsStore
from archscale.training.checkpoint import save_weights
from archscale.training.run_config import RunConfig


def make_model(kind: str = "dense", *, seed: int = 0, **changes: Any) -> Transformer:
    """A random 100k-parameter ladder model at the byte vocabulary (257), with weights large enough
    (std 0.2) that its logits and routing are far from uniform; ``changes`` edit its ModelConfig."""
    fields = {"vocab_size": 257, "max_seq_len": 128, "init_std": 0.2, **changes}
    cfg = get_preset(f"{kind}-100k").replace(**fields)
    torch.manual_seed(seed)
    return build_model(cfg).eval()


@pytest.fixture
def tiny_model() -> Callable[..., Transformer]:
    """Factory: ``tiny_model("moe", renormalize=False, tie_embeddings=True, seed=1)``."""
    return make_model


@dataclass
class StoredRun:
    store: Path
    run_id: str
    model: Transformer


@pytest.fixture
def stored_run(tmp_path: Path) -> StoredRun:
    """A store with one finished dense run whose final weights are in ``<store>-runs/<run_id>/``.

    The run names the preset (vocabulary 256); its weights have the byte tokenizer's 257 ids.
    """
    preset = get_preset("dense-100k").replace(max_seq_len=128)
    run = RunConfig.from_dict(
        {"model": preset.to_dict(), "tokens": 4096, "batch_size": 4, "lr": 1e-3, "tokenizer": "bytes"}
    )
    model = make_model("dense", seed=1)
    store = tmp_path / "results.sqlite"
    with ResultsStore(store) as results:
        results.add_run(run, sweep="bridges-test")
        results.set_status(run.run_id, "finished")
    save_weights(tmp_path / "results-runs" / run.run_id, model.state_dict(), model.cfg.tie_embeddings)
    return StoredRun(store, run.run_id, model)
