"""The y * e_j signal-coordinate task."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.data import signal_coordinate_data


def test_each_example_has_one_signed_signal_coordinate() -> None:
    d = signal_coordinate_data(500, 10, seed=0)
    assert d.x.shape == (500, 10)
    assert len(d) == 500
    assert torch.all((d.x != 0).sum(1) == 1)
    idx = torch.arange(500)
    torch.testing.assert_close(d.x[idx, d.signal], (2 * d.y - 1).float())
    counts = torch.bincount(d.signal, minlength=10)
    assert counts.min() > 25


def test_bias_prob_and_signal_range_and_seed() -> None:
    d = signal_coordinate_data(2000, 5, seed=1, bias_prob=0.5, signal_range=(0.5, 2.0))
    assert 0.45 < float((d.signal == 0).float().mean()) < 0.55
    mags = d.x.abs().amax(1)
    assert float(mags.min()) >= 0.5
    assert float(mags.max()) <= 2.0
    torch.testing.assert_close(
        d.x, signal_coordinate_data(2000, 5, seed=1, bias_prob=0.5, signal_range=(0.5, 2.0)).x
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"dim": 1},
        {"bias_prob": 1.5},
        {"signal_range": (0.0, 1.0)},
        {"signal_range": (2.0, 1.0)},
    ],
)
def test_bad_inputs(kwargs) -> None:
    args = {"n": 10, "dim": 4, **kwargs}
    with pytest.raises(ValueError, match=r"n|dim|bias_prob|signal_range"):
        signal_coordinate_data(**args)


@pytest.mark.parametrize("signal_range", [(1.0,), "1.0", 1.0])
def test_signal_range_must_be_a_pair(signal_range) -> None:
    with pytest.raises(TypeError, match="signal_range must be a \\(low, high\\) pair"):
        signal_coordinate_data(10, 4, signal_range=signal_range)
