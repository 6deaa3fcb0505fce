import itertools

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    integrated_gradients,
    internal_influence,
    layer_conductance,
    neuron_conductance,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(3, 5, generator=_gen(1), dtype=torch.float64)
BASE = torch.randn(5, generator=_gen(2), dtype=torch.float64)
T = torch.tensor([0, 1, 2])


def test_units_feeding_a_linear_output_conduct_their_weighted_change() -> None:
    """After the tanh the model is linear: dF/dy_j = w_j, and the changes telescope."""
    model = _mlp()
    got = layer_conductance(model, X, "1", T, baselines=BASE, n_steps=4, method="riemann_trapezoid")
    with torch.no_grad():
        change = model[:2](X) - model[:2](BASE[None])
    torch.testing.assert_close(got, model[2].weight.detach()[T] * change)
    # the default Gauss-Legendre points start and end inside the path: not the whole change
    assert not torch.allclose(layer_conductance(model, X, "1", T, baselines=BASE), got)


def test_a_layer_conducts_the_output_difference_as_integrated_gradients_does() -> None:
    model = _mlp()
    with torch.no_grad():
        difference = (model(X) - model(BASE[None]))[torch.arange(3), T]
    hidden, delta = layer_conductance(
        model,
        X,
        "0",
        T,
        baselines=BASE,
        n_steps=800,
        method="riemann_trapezoid",
        return_convergence_delta=True,
    )
    assert hidden.shape == (3, 8)
    torch.testing.assert_close(hidden.sum(1), difference, rtol=0, atol=1e-4)
    torch.testing.assert_close(delta, hidden.sum(1) - difference)
    ig = integrated_gradients(model, X, T, baselines=BASE, n_steps=64)
    torch.testing.assert_close(hidden.sum(1), ig.sum(1), rtol=0, atol=1e-4)
    # the first layer's input conducts what integrated gradients gives each input
    at_input = layer_conductance(
        model,
        X,
        "0",
        T,
        baselines=BASE,
        n_steps=800,
        method="riemann_trapezoid",
        layer_input=True,
    )
    torch.testing.assert_close(at_input, ig, rtol=0, atol=1e-4)


def test_errors_name_the_problem() -> None:
    model = _mlp()
    with pytest.raises(ValueError, match="layer must be a submodule"):
        layer_conductance(model, X, nn.Linear(2, 2), T)
    with pytest.raises(ValueError, match="n_steps"):
        layer_conductance(model, X, "0", T, n_steps=0)
    with pytest.raises(TypeError, match="inputs must be a floating-point"):
        layer_conductance(model, torch.zeros(3, 5, dtype=torch.long), "0", T)
    rows = X.tolist()  # a nested list, not a tensor: named before its shape is read
    for method in (layer_conductance, internal_influence):
        with pytest.raises(TypeError, match="inputs must be Tensor, got list"):
            method(model, rows, "0", T)
    with pytest.raises(TypeError, match="inputs must be Tensor, got list"):
        neuron_conductance(model, rows, "0", 1, T)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_each_interval_takes_the_gradient_at_its_start() -> None:
    """Three intervals (alpha 0, 1/3, 2/3, 1), the sum written out at the first layer."""
    model = _mlp()
    got = layer_conductance(model, X, "0", T, baselines=BASE, n_steps=3, method="riemann_trapezoid")
    expected = torch.zeros(3, 8, dtype=torch.float64)
    alphas = torch.linspace(0, 1, 4, dtype=torch.float64)
    for start, stop in itertools.pairwise(alphas):
        z = model[0](BASE + start * (X - BASE)).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model[1:](z)[torch.arange(3), T].sum(), z)
        with torch.no_grad():
            expected += grad * (model[0](BASE + stop * (X - BASE)) - z)
    torch.testing.assert_close(got, expected)
