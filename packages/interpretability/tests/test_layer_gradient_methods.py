"""Layer gradient x activation and internal influence: closed forms, the path written out,
in-place layers and bad input (Captum agreement: test_attribution_captum.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    integration_nodes,
    internal_influence,
    layer_conductance,
    layer_deeplift,
    layer_deeplift_shap,
    layer_gradient_shap,
    layer_gradient_x_activation,
    layer_integrated_gradients,
    layer_lrp,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _net(inplace: bool = False) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 8), nn.ReLU(inplace=inplace), nn.Linear(8, 3)
    ).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(4, 6, generator=_gen(1), dtype=torch.float64)
T = torch.tensor([0, 1, 2, 0])


def test_gradient_x_activation_of_a_layer_read_linearly_sums_to_the_output() -> None:
    model = _net()
    model[4].bias.data.zero_()
    got = layer_gradient_x_activation(model, X, "3", T)  # the ReLU's output, read by a Linear
    with torch.no_grad():
        out = model(X)[torch.arange(4), T]
        acts = model[:4](X)
    torch.testing.assert_close(got.sum(1), out)
    torch.testing.assert_close(got, acts * model[4].weight.detach()[T])
    grads = layer_gradient_x_activation(model, X, "3", T, multiply_by_activations=False)
    torch.testing.assert_close(grads, model[4].weight.detach()[T])


def test_in_place_layers_after_the_attributed_one_change_nothing() -> None:
    for fn in (layer_gradient_x_activation, internal_influence):
        plain, inplace = (fn(_net(flag), X, "2", T) for flag in (False, True))
        torch.testing.assert_close(inplace, plain)


def test_internal_influence_of_a_layer_read_linearly_is_the_weight() -> None:
    """A constant gradient: its path average is itself (the weights sum to 1)."""
    model = _net()
    got = internal_influence(model, X, "3", T, baselines=0.5)
    torch.testing.assert_close(got, model[4].weight.detach()[T])


def test_internal_influence_written_out() -> None:
    model, base = _net(), torch.randn(1, 6, generator=_gen(2), dtype=torch.float64)
    got = internal_influence(model, X, "1", T, baselines=base, n_steps=3)
    want = torch.zeros(4, 10, dtype=torch.float64)
    for alpha, w in zip(*integration_nodes("gausslegendre", 3), strict=True):
        acts = model[:2](base + float(alpha) * (X - base)).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model[2:](acts)[torch.arange(4), T].sum(), acts)
        want += float(w) * grad
    torch.testing.assert_close(got, want)


def test_bad_input_is_named() -> None:
    with pytest.raises(TypeError, match="multiply_by_activations"):
        layer_gradient_x_activation(_net(), X, "1", T, multiply_by_activations=1)
    with pytest.raises(ValueError, match="n_steps"):
        internal_influence(_net(), X, "1", T, n_steps=0)
    with pytest.raises(ValueError, match="layer"):
        internal_influence(_net(), X, "9", T)


class _Steps(nn.Module):
    """A layer stacking three steps, time-major ``[3, B, 4]`` or batch-first ``[B, 3, 4]``,
    then a classifier: the same function either way."""

    def __init__(self, time_major: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.lin, self.steps = nn.Linear(6, 4), nn.Identity()
        self.read = nn.Sequential(nn.Tanh(), nn.Linear(4, 3))
        self.axis = 0 if time_major else 1
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return self.read(self.steps(torch.stack((h, 2 * h, 3 * h), self.axis)).sum(self.axis))


BASES = torch.randn(3, 6, generator=_gen(4), dtype=torch.float64)


@pytest.mark.parametrize(
    "method", ["gxa", "influence", "conductance", "ig", "deeplift", "deeplift_shap", "gshap", "lrp"]
)
def test_time_major_layers_keep_their_layout(method) -> None:
    """batch_dim=1 gives the batch-first twin's numbers, in the layer's [T, B, U] layout."""
    call = {
        "gxa": layer_gradient_x_activation,
        "influence": lambda *a, **k: internal_influence(*a, n_steps=8, **k),
        "conductance": lambda *a, **k: layer_conductance(*a, n_steps=8, **k),
        "ig": lambda *a, **k: layer_integrated_gradients(*a, baselines=BASES[0], n_steps=8, **k),
        "deeplift": lambda *a, **k: layer_deeplift(*a, baselines=BASES[0], **k),
        "deeplift_shap": lambda m, x, layer, t, **k: layer_deeplift_shap(
            m, x, layer, BASES, t, **k
        ),
        "gshap": lambda m, x, layer, t, **k: layer_gradient_shap(
            m, x, layer, BASES, t, stdev=0.1, seed=0, **k
        ),
        "lrp": layer_lrp,
    }[method]
    time_major = call(_Steps(True), X, "steps", T, batch_dim=1)
    batch_first = call(_Steps(False), X, "steps", T)
    assert time_major.shape == (3, 4, 4)
    torch.testing.assert_close(time_major, batch_first.transpose(0, 1))
    with pytest.raises(ValueError, match="on axis 0"):
        call(_Steps(True), X, "steps", T)
