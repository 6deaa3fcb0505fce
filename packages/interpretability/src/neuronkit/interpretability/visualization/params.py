"""Image parameterizations for activation maximization.

An image parameterization is a small ``nn.Module`` whose parameters are what the optimizer
updates and whose ``forward()`` renders the image batch ``[B, C, H, W]``. The choice of
parameterization changes the geometry of gradient ascent (Olah, Mordvintsev & Schubert,
"Feature Visualization", Distill 2017; the Lucid / Lucent libraries):

* :class:`PixelImage`: one free value per pixel (the parameterization of Erhan et al. 2009,
  Simonyan et al. 2014, Yosinski et al. 2015 and Nguyen, Yosinski & Clune 2016, "Multifaceted
  Feature Visualization").
* :class:`FourierImage`: the image is the inverse real FFT of a learned spectrum whose
  entries are scaled by ``1 / f**decay_power`` (natural images have a roughly ``1/f``
  amplitude spectrum), so plain gradient steps are whitened: low frequencies move as easily
  as high ones and high-frequency adversarial patterns are suppressed. Channels can be
  *color-decorrelated*: the optimized channels are mixed by the square root of the data's
  channel covariance (:func:`color_correlation_sqrt`, or :data:`IMAGENET_COLOR_CORRELATION`
  for RGB), so a unit step in every optimized channel is a step of natural color statistics.

Both can squash the result into a value range with a sigmoid (``value_range=(low, high)``)
and both can start from a given image (``init=``), exactly inverted through the squash, the
color mixing and the FFT, which is what facet-initialized optimization (Nguyen et al. 2016)
needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_type,
    torch_generator,
)

__all__ = [
    "IMAGENET_COLOR_CORRELATION",
    "FourierImage",
    "ImageParam",
    "PixelImage",
    "color_correlation_sqrt",
    "image_param",
    "spectrum_scale",
]

#: Square root of the RGB channel covariance of ImageNet images (rows: output channels),
#: normalized so that its largest column has unit norm. A constant of natural-image
#: statistics (the same numbers appear in Lucid), used when ``decorrelate=True`` on 3 channels.
IMAGENET_COLOR_CORRELATION: tuple[tuple[float, float, float], ...] = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)

_EPS = 1e-3


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 4:
        raise ValueError(f"shape must be a sequence [B, C, H, W] of 4 sizes, got {shape!r:.80}")
    for i, s in enumerate(shape):
        check_number(f"shape[{i}]", s, ge=1, integer=True)
    b, c, h, w = (int(s) for s in shape)
    return b, c, h, w


def _check_range(value_range: tuple[float, float] | None) -> tuple[float, float] | None:
    if value_range is None:
        return None
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not float(value_range[0]) < float(value_range[1])
    ):
        raise ValueError(
            "value_range must be a (low, high) pair with low < high or None, got "
            f"{value_range!r:.80}"
        )
    return float(value_range[0]), float(value_range[1])


def _check_init(init: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
    check_type("init", init, torch.Tensor)
    check_floating("init", init)
    if init.ndim == 3:
        init = init.unsqueeze(0).expand(shape[0], -1, -1, -1)
    if tuple(init.shape) != shape:
        raise ValueError(
            f"init must have shape {list(shape)} (or [C, H, W] for every batch item), "
            f"got {tuple(init.shape)}"
        )
    check_finite("init", init)
    return init.detach().clone()


def _param_dtype(init: torch.Tensor | None) -> torch.dtype:
    """The dtype of a parameterization's tensors: ``init``'s floating dtype when given (half
    precision is upcast to float32, as the FFT and the sigmoid inverse need), else the
    default dtype."""
    if init is None:
        return torch.get_default_dtype()
    check_type("init", init, torch.Tensor)
    if not init.is_floating_point():
        return torch.get_default_dtype()
    return torch.promote_types(init.dtype, torch.float32)


def color_correlation_sqrt(images: torch.Tensor) -> torch.Tensor:
    """Square root ``M`` of the channel covariance of ``images`` (``M @ M.T = cov``).

    Args:
        images: ``[N, C, H, W]`` (or ``[N, C]``) data whose color statistics to imitate.

    Returns:
        ``[C, C]`` matrix ``U diag(sqrt(lambda))`` from the eigendecomposition of the channel
        covariance, scaled so that its largest column has unit norm (as in Lucid), for
        :class:`FourierImage` (``color_matrix=``).
    """
    check_type("images", images, torch.Tensor)
    if images.ndim not in (2, 4) or images.shape[0] == 0:
        raise ValueError(
            f"images must be a non-empty [N, C, H, W] or [N, C] tensor, got {tuple(images.shape)}"
        )
    check_finite("images", images)
    channels = images.shape[1]
    flat = images.detach().double().transpose(0, 1).reshape(channels, -1)
    if flat.shape[1] < 2:
        raise ValueError("images must hold at least 2 values per channel")
    cov = torch.cov(flat).reshape(channels, channels)  # a 0-d variance for one channel
    evals, evecs = torch.linalg.eigh(cov)
    sqrt = evecs * evals.clamp_min(0.0).sqrt()[None, :]
    norm = sqrt.norm(dim=0).max()
    if float(norm) == 0.0:
        raise ValueError("images must vary in at least one channel (covariance is zero)")
    return (sqrt / norm).to(images.dtype)


def spectrum_scale(
    height: int, width: int, decay_power: float = 1.0, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Per-frequency amplitude ``1 / max(f, 1/max(H, W)) ** decay_power`` of the real FFT.

    ``f`` is the radial frequency (cycles per pixel) of each bin of ``torch.fft.rfft2`` on an
    ``[H, W]`` image; the result ``[H, W // 2 + 1]`` is normalized to unit root mean square so
    that a white spectrum of standard deviation ``sd`` gives pixels of about that scale.
    Computed in float64 and returned in ``dtype`` (default: ``torch.get_default_dtype()``).
    """
    check_number("height", height, ge=1, integer=True)
    check_number("width", width, ge=1, integer=True)
    check_number("decay_power", decay_power, ge=0.0)
    fy = torch.fft.fftfreq(int(height), dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(int(width), dtype=torch.float64)[None, :]
    freqs = (fx * fx + fy * fy).sqrt()
    scale = freqs.clamp_min(1.0 / max(height, width)).pow(-float(decay_power))
    scale = scale / scale.pow(2).mean().sqrt()
    return scale.to(torch.get_default_dtype() if dtype is None else dtype)


class ImageParam(nn.Module):
    """Base class of image parameterizations: ``forward()`` renders ``[B, C, H, W]``.

    Subclasses store their optimized tensors as ``nn.Parameter`` s and implement
    :meth:`_pre` (the unsquashed image). ``value_range=(low, high)`` maps it through
    ``low + (high - low) * sigmoid(.)``; ``None`` returns its values unchanged (a copy when
    it is a parameter, so that an optimizer step or an in-place edit of one does not change
    the other).
    """

    def __init__(self, shape: Sequence[int], value_range: tuple[float, float] | None) -> None:
        super().__init__()
        self.shape: tuple[int, int, int, int] = _check_shape(shape)
        self.value_range = _check_range(value_range)

    def _pre(self) -> torch.Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _pre(self) -> torch.Tensor, the unsquashed "
            f"[B, C, H, W] image (ImageParam subclasses render through it)"
        )

    def _squash(self, pre: torch.Tensor) -> torch.Tensor:
        if self.value_range is None:  # a new tensor, never the parameter itself
            return pre.clone() if isinstance(pre, nn.Parameter) else pre
        low, high = self.value_range
        return low + (high - low) * torch.sigmoid(pre)

    def _unsquash(self, image: torch.Tensor) -> torch.Tensor:
        if self.value_range is None:
            return image
        low, high = self.value_range
        unit = ((image - low) / (high - low)).clamp(_EPS, 1.0 - _EPS)
        return torch.log(unit) - torch.log1p(-unit)

    def forward(self) -> torch.Tensor:
        """The image batch ``[B, C, H, W]``."""
        return self._squash(self._pre())


class PixelImage(ImageParam):
    """One free parameter per pixel: ``[B, C, H, W]``.

    Args:
        shape: ``[B, C, H, W]``.
        init: start image ``[B, C, H, W]`` or ``[C, H, W]`` (inside ``value_range``; values
            at its edges are pulled in by 0.1% so the sigmoid can be inverted); default:
            Gaussian noise of standard deviation ``sd`` in the unsquashed space. The
            parameter takes ``init``'s floating dtype (half precision: float32), or the
            default dtype without ``init``.
        sd: noise level of the random start.
        value_range: ``(low, high)`` sigmoid squash, or ``None`` for raw values.
        seed: seed (or ``torch.Generator``) for the random start.
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        init: torch.Tensor | None = None,
        sd: float = 0.01,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        seed: int | torch.Generator | None = 0,
    ) -> None:
        super().__init__(shape, value_range)
        check_number("sd", sd, ge=0.0)
        if init is not None:
            dtype = _param_dtype(init)
            pre = self._unsquash(_check_init(init, self.shape).to(dtype))
        else:
            pre = torch.randn(self.shape, generator=torch_generator(seed)) * float(sd)
        self.pixels = nn.Parameter(pre)

    def _pre(self) -> torch.Tensor:
        return self.pixels


class FourierImage(ImageParam):
    """Image rendered from a ``1/f``-scaled, optionally color-decorrelated spectrum.

    ``image = squash(M @ irfft2(spectrum * scale))`` per pixel, where ``scale`` is
    :func:`spectrum_scale` and ``M`` mixes channels (color decorrelation).

    Args:
        shape: ``[B, C, H, W]``.
        init: start image (``[B, C, H, W]`` or ``[C, H, W]``), inverted exactly through the
            squash, ``M`` and the FFT; default: a white random spectrum of scale ``sd``.
            The spectrum, ``scale`` and ``color_matrix`` take ``init``'s floating dtype (half
            precision: float32), or the default dtype without ``init``.
        sd: noise level of the random start.
        decay_power: exponent of the ``1/f`` amplitude scaling (0: plain Fourier basis).
        decorrelate: mix channels by ``color_matrix`` (default: the ImageNet RGB matrix when
            ``C == 3``, identity otherwise); ``False`` uses the identity.
        color_matrix: ``[C, C]`` channel mixing, e.g. :func:`color_correlation_sqrt` of your
            data; must be invertible.
        value_range: ``(low, high)`` sigmoid squash, or ``None``.
        seed: seed (or ``torch.Generator``) for the random start.

    Attributes:
        spectrum: ``[B, C, H, W // 2 + 1, 2]`` real and imaginary parts (the parameter).
        scale: ``[H, W // 2 + 1]`` the :func:`spectrum_scale` (a buffer).
        color_matrix: ``[C, C]`` the channel mixing (a buffer).
    """

    scale: torch.Tensor
    color_matrix: torch.Tensor

    def __init__(
        self,
        shape: Sequence[int],
        *,
        init: torch.Tensor | None = None,
        sd: float = 0.01,
        decay_power: float = 1.0,
        decorrelate: bool = True,
        color_matrix: torch.Tensor | None = None,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        seed: int | torch.Generator | None = 0,
    ) -> None:
        super().__init__(shape, value_range)
        check_number("sd", sd, ge=0.0)
        check_number("decay_power", decay_power, ge=0.0)
        check_type("decorrelate", decorrelate, bool)
        b, c, h, w = self.shape
        if color_matrix is not None:
            check_type("color_matrix", color_matrix, torch.Tensor)
            if tuple(color_matrix.shape) != (c, c):
                raise ValueError(
                    f"color_matrix must have shape [{c}, {c}] (channels), "
                    f"got {tuple(color_matrix.shape)}"
                )
            check_finite("color_matrix", color_matrix)
        dtype = _param_dtype(init)
        if not decorrelate:
            matrix = torch.eye(c, dtype=dtype)
        elif color_matrix is not None:
            matrix = color_matrix.detach().to(dtype).clone()
        elif c == 3:
            matrix = torch.tensor(IMAGENET_COLOR_CORRELATION, dtype=dtype)
            matrix = matrix / matrix.norm(dim=0).max()
        else:
            matrix = torch.eye(c, dtype=dtype)
        if abs(float(torch.linalg.det(matrix.double()))) < 1e-10:
            raise ValueError("color_matrix must be invertible (its determinant is ~0)")
        self.decay_power = float(decay_power)
        self.register_buffer("scale", spectrum_scale(h, w, decay_power, dtype=dtype))
        self.register_buffer("color_matrix", matrix)
        if init is not None:
            target = self._unsquash(_check_init(init, self.shape).to(dtype))
            spectrum = self._analyze(target)
        else:
            spectrum = torch.randn(
                (b, c, h, w // 2 + 1, 2), generator=torch_generator(seed), dtype=dtype
            ) * float(sd)
        self.spectrum = nn.Parameter(spectrum)

    def _analyze(self, pre: torch.Tensor) -> torch.Tensor:
        """The spectrum parameter whose rendering (before the squash) is ``pre``."""
        inverse = torch.linalg.inv(self.color_matrix.double()).to(self.color_matrix.dtype)
        mixed = torch.einsum("dc,bchw->bdhw", inverse, pre)
        freq = torch.fft.rfft2(mixed, norm="ortho") / self.scale
        return torch.view_as_real(freq).contiguous()

    def _pre(self) -> torch.Tensor:
        h, w = self.shape[2], self.shape[3]
        freq = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(freq, s=(h, w), norm="ortho")
        return torch.einsum("dc,bchw->bdhw", self.color_matrix, image)


def image_param(
    kind: Literal["pixel", "fourier"],
    shape: Sequence[int],
    *,
    init: torch.Tensor | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    seed: int | torch.Generator | None = 0,
    **kwargs: float | bool | torch.Tensor | None,
) -> ImageParam:
    """Build a parameterization by name: ``"pixel"`` (:class:`PixelImage`) or ``"fourier"``
    (:class:`FourierImage`); extra keyword arguments go to its constructor."""
    check_choice("kind", kind, ["pixel", "fourier"])
    if kind == "pixel":
        return PixelImage(shape, init=init, value_range=value_range, seed=seed, **kwargs)  # type: ignore[arg-type]
    return FourierImage(shape, init=init, value_range=value_range, seed=seed, **kwargs)  # type: ignore[arg-type]
