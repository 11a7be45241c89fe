"""The study's downstream stage: every finished ladder run (trunks and cooldown branches, not the other sweeps)
is scored on the corpus task before the report is built, and stored as ``archscale eval`` stores it."""

from __future__ import annotations

import functools

import pytest
import yaml

from archscale.analysis.downstream import downstream_points
from archscale.store import ResultsStore
from archscale.study import branch_ends, run_study, study_runs

STEP_TOKENS = 8 * 64


def test_branch_ends_of_the_micro_study_are_its_wsd_ladders() -> None:
    _, runs = study_runs("micro")
    ends = branch_ends(runs)
    assert {r.run_id for r in ends} == {r.run_id for r in runs if r.schedule == "wsd"}
    assert len(ends) == 12 * 3  # 6 sizes x 2 families x 3 budgets


def test_study_scores_its_finished_ladder_runs_before_the_report(tiny_corpus, tmp_path, monkeypatch) -> None:
    pytest.importorskip("lm_eval")
    from archscale.bridges.lm_eval import score_next_sentence

    ladder = {"models": ["dense-25k"], "tokens": [STEP_TOKENS * 10, STEP_TOKENS * 20], "batch_sizes": [8],
              "lrs": [4e-3], "schedule": {"kind": "wsd", "warmup_steps": 2, "decay_fraction": 0.2}}  # fmt: skip
    spec = {
        "name": "study-downstream-test", "dataset": str(tiny_corpus.path), "seq_len": 64,
        "micro_batch_size": 8, "eval": {"tokens_per_subset": 1024, "at_tokens": []},
        "grid": [ladder, {**ladder, "tokens": [STEP_TOKENS * 10], "schedule": {"kind": "cosine"}}],
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    seen_by_report = []

    def report(store_path, *args, **kwargs):
        with ResultsStore(store_path) as store:
            seen_by_report.append(downstream_points(store))
        return "report"

    monkeypatch.setattr("archscale.study.build_report", report)
    lines: list[str] = []
    scorer = functools.partial(score_next_sentence, tasks_dir=tmp_path / "tasks", items=4, batch_size=8)
    result = run_study(spec=path, out=tmp_path / "study", workers=1, log=lines.append, progress=False,
                       downstream=scorer)  # fmt: skip

    assert result.report == "report" and len(result.sweep.finished) == 3
    wsd = {run.run_id for run in study_runs(spec=path)[1] if run.schedule == "wsd"}
    points = seen_by_report[0]
    assert set(points["run_id"]) == wsd and (points["task"] == "archscale_next_sentence").all()
    assert points["task_loss"].notna().all() and points["accuracy"].notna().all()
    assert sorted(points["step"]) == [10, 20]  # each ladder run's final weights
    assert "[3/4] downstream: scoring the 2 finished ladder runs' final weights ..." in lines
