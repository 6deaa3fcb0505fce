"""Synaptic operations: the work a spiking network does, counted event by event.

A weight layer (``nn.Linear`` or ``nn.Conv1d/2d/3d``, including the time-major ``Seq*`` layers
and layers inside :class:`~neuronkit.snn.TimeDistributed`, and the delayed synapses of
:class:`~neuronkit.snn.synapses.DelayedLinear`) performs, on dense hardware, one
multiply-accumulate per weight tap and output element (its *MACs*, the count of the usual MAC
counters, zero padding included). On event-driven hardware only non-zero inputs are propagated:
each one costs one accumulate per outgoing synapse, so the layer performs ``sum over non-zero
inputs of their fan-out`` *synaptic operations* (SynOps; for binary spikes an accumulate, for
analog inputs a multiply-accumulate). Energy estimates in the SNN literature multiply the two
counts by per-operation costs (e.g. 0.9 pJ per AC, 4.6 pJ per MAC for 32-bit floats at 45 nm,
Horowitz 2014).

Counts are exact: a convolution's SynOps are the convolution of the input's event map with an
all-ones kernel of the weight's shape (padding, stride, dilation and groups included).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuronkit.common import check_type, eval_mode

from .synapses.delays import DelayedLinear

__all__ = ["LayerOps", "synaptic_operations"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class LayerOps:
    """Operations of one layer (or of the ``"total"`` entry) over one forward pass.

    Attributes:
        macs: dense multiply-accumulates (every connection, every input element).
        synops: accumulates triggered by non-zero inputs (events times their fan-out).
        events: non-zero input elements.
        inputs: input elements.
    """

    macs: int
    synops: int
    events: int
    inputs: int

    @property
    def input_density(self) -> float:
        """Fraction of input elements that are non-zero (the firing rate for spike inputs)."""
        return self.events / self.inputs if self.inputs else 0.0

    @property
    def synops_per_mac(self) -> float:
        """``synops / macs``: below 1, events save work over a dense evaluation."""
        return self.synops / self.macs if self.macs else 0.0


def _add(a: LayerOps, b: LayerOps) -> LayerOps:
    return LayerOps(*(u + v for u, v in zip(astuple(a), astuple(b))))


def _layer_ops(module: nn.Module, x: Tensor) -> LayerOps:
    if isinstance(module, DelayedLinear):
        return _delayed_ops(module, x)
    assert isinstance(module, (nn.Linear, *_CONVS))
    folded = x.flatten(0, getattr(type(module), "leading_dims", 0))  # [T, B, ...] -> [T*B, ...]
    events = (folded != 0).to(torch.float64)
    if isinstance(module, nn.Linear):
        rows = events.reshape(-1, module.in_features)
        out = module.out_features
        return LayerOps(
            macs=rows.numel() * out,
            synops=int(rows.sum()) * out,
            events=int(rows.sum()),
            inputs=rows.numel(),
        )
    # each output element sums its receptive field: the events in it are its synops
    ones = torch.ones_like(module.weight, dtype=events.dtype)
    reached = module._conv_forward(events, ones, None)
    return LayerOps(
        macs=reached.numel() * ones[0].numel(),  # every tap, zero padding included
        synops=int(reached.sum()),
        events=int(events.sum()),
        inputs=events.numel(),
    )


def _delayed_ops(module: DelayedLinear, x: Tensor) -> LayerOps:
    """``x [T, B, C_in]``: the causal ``conv1d`` of :func:`delayed_linear`; an event reaches
    every non-zero tap of its synapses whose delayed arrival falls within the ``T`` steps."""
    events = (x != 0).to(torch.float64)
    taps = (module.kernel().detach() != 0).to(torch.float64)  # [C_out, C_in, D]
    width = taps.shape[2]
    u = torch.nn.functional.pad(events.permute(1, 2, 0), (width - 1, 0))  # [B, C_in, T + D - 1]
    reached = torch.nn.functional.conv1d(u, taps)  # [B, C_out, T]
    return LayerOps(
        macs=reached.numel() * taps[0].numel(),  # the dense kernel: every tap of every synapse
        synops=int(reached.sum()),
        events=int(events.sum()),
        inputs=events.numel(),
    )


@torch.no_grad()
def synaptic_operations(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, LayerOps]:
    """Count every weight layer's dense MACs and event-driven SynOps over one forward pass.

    Args:
        model: any module; its ``nn.Linear``, ``nn.Conv1d/2d/3d`` and :class:`DelayedLinear`
            submodules are counted (``Seq*`` layers and delayed synapses on their time-major
            input, so over all ``T`` steps; a delayed synapse's every kernel tap). It runs in
            eval mode (no dropout, BatchNorm statistics untouched), each submodule's training
            flag restored afterwards, as ``count_macs`` does.
        inputs, kwargs: what ``model`` is called with, e.g. ``x: [T, B, ...]``.

    Returns:
        ``{layer name: LayerOps}`` in call order, plus ``"total"``; counts are over the whole
        batch (divide by ``B`` for per-sample numbers). A layer called several times adds up.

    Example:
        >>> from neuronkit.snn import LIF, SeqLinear
        >>> net = nn.Sequential(SeqLinear(4, 3), LIF(), SeqLinear(3, 2))
        >>> ops = synaptic_operations(net, torch.ones(5, 2, 4))
        >>> ops["0"].macs, ops["0"].synops  # 5 steps x 2 samples x 4 inputs x 3 outputs
        (120, 120)
    """
    check_type("model", model, nn.Module)
    kinds = (nn.Linear, *_CONVS, DelayedLinear)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, kinds)}
    counted: dict[str, LayerOps] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(module: Any, args: tuple[Any, ...]) -> None:
            ops = _layer_ops(module, args[0])
            counted[name] = _add(counted[name], ops) if name in counted else ops

        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in layers.items()]
    try:
        with eval_mode(model):
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return {**counted, "total": functools.reduce(_add, counted.values(), LayerOps(0, 0, 0, 0))}
