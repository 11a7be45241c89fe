"""``archscale study`` end to end on a small real corpus: train both ladders and a grid, fit, report, resume."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore

LADDER = ["dense-50k", "dense-100k", "dense-330k", "moe-50k", "moe-100k", "moe-330k"]


def test_study_trains_fits_and_reports_then_resumes(tiny_corpus, tmp_path):
    spec = {
        "name": "study-test", "dataset": str(tiny_corpus.path), "seq_len": 64, "micro_batch_size": 4,
        "eval": {"tokens_per_subset": 2048}, "checkpoint_every_steps": 20,
        "grid": [
            {"models": LADDER, "tokens": [8 * 64 * 48], "batch_sizes": [8], "lrs": [4e-3]},
            {"models": ["dense-50k", "moe-50k"], "tokens": [8 * 64 * 24], "batch_sizes": [4, 8, 16],
             "lrs": [2e-3, 8e-3]},
        ],
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    args = [
        "study",
        "--spec",
        str(path),
        "--out",
        str(out),
        "--workers",
        "2",
        "--bootstrap",
        "20",
        "--seed",
        "3",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "18 runs: 0 reused, 18 finished" in result.output and "verdicts:" in result.output
    assert "targets of the study's design:" in result.output

    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["runs"]["by_status"] == {"finished": 18}
    with ResultsStore(out / "results.sqlite") as store:
        stored = store.runs()
    for family in ("dense", "moe"):
        error = summary["headline"]["extrapolation"][family]
        held = [
            c
            for c in summary["analyses"]["loss_law"]["extrapolations"][family]["curves"]
            if c["role"] == "held out"
        ]
        # the held-out runs are the family's largest model, and the headline error is their points' mean
        largest = stored[
            (stored["kind"] == family) & (stored["N"] == stored.loc[stored["kind"] == family, "N"].max())
        ]
        assert set(error["held_out"]) == {c["run_id"] for c in held} <= set(largest["run_id"])
        relative = [abs(p - o) / o for c in held for p, o in zip(c["predicted"], c["observed"], strict=True)]
        assert error["mean_abs_rel_error"] == pytest.approx(sum(relative) / len(relative), rel=1e-9)
        assert error["max_abs_rel_error"] == pytest.approx(max(relative), rel=1e-9)
    verdicts = summary["analyses"]["verdicts"]["rows"]
    assert len(verdicts) == 5
    for row in verdicts:  # the rule the report states: supported only when the interval excludes no effect
        lower, upper, none, above = row["lower"], row["upper"], row["no_effect"], row["direction"] == "above"
        if lower is None:
            expected = "not tested"
        elif (lower > none) if above else (upper < none):
            expected = "supported"
        elif (upper < none) if above else (lower > none):
            expected = "not supported"
        else:
            expected = "inconclusive at this scale"
        assert row["verdict"] == expected or (row["verdict"] == "not tested" and row["note"]), row
    assert summary["headline"]["verdicts"] == {row["claim"]: row["verdict"] for row in verdicts}
    assert all(
        (out / "report" / "figures" / f"{name}.png").is_file() for name in ("loss_extrapolation", "lr_law")
    )
    with ResultsStore(out / "results.sqlite") as store:
        tests = store.evals(split="test", subset="all")
        assert set(store.runs()["seed"]) == {3}  # --seed repeats the study with other seeds
    assert tests["bits_per_byte"].notna().all() and tests.groupby("run_id").size().min() >= 2

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "18 runs: 18 reused, 0 finished" in again.output


def test_every_study_preset_is_a_valid_sweep_with_ladders_and_hyperparameter_sweeps():
    from archscale.study import PRESETS, preset_spec_path
    from archscale.sweeps import load_spec

    for preset in PRESETS:
        runs = load_spec(preset_spec_path(preset)).expand()  # every run validated, as before a sweep
        if preset.startswith("lr-transfer"):  # LR ladders over widths, no batch sweep: test_lr_transfer.py
            continue
        if preset == "moe-design":  # the design study: every knob at several backbones, no LR/batch sweep
            designs = {(r.model.n_experts, r.model.granularity, r.model.n_shared_experts, r.model.balance)
                       for r in runs if r.model.kind == "moe"}  # fmt: skip
            backbones = {(r.model.d_model, r.model.n_layers) for r in runs}
            assert len(designs) >= 6 and len(backbones) >= 3, preset
            assert len({r.tokens for r in runs if r.model.d_model == 64}) >= 3  # budgets for the D terms
            continue
        for kind in ("dense", "moe"):
            family = [run for run in runs if run.model.kind == kind]
            assert len({run.model.name for run in family}) >= 3, f"{preset}: a {kind} ladder needs 3+ sizes"
            swept = [
                (
                    {r.lr for r in family if r.model.name == name},
                    {r.batch_size for r in family if r.model.name == name},
                )
                for name in {run.model.name for run in family}
            ]
            assert any(len(lrs) >= 3 and len(batches) >= 3 for lrs, batches in swept), preset
