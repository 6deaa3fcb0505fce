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
import math
import warnings
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any

import torch
import torch.nn.functional as F
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
    if isinstance(module, nn.Linear):
        rows = (folded != 0).reshape(-1, module.in_features)
        out, events = module.out_features, int(rows.sum())
        return LayerOps(
            macs=rows.numel() * out, synops=events * out, events=events, inputs=rows.numel()
        )
    return _conv_ops(module, folded)


def _conv_ops(module: nn.Conv1d | nn.Conv2d | nn.Conv3d, x: Tensor) -> LayerOps:
    """``x [N, C_in, *spatial]`` (or unbatched ``[C_in, *spatial]``).

    Every event at input position ``p`` is read by the ``C_out / groups`` filters of its group
    once per (output position, kernel tap) pair that lands on ``p`` (after padding, which for
    ``reflect``/``replicate``/``circular`` maps a padded position back to an input position).
    Box kernel, per-axis stride/padding/dilation: that multiplicity ``reads[p]`` is the outer
    product of one profile per spatial axis, the same for every sample and channel, so
    ``synops = C_out / groups * sum_p (events summed over samples and channels)[p] * reads[p]``
    (exactly the sum of an all-ones-filter convolution of the event map, without running it).
    """
    geometry = _conv_geometry(module, x)
    if geometry is None:  # a case the closed form does not cover: count as the layer computes
        return _conv_ops_dense(module, x)
    out_shape, profiles = geometry
    nd = len(profiles)
    weight = module.weight
    per_sample = x.shape[-nd:].numel() * x.shape[-nd - 1]
    samples = x.numel() // per_sample if per_sample else 0
    # events per input position, over samples and channels (int64: exact)
    event_map = torch.count_nonzero(x, dim=tuple(range(x.ndim - nd)))
    reads = profiles[0].to(event_map.device)
    for profile in profiles[1:]:
        reads = reads.unsqueeze(-1) * profile.to(event_map.device)
    fan_out = weight.shape[0] // module.groups
    return LayerOps(
        macs=samples * weight.shape[0] * math.prod(out_shape) * weight[0].numel(),
        synops=int((event_map * reads).sum()) * fan_out,
        events=int(event_map.sum()),
        inputs=x.numel(),
    )


def _conv_geometry(
    module: nn.Conv1d | nn.Conv2d | nn.Conv3d, x: Tensor
) -> tuple[list[int], list[Tensor]] | None:
    """Output size and per-axis read counts ``reads_axis [size]`` of a convolution, or None
    where the layer would not run a plain ``torch`` convolution on ``x`` (it then raises)."""
    base = next(c for c in _CONVS if isinstance(module, c))
    weight = module.weight
    kernel = tuple(weight.shape[2:])
    nd = len(kernel)
    if (
        type(module)._conv_forward is not base._conv_forward  # a custom convolution
        or x.ndim not in (nd + 1, nd + 2)
        or x.shape[-nd - 1] != weight.shape[1] * module.groups
        or weight.shape[0] % module.groups
        or 0 in x.shape[-nd:]
    ):
        return None

    def per_axis(value: Any) -> tuple[int, ...]:
        return (value,) * nd if isinstance(value, int) else tuple(value)

    stride, dilation = per_axis(module.stride), per_axis(module.dilation)
    if len(stride) != nd or len(dilation) != nd:
        return None
    if module.padding_mode != "zeros":  # padded by F.pad before an unpadded convolution
        flat = module._reversed_padding_repeated_twice
        pads = [(flat[2 * (nd - 1 - a)], flat[2 * (nd - 1 - a) + 1]) for a in range(nd)]
    elif module.padding == "valid":
        pads = [(0, 0)] * nd
    elif module.padding == "same":  # torch: left = total // 2, the rest on the right
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = [(t // 2, t - t // 2) for t in totals]
    else:
        padding = per_axis(module.padding)
        if len(padding) != nd:
            return None
        pads = [(p, p) for p in padding]
    out_shape, profiles = [], []
    for size, k, s, d, (left, right) in zip(x.shape[-nd:], kernel, stride, dilation, pads):
        padded = size + left + right
        out = (padded - d * (k - 1) - 1) // s + 1
        if out <= 0:
            return None
        hits = (torch.arange(out) * s).unsqueeze(1) + torch.arange(k) * d  # padded positions
        reads = torch.bincount(hits.flatten(), minlength=padded)
        if module.padding_mode == "zeros":
            source = torch.arange(padded) - left
            inside = (source >= 0) & (source < size)
            source, reads = source[inside], reads[inside]
        else:  # the input position F.pad copies into each padded position
            index = torch.arange(size, dtype=torch.float64).view(1, 1, size)
            try:
                source = F.pad(index, (left, right), mode=module.padding_mode).view(-1).long()
            except (RuntimeError, ValueError, NotImplementedError):
                return None  # padding this mode rejects: let the layer raise its error
        out_shape.append(out)
        profiles.append(torch.zeros(size, dtype=torch.int64).index_add_(0, source, reads))
    return out_shape, profiles


def _conv_ops_dense(module: nn.Conv1d | nn.Conv2d | nn.Conv3d, x: Tensor) -> LayerOps:
    """The convolution's own count: its event map through all-ones filters (the reference)."""
    events = (x != 0).to(torch.float64)
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
    every non-zero tap of its synapses whose delayed arrival falls within the ``T`` steps.

    Tap ``j`` of ``D`` carries delay ``D - 1 - j``: an event at step ``s`` arrives through it
    at ``s + D - 1 - j``, within the sequence iff ``s <= T - D + j``. So tap ``j`` of input
    ``i`` is reached by the events of ``i`` up to step ``T - D + j`` (none if negative), once
    per output whose synapse has that tap non-zero.
    """
    kernel = module.kernel().detach()  # [C_out, C_in, D]
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[2] != kernel.shape[1]:
        return _delayed_ops_dense(module, x)  # raises, as the layer would
    steps, batch, inputs = x.shape
    width = kernel.shape[2]
    so_far = torch.count_nonzero(x, dim=1).cumsum(0)  # [T, C_in] events up to each step
    last = torch.arange(width, device=so_far.device) + (steps - width)  # [D]: T - D + j
    reaching = so_far[last.clamp(min=0)] * (last >= 0).unsqueeze(1)  # [D, C_in]
    per_tap = torch.count_nonzero(kernel, dim=0).to(so_far.device)  # [C_in, D]: outputs per tap
    return LayerOps(
        macs=batch * kernel.shape[0] * steps * inputs * width,  # the dense kernel, every tap
        synops=int((per_tap * reaching.T).sum()),
        events=int(so_far[-1].sum()),
        inputs=x.numel(),
    )


def _delayed_ops_dense(module: DelayedLinear, x: Tensor) -> LayerOps:
    """The causal ``conv1d`` of the event map through the kernel's non-zero taps."""
    events = (x != 0).to(torch.float64)
    taps = (module.kernel().detach() != 0).to(torch.float64)  # [C_out, C_in, D]
    width = taps.shape[2]
    u = F.pad(events.permute(1, 2, 0), (width - 1, 0))  # [B, C_in, T + D - 1]
    reached = F.conv1d(u, taps)  # [B, C_out, T]
    return LayerOps(
        macs=reached.numel() * taps[0].numel(),
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

    Warns:
        UserWarning: naming the modules that ran with a weight of their own (a parameter with
        two or more non-trivial axes: a raw ``F.linear``/matmul weight, ``nn.ConvTranspose``,
        ``nn.MultiheadAttention``'s input projection, an embedding) but are none of the
        layers above: their work is in no entry and not in ``"total"``. Neuron modules and
        normalization layers are not reported.

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
    others = {
        name: m
        for name, m in model.named_modules()
        if name not in layers
        and _uncounted_weights(m)
        and not any(name.startswith(f"{layer}.") for layer in layers if layer)
    }
    counted: dict[str, LayerOps] = {}
    missed: dict[str, None] = {}  # ordered set of uncounted weight modules that ran

    def hook(name: str) -> Callable[..., None]:
        # after the layer's forward, which has checked its input (a bad one fails there,
        # named by the layer, not in the counting below)
        def record(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            x = args[0] if args else next(iter(kwargs.values()), None)
            if not isinstance(x, Tensor):
                raise TypeError(
                    f"module {name!r} ({type(module).__name__}) must be called with its input "
                    f"tensor first, got args of types {[type(a).__name__ for a in args]} and "
                    f"keywords {list(kwargs)}"
                )
            ops = _layer_ops(module, x)
            counted[name] = _add(counted[name], ops) if name in counted else ops

        return record

    def note(name: str) -> Callable[..., None]:
        def record(module: Any, args: tuple[Any, ...]) -> None:
            missed[name] = None

        return record

    handles = [m.register_forward_hook(hook(name), with_kwargs=True) for name, m in layers.items()]
    handles += [m.register_forward_pre_hook(note(name)) for name, m in others.items()]
    try:
        with eval_mode(model):
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    if missed:
        listed = [f"{name or '<model>'!r} ({type(others[name]).__name__})" for name in missed]
        warnings.warn(
            "synaptic_operations counts nn.Linear, nn.Conv1d/2d/3d and DelayedLinear layers "
            f"only; these modules ran with weights of their own and are not counted (not in "
            f"'total'): {', '.join(listed[:8])}{' ...' if len(listed) > 8 else ''}",
            UserWarning,
            stacklevel=3,  # the caller of synaptic_operations (past torch.no_grad's wrapper)
        )
    return {**counted, "total": functools.reduce(_add, counted.values(), LayerOps(0, 0, 0, 0))}


_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def _uncounted_weights(module: nn.Module) -> bool:
    """A module with a weight of its own (a parameter with >= 2 axes of size > 1) that is not
    a neuron (its per-neuron ``tau``/``threshold``) or a normalization layer's affine."""
    if isinstance(module, _NORMS) or callable(getattr(module, "step", None)):
        return False
    return any(sum(size > 1 for size in p.shape) >= 2 for p in module.parameters(recurse=False))
