"""The Ray executor on a local 2-CPU Ray instance: same numbers as in-process runs, resume, live events."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore
from archscale.sweeps import ray_executor
from archscale.sweeps.executor import Coordinator, InProcessExecutor, run_sweep
from archscale.sweeps.ray_executor import RayExecutor, RayExecutorError, RayUnavailableError
from archscale.training.run_config import RunConfig

ray = pytest.importorskip("ray")

BASE = {"seq_len": 64, "micro_batch_size": 4, "eval_tokens_per_subset": 1024}
GRID = [
    ("dense-100k", 8 * 64 * 10, 8, 3e-3),
    ("moe-100k", 8 * 64 * 10, 8, 3e-3),
    ("dense-100k", 4 * 64 * 12, 4, 2e-3),
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def make_runs(corpus) -> list[RunConfig]:
    return [
        RunConfig.from_dict(
            {**BASE, "model": m, "tokens": t, "batch_size": b, "lr": lr, "dataset": str(corpus.path)}
        )
        for m, t, b, lr in GRID
    ]


def store_curves(path) -> dict[str, list[float]]:
    with ResultsStore(path) as store:
        curve = store.curve().sort_values(["run_id", "step"])
    return curve.groupby("run_id")["lm_loss"].apply(list).to_dict()


def test_ray_sweep_matches_in_process_runs_and_resumes(local_ray, tiny_corpus, tmp_path) -> None:
    runs = make_runs(tiny_corpus)
    with ResultsStore(tmp_path / "reference.sqlite") as store:
        run_sweep(runs, store, tmp_path / "reference-runs", InProcessExecutor(), progress=False)

    with ResultsStore(tmp_path / "ray.sqlite") as store:
        first = run_sweep(runs[:1], store, tmp_path / "ray-runs", RayExecutor(), progress=False)
        rest = run_sweep(runs, store, tmp_path / "ray-runs", RayExecutor(), progress=False)
        statuses = set(store.runs().status)
    assert first.finished == [runs[0].run_id]
    assert rest.skipped == 1 and sorted(rest.finished) == sorted(r.run_id for r in runs[1:])
    assert statuses == {"finished"}
    reference, remote = store_curves(tmp_path / "reference.sqlite"), store_curves(tmp_path / "ray.sqlite")
    assert remote == reference  # CPU, one thread, same seeds: bit-identical curves
    assert {r.run_id: len(reference[r.run_id]) for r in runs} == {r.run_id: r.steps for r in runs}
    assert all(any((tmp_path / "ray-runs" / r.run_id / "tb").glob("events.out.tfevents.*")) for r in runs)

    blocks = [{"models": [m], "tokens": [t], "batch_sizes": [b], "lrs": [lr]} for m, t, b, lr in GRID]
    spec = {"name": "ray-resume", "dataset": str(tiny_corpus.path), "seq_len": 64, "micro_batch_size": 4,
            "eval": {"tokens_per_subset": 1024}, "grid": blocks}  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    store = str(tmp_path / "ray.sqlite")
    command = ["sweep", "run", str(tmp_path / "spec.yaml"), "--store", store, "--executor", "ray", "--no-progress"]  # fmt: skip
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output
    assert "3 runs, 3 already done, 0 finished" in again.output
    assert store_curves(tmp_path / "ray.sqlite") == reference


class RecordingCoordinator(Coordinator):
    def __init__(self, store, runs) -> None:
        super().__init__(store, runs, progress=False)
        self.log: list[tuple[str, str]] = []

    def event(self, run_id, kind, payload) -> None:
        self.log.append((run_id, kind))
        super().event(run_id, kind, payload)

    def result(self, result) -> None:
        self.log.append((result["run_id"], "result"))
        super().result(result)


def test_events_stream_to_the_driver_ahead_of_each_result(local_ray, tiny_corpus, tmp_path) -> None:
    runs = make_runs(tiny_corpus)[:2]
    with ResultsStore(tmp_path / "s.sqlite") as store:
        for run in runs:
            store.add_run(run)
        coordinator = RecordingCoordinator(store, runs)
        RayExecutor().execute(runs, tmp_path / "runs", coordinator)
    for run in runs:
        kinds = [kind for run_id, kind in coordinator.log if run_id == run.run_id]
        assert kinds[0] == "started" and kinds[-1] == "result"
        assert "progress" in kinds and kinds.count("evals") == len(run.eval_steps)
    assert coordinator.summary.finished and len(coordinator.summary.finished) == 2


def test_settings_that_cannot_work_fail_before_any_run(local_ray, tiny_corpus, tmp_path, monkeypatch) -> None:
    with pytest.raises(RayExecutorError, match="num_cpus_per_run"):
        RayExecutor(num_cpus_per_run=0)
    with pytest.raises(RayExecutorError, match="num_gpus_per_run"):
        RayExecutor(num_gpus_per_run=-1)
    with pytest.raises(RayExecutorError, match="num_cpus: only for a local instance"):
        RayExecutor(address="auto", num_cpus=2)
    runs = make_runs(tiny_corpus)[:1]
    with ResultsStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(RayExecutorError, match=r"num_gpus_per_run=1: the largest Ray node has 0 GPUs"):
            run_sweep(runs, store, tmp_path / "runs", RayExecutor(num_gpus_per_run=1), progress=False)
        with pytest.raises(RayExecutorError, match=r"num_cpus_per_run=3: the largest Ray node has 2 CPUs"):
            run_sweep(runs, store, tmp_path / "runs", RayExecutor(num_cpus_per_run=3), progress=False)
        assert store.status(runs[0].run_id) == "queued" and not (tmp_path / "runs").exists()
    assert ray.is_initialized()  # an instance the executor did not start is left running
    monkeypatch.setattr(ray_executor, "importable", lambda name: False)
    with pytest.raises(RayUnavailableError, match=r"archscale\[ray\]"):
        RayExecutor()


def test_gpus_per_run_reach_ray_from_the_cli_and_are_refused_elsewhere(
    local_ray, tiny_corpus, tmp_path
) -> None:
    """--gpus-per-run is the Ray task's GPU reservation: on this GPU-less instance the executor's resource
    check refuses it, which it can only do if the CLI handed the number over; without Ray it is refused."""
    from cli_contract import invoke_one_line_error

    blocks = [{"models": ["dense-100k"], "tokens": [8 * 64 * 4], "batch_sizes": [8], "lrs": [3e-3]}]
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "gpus", "dataset": str(tiny_corpus.path), "seq_len": 64, "grid": blocks})
    )
    command = ["sweep", "run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--gpus-per-run", "1"]
    result = CliRunner().invoke(app, [*command, "--executor", "ray", "--no-progress"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "error: num_gpus_per_run=1: the largest Ray node has 0 GPUs, so no run could be scheduled; lower it or "
        "add a bigger node"
    )
    with ResultsStore(tmp_path / "s.sqlite") as store:
        assert set(store.runs().status) == {"queued"}  # nothing trained
    invoke_one_line_error(command, "--gpus-per-run", tmp_path)
