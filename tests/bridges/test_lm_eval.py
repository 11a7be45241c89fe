"""Downstream evaluation through the real lm-evaluation-harness on an exported run, with a shipped local task."""

from __future__ import annotations

import math
import operator

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from archscale.analysis.downstream import near_chance, task_score
from archscale.bridges.lm_eval import (
    EvalError,
    check_tasks,
    correct_bits_per_byte,
    summarise,
)
from archscale.cli.main import app
from archscale.store import ResultsStore
from lm_eval_helpers import arith_docs, reference_scores

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def cli() -> typer.Typer:
    return app


def test_shipped_arithmetic_task_is_correct() -> None:
    docs = arith_docs()
    assert len(docs) == 20
    for doc in docs:
        a, op, b, equals = doc["question"].split()
        assert equals == "="
        assert doc["choices"][doc["answer"]] == str(OPERATORS[op](int(a), int(b)))
        assert len(set(doc["choices"])) == len(doc["choices"])
    assert sorted(len(d["choices"]) for d in docs) == [2] * 10 + [4] * 10  # chance = (10/2 + 10/4)/20


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
        by_step = results.meta(stored_run.run_id)["downstream_checkpoints"]
    assert record["earlier"] == earlier  # tasks evaluated before are kept
    task = record["archscale_arith"]
    assert task["harness"].startswith("lm-eval 0.4")
    assert task["n"] == 20 and task["output_type"] == "multiple_choice" and task["num_fewshot"] == 0
    assert task["chance"] == pytest.approx(0.375)
    acc, acc_norm, bpb = reference_scores(stored_run.model, arith_docs())
    assert task["metrics"]["acc"] == pytest.approx(acc)
    assert task["metrics"]["acc_norm"] == pytest.approx(acc_norm)
    assert task["metrics"]["acc_stderr"] == pytest.approx((acc * (1 - acc) / 19) ** 0.5)  # sample s.e.
    # the downstream laws' point: task loss by hand, the harness's length-normalised accuracy, the step
    assert task["task_loss"] == pytest.approx(bpb, rel=1e-5)
    assert 4 < task["task_loss"] < 20  # a random 257-way model: about log2(257) = 8 bits a byte
    assert (task["accuracy_metric"], task["accuracy"]) == ("acc_norm", task["metrics"]["acc_norm"])
    assert task["step"] == 8  # 4096 tokens // (4 × 128) per step: the final weights' step
    assert by_step == {"8": {"archscale_arith": task}}


def test_unknown_task_is_refused_before_any_export(stored_run) -> None:
    (stored_run.store.parent / "results-runs" / stored_run.run_id / "model.safetensors").unlink()
    args = ["eval", stored_run.run_id, "--tasks", "archscale_arithm", "--store", str(stored_run.store)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 2  # a usage mistake
    assert "unknown task 'archscale_arithm'; did you mean ['archscale_arith']" in result.output
    with pytest.raises(EvalError, match="name at least one task"):
        check_tasks([], manager=None)


def fake_samples(n_docs: int, n_choices: int, bpb: float = 1.0, target: int | str = 0) -> list[dict]:
    """Logged samples whose correct answer (" choice 0", 9 bytes, named by index or text) has ``bpb``."""
    lls = [-math.log(2) * 9 * bpb] + [-1.0] * (n_choices - 1)
    sample = {"arguments": [("question", f" choice {i}") for i in range(n_choices)], "target": target,
              "filtered_resps": [(ll, False) for ll in lls], "filter": "none"}  # fmt: skip
    return [sample] * n_docs


def test_task_loss_is_the_mean_of_each_examples_bits_per_byte_of_the_correct_continuation() -> None:
    def sample(continuations: list[str], target, gold_nll_bits: float, gold: int = 0) -> dict:
        lls = [-0.5] * len(continuations)
        lls[gold] = -gold_nll_bits * math.log(2)
        return {"arguments": [("ctx", c) for c in continuations], "target": target,
                "filtered_resps": [(ll, False) for ll in lls], "filter": "none"}  # fmt: skip

    short = sample([" ab", " cd"], 0, gold_nll_bits=3)  # 3 bits over 3 bytes: 1 bit a byte
    long = sample([" x", " abcdefgh"], "abcdefgh", gold_nll_bits=27, gold=1)  # 27 bits over 9 bytes: 3
    assert correct_bits_per_byte([short, long]) == pytest.approx(2.0)  # not 30/12, a ratio of sums
    assert correct_bits_per_byte([long], delimiter="") is None  # "abcdefgh" is then no continuation
    assert correct_bits_per_byte([{**long, "filter": "other"}, short]) == pytest.approx(3.0)  # one filter
    unicode = sample([" é", " e"], 0, gold_nll_bits=6)  # " é" is 3 UTF-8 bytes, 2 characters
    assert correct_bits_per_byte([unicode]) == pytest.approx(2.0)
    shared = sample([" it", " it"], "it", gold_nll_bits=1)  # Winogrande: the choices are the contexts
    assert correct_bits_per_byte([shared]) is None
    assert correct_bits_per_byte([sample([" a", " b"], [0, 1], gold_nll_bits=1)]) is None  # several targets
    assert correct_bits_per_byte([]) is None


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
        "samples": {
            "a": fake_samples(3, 4, bpb=1.0),
            "b": fake_samples(2, 2, bpb=2.0),
            "c": fake_samples(1, 5, bpb=4.0, target="choice 0"),
            "gen": [{}],
        },
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
    # task loss: leaves' own, groups' weighted by samples like chance; accuracy: acc_norm where defined
    assert [records[k]["task_loss"] for k in "abc"] == pytest.approx([1.0, 2.0, 4.0])
    assert records["grp"]["task_loss"] == pytest.approx((3 * 1.0 + 2 * 2.0) / 5)
    assert records["outer"]["task_loss"] == pytest.approx((3 * 1.0 + 2 * 2.0 + 4.0) / 6)
    assert records["gen"]["task_loss"] is None and records["gen"]["accuracy"] is None
    assert (records["a"]["accuracy_metric"], records["a"]["accuracy"]) == ("acc_norm", 0.4)
    assert (records["b"]["accuracy_metric"], records["b"]["accuracy"]) == ("acc", 0.3)

    assert task_score(records["gen"]) == ("exact_match,strict-match", 0.1, 0.05)
    assert task_score(records["a"]) == ("acc", 0.6, None)
    assert near_chance(records["grp"]) is True  # |0.4 - 0.35| <= 2·0.2
    assert near_chance(records["outer"]) is False  # |0.6 - 0.325| > 2·0.1
    assert near_chance(records["outer"], z=3.0) is True
    assert near_chance(records["a"]) is None  # no standard error
