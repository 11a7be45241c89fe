"""Cooldown branches: a WSD run of a shorter budget started from a longer run's state at its decay start
ends exactly like the independent run of that budget."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from archscale.analysis.points import law_points, points_rule, smooth
from archscale.analysis.suite import store_runs
from archscale.store import ResultsStore
from archscale.sweeps.executor import InProcessExecutor, run_sweep
from archscale.training import checkpoint
from archscale.training.branches import Branch, branch_step, plan_branches
from archscale.training.run_config import RunConfig
from archscale.training.trainer import Trainer, load_train_data

STEP_TOKENS = 8 * 64  # batch 8 × seq_len 64


def wsd(corpus, steps: int, **changes) -> RunConfig:
    """A WSD run of ``steps`` steps sharing warm-up and eval points with its siblings (so they are prefixes)."""
    base = {
        "model": "moe-100k", "tokens": STEP_TOKENS * steps, "batch_size": 8, "seq_len": 64, "lr": 3e-3,
        "micro_batch_size": 4, "schedule": "wsd", "warmup_steps": 2, "dataset": str(corpus.path),
        "eval_tokens_per_subset": 2048, "eval_at_tokens": [STEP_TOKENS * 4, STEP_TOKENS * 8],
        "checkpoint_every_steps": 5,
    }  # fmt: skip
    return RunConfig.from_dict({**base, **changes})


def train(run: RunConfig, run_dir, **kwargs):
    return Trainer(run, load_train_data(run), run_dir, **kwargs).fit()


def same_numbers(a, b) -> None:
    """Everything a run measures, bit for bit (the wall-clock columns aside)."""
    for column in ("lm_loss", "aux_loss", "lr", "grad_norm", "noise_scale", "tokens"):
        assert [r[column] for r in a.curve] == [r[column] for r in b.curve], column
    assert [(e["step"], e["subset"], e["loss"]) for e in a.evals] == [
        (e["step"], e["subset"], e["loss"]) for e in b.evals
    ]


def test_branch_step_is_the_decay_start_of_a_true_prefix(tiny_corpus) -> None:
    long, short = wsd(tiny_corpus, 40), wsd(tiny_corpus, 20)
    assert branch_step(short, long) == 20 - 4  # 20 % of 20 steps decay: the stable phase ends after 16
    assert branch_step(long, short) is None  # only a shorter run branches
    assert branch_step(wsd(tiny_corpus, 20, lr=2e-3), long) is None  # another LR is another trunk
    assert branch_step(wsd(tiny_corpus, 20, warmup_steps=None), long) is None  # 5 % of its own steps
    assert branch_step(wsd(tiny_corpus, 20, schedule="cosine"), long) is None
    assert branch_step(wsd(tiny_corpus, 20, eval_at_tokens=[STEP_TOKENS * 6]), long) is None  # evals differ
    assert branch_step(wsd(tiny_corpus, 20, model_name="label", checkpoint_every_steps=1), long) == 16
    runs = [wsd(tiny_corpus, n) for n in (20, 40, 30)]
    plan = plan_branches(runs)
    assert plan == {
        runs[0].run_id: Branch(runs[0].run_id, runs[1].run_id, 16),
        runs[2].run_id: Branch(runs[2].run_id, runs[1].run_id, 24),
    }


def test_a_branch_ends_bit_for_bit_like_the_independent_run(tiny_corpus, tmp_path) -> None:
    long, short = wsd(tiny_corpus, 40), wsd(tiny_corpus, 20)
    trunk = train(long, tmp_path / "trunk", branches={16: [tmp_path / "branch"]})
    assert (tmp_path / "branch" / checkpoint.BRANCH_FILE).exists()
    started = []
    branch = train(
        short,
        tmp_path / "branch",
        on_event=lambda kind, p: started.append(p["step"]) if kind == "started" else None,
    )
    assert started == [16]  # it trained only its decay
    independent = train(short, tmp_path / "independent")
    same_numbers(branch, independent)
    assert branch.curve[:16] == trunk.curve[:16]  # the shared stable phase is the trunk's own
    weights, reference = (
        load_file(str(tmp_path / d / checkpoint.WEIGHTS_FILE)) for d in ("branch", "independent")
    )
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[name], reference[name]) for name in weights)


class Crash(Exception):
    pass


def test_kill_inside_a_branch_then_resume_loses_nothing(tiny_corpus, tmp_path) -> None:
    long, short = wsd(tiny_corpus, 40), wsd(tiny_corpus, 20, checkpoint_every_steps=1)
    train(long, tmp_path / "trunk", branches={16: [tmp_path / "branch"]})

    def crash_in_the_decay(kind, payload):
        if kind == "progress" and payload["step"] >= 18:
            raise Crash

    with pytest.raises(Crash):
        train(short, tmp_path / "branch", on_event=crash_in_the_decay)
    assert checkpoint.load_state(tmp_path / "branch", short)["step"] >= 17  # its own checkpoint now wins
    resumed = train(short, tmp_path / "branch")
    same_numbers(resumed, train(wsd(tiny_corpus, 20), tmp_path / "independent"))


def test_a_sweep_runs_each_branch_from_its_trunk_and_records_the_lineage(tiny_corpus, tmp_path) -> None:
    runs = [wsd(tiny_corpus, n) for n in (20, 40)]
    with ResultsStore(tmp_path / "results.sqlite") as store:
        summary = run_sweep(runs, store, tmp_path / "runs", InProcessExecutor(), progress=False)
        assert sorted(summary.finished) == sorted(r.run_id for r in runs)
        assert store.meta(runs[0].run_id)["branch"] == {
            "run_id": runs[0].run_id,
            "trunk_id": runs[1].run_id,
            "step": 16,
        }
        assert "branch" not in store.meta(runs[1].run_id)
        assert store.meta(runs[1].run_id)["data"]["corpus"] == tiny_corpus.fingerprint
        curve = store.curve(runs[0].run_id)
    assert (tmp_path / "runs" / runs[0].run_id / checkpoint.BRANCH_FILE).exists()
    assert curve["step"].tolist() == list(range(1, 21))  # the stored curve is whole, trunk part included


def test_the_laws_read_a_branched_ladder_as_one_point_per_budget(tiny_corpus, tmp_path) -> None:
    """Only a decay's end is a finished point at its budget: the law points of a branched ladder are the
    smoothed ends of each budget, grouped under their trunk (they share its stable phase)."""
    runs = [wsd(tiny_corpus, n) for n in (20, 40)]
    with ResultsStore(tmp_path / "results.sqlite") as store:
        run_sweep(runs, store, tmp_path / "runs", InProcessExecutor(), progress=False)
        table, curve = store_runs(store), store.curve()
    points = law_points(table, curve)  # "auto": this store has a branch
    assert points_rule(table) == "budgets" and len(points) == 2
    assert set(points["run_id"]) == {runs[1].run_id}  # both under the trunk
    assert points["tokens"].tolist() == [STEP_TOKENS * 20, STEP_TOKENS * 40]
    ends = smooth(curve).groupby("run_id")["lm_loss"].last()
    assert points["loss"].tolist() == [ends[runs[0].run_id], ends[runs[1].run_id]]
