"""LR schedules at chosen steps against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest

from archscale.models import get_preset
from archscale.training.run_config import RunConfig
from archscale.training.schedules import lr_multiplier, wsd_decay_steps


def test_warmup_is_linear_and_reaches_the_peak_at_step_w():
    m = [lr_multiplier(s, steps=20, warmup_steps=4) for s in range(6)]
    assert m[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # (s+1)/(W+1), peak at s = W
    assert m[5] < 1.0


def test_cosine_values_and_floor_at_the_last_step():
    # no warm-up, 101 steps: progress = s/100
    cos = lambda s: lr_multiplier(s, steps=101, schedule="cosine", min_lr_ratio=0.1)  # noqa: E731
    assert cos(0) == 1.0
    assert cos(25) == pytest.approx(0.1 + 0.45 * (1 + math.sqrt(2) / 2))  # 0.868198
    assert cos(50) == pytest.approx(0.55)
    assert cos(75) == pytest.approx(0.1 + 0.45 * (1 - math.sqrt(2) / 2))  # 0.231802
    assert cos(100) == pytest.approx(0.1, abs=1e-15)
    # with warm-up W=4 over 20 steps: progress = (s-4)/15; s=9 -> cos(pi/3) = 1/2
    assert lr_multiplier(9, steps=20, warmup_steps=4) == pytest.approx(0.1 + 0.9 * 0.75)


def test_paper_schedule_ends_at_ten_percent_of_peak():
    run = RunConfig(get_preset("dense-100k"), tokens=300 * 8 * 64, batch_size=8, lr=1.5e-3, seq_len=64)
    assert run.steps == 300 and run.warmup_steps == 15
    assert run.lr_at(0) == pytest.approx(1.5e-3 / 16)
    assert run.lr_at(15) == pytest.approx(1.5e-3)
    assert run.lr_at(299) == pytest.approx(1.5e-4)
    assert run.lr_at(300) == pytest.approx(1.5e-4)  # one scheduler step past the end keeps the floor
    lrs = [run.lr_at(s) for s in range(15, 300)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


def test_wsd_stable_then_linear_decay_over_the_last_fraction():
    wsd = lambda s: lr_multiplier(s, steps=100, warmup_steps=5, schedule="wsd", decay_fraction=0.2)  # noqa: E731
    assert wsd_decay_steps(100, 0.2) == 20
    assert wsd(2) == pytest.approx(0.5)  # warm-up (2+1)/(5+1)
    assert all(wsd(s) == 1.0 for s in range(5, 80))
    assert wsd(80) == pytest.approx(0.1 + 0.9 * 19 / 20)  # first decaying step
    assert wsd(89) == pytest.approx(0.55)  # half-way down
    assert wsd(99) == pytest.approx(0.1)


def test_wsd_shorter_run_is_a_prefix_of_the_longer_one_until_its_decay():
    long = [lr_multiplier(s, steps=100, warmup_steps=5, schedule="wsd") for s in range(100)]
    short = [lr_multiplier(s, steps=60, warmup_steps=5, schedule="wsd") for s in range(60)]
    start = 60 - wsd_decay_steps(60, 0.2)
    assert short[:start] == long[:start]
    assert short[start] < long[start]


def test_constant_after_warmup():
    assert [
        lr_multiplier(s, steps=10, warmup_steps=3, schedule="constant") for s in range(10)
    ] == pytest.approx([0.25, 0.5, 0.75] + [1.0] * 7)


def test_single_step_run_is_at_the_floor():
    assert lr_multiplier(0, steps=1) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"step": -1, "steps": 10}, "step"),
        ({"step": 0, "steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"step": 0, "steps": 10, "schedule": "linear"}, "schedule"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    step = kwargs.pop("step")
    with pytest.raises(ValueError, match=rf"^{field}:"):
        lr_multiplier(step, **kwargs)
