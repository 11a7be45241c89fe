"""``archscale eval --checkpoints``: a run's kept weights scored step by step through the real harness, each
result stored with its step, and read back as the downstream laws' (run, step, task loss, accuracy) points."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from archscale.analysis.downstream import POINT_COLUMNS, downstream_points
from archscale.cli.main import app
from archscale.store import ResultsStore
from archscale.training.checkpoint import save_weights
from cli_contract import invoke_one_line_error
from lm_eval_helpers import arith_docs, reference_scores

LIMIT = 6  # the first 6 questions: enough for distinct scores, a fraction of the harness's time


@pytest.fixture
def kept_run(stored_run, tiny_model):
    """``stored_run`` (8 steps of 512 tokens, final weights at step 8) with other weights kept at step 4: small
    ones, as early in training, whose predictions are near uniform (about log2(257) = 8 bits a byte)."""
    early = tiny_model("dense", seed=2, init_std=0.02)
    run_dir = stored_run.store.parent / "results-runs" / stored_run.run_id
    save_weights(run_dir, early.state_dict(), early.cfg.tie_embeddings, step=4)
    return stored_run, early


def test_eval_over_two_kept_checkpoints_stores_each_step(kept_run) -> None:
    stored_run, early = kept_run
    store = str(stored_run.store)
    listing = CliRunner().invoke(app, ["runs", "checkpoints", stored_run.run_id, "--store", store])
    assert listing.exit_code == 0, listing.output
    assert [line.split()[:2] for line in listing.output.splitlines()] == [["4", "2048"], ["8", "4096"]]

    args = ["eval", stored_run.run_id, "--tasks", "archscale_arith", "--checkpoints", "all",
            "--limit", str(LIMIT), "--store", store]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with ResultsStore(stored_run.store) as results:
        meta = results.meta(stored_run.run_id)
        points = downstream_points(results)
        params = int(results.runs()["P"].iloc[0])
    by_step = {int(s): records["archscale_arith"] for s, records in meta["downstream_checkpoints"].items()}
    assert sorted(by_step) == [4, 8] and [by_step[s]["step"] for s in (4, 8)] == [4, 8]
    assert meta["downstream"]["archscale_arith"] == by_step[8]  # Table 2: the final weights only
    docs = arith_docs()[:LIMIT]
    for step, model in ((4, early), (8, stored_run.model)):  # each step scored with its own weights
        _, acc_norm, bpb = reference_scores(model, docs)
        assert by_step[step]["task_loss"] == pytest.approx(bpb, rel=1e-5)
        assert by_step[step]["accuracy"] == pytest.approx(acc_norm)
    assert by_step[4]["task_loss"] == pytest.approx(8.0, abs=0.1) and by_step[8]["task_loss"] > 9

    assert list(points.columns) == list(POINT_COLUMNS)
    assert points[["step", "tokens", "num_fewshot"]].values.tolist() == [[4, 2048, 0], [8, 4096, 0]]
    assert (points["run_id"] == stored_run.run_id).all() and (points["params"] == params).all()
    assert (points["task"] == "archscale_arith").all()
    assert points["task_loss"].tolist() == [by_step[4]["task_loss"], by_step[8]["task_loss"]]
    assert points["accuracy"].tolist() == [by_step[4]["accuracy"], by_step[8]["accuracy"]]


@pytest.mark.parametrize(
    ("checkpoints", "named"),
    [("5,8", "checkpoints: run {run} has no weights at step(s) [5]; it has them at [4, 8]"),
     ("4,x", "--checkpoints"), ("0", "--checkpoints"), (",", "--checkpoints")],
)  # fmt: skip
def test_steps_without_kept_weights_are_refused_before_any_work(kept_run, checkpoints, named) -> None:
    stored_run, _ = kept_run
    args = ["eval", stored_run.run_id, "--tasks", "archscale_arith", "--checkpoints", checkpoints,
            "--store", str(stored_run.store)]  # fmt: skip
    invoke_one_line_error(args, named.format(run=stored_run.run_id), stored_run.store.parent)


def test_a_run_that_kept_nothing_has_no_steps_to_evaluate(stored_run) -> None:
    (stored_run.store.parent / "results-runs" / stored_run.run_id / "model.safetensors").unlink()
    args = ["eval", stored_run.run_id, "--tasks", "archscale_arith", "--checkpoints", "all",
            "--store", str(stored_run.store)]  # fmt: skip
    line = invoke_one_line_error(args, "checkpoints: run", stored_run.store.parent)
    assert "it has them at no step; train with keep_checkpoints: true" in line
