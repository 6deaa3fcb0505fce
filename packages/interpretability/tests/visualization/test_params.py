"""Tests of the image parameterizations (pixel, Fourier, color decorrelation)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.interpretability.visualization.params import (
    IMAGENET_COLOR_CORRELATION,
    FourierImage,
    ImageParam,
    PixelImage,
    color_correlation_sqrt,
    image_param,
    spectrum_scale,
)


@pytest.mark.parametrize("cls", [PixelImage, FourierImage])
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (1, 1, 8, 8)])
def test_init_from_image_is_exact(cls, shape) -> None:
    target = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    before = target.clone()
    param = cls(shape, init=target)
    torch.testing.assert_close(param().detach(), target, atol=1e-5, rtol=0)
    torch.testing.assert_close(target, before)  # not mutated


def test_init_without_range_and_3d_broadcast() -> None:
    img = torch.randn(3, 6, 7)
    param = FourierImage((2, 3, 6, 7), init=img, value_range=None)
    out = param().detach()
    torch.testing.assert_close(out[0], img, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], img, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["pixel", "fourier"])
def test_random_start_is_seeded_and_in_range(kind) -> None:
    a = image_param(kind, (2, 3, 8, 8), seed=1, value_range=(-1.0, 2.0))()
    b = image_param(kind, (2, 3, 8, 8), seed=1, value_range=(-1.0, 2.0))()
    c = image_param(kind, (2, 3, 8, 8), seed=2, value_range=(-1.0, 2.0))()
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert a.min() >= -1.0
    assert a.max() <= 2.0


def test_spectrum_scale_is_one_over_f_with_unit_rms() -> None:
    scale = spectrum_scale(16, 16, 1.0)
    assert scale.shape == (16, 9)
    assert torch.isclose(scale.pow(2).mean(), torch.tensor(1.0), atol=1e-5)
    # DC (clamped to 1/16) and the lowest frequencies are largest; amplitude ~ 1/f
    assert scale[0, 0] == scale.max()
    torch.testing.assert_close(scale[0, 2] / scale[0, 4], torch.tensor(2.0))
    torch.testing.assert_close(spectrum_scale(5, 7, 0.0), torch.ones(5, 4))


def test_fourier_gradient_is_whitened_towards_low_frequencies() -> None:
    """A unit-norm random spectrum renders an image dominated by low frequencies."""
    param = FourierImage((1, 1, 32, 32), sd=1.0, value_range=None, seed=0)
    img = param().detach()[0, 0]
    power = torch.fft.rfft2(img).abs()
    assert power[:3, :3].mean() > 4 * power[12:17, 12:].mean()


def test_color_correlation_sqrt_squares_to_covariance() -> None:
    gen = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.4, 1.0]])
    data = torch.einsum("dc,nchw->ndhw", mix, torch.randn(50, 3, 4, 4, generator=gen))
    m = color_correlation_sqrt(data)
    cov = torch.cov(data.transpose(0, 1).reshape(3, -1))
    ratio = (m @ m.T) / cov
    torch.testing.assert_close(ratio, torch.full((3, 3), float(ratio[0, 0])), rtol=1e-3, atol=0)
    assert torch.isclose(m.norm(dim=0).max(), torch.tensor(1.0))


def test_decorrelated_fourier_mixes_channels() -> None:
    param = FourierImage((1, 3, 8, 8), sd=1.0, value_range=None, seed=0)
    expected = torch.tensor(IMAGENET_COLOR_CORRELATION)
    torch.testing.assert_close(param.color_matrix, expected / expected.norm(dim=0).max())
    plain = FourierImage((1, 3, 8, 8), decorrelate=False, seed=0)
    torch.testing.assert_close(plain.color_matrix, torch.eye(3))
    custom = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    img = torch.rand(1, 3, 8, 8) * 0.8 + 0.1
    p = FourierImage((1, 3, 8, 8), init=img, color_matrix=custom)
    torch.testing.assert_close(p().detach(), img, atol=1e-5, rtol=0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        PixelImage((1, 8, 8))
    with pytest.raises(ValueError, match="shape\\[2\\]"):
        PixelImage((1, 1, 0, 8))
    with pytest.raises(ValueError, match="value_range"):
        PixelImage((1, 1, 8, 8), value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="init must have shape"):
        FourierImage((1, 1, 8, 8), init=torch.zeros(1, 1, 7, 8))
    with pytest.raises(TypeError, match="init"):
        PixelImage((1, 1, 2, 2), init=torch.zeros(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="init must be finite"):
        PixelImage((1, 1, 2, 2), init=torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="color_matrix must have shape"):
        FourierImage((1, 3, 8, 8), color_matrix=torch.eye(2))
    with pytest.raises(ValueError, match="invertible"):
        FourierImage((1, 2, 8, 8), color_matrix=torch.ones(2, 2))
    with pytest.raises(ValueError, match="kind"):
        image_param("wavelet", (1, 1, 4, 4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="images"):
        color_correlation_sqrt(torch.zeros(0, 3, 2, 2))
    with pytest.raises(ValueError, match="vary"):
        color_correlation_sqrt(torch.zeros(4, 3, 2, 2))


def test_color_correlation_of_one_channel_is_one() -> None:
    sqrt = color_correlation_sqrt(
        torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    )
    assert torch.equal(sqrt, torch.ones(1, 1))


def test_a_subclass_without_pre_names_itself_and_the_method() -> None:
    class NoPre(ImageParam):
        pass

    with pytest.raises(NotImplementedError, match=r"NoPre must implement _pre\(self\)"):
        NoPre((1, 1, 4, 4), None)()


def test_raw_pixel_image_renders_a_copy_of_its_parameter() -> None:
    param = PixelImage((1, 2, 4, 4), value_range=None, sd=1.0)
    image = param()
    assert image is not param.pixels
    assert not isinstance(image, torch.nn.Parameter)
    torch.testing.assert_close(image, param.pixels.detach())
    image.detach().mul_(0)  # an edit of the image leaves the parameter
    assert param.pixels.abs().sum() > 0
    image.sum().backward()  # and the gradient still reaches it
    assert param.pixels.grad is not None
    torch.testing.assert_close(param.pixels.grad, torch.ones(1, 2, 4, 4))


def test_init_and_decorrelate_of_the_wrong_type_are_named() -> None:
    init = torch.rand(1, 3, 8, 8)
    for cls in (PixelImage, FourierImage):
        with pytest.raises(TypeError, match="init must be Tensor, got list"):
            cls((1, 3, 8, 8), init=init.tolist())
    with pytest.raises(TypeError, match="decorrelate must be bool"):
        FourierImage((1, 3, 8, 8), decorrelate="no")  # type: ignore[arg-type]
