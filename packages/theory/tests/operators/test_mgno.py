"""MgNO: multigrid restriction/prolongation, the MgConv V-cycle and the MgNO model."""

import pytest
import torch
import torch.nn.functional as F

from neuronkit.theory.operators.baselines import UNet2d
from neuronkit.theory.operators.mgno import (
    MgConv,
    MgNO,
    coarse_size,
    count_parameters,
    level_sizes,
    prolong2d,
    restrict2d,
)


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((15, 15), "zeros"),
        ((16, 12), "zeros"),
        ((15, 8), "zeros"),
        ((16, 16), "circular"),
        ((8, 12), "circular"),
    ],
)
def test_prolongation_is_the_adjoint_of_restriction(size, mode) -> None:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 2, *size, generator=gen, dtype=torch.float64)
    rx = restrict2d(x, weight, mode)
    assert rx.shape[-2:] == (coarse_size(size[0], mode), coarse_size(size[1], mode))
    y = torch.randn(rx.shape, generator=gen, dtype=torch.float64)
    py = prolong2d(y, weight, size, mode)
    assert py.shape == x.shape
    assert torch.allclose((rx * y).sum(), (x * py).sum(), atol=1e-10)


def test_odd_grids_give_geometric_multigrid_transfers() -> None:
    # full weighting / linear interpolation stencils on the nested 2**k - 1 vertex grids
    w1 = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)
    weight = (w1[:, None] * w1[None, :])[None, None]
    coarse = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    fine = prolong2d(coarse, weight, (7, 7))
    # interior nodes of the fine grid interpolate to 1; next to the (zero) boundary: 1/2, 1/4
    assert torch.allclose(fine[0, 0, 1:-1, 1:-1], torch.ones(5, 5, dtype=torch.float64))
    assert fine[0, 0, 0, 3] == 0.5
    assert fine[0, 0, 0, 0] == 0.25
    x = torch.arange(49, dtype=torch.float64).reshape(1, 1, 7, 7)
    r = restrict2d(x, weight / 4)  # full weighting reproduces linear functions at coarse nodes
    assert torch.allclose(r[0, 0], x[0, 0, 1::2, 1::2])


def test_circular_transfers_wrap_around() -> None:
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 0, 0] = 1.0  # picks the up-left neighbour: (2i - 1, 2j - 1)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    r = restrict2d(x, weight, "circular")
    assert r[0, 0, 0, 0] == x[0, 0, 3, 3]
    assert r[0, 0, 1, 1] == x[0, 0, 1, 1]
    p = prolong2d(torch.ones(1, 1, 2, 2), weight, (4, 4), "circular")
    assert p[0, 0, 3, 3] == 1.0
    assert p[0, 0, 1, 1] == 1.0
    assert p.sum() == 4.0


def test_level_sizes() -> None:
    assert level_sizes((31, 31), 4) == [(31, 31), (15, 15), (7, 7), (3, 3)]
    assert level_sizes((32, 16), 3, "circular") == [(32, 16), (16, 8), (8, 4)]
    with pytest.raises(ValueError, match="cannot be coarsened"):
        level_sizes((12, 12), 4, "circular")
    with pytest.raises(ValueError, match="cannot be coarsened"):
        level_sizes((7, 7), 4)


def _reference_vcycle(mg: MgConv, f: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 of the paper for two levels, written out with plain convolutions."""

    def conv(module, x):
        return F.conv2d(x, module.weight, padding=1)

    a1, a2 = mg.operators[0], mg.operators[1]
    b1 = mg.smoothers[0][0]
    b2a, b2b = mg.smoothers[1]
    u1 = conv(b1, f)
    f2 = F.conv2d(f - conv(a1, u1), mg.restrictions[0].weight, stride=2)  # odd grid: no padding
    u2 = conv(b2a, f2)
    u2 = u2 + conv(b2b, f2 - conv(a2, u2))
    return u1 + F.conv_transpose2d(u2, mg.prolongations[0].weight, stride=2)


def test_mgconv_matches_the_written_out_vcycle_and_is_linear() -> None:
    torch.manual_seed(0)
    mg = MgConv(2, 3, levels=2, smoothing=[1, 2]).double()
    f = torch.randn(2, 2, 15, 15, dtype=torch.float64)
    g = torch.randn(2, 2, 15, 15, dtype=torch.float64)
    assert torch.allclose(mg(f), _reference_vcycle(mg, f), atol=1e-12)
    assert torch.allclose(mg(2 * f - 3 * g), 2 * mg(f) - 3 * mg(g), atol=1e-10)
    single = MgConv(2, 3, levels=1, smoothing=[1]).double()
    assert torch.allclose(single(f), F.conv2d(f, single.smoothers[0][0].weight, padding=1))


def test_periodic_mgconv_commutes_with_shifts() -> None:
    torch.manual_seed(1)
    mg = MgConv(1, 4, levels=3, padding_mode="circular", post_smoothing=[1, 1, 0]).double()
    f = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    shift = (4, -8)  # multiples of the coarsest stride 2**(levels - 1)
    got = mg(torch.roll(f, shift, dims=(2, 3)))
    assert torch.allclose(got, torch.roll(mg(f), shift, dims=(2, 3)), atol=1e-10)


def test_mgno_shapes_resolution_and_seed() -> None:
    model = MgNO(2, 1, width=6, num_layers=2, levels=3, seed=5)
    again = MgNO(2, 1, width=6, num_layers=2, levels=3, seed=5)
    x = torch.randn(3, 2, 15, 15)
    assert model(x).shape == (3, 1, 15, 15)
    assert torch.equal(model(x), again(x))
    assert model(torch.randn(1, 2, 31, 31)).shape == (1, 1, 31, 31)  # any compatible grid
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    # no lifting: the first layer reads the 2 input channels directly
    assert model.mgconvs[0].in_channels == 2
    assert model.pointwise[0].in_channels == 2
    periodic = MgNO(1, 1, width=4, num_layers=2, levels=3, padding_mode="circular", seed=0)
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(
        periodic(torch.roll(x, 4, dims=2)), torch.roll(periodic(x), 4, dims=2), atol=1e-5
    )


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="padding_mode"):
        MgNO(padding_mode="reflect")
    with pytest.raises(ValueError, match="activation"):
        MgNO(activation="softplus")
    with pytest.raises(ValueError, match="smoothing must have one entry per level"):
        MgConv(1, 2, levels=3, smoothing=[1, 1])
    with pytest.raises(ValueError, match="smoothing must be >= 1"):
        MgConv(1, 2, levels=2, smoothing=[0, 1])
    model = MgNO(1, 1, width=4, num_layers=1, levels=3, padding_mode="circular")
    with pytest.raises(ValueError, match="x must have 1 channels"):
        model(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="cannot be coarsened"):
        model(torch.randn(1, 1, 15, 15))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        model(torch.randn(16, 16))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(1, 1, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="coarse grid"):
        prolong2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3), (15, 15))
    with pytest.raises(ValueError, match="weight must have 3x3"):
        restrict2d(torch.randn(1, 1, 8, 8), torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="n must be even"):
        coarse_size(7, "circular")


def test_seeds_and_non_finite_inputs_are_checked() -> None:
    for cls in (MgNO, UNet2d):
        with pytest.raises(ValueError, match=r"^seed must be < 2\*\*64"):
            cls(seed=2**70)  # was torch's "Overflow when unpacking long"
        with pytest.raises(ValueError, match=r"^seed must be >= 0"):
            cls(seed=-1)
    assert torch.equal(
        MgNO(width=4, num_layers=1, levels=2, seed=2**64 - 1).output.weight,
        MgNO(width=4, num_layers=1, levels=2, seed=2**64 - 1).output.weight,
    )
    model = MgNO(width=4, num_layers=1, levels=2, seed=0)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        model(torch.full((1, 1, 7, 7), float("nan")))  # was a NaN output
