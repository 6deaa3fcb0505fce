"""Baseline operator-learning network for MgNO comparisons: a 2D U-Net.

The U-Net (Ronneberger et al. 2015) is the convolutional baseline of MgNO's Darcy experiments
(He, Liu & Xu, ICLR 2024). This one is sized by ``width`` and ``depth``: two 3x3 convolutions
(with bias) and an activation per block, ``width * 2**d`` channels at depth ``d``, learned stride-2
convolutions down and stride-2 transposed convolutions up (the same grids as
:class:`~neuronkit.theory.operators.mgno.MgNO`, so odd ``2**k - 1`` Dirichlet grids work), skip
connections by concatenation, a 1x1 output convolution. Boundary conditions enter through the
padding (``"zeros"`` or ``"circular"``), as for MgNO.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn as nn

from neuronkit.common import (
    check_choice,
    check_floating,
    check_ndim,
    check_seed,
    check_type,
    forked_manual_seed,
)

from .._utils import check_input_dtype, check_positive_int
from .mgno import PADDING_MODES, Prolongation, Restriction, level_sizes

__all__ = ["UNet2d"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, padding_mode: str, activation: str) -> None:
        act = _ACTIVATIONS[activation]
        mode = cast(Literal["zeros", "circular"], padding_mode)
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=mode),
            act(),
            nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode=mode),
            act(),
        )


class UNet2d(nn.Module):
    """A U-Net mapping ``[B, in_channels, H, W]`` to ``[B, out_channels, H, W]``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        width: channels at the finest level (doubled at every coarser level).
        depth: number of coarsenings (``depth + 1`` levels).
        padding_mode: ``"zeros"`` (Dirichlet data) or ``"circular"`` (periodic data).
        activation: ``"gelu"``, ``"relu"``, ``"tanh"`` or ``"silu"``.
        seed: initialises the weights reproducibly (``None``: torch's global RNG).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        width: int = 16,
        depth: int = 3,
        padding_mode: str = "zeros",
        activation: str = "gelu",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        width = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth, minimum=0)
        check_type("padding_mode", padding_mode, str)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        check_type("activation", activation, str)
        check_choice("activation", activation, _ACTIVATIONS)
        if seed is not None:
            check_seed(seed)
        mode = self.padding_mode
        chans = [width * 2**d for d in range(self.depth + 1)]
        with forked_manual_seed(seed):
            self.encoders = nn.ModuleList(
                _Block(self.in_channels if d == 0 else chans[d - 1], chans[d], mode, activation)
                for d in range(self.depth + 1)
            )
            self.downs = nn.ModuleList(
                Restriction(chans[d], chans[d], mode) for d in range(self.depth)
            )
            self.ups = nn.ModuleList(
                Prolongation(chans[d + 1], chans[d], mode) for d in range(self.depth)
            )
            self.decoders = nn.ModuleList(
                _Block(2 * chans[d], chans[d], mode, activation) for d in range(self.depth)
            )
            self.output = nn.Conv2d(chans[0], self.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_type("x", x, torch.Tensor)
        check_ndim("x", x, 4, "[B, C, H, W]")
        check_floating("x", x)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got {x.shape[1]}")
        check_input_dtype("x", x, next(self.parameters()).dtype)
        sizes = level_sizes(tuple(x.shape[-2:]), self.depth + 1, self.padding_mode)
        skips = []
        h = x
        for d in range(self.depth + 1):
            h = self.encoders[d](h)
            if d < self.depth:
                skips.append(h)
                h = self.downs[d](h)
        for d in range(self.depth - 1, -1, -1):
            h = self.ups[d](h, sizes[d])
            h = self.decoders[d](torch.cat([skips[d], h], dim=1))
        return self.output(h)
