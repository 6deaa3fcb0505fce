"""KAN layers, activation-space bases and S-KAN."""

import math

import pytest
import torch
from scipy.interpolate import BSpline

from neuronkit.theory.kan import (
    KAN,
    SKAN,
    SPACES,
    KANLayer,
    SKANLayer,
    basis_values,
    bspline_basis,
    extended_grid,
    matched_mlp,
    mlp_parameter_count,
    train_regression,
    uniform_bspline_basis,
)


def test_bspline_basis_matches_scipy_and_partitions_unity() -> None:
    knots = extended_grid(1, 5, 3)
    x = torch.linspace(-0.99, 0.99, 41)[:, None]
    ours = bspline_basis(x, knots, 3)[:, 0]
    t = knots[0].double().numpy()
    for m in range(ours.shape[1]):
        ref = BSpline.basis_element(t[m : m + 5], extrapolate=False)(x[:, 0].double().numpy())
        ref = torch.nan_to_num(torch.as_tensor(ref))
        assert torch.allclose(ours[:, m].double(), ref, atol=1e-5)
    assert torch.allclose(ours.sum(dim=1), torch.ones(41), atol=1e-5)


def test_uniform_fast_path_equals_cox_de_boor() -> None:
    x = torch.rand(200, 3) * 3 - 1.5
    for k in (0, 1, 2, 3):
        ref = bspline_basis(x, extended_grid(3, 4, k, (-1.0, 1.0)), k)
        assert torch.allclose(uniform_bspline_basis(x, -1.0, 0.5, 4, k), ref, atol=1e-5)


@pytest.mark.parametrize("space", SPACES)
def test_layer_is_one_linear_map_of_the_basis(space: str) -> None:
    layer = KANLayer(3, 2, space=space, seed=0)
    x = torch.rand(10, 3) * 2 - 1
    b = layer.basis(x)
    assert b.shape == (10, 3, 8)
    expected = (
        torch.einsum("bim,oim->bo", b, layer.coef)
        + torch.nn.functional.silu(x)
        @ (
            layer.base_weight.T  # type: ignore[union-attr]
        )
        + layer.bias
    )
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_chebyshev_and_fourier_values() -> None:
    x = torch.tensor([[0.3]])
    cheb = basis_values("chebyshev", x, 4)[0, 0]
    t = math.tanh(0.3)
    assert torch.allclose(cheb, torch.tensor([1.0, t, 2 * t * t - 1, 4 * t**3 - 3 * t]), atol=1e-6)
    four = basis_values("fourier", x, 4)[0, 0]
    a = math.pi * 0.3
    ref = torch.tensor([math.cos(a), math.cos(2 * a), math.sin(a), math.sin(2 * a)])
    assert torch.allclose(four, ref, atol=1e-6)


def test_skan_mixture_and_selection() -> None:
    torch.manual_seed(0)
    layer = SKANLayer(2, 3, spaces=("bspline", "fourier"), seed=0)
    with torch.no_grad():
        layer.theta.copy_(torch.tensor([[5.0, 0.0], [0.0, 5.0]]))
    x = torch.rand(16, 2) * 2 - 1
    before = layer(x)
    alpha = layer.selection_weights()
    assert torch.allclose(alpha.sum(dim=1), torch.ones(2))
    assert layer.select() == ["bspline", "fourier"]
    assert torch.equal(layer.selection_weights(), torch.eye(2))
    after = layer(x)
    # the discarded spaces only carried weight softmax(-5) ~ 0.007: the function barely moves
    assert (after - before).abs().max() < 0.1 * before.abs().max() + 0.05
    assert layer.selected_parameter_count() == KANLayer(2, 3).coef.numel() + 6 + 3


def test_skan_with_one_space_equals_kan_layer() -> None:
    s = SKANLayer(3, 2, spaces=("rbf",), seed=0)
    k = KANLayer(3, 2, space="rbf", seed=0)
    with torch.no_grad():
        k.coef.copy_(s.coef[:, :, 0])
        k.base_weight.copy_(s.base_weight)  # type: ignore[union-attr]
    x = torch.rand(7, 3)
    assert torch.allclose(s(x), k(x), atol=1e-6)


def test_training_reduces_error_and_models_are_seeded() -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 2) * 2 - 1
    y = x[:, 0] * x[:, 1]
    model = KAN([2, 3, 1], seed=0)
    losses = train_regression(model, x, y, steps=60)
    assert losses[-1] < 0.5 * losses[0]
    a, b = SKAN([2, 3, 1], seed=4), SKAN([2, 3, 1], seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert len(a.select()) == 2


def test_matched_mlp_parameter_count() -> None:
    mlp = matched_mlp(2, 1, 600, depth=2, seed=0)
    n = sum(p.numel() for p in mlp.parameters())
    assert abs(n - 600) <= 60
    assert mlp_parameter_count(2, 10, 1, 2) == 30 + 110 + 11


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="in_features"):
        KANLayer(0, 2)
    with pytest.raises(ValueError, match="space"):
        KANLayer(2, 2, space="legendre")
    with pytest.raises(ValueError, match="grid_range"):
        KANLayer(2, 2, grid_range=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"\[batch, 3\]"):
        KANLayer(3, 2)(torch.rand(4, 2))
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        KAN([2, 0, 1])
    with pytest.raises(ValueError, match="distinct"):
        SKANLayer(2, 2, spaces=("rbf", "rbf"))
    with pytest.raises(ValueError, match="y must"):
        train_regression(KAN([2, 1]), torch.rand(5, 2), torch.rand(4), steps=1)
    with pytest.raises(ValueError, match="n_params"):
        matched_mlp(2, 1, 0)
