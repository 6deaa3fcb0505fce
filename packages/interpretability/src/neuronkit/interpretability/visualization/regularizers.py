"""Regularizers (natural-image priors) for activation maximization.

Unregularized gradient ascent on an input finds high-frequency, adversarial-looking patterns.
The priors here are the ones of the activation-maximization literature:

* total variation ``sum ((dx^2 + dy^2) ** (beta / 2))`` (Mahendran & Vedaldi 2015),
* L2 decay towards a centre value (Simonyan et al. 2014; Yosinski et al. 2015),
* Gaussian blur (Yosinski et al. 2015), here as the penalty ``||x - blur(x)||^2`` so it works
  with any parameterization,
* **center bias** (Nguyen, Yosinski & Clune 2016, "Multifaceted Feature Visualization"): the
  optimization runs in phases; early phases may only change a central region of the image and
  apply a strong blur to the update, later phases widen the region to the full image and
  reduce the blur. The result has one coherent, centred object instead of repeated fragments.

A regularizer is an object with two hooks, both optional (see :class:`Regularizer`):
``penalty(image, progress) -> [B]`` (added to the loss that gradient descent minimizes) and
``filter_gradient(grad, progress) -> grad`` (applied to ``d loss / d image`` before it flows
back into the parameterization); ``progress`` is the fraction of steps done, in ``[0, 1)``.
Penalties are means over ``C, H, W`` so a weight means the same at any image size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuronkit.common import check_floating, check_number, check_type

__all__ = [
    "L2",
    "Blur",
    "CenterBias",
    "Regularizer",
    "TotalVariation",
    "blur_penalty",
    "center_mask",
    "gaussian_blur",
    "gaussian_kernel1d",
    "l2_penalty",
    "total_variation",
]


def _check_image(x: torch.Tensor, name: str = "x") -> None:
    check_type(name, x, torch.Tensor)
    if x.ndim != 4:
        raise ValueError(f"{name} must be an image batch [B, C, H, W], got shape {tuple(x.shape)}")
    check_floating(name, x)


def total_variation(x: torch.Tensor, beta: float = 2.0, eps: float = 1e-8) -> torch.Tensor:
    """Per-image total variation ``mean((dx^2 + dy^2 + eps) ** (beta / 2))``, shape ``[B]``.

    ``dx``, ``dy`` are forward differences (on the ``[H-1, W-1]`` grid where both exist);
    ``beta = 1`` is the classic (isotropic) TV, ``beta = 2`` its smooth square version.

    Args:
        x: ``[B, C, H, W]`` images (``H, W >= 2``).
        beta: exponent (``> 0``).
        eps: added inside the power so the gradient exists at zero.
    """
    _check_image(x)
    check_number("beta", beta, gt=0.0)
    check_number("eps", eps, ge=0.0)
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"x must be at least 2x2 pixels for total variation, got {tuple(x.shape)}")
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    tv = (dx.pow(2) + dy.pow(2) + eps).pow(beta / 2.0)
    return tv.flatten(1).mean(1)


def l2_penalty(x: torch.Tensor, center: float = 0.0) -> torch.Tensor:
    """Per-image ``mean((x - center)^2)``, shape ``[B]`` (L2 decay towards ``center``)."""
    _check_image(x)
    check_number("center", center)
    return (x - center).pow(2).flatten(1).mean(1)


def gaussian_kernel1d(
    sigma: float, radius: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Normalized 1-D Gaussian kernel ``[2 * radius + 1]`` (default radius ``ceil(3 sigma)``).

    Computed in float64 and returned in ``dtype`` (default: ``torch.get_default_dtype()``).
    """
    check_number("sigma", sigma, gt=0.0)
    if radius is None:
        radius = max(1, math.ceil(3.0 * sigma))
    check_number("radius", radius, ge=0, integer=True)
    t = torch.arange(-int(radius), int(radius) + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(torch.get_default_dtype() if dtype is None else dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel, same size (reflect padding); ``[B, C, H, W]``.

    ``sigma == 0`` returns ``x`` unchanged. The kernel is truncated at ``3 sigma`` and at the
    image size (reflect padding needs a radius below ``min(H, W)``).
    """
    _check_image(x)
    check_number("sigma", sigma, ge=0.0)
    if sigma == 0.0:
        return x
    radius = min(max(1, math.ceil(3.0 * sigma)), min(x.shape[-2:]) - 1)
    if radius < 1:
        return x
    # the kernel in the image's precision (half precision via float32, as before)
    k = gaussian_kernel1d(sigma, radius, dtype=torch.promote_types(x.dtype, torch.float32))
    k = k.to(dtype=x.dtype, device=x.device)
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_penalty(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Per-image ``mean((x - blur_sigma(x))^2)``, shape ``[B]``: the high-frequency energy."""
    check_number("sigma", sigma, gt=0.0)
    return (x - gaussian_blur(x, sigma)).pow(2).flatten(1).mean(1)


def center_mask(height: int, width: int, fraction: float) -> torch.Tensor:
    """``[H, W]`` float mask, 1 on the central box spanning ``fraction`` of each side.

    The box has ``max(1, round(fraction * side))`` rows / columns, centred (the extra pixel of
    an odd remainder goes to the bottom / right); ``fraction = 1`` is the whole image.
    """
    check_number("height", height, ge=1, integer=True)
    check_number("width", width, ge=1, integer=True)
    check_number("fraction", fraction, gt=0.0, le=1.0)
    mask = torch.zeros(int(height), int(width))
    rows = max(1, round(fraction * height))
    cols = max(1, round(fraction * width))
    top = (height - rows) // 2
    left = (width - cols) // 2
    mask[top : top + rows, left : left + cols] = 1.0
    return mask


class Regularizer:
    """Base class. Override :meth:`penalty` and/or :meth:`filter_gradient`."""

    def penalty(self, image: torch.Tensor, progress: float) -> torch.Tensor | None:
        """Per-image penalty ``[B]`` to add to the minimized loss (``None``: no penalty)."""
        return None

    def filter_gradient(self, grad: torch.Tensor, progress: float) -> torch.Tensor:
        """Transform ``d loss / d image`` (``[B, C, H, W]``) before it reaches the parameters."""
        return grad

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class TotalVariation(Regularizer):
    """``weight * total_variation(image, beta)``."""

    def __init__(self, weight: float = 1.0, beta: float = 2.0) -> None:
        check_number("weight", weight, ge=0.0)
        check_number("beta", beta, gt=0.0)
        self.weight = float(weight)
        self.beta = float(beta)

    def penalty(self, image: torch.Tensor, progress: float) -> torch.Tensor:
        return self.weight * total_variation(image, self.beta)


class L2(Regularizer):
    """``weight * mean((image - center)^2)``: L2 decay towards ``center``."""

    def __init__(self, weight: float = 1.0, center: float = 0.0) -> None:
        check_number("weight", weight, ge=0.0)
        check_number("center", center)
        self.weight = float(weight)
        self.center = float(center)

    def penalty(self, image: torch.Tensor, progress: float) -> torch.Tensor:
        return self.weight * l2_penalty(image, self.center)


class Blur(Regularizer):
    """``weight * mean((image - gaussian_blur(image, sigma))^2)``: penalize high frequencies."""

    def __init__(self, weight: float = 1.0, sigma: float = 1.0) -> None:
        check_number("weight", weight, ge=0.0)
        check_number("sigma", sigma, gt=0.0)
        self.weight = float(weight)
        self.sigma = float(sigma)

    def penalty(self, image: torch.Tensor, progress: float) -> torch.Tensor:
        return self.weight * blur_penalty(image, self.sigma)


class CenterBias(Regularizer):
    """Center-biased optimization (Nguyen, Yosinski & Clune 2016), as phases over the run.

    The run is split into ``phases`` equal parts. In phase ``k`` (``0..phases-1``) the image
    gradient is (1) blurred with ``sigma * (1 - k / (phases - 1))`` and (2) zeroed outside the
    central box spanning ``start + (1 - start) * k / (phases - 1)`` of each side. So the first
    phase only draws a smooth, low-frequency object in the centre, and the last one refines
    the whole image at full resolution.

    Args:
        phases: number of phases (``1``: the whole image, blur ``sigma``, throughout).
        start: side fraction of the optimized box in the first phase, in ``(0, 1]``.
        sigma: gradient blur (pixels) in the first phase; ``0`` disables the blur.
    """

    def __init__(self, phases: int = 3, start: float = 0.5, sigma: float = 1.0) -> None:
        check_number("phases", phases, ge=1, integer=True)
        check_number("start", start, gt=0.0, le=1.0)
        check_number("sigma", sigma, ge=0.0)
        self.phases = int(phases)
        self.start = float(start)
        self.sigma = float(sigma)

    def phase(self, progress: float) -> int:
        """The phase index at ``progress`` in ``[0, 1]``."""
        check_number("progress", progress, ge=0.0, le=1.0)
        return min(int(progress * self.phases), self.phases - 1)

    def schedule(self, progress: float) -> tuple[float, float]:
        """``(box side fraction, blur sigma)`` at ``progress``."""
        k = self.phase(progress)
        if self.phases == 1:
            return 1.0, self.sigma
        t = k / (self.phases - 1)
        return self.start + (1.0 - self.start) * t, self.sigma * (1.0 - t)

    def filter_gradient(self, grad: torch.Tensor, progress: float) -> torch.Tensor:
        _check_image(grad, "grad")
        fraction, sigma = self.schedule(progress)
        if sigma > 0:
            grad = gaussian_blur(grad, sigma)
        if fraction < 1.0:
            mask = center_mask(grad.shape[-2], grad.shape[-1], fraction)
            grad = grad * mask.to(dtype=grad.dtype, device=grad.device)
        return grad
