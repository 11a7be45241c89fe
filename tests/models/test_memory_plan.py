"""The memory plan: how a run's micro-batches fit the devices it is given (rows per pass, sharding,
recomputation), the trainer executing a split plan with the numbers of the unsplit run, and the plan's
estimate against the CPU allocator's measured peak of the split run."""

from __future__ import annotations

import pytest
import torch

from archscale.errors import ArchscaleError
from archscale.models import get_preset
from archscale.models.memory import GIB, estimate_memory, plan_memory
from archscale.sweeps.dry_run import GPU_MEMORY_GIB, GPUS_PER_NODE, format_plan, plan_runs
from archscale.training import checkpoint
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig
from archscale.training.trainer import Trainer, check_memory, load_train_data
from memory_helpers import measured_peak
from training_helpers import make_run

CFG = get_preset("dense-800k")
ROWS, SEQ = 16, 256  # one rank's rows per step, all in one micro-batch (the run's micro_batch_size)


def _need(rows: int, *, ranks: int = 4, shard: bool = False, recompute: bool = False) -> int:
    """estimate_memory's bytes for passes of ``rows`` of the step's ROWS on each of ``ranks``."""
    return estimate_memory(
        CFG, rows, SEQ, accumulates=rows < ROWS, ranks=ranks, shard=shard, checkpoint_activations=recompute
    ).total


def test_a_shrinking_budget_takes_fewer_rows_a_pass_then_sharding_then_recomputation() -> None:
    """Each budget is exactly what one setting needs, and the plan takes that setting: the cheapest in compute
    that fits (passes of fewer rows; FSDP over the ranks; only then recomputed activations), its largest
    pass. dense-800k's activations outweigh its weights, so sharding saves little: below one row a pass of
    DDP, FSDP fits one row, and below that only recomputation with FSDP fits (two rows, then one)."""
    expected = [  # rows per pass, shard, recompute
        (16, False, False), (8, False, False), (4, False, False), (2, False, False), (1, False, False),
        (1, True, False), (2, True, True), (1, True, True),
    ]  # fmt: skip
    budgets = [_need(rows, shard=shard, recompute=recompute) for rows, shard, recompute in expected]
    assert budgets == sorted(budgets, reverse=True)  # the budget shrinks down the list
    for budget, (rows, shard, recompute) in zip(budgets, expected, strict=True):
        plan = plan_memory(CFG, ROWS, SEQ, budget, ranks=4)
        assert (plan.rows, plan.shard, plan.checkpoint_activations) == (rows, shard, recompute), budget / GIB
        assert plan.passes == ROWS // rows and plan.estimate.total == budget
    alone = plan_memory(CFG, ROWS, SEQ, _need(1, ranks=1) - 1)  # one process never shards: it recomputes
    assert (alone.rows, alone.shard, alone.checkpoint_activations) == (2, False, True)
    with pytest.raises(
        ArchscaleError,
        match=r"needs .* GiB .* at one row of RunConfig.seq_len=\d+ tokens a pass, over the .* GiB available",
    ):
        plan_memory(CFG, ROWS, SEQ, budgets[-1] - 1, ranks=4)


def test_passes_divide_the_runs_micro_batch_not_only_the_step() -> None:
    plan = plan_memory(CFG, ROWS, SEQ, _need(4, ranks=1), micro_batch=8)  # two micro-batches of 8 rows
    assert (plan.rows, plan.passes) == (4, 2)
    assert plan.describe() == f"4 rows × 2 passes, {_need(4, ranks=1) / GIB:.3g} GiB/device"


def test_an_explicit_choice_is_honoured() -> None:
    tight = _need(1) - 1  # nothing fits four ranks without sharding or recomputation
    assert plan_memory(CFG, ROWS, SEQ, tight, ranks=4).shard
    no_shard = plan_memory(CFG, ROWS, SEQ, tight, ranks=4, shard=False)
    assert not no_shard.shard and no_shard.checkpoint_activations
    with pytest.raises(ArchscaleError):
        plan_memory(CFG, ROWS, SEQ, tight, ranks=4, shard=False, checkpoint_activations=False)
    roomy = 10 * _need(16)  # asked for, they are taken even where the run would fit without them
    forced = plan_memory(CFG, ROWS, SEQ, roomy, ranks=4, shard=True, checkpoint_activations=True)
    assert (forced.rows, forced.shard, forced.checkpoint_activations) == (16, True, True)
    assert forced.describe().startswith("16 rows × 1 pass, FSDP over 4, activations recomputed")


def _split_run(corpus):
    """A 10-step dense-100k run of two micro-batches of 4 rows a step, and a budget that fits 2 rows a pass
    but not 4: the plan runs each micro-batch in two passes."""
    run = make_run(corpus, tokens=8 * 64 * 10, micro_batch_size=4)
    fits, too_few = (estimate_memory(run.model, r, run.seq_len, accumulates=True).total for r in (2, 4))
    return run, (fits + too_few) / 2


def test_a_split_micro_batch_trains_the_curve_of_the_unsplit_run(tiny_corpus, tmp_path) -> None:
    """The passes' gradients add up to the micro-batch's before the noise probe reads it: the same losses,
    gradient norms and noise scale as the run whose micro-batch fits (the run's identity is unchanged)."""
    run, budget = _split_run(tiny_corpus)
    split = Trainer(run, load_train_data(run), tmp_path / "split", memory_budget=budget)
    whole = Trainer(run, load_train_data(run), tmp_path / "whole", memory_budget=100 * GIB)
    assert (split.plan.rows, split.plan.passes, whole.plan.rows, whole.plan.passes) == (2, 2, 4, 1)
    assert not (split.plan.shard or split.plan.checkpoint_activations)
    a, b = split.fit(), whole.fit()
    assert a.data["memory_plan"] == split.plan.describe() and a.data["memory_plan"].startswith(
        "2 rows × 2 passes"
    )
    assert len(a.curve) == len(b.curve) == run.steps
    for key in ("lm_loss", "grad_norm", "noise_scale"):
        got, want = [r[key] for r in a.curve], [r[key] for r in b.curve]
        assert all(v == v for v in want[1:])  # measured: two micro-batches a step
        assert got == pytest.approx(want, rel=1e-5, nan_ok=True), key


class _Died(Exception):
    pass


def test_a_resumed_run_keeps_its_passes_where_they_fit_and_records_where_it_could_not(
    tiny_corpus, tmp_path, monkeypatch
) -> None:
    """A run that dies right after its step-4 checkpoint, having trained in two passes of 2 rows (a tight
    budget): resumed where the whole micro-batch would fit, it trains on in its two passes, so its curve
    is the uninterrupted run's bit for bit (one pass of 4 rows sums in another order); resumed where 2 rows
    no longer fit, it re-plans to 1 row a pass and its record names the step and both plans, and keeps
    naming them after a second interruption under the new plan."""
    run, budget = _split_run(tiny_corpus)
    run = run.replace(checkpoint_every_steps=4)
    uninterrupted = Trainer(run, load_train_data(run), tmp_path / "whole", memory_budget=budget).fit()
    one_row, two_rows = (
        estimate_memory(run.model, r, run.seq_len, noise_probe=run.measures_noise_scale).total for r in (1, 2)
    )
    save = checkpoint.save_state

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise _Died

    for name, resume_budget, rows in (("roomy", 100 * GIB, 2), ("tight", (one_row + two_rows) / 2, 1)):
        run_dir = tmp_path / name
        with monkeypatch.context() as patch:
            patch.setattr(checkpoint, "save_state", save_then_die)
            with pytest.raises(_Died):
                Trainer(run, load_train_data(run), run_dir, memory_budget=budget).fit()
        resumed = Trainer(run, load_train_data(run), run_dir, memory_budget=resume_budget)
        assert (resumed.step, resumed.plan.rows, resumed.plan.passes) == (4, rows, 4 // rows)
        if name == "tight":  # dies again at step 8 under the new plan, then resumes under it
            with monkeypatch.context() as patch:
                patch.setattr(checkpoint, "save_state", save_then_die)
                with pytest.raises(_Died):
                    resumed.fit()
            resumed = Trainer(run, load_train_data(run), run_dir, memory_budget=resume_budget)
            assert resumed.step == 8
        result = resumed.fit()
        if name == "roomy":
            assert [r["lm_loss"] for r in result.curve] == [r["lm_loss"] for r in uninterrupted.curve]
            assert [r["grad_norm"] for r in result.curve] == [r["grad_norm"] for r in uninterrupted.curve]
            assert "memory_plan_changes" not in result.data
        else:
            [changed] = result.data["memory_plan_changes"]
            assert changed["step"] == 4 and (changed["from"]["rows"], changed["to"]["rows"]) == (2, 1)
            assert result.data["memory_plan"].startswith("1 row × 4 passes")


def test_a_kept_plan_yields_to_another_world_size_or_an_explicit_option(tiny_corpus) -> None:
    """The checkpoint's plan (2 rows a pass) is taken again with room for 4 only on the same number of ranks
    and where --checkpoint-activations does not ask for another setting; otherwise the plan is made afresh."""
    run, _ = _split_run(tiny_corpus)
    kept = {"rows": 2, "checkpoint_activations": False, "shard": False, "ranks": 1}

    def plan(ranks=1, **options):
        chosen = check_memory(
            run, 1, TrainOptions(**options), 100 * GIB, bf16=False, kept={**kept, "ranks": ranks}
        )
        return chosen.rows, chosen.checkpoint_activations

    assert plan() == (2, False)
    assert plan(checkpoint_activations=False) == (2, False)  # asks for what it had: kept
    assert plan(ranks=2) == (4, False)
    assert plan(checkpoint_activations=True) == (4, True)


def test_the_split_runs_estimate_is_within_15_percent_of_the_measured_peak(tiny_corpus) -> None:
    torch.set_num_threads(1)
    run, budget = _split_run(tiny_corpus)
    plan = plan_memory(run.model, run.batch_size, run.seq_len, budget, micro_batch=run.micro_batch_size)
    assert (plan.rows, plan.passes) == (2, 2)
    peak = measured_peak(run.model, plan.rows, run.seq_len, run.batch_size // plan.rows)  # passes of the step
    assert plan.estimate.total == pytest.approx(peak, rel=0.15), (plan.describe(), peak / GIB)


def test_the_dry_run_places_a_run_too_big_for_one_gpu_sharded_over_a_node() -> None:
    big = RunConfig.from_dict({"model": "dense-7b", "tokens": 10**9, "batch_size": 64, "lr": 1e-4,
                               "seq_len": 2048, "micro_batch_size": 4})  # fmt: skip
    (planned,) = plan_runs([big])
    assert planned.gpu_bytes > GPU_MEMORY_GIB * GIB  # 16 bytes a parameter alone are over 80 GiB
    assert planned.memory is not None and planned.memory.shard and planned.memory.ranks == GPUS_PER_NODE
    assert planned.memory.estimate.total <= GPU_MEMORY_GIB * GIB
    text = format_plan([planned])
    assert f"FSDP over {GPUS_PER_NODE}" in text and planned.memory.describe() in text
    assert f"1 runs fit no one {GPU_MEMORY_GIB} GiB GPU" in text and "torchrun --nproc-per-node 8" in text
