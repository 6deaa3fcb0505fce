"""Inverted-bottleneck and plain MLPs (Bachmann, Anagnostidis & Hofmann, "Scaling MLPs: A Tale
of Inductive Bias", NeurIPS 2023).

The paper's model is an MLP on the *flattened* image with no vision-specific structure:

    z_0 = W_in x + b_in                                  (linear embedding, [B, d])
    z_l = z_{l-1} + W_2^l GELU(W_1^l LN(z_{l-1}))        (l = 1..L, W_1: d -> k d, W_2: k d -> d)
    y   = W_out z_L + b_out                              (linear head)

with expansion factor ``k = 4`` (the "inverted bottleneck": each block widens to ``4 d`` and
comes back), pre-LayerNorm, GELU and a residual connection; PyTorch's default initialization
(as in the authors' ``models/networks.py``). The baseline "standard MLP" of the authors' code
has no residual and no bottleneck: ``z_0 = W_in x``, then layers ``z_l = W^l GELU(LN(z_{l-1}))``
of constant width, then the head. The authors build it from the same ``B_L-Wi_d`` string as the
bottleneck MLP (``models/__init__.py``): width ``d`` and ``L - 1`` such layers, so their S-MLP vs
B-MLP comparison is at equal width, not equal parameters. :func:`plain_width_for_params`
instead picks the width that gives both families the same number of parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

from neuronkit.common import check_choice, check_number, check_seed, check_type, forked_manual_seed

from .._utils import check_input_dtype, traced

__all__ = [
    "BottleneckBlock",
    "BottleneckMLP",
    "PlainMLP",
    "bottleneck_mlp_params",
    "count_parameters",
    "plain_mlp_params",
    "plain_width_for_params",
]

NORMS = ("layer", "batch", "none")


def _norm(kind: str, dim: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    return nn.Identity()


def _build(seed: int | None, build: Callable[[], None]) -> None:
    """Run ``build`` (which creates the layers) under ``seed`` without touching the global RNG."""
    if seed is None:
        build()
        return
    check_seed(seed)
    with forked_manual_seed(seed):
        build()


def _check_sizes(in_features: int, out_features: int, width: int, depth: int, norm: str) -> None:
    check_number("in_features", in_features, ge=1, integer=True)
    check_number("out_features", out_features, ge=1, integer=True)
    check_number("width", width, ge=1, integer=True)
    check_number("depth", depth, ge=0, integer=True)
    check_type("norm", norm, str)
    check_choice("norm", norm, NORMS)


def _flatten_input(x: torch.Tensor, in_features: int) -> torch.Tensor:
    if traced(x):
        return x.flatten(1)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [B, in_features] or [B, ...], got {type(x)}")
    if x.ndim < 2:
        raise ValueError(
            f"x must have a batch dimension, [B, in_features] or [B, C, H, W], got shape "
            f"{tuple(x.shape)}"
        )
    x = x.flatten(1)
    if x.shape[1] != in_features:
        raise ValueError(
            f"x must have {in_features} features per example after flattening, got "
            f"{x.shape[1]} (shape {tuple(x.shape)})"
        )
    return x


class BottleneckBlock(nn.Module):
    """The inverted-bottleneck map ``W_2 GELU(W_1 h)``: ``[B, d] -> [B, k d] -> [B, d]``.

    The residual and the normalization live in :class:`BottleneckMLP`, as in the paper's
    block ``z + W_2 GELU(W_1 LN(z))``.

    Args:
        width: the thin dimension ``d``.
        expansion: the expansion factor ``k`` (the paper uses 4).
    """

    def __init__(self, width: int, expansion: int = 4) -> None:
        super().__init__()
        check_number("width", width, ge=1, integer=True)
        check_number("expansion", expansion, ge=1, integer=True)
        self.width, self.expansion = int(width), int(expansion)
        self.up = nn.Linear(self.width, self.expansion * self.width)
        self.act = nn.GELU()
        self.down = nn.Linear(self.expansion * self.width, self.width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: ``[B, d]`` (or ``[..., d]``) in the block's dtype -> the same shape."""
        if not traced(h):
            width = self.up.weight.shape[1]  # not self.width: pruning may have narrowed it
            if not isinstance(h, torch.Tensor):
                raise TypeError(f"h must be a torch.Tensor [B, {width}], got {type(h)}")
            if h.ndim < 1 or h.shape[-1] != width:
                raise ValueError(
                    f"h must have last dimension {width} (the width), got shape {tuple(h.shape)}"
                )
        check_input_dtype("h", h, self.up.weight.dtype)
        return self.down(self.act(self.up(h)))


class BottleneckMLP(nn.Module):
    """The paper's inverted-bottleneck MLP on flattened inputs.

    ``linear_in`` (``in_features -> width``), ``depth`` residual blocks
    ``z <- z + W_2 GELU(W_1 norm(z))`` with ``W_1: width -> expansion * width``, and a linear head
    (``width -> out_features``). With the authors' naming, ``B_L-Wi_d`` is
    ``BottleneckMLP(in, out, width=d, depth=L)``.

    Args:
        in_features: flattened input size (e.g. ``C * H * W``).
        out_features: number of classes.
        width: the thin (residual-stream) width ``d``.
        depth: number of blocks ``L`` (0 gives a linear model through ``width``).
        expansion: expansion factor ``k`` of each block (paper: 4).
        norm: ``"layer"`` (paper), ``"batch"`` or ``"none"``.
        seed: seed for the initialization (None: the global torch RNG).

    Shapes: ``x: [B, in_features]`` or ``[B, *]`` (flattened), output ``[B, out_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int,
        depth: int,
        *,
        expansion: int = 4,
        norm: str = "layer",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, out_features, width, depth, norm)
        check_number("expansion", expansion, ge=1, integer=True)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.width, self.depth, self.expansion, self.norm = int(width), int(depth), expansion, norm

        def build() -> None:
            self.linear_in = nn.Linear(self.in_features, self.width)
            self.norms = nn.ModuleList(_norm(norm, self.width) for _ in range(self.depth))
            self.blocks = nn.ModuleList(
                BottleneckBlock(self.width, self.expansion) for _ in range(self.depth)
            )
            self.linear_out = nn.Linear(self.width, self.out_features)

        _build(seed, build)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, in_features]`` (or ``[B, *]``) -> logits ``[B, out_features]``."""
        check_input_dtype("x", x, self.linear_in.weight.dtype)
        z = self.linear_in(_flatten_input(x, self.in_features))
        for norm, block in zip(self.norms, self.blocks, strict=True):
            z = z + block(norm(z))
        return self.linear_out(z)


class PlainMLP(nn.Module):
    """The authors' "standard MLP": no residual, no bottleneck.

    ``linear_in`` (``in_features -> width``), ``depth`` layers ``z <- W GELU(norm(z))`` of
    constant width, and a linear head. Use :func:`plain_width_for_params` to match the parameter
    count of a :class:`BottleneckMLP`.

    Args:
        in_features: flattened input size.
        out_features: number of classes.
        width: hidden width.
        depth: number of hidden ``width -> width`` layers.
        norm: ``"layer"`` (authors' code), ``"batch"`` or ``"none"``.
        seed: seed for the initialization (None: the global torch RNG).

    Shapes: ``x: [B, in_features]`` or ``[B, *]`` (flattened), output ``[B, out_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int,
        depth: int,
        *,
        norm: str = "layer",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(in_features, out_features, width, depth, norm)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.width, self.depth, self.norm = int(width), int(depth), norm

        def build() -> None:
            self.linear_in = nn.Linear(self.in_features, self.width)
            self.norms = nn.ModuleList(_norm(norm, self.width) for _ in range(self.depth))
            self.layers = nn.ModuleList(
                nn.Linear(self.width, self.width) for _ in range(self.depth)
            )
            self.act = nn.GELU()
            self.linear_out = nn.Linear(self.width, self.out_features)

        _build(seed, build)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, in_features]`` (or ``[B, *]``) -> logits ``[B, out_features]``."""
        check_input_dtype("x", x, self.linear_in.weight.dtype)
        z = self.linear_in(_flatten_input(x, self.in_features))
        for norm, layer in zip(self.norms, self.layers, strict=True):
            z = layer(self.act(norm(z)))
        return self.linear_out(z)


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    check_type("model", model, nn.Module)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _norm_params(norm: str, width: int) -> int:
    return 0 if norm == "none" else 2 * width


def bottleneck_mlp_params(
    in_features: int,
    out_features: int,
    width: int,
    depth: int,
    *,
    expansion: int = 4,
    norm: str = "layer",
) -> int:
    """Closed-form parameter count of :class:`BottleneckMLP` with these arguments.

    ``(in+1) d + L [norm + (d+1) k d + (k d + 1) d] + (d+1) out``.
    """
    _check_sizes(in_features, out_features, width, depth, norm)
    check_number("expansion", expansion, ge=1, integer=True)
    d, k = width, expansion
    block = _norm_params(norm, d) + (d + 1) * k * d + (k * d + 1) * d
    return (in_features + 1) * d + depth * block + (d + 1) * out_features


def plain_mlp_params(
    in_features: int, out_features: int, width: int, depth: int, *, norm: str = "layer"
) -> int:
    """Closed-form parameter count of :class:`PlainMLP`: ``(in+1) w + L [norm + (w+1) w] +
    (w+1) out``."""
    _check_sizes(in_features, out_features, width, depth, norm)
    w = width
    return (
        (in_features + 1) * w
        + depth * (_norm_params(norm, w) + (w + 1) * w)
        + (w + 1) * out_features
    )


def plain_width_for_params(
    params: int, in_features: int, out_features: int, depth: int, *, norm: str = "layer"
) -> int:
    """The :class:`PlainMLP` width whose parameter count is closest to ``params``.

    Solves the quadratic ``plain_mlp_params(w) = params`` and rounds to the better neighbour.
    """
    check_number("params", params, ge=1, integer=True)
    _check_sizes(in_features, out_features, 1, depth, norm)
    n = 0 if norm == "none" else 2
    # depth w^2 + (in + 1 + depth (1 + n) + out) w + out - params = 0
    a = float(depth)
    b = float(in_features + 1 + depth * (1 + n) + out_features)
    c = float(out_features - params)
    root = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(
        sorted(candidates),
        key=lambda w: abs(
            plain_mlp_params(in_features, out_features, w, depth, norm=norm) - params
        ),
    )
