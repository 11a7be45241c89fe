"""The trainer: learning, curves and evals, resumption, divergence, noise scale, MoE logging."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from safetensors.torch import load_file

from archscale.models import get_preset
from archscale.training import checkpoint
from archscale.training.noise_scale import unbiased_estimates
from archscale.training.run_config import RunConfig
from archscale.training.trainer import Trainer, load_train_data
from training_helpers import crash_after_step_25, make_run, train


def test_run_learns_and_records_every_step_and_eval(tiny_corpus, tmp_path) -> None:
    run = make_run(tiny_corpus)
    result = train(run, tmp_path)
    assert result.status == "finished" and result.steps_done == run.steps == 40
    assert [r["step"] for r in result.curve] == list(range(1, 41))
    assert result.curve[0]["lm_loss"] == pytest.approx(math.log(257), abs=0.2)  # uniform over the vocabulary
    assert result.final_loss < result.curve[0]["lm_loss"] - 1.5
    assert result.curve[-1]["lr"] == pytest.approx(0.1 * 3e-3, rel=0.01)  # cosine ends at 10 % of the peak
    assert result.curve[-1]["flops"] == pytest.approx(run.trained_tokens * run.derived()["N"])
    final = [e for e in result.evals if e["step"] == run.steps]
    assert {e["subset"] for e in final} == {"code", "prose", "all"}
    for e in final:  # bytes tokeniser: one byte per target except end-of-text, which has none
        assert e["bits_per_byte"] == pytest.approx(e["loss"] * e["n_tokens"] / (math.log(2) * e["n_bytes"]))
    overall = next(e for e in final if e["subset"] == "all")
    parts = [e for e in final if e["subset"] != "all"]
    assert overall["loss"] == pytest.approx(
        sum(e["loss"] * e["n_tokens"] for e in parts) / overall["n_tokens"]
    )
    assert (tmp_path / "model.safetensors").exists()
    assert result.data["corpus"] == tiny_corpus.fingerprint  # what it trained on travels with the result
    data = load_train_data(run)
    assert result.data["tokenizer"] == data.record["tokenizer"] != ""
    train_tokens = sum(len(data.sampler.shards[s]) for s in data.sampler.subsets)  # uniform over the split
    assert result.data["epochs"] == pytest.approx(run.trained_tokens / train_tokens)


LOSS_FREE = {**get_preset("moe-100k").to_dict(), "router_score": "sigmoid", "balance": "loss_free",
             "aux_loss_weight": 0.0, "bias_update_rate": 0.01}  # fmt: skip


COMPLETEP = {
    **get_preset("moe-100k").to_dict(),
    "parametrization": "completep",
    "base_width": 32,
    "base_depth": 1,
}


@pytest.mark.parametrize("model", ["moe-100k", LOSS_FREE, COMPLETEP], ids=["moe", "loss-free", "completep"])
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tiny_corpus, tmp_path, model) -> None:
    """Loss-free balancing's expert biases are state too: a resume without them would route differently."""
    run = make_run(tiny_corpus, model=model, micro_batch_size=4)
    reference = train(run, tmp_path / "a")
    crash_after_step_25(run, tmp_path / "b")
    resumed = train(run, tmp_path / "b")
    assert resumed.final_loss == reference.final_loss
    assert [r["lm_loss"] for r in resumed.curve] == [r["lm_loss"] for r in reference.curve]
    assert [r["noise_scale"] for r in resumed.curve][-1] == reference.curve[-1]["noise_scale"]
    weights = load_file(tmp_path / "b" / "model.safetensors")
    biases = [w for name, w in weights.items() if name.endswith("expert_bias")]
    assert len(biases) == (run.model.n_layers if run.model.balance == "loss_free" else 0)
    for bias in biases:  # moved once per step by ±rate (or 0): multiples of the rate, at most 40 of them
        steps = bias / run.model.bias_update_rate
        torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-3)
        assert 0 < steps.abs().max() <= run.steps


def test_a_completep_run_steps_each_parameter_group_at_its_own_learning_rate(tiny_corpus, tmp_path) -> None:
    """d_model 64 on a base width of 32 (m = 2), 2 layers on a base depth of 1 (m_L = 2): hidden matrices,
    experts and router at η/m, embedding, head and gains at η; hidden weight decay × m; ε 1e-8/m, and
    1e-8/(m·m_L) for the hidden groups and block gains (models/parametrization.py's table)."""
    run = make_run(tiny_corpus, model=COMPLETEP, tokens=8 * 64 * 4)
    trainer = Trainer(run, load_train_data(run), tmp_path)
    trainer.fit()
    lr = run.lr_at(run.steps - 1)
    expected = {  # group: (learning rate ÷ η_t, weight decay ÷ λ, ε)
        "embedding": (1, 1, 0.5e-8), "attention": (0.5, 2, 0.25e-8), "router": (0.5, 2, 0.25e-8),
        "experts": (0.5, 2, 0.25e-8), "norm": (1, 0, 0.25e-8), "final_norm": (1, 0, 0.5e-8), "output": (1, 1, 0.5e-8),
    }  # fmt: skip
    got = {
        g["group"]: (g["lr"] / lr, g["weight_decay"] / run.weight_decay, g["eps"])
        for g in trainer.optimizer.param_groups
    }
    assert got.keys() == expected.keys()
    for group, values in expected.items():
        assert got[group] == pytest.approx(values, rel=1e-12), group


def test_kept_checkpoints_are_the_weights_at_each_eval_step(tiny_corpus, tmp_path) -> None:
    """keep_checkpoints: the model's weights as they were when each eval before the end ran (captured here
    from the live model), weights only; the end's are the final weights, and nothing is kept unless asked."""
    run = make_run(tiny_corpus, tokens=8 * 64 * 10, eval_at_tokens=[3 * 512, 6 * 512], keep_checkpoints=True)
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def capture(kind, payload):
        if kind == "evals":
            seen[payload["rows"][0]["step"]] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer = Trainer(run, load_train_data(run), tmp_path / "kept", on_event=capture)
    trainer.fit()
    kept = checkpoint.kept_weights(tmp_path / "kept", run.steps)
    assert list(kept) == [3, 6, 10] and kept[10].name == checkpoint.WEIGHTS_FILE
    for step, path in kept.items():
        assert load_file(path).keys() == seen[step].keys()  # no optimizer state; tied weights as in the final
        for name, tensor in load_file(path).items():
            torch.testing.assert_close(tensor, seen[step][name], rtol=0, atol=0)
    assert not torch.equal(load_file(kept[3])["embed.weight"], load_file(kept[6])["embed.weight"])
    train(run.replace(keep_checkpoints=False), tmp_path / "plain")
    assert list(checkpoint.kept_weights(tmp_path / "plain", run.steps)) == [10]


def test_huge_learning_rate_is_recorded_as_diverged(tiny_corpus, tmp_path) -> None:
    result = train(make_run(tiny_corpus, lr=30.0, warmup_steps=0), tmp_path)
    assert result.status == "diverged"
    assert result.diverged_step is not None and result.diverged_step < 40
    assert "loss" in result.message
    again = train(make_run(tiny_corpus, lr=30.0, warmup_steps=0), tmp_path)  # a diverged run stays diverged
    assert again.status == "diverged" and again.diverged_step == result.diverged_step


def test_the_first_noise_scale_is_the_closed_form_of_that_steps_gradients(tiny_corpus, tmp_path) -> None:
    """Wiring check with a known answer: recompute step 1's micro-batch gradients by hand on a copy of the
    initial model, form |G_small|² (their mean squared norm) and |G_big|² (the norm² of their mean), and the
    first logged B_simple must be McCandlish's tr(Σ)/|G|² of those (bias-corrected EMAs equal the first
    values), in tokens. A wrong n_micro² factor, swapped batch sizes or sequences for tokens all fail."""
    run = make_run(tiny_corpus, tokens=8 * 64, micro_batch_size=2)
    trainer = Trainer(run, load_train_data(run), tmp_path)
    model, batch = copy.deepcopy(trainer.model), trainer.data.sampler.batch(0)
    grads = []
    for micro in batch.split(2):
        model.zero_grad()
        model(micro[:, :-1], micro[:, 1:]).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    small = float(torch.stack([g.square().sum() for g in grads]).mean())
    big = float(torch.stack(grads).mean(dim=0).square().sum())
    g2, trace = unbiased_estimates(small, big, 2 * 64, 8 * 64)
    assert g2 > 0 and trace > 0
    result = trainer.fit()
    assert result.curve[0]["noise_scale"] == pytest.approx(trace / g2, rel=1e-4)
    assert result.curve[0]["grad_norm"] == pytest.approx(big**0.5, rel=1e-4)


def test_noise_scale_and_expert_load_are_logged(tiny_corpus, tmp_path) -> None:
    result = train(make_run(tiny_corpus, model="moe-100k", micro_batch_size=2), tmp_path)
    noise = [r["noise_scale"] for r in result.curve]
    assert all(math.isfinite(v) and v > 0 for v in noise[5:])
    fractions = result.curve[-1]["expert_fraction"]
    assert len(fractions) == 2 and all(len(layer) == 8 for layer in fractions)
    assert all(sum(layer) == pytest.approx(1.0) for layer in fractions)


def test_a_micro_batch_too_big_for_its_device_runs_in_passes_that_fit() -> None:
    """The plan the trainer makes on a GPU before allocating, given the device's bytes: dense-1b's batch of
    64 × 2048 tokens in one micro-batch needs far more than 80 GiB, so it runs in passes of fewer rows (the
    run's micro-batch, its identity, unchanged); a model that fits in no way is refused with the numbers."""
    from archscale.errors import ArchscaleError
    from archscale.models.memory import GIB, estimate_memory
    from archscale.training.options import TrainOptions
    from archscale.training.trainer import check_memory

    run = RunConfig.from_dict({"model": "dense-1b", "tokens": 10**9, "batch_size": 64, "lr": 1e-3,
                               "seq_len": 2048, "micro_batch_size": 64})  # fmt: skip
    assert estimate_memory(run.model, 64, 2048, accumulates=False, bf16=True).total > 80 * GIB
    plan = check_memory(run, 1, TrainOptions(), 80 * GIB, bf16=True)
    assert 1 <= plan.rows < 64 and plan.rows * plan.passes == 64 and run.micro_batch_size == 64
    assert not (plan.shard or plan.checkpoint_activations)
    assert plan.estimate == estimate_memory(run.model, plan.rows, 2048, bf16=True)
    assert estimate_memory(run.model, 2 * plan.rows, 2048, bf16=True).total > 80 * GIB  # the largest pass
    fits = check_memory(run.replace(micro_batch_size=8), 1, TrainOptions(), 80 * GIB, bf16=True)
    assert (fits.rows, fits.passes) == (8, 1)  # a micro-batch that fits runs as it always did
    huge = RunConfig.from_dict(
        {"model": "dense-7b", "tokens": 10**9, "batch_size": 64, "lr": 1e-3, "seq_len": 2048}
    )
    with pytest.raises(
        ArchscaleError,
        match=r"dense-7b needs .* at one row of RunConfig.seq_len=\d+ tokens a pass, over the 80 GiB",
    ):
        check_memory(huge, 1, TrainOptions(), 80 * GIB, bf16=True)
