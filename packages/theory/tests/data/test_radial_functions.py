"""Radial classification and function-fitting task generators."""

import pytest
import torch
from scipy.special import j0

from neuronkit.theory.data.functions import FUNCTION_TASKS, function_task
from neuronkit.theory.data.radial import radial_shells


def test_radial_labels_depend_on_the_norm_only() -> None:
    data = radial_shells(4000, 5, shells=3, seed=0)
    r2 = (data.x.double() ** 2).sum(dim=1)
    shell = torch.bucketize(r2, data.edges)
    assert torch.equal(data.y, shell % 2)
    counts = torch.bincount(shell, minlength=3).double() / 4000
    assert torch.allclose(counts, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)
    assert torch.equal(radial_shells(20, 5, seed=1).x, radial_shells(20, 5, seed=1).x)


def test_function_tasks() -> None:
    assert len(FUNCTION_TASKS) == 7
    for name in FUNCTION_TASKS:
        t = function_task(name, 50, 20, seed=0)
        assert t.x_train.shape == (50, t.dim)
        assert t.y_test.shape == (20,)
        assert float(t.x_train.abs().max()) <= 1.0
        assert bool(torch.isfinite(t.y_train).all())
    t = function_task("bessel", 30, 5, seed=1)
    assert torch.allclose(
        t.y_train, torch.as_tensor(j0(20 * t.x_train[:, 0].double().numpy())).float(), atol=1e-6
    )
    t = function_task("product", 30, 5, seed=1)
    assert torch.allclose(t.y_train, t.x_train[:, 0] * t.x_train[:, 1])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shells"):
        radial_shells(10, 2, shells=1)
    with pytest.raises(ValueError, match="dim"):
        radial_shells(10, 0)
    with pytest.raises(ValueError, match="name"):
        function_task("nope")
    with pytest.raises(ValueError, match="n_train"):
        function_task("product", 0)
