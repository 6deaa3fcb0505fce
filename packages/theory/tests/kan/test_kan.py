"""KAN layers, activation-space bases and S-KAN."""

import gc
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
    bspline_features,
    bspline_linear,
    extended_grid,
    matched_mlp,
    mlp_parameter_count,
    train_regression,
    train_skan,
    uniform_bspline_basis,
)
from neuronkit.theory.kan.basis import rbf_basis


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


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("grid", [1, 4, 7])
def test_uniform_fast_path_equals_cox_de_boor(k: int, grid: int) -> None:
    gen = torch.Generator().manual_seed(grid * 10 + k)
    # inputs inside, at the edge of and well outside the extended grid
    x = torch.rand(300, 3, generator=gen, dtype=torch.float64) * 4 - 2
    knots = extended_grid(3, grid, k, (-1.0, 1.0)).double()
    ref = bspline_basis(x, knots, k)
    fast = uniform_bspline_basis(x, -1.0, 2.0 / grid, grid, k)
    assert fast.shape == ref.shape == (300, 3, grid + k)
    assert torch.allclose(fast, ref, atol=1e-6)
    if k == 0:
        return
    # closed-form sparse backward equals autograd through the Cox-de Boor recursion
    w = torch.randn(3, grid + k, generator=gen, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ga,) = torch.autograd.grad((bspline_basis(xa, knots, k) * w).sum(), xa)
    (gb,) = torch.autograd.grad(
        (uniform_bspline_basis(xb, -1.0, 2.0 / grid, grid, k) * w).sum(), xb
    )
    assert torch.allclose(ga, gb, atol=1e-5)


@pytest.mark.parametrize(
    ("lo", "hi", "grid", "dtype"),
    [(-0.3, 2.1, 7, torch.float64), (-1.0, 1.0, 5, torch.float32), (0.0, 1.0, 10, torch.float32)],
)
def test_order_zero_fast_path_equals_cox_de_boor_on_the_knots(lo, hi, grid, dtype) -> None:
    # a step function: at a knot (where rounding decides) the fast path must pick the
    # reference's interval, or a KANLayer(k=0) gives other values under torch.func.vmap
    h = (hi - lo) / grid
    knots = extended_grid(1, grid, 0, (lo, lo + grid * h), dtype=dtype)
    x = knots[:, :-1].T.contiguous()  # [grid, 1]: every knot that starts an interval
    fast = uniform_bspline_basis(x, lo, h, grid, 0)
    assert torch.equal(fast, bspline_basis(x, knots, 0))
    layer = KANLayer(1, 2, grid=grid, k=0, grid_range=(lo, hi), seed=0).to(dtype)
    with torch.no_grad():
        assert torch.equal(layer(x), torch.func.vmap(layer)(x.unsqueeze(1)).squeeze(1))


@pytest.mark.parametrize("k", [0, 3])
def test_uniform_fast_path_equals_cox_de_boor_for_large_batches(k: int) -> None:
    # batch * in above the size up to which the flat positions are cached: built per call from
    # [batch] and [in] parts (inputs inside, at the edge of and far beyond the extended grid)
    gen = torch.Generator().manual_seed(k)
    x = torch.rand(6000, 3, generator=gen, dtype=torch.float64) * 4 - 2
    x[:2] = torch.tensor([[-1e30, 1e30, 1.0], [1e6, -1.0, -1e6]], dtype=torch.float64)
    knots = extended_grid(3, 4, k).double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = bspline_basis(xa, knots, k)
    fast = uniform_bspline_basis(xb, -1.0, 0.5, 4, k)
    assert torch.allclose(fast, ref, atol=1e-6)
    if k == 0:  # piecewise constant: no gradient
        return
    w = torch.randn(3, 4 + k, generator=gen, dtype=torch.float64)
    (ga,) = torch.autograd.grad((ref * w).sum(), xa)
    (gb,) = torch.autograd.grad((fast * w).sum(), xb)
    assert torch.allclose(ga, gb, atol=1e-5)


def test_bspline_layer_keeps_no_batch_sized_constants() -> None:
    # the flat positions [1, batch * in] (int64) were cached per batch size and outlived the
    # layer: 195 MB after 32 batch sizes of 50_000 rows
    sizes = (20_011, 20_012)
    layer = KANLayer(16, 2, seed=0)
    with torch.no_grad():
        for batch in sizes:
            layer(torch.rand(batch, 16) * 2 - 1)
    del layer
    gc.collect()
    held = [
        o
        for o in gc.get_objects()
        if type(o) is torch.Tensor
        and o.dtype == torch.int64
        and o.numel() in [16 * b for b in sizes]
    ]
    assert not held


def test_fast_bspline_gradcheck_and_base_column() -> None:
    x = (torch.rand(8, 2, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: bspline_features(v, -1.0, 0.4, 5, 3, base=True), (x,))
    feats = bspline_features(x.detach(), -1.0, 0.4, 5, 3, base=True)
    assert torch.allclose(feats[..., 0], torch.nn.functional.silu(x.detach()))
    coef = torch.randn(2, 2, 8, dtype=torch.float64, requires_grad=True)
    bw = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, c, b, z: bspline_linear(v, c, b, z, -1.0, 0.4, 3), (x, coef, bw, bias)
    )
    # second derivatives (gradient penalties, Hessians) go through the Cox-de Boor recursion:
    # the fast path's once-differentiable backward raised or silently gave no gradient
    assert torch.autograd.gradgradcheck(
        lambda v, c, b, z: bspline_linear(v, c, b, z, -1.0, 0.4, 3), (x, coef, bw, bias)
    )
    assert torch.autograd.gradgradcheck(
        lambda v: bspline_features(v, -1.0, 0.4, 5, 2, base=False), (x,)
    )
    y = bspline_linear(x, coef, bw, bias, -1.0, 0.4, 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    penalty = torch.autograd.grad(g.pow(2).sum(), [coef, bw])
    assert all(float(p.abs().max()) > 0 for p in penalty)


def test_fast_bspline_matches_pykan_convention_outside_grid() -> None:
    # beyond the extended grid every basis function is 0 (pykan's B_batch); NaN is rejected
    x = torch.tensor([[-3.0], [-1.0 - 3 * 0.4], [1.0 + 3 * 0.4], [5.0]])
    fast = uniform_bspline_basis(x, -1.0, 0.4, 5, 3)
    ref = bspline_basis(x, extended_grid(1, 5, 3), 3)
    assert torch.allclose(fast, ref, atol=1e-6)
    assert fast[0].abs().sum() == 0
    assert fast[3].abs().sum() == 0
    with pytest.raises(ValueError, match="x must be finite"):
        uniform_bspline_basis(torch.tensor([[float("nan")]]), -1.0, 0.4, 5, 3)
    with pytest.raises(ValueError, match="h"):
        uniform_bspline_basis(torch.zeros(2, 1), -1.0, 0.0, 5, 3)
    with pytest.raises(ValueError, match="coef"):
        bspline_linear(torch.zeros(2, 3), torch.zeros(1, 2, 8), None, None, -1.0, 0.4, 3)
    with pytest.raises(ValueError, match="base_weight"):
        bspline_linear(
            torch.zeros(2, 2), torch.zeros(1, 2, 8), torch.zeros(2, 1), None, -1.0, 0.4, 3
        )
    with pytest.raises(ValueError, match="x must be finite"):
        KANLayer(1, 1)(torch.tensor([[float("inf")]]))


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
    a = 0.3  # FourierKAN's integer frequencies: cos(k x), sin(k x), k = 1, 2
    ref = torch.tensor([math.cos(a), math.cos(2 * a), math.sin(a), math.sin(2 * a)])
    assert torch.allclose(four, ref, atol=1e-6)


def test_fourier_space_uses_fourierkan_frequencies_and_does_not_alias_hidden_inputs() -> None:
    # GistNoesis/FourierKAN (fftKAN.py): cos(k x), sin(k x) for k = 1..gridsize, period 2 pi.
    # A basis of period 2 (frequencies k pi) made a hidden-layer input h and h - 2 (hidden values
    # reach |h| ~ 2) indistinguishable.
    x = torch.linspace(-3.0, 3.0, 13).unsqueeze(1)
    k = torch.arange(1, 5, dtype=torch.float32)
    ref = torch.cat([torch.cos(x.unsqueeze(-1) * k), torch.sin(x.unsqueeze(-1) * k)], dim=-1)
    assert torch.allclose(basis_values("fourier", x, 8), ref, atol=1e-6)
    h = torch.tensor([[1.5]])
    assert not torch.allclose(basis_values("fourier", h, 8), basis_values("fourier", h - 2, 8))


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
    assert layer.is_selected
    assert not layer.theta.requires_grad
    after = layer(x)
    # the discarded spaces only carried weight softmax(-5) ~ 0.007: the function barely moves
    assert (after - before).abs().max() < 0.1 * before.abs().max() + 0.05
    assert layer.selected_parameter_count() == KANLayer(2, 3).coef.numel() + 6 + 3


def test_skan_top_k_selection_keeps_the_kept_spaces_contribution() -> None:
    layer = SKANLayer(3, 2, seed=1)
    with torch.no_grad():
        layer.theta.copy_(torch.randn(3, len(SPACES), generator=torch.Generator().manual_seed(1)))
    alpha = layer.selection_weights().detach()
    top2 = alpha.topk(2, dim=1).indices
    x = torch.rand(32, 3) * 2 - 1
    # the kept part of the mixture before selection ...
    basis = torch.stack([layer._basis(s, x) for s in SPACES], dim=2)
    keep = torch.zeros_like(alpha).scatter_(1, top2, 1.0)
    kept = torch.einsum("bisn,is,oisn->bo", basis, alpha * keep, layer.coef.detach())
    kept = kept + torch.nn.functional.silu(x) @ layer.base_weight.detach().T  # type: ignore[union-attr]
    layer.select(2)
    assert torch.equal(layer.active, keep.bool())
    assert torch.allclose(layer.selection_weights().sum(dim=1), torch.ones(3))
    assert not layer.is_selected
    assert layer.theta.requires_grad
    # ... is exactly the selected layer's function (weights folded into the coefficients)
    assert torch.allclose(layer(x), kept + layer.bias, atol=1e-5)
    chosen = layer.select(1)
    assert chosen == [SPACES[int(i)] for i in alpha.argmax(dim=1)]
    assert layer.is_selected
    with pytest.raises(ValueError, match="top_k"):
        layer.select(6)


def test_train_skan_runs_three_stages_and_prunes() -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 2) * 2 - 1
    y = torch.sin(3 * x[:, 0]) + x[:, 1] ** 2
    model = SKAN([2, 3, 1], seed=0)
    losses = train_skan(model, x, y, steps=60, stages=(0.5, 0.25, 0.25), top_k=2)
    assert [len(v) for v in losses.values()] == [30, 15, 15]
    assert all(layer.is_selected for layer in model.skan_layers())
    assert losses["pruned"][-1] < 0.5 * losses["full"][0]
    with pytest.raises(ValueError, match="fresh S-KAN"):
        train_skan(model, x, y, steps=10)
    with pytest.raises(ValueError, match="sum to 1"):
        train_skan(SKAN([2, 1]), x, y, steps=10, stages=(0.5, 0.5, 0.5))


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


@pytest.mark.parametrize("base", [True, False])
def test_bspline_layer_matches_cox_de_boor_reference_with_input_gradient(base: bool) -> None:
    # the fast layer (one weight tensor, closed-form backward) against the plain formula
    # sum_m coef B_m(x) + base silu(x) + bias through the Cox-de Boor recursion, in float64,
    # with inputs inside, at the edge of and far beyond the extended grid
    gen = torch.Generator().manual_seed(3)
    layer = KANLayer(3, 4, grid=5, k=3, base=base, seed=0).double()
    with torch.no_grad():
        layer.bias.copy_(torch.randn(4, generator=gen, dtype=torch.float64))
    x = torch.rand(200, 3, generator=gen, dtype=torch.float64) * 6 - 3
    x[:3] = torch.tensor([[-1.0, 1.0, 0.0], [-2.2, 2.2, 1e6], [-1e6, 0.2, -0.6]])
    # exact float64 knots (extended_grid builds float32 ones)
    knots = (-1.0 + 0.4 * torch.arange(-3, 9, dtype=torch.float64)).expand(3, -1)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = torch.einsum("bim,oim->bo", bspline_basis(xa, knots, 3), layer.coef)
    if base:
        ref = ref + torch.nn.functional.silu(xa) @ layer.base_weight.T  # type: ignore[union-attr]
    ref = ref + layer.bias
    out = layer(xb)
    assert torch.allclose(out, ref, atol=1e-12)
    w = torch.randn(200, 4, generator=gen, dtype=torch.float64)
    (ga,) = torch.autograd.grad((ref * w).sum(), xa)
    (gb,) = torch.autograd.grad((out * w).sum(), xb)
    assert torch.allclose(ga, gb, atol=1e-10)
    # parameter gradients equal those of the reference formula
    (gw,) = torch.autograd.grad((layer(x) * w).sum(), layer.weight)
    coef = layer.coef.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    y = torch.einsum("bim,oim->bo", bspline_basis(x, knots, 3), coef) + bias
    if base:
        bw = layer.base_weight.detach().clone().requires_grad_()  # type: ignore[union-attr]
        y = y + torch.nn.functional.silu(x) @ bw.T
    y_grads = torch.autograd.grad((y * w).sum(), [coef, bias] + ([bw] if base else []))
    blocks = gw[:, 1:].view(4, 3, -1)
    assert torch.allclose(blocks[..., :8], y_grads[0], atol=1e-10)
    assert torch.allclose(gw[:, 0], y_grads[1], atol=1e-10)
    if base:
        assert torch.allclose(blocks[..., 8], y_grads[2], atol=1e-10)


def test_kan_layer_is_one_weight_tensor_with_views_and_loads_old_state_dicts() -> None:
    layer = KANLayer(3, 2, seed=0)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer.weight.shape == (2, 1 + 3 * 9)
    assert sum(p.numel() for p in layer.parameters()) == 2 * 3 * 8 + 2 * 3 + 2
    x = torch.rand(5, 3) * 2 - 1
    with torch.no_grad():  # the views write into the weight
        layer.coef.mul_(2.0)
        layer.bias.fill_(0.5)
    assert torch.equal(layer.weight[:, 0], torch.full((2,), 0.5))
    state = {"coef": layer.coef.detach().clone(), "bias": layer.bias.detach().clone()}
    state["base_weight"] = layer.base_weight.detach().clone()  # type: ignore[union-attr]
    state["knots"] = layer.knots.clone()
    fresh = KANLayer(3, 2, seed=1)
    fresh.load_state_dict(state)  # neuronkit-theory <= 0.5 layout
    assert torch.equal(fresh.weight, layer.weight)
    assert torch.equal(fresh(x), layer(x))
    model = KAN([3, 2, 1], seed=0)
    again = KAN([3, 2, 1], seed=5)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again(x), model(x))
    # same initial values as separately drawn coefficients / base weights (seeded)
    gen = torch.Generator().manual_seed(0)
    coef = torch.randn(2, 3, 8, generator=gen) * 0.1
    base_w = (2 * torch.rand(2, 3, generator=gen) - 1) * (1.0 / math.sqrt(3))
    fresh0 = KANLayer(3, 2, seed=0)
    assert torch.equal(fresh0.coef, coef)
    assert torch.equal(fresh0.base_weight, base_w)  # type: ignore[arg-type]
    assert torch.equal(fresh0.bias, torch.zeros(2))


@pytest.mark.parametrize("stages", [(0.5, 0.5, 0.0), (1.0, 0.0, 0.0), (0.5, 0.25, 0.25)])
def test_train_skan_takes_exactly_the_steps_asked(stages: tuple[float, float, float]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 2, generator=g) * 2 - 1
    losses = train_skan(SKAN([2, 1], seed=0), x, x.sum(1), steps=10, stages=stages)
    assert sum(len(v) for v in losses.values()) == 10
    assert len(losses["pruned"]) >= 1


def test_float64_knots_match_the_uniform_fast_path() -> None:
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)[:, None]
    slow = bspline_basis(x, extended_grid(1, 5, 3, dtype=torch.float64), 3)
    fast = uniform_bspline_basis(x, -1.0, 0.4, 5, 3)
    assert torch.allclose(slow, fast, rtol=0, atol=1e-13)


def test_a_transposed_input_view_gives_the_same_outputs() -> None:
    layer = KANLayer(3, 2, seed=0)
    x = torch.randn(3, 7)
    torch.testing.assert_close(layer(x.T), layer(x.T.contiguous()))


# --- audit fixes: one input check for every space, grid_range, train_skan arguments ------------


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_space_rejects_non_finite_input(space: str, bad: float) -> None:
    # chebyshev, fourier, rbf and wavelet layers returned NaN where bspline raised
    x = torch.full((2, 3), bad)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        KANLayer(3, 2, space=space)(x)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        KANLayer(3, 2, space=space).basis(x)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        KAN([3, 2], space=space)(x)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        SKANLayer(3, 2, spaces=(space,))(x)


@pytest.mark.parametrize("space", ["bspline", "chebyshev"])
def test_layers_name_x_of_the_wrong_dtype(space: str) -> None:
    with pytest.raises(TypeError, match=r"^x must be a floating tensor"):
        KANLayer(3, 2, space=space)(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^x must have the layer's dtype torch.float32"):
        KANLayer(3, 2, space=space)(torch.rand(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^x must have the layer's dtype"):
        SKANLayer(3, 2)(torch.rand(2, 3, dtype=torch.float64))
    layer = KANLayer(3, 2, space=space).double()  # a float64 model takes float64 inputs
    assert layer(torch.rand(2, 3, dtype=torch.float64)).dtype == torch.float64


def test_grid_range_must_be_a_pair_of_numbers() -> None:
    with pytest.raises(TypeError, match=r"^grid_range\[0\] must be a real number"):
        KANLayer(3, 2, grid_range=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^grid_range must be a \(low, high\) pair"):
        KANLayer(3, 2, grid_range=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^grid_range must be a \(low, high\) pair"):
        SKANLayer(3, 2, grid_range="ab")  # type: ignore[arg-type]
    assert KANLayer(3, 2, grid_range=[-2, 2]).grid_range == (-2.0, 2.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_train_skan_rejects_non_finite_targets(bad: float) -> None:
    x = torch.rand(8, 3)
    with pytest.raises(ValueError, match=r"^y must be finite"):
        train_skan(SKAN([3, 1]), x, torch.full((8,), bad), steps=3)
    with pytest.raises(ValueError, match=r"^y must be finite"):
        train_regression(KAN([3, 1]), x, torch.full((8,), bad), steps=1)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        train_skan(SKAN([3, 1]), torch.full((8, 3), bad), torch.ones(8), steps=3)


def test_train_skan_names_the_model_and_x() -> None:
    with pytest.raises(ValueError, match=r"^model must have one output"):
        train_skan(SKAN([3, 2]), torch.rand(8, 3), torch.rand(8), steps=3)
    with pytest.raises(ValueError, match=r"^model must give one output per row"):
        train_regression(KAN([3, 2]), torch.rand(8, 3), torch.rand(8), steps=1)
    with pytest.raises(ValueError, match=r"^x must be a tensor \[n, d\] with n >= 1"):
        train_skan(SKAN([3, 1]), torch.rand(0, 3), torch.ones(0), steps=3)
    model = SKAN([3, 1])
    with pytest.raises(TypeError, match=r"^x must have the layer's dtype"):
        train_skan(model, torch.rand(8, 3, dtype=torch.float64), torch.rand(8), steps=3)
    assert all(bool(layer.active.all()) for layer in model.skan_layers())  # left untouched


def test_train_regression_names_the_type_of_x_y_and_the_model_output() -> None:
    # numpy x showed only its shape ("got (16, 2)"); a tuple output failed on .numel
    x, y = torch.randn(16, 2), torch.randn(16)
    with pytest.raises(
        TypeError, match=r"^x must be a torch\.Tensor \[n, d\], got ndarray of shape \(16, 2\)"
    ):
        train_regression(KAN([2, 3, 1], seed=0), x.numpy(), y, steps=1)
    with pytest.raises(TypeError, match=r"^y must be a torch\.Tensor \[n\], got list"):
        train_regression(KAN([2, 3, 1], seed=0), x, y.tolist(), steps=1)
    with pytest.raises(
        TypeError, match=r"^model must return a tensor \[n\] or \[n, 1\], got tuple"
    ):
        train_regression(torch.nn.LSTM(2, 1), x, y, steps=1)


@pytest.mark.parametrize("space", ["chebyshev", "fourier"])
def test_kan_compiles_without_graph_breaks(space: str) -> None:
    # the finiteness check of the input is a host read: it broke fullgraph compilation
    model = KAN([3, 4, 1], space=space, seed=0)
    x = torch.rand(5, 3)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("base", [True, False])
def test_every_space_takes_an_empty_batch(space: str, base: bool) -> None:
    # only bspline did: the others failed to reshape [0, -1]
    x = torch.zeros(0, 2)
    assert KANLayer(2, 3, space=space, base=base)(x).shape == (0, 3)
    assert KAN([2, 4, 1], space=space, base=base)(x).shape == (0, 1)
    assert SKANLayer(2, 3, spaces=(space, "rbf") if space != "rbf" else (space,))(x).shape == (0, 3)


def test_train_skan_accepts_a_fresh_single_space_model_and_checks_top_k_first() -> None:
    x = torch.rand(16, 2) * 2 - 1
    y = x.sum(1)
    model = SKAN([2, 3, 1], spaces=["rbf"], seed=0)  # "selected" from the start: one space
    losses = train_skan(model, x, y, steps=6, top_k=1)
    assert sum(len(v) for v in losses.values()) == 6
    fresh = SKAN([2, 3, 1], spaces=["rbf", "fourier"], seed=0)
    before = [p.detach().clone() for p in fresh.parameters()]
    with pytest.raises(ValueError, match=r"^top_k must be at most the number of spaces \(2\)"):
        train_skan(fresh, x, y, steps=6, top_k=3)
    assert all(torch.equal(p, b) for p, b in zip(fresh.parameters(), before, strict=True))
    with pytest.raises(ValueError, match=r"^top_k must be at most the number of spaces \(1\)"):
        train_skan(SKAN([2, 1], spaces=["rbf"]), x, y, steps=6)  # the default top_k = 2


def test_bspline_layer_under_autograd_forward_ad() -> None:
    """Dual inputs take the plain features (the fast Function has no forward-mode rule): the
    tangent equals ``torch.func.jvp``'s."""
    import torch.autograd.forward_ad as fwAD

    layer = KANLayer(3, 2, seed=0)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9
    tangent = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    with fwAD.dual_level():
        out = fwAD.unpack_dual(layer(fwAD.make_dual(x, tangent)))
    expected, expected_tangent = torch.func.jvp(layer, (x,), (tangent,))
    torch.testing.assert_close(out.primal, expected)
    torch.testing.assert_close(out.tangent, expected_tangent)


def test_knots_follow_the_default_dtype() -> None:
    """``extended_grid(dtype=None)`` and the layers' knots use torch's default dtype, as the
    weights do (a float64 script got float32 knots beside float64 weights)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        layer = KANLayer(2, 3, seed=0)
        assert layer.knots.dtype == torch.float64
        assert extended_grid(2, 5, 3).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert extended_grid(2, 5, 3).dtype == previous


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_layers_round_the_basis_once(space: str, dtype: torch.dtype) -> None:
    """A bfloat16 / float16 layer evaluates its basis in float32 and rounds the values once:
    basis, output and input gradient stay within about one rounding of the float64 values of
    the same half-precision input and weights (computed in bfloat16 throughout, a 50-interval
    basis was off by up to 23 roundings, 18% of its largest value)."""
    x = (torch.rand(256, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(dtype)
    layer = KANLayer(3, 2, space=space, grid=50, seed=0).to(dtype)
    exact = KANLayer(3, 2, space=space, grid=50, seed=0).to(dtype).double()
    eps = torch.finfo(dtype).eps
    basis, ref = layer.basis(x).double(), exact.basis(x.double())
    assert (basis - ref).abs().max() <= eps * ref.abs().max()
    xg, xr = x.clone().requires_grad_(True), x.double().requires_grad_(True)
    y, y_ref = layer(xg), exact(xr)
    assert y.dtype == dtype
    assert (y.double() - y_ref).norm() <= eps * y_ref.norm()
    y.double().square().sum().backward()
    y_ref.square().sum().backward()
    assert xg.grad is not None
    assert xr.grad is not None
    assert (xg.grad.double() - xr.grad).norm() <= 2 * eps * xr.grad.norm()


def test_bspline_basis_with_repeated_knots_matches_scipy() -> None:
    # clamped (repeated) end knots: the 0/0 terms of Cox-de Boor are 0; they were NaN
    knots = torch.tensor([[0.0, 0, 0, 0, 1, 2, 3, 3, 3, 3]], dtype=torch.float64)
    x = torch.tensor([[0.0], [0.5], [1.0], [2.5], [2.999]], dtype=torch.float64)
    got = bspline_basis(x, knots, 3)[:, 0]
    ref = BSpline.design_matrix(x[:, 0].numpy(), knots[0].numpy(), 3).toarray()
    torch.testing.assert_close(got, torch.from_numpy(ref))


@pytest.mark.parametrize(
    ("x", "dtype"), [(1e20, torch.float32), (1e200, torch.float64), (-1e200, torch.float64)]
)
def test_wavelet_basis_of_huge_inputs_is_zero(x: float, dtype: torch.dtype) -> None:
    # u^2 overflowed to inf: (1 - inf) * exp(-inf) = NaN
    out = basis_values("wavelet", torch.tensor([[x]], dtype=dtype), 5)
    assert torch.equal(out, torch.zeros_like(out))


def test_extended_grid_refuses_knots_beyond_or_below_the_dtype_resolution() -> None:
    with pytest.raises(ValueError, match="range"):  # knots were -inf, NaN, inf
        extended_grid(1, 4, 3, (-1e308, 1e308), dtype=torch.float64)
    with pytest.raises(ValueError, match="range"):  # the last knot was inf in float32
        extended_grid(1, 4, 3, (-1e38, 1e38), dtype=torch.float32)
    with pytest.raises(ValueError, match="distinct knots"):  # all knots were 1.0
        extended_grid(1, 4, 3, (1.0, 1.0 + 1e-10), dtype=torch.float32)
    with pytest.raises(ValueError, match="hi - lo must be finite"):  # every value was NaN
        rbf_basis(torch.zeros(1, 1, dtype=torch.float64), 4, -1e308, 1e308)
