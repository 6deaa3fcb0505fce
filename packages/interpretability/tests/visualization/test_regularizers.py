"""Tests of the activation-maximization regularizers."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.visualization.regularizers import (
    L2,
    Blur,
    CenterBias,
    TotalVariation,
    blur_penalty,
    center_mask,
    gaussian_blur,
    gaussian_kernel1d,
    l2_penalty,
    total_variation,
)


def test_total_variation_by_hand() -> None:
    x = torch.zeros(1, 1, 3, 3)
    x[..., :, 2] = 1.0  # a vertical edge between columns 1 and 2
    # forward differences on the 2x2 grid: dx = [[0, 1], [0, 1]], dy = 0
    tv2 = total_variation(x, beta=2.0, eps=0.0)
    torch.testing.assert_close(tv2, torch.tensor([0.5]))
    tv1 = total_variation(x, beta=1.0, eps=0.0)
    torch.testing.assert_close(tv1, torch.tensor([0.5]))
    assert total_variation(torch.ones(2, 3, 4, 4), eps=0.0).abs().max() == 0


def test_l2_and_blur_penalties() -> None:
    x = torch.full((2, 1, 4, 4), 3.0)
    torch.testing.assert_close(l2_penalty(x, center=1.0), torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(blur_penalty(x, 1.0), torch.zeros(2))
    noisy = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    smooth = gaussian_blur(noisy, 2.0)
    assert blur_penalty(smooth, 1.0) < blur_penalty(noisy, 1.0)


def test_gaussian_blur_properties() -> None:
    k = gaussian_kernel1d(1.5)
    assert torch.isclose(k.sum(), torch.tensor(1.0))
    torch.testing.assert_close(k, k.flip(0))
    const = torch.full((1, 2, 6, 7), 0.3)
    torch.testing.assert_close(gaussian_blur(const, 1.0), const)
    x = torch.rand(2, 3, 8, 8)
    assert gaussian_blur(x, 0.0) is x
    assert gaussian_blur(x, 1.0).shape == x.shape
    # blurring an impulse spreads it symmetrically
    imp = torch.zeros(1, 1, 9, 9)
    imp[..., 4, 4] = 1.0
    out = gaussian_blur(imp, 1.0)[0, 0]
    torch.testing.assert_close(out, out.T)
    assert out[4, 4] == out.max()


def test_center_mask() -> None:
    m = center_mask(10, 8, 0.5)
    assert m.shape == (10, 8)
    assert m.sum() == 5 * 4
    assert m[2:7, 2:6].all()
    assert center_mask(5, 5, 1.0).all()


def test_center_bias_phases() -> None:
    cb = CenterBias(phases=3, start=0.5, sigma=1.0)
    assert cb.schedule(0.0) == (0.5, 1.0)
    assert cb.schedule(0.5) == (0.75, 0.5)
    assert cb.schedule(0.99) == (1.0, 0.0)
    grad = torch.ones(1, 1, 8, 8)
    early = cb.filter_gradient(grad, 0.0)
    assert early[..., 0, 0] == 0
    assert early[..., 4, 4] > 0
    torch.testing.assert_close(cb.filter_gradient(grad, 0.9), grad)  # last phase: identity
    assert CenterBias(phases=1, sigma=0.0).filter_gradient(grad, 0.0) is grad


def test_regularizer_objects_scale_their_penalty() -> None:
    x = torch.rand(3, 1, 6, 6)
    torch.testing.assert_close(TotalVariation(2.0).penalty(x, 0.0), 2 * total_variation(x))
    torch.testing.assert_close(L2(0.5, 0.1).penalty(x, 0.0), 0.5 * l2_penalty(x, 0.1))
    torch.testing.assert_close(Blur(3.0, 1.0).penalty(x, 0.0), 3 * blur_penalty(x, 1.0))
    assert CenterBias().penalty(x, 0.0) is None


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="x must be an image batch"):
        total_variation(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="at least 2x2"):
        total_variation(torch.zeros(1, 1, 1, 4))
    with pytest.raises(TypeError, match="floating-point"):
        l2_penalty(torch.zeros(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel1d(0.0)
    with pytest.raises(ValueError, match="fraction"):
        center_mask(4, 4, 0.0)
    with pytest.raises(ValueError, match="weight"):
        TotalVariation(-1.0)
    with pytest.raises(ValueError, match="phases"):
        CenterBias(phases=0)
    with pytest.raises(ValueError, match="start"):
        CenterBias(start=1.5)
