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
from typing import Any

from torch import Tensor, nn

from neuronkit.common import check_type

__all__ = [
    "SeqAdaptiveAvgPool2d",
    "SeqAvgPool2d",
    "SeqBatchNorm1d",
    "SeqBatchNorm2d",
    "SeqConv1d",
    "SeqConv2d",
    "SeqFlatten",
    "SeqLinear",
    "SeqMaxPool2d",
    "TimeDistributed",
    "over_time",
]


def over_time(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply ``fn`` to ``x: [T, B, ...]`` as one ``[T*B, ...]`` batch; returns ``[T, B, ...]``."""
    check_type("x", x, Tensor)
    if x.ndim < 3:
        raise ValueError(
            f"x must have at least 3 dimensions [T, B, ...] (time-major), got shape "
            f"{tuple(x.shape)}"
        )
    T, B = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.unflatten(0, (T, B))


class TimeDistributed(nn.Module):
    """Run a stateless ``module`` on every time step at once: ``[T, B, ...] -> [T, B, ...]``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        check_type("module", module, nn.Module)
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return over_time(self.module, x)


class _OverTime(nn.Module):
    """Mixin placed before a torch layer: its ``forward`` then takes ``[T, B, ...]``."""

    def forward(self, x: Tensor) -> Any:
        return over_time(super().forward, x)


class SeqLinear(_OverTime, nn.Linear):
    """``nn.Linear`` over time: ``[T, B, in_features] -> [T, B, out_features]``."""


class SeqConv1d(_OverTime, nn.Conv1d):
    """``nn.Conv1d`` over time: ``[T, B, C, L] -> [T, B, C', L']``."""


class SeqConv2d(_OverTime, nn.Conv2d):
    """``nn.Conv2d`` over time: ``[T, B, C, H, W] -> [T, B, C', H', W']``."""


class SeqBatchNorm1d(_OverTime, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over time, statistics over T and B: ``[T, B, C(, L)]``."""


class SeqBatchNorm2d(_OverTime, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over time, statistics over T and B: ``[T, B, C, H, W]``."""


class SeqAvgPool2d(_OverTime, nn.AvgPool2d):
    """``nn.AvgPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, H', W']``."""


class SeqMaxPool2d(_OverTime, nn.MaxPool2d):
    """``nn.MaxPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, H', W']``."""


class SeqAdaptiveAvgPool2d(_OverTime, nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` over time: ``[T, B, C, H, W] -> [T, B, C, h, w]``."""


class SeqFlatten(_OverTime, nn.Flatten):
    """``nn.Flatten`` over time (dims after B): ``[T, B, C, H, W] -> [T, B, C*H*W]``."""
