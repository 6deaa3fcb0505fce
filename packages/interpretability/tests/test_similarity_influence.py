"""Similarity influence: the closeness written out, closest first, the training copy of a test
example found first, zero activations, bad input (Captum agreement: test_attribution_captum.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import similarity_influence


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()


X = torch.randn(20, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
XT = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def test_scores_are_the_closeness_of_the_layer_activations_written_out() -> None:
    model = _model()
    with torch.no_grad():
        hidden, hidden_test = model[:2](X), model[:2](XT)
        out, out_test = model(X), model(XT)
    got = similarity_influence(model, X, XT, ["1", "2"], metric="cosine")
    assert list(got) == ["1", "2"]
    norms = hidden.norm(dim=1), hidden_test.norm(dim=1)
    expected = (hidden_test @ hidden.T) / torch.outer(norms[1], norms[0])
    torch.testing.assert_close(got["1"], expected)
    euclidean = similarity_influence(model, X, XT, "2", metric="euclidean")["2"]
    torch.testing.assert_close(euclidean, (out_test[:, None] - out[None]).norm(dim=2))
    dot = similarity_influence(model, X, XT, "2", metric="dot")["2"]
    torch.testing.assert_close(dot, out_test @ out.T)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot"])
def test_top_k_lists_the_closest_first(metric) -> None:
    model = _model()
    full = similarity_influence(model, X, XT, "1", metric=metric)["1"]
    values, indices = similarity_influence(model, X, XT, "1", metric=metric, top_k=5)["1"]
    assert values.shape == indices.shape == (4, 5)
    torch.testing.assert_close(values, full.gather(1, indices))
    order = -1 if metric == "euclidean" else 1  # distances rise, similarities fall
    assert (order * values.diff(dim=1) <= 0).all()
    best = full.argmin(1) if metric == "euclidean" else full.argmax(1)
    torch.testing.assert_close(indices[:, 0], best)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_a_training_copy_of_each_test_example_is_found_first(metric) -> None:
    train = torch.cat([X, XT])  # the test examples at rows 20-23
    _, indices = similarity_influence(_model(), train, XT, "0", metric=metric, top_k=1)["0"]
    assert indices[:, 0].tolist() == [20, 21, 22, 23]


def test_zero_activations_have_cosine_zero_and_the_mode_is_restored() -> None:
    model = _model().train()
    x = X.clone()
    x[3] = 0.0
    model[0].bias.data.zero_()  # example 3 is all zero at layer "0"
    got = similarity_influence(model, x, XT, "0")["0"]
    assert torch.equal(got[:, 3], torch.zeros(4, dtype=torch.float64))
    assert torch.isfinite(got).all()
    assert model.training


def test_bad_input() -> None:
    model = _model()
    with pytest.raises(ValueError, match="metric"):
        similarity_influence(model, X, XT, "1", metric="manhattan")
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    with pytest.raises(ValueError, match="top_k must be <= the 20 training examples"):
        similarity_influence(model, X, XT, "1", top_k=21)
    assert not calls  # refused before any forward pass
    with pytest.raises(ValueError, match="top_k"):
        similarity_influence(model, X, XT, "1", top_k=0)
    with pytest.raises((ValueError, AttributeError), match="nope"):
        similarity_influence(model, X, XT, "nope")
    with pytest.raises(TypeError, match="model"):
        similarity_influence("model", X, XT, "1")


def test_bad_inputs_are_named_by_their_argument() -> None:
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(6, 4)
    with pytest.raises(TypeError, match="train_inputs must be Tensor, got list"):
        similarity_influence(model, x.tolist(), x, "1")
    with pytest.raises(ValueError, match="test_inputs must be finite"):
        similarity_influence(model, x, torch.full((2, 4), float("nan")), "1")
    # the model takes [M, 2, 4] too, but its activations have another size than train_inputs'
    with pytest.raises(ValueError, match="test_inputs must give layer '1' activations"):
        similarity_influence(model, x, x[None, :2], "1")
