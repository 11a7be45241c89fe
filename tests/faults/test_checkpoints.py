"""Damaged and foreign checkpoints are refused with the reason, never resumed into a "finished" run whose
numbers differ from an uninterrupted run's; asked to, the run restarts from scratch and ends exactly as the
uninterrupted one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from archscale.training import checkpoint
from archscale.training.checkpoint import CheckpointError
from training_helpers import crash_after_step_25, make_run, train


def _flip_bits(path, n: int, seed: int) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for position in rng.choice(len(data) * 8, size=n, replace=False):
        data[position // 8] ^= 1 << (position % 8)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def reference(tiny_corpus, tmp_path_factory):
    run = make_run(tiny_corpus)
    return run, [r["lm_loss"] for r in train(run, tmp_path_factory.mktemp("reference")).curve]


@pytest.mark.parametrize("seed", range(4))
def test_sixteen_flipped_bits_are_refused_or_harmless(reference, tmp_path, seed) -> None:
    run, losses = reference
    crash_after_step_25(run, tmp_path)
    _flip_bits(tmp_path / checkpoint.STATE_FILE, 16, seed)
    try:
        resumed = train(run, tmp_path)
    except CheckpointError as err:
        assert str(tmp_path / checkpoint.STATE_FILE) in str(err) and "--restart-bad-checkpoints" in str(err)
        assert ("damaged" in str(err)) or ("unreadable" in str(err))
    else:  # the flips hit bytes nothing reads: then, and only then, the run may resume
        assert [r["lm_loss"] for r in resumed.curve] == losses


def test_a_flip_inside_a_tensor_is_caught_by_the_content_hash(reference, tmp_path) -> None:
    """One bit of one AdamW moment changed and saved again as a readable file: only the hash can tell."""
    run, _ = reference
    crash_after_step_25(run, tmp_path)
    path = tmp_path / checkpoint.STATE_FILE
    state = torch.load(path, weights_only=True)
    moment = next(iter(state["optimizer"]["state"].values()))["exp_avg"]
    moment.view(-1).view(torch.int32)[0] ^= 1
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        train(run, tmp_path)


def test_another_runs_checkpoint_is_refused(reference, tiny_corpus, tmp_path) -> None:
    run, _ = reference
    other = make_run(tiny_corpus, lr=1e-3)
    crash_after_step_25(other, tmp_path / "other")
    (tmp_path / "mine").mkdir()
    shutil.copy(tmp_path / "other" / checkpoint.STATE_FILE, tmp_path / "mine" / checkpoint.STATE_FILE)
    with pytest.raises(CheckpointError, match=f"written by run '{other.run_id}', not by this run"):
        train(run, tmp_path / "mine")


def test_a_branch_state_from_a_run_that_is_not_the_trunk_is_refused(reference, tiny_corpus, tmp_path) -> None:
    """A WSD run's branch state must come from its trunk at its decay start; a cosine run's state is not."""
    run, _ = reference
    wsd = make_run(tiny_corpus, schedule="wsd", warmup_steps=4, decay_fraction=0.2)
    crash_after_step_25(run, tmp_path / "cosine")
    (tmp_path / "wsd").mkdir()
    shutil.copy(tmp_path / "cosine" / checkpoint.STATE_FILE, tmp_path / "wsd" / checkpoint.BRANCH_FILE)
    with pytest.raises(CheckpointError, match="not this run's trunk"):
        train(wsd, tmp_path / "wsd")


def test_a_checkpoint_without_identity_is_refused(reference, tmp_path) -> None:
    """Written by an older archscale (no identity, no hash): whose it is cannot be known."""
    run, _ = reference
    crash_after_step_25(run, tmp_path)
    path = tmp_path / checkpoint.STATE_FILE
    state = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in state.items() if k not in ("identity", "content_sha256")}, path)
    with pytest.raises(CheckpointError, match="no identity"):
        train(run, tmp_path)


def test_set_aside_moves_only_refused_checkpoints_and_the_run_then_starts_afresh(reference, tmp_path) -> None:
    run, losses = reference
    crash_after_step_25(run, tmp_path)
    assert checkpoint.set_aside_bad(tmp_path, run) == []  # a good checkpoint stays
    step = checkpoint.load_state(tmp_path, run)["step"]
    assert step >= 20 and step % run.checkpoint_every_steps == 0
    (tmp_path / checkpoint.STATE_FILE).write_bytes(b"\0" * 100)
    assert checkpoint.set_aside_bad(tmp_path, run) == [tmp_path / "checkpoint.pt.bad"]
    assert checkpoint.load_state(tmp_path, run) is None
    assert [r["lm_loss"] for r in train(run, tmp_path).curve] == losses
