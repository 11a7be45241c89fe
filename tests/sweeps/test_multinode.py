"""Beyond one node, on one machine: a Ray cluster of two nodes (a head and a worker, each started with
``ray start`` as a user would on two machines) and a ``torchrun --nnodes 2`` group, each storing the curves
one process stores for the same spec. The steps a user follows are in docs/gpus.md ("Beyond one node")."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from archscale.store import ResultsStore
from sweep_helpers import ARCHSCALE, GLOO_ENV, sweep_command, write_spec

TIMEOUT_S = 180  # any one subprocess: a hang fails the test instead of blocking the suite
CURVE = ("lm_loss", "grad_norm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_curves(path: Path) -> dict[str, dict[str, list[float]]]:
    """Per run: its stored lm_loss and grad_norm, step by step."""
    with ResultsStore(path) as store:
        curve = store.curve().sort_values(["run_id", "step"])
        assert set(store.runs().status) == {"finished"}
    return {run_id: {c: list(rows[c]) for c in ("step", *CURVE)} for run_id, rows in curve.groupby("run_id")}


def one_process(spec: Path, store: Path) -> dict[str, dict[str, list[float]]]:
    """The reference: every run trained in one process, one thread."""
    command = sweep_command(spec, store, workers=0)
    subprocess.run(command, check=True, env=GLOO_ENV, timeout=TIMEOUT_S)
    return stored_curves(store)


# --- Ray: a head and a worker node ------------------------------------------------------------------------

RAY_NODES = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(json.dumps([n["NodeID"] for n in ray.nodes() if n["Alive"]]))
"""


def alive_nodes(address: str, env: dict[str, str]) -> list[str]:
    """The ids of the cluster's alive nodes, asked by a driver of its own (this process stays Ray-free)."""
    out = subprocess.run(
        [sys.executable, "-c", RAY_NODES, address], env=env, check=True, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def two_node_ray():
    """A head and a worker node of one CPU each, as ``ray start`` starts them on two machines, each with a
    temp dir (and so a log dir) of its own. Nothing else on this machine finds them (``ray.init()`` reads
    the default temp dir) and their teardown touches nothing else: ``--block`` keeps each ``ray start`` in
    the foreground, in its own process group, and stopping it stops its node. Token authentication is on,
    as Ray advises for a cluster: the nodes and the driver read one token file."""
    pytest.importorskip("ray")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    root = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # short: Ray's Unix sockets live under it
    port = free_port()
    address = f"127.0.0.1:{port}"
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in GLOO_ENV.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    temp = {"head": root / "h", "worker": root / "w"}
    commands = {
        "head": ["--head", "--port", str(port), "--include-dashboard=false"],
        "worker": ["--address", address],
    }
    nodes: list[subprocess.Popen] = []
    log = open(root / "ray-start.log", "w")  # noqa: SIM115  (closed in the teardown)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        for name in ("head", "worker"):
            command = [ray_cli, "start", *commands[name], "--num-cpus", "1", "--temp-dir", str(temp[name]),
                       "--block", "--disable-usage-stats"]  # fmt: skip
            nodes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True))
            while not (temp[name] / "ray_current_cluster").exists():  # written once the node is up
                assert nodes[-1].poll() is None and time.monotonic() < deadline, (
                    f"the Ray {name} did not start"
                )
                time.sleep(0.5)
        while len(alive := alive_nodes(address, env)) < 2:
            assert time.monotonic() < deadline, "the Ray worker node did not join"
            time.sleep(1)
        yield address, env, alive, temp
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):  # what it left running, in its own process group
                os.killpg(node.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def node_of(pid: str, temp: dict[str, Path]) -> list[str]:
    """The nodes whose log dir holds a Ray worker process with this pid (each node logs the workers it starts)."""
    return [name for name, path in temp.items() if any(path.glob(f"session_*/logs/*worker*-{pid}.*"))]


def test_ray_sweep_over_two_nodes_stores_what_one_process_stores(two_node_ray, tiny_corpus, tmp_path) -> None:
    address, env, alive, temp = two_node_ray
    assert len(set(alive)) == 2  # a head and a worker node, both alive
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus,
        grid=[{"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 12], "batch_sizes": [8], "lrs": [3e-3]}],
    )  # fmt: skip
    store = tmp_path / "ray.sqlite"
    command = [*ARCHSCALE, "sweep", "run", str(spec), "--store", str(store), "--executor", "ray",
               "--address", address, "--no-progress"]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 runs, 0 already done, 2 finished" in result.stdout
    reference = one_process(spec, tmp_path / "one.sqlite")
    assert len(reference) == 2 and all(len(c["step"]) == 12 for c in reference.values())
    assert stored_curves(store) == reference  # CPU, one thread per run, same seeds: bit-identical
    # Each node offers one CPU and each run reserves one, so Ray puts one run on each node. The process that
    # trained a run names its TensorBoard file (events.out.tfevents.TIME.HOST.PID.N); the node whose log
    # dir lists that worker process is the node that trained it.
    pids = [
        next((tmp_path / "ray-runs" / run_id / "tb").glob("events.*")).name.split(".")[-2]
        for run_id in reference
    ]
    assert sorted(node for pid in pids for node in node_of(pid, temp)) == ["head", "worker"], pids


# --- torchrun: two nodes of one process each ---------------------------------------------------------------


def test_torchrun_over_two_nodes_stores_what_one_process_stores(tiny_corpus, tmp_path) -> None:
    """``torchrun --nnodes 2`` started once per node, as a user would on two machines (here both on loopback):
    one DDP group of two ranks trains each run; rank 0 (node 0) alone writes the store."""
    spec = write_spec(
        tmp_path / "spec.yaml", tiny_corpus,
        grid=[{"models": ["dense-100k", "moe-100k"], "tokens": [8 * 64 * 12], "batch_sizes": [8], "lrs": [3e-3]}],
    )  # fmt: skip
    store, port = tmp_path / "two-nodes.sqlite", free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                "--master-addr", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    train = ["-m", "archscale.cli.main", "train", str(spec), "--store", str(store), "--device", "cpu"]
    nodes = []
    for rank in (0, 1):  # on two machines: the same command on each, with its own --node-rank
        command = [*torchrun, "--node-rank", str(rank), *train]
        output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        nodes.append(subprocess.Popen(command, env=GLOO_ENV, start_new_session=True, **output))
    try:
        outputs = [node.communicate(timeout=TIMEOUT_S)[0] for node in nodes]
    finally:
        for node in nodes:  # a hung group: stop each torchrun and the rank it started
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    assert [node.returncode for node in nodes] == [0, 0], outputs
    # rank 0 decides, trains and reports; the other node's rank trains alongside it and reports nothing
    assert "2 runs, 0 already done, 2 finished" in outputs[0] and "2 runs" not in outputs[1], outputs
    reference = one_process(spec, tmp_path / "one.sqlite")
    assert len(reference) == 2 and all(len(c["step"]) == 12 for c in reference.values())
    two_nodes = stored_curves(store)
    assert two_nodes.keys() == reference.keys()
    for run_id, curve in reference.items():
        assert two_nodes[run_id]["step"] == curve["step"]
        for column in CURVE:  # each rank a half of every batch: the same numbers up to summation order
            assert two_nodes[run_id][column] == pytest.approx(curve[column], rel=1e-4), (run_id, column)
