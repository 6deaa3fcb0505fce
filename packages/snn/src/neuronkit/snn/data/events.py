"""Binary event frames from images (DVS-like data made from the 8x8 digits, seeded).

Two generators, both returning time-major binary frames ``[T, N, P, H, W]``:

* ``"delta"`` (a DVS sensor watching a moving image, as N-MNIST films saccades): each image
  moves along a circle of radius ``max_shift`` pixels (a random starting phase per image, one
  revolution over ``T`` steps, over two when ``T = 1`` so that the one step still moves),
  sampled by bilinear interpolation; an ON event fires where the intensity rose by at least
  ``threshold`` since the previous step, an OFF event where it fell by at least that much.
  ``P = 2 C`` polarity channels: the ``C`` ON channels, then the ``C`` OFF channels.
* ``"threshold"`` (threshold crossing, a sigma-delta / integrate-and-fire pixel): each pixel
  accumulates its intensity every step from a random initial phase in ``[0, threshold)`` and
  emits an event whenever the accumulator crosses ``threshold`` (which is then subtracted), at
  most one per step, so a pixel of intensity ``x`` fires at a rate of about
  ``min(1, x / threshold)`` events per step. ``P = C``.

In both modes ``noise`` adds background activity: each entry independently flips to 1 with
that probability per step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
)

from .digits import load_digits

__all__ = ["EventDigits", "event_frames", "load_event_digits"]

MODES = ("delta", "threshold")


def event_frames(
    images: Tensor,
    T: int,
    *,
    mode: str = "delta",
    threshold: float | None = None,
    max_shift: float = 1.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Tensor:
    """Binary event frames from images.

    Args:
        images: intensities in [0, 1], ``[N, H, W]`` or ``[N, C, H, W]``.
        T: number of time steps (>= 1).
        mode: ``"delta"`` or ``"threshold"`` (module docstring).
        threshold: contrast threshold (``"delta"``, default 0.15) or crossing level
            (``"threshold"``, default 1.0); > 0.
        max_shift: radius of the circular motion in pixels (``"delta"`` only; >= 0).
        noise: background-event probability per entry and step, in [0, 1).
        seed: seed of the phases and the noise (same seed, same frames, for any dtype of
            ``images``: the draws are float32).

    Returns:
        ``[T, N, P, H, W]`` of 0/1 in ``images``' dtype, ``P = 2 C`` (delta) or ``C``.
    """
    check_type("images", images, Tensor)
    check_floating("images", images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be [N, H, W] or [N, C, H, W], got {tuple(images.shape)}")
    check_finite("images", images)
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"images must lie in [0, 1], got values in [{images.min().item():g}, "
            f"{images.max().item():g}]"
        )
    check_number("T", T, ge=1, integer=True)
    check_type("mode", mode, str)
    check_choice("mode", mode, MODES)
    if threshold is None:
        threshold = 0.15 if mode == "delta" else 1.0
    check_number("threshold", threshold, gt=0)
    check_number("max_shift", max_shift, ge=0)
    check_number("noise", noise, ge=0, lt=1)
    check_seed(seed)
    x = images.detach() if images.ndim == 4 else images.detach().unsqueeze(1)
    # computed in float32 or wider: half-precision phases, shifts and accumulators would move
    # events away from the frames of the images' float32 copy
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    gen = torch.Generator(device=x.device).manual_seed(int(seed))  # also a numpy integer

    def uniform(*shape: int) -> Tensor:
        # drawn in float32 whatever the images' dtype: one stream, so float64 (or half)
        # images give the frames of their float32 copy (a float64 draw is another stream)
        u = torch.rand(shape, generator=gen, device=x.device, dtype=torch.float32)
        return u.to(x.dtype)

    n = x.shape[0]
    if mode == "delta":
        phase = uniform(n) * (2 * math.pi)
        period = max(T, 2)  # T = 1: the frame before step 0 must differ from step 0's
        frames = [_shifted(x, phase + 2 * math.pi * t / period, max_shift) for t in range(-1, T)]
        diff = torch.stack(frames[1:]) - torch.stack(frames[:-1])  # [T, N, C, H, W]
        events = torch.cat([diff >= threshold, diff <= -threshold], dim=2)
    else:
        acc = uniform(*x.shape) * threshold
        steps = []
        for _ in range(T):
            acc = acc + x
            fired = acc >= threshold
            acc = acc - fired.to(x.dtype) * threshold
            steps.append(fired)
        events = torch.stack(steps)
    if noise > 0:
        events = events | (uniform(*events.shape) < noise)
    return events.to(images.dtype)


def _shifted(x: Tensor, angle: Tensor, radius: float) -> Tensor:
    """``x: [N, C, H, W]`` translated by ``radius * (cos, sin)(angle)`` pixels (bilinear, zero
    padding)."""
    n, _, h, w = x.shape
    if x.numel() == 0:  # no image or no pixel: nothing to move (affine_grid refuses it)
        return x.clone()
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -radius * torch.cos(angle) * 2 / w  # grid coordinates span 2 per image
    theta[:, 1, 2] = -radius * torch.sin(angle) * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class EventDigits(NamedTuple):
    """Event-frame digits: ``x_*`` binary ``[T, N, P, 8, 8]`` (time-major), ``y_*`` ``[N]``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_event_digits(
    T: int = 8,
    *,
    mode: str = "delta",
    threshold: float | None = None,
    max_shift: float = 1.0,
    noise: float = 0.0,
    test_size: float = 0.25,
    seed: int = 0,
) -> EventDigits:
    """The 8x8 digits (:func:`neuronkit.snn.load_digits`) as binary event frames.

    Args:
        T, mode, threshold, max_shift, noise: as :func:`event_frames`.
        test_size: held-out fraction, in (0, 1).
        seed: seed of the split and of the events (train and test use different streams).
    """
    data = load_digits(test_size=test_size, seed=seed)
    kw = {"mode": mode, "threshold": threshold, "max_shift": max_shift, "noise": noise}
    return EventDigits(
        event_frames(data.x_train, T, seed=2 * seed, **kw),  # type: ignore[arg-type]
        data.y_train,
        event_frames(data.x_test, T, seed=2 * seed + 1, **kw),  # type: ignore[arg-type]
        data.y_test,
    )
