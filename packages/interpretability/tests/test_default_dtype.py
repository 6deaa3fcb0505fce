"""Behaviour under ``torch.set_default_dtype(torch.float64)`` (and mixed dtypes).

Buffers and parameters built inside the package must agree with each other and with the
tensors they meet, instead of mixing hard-coded float32 with default-dtype tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability.data import LNPopulation, on_off_population, orientation_population
from neuronkit.interpretability.description import compute_exemplars
from neuronkit.interpretability.visualization import (
    FourierImage,
    PixelImage,
    gaussian_blur,
    gaussian_kernel1d,
    spectrum_scale,
)


@pytest.fixture
def float64_default() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _init(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 8, 8, generator=gen, dtype=dtype) * 0.8 + 0.1


# --------------------------------------------------------------------- image parameterizations


@pytest.mark.usefixtures("float64_default")
def test_fourier_image_from_float64_init_under_float64_default() -> None:
    init = _init(torch.float64)
    param = FourierImage((1, 3, 8, 8), init=init)
    image = param()
    assert image.dtype == param.spectrum.dtype == torch.float64
    assert param.scale.dtype == param.color_matrix.dtype == torch.float64
    # exactly inverted in float64 (float32 would leave ~1e-7)
    assert (image - init).abs().max() < 1e-10


@pytest.mark.usefixtures("float64_default")
def test_fourier_image_with_color_matrix_under_float64_default() -> None:
    for matrix in (torch.eye(3), torch.eye(3, dtype=torch.float32)):
        param = FourierImage((1, 3, 8, 8), color_matrix=matrix)
        image = param()
        assert image.dtype == param.color_matrix.dtype == param.spectrum.dtype == torch.float64
    no_decor = FourierImage((1, 3, 8, 8), init=_init(torch.float64), decorrelate=False)
    assert no_decor().dtype == no_decor.color_matrix.dtype == torch.float64


@pytest.mark.usefixtures("float64_default")
def test_fourier_image_without_init_uses_default_dtype() -> None:
    param = FourierImage((2, 3, 8, 8))
    assert param.spectrum.dtype == param.scale.dtype == param.color_matrix.dtype == torch.float64
    assert param().dtype == torch.float64
    assert spectrum_scale(8, 8).dtype == torch.float64


@pytest.mark.usefixtures("float64_default")
def test_image_params_follow_a_float32_init_under_float64_default() -> None:
    init = _init(torch.float32)
    fourier = FourierImage((1, 3, 8, 8), init=init)
    assert fourier.spectrum.dtype == fourier.scale.dtype == fourier.color_matrix.dtype
    assert fourier().dtype == torch.float32
    pixel = PixelImage((1, 3, 8, 8), init=init)
    assert pixel.pixels.dtype == pixel().dtype == torch.float32


def test_pixel_image_keeps_a_float64_init() -> None:
    init = _init(torch.float64)
    param = PixelImage((1, 3, 8, 8), init=init)
    assert param.pixels.dtype == param().dtype == torch.float64
    assert (param() - init).abs().max() < 1e-10


def test_fourier_image_keeps_a_float64_init_under_float32_default() -> None:
    init = _init(torch.float64)
    param = FourierImage((1, 3, 8, 8), init=init)
    assert param().dtype == torch.float64
    assert (param() - init).abs().max() < 1e-10


@pytest.mark.usefixtures("float64_default")
def test_pixel_image_without_init_uses_default_dtype() -> None:
    assert PixelImage((1, 3, 4, 4))().dtype == torch.float64


def test_image_params_float32_values_unchanged() -> None:
    # float32 default: the historical float32 construction, bit for bit
    init = _init(torch.float32)
    fourier = FourierImage((1, 3, 8, 8), init=init)
    assert fourier.spectrum.dtype == fourier.scale.dtype == torch.float32
    scale64 = spectrum_scale(8, 8).double()
    assert torch.equal(spectrum_scale(8, 8), scale64.float())
    assert PixelImage((1, 3, 4, 4)).pixels.dtype == torch.float32


# ------------------------------------------------------------------------------ regularizers


def _reference_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = min(max(1, math.ceil(3.0 * sigma)), min(x.shape[-2:]) - 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@pytest.mark.usefixtures("float64_default")
def test_gaussian_kernel_is_float64_under_float64_default() -> None:
    k = gaussian_kernel1d(1.5)
    assert k.dtype == torch.float64
    t = torch.arange(-5, 6, dtype=torch.float64)
    expected = torch.exp(-0.5 * (t / 1.5) ** 2)
    torch.testing.assert_close(k, expected / expected.sum(), rtol=0, atol=1e-15)


def test_gaussian_kernel_dtype_argument() -> None:
    assert gaussian_kernel1d(1.0).dtype == torch.float32
    assert gaussian_kernel1d(1.0, dtype=torch.float64).dtype == torch.float64
    assert torch.equal(gaussian_kernel1d(1.0), gaussian_kernel1d(1.0, dtype=torch.float64).float())


def test_gaussian_blur_of_float64_images_uses_a_float64_kernel() -> None:
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = gaussian_blur(x, 1.3)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _reference_blur(x, 1.3), rtol=0, atol=1e-15)
    x32 = x.float()
    assert torch.equal(gaussian_blur(x32, 1.3), _reference_blur(x32, 1.3))


# ---------------------------------------------------------------------------------- cell types


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize("make", [on_off_population, orientation_population])
def test_cell_populations_are_float64_under_float64_default(
    make: Callable[..., LNPopulation],
) -> None:
    cells = make(n_per_type=3, seed=0)
    assert cells.filters.dtype == cells.gain.dtype == cells.bias.dtype == torch.float64
    if cells.quadrature is not None:
        assert cells.quadrature.dtype == torch.float64
    x = torch.randn(4, *cells.stimulus_shape)
    out = cells(x)
    assert out.dtype == torch.float64
    # computed in float64: an input change of 1e-12 is visible
    shifted = cells(x + 1e-12)
    assert not torch.equal(out, shifted)


@pytest.mark.parametrize("make", [on_off_population, orientation_population])
def test_cell_population_forward_keeps_the_input_dtype(make: Callable[..., LNPopulation]) -> None:
    cells = make(n_per_type=3, seed=0)
    assert cells.filters.dtype == torch.float32
    x = torch.randn(4, *cells.stimulus_shape, generator=torch.Generator().manual_seed(1))
    out32 = cells(x)
    assert out32.dtype == torch.float32
    out64 = cells(x.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- exemplars


def _exemplar_models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
    linear = nn.Sequential(nn.Flatten(), nn.Linear(32, 3), nn.ReLU())
    return conv, linear


@pytest.mark.usefixtures("float64_default")
def test_exemplar_masks_follow_activations_under_float64_default() -> None:
    conv, linear = _exemplar_models()
    x = torch.rand(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    for model, layer in ((conv, "1"), (linear, "2")):
        ex = compute_exemplars(model, x, layer, k=2)
        assert ex.activations.dtype == torch.float64
        assert ex.masks.dtype == ex.activations.dtype


def test_exemplar_masks_follow_activations_in_every_dtype() -> None:
    conv, linear = _exemplar_models()
    x = torch.rand(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float32, torch.float64):
        for model, layer in ((conv, "1"), (linear, "2")):
            ex = compute_exemplars(model.to(dtype), x.to(dtype), layer, k=2)
            assert ex.masks.dtype == ex.activations.dtype == dtype
