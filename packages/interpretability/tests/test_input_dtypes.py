"""Data of another dtype than the model's, and class labels of any integer dtype.

float64 data (``torch.from_numpy`` of a numpy array) for a float32 model failed deep inside
torch in the influence functions and ``train_head`` ("mat1 and mat2 must have the same dtype");
int32 class labels, which their siblings (``accuracy``, the attacks, TracIn) take, failed in
``hessian_influence`` and ``train_head`` ("expected target dtype to be Long or Byte") and were
refused by ``track_information_plane``. Each now runs, or raises a ``TypeError`` naming the
argument the caller passed (``test_inputs``, ``concept_inputs``, ``start``, ``x0`` rather than
a generic ``inputs``, or DeepLIFT's ``baselines``, which follow the inputs' dtype).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import (
    deeplift,
    hessian_influence,
    hessian_self_influence,
    level_set_traversal,
    line_confidence,
    roar_accuracy,
    similarity_influence,
    tracin_influence,
    tracin_self_influence,
    track_information_plane,
    train_cav,
    train_classifier,
    triangle_confidence,
)
from neuronkit.interpretability.data.twelve_bit import twelve_bit_task
from neuronkit.interpretability.fusion import StreamClassifier, StreamCNN, train_head

MISMATCH = r"must have the model's parameter dtype torch\.float32, got dtype torch\.float64"


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).eval()


def _data(n: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _influences(model: nn.Module, train: tuple, test: tuple) -> list[torch.Tensor]:
    return [
        hessian_influence(model, train, test, damping=0.1),
        hessian_self_influence(model, train, damping=0.1),
        tracin_influence(model, [model.state_dict()], train, test),
        tracin_self_influence(model, [model.state_dict()], train),
    ]


def test_influence_functions_name_inputs_of_another_dtype() -> None:
    model, (x, y), (xt, yt) = _mlp(), _data(), _data(4, 1)
    for name, fn in (("hessian", hessian_influence), ("tracin", tracin_influence)):
        first = (model,) if name == "hessian" else (model, [model.state_dict()])
        with pytest.raises(TypeError, match="^train inputs " + MISMATCH):
            fn(*first, (x.double(), y), (xt, yt))
        with pytest.raises(TypeError, match="^test inputs " + MISMATCH):
            fn(*first, (x, y), (xt.double(), yt))
    with pytest.raises(TypeError, match="^data inputs " + MISMATCH):
        hessian_self_influence(model, (x.double(), y))
    with pytest.raises(TypeError, match="^data inputs " + MISMATCH):
        tracin_self_influence(model, [model.state_dict()], (x.double(), y))
    with pytest.raises(TypeError, match="^hessian_data inputs " + MISMATCH):
        hessian_influence(model, (x, y), (xt, yt), hessian_data=(x.double(), y))


def test_influence_functions_take_class_indices_of_any_integer_dtype() -> None:
    model, (x, y), (xt, yt) = _mlp(), _data(), _data(4, 1)
    expected = _influences(model, (x, y), (xt, yt))
    for dtype in (torch.int32, torch.uint8):  # hessian_* failed on int32 inside the loss
        got = _influences(model, (x, y.to(dtype)), (xt, yt.to(dtype)))
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e, rtol=0, atol=0)
    # class probabilities [n, C] stay a valid float target of the default cross-entropy
    probs = _influences(model, (x, F.one_hot(y, 3).float()), (xt, F.one_hot(yt, 3).float()))
    for g, e in zip(probs, expected, strict=True):
        torch.testing.assert_close(g, e)
    for fn in (hessian_self_influence, lambda m, d: tracin_self_influence(m, [m.state_dict()], d)):
        with pytest.raises(TypeError, match="data targets must be class indices"):
            fn(model, (x, y.float()))  # a gather / cross-entropy dtype error before
    # a loss of the caller's own takes its targets as they are
    mse = lambda out, t: (out[:, 0] - t).square()  # noqa: E731
    assert hessian_self_influence(model, (x, y.float()), loss_fn=mse).shape == (10,)


def test_deeplift_names_the_inputs_not_the_baselines() -> None:
    """The baselines follow the inputs' dtype: the message named ``baselines``."""
    x, _ = _data()
    with pytest.raises(TypeError, match="^inputs " + MISMATCH):
        deeplift(_mlp(), x.double(), 0)


def test_activations_name_the_argument() -> None:
    model, (x, _) = _mlp(), _data()
    with pytest.raises(TypeError, match="^test_inputs " + MISMATCH):
        similarity_influence(model, x, x.double(), "1")
    with pytest.raises(TypeError, match="^train_inputs " + MISMATCH):
        similarity_influence(model, x.double(), x, "1")
    with pytest.raises(TypeError, match="^concept_inputs " + MISMATCH):
        train_cav(model, "1", x.double(), x)
    with pytest.raises(TypeError, match="^random_inputs " + MISMATCH):
        train_cav(model, "1", x, x.double())


def test_geometry_paths_follow_the_first_point() -> None:
    """A float64 end / vertex was promoted into the path (named ``inputs``) or failed in
    ``einsum``; like LST's targets, they now take the start's / ``x0``'s dtype."""
    model, (x, y) = _mlp(), _data()
    end = x.flip(0)
    expected = line_confidence(model, x, end, y, n_points=5)
    torch.testing.assert_close(line_confidence(model, x, end.double(), y, n_points=5), expected)
    tri = triangle_confidence(model, x, end, x.roll(1, 0), y, n_interps=2)
    got = triangle_confidence(model, x, end.double(), x.roll(1, 0).double(), y, n_interps=2)
    torch.testing.assert_close(got.confidences, tri.confidences)
    with pytest.raises(TypeError, match="^start " + MISMATCH):
        line_confidence(model, x.double(), end, y)
    with pytest.raises(TypeError, match="^x0 " + MISMATCH):
        triangle_confidence(model, x.double(), end, end, y)
    with pytest.raises(TypeError, match="^sources " + MISMATCH):  # with labels: "inputs"
        level_set_traversal(model, x.double(), end, y, n_iterations=2, clamp=None)


def _trainer(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    model = _mlp()
    train_classifier(model, x.float(), y, epochs=1, batch_size=4)
    return model


class _Casting(nn.Module):
    """Reads integer inputs itself."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


def test_roar_names_test_inputs_and_takes_integer_inputs() -> None:
    (x, y), (xt, yt) = _data(), _data(8, 1)
    a, at = torch.rand(10, 6), torch.rand(8, 6)
    with pytest.raises(TypeError, match="^test_inputs " + MISMATCH):
        roar_accuracy(x, y, xt.double(), yt, a, at, k=3, largest=True, trainer=_trainer)
    # integer inputs with an integer fill (documented) reached accuracy, which refused them
    xi, xti = (x * 10).long(), (xt * 10).long()

    def casting(xtr: torch.Tensor, ytr: torch.Tensor) -> nn.Module:
        model = _Casting()
        train_classifier(model, xtr.float(), ytr, epochs=1, batch_size=4)
        return model

    acc = roar_accuracy(xi, y, xti, yt.int(), a, at, k=3, largest=True, trainer=casting, fill=0)
    assert 0.0 <= acc <= 1.0


def test_track_information_plane_takes_int32_labels() -> None:
    task = twelve_bit_task()
    train, _ = task.split(0.8, seed=0)
    kwargs = dict(n_runs=1, epochs=2, n_records=2, lr=1e-2, kde_samples=32, seed=0)
    ref = track_information_plane(task.x, task.y, train, **kwargs)
    got = track_information_plane(task.x, task.y.int(), train, **kwargs)
    for key in ("binning", "kde"):
        np.testing.assert_array_equal(got.ixt[key], ref.ixt[key])
        np.testing.assert_array_equal(got.ity[key], ref.ity[key])


def test_train_head_names_float64_scenes_and_takes_int32_labels() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 12, 12, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    torch.manual_seed(0)
    model = StreamClassifier(StreamCNN(width=4, n_features=8), 3)
    with pytest.raises(TypeError, match="^inputs " + MISMATCH):
        train_head(copy.deepcopy(model), x.double(), y, epochs=1)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    assert train_head(a, x, y.int(), epochs=2) == train_head(b, x, y, epochs=2)
