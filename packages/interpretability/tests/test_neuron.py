"""Neuron attributions: the neuron's value, closed forms, conductance summing to integrated
gradients, in-place layers, and bad input (Captum agreement: test_attribution_captum.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    integrated_gradients,
    neuron_conductance,
    neuron_output,
    saliency,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cnn(inplace: bool = False) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 3),
    ).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(3, 1, 8, 8, generator=_gen(1), dtype=torch.float64)


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the forward pass went past the neuron's layer")


@pytest.mark.parametrize(
    ("neuron", "pick"),
    [
        ((2, 1, 3), lambda a: a[:, 2, 1, 3]),
        ((1, slice(0, 2), 3), lambda a: a[:, 1, 0:2, 3].sum(1)),
        (lambda a: a[:, 0].mean((1, 2)), lambda a: a[:, 0].mean((1, 2))),
    ],
)
def test_the_neuron_is_the_layers_unit_and_the_rest_does_not_run(neuron, pick) -> None:
    model = _cnn()
    with torch.no_grad():
        acts = model[:4](X)
    stopped = nn.Sequential(*model[:4], _Boom())
    got = neuron_output(stopped, "3", neuron)(X)
    torch.testing.assert_close(got, pick(acts))


def test_the_gradient_of_a_linear_units_input_neuron_is_its_weight_row() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    grad = saliency(neuron_output(model, "1", 3), X, abs=False)
    torch.testing.assert_close(grad, model[1].weight.detach()[3].view(1, 1, 8, 8).expand_as(X))
    # the input of the last layer: unit 1 after the ReLU, relu(w_1 . x + b_1)
    after = saliency(neuron_output(model, "3", 1, layer_input=True), X, abs=False)
    active = (model[1](X.flatten(1))[:, 1] > 0).double()  # [B]
    want = active[:, None] * model[1].weight.detach()[1]
    torch.testing.assert_close(after.flatten(1), want)


def test_conductances_of_a_layer_every_path_crosses_sum_to_integrated_gradients() -> None:
    model = _cnn()
    ig = integrated_gradients(model, X, 1, method="riemann_trapezoid", n_steps=20)
    total = sum(neuron_conductance(model, X, "5", i, 1, n_steps=20) for i in range(6 * 4 * 4))
    torch.testing.assert_close(total, ig, rtol=1e-10, atol=1e-14)
    half = sum(neuron_conductance(model, X, "5", i, 1, n_steps=20) for i in range(48))
    assert float((half - ig).abs().max()) > 1e-3  # one neuron's share is not the whole


def test_conductance_written_out_for_one_example() -> None:
    """(x - x') sum_k w_k dF/dy(x_k) dy/dx(x_k) on the Riemann trapezoid points."""
    model = _cnn()
    x, base = X[:1], torch.full_like(X[:1], 0.3)
    got = neuron_conductance(model, x, "3", (2, 1, 1), 2, baselines=0.3, n_steps=4)
    want = torch.zeros_like(x)
    for k, (alpha, w) in enumerate(zip([0, 1 / 3, 2 / 3, 1], [1 / 8, 1 / 4, 1 / 4, 1 / 8])):
        point = (base + alpha * (x - base)).requires_grad_(True)
        unit = model[:4](point)
        unit.retain_grad()
        model[4:](unit)[0, 2].backward()
        d_unit = unit.grad[0, 2, 1, 1]
        point.grad = None
        (d_x,) = torch.autograd.grad(model[:4](point)[0, 2, 1, 1], point)
        want += w * d_unit * d_x
        assert k < 4
    torch.testing.assert_close(got, want * (x - base))


def test_in_place_layers_after_the_neuron_change_nothing() -> None:
    """A ReLU(inplace=True) after the layer must not clip the units (a channel, summed)."""
    channel = (1, slice(None), slice(None))
    plain = neuron_conductance(_cnn(), X, "0", channel, 0)
    inplace = neuron_conductance(_cnn(inplace=True), X, "0", channel, 0)
    torch.testing.assert_close(inplace, plain)
    torch.testing.assert_close(
        saliency(neuron_output(_cnn(inplace=True), "0", channel), X),
        saliency(neuron_output(_cnn(), "0", channel), X),
    )


class _Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net, self.unused = _cnn(), nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize(
    ("neuron", "error", "match"),
    [
        ("a", TypeError, "neuron must be an int"),
        ((1.0,), TypeError, "neuron must be an int"),
        ((1, 2), ValueError, "neuron must index the 3 non-batch dimensions"),
        ((9, 0, 0), ValueError, "outside the layer's output"),
        (lambda a: a[:, 0], ValueError, "neuron must return one value per row"),
    ],
)
def test_bad_neurons_are_named(neuron, error, match) -> None:
    with pytest.raises(error, match=match):
        saliency(neuron_output(_cnn(), "3", neuron), X)


def test_a_layer_that_does_not_run_is_named() -> None:
    model = _Unused()
    with pytest.raises(ValueError, match="layer did not run"):
        saliency(neuron_output(model, "unused", 0), X)
    with pytest.raises(ValueError, match="layer did not run"):
        neuron_conductance(model, X, "unused", 0, 0)
    with pytest.raises(ValueError, match="layer"):
        neuron_output(model, "nope", 0)


class _TimeMajor(nn.Module):
    """A layer whose value is time-major ``[3, B, 4]`` (as spiking layers), then a classifier."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.lin, self.steps = nn.Linear(6, 4), nn.Identity()
        self.read = nn.Sequential(nn.Tanh(), nn.Linear(4, 2))
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return self.read(self.steps(torch.stack((h, 2 * h, 3 * h))).sum(0))


def test_a_time_major_layers_neuron() -> None:
    model = _TimeMajor()
    x = torch.randn(5, 6, generator=_gen(4), dtype=torch.float64)
    over_time = neuron_output(model, "steps", (slice(None), 2), batch_dim=1)
    with torch.no_grad():
        torch.testing.assert_close(over_time(x), 6 * model.lin(x)[:, 2])
    grads = saliency(over_time, x, abs=False)
    torch.testing.assert_close(grads, 6 * model.lin.weight.detach()[2].expand_as(x))
    ig = integrated_gradients(model, x, 1, method="riemann_trapezoid", n_steps=10)
    total = sum(
        neuron_conductance(model, x, "steps", (t, u), 1, n_steps=10, batch_dim=1)
        for t in range(3)
        for u in range(4)
    )
    torch.testing.assert_close(total, ig)
    with pytest.raises(ValueError, match="neuron must index the 2 non-batch dimensions"):
        saliency(neuron_output(model, "steps", (1, 2, 0), batch_dim=1), x)
