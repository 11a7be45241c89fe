"""Sweep specs: expansion, inheritance, Chinchilla budgets, ordering, and errors that name the field."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from archscale.models import get_preset, scale_report
from archscale.sweeps import SpecError, SweepSpec, load_spec, order_longest_first

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sweeps.md"

BASE = """
name: t
seq_len: 64
models: [dense-100k]
tokens: 20480
batch_sizes: [4]
lrs: [1e-3]
"""


def spec(text: str, base: str = BASE) -> SweepSpec:
    """BASE with the keys of ``text`` replacing its own."""
    return SweepSpec.from_dict({**yaml.safe_load(base), **yaml.safe_load(textwrap.dedent(text))})


def test_docs_example_is_valid_and_has_the_stated_size():
    text = DOCS.read_text()
    (example,) = re.findall(r"## Example\n\n```yaml\n(.*?)```", text, re.S)
    runs = SweepSpec.from_yaml(example).expand()
    stated = int(re.search(r"expands to .* = (\d+) runs", text).group(1))
    assert len(runs) == stated == 22
    assert {r.model_name for r in runs} == {"dense-100k", "moe-100k", "dense-330k", "moe-330k"}


def test_single_grid_is_the_cartesian_product():
    runs = spec("""
        models: [dense-100k, moe-100k]
        batch_sizes: [4, 8]
        lrs: ["1e-3", 2.0e-3, 0.004]
        seeds: [0, 1]
    """, base="name: t\nseq_len: 64\ntokens: 40960\n").expand()  # fmt: skip
    assert len(runs) == 2 * 2 * 3 * 2
    assert {r.lr for r in runs} == {1e-3, 2e-3, 4e-3}  # "1e-3" (a YAML string) is accepted
    assert [(r.model_name, r.batch_size, r.lr, r.seed) for r in runs[:3]] == [
        ("dense-100k", 4, 1e-3, 0), ("dense-100k", 4, 1e-3, 1), ("dense-100k", 4, 2e-3, 0),
    ]  # fmt: skip
    assert all(r.seq_len == 64 and r.tokens == 40960 for r in runs)


def test_grid_blocks_inherit_override_and_merge():
    s = spec("""
        schedule: {kind: cosine, min_lr_ratio: 0.05, warmup_steps: 2}
        optimizer: {weight_decay: 0.0}
        micro_batch_size: 4
        grid:
          - lrs: [1e-3, 2e-3]
          - models: [moe-100k]
            batch_sizes: [2, 8]
            tokens_per_param: 1
            schedule: {kind: wsd}
            optimizer: {grad_clip: null}
    """)
    first, second = s.grids
    assert [r.lr for r in first.expand()] == [1e-3, 2e-3]
    runs = second.expand()
    assert [r.batch_size for r in runs] == [2, 8]
    assert [r.micro_batch_size for r in runs] == [2, 4]  # capped at the batch size
    for r in runs:
        assert (r.schedule, r.min_lr_ratio, r.warmup_steps) == ("wsd", 0.05, 2)  # merged with the top level
        assert (r.weight_decay, r.grad_clip) == (0.0, None)
        assert r.tokens == scale_report(get_preset("moe-100k")).active_params  # 1 token per active parameter


def test_chinchilla_budgets_follow_active_parameters():
    runs = spec("tokens_per_param: [10, 20]\n", base=BASE.replace("tokens: 20480\n", "")).expand()
    active = scale_report(get_preset("dense-100k")).active_params
    assert [r.tokens for r in runs] == [10 * active, 20 * active]


def test_runs_named_twice_appear_once():
    s = spec("""
        grid:
          - lrs: [1e-3, 2e-3]
          - lrs: [2e-3, 4e-3]
    """)
    assert [r.lr for r in s.expand()] == [1e-3, 2e-3, 4e-3]


def test_eval_points_past_a_short_run_are_skipped():
    s = spec("""
        eval: {at_tokens: [1024, 30000], tokens_per_subset: 512}
        grid:
          - tokens: 20480
          - tokens: 40960
    """)
    short, long = s.expand()
    assert short.eval_at_tokens == (1024, 20480) and long.eval_at_tokens == (1024, 30000, 40960)
    assert short.eval_tokens_per_subset == 512


def test_an_empty_eval_list_evaluates_at_the_end_only():
    (end_only,) = spec("eval: {at_tokens: []}").expand()
    (named_end,) = spec("eval: {at_tokens: [20480]}").expand()
    assert end_only.eval_at_tokens == (20480,) and end_only.run_id == named_end.run_id


def test_inline_and_overridden_models():
    runs = spec("""
        models:
          - {d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, name: micro}
          - {preset: moe-100k, n_experts: 4}
          - {preset: moe-100k, top_k: 1, name: moe-top1}
    """).expand()
    assert [r.model_name for r in runs] == ["micro", "moe-100k(n_experts=4)", "moe-top1"]
    assert runs[0].model.d_model == 32 and runs[1].model.n_experts == 4 and runs[2].model.top_k == 1


def test_order_longest_first_by_compute():
    runs = spec("""
        models: [dense-100k, dense-330k, moe-100k]
        tokens: [20480, 81920]
    """).expand()
    ordered = order_longest_first(runs)
    compute = [r.derived()["C"] for r in ordered]
    assert sorted(ordered, key=lambda r: r.run_id) == sorted(runs, key=lambda r: r.run_id)
    assert compute == sorted(compute, reverse=True)
    assert (ordered[0].model_name, ordered[0].tokens) == ("dense-330k", 81920)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grid:\n  - lrs: [1e-3]\n  - lrs: [1e-3, 2e-3, -0.001]\n",
         r"^grid\[1\]\.lrs\[2\]: must be a positive number, got -0\.001$"),
        ("grid:\n  - models: [dense-100k, dens-100k]\n",
         r"^grid\[0\]\.models\[1\]: unknown preset 'dens-100k'; known presets: .*dense-100k"),
        ("grid:\n  - lr: 1e-3\n", r"^grid\[0\]\.lr: unknown key; did you mean 'lrs'\?"),
        ("batch_size: 4\n", r"^batch_size: unknown key; did you mean 'batch_sizes'\?"),
        ("seeds: [0, one]\n", r"^seeds\[1\]: must be a number, got 'one'"),
        ("grid:\n  - batch_sizes: [4.5]\n", r"^grid\[0\]\.batch_sizes\[0\]: must be a whole number ≥ 1"),
        ("grid:\n  - models: [7]\n", r"^grid\[0\]\.models\[0\]: must be a mapping, got int"),
        ("schedule: {kind: cosine, warmup: 3}\n", r"^schedule\.warmup: unknown key; did you mean 'warmup_steps'\?"),
        ("tokens_per_param: 20\n", r"^spec: give either tokens or tokens_per_param, not both"),
        ("models: {preset: moe-100k, top_k: 9}\n", r"^models: ModelConfig\.top_k: 9 exceeds n_experts=8"),
        ("grid: []\n", r"^grid: must be a non-empty list"),
        ("lrs: []\n", r"^lrs: must not be empty"),
        ("grid:\n  - seq_len: 512\n",
         r"^grid\[0\] \(model dense-100k, tokens 20480, batch 4, lr 0\.001, seed 0\): RunConfig\.seq_len: 512"),
        ("optimizer: {beta2: 1.5}\n", r"RunConfig\.beta2: must be a number in \[0, 1\)"),
        ("keep_checkpoints: 1\n", r"^keep_checkpoints: must be true or false, got 1$"),
        ("grid:\n  - keep_checkpoints: [100, 200]\n",
         r"^grid\[0\]\.keep_checkpoints: must be true or false, got \[100, 200\]$"),
    ],
)  # fmt: skip
def test_malformed_specs_name_the_field(text, message):
    with pytest.raises(SpecError, match=message):
        spec(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [dense-100k]\ntokens: 1\nbatch_sizes: [1]\nlrs: [1]\n", r"^name: missing field"),
        ("name: t\nmodels: [dense-100k]\ntokens: 20480\nlrs: [1e-3]\n", r"^batch_sizes: missing field \(required\)"),
        ("name: t\nmodels: [dense-100k]\nbatch_sizes: 4\nlrs: 1e-3\ngrid:\n  - seeds: [1]\n",
         r"^grid\[0\]\.tokens: missing field \(set it in grid\[0\] or at the top level; or give tokens_per_param\)"),
        ("- a\n- b\n", r"^spec: expected a mapping at the top level, got list"),
        ("name: [unclosed\n", r"^spec: invalid YAML"),
        ("name: t\nlrs: [1]\nlrs: [2]\n", r"^spec: invalid YAML: .*key 'lrs' appears twice"),
    ],
)  # fmt: skip
def test_missing_fields_and_bad_documents(text, message):
    with pytest.raises(SpecError, match=message):
        SweepSpec.from_yaml(text)


def test_an_error_in_the_last_run_fails_the_whole_load():
    # micro_batch_size 3 divides batch 3 but not batch 4 (the last combination): nothing may start.
    with pytest.raises(SpecError, match=r"batch 4.*micro_batch_size: 3 does not divide batch_size=4"):
        spec("micro_batch_size: 3\ngrid:\n  - batch_sizes: [3, 4]\n")


def test_load_spec_reads_a_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    assert len(load_spec(path).expand()) == 1
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.yaml")


def test_shorthands_and_data_settings_reach_the_runs():
    (run,) = spec("""
        schedule: wsd
        dataset: /data/my-corpus
        tokenizer: bpe-4096
        mixture: {books: 3, code_go: 1}
        checkpoint_every_steps: 5
        keep_checkpoints: true
    """).expand()
    assert (run.schedule, run.dataset, run.tokenizer, run.checkpoint_every_steps, run.keep_checkpoints) == (
        "wsd", "/data/my-corpus", "bpe-4096", 5, True,
    )  # fmt: skip
    assert run.mixture == pytest.approx({"books": 0.75, "code_go": 0.25})
