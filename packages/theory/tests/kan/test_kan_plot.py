import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuronkit.theory.kan import KAN, SKAN, SPACES, KANLayer, SKANLayer
from neuronkit.theory.kan.plot import edge_functions, plot_edges


def _separable_sum(phi: np.ndarray, t: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """``sum_i phi[picks[n, i], :, i]``: the layer's output less its bias at ``t[picks]``."""
    return sum(phi[picks[:, i], :, i] for i in range(phi.shape[2]))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("base", [True, False])
def test_edge_functions_sum_to_the_layer_output(space, base):
    layer = KANLayer(3, 4, space=space, base=base, seed=0).double()
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
    t, phi = edge_functions(layer, points=41)
    assert t.shape == (41,)
    assert phi.shape == (41, 4, 3)
    picks = np.random.default_rng(0).integers(0, 41, size=(16, 3))  # grid points per input
    x = torch.from_numpy(t[picks])
    want = layer(x).detach().numpy() - layer.bias.detach().numpy()
    np.testing.assert_allclose(_separable_sum(phi, t, picks), want, atol=1e-12)


def test_edge_functions_of_an_skan_layer_weigh_its_active_spaces():
    layer = SKANLayer(2, 3, seed=1).double()
    with torch.no_grad():
        layer.theta.copy_(
            torch.randn(2, len(layer.spaces), generator=torch.Generator().manual_seed(2))
        )
    for top_k in (None, 2, 1):  # full, selective and pruned stages
        if top_k is not None:
            layer.select(top_k)
        t, phi = edge_functions(layer, points=31)
        picks = np.random.default_rng(3).integers(0, 31, size=(12, 2))
        want = layer(torch.from_numpy(t[picks])).detach().numpy() - layer.bias.detach().numpy()
        np.testing.assert_allclose(_separable_sum(phi, t, picks), want, atol=1e-12)


def test_edge_functions_pick_a_network_layer_and_a_range():
    model = KAN([2, 5, 1], seed=0)
    t, phi = edge_functions(model, layer=-1, points=5, x_range=(-2.0, 3.0))
    np.testing.assert_allclose(t, [-2.0, -0.75, 0.5, 1.75, 3.0])
    assert phi.shape == (5, 1, 5)
    _, direct = edge_functions(model.layers[1], points=5, x_range=(-2.0, 3.0))
    np.testing.assert_array_equal(phi, direct)
    # outside grid_range only the base branch is left for B-splines: silu(t) * w_base
    far = edge_functions(model, layer=1, points=2, x_range=(10.0, 11.0))[1]
    w = model.layers[1].base_weight.detach().double().numpy()
    np.testing.assert_allclose(
        far, F.silu(torch.tensor([10.0, 11.0])).double().numpy()[:, None, None] * w, rtol=1e-6
    )


def test_plot_edges_draws_one_panel_per_edge():
    model = SKAN([3, 2, 1], seed=0)
    axes = plot_edges(model, layer=0, inputs=[2, 0], points=11)
    assert axes.shape == (2, 2)
    t, phi = edge_functions(model, layer=0, points=11)
    line = axes[1, 0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), t)
    np.testing.assert_allclose(line.get_ydata(), phi[:, 1, 2])
    chosen = model.layers[0].chosen_spaces()
    assert axes[1, 0].get_title() == f"2 -> 1 ({chosen[2]})"
    single = plot_edges(KANLayer(9, 10, seed=0), share_y=False)
    assert single.shape == (8, 8)  # the first 8 of each by default
    assert single[0, 0].get_title() == "0 -> 0 (bspline)"


def test_bad_arguments():
    layer = KANLayer(2, 2, seed=0)
    with pytest.raises(TypeError, match="model must be a KAN, SKAN, KANLayer or SKANLayer"):
        edge_functions(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="layer must index the model's 2 layers, got 2"):
        edge_functions(KAN([2, 3, 1]), layer=2)
    with pytest.raises(ValueError, match="points must be >= 2"):
        edge_functions(layer, points=1)
    with pytest.raises(ValueError, match="x_range"):
        edge_functions(layer, x_range=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\], got 2"):
        plot_edges(layer, inputs=[2])
    with pytest.raises(TypeError, match="outputs must be a non-empty sequence"):
        plot_edges(layer, outputs=[])
    with pytest.raises(TypeError, match="share_y must be bool"):
        plot_edges(layer, share_y=1)
