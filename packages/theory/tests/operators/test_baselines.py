"""U-Net baseline for operator learning."""

import pytest
import torch

from neuronkit.theory.operators import MgNO, UNet2d, count_parameters


def test_shapes_on_odd_and_even_grids_and_seed() -> None:
    net = UNet2d(2, 1, width=4, depth=2, seed=3)
    for size in (15, 16, 31):
        assert net(torch.randn(2, 2, size, size)).shape == (2, 1, size, size)
    x = torch.randn(1, 2, 15, 15)
    assert torch.equal(net(x), UNet2d(2, 1, width=4, depth=2, seed=3)(x))


def test_periodic_unet_commutes_with_shifts() -> None:
    net = UNet2d(1, 1, width=4, depth=2, padding_mode="circular", seed=0).double()
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    assert torch.allclose(net(torch.roll(x, (4, 8), (2, 3))), torch.roll(net(x), (4, 8), (2, 3)))


def test_baseline_in_the_reproduction_is_larger_than_mgno() -> None:
    assert count_parameters(UNet2d(1, 1, width=10, depth=2)) > count_parameters(
        MgNO(1, 1, width=10, num_layers=3, levels=3)
    )


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="padding_mode"):
        UNet2d(padding_mode="reflect")
    with pytest.raises(ValueError, match="depth"):
        UNet2d(depth=-1)
    net = UNet2d(1, 1, width=2, depth=2)
    with pytest.raises(ValueError, match="x must have 1 channels"):
        net(torch.randn(1, 3, 15, 15))
    with pytest.raises(ValueError, match=r"too small|cannot be coarsened"):
        net(torch.randn(1, 1, 2, 2))
