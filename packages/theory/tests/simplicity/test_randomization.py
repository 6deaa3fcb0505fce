"""S-randomization tests (Shah et al.)."""

import pytest
import torch
import torch.nn as nn

from neuronkit.theory.data.lms import lms_data
from neuronkit.theory.simplicity import (
    feature_reliance,
    randomize_coordinates,
    randomized_accuracy,
)


class _UsesCoordinate(nn.Module):
    """Predicts class 1 when feature coordinate ``c`` (after un-rotating) is positive."""

    def __init__(self, rotation: torch.Tensor, c: int) -> None:
        super().__init__()
        self.rotation, self.c = rotation, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.rotation.T
        return torch.stack([-z[:, self.c], z[:, self.c]], dim=1)


def test_randomization_permutes_only_the_chosen_features() -> None:
    data = lms_data(300, 4, rotate=True, seed=0)
    x = data.x.clone()
    xr = randomize_coordinates(data.x, [0], rotation=data.rotation, seed=1)
    assert torch.equal(data.x, x)  # input not mutated
    z, zr = data.x @ data.rotation.T, xr @ data.rotation.T
    assert torch.allclose(zr[:, 1:], z[:, 1:], atol=1e-5)
    assert torch.allclose(zr[:, 0].sort().values, z[:, 0].sort().values, atol=1e-5)
    assert not torch.allclose(zr[:, 0], z[:, 0])


def test_reliance_of_a_linear_only_model() -> None:
    data = lms_data(2000, 5, rotate=True, seed=0)
    model = _UsesCoordinate(data.rotation, 0)
    acc = feature_reliance(
        model,
        data.x,
        data.y,
        {"linear": [0], "slabs": data.slab_coordinates},
        rotation=data.rotation,
        seed=0,
    )
    assert acc["original"] == 1.0
    assert acc["slabs"] == 1.0
    assert abs(acc["linear"] - 0.5) < 0.05
    assert randomized_accuracy(model, data.x, data.y, [], rotation=data.rotation) == 1.0


def test_bad_inputs() -> None:
    data = lms_data(10, 3, seed=0)
    with pytest.raises(ValueError, match="coordinates"):
        randomize_coordinates(data.x, [3])
    with pytest.raises(ValueError, match="rotation"):
        randomize_coordinates(data.x, [0], rotation=torch.eye(2))
    with pytest.raises(ValueError, match="x must"):
        randomize_coordinates(torch.zeros(3), [0])
    with pytest.raises(ValueError, match="y must"):
        randomized_accuracy(nn.Linear(3, 2), data.x, data.y[:5], [0])
    # a list x raised AttributeError: 'list' object has no attribute 'shape'
    with pytest.raises(TypeError, match=r"^x must be a torch\.Tensor"):
        randomized_accuracy(nn.Linear(3, 2), data.x.tolist(), data.y, [0])
    with pytest.raises(TypeError, match=r"^x must be a torch\.Tensor"):
        feature_reliance(nn.Linear(3, 2), data.x.tolist(), data.y, {"a": [0]})
    # the rotation was cast to x's integer dtype (an identity stays, any other rotation is lost)
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))[0]
    with pytest.raises(TypeError, match="x must be a floating-point tensor with a rotation"):
        randomize_coordinates(torch.ones(4, 3, dtype=torch.long), [0], rotation=q)
    assert randomize_coordinates(torch.ones(4, 3, dtype=torch.long), [0]).dtype == torch.long


def test_randomized_accuracy_runs_the_model_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.9), nn.Linear(8, 2))
    model.train()
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    stats = model[1].running_mean.clone()
    first = randomized_accuracy(model, x, y, [])
    assert randomized_accuracy(model, x, y, []) == first  # no dropout noise
    assert torch.equal(model[1].running_mean, stats)  # statistics untouched
    assert model.training  # mode restored
    model[1].eval()  # a BatchNorm frozen inside a training model stays frozen
    randomized_accuracy(model, x, y, [])
    assert model.training
    assert not model[1].training


def test_coordinates_must_be_integers() -> None:
    x = torch.randn(6, 3)
    with pytest.raises(TypeError, match=r"^coordinates\[0\] must be an integer"):
        randomize_coordinates(x, [1.7], seed=0)  # was silently coordinate 1
    with pytest.raises(TypeError, match=r"^coordinates\[1\] must be an integer"):
        randomize_coordinates(x, [0, True], seed=0)
    expected = randomize_coordinates(x, [1], seed=0)
    assert torch.equal(randomize_coordinates(x, [torch.tensor(1)], seed=0), expected)


def test_randomized_accuracy_checks_the_logits_and_the_labels() -> None:
    """A single-logit model, a [n] output, 1-indexed and float labels all gave an accuracy."""
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    flat = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))
    for model in (nn.Linear(4, 1), flat):
        with pytest.raises(ValueError, match=r"^model must return logits \[n, C\] \(n = 64, C >="):
            randomized_accuracy(model, x, y, [])
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 1\]"):
        randomized_accuracy(nn.Linear(4, 2), x, y + 1, [])
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 1\]"):
        feature_reliance(nn.Linear(4, 2), x, y + 1, {"a": [0]})
    with pytest.raises(TypeError, match=r"^y must hold integer class labels, got dtype"):
        randomized_accuracy(nn.Linear(4, 2), x, y * 0.5, [])
    assert 0.0 <= randomized_accuracy(nn.Linear(4, 2), x, y.bool(), []) <= 1.0
