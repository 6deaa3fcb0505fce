"""Stateless layers over time in one call: fold ``[T, B, ...]`` into ``[T*B, ...]`` and back.

:class:`TimeDistributed` wraps any stateless module (Linear, Conv, BatchNorm, pooling, Flatten,
or an ``nn.Sequential`` of them). The ``Seq*`` aliases *are* the torch layers (``SeqLinear`` is
an ``nn.Linear``: same constructor, parameters and state-dict keys) whose ``forward`` takes
time-major input, so tools that look for ``nn.Linear`` or ``nn.Conv2d`` still find them.
BatchNorm statistics are pooled over time and batch (as SpikingJelly's SeqToANNContainer).

>>> import torch
>>> net = nn.Sequential(SeqFlatten(), SeqLinear(64, 10))
>>> net(torch.rand(4, 2, 1, 8, 8)).shape
torch.Size([4, 2, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from neuronkit.common import check_type

__all__ = [
    "SeqAdaptiveAvgPool2d",
    "SeqAvgPool2d",
    "SeqBatchNorm1d",
    "SeqBatchNorm2d",
    "SeqConv1d",
    "SeqConv2d",
    "SeqDropout",
    "SeqFlatten",
    "SeqLinear",
    "SeqMaxPool2d",
    "TimeDistributed",
    "over_time",
]


def _check_seq(x: Any) -> None:
    check_type("x", x, Tensor)
    if x.ndim < 3:
        raise ValueError(
            f"x must have at least 3 dimensions [T, B, ...] (time-major), got shape "
            f"{tuple(x.shape)}"
        )


def _fold(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    T, B = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.unflatten(0, (T, B))


def over_time(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply ``fn`` to ``x: [T, B, ...]`` as one ``[T*B, ...]`` batch; returns ``[T, B, ...]``.

    Under ``torch.fx`` symbolic tracing (``x`` a ``Proxy``) the fold is recorded unchecked.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(x), got {type(fn).__name__}")
    if not isinstance(x, torch.fx.Proxy):
        _check_seq(x)
    return _fold(fn, x)


def _multi_step(module: nn.Module) -> bool:
    """Takes whole sequences ``[T, B, ...]`` itself: a ``Seq*`` layer (``leading_dims``), a
    neuron, delay or :class:`SeqDropout` (``channel_local``), or a :class:`TimeDistributed`."""
    return (
        isinstance(module, TimeDistributed)
        or getattr(type(module), "leading_dims", 0) > 0
        or hasattr(type(module), "channel_local")
    )


class TimeDistributed(nn.Module):
    """Run a stateless ``module`` on every time step at once: ``[T, B, ...] -> [T, B, ...]``.

    ``module`` maps ``[N, ...]`` to one tensor ``[N, ...]``; a module that already takes
    ``[T, B, ...]`` (a ``Seq*`` layer, a neuron; also nested in it) is refused.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "module":  # checked whenever it is set, not only at construction
            check_type("module", value, nn.Module)
            for sub_name, sub in value.named_modules():
                if _multi_step(sub):
                    where = f"module.{sub_name}" if sub_name else "module"
                    raise ValueError(
                        f"{where} ({type(sub).__name__}) already takes time-major input "
                        "[T, B, ...]; TimeDistributed would fold time into the batch a second "
                        "time. Use it without TimeDistributed, or wrap its plain torch "
                        "counterpart"
                    )
        super().__setattr__(name, value)

    def forward(self, x: Tensor) -> Tensor:
        return over_time(self._call, x)

    def _call(self, x: Tensor) -> Any:
        out = self.module(x)
        if not isinstance(out, Tensor | torch.fx.Proxy):  # a Proxy under symbolic tracing
            raise TypeError(
                f"module ({type(self.module).__name__}) must return a tensor, got "
                f"{type(out).__name__}"
            )
        return out


class _OverTime(nn.Module):
    """Mixin placed before a torch layer: its ``forward`` then takes ``[T, B, ...]``.

    A layer checks what the folded call would otherwise report in terms of ``[T*B, ...]`` (or
    not at all, for an input one rank short, which torch reads as unbatched): the rank
    (``_ranks``, None for any >= 3) and, for a layer with weights, a floating dtype and the size
    of the feature axis (``_axis``) against the layer's ``_features`` attribute. Like the torch
    layers, values (NaN) are not checked; the neurons downstream do that.
    """

    # the torch layer applied with one extra leading axis (time) folded into its batch: tools
    # that map channels by layer type (neuronkit-pruning) find them on axis 1 + leading_dims
    leading_dims: ClassVar[int] = 1
    _features: ClassVar[str | None] = None
    _axis: ClassVar[int] = 2
    _ranks: ClassVar[tuple[int, ...] | None] = None
    _layout: ClassVar[str] = "[T, B, ...]"

    def forward(self, x: Tensor) -> Any:
        _check_seq(x)
        if self._ranks is not None and x.ndim not in self._ranks:
            ranks = " or ".join(map(str, self._ranks))
            raise ValueError(
                f"x must have {ranks} dimensions {self._layout} (time-major), got shape "
                f"{tuple(x.shape)}"
            )
        if self._features is not None:
            self._check_layer(x, self._features)
        return _fold(super().forward, x)

    def _check_layer(self, x: Tensor, features: str) -> None:
        if not (x.is_floating_point() or x.is_complex()):
            raise TypeError(
                f"x must be a floating-point tensor {self._layout}, got dtype {x.dtype}"
            )
        want = getattr(self, features)
        if x.shape[self._axis] != want:
            where = "the last dimension" if self._axis == -1 else f"dim {self._axis}"
            raise ValueError(
                f"x must have size {want} ({features}) in {where} of {self._layout}, "
                f"got shape {tuple(x.shape)}"
            )


class SeqLinear(_OverTime, nn.Linear):
    """``nn.Linear`` over time: ``[T, B, in_features] -> [T, B, out_features]``."""

    _features, _axis, _layout = "in_features", -1, "[T, B, ..., in_features]"


class SeqConv1d(_OverTime, nn.Conv1d):
    """``nn.Conv1d`` over time: ``[T, B, C, L] -> [T, B, C', L']``."""

    _features, _ranks, _layout = "in_channels", (4,), "[T, B, C, L]"


class SeqConv2d(_OverTime, nn.Conv2d):
    """``nn.Conv2d`` over time: ``[T, B, C, H, W] -> [T, B, C', H', W']``."""

    _features, _ranks, _layout = "in_channels", (5,), "[T, B, C, H, W]"


class SeqBatchNorm1d(_OverTime, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over time, statistics over T and B: ``[T, B, C(, L)]``."""

    _features, _ranks, _layout = "num_features", (3, 4), "[T, B, C(, L)]"


class SeqBatchNorm2d(_OverTime, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over time, statistics over T and B: ``[T, B, C, H, W]``."""

    _features, _ranks, _layout = "num_features", (5,), "[T, B, C, H, W]"


class SeqAvgPool2d(_OverTime, nn.AvgPool2d):
    """``nn.AvgPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, H', W']``."""

    _ranks, _layout = (5,), "[T, B, C, H, W]"


class SeqMaxPool2d(_OverTime, nn.MaxPool2d):
    """``nn.MaxPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, H', W']``."""

    _ranks, _layout = (5,), "[T, B, C, H, W]"


class SeqAdaptiveAvgPool2d(_OverTime, nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, h, w]``."""

    _ranks, _layout = (5,), "[T, B, C, H, W]"


class SeqFlatten(_OverTime, nn.Flatten):
    """``nn.Flatten`` over time (dims after B): ``[T, B, C, H, W] -> [T, B, C*H*W]``."""


class SeqDropout(nn.Dropout):
    """``nn.Dropout`` over time with one mask per sample for all T steps: ``[T, B, ...]``.

    In training mode it draws a ``[B, ...]`` mask of kept units (scaled by ``1 / (1 - p)``)
    and applies it at every step, so a dropped neuron stays silent for the whole sequence, as
    in the IIR-SNN reference (Chowdhury et al. 2021, after Rathi et al. 2020); in eval mode it
    is the identity. ``TimeDistributed(nn.Dropout(p))`` instead draws a new mask per step.
    """

    channel_local: ClassVar[bool] = True  # elementwise: one mask value per element

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x)
        if not self.training or self.p == 0.0 or x.shape[0] == 0:  # T = 0: nothing to drop
            return x
        if not x.is_floating_point():  # the scaled mask has no integer or bool form
            raise TypeError(f"x must be a floating-point tensor [T, B, ...], got dtype {x.dtype}")
        keep = 1.0 - self.p
        mask = torch.zeros_like(x[0])
        if keep > 0:
            mask.bernoulli_(keep).div_(keep)
        return x.mul_(mask) if self.inplace else x * mask
