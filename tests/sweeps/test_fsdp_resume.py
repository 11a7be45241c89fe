"""FSDP2 under a crash: one rank of a sharded ``torchrun`` group killed with SIGKILL mid-run, the command
started again, and the run ends with the curve of an uninterrupted sharded run, every step stored once.

(Against one unsharded process the curves agree to 1e-4 over a dozen steps, tests/sweeps/test_sweep_run.py;
over the 40 steps here an MoE's routing can flip on a rounding difference, so the reference is sharded.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from archscale.store import ResultsStore
from sweep_helpers import ARCHSCALE, GLOO_ENV, write_spec

STEPS = 40


def torchrun_train(spec: Path, store: Path) -> list[str]:
    """``archscale train --shard`` by two gloo processes on this machine, as a user starts it."""
    return [
        *ARCHSCALE[:1], "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "archscale.cli.main", "train", str(spec), "--store", str(store), "--device", "cpu", "--shard",
    ]  # fmt: skip


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the ranks torchrun started), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def steps_stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT count(*) FROM curve").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is still being created
            return 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds torchrun's ranks through /proc")
def test_a_rank_killed_mid_run_resumes_to_the_unsharded_curve(tiny_corpus, tmp_path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus, checkpoint_every_steps=5,
        grid=[{"models": ["moe-100k"], "tokens": [8 * 64 * STEPS], "batch_sizes": [8], "lrs": [3e-3]}],
    )  # fmt: skip
    reference = tmp_path / "uninterrupted.sqlite"
    subprocess.run(torchrun_train(spec, reference), env=GLOO_ENV, check=True, timeout=300)

    store = tmp_path / "killed.sqlite"
    group = subprocess.Popen(
        torchrun_train(spec, store), env=GLOO_ENV, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 180
    checkpoints = tmp_path / "killed-runs"
    while time.time() < deadline and group.poll() is None:  # kill once a checkpoint is behind the run
        time.sleep(0.05)
        if list(checkpoints.glob("*/checkpoint.pt")) and steps_stored(store) > 12:
            break
    ranks = children(group.pid)
    assert group.poll() is None and len(ranks) == 2, "the kill should land mid-run"
    os.kill(max(ranks), signal.SIGKILL)  # one rank dies; torchrun stops the other and fails
    assert group.wait(timeout=120) != 0
    with ResultsStore(store) as results:
        before = len(results.curve())
        assert results.finished_ids() == set()
    assert 0 < before < STEPS
    print(f"killed after {before} of {STEPS} steps were stored")

    subprocess.run(torchrun_train(spec, store), env=GLOO_ENV, check=True, timeout=300)
    with ResultsStore(reference) as a, ResultsStore(store) as b:
        one, two = a.curve().sort_values("step"), b.curve().sort_values("step")
        assert b.finished_ids() == a.finished_ids()
    assert two["step"].tolist() == list(range(1, STEPS + 1))  # every step once: nothing lost or repeated
    for column in ("lm_loss", "grad_norm"):
        assert two[column].to_numpy() == pytest.approx(one[column].to_numpy(), rel=1e-6), column
