"""The gradient noise probe reads each micro-batch's own gradient off the accumulating one."""

from __future__ import annotations

import pytest
import torch

from archscale.training.distributed import DistInfo
from archscale.training.noise_probe import GradientNoiseProbe
from archscale.training.noise_scale import NoiseScaleEstimator, unbiased_estimates


def test_the_probe_measures_each_micro_batch_gradient_not_the_running_sum() -> None:
    """Loss of micro-batch i: w·x_i / 2 (a mean over 2 micro-batches), so its own gradient is x_i and the
    step's is (x_1 + x_2)/2. A probe that read the accumulated gradient, or forgot the 1/2, would hand the
    estimator another small-batch norm than mean(|x_1|², |x_2|²) = (10 + 26)/2 = 18: with the step's
    |(x_1 + x_2)/2|² = 13, |G|² = (8·13 − 4·18)/4 = 8 and tr Σ = (18 − 13)/(1/4 − 1/8) = 40."""
    w = torch.zeros(2, requires_grad=True)
    xs = [torch.tensor([3.0, 1.0]), torch.tensor([1.0, 5.0])]
    probe = GradientNoiseProbe([w], n_micro=2, small_tokens=4, big_tokens=8, dist=DistInfo(), sharded=False)
    for x in xs:
        (w @ x / 2).backward()
        probe.after_backward()
    step_norm = float(w.grad.norm())
    assert step_norm**2 == pytest.approx(13)
    estimator = NoiseScaleEstimator(ema=0.0)
    probe.update(estimator, step_norm)
    assert unbiased_estimates(18.0, 13.0, 4, 8) == (8.0, 40.0)
    assert estimator.g2 == pytest.approx(8.0, rel=1e-5) and estimator.trace == pytest.approx(40.0, rel=1e-5)
