"""Seeded, differentiable image transforms applied at every step of activation maximization.

Transformation robustness (Mordvintsev et al. 2015, Yosinski et al. 2015, Olah et al. 2017):
optimizing the objective of a *randomly transformed* image discourages high-frequency patterns
that only work at one exact position, scale or angle. Every transform is a callable
``transform(x, generator) -> x`` on ``[B, C, H, W]`` batches that keeps the shape, is
differentiable with respect to ``x``, draws its randomness from the given
``torch.Generator`` only (so a seeded run is reproducible), and draws independently for
each batch item (so facets optimized together in one batch do not share a random shift).

* :class:`Jitter`: integer translation by rolling (wrap-around), as in Yosinski et al.
* :class:`RandomScale`: zoom about the image centre by a factor chosen from a list.
* :class:`RandomRotate`: rotation about the centre by a random angle.
* :class:`Compose`: apply several in order; :func:`standard_transforms` builds the usual
  jitter, scale, rotate, jitter stack.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from neuronkit.common import check_choice, check_number, check_type

__all__ = [
    "Compose",
    "Jitter",
    "RandomRotate",
    "RandomScale",
    "Transform",
    "standard_transforms",
]


def _check_batch(x: torch.Tensor, generator: torch.Generator) -> None:
    check_type("x", x, torch.Tensor)
    if x.ndim != 4:
        raise ValueError(f"x must be an image batch [B, C, H, W], got shape {tuple(x.shape)}")
    check_type("generator", generator, torch.Generator)


def check_transform(name: str, transform: Any) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``transform`` is a callable that can take
    ``(x, generator)``. Only a signature that clearly cannot is rejected (a one-argument,
    torchvision-style ``lambda x: ...``); a callable without an inspectable signature passes."""
    if not callable(transform):
        raise TypeError(f"{name} must be callable, got {type(transform).__name__}")
    try:
        signature = inspect.signature(transform)
    except (TypeError, ValueError):  # no signature to read (some builtins): not checked
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"{name} must take (x, generator) and return the transformed [B, C, H, W] batch, "
            f"got a callable with signature {signature}; wrap a one-argument (torchvision-style) "
            f"transform t as lambda x, generator: t(x)"
        ) from None


class Transform:
    """Base class: ``transform(x, generator)`` returns a transformed ``[B, C, H, W]`` batch."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_batch(x, generator)
        return self.apply(x, generator)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Transform ``x`` (already validated)."""
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Jitter(Transform):
    """Roll each image by independent random integer shifts in ``[-pixels, pixels]`` (y, x).

    Args:
        pixels: largest shift (``0`` is the identity).
    """

    def __init__(self, pixels: int) -> None:
        check_number("pixels", pixels, ge=0, integer=True)
        self.pixels = int(pixels)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.pixels == 0:
            return x
        shifts = torch.randint(-self.pixels, self.pixels + 1, (x.shape[0], 2), generator=generator)
        return torch.stack(
            [
                torch.roll(x[i], shifts=(int(s[0]), int(s[1])), dims=(-2, -1))
                for i, s in enumerate(shifts)
            ]
        )


def _affine(
    x: torch.Tensor,
    scales: torch.Tensor,
    angles: torch.Tensor,
    padding_mode: str,
) -> torch.Tensor:
    """Zoom by ``scales[b]`` and rotate by ``angles[b]`` (radians) about the centre."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)
    inv = (1.0 / scales).to(x.dtype)
    theta[:, 0, 0] = cos.to(x.dtype) * inv
    theta[:, 0, 1] = -sin.to(x.dtype) * inv
    theta[:, 1, 0] = sin.to(x.dtype) * inv
    theta[:, 1, 1] = cos.to(x.dtype) * inv
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


class RandomScale(Transform):
    """Zoom each image about its centre by a factor drawn uniformly from ``scales``.

    Factors above 1 enlarge (the border is cropped), below 1 shrink (the border is filled
    according to ``padding_mode``: ``"zeros"``, ``"border"`` or ``"reflection"``). The output
    keeps the input's size (bilinear resampling).
    """

    def __init__(
        self,
        scales: Sequence[float],
        padding_mode: Literal["zeros", "border", "reflection"] = "zeros",
    ) -> None:
        if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
            raise ValueError(f"scales must be a non-empty sequence of factors, got {scales!r:.80}")
        for i, s in enumerate(scales):
            check_number(f"scales[{i}]", s, gt=0.0)
        check_choice("padding_mode", padding_mode, ["zeros", "border", "reflection"])
        self.scales = tuple(float(s) for s in scales)
        self.padding_mode = padding_mode

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(self.scales), (x.shape[0],), generator=generator)
        scales = torch.tensor(self.scales, dtype=torch.float64)[idx]
        if bool((scales == 1.0).all()):
            return x
        return _affine(x, scales, torch.zeros_like(scales), self.padding_mode)


class RandomRotate(Transform):
    """Rotate each image about its centre by an angle (degrees) drawn per image.

    Args:
        degrees: a number ``d`` (uniform in ``[-d, d]``) or a sequence of angles to choose from.
        padding_mode: how the corners are filled (``"zeros"``, ``"border"``, ``"reflection"``).
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        padding_mode: Literal["zeros", "border", "reflection"] = "zeros",
    ) -> None:
        if isinstance(degrees, Sequence) and not isinstance(degrees, (str, bytes)):
            if not degrees:
                raise ValueError("degrees must be a number or a non-empty sequence, got []")
            for i, d in enumerate(degrees):
                check_number(f"degrees[{i}]", d)
            self.degrees: float | tuple[float, ...] = tuple(float(d) for d in degrees)
        else:
            check_number("degrees", degrees, ge=0.0)
            self.degrees = float(degrees)
        check_choice("padding_mode", padding_mode, ["zeros", "border", "reflection"])
        self.padding_mode = padding_mode

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        if isinstance(self.degrees, tuple):
            idx = torch.randint(0, len(self.degrees), (n,), generator=generator)
            angles = torch.tensor(self.degrees, dtype=torch.float64)[idx]
        else:
            if self.degrees == 0.0:
                return x
            u = torch.rand(n, generator=generator, dtype=torch.float64)
            angles = (2.0 * u - 1.0) * self.degrees
        if bool((angles == 0.0).all()):
            return x
        return _affine(x, torch.ones_like(angles), angles * math.pi / 180.0, self.padding_mode)


class Compose(Transform):
    """Apply ``transforms`` in order (each a ``(x, generator) -> x`` callable)."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
            raise TypeError(f"transforms must be a sequence of transforms, got {transforms!r:.80}")
        for i, t in enumerate(transforms):
            check_transform(f"transforms[{i}]", t)
        self.transforms = tuple(transforms)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x


def standard_transforms(
    jitter: int = 2,
    scales: Sequence[float] = (0.95, 1.0, 1.05),
    degrees: float = 5.0,
    padding_mode: Literal["zeros", "border", "reflection"] = "zeros",
) -> Compose:
    """The usual robustness stack: jitter, random scale, random rotation, a finer jitter.

    Defaults suit small images (tens of pixels); for ImageNet-size inputs use larger jitter
    (e.g. 8-16 pixels) and a wider scale list.
    """
    check_number("jitter", jitter, ge=0, integer=True)
    return Compose(
        [
            Jitter(jitter),
            RandomScale(scales, padding_mode),
            RandomRotate(degrees, padding_mode),
            Jitter(max(int(jitter) // 2, 0)),
        ]
    )
