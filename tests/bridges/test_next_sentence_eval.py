"""``archscale_next_sentence`` scored end to end through the real harness on a tiny model, offline: the stored
task loss and accuracies equal a computation by hand with archscale's own model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from archscale.analysis.downstream import downstream_points
from archscale.bridges.lm_eval import score_next_sentence, write_next_sentence_task
from archscale.cli.main import app
from archscale.data.tokenizer import ByteTokenizer
from archscale.store import ResultsStore
from archscale.training.checkpoint import save_weights
from archscale.training.run_config import RunConfig

ITEMS = 6


def reference(model, items: list[dict]) -> tuple[float, float, float]:
    """acc, acc_norm (per character of the choice) and the mean bits per byte of the correct choice, from
    archscale's model: each choice's summed log-probability after its context (no delimiter), truncated on the
    left to the model's context as the harness does."""
    byte = ByteTokenizer()
    acc = acc_norm = bpb = 0.0
    for item in items:
        context = byte.encode(item["context"])
        lls = []
        for choice in item["choices"]:
            continuation = byte.encode(choice)
            window = (context + continuation)[-(model.cfg.max_seq_len + 1) :]
            with torch.no_grad():
                logp = model(torch.tensor([window[:-1]])).logits[0].log_softmax(-1)
            first = len(window) - 1 - len(continuation)
            lls.append(sum(logp[first + j, t].item() for j, t in enumerate(continuation)))
        answer = item["answer"]
        acc += max(range(len(lls)), key=lls.__getitem__) == answer
        norm = [ll / len(c) for ll, c in zip(lls, item["choices"], strict=True)]
        acc_norm += max(range(len(norm)), key=norm.__getitem__) == answer
        bpb += -lls[answer] / math.log(2) / len(item["choices"][answer].encode("utf-8"))
    return acc / len(items), acc_norm / len(items), bpb / len(items)


def test_eval_scores_the_corpus_task_offline_and_stores_task_loss_and_accuracy(
    stored_run, tiny_corpus, tmp_path
) -> None:
    folder = tmp_path / "tasks"
    yaml_path = write_next_sentence_task(folder, tiny_corpus.path, seed=4, items=ITEMS)
    items_file = next((tiny_corpus.path / "tasks").glob("*-seed4-n6.jsonl"))
    items = [json.loads(line) for line in items_file.read_text().splitlines()]
    args = ["eval", stored_run.run_id, "--tasks", "archscale_next_sentence", "--store", str(stored_run.store),
            "--include-path", str(yaml_path.parent), "--batch-size", "8"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    with ResultsStore(stored_run.store) as results:
        record = results.meta(stored_run.run_id)["downstream"]["archscale_next_sentence"]
        points = downstream_points(results)
    assert record["n"] == ITEMS and record["chance"] == pytest.approx(0.25)
    acc, acc_norm, bpb = reference(stored_run.model, items)
    assert record["metrics"]["acc"] == pytest.approx(acc)
    assert record["metrics"]["acc_norm"] == pytest.approx(acc_norm)
    assert record["task_loss"] == pytest.approx(bpb, rel=1e-5)
    assert (record["accuracy_metric"], record["accuracy"]) == ("acc_norm", acc_norm)
    assert points[["task", "step"]].values.tolist() == [["archscale_next_sentence", 8]]
    assert points["task_loss"].tolist() == pytest.approx([bpb], rel=1e-5)


def test_study_scorer_scores_each_run_once_on_its_own_corpus(stored_run, tiny_corpus, tmp_path) -> None:
    with ResultsStore(stored_run.store) as results:
        run = RunConfig.from_dict(results.config(stored_run.run_id)).replace(dataset=str(tiny_corpus.path))
        results.add_run(run, sweep="bridges-test")
        results.set_status(run.run_id, "finished")
        save_weights(tmp_path / "results-runs" / run.run_id, stored_run.model.state_dict(), False)
        root = tmp_path / "results-runs"
        scored = score_next_sentence(results, root, [run], tmp_path / "tasks", seed=5, items=4, batch_size=8)
        assert scored == [run.run_id]
        assert score_next_sentence(results, root, [run], tmp_path / "tasks", seed=5, items=4) == []
        points = downstream_points(results, [run.run_id])
    assert len(points) == 1 and points["task"][0] == "archscale_next_sentence"
    assert points["task_loss"].notna().all() and points["accuracy"].between(0, 1).all()
    assert list((tmp_path / "tasks").glob(f"{tiny_corpus.fingerprint[:12]}/archscale_next_sentence.yaml"))


def test_the_harness_advice_about_its_own_cli_is_dropped_and_other_warnings_kept(caplog) -> None:
    import logging

    from archscale.bridges.lm_eval import task_manager

    task_manager()
    harness = logging.getLogger("lm_eval.api.task")
    with caplog.at_level(logging.WARNING):
        harness.warning("archscale_next_sentence: Custom kwargs can be passed to `--metadata` in console")
        harness.warning("a real problem")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]
