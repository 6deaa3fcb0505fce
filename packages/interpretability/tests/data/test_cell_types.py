"""Simulated populations with known cell types (for MDS clustering)."""

from __future__ import annotations

import math

import pytest
import torch

from neuronkit.interpretability.data.cell_types import (
    LNPopulation,
    on_off_population,
    orientation_population,
)


def _grating(size: int, theta: float, freq: float, phase: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size) * 1.0, torch.arange(size) * 1.0, indexing="ij")
    u = xx * math.cos(theta) + yy * math.sin(theta)
    return torch.cos(2 * math.pi * freq * u + phase)


def test_on_off_population() -> None:
    pop = on_off_population(20, 16, seed=0)
    assert pop.n_neurons == 40
    assert pop.stimulus_shape == (16,)
    assert torch.equal(pop.labels, torch.tensor([0] * 20 + [1] * 20))
    bright = torch.ones(1, 16)
    r = pop(torch.cat([bright, -bright]))
    assert r.shape == (2, 40)
    assert (r > 0).all()
    # ON cells prefer light increments, OFF cells decrements
    assert (r[0, :20] > r[1, :20]).all()
    assert (r[1, 20:] > r[0, 20:]).all()
    again = on_off_population(20, 16, seed=0)
    torch.testing.assert_close(again.filters, pop.filters)
    assert not torch.allclose(on_off_population(20, 16, seed=1).filters, pop.filters)
    x = torch.randn(3, 16, requires_grad=True)
    pop(x).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


def test_orientation_population_tuning_and_phase_invariance() -> None:
    size, freq = 16, 0.15
    pop = orientation_population(10, size, 4, spatial_frequency=freq, seed=0)
    assert pop.n_neurons == 40
    assert pop.stimulus_shape == (size, size)
    thetas = [k * math.pi / 4 for k in range(4)]
    gratings = torch.stack([_grating(size, t, freq, 0.0) for t in thetas])
    mean_resp = torch.stack([pop(gratings)[:, pop.labels == k].mean(1) for k in range(4)])
    # each type responds most to the grating of its preferred orientation
    assert torch.equal(mean_resp.argmax(1), torch.arange(4))
    # energy-model complex cells barely change with the grating's phase
    shifted = torch.stack([_grating(size, t, freq, 1.3) for t in thetas])
    ratio = pop(shifted)[0, :10] / pop(gratings)[0, :10]
    assert (ratio - 1).abs().max() < 0.1
    simple = orientation_population(10, size, 4, phase_jitter=0.0, cell_model="simple", seed=0)
    assert simple.quadrature is None
    assert pop.filters.flatten(1).norm(dim=1).sub(1).abs().max() < 1e-5


def test_inputs_not_mutated_and_bad_inputs() -> None:
    filters = torch.randn(3, 4)
    frozen = filters.clone()
    pop = LNPopulation(filters, torch.ones(3), torch.zeros(3), torch.tensor([0, 1, 1]))
    pop.filters.mul_(2)
    torch.testing.assert_close(filters, frozen)
    with pytest.raises(ValueError, match="x must be"):
        pop(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="x must be"):
        pop([[0.0] * 4])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: on_off_population(0), ValueError),
        (lambda: on_off_population(5, 1), ValueError),
        (lambda: on_off_population(5, rf_width=0.0), ValueError),
        (lambda: on_off_population(5, width_jitter=1.5), ValueError),
        (lambda: on_off_population(5, gain_range=(2.0, 1.0)), ValueError),
        (lambda: on_off_population(5, gain_range=(0.0, 1.0)), ValueError),
        (lambda: on_off_population(5, gain_range=1.0), TypeError),
        (lambda: on_off_population(5, seed=-1), ValueError),
        (lambda: orientation_population(5, n_types=1), ValueError),
        (lambda: orientation_population(5, spatial_frequency=0.7), ValueError),
        (lambda: orientation_population(5, cell_model="bogus"), ValueError),
        (
            lambda: LNPopulation(torch.zeros(3), torch.ones(3), torch.zeros(3), torch.zeros(3)),
            ValueError,
        ),
        (
            lambda: LNPopulation(torch.zeros(3, 2), torch.ones(2), torch.zeros(3), torch.zeros(3)),
            ValueError,
        ),
        (
            lambda: LNPopulation(torch.zeros(3, 2), -torch.ones(3), torch.zeros(3), torch.zeros(3)),
            ValueError,
        ),
        (
            lambda: LNPopulation(
                torch.zeros(3, 2), torch.ones(3), torch.zeros(3), torch.zeros(3), torch.zeros(3, 3)
            ),
            ValueError,
        ),
        (lambda: LNPopulation("f", torch.ones(3), torch.zeros(3), torch.zeros(3)), TypeError),
    ],
)
def test_bad_inputs(call, error) -> None:
    with pytest.raises(error):
        call()
