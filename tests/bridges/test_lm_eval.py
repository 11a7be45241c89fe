"""Downstream evaluation through the real lm-evaluation-harness on an exported run, with a shipped local task."""

from __future__ import annotations

import operator

import pytest
import torch
import typer
from typer.testing import CliRunner

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from archscale.analysis.downstream import near_chance, task_score
from archscale.bridges.lm_eval import (
    EvalError,
    check_tasks,
    local_jsonl,
    summarise,
)
from archscale.cli.main import app
from archscale.data.tokenizer import ByteTokenizer
from archscale.store import ResultsStore

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def cli() -> typer.Typer:
    return app


def arith_docs() -> list[dict]:
    return list(local_jsonl("archscale_arith.jsonl")["test"])


def test_shipped_arithmetic_task_is_correct() -> None:
    docs = arith_docs()
    assert len(docs) == 20
    for doc in docs:
        a, op, b, equals = doc["question"].split()
        assert equals == "="
        assert doc["choices"][doc["answer"]] == str(OPERATORS[op](int(a), int(b)))
        assert len(set(doc["choices"])) == len(doc["choices"])
    assert sorted(len(d["choices"]) for d in docs) == [2] * 10 + [4] * 10  # chance = (10/2 + 10/4)/20


def reference_scores(model, docs: list[dict]) -> tuple[float, float]:
    """acc and acc_norm computed with archscale's own model, as the harness defines them: the choice of
    highest log-likelihood after "Question: …\\nAnswer:" and a space (acc_norm: per character of the choice)."""
    byte = ByteTokenizer()
    acc = acc_norm = 0
    for doc in docs:
        context = byte.encode(f"Question: {doc['question']}\nAnswer:")
        lls = []
        for choice in doc["choices"]:
            continuation = byte.encode(" " + choice)
            ids = torch.tensor([context + continuation])
            with torch.no_grad():
                logp = model(ids[:, :-1]).logits[0].log_softmax(-1)
            lls.append(sum(logp[len(context) - 1 + j, t].item() for j, t in enumerate(continuation)))
        acc += max(range(len(lls)), key=lls.__getitem__) == doc["answer"]
        norm = [ll / len(c) for ll, c in zip(lls, doc["choices"], strict=True)]
        acc_norm += max(range(len(norm)), key=norm.__getitem__) == doc["answer"]
    return acc / len(docs), acc_norm / len(docs)


def test_eval_cli_runs_the_harness_and_stores_scores(stored_run) -> None:
    earlier = {"metrics": {"acc": 0.5}, "chance": 0.25, "n": 4}
    with ResultsStore(stored_run.store) as results:
        results.set_meta(stored_run.run_id, "downstream", {"earlier": earlier})

    args = ["eval", stored_run.run_id, "--tasks", "archscale_arith", "--store", str(stored_run.store)]
    result = CliRunner().invoke(cli(), [*args, "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "archscale_arith" in result.output and "0.375" in result.output

    with ResultsStore(stored_run.store) as results:
        record = results.meta(stored_run.run_id)["downstream"]
    assert record["earlier"] == earlier  # tasks evaluated before are kept
    task = record["archscale_arith"]
    assert task["harness"].startswith("lm-eval 0.4")
    assert task["n"] == 20 and task["output_type"] == "multiple_choice" and task["num_fewshot"] == 0
    assert task["chance"] == pytest.approx(0.375)
    acc, acc_norm = reference_scores(stored_run.model, arith_docs())
    assert task["metrics"]["acc"] == pytest.approx(acc)
    assert task["metrics"]["acc_norm"] == pytest.approx(acc_norm)
    assert task["metrics"]["acc_stderr"] == pytest.approx((acc * (1 - acc) / 19) ** 0.5)  # sample s.e.


def test_unknown_task_is_refused_before_any_export(stored_run) -> None:
    (stored_run.store.parent / "results-runs" / stored_run.run_id / "model.safetensors").unlink()
    args = ["eval", stored_run.run_id, "--tasks", "archscale_arithm", "--store", str(stored_run.store)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 2  # a usage mistake
    assert "unknown task 'archscale_arithm'; did you mean ['archscale_arith']" in result.output
    with pytest.raises(EvalError, match="name at least one task"):
        check_tasks([], manager=None)


def fake_samples(n_docs: int, n_choices: int) -> list[dict]:
    return [{"arguments": [("question", f" choice {i}") for i in range(n_choices)]} for _ in range(n_docs)]


def test_summarise_weights_group_chance_by_samples_and_keeps_filters() -> None:
    mc = {"output_type": "multiple_choice"}
    results = {
        "results": {
            "outer": {"alias": "outer", "acc,none": 0.6, "acc_stderr,none": 0.1},
            "grp": {"alias": " - grp", "acc,none": 0.4, "acc_stderr,none": 0.2},
            "a": {"alias": "  - a", "acc,none": 0.6, "acc_stderr,none": "N/A", "acc_norm,none": 0.4},
            "b": {"alias": "  - b", "acc,none": 0.3},
            "c": {"alias": " - c", "acc,none": 0.0},
            "gen": {"exact_match,strict-match": 0.1, "exact_match_stderr,strict-match": 0.05},
        },
        "group_subtasks": {"outer": ["grp", "c"], "grp": ["a", "b"]},
        "configs": {"a": mc, "b": mc, "c": mc, "gen": {"output_type": "generate_until"}},
        "samples": {"a": fake_samples(3, 4), "b": fake_samples(2, 2), "c": fake_samples(1, 5), "gen": [{}]},
        "n-samples": {
            k: {"original": n, "effective": n} for k, n in {"a": 3, "b": 2, "c": 1, "gen": 1}.items()
        },
        "n-shot": {"a": 0, "b": 5},
    }
    records = summarise(results, limit=None)
    assert records["a"]["chance"] == pytest.approx(0.25) and records["b"]["chance"] == pytest.approx(0.5)
    assert records["grp"]["chance"] == pytest.approx((3 * 0.25 + 2 * 0.5) / 5)
    assert records["outer"]["chance"] == pytest.approx((3 * 0.25 + 2 * 0.5 + 0.2) / 6)
    assert records["outer"]["n"] == 6 and records["outer"]["output_type"] == "group"
    assert records["gen"]["chance"] is None and records["gen"]["output_type"] == "generate_until"
    assert records["a"]["metrics"] == {"acc": 0.6, "acc_norm": 0.4}  # "N/A" error and alias dropped
    assert records["b"]["num_fewshot"] == 5

    assert task_score(records["gen"]) == ("exact_match,strict-match", 0.1, 0.05)
    assert task_score(records["a"]) == ("acc", 0.6, None)
    assert near_chance(records["grp"]) is True  # |0.4 - 0.35| <= 2·0.2
    assert near_chance(records["outer"]) is False  # |0.6 - 0.325| > 2·0.1
    assert near_chance(records["outer"], z=3.0) is True
    assert near_chance(records["a"]) is None  # no standard error
