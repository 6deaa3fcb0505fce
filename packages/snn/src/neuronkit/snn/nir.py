"""NIR export and import: :func:`to_nir` and :func:`from_nir` (optional extra ``nir``).

NIR (Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set
for interoperable brain-inspired computing", Nat. Commun. 2024) describes neurons as
continuous-time ODEs and graphs of nodes joined by identity edges (several edges into a node
are summed). This package simulates discrete time with steps of length ``dt``. The two meet
through forward Euler with the input held over the step, the discretisation Norse's and
snnTorch's NIR importers use (``beta = 1 - dt / tau``, input gain ``r dt / tau``):

* a neuron's time constant in steps is ``tau_s = tau / dt``; an exported graph carries
  ``tau_nir = tau_s * dt_graph`` (``dt_graph``: the ``dt`` argument of :func:`to_nir`, by
  default the modules' own ``dt``) and records ``dt_graph`` as ``graph.metadata["dt"]``;
  :func:`from_nir` divides by ``dt`` again (its ``dt`` argument, else that metadata entry);
* NIR ``LIF`` ``tau dv/dt = (v_leak - v) + r I`` steps as
  ``v += (dt / tau) (v_leak - v + r I)``, which is :class:`~neuronkit.snn.LIF` with
  ``decay_input=True`` when ``r = 1`` and with ``decay_input=False`` (``v = (1 - 1/tau_s) v +
  I``) when ``r = tau / dt``; any other ``r`` imports as an input gain in front of the
  ``decay_input=True`` neuron;
* NIR resets to ``v_reset`` after a spike: :class:`~neuronkit.snn.LIF`'s ``reset="zero"``
  (reset to ``v_reset``). ``reset="subtract"`` has no NIR equivalent and is refused;
  ``reset="none"`` is exported exactly as an ``LI`` (or, for IF, an ``I``) node followed by a
  ``Threshold`` node;
* this package's neurons leak towards their reset value, so ``v_leak = v_reset`` on export,
  and a graph with ``v_leak != v_reset`` is refused on import;
* ``Delay`` nodes hold seconds: ``delay = steps * dt_graph`` (must be a whole number of steps
  on import).

Firing: NIR writes ``z = v > v_threshold``, this package ``v >= threshold``; they differ only
when the membrane lands exactly on the threshold. Surrogate gradients and ``detach_reset`` only
shape training gradients, have no NIR field and are not exported (imports use the defaults).

==================  ===========================================  ==================================
module (here)       NIR node and fields                          notes
==================  ===========================================  ==================================
SeqLinear           ``Affine(W, b)`` / ``Linear(W)`` (no bias)   one-dimensional samples
SeqConv1d/2d        ``Conv1d`` / ``Conv2d`` (``bias`` = 0 if     ``padding_mode="zeros"`` only
                    none), ``input_shape`` recorded
SeqFlatten          ``Flatten(start_dim - 1, end_dim - 1)``      NIR dims exclude the batch
SeqAvgPool2d        ``AvgPool2d(kernel, stride, padding)``       no ``ceil_mode``; padded zeros
                                                                 are counted
SeqAvgPool2d(       ``SumPool2d(kernel, stride, padding)``       sum pooling
divisor_override=1)
LIF / PLIF          ``LIF(tau = tau_s dt, r = 1 | tau_s,         ``reset="zero"``; PLIF exports
(reset="zero")      v_leak = v_reset, v_threshold, v_reset)``    its current tau
LIF (reset="none")  ``LI(tau, r, v_leak)`` -> ``Threshold``
IF (reset="zero")   ``IF(r = 1 / dt, v_threshold, v_reset)``     dv/dt = r I, Euler: v += I
IF (reset="none")   ``I(r = 1 / dt)`` -> ``Threshold``
CuBaLIF             ``CubaLIF(tau_syn = ts dt, tau_mem = tm dt,  the current jumps by the input:
(reset="zero")      w_in = ts, r = 1 | tm, v_leak = v_reset,     ``w_in dt / tau_syn = 1``
                    v_threshold, v_reset)``
LI                  ``LI(tau = tau_s dt, r = 1 | tau_s, v_leak)``
Delay               ``Delay(delay = steps * dt)``
NIRModule           its graph (nested ``NIRGraph`` for inner     re-exports imported graphs
                    NIRModules)
==================  ===========================================  ==================================

Refused (a clear error naming the module): ``reset="subtract"``, :class:`~neuronkit.snn.ALIF`
(NIR has no adaptive threshold), CuBaLIF with ``reset="none"``, BatchNorm (fold it into the
preceding layer first), max and adaptive pooling, training-mode dropout, tensor parameters
that vary over the batch. On import: recurrent edges (cycles), several graph inputs, unknown
node types, non-uniform ``v_reset``, ``v_leak != v_reset``, non-integer delays.

Usage::

    graph = to_nir(model, input_shape=(64,))          # model: nn.Sequential of this package
    nir.write("model.nir", graph)
    net = from_nir(nir.read("model.nir"))             # an NIRModule: [T, B, 64] -> [T, B, ...]
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from neuronkit.common import as_float_array, check_finite, check_number, check_type, host_array

from ._core import autocast_half, broadcasts, hold
from .integrator import LI, Delay
from .layers import SeqAvgPool2d, SeqConv1d, SeqConv2d, SeqFlatten, SeqLinear, TimeDistributed
from .neurons import ALIF, IF, LIF, CuBaLIF

__all__ = ["InputGain", "Integrator", "NIRModule", "Scale", "Threshold", "from_nir", "to_nir"]

_RTOL = 1e-6  # parameters this close to a canonical value are taken as that value


def _nir() -> Any:
    """The ``nir`` package, or an ImportError naming the extra."""
    try:
        import nir
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "neuronkit.snn.nir needs the optional dependency 'nir'; install it with "
            "pip install 'neuronkit-snn[nir]'"
        ) from err
    return nir


def _check_float_or_tensor(name: str, value: Any) -> None:
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a float or a floating-point tensor, got {value.dtype}")
    else:
        check_number(name, value)


def _check_nodes(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """``value`` must be a dict from node names (str) to ``kind``."""
    check_type(name, value, dict)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, kind):
            raise TypeError(
                f"{name} must map node names (str) to {_kind_name(kind)}, got "
                f"{key!r:.40}: {type(item).__name__}"
            )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__name__ for k in kinds)


# ---- small executor modules (what NIR nodes without a counterpart here import as) -----------


class Threshold(nn.Module):
    """NIR ``Threshold`` node over time: ``z = 1[x >= threshold]`` for ``x: [T, B, ...]``.

    ``threshold`` is a float or a tensor of one sample's shape (a buffer). No gradient flows
    (a graph imported for inference); use the neuron modules to train.
    """

    threshold: float | Tensor

    def __init__(self, threshold: float | Tensor) -> None:
        super().__init__()
        _check_float_or_tensor("threshold", threshold)
        hold(self, "threshold", threshold)

    def forward(self, x: Tensor) -> Tensor:
        thr = self.threshold
        if isinstance(thr, Tensor):
            thr = thr.to(device=x.device, dtype=x.dtype)
        return torch.ge(x, thr).to(x.dtype)


def _on_device(value: float | Tensor, x: Tensor) -> float | Tensor:
    """A tensor gain on ``x``'s device and in its dtype (a buffer, already there once the
    module is moved with ``module.to(device)``; kept in float64 as NIR computes it, so a
    float64 input gets its full precision and a float32 one is not promoted); floats pass
    through."""
    return value.to(device=x.device, dtype=x.dtype) if isinstance(value, Tensor) else value


class Integrator(nn.Module):
    """NIR ``I`` node (perfect integrator ``dv/dt = r I``) over time: ``v_t = v_{t-1} + g
    x_t`` with ``g = r dt`` (``g = 1`` skips the product; a tensor ``g`` is a buffer);
    ``x, v: [T, B, ...]``, ``v_0 = 0``. Under autocast a half-precision ``x`` is integrated,
    and ``v`` returned, in float32."""

    gain: float | Tensor

    def __init__(self, gain: float | Tensor = 1.0) -> None:
        super().__init__()
        _check_float_or_tensor("gain", gain)
        hold(self, "gain", gain)

    def forward(self, x: Tensor) -> Tensor:
        if autocast_half(x) is not None:  # integrated, and returned, in float32 (as LI)
            x = x.float()
        if not (isinstance(self.gain, float) and self.gain == 1.0):
            x = x * _on_device(self.gain, x)
        v = torch.zeros_like(x[0])
        out = []
        for x_t in x.unbind(0):
            v = x_t + v
            out.append(v)
        return torch.stack(out)


class Scale(nn.Module):
    """NIR ``Scale`` node: ``y = x * scale`` elementwise, ``scale`` of one sample's shape."""

    scale: Tensor

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        check_type("scale", scale, Tensor)
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)  # NIR arrays are float64: keep the input's dtype


class InputGain(nn.Module):
    """A neuron whose input is multiplied by ``gain`` first (NIR's ``r`` / ``w_in`` when they
    are not a value the neuron expresses itself): ``neuron(x * gain)``; a tensor ``gain`` is a
    buffer."""

    gain: float | Tensor

    def __init__(self, gain: float | Tensor, neuron: nn.Module) -> None:
        super().__init__()
        _check_float_or_tensor("gain", gain)
        check_type("neuron", neuron, nn.Module)
        hold(self, "gain", gain)
        self.neuron = neuron

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.neuron(x * _on_device(self.gain, x))
        return out


class NIRModule(nn.Module):
    """An executable NIR graph: nodes run in topological order on time-major tensors.

    Made by :func:`from_nir`. ``forward(x)`` takes ``x: [T, B, *input_shape]`` (or a dict
    ``{input_name: tensor}``) and returns the output ``[T, B, *output_shape]`` (a dict
    ``{output_name: tensor}`` when the graph has several outputs). Several edges into a node
    are summed, as NIR specifies. ``to_nir(module)`` exports it again.

    Attributes:
        nodes: ``nn.ModuleDict`` of the computing nodes (keys are the NIR names with ``.``
            replaced by ``_``).
        order: node names in execution order; ``edges``: the NIR edges;
        input_types / output_types: per-sample shapes of the graph's inputs and outputs.
    """

    def __init__(
        self,
        modules: dict[str, nn.Module],
        edges: Sequence[tuple[str, str]],
        input_types: dict[str, tuple[int, ...] | None],
        output_types: dict[str, tuple[int, ...] | None],
        dt: float,
    ) -> None:
        super().__init__()
        _check_nodes("modules", modules, nn.Module)
        if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
            raise TypeError(
                f"edges must be a sequence of (source, target) pairs, got "
                f"{type(edges).__name__} ({edges!r:.80})"
            )
        for edge in edges:
            if isinstance(edge, (str, bytes)) or not isinstance(edge, Sequence) or len(edge) != 2:
                raise TypeError(f"edges must hold (source, target) pairs, got {edge!r:.80}")
        _check_nodes("input_types", input_types, (tuple, type(None)))
        _check_nodes("output_types", output_types, (tuple, type(None)))
        check_number("dt", dt, gt=0)
        self.names = list(modules)
        self.keys = {name: name.replace(".", "_") for name in modules}
        if len(set(self.keys.values())) != len(self.keys):
            raise ValueError("node names must stay distinct with '.' replaced by '_'")
        self.nodes = nn.ModuleDict({self.keys[n]: m for n, m in modules.items()})
        self.edges = [(str(a), str(b)) for a, b in edges]
        self.input_types = dict(input_types)
        self.output_types = dict(output_types)
        self.dt = dt
        everything = list(input_types) + list(modules) + list(output_types)
        self.order = _toposort(everything, self.edges)
        self.preds: dict[str, list[str]] = {n: [] for n in everything}
        for a, b in self.edges:
            self.preds[b].append(a)
        unfed = [n for n in everything if n not in input_types and not self.preds[n]]
        if unfed:  # forward would fail only when it reaches them
            raise ValueError(
                f"edges must feed every node and output, got no input edge into {unfed}"
            )

    def forward(self, x: Tensor | dict[str, Tensor]) -> Tensor | dict[str, Tensor]:
        if isinstance(x, Tensor):
            if len(self.input_types) != 1:
                raise ValueError(
                    f"x must be a dict over the graph inputs {sorted(self.input_types)}, got "
                    "one tensor"
                )
            x = {next(iter(self.input_types)): x}
        check_type("x", x, dict)
        if set(x) != set(self.input_types):
            raise ValueError(f"x must have the keys {sorted(self.input_types)}, got {sorted(x)}")
        values: dict[str, Tensor] = {}
        for name, shape in self.input_types.items():
            t = x[name]
            check_type(f"x[{name!r}]", t, Tensor)
            if not t.is_floating_point():
                raise TypeError(f"x[{name!r}] must be a floating-point tensor, got dtype {t.dtype}")
            if t.ndim < 3:
                raise ValueError(
                    f"x[{name!r}] must be time-major [T, B, ...], got shape {tuple(t.shape)}"
                )
            if shape is not None and tuple(t.shape[2:]) != tuple(shape):
                raise ValueError(
                    f"x[{name!r}] must have shape [T, B, {', '.join(map(str, shape))}], got "
                    f"{tuple(t.shape)}"
                )
            values[name] = t
        for name in self.order:
            if name in self.input_types:
                continue
            srcs = self.preds[name]
            if not srcs:
                raise ValueError(f"node {name!r} has no input edge")
            h = values[srcs[0]]
            for s in srcs[1:]:
                h = h + values[s]
            values[name] = h if name in self.output_types else self.nodes[self.keys[name]](h)
        if len(self.output_types) == 1:
            return values[next(iter(self.output_types))]
        return {n: values[n] for n in self.output_types}

    def extra_repr(self) -> str:
        return f"dt={self.dt:g}, inputs={list(self.input_types)}, outputs={list(self.output_types)}"


def _toposort(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    known = set(names)
    indeg = {n: 0 for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        for end in (a, b):
            if end not in known:
                raise ValueError(f"edge ({a!r}, {b!r}) names an unknown node {end!r}")
        succ[a].append(b)
        indeg[b] += 1
    ready = [n for n in names if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(names):
        cyc = sorted(n for n in names if indeg[n] > 0)
        raise ValueError(
            f"the NIR graph has recurrent edges (a cycle through {cyc}); recurrent graphs are "
            "not supported by from_nir"
        )
    return order


# ---- export ----------------------------------------------------------------------------------

_SUPPORTED = (
    nn.Identity,
    nn.Dropout,
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Flatten,
    nn.AvgPool2d,
    LIF,
    IF,
    CuBaLIF,
    LI,
    Delay,
    Threshold,
    Integrator,
    Scale,
    InputGain,
)


def _shape_arg(name: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, torch.Size)) or not shape:
        raise TypeError(
            f"{name} must be a non-empty tuple of positive ints (one sample's shape, without T "
            f"and B), got {shape!r:.80}"
        )
    for s in shape:
        check_number(f"{name} entries", s, ge=1, integer=True)
    return tuple(int(s) for s in shape)


def _param_array(name: str, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A float or tensor parameter as an array of one sample's ``shape`` (float64 for floats)."""
    if isinstance(value, Tensor):
        t = value.detach().cpu()
        target = (1, *shape)
        if not broadcasts(t.shape, target):
            raise ValueError(
                f"cannot export {what}: its {name} tensor of shape {list(t.shape)} does not "
                f"broadcast to one sample {list(shape)} (NIR parameters cannot vary over the "
                "batch)"
            )
        return host_array(t.expand(target)[0]).copy()
    return np.full(shape, float(value), dtype=np.float64)


def _model_dt(model: nn.Module) -> float | None:
    kinds = (LIF, CuBaLIF, LI, ALIF, NIRModule)
    dts = {float(_attr(m, "dt")) for m in model.modules() if isinstance(m, kinds)}
    if len(dts) > 1:
        raise ValueError(
            f"the model's neurons use different dt values {sorted(dts)}; pass dt= to to_nir "
            "to choose the graph's step length"
        )
    return dts.pop() if dts else None


def _flatten_seq(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        path = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            out += _flatten_seq(child, path + "_")
        else:
            out.append((path, child))
    return out


def _refuse(path: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(f"cannot export module {path!r} ({type(module).__name__}) to NIR: {why}")


def _attr(m: nn.Module, name: str) -> Any:
    """A plain attribute of a module (typed ``Any``; ``nn.Module.__getattr__`` says Tensor)."""
    return m.__dict__[name] if name in m.__dict__ else getattr(m, name)


def _check_reset(path: str, m: Any) -> None:
    if m.reset == "subtract":
        raise _refuse(
            path,
            m,
            "reset='subtract' has no NIR equivalent (NIR neurons reset to v_reset); build the "
            "model with reset='zero' (to v_reset) or reset='none' to export it",
        )
    if not isinstance(m.v_reset, (int, float)):
        raise _refuse(path, m, "v_reset must be a plain number")


def _tau_nir(m: Any, tau: Any, dt_graph: float) -> Any:
    """``tau`` in the graph's time unit: the same number of steps, ``tau / m.dt * dt_graph``."""
    ratio = dt_graph / float(m.dt)
    if ratio == 1.0:
        return tau
    return tau * ratio


def _export_one(
    path: str,
    m: nn.Module,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    dt_graph: float,
) -> list[tuple[str, Any]]:
    """NIR nodes ``[(name, node), ...]`` (a chain) for one module; ``[]`` for an identity."""
    nir = _nir()
    inner = m.module if isinstance(m, TimeDistributed) else m
    if isinstance(m, TimeDistributed) and type(inner) is nn.Sequential:
        nodes: list[tuple[str, Any]] = []
        shape = in_shape
        for sub_path, sub in _flatten_seq(inner, f"{path}_"):
            with torch.no_grad():
                probe = TimeDistributed(sub)(_probe_input(sub, shape))
            sub_out = tuple(probe.shape[2:])
            nodes += _export_one(sub_path, TimeDistributed(sub), shape, sub_out, dt_graph)
            shape = sub_out
        return nodes
    timed = isinstance(m, (TimeDistributed, SeqLinear, SeqConv1d, SeqConv2d, SeqFlatten))
    timed = timed or isinstance(m, SeqAvgPool2d)

    if isinstance(inner, nn.Identity) or (isinstance(inner, nn.Dropout) and not inner.training):
        return []
    if isinstance(inner, nn.Dropout):
        raise _refuse(path, m, "dropout in training mode; call model.eval() first")
    if isinstance(inner, nn.Linear):
        if len(in_shape) != 1:
            raise _refuse(
                path, m, f"a Linear layer on samples of shape {list(in_shape)}; flatten first"
            )
        w = host_array(inner.weight).copy()
        if inner.bias is None:
            return [(f"linear_{path}", nir.Linear(weight=w))]
        b = host_array(inner.bias).copy()
        return [(f"affine_{path}", nir.Affine(weight=w, bias=b))]
    if isinstance(inner, (nn.Conv1d, nn.Conv2d)):
        if not timed:
            raise _refuse(path, m, "a plain torch conv layer; use SeqConv1d/SeqConv2d over time")
        if inner.padding_mode != "zeros":
            raise _refuse(path, m, f"padding_mode={inner.padding_mode!r} (NIR pads with zeros)")
        w = host_array(inner.weight).copy()
        b = (
            np.zeros(w.shape[0], dtype=w.dtype)
            if inner.bias is None
            else host_array(inner.bias).copy()
        )
        pad: Any = inner.padding if isinstance(inner.padding, str) else tuple(inner.padding)
        if isinstance(inner, nn.Conv1d):
            node = nir.Conv1d(
                input_shape=int(in_shape[1]),
                weight=w,
                stride=int(inner.stride[0]),
                padding=pad if isinstance(pad, str) else int(pad[0]),
                dilation=int(inner.dilation[0]),
                groups=int(inner.groups),
                bias=b,
            )
            node.input_type = {"input": np.array(in_shape)}  # C_in, not C_in / groups
            node.output_type = {"output": np.array(out_shape)}
            return [(f"conv1d_{path}", node)]
        node = nir.Conv2d(
            input_shape=(int(in_shape[1]), int(in_shape[2])),
            weight=w,
            stride=tuple(int(s) for s in inner.stride),
            padding=pad if isinstance(pad, str) else tuple(int(p) for p in pad),
            dilation=tuple(int(d) for d in inner.dilation),
            groups=int(inner.groups),
            bias=b,
        )
        # nir 1.0.8 infers C_in / groups and a square kernel; record the true types
        node.input_type = {"input": np.array(in_shape)}
        node.output_type = {"output": np.array(out_shape)}
        return [(f"conv2d_{path}", node)]
    if isinstance(inner, nn.Flatten):
        if not timed:
            raise _refuse(path, m, "a plain nn.Flatten would flatten T and B; use SeqFlatten")
        start, end = inner.start_dim, inner.end_dim
        if start == 0 or end == 0:
            raise _refuse(path, m, "flattening the batch dimension")
        node = nir.Flatten(
            input_type={"input": np.array(in_shape)},
            start_dim=start - 1 if start > 0 else start,
            end_dim=end - 1 if end > 0 else end,
        )
        return [(f"flatten_{path}", node)]
    if isinstance(inner, nn.AvgPool2d):
        if not timed:
            raise _refuse(path, m, "a plain nn.AvgPool2d; use SeqAvgPool2d over time")
        if inner.ceil_mode:
            raise _refuse(path, m, "ceil_mode=True (NIR pooling floors the output size)")
        k = np.array(_pair(inner.kernel_size))
        s = np.array(_pair(inner.stride if inner.stride is not None else inner.kernel_size))
        p = np.array(_pair(inner.padding))
        if inner.divisor_override == 1 and (inner.count_include_pad or not p.any()):
            return [(f"sumpool2d_{path}", nir.SumPool2d(kernel_size=k, stride=s, padding=p))]
        if inner.divisor_override is not None:
            raise _refuse(path, m, f"divisor_override={inner.divisor_override} (only 1: sum)")
        if p.any() and not inner.count_include_pad:
            raise _refuse(path, m, "count_include_pad=False with padding")
        return [(f"avgpool2d_{path}", nir.AvgPool2d(kernel_size=k, stride=s, padding=p))]
    if isinstance(inner, (nn.BatchNorm1d, nn.BatchNorm2d)):
        raise _refuse(path, m, _NO_BATCH_NORM)
    if isinstance(inner, (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        raise _refuse(path, m, "NIR defines only AvgPool2d and SumPool2d")
    return _export_neuron(path, m, out_shape, dt_graph)


_NO_BATCH_NORM = (
    "NIR has no batch norm; fold it into the preceding layer first "
    "(neuronkit.snn.training.fold_batchnorm(layer, bn) returns the folded layer, in eval mode)"
)


def _precheck(path: str, m: nn.Module) -> None:
    """Refuse unsupported modules before anything runs them (a probe could change state)."""
    inner = m.module if isinstance(m, TimeDistributed) else m
    if isinstance(m, TimeDistributed) and type(inner) is nn.Sequential:
        for sub_path, sub in _flatten_seq(inner, f"{path}_"):
            _precheck(sub_path, TimeDistributed(sub))
        return
    timed = isinstance(m, (TimeDistributed, SeqLinear, SeqConv1d, SeqConv2d, SeqFlatten))
    timed = timed or isinstance(m, SeqAvgPool2d)
    if isinstance(inner, nn.modules.batchnorm._BatchNorm):
        raise _refuse(path, m, _NO_BATCH_NORM)
    if isinstance(inner, (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        raise _refuse(path, m, "NIR defines only AvgPool2d and SumPool2d pooling")
    if isinstance(m, ALIF):
        raise _refuse(path, m, "NIR has no adaptive-threshold neuron")
    if isinstance(inner, nn.Dropout) and inner.training:
        raise _refuse(path, m, "dropout in training mode; call model.eval() first")
    if isinstance(inner, (nn.Conv1d, nn.Conv2d, nn.Flatten, nn.AvgPool2d)) and not timed:
        raise _refuse(
            path,
            m,
            f"a plain torch {type(inner).__name__} does not run over time; use its Seq* "
            "version (SeqConv1d, SeqConv2d, SeqFlatten, SeqAvgPool2d) or TimeDistributed",
        )
    if isinstance(m, (LIF, IF, CuBaLIF)):
        _check_reset(path, m)
    if isinstance(m, InputGain):
        _precheck(path, m.neuron)
    if not isinstance(inner, _SUPPORTED):
        raise _refuse(path, m, "no NIR mapping for this module type")


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _dtype(m: nn.Module) -> torch.dtype:
    for p in m.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _probe_input(m: nn.Module, shape: tuple[int, ...]) -> Tensor:
    """Zeros ``[1, 1, *shape]`` in ``m``'s dtype, on the device of its first parameter or
    buffer (the CPU for a module without tensors), to probe its output shape."""
    device = next(itertools.chain(m.parameters(), m.buffers()), torch.empty(0)).device
    return torch.zeros((1, 1, *shape), dtype=_dtype(m), device=device)


def _export_neuron(
    path: str, m: nn.Module, shape: tuple[int, ...], dt_graph: float
) -> list[tuple[str, Any]]:
    nir = _nir()
    if isinstance(m, ALIF):
        raise _refuse(path, m, "NIR has no adaptive-threshold neuron")
    if isinstance(m, InputGain):
        nodes = _export_one(path, m.neuron, shape, shape, dt_graph)
        if not nodes:  # an identity: no node to carry the gain
            raise _refuse(path, m, f"an input gain in front of {type(m.neuron).__name__}")
        gain = _param_array("gain", m.gain, shape, f"module {path!r}")
        node = nodes[0][1]
        if isinstance(node, nir.CubaLIF):
            node.w_in = node.w_in * gain
        elif hasattr(node, "r"):
            node.r = node.r * gain
        else:  # pragma: no cover - InputGain only wraps neurons
            raise _refuse(path, m, "an input gain in front of a node without r")
        return nodes
    if isinstance(m, LIF):  # PLIF too: its tau property is the current value
        _check_reset(path, m)
        what = f"module {path!r}"
        tau = _param_array("tau", _tau_nir(m, m.tau, dt_graph), shape, what)
        r = np.ones(shape) if m.decay_input else tau.astype(np.float64) / dt_graph
        v_leak = np.full(shape, float(m.v_reset))
        thr = _param_array("threshold", m.threshold, shape, what)
        if m.reset == "none":
            return [
                (f"li_{path}", nir.LI(tau=tau, r=r, v_leak=v_leak)),
                (f"threshold_{path}", nir.Threshold(threshold=thr)),
            ]
        node = nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=thr, v_reset=v_leak.copy())
        return [(f"lif_{path}", node)]
    if isinstance(m, IF):
        _check_reset(path, m)
        r = np.full(shape, 1.0 / dt_graph)
        thr = _param_array("threshold", m.threshold, shape, f"module {path!r}")
        if m.reset == "none":
            # v starts at v_reset and NIR's I at 0: the offset moves into the threshold
            return [
                (f"i_{path}", nir.I(r=r)),
                (f"threshold_{path}", nir.Threshold(threshold=thr - float(m.v_reset))),
            ]
        v_reset = np.full(shape, float(m.v_reset))
        return [(f"if_{path}", nir.IF(r=r, v_threshold=thr, v_reset=v_reset))]
    if isinstance(m, CuBaLIF):
        _check_reset(path, m)
        if m.reset == "none":
            raise _refuse(
                path,
                m,
                "reset='none' would need NIR's CubaLI node, which from_nir does not run; use "
                "reset='zero'",
            )
        what = f"module {path!r}"
        tau_mem = _param_array("tau_mem", _tau_nir(m, m.tau_mem, dt_graph), shape, what)
        tau_syn = _param_array("tau_syn", _tau_nir(m, m.tau_syn, dt_graph), shape, what)
        w_in = tau_syn / dt_graph
        r = np.ones(shape) if m.decay_input else tau_mem / dt_graph
        v_leak = np.full(shape, float(m.v_reset))
        thr = _param_array("threshold", m.threshold, shape, what)
        node = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r,
            v_leak=v_leak,
            v_threshold=thr,
            v_reset=v_leak.copy(),
            w_in=w_in,
        )
        return [(f"cubalif_{path}", node)]
    if isinstance(m, LI):
        what = f"module {path!r}"
        tau = _param_array("tau", _tau_nir(m, m.tau, dt_graph), shape, what)
        r = np.ones(shape) if m.decay_input else tau / dt_graph
        v_leak = np.full(shape, float(m.v_leak))
        return [(f"li_{path}", nir.LI(tau=tau, r=r, v_leak=v_leak))]
    if isinstance(m, Delay):
        steps = _param_array("steps", m.steps, shape, f"module {path!r}")
        return [(f"delay_{path}", nir.Delay(delay=steps.astype(np.float64) * dt_graph))]
    if isinstance(m, Threshold):
        thr = _param_array("threshold", m.threshold, shape, f"module {path!r}")
        return [(f"threshold_{path}", nir.Threshold(threshold=thr))]
    if isinstance(m, Integrator):
        gain = _param_array("gain", m.gain, shape, f"module {path!r}")
        return [(f"i_{path}", nir.I(r=gain / dt_graph))]
    if isinstance(m, Scale):
        scale = _param_array("scale", m.scale, shape, f"module {path!r}")  # a scalar broadcast
        return [(f"scale_{path}", nir.Scale(scale=scale))]
    raise _refuse(path, m, "no NIR mapping for this module type")


def to_nir(
    model: nn.Module,
    input_shape: Sequence[int] | int | None = None,
    *,
    dt: float | None = None,
) -> Any:
    """Export a model of this package's modules to a ``nir.NIRGraph``.

    Args:
        model: an ``nn.Sequential`` (nested ones are flattened) of the supported modules (see
            the module docstring's table), a single supported module, or an
            :class:`NIRModule` (an imported graph, DAGs included; exported with its edges).
        input_shape: one sample's shape without ``T`` and ``B``, e.g. ``(64,)`` or
            ``(1, 8, 8)``; the model must accept ``[T, B, *input_shape]``. Optional for an
            :class:`NIRModule` (its recorded input type is used).
        dt: the length of one step in the graph's time unit (e.g. seconds). Time constants
            keep their length in steps: ``tau_nir = tau / module.dt * dt``. Default: the
            neurons' own ``dt`` (they must agree), else 1.0.

    Returns:
        A type-checked ``nir.NIRGraph`` with ``Input``/``Output`` nodes carrying the sample
        shapes and ``metadata = {"dt": dt, "source": "neuronkit-snn"}``.

    Raises:
        ImportError: the ``nir`` extra is missing (``pip install 'neuronkit-snn[nir]'``).
        ValueError: a module that cannot be mapped faithfully (named, with the reason).
    """
    nir = _nir()
    check_type("model", model, nn.Module)
    if dt is not None:
        check_number("dt", dt, gt=0)
    dt_graph = float(dt) if dt is not None else (_model_dt(model) or 1.0)
    if isinstance(model, NIRModule):
        if input_shape is not None:
            shape = _shape_arg("input_shape", input_shape)
            if len(model.input_types) != 1 or next(iter(model.input_types.values())) not in (
                None,
                shape,
            ):
                raise ValueError(
                    f"input_shape {shape} does not match the graph's inputs {model.input_types}"
                )
        return _graph_of(nir, model, dt_graph)
    if input_shape is None:
        raise TypeError("input_shape is required (one sample's shape, without T and B)")
    shape = _shape_arg("input_shape", input_shape)
    layers = _flatten_seq(model) if type(model) is nn.Sequential else [("0", model)]
    if not layers:
        raise ValueError("model must contain at least one module, got an empty Sequential")
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    names = ["input"]
    cur = shape
    for path, m in layers:
        if isinstance(m, NIRModule):
            sub = _graph_of(nir, m, dt_graph)
            out = m.output_types
            if len(out) != 1 or len(m.input_types) != 1:
                raise _refuse(path, m, "an inner graph must have one input and one output")
            name = f"graph_{path}"
            nodes[name] = sub
            names.append(name)
            first = next(iter(out.values()))
            if first is None:
                raise _refuse(path, m, "the inner graph's output shape is unknown")
            cur = tuple(first)
            continue
        _precheck(path, m)
        try:
            with torch.no_grad():
                probe = m(_probe_input(m, cur))
        except Exception as err:
            raise ValueError(
                f"module {path!r} ({type(m).__name__}) does not accept time-major input of "
                f"shape [T, B, {', '.join(map(str, cur))}]: {err}"
            ) from err
        out_shape = tuple(int(s) for s in probe.shape[2:])
        for name, node in _export_one(path, m, cur, out_shape, dt_graph):
            nodes[name] = node
            names.append(name)
        cur = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(cur)})
    names.append("output")
    edges = list(itertools.pairwise(names))
    return nir.NIRGraph(
        nodes=nodes,
        edges=edges,
        metadata={"dt": dt_graph, "source": "neuronkit-snn"},
        type_check=True,
    )


def _graph_of(nir: Any, model: NIRModule, dt_graph: float) -> Any:
    """The NIR graph of an :class:`NIRModule` (shapes taken from a probe run)."""
    nodes: dict[str, Any] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in model.input_types.items():
        if shape is None:
            raise ValueError(f"the graph input {name!r} has no recorded shape; cannot export")
        nodes[name] = nir.Input(input_type={"input": np.array(shape)})
        shapes[name] = tuple(shape)
    for name in model.order:
        if name in model.input_types:
            continue
        src = model.preds[name][0]
        in_shape = shapes[src]
        if name in model.output_types:
            nodes[name] = nir.Output(output_type={"output": np.array(in_shape)})
            shapes[name] = in_shape
            continue
        m = model.nodes[model.keys[name]]
        if not isinstance(m, NIRModule):
            _precheck(name, m)
        with torch.no_grad():
            probe = m(_probe_input(m, in_shape))
        out_shape = tuple(int(s) for s in probe.shape[2:])
        shapes[name] = out_shape
        if isinstance(m, NIRModule):
            nodes[name] = _graph_of(nir, m, dt_graph)
            continue
        chain = _export_one(name, m, in_shape, out_shape, dt_graph)
        if len(chain) != 1:
            raise _refuse(name, m, "a graph node must map to exactly one NIR node")
        nodes[name] = chain[0][1]
    return nir.NIRGraph(
        nodes=nodes,
        edges=list(model.edges),
        metadata={"dt": dt_graph, "source": "neuronkit-snn"},
        type_check=True,
    )


# ---- import ----------------------------------------------------------------------------------


def _value(name: str, arr: Any, node_name: str, *, uniform: bool = False) -> float | Tensor:
    """A float when every entry is equal, else a tensor (``uniform`` refuses the latter)."""
    a = np.asarray(arr)
    if a.dtype.kind != "f":  # integers become floats; strings, complex: a TypeError naming it
        a = as_float_array(f"node {node_name!r}: {name}", arr)
    if a.size == 0:
        raise ValueError(f"node {node_name!r}: {name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"node {node_name!r}: {name} must be finite, got {a!r:.80}")
    first = a.reshape(-1)[0]
    if np.all(a == first):
        return float(first)
    if uniform:
        raise ValueError(
            f"node {node_name!r}: {name} must be the same for every neuron here (a plain "
            f"number in this package), got values from {a.min()} to {a.max()}"
        )
    return torch.as_tensor(a.copy())


def _real(node_name: str, field: str, value: Any) -> None:
    """Refuse a NIR array field that is not finite real numbers (strings, complex, NaN)."""
    check_finite(
        f"node {node_name!r}: {field}", as_float_array(f"node {node_name!r}: {field}", value)
    )


def _int_field(node_name: str, field: str, value: Any, n: int, ge: int | None) -> tuple[int, ...]:
    """``n`` integers from a NIR field (a scalar or ``n`` values; integer-valued floats pass)."""
    name = f"node {node_name!r}: {field}"
    a = as_float_array(name, value).reshape(-1)
    if a.size not in (1, n) or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise ValueError(f"{name} must be {n} integer(s), got {np.asarray(value)!r:.80}")
    ints = tuple(int(v) for v in np.broadcast_to(a, (n,)))
    for v in ints:
        check_number(name, v, ge=ge)
    return ints


def _close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=np.float64), b, rtol=_RTOL, atol=0.0))


def _gain(g: Any) -> float | Tensor | None:
    """``None`` when the gain is 1 (within rounding), else a float or tensor."""
    g = np.asarray(g, dtype=np.float64)
    if _close(g, 1.0):
        return None
    first = g.reshape(-1)[0]
    return float(first) if np.all(g == first) else torch.as_tensor(g.copy())  # float64


def _with_gain(gain: float | Tensor | None, neuron: nn.Module) -> nn.Module:
    return neuron if gain is None else InputGain(gain, neuron)


def _tau_steps(name: str, tau: Any, dt: float, node_name: str) -> float | Tensor:
    t = _value(name, tau, node_name)
    low = float(np.min(np.asarray(tau))) / dt
    if low < 1.0 - _RTOL:
        raise ValueError(
            f"node {node_name!r}: {name} must be >= dt ({dt:g}) to run with forward Euler, got "
            f"a minimum of {float(np.min(np.asarray(tau))):g}; pass the graph's dt to from_nir"
        )
    return t


def _reset_value(node: Any, node_name: str) -> tuple[float, float | Tensor]:
    v_reset = _value("v_reset", node.v_reset, node_name, uniform=True)
    thr = _value("v_threshold", node.v_threshold, node_name)
    low = float(np.min(np.asarray(node.v_threshold)))
    if not float(v_reset) < low:
        raise ValueError(
            f"node {node_name!r}: v_reset ({v_reset}) must be below v_threshold (min {low})"
        )
    return float(v_reset), thr


def _check_leak(node: Any, v_reset: float, node_name: str) -> None:
    if not _close(node.v_leak, v_reset) and not np.all(np.asarray(node.v_leak) == v_reset):
        raise ValueError(
            f"node {node_name!r}: v_leak must equal v_reset ({v_reset}); this package's neurons "
            "leak towards their reset value"
        )


def _leaky(r: Any, tau: Any, dt: float) -> tuple[bool, float | Tensor | None]:
    """``(decay_input, gain)`` for NIR's input gain ``r`` of a leaky membrane."""
    if _close(r, 1.0):
        return True, None
    if _close(r, np.asarray(tau, dtype=np.float64) / dt):
        return False, None
    return True, _gain(r)


def _import_node(name: str, node: Any, dt: float) -> nn.Module:
    nir = _nir()
    if isinstance(node, nir.NIRGraph):
        return _build(node, dt)
    for field in ("weight", "bias", "r", "w_in", "scale", "delay"):  # NaN would run silently
        if getattr(node, field, None) is not None:
            _real(name, field, getattr(node, field))
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise ValueError(f"node {name!r}: only 2-D weights are supported, got {w.shape}")
        bias = isinstance(node, nir.Affine) and node.bias is not None
        if bias:
            _bias_shape(name, node.bias, w.shape[0])
        wt = _float_tensor(w)
        # skip_init: no random initialization (the global RNG stays as it was), then overwritten;
        # on the default device, as a plain constructor would
        lin = skip_init(
            SeqLinear,
            w.shape[1],
            w.shape[0],
            bias=bias,
            dtype=wt.dtype,
            device=torch.get_default_device(),
        )
        with torch.no_grad():
            lin.weight.copy_(wt)
            if bias:
                lin.bias.copy_(_float_tensor(node.bias))
        return lin
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        one = isinstance(node, nir.Conv1d)
        cls = SeqConv1d if one else SeqConv2d
        if w.ndim != (3 if one else 4):
            raise ValueError(
                f"node {name!r}: weight must have {3 if one else 4} dimensions [C_out, C_in / "
                f"groups, {'K' if one else 'kH, kW'}], got shape {w.shape}"
            )
        bias_arr = np.zeros(w.shape[0], w.dtype) if node.bias is None else node.bias  # as Affine's
        _bias_shape(name, bias_arr, w.shape[0])
        n = 1 if one else 2
        pad = node.padding
        if not isinstance(pad, str):
            pad = _int_field(name, "padding", pad, n, 0)
            pad = pad[0] if one else pad
        (groups,) = _int_field(name, "groups", node.groups, 1, 1)
        stride = _int_field(name, "stride", node.stride, n, 1)
        dilation = _int_field(name, "dilation", node.dilation, n, 1)
        wt = _float_tensor(w)
        conv = skip_init(  # no random initialization, as for the linear layer
            cls,
            w.shape[1] * groups,
            w.shape[0],
            tuple(w.shape[2:]) if not one else int(w.shape[2]),
            stride=stride[0] if one else stride,
            padding=pad,
            dilation=dilation[0] if one else dilation,
            groups=groups,
            bias=True,
            dtype=wt.dtype,
            device=torch.get_default_device(),
        )
        with torch.no_grad():
            conv.weight.copy_(wt)
            assert conv.bias is not None
            conv.bias.copy_(_float_tensor(bias_arr))
        return conv
    if isinstance(node, nir.Flatten):
        (s,) = _int_field(name, "start_dim", node.start_dim, 1, None)
        (e,) = _int_field(name, "end_dim", node.end_dim, 1, None)
        return SeqFlatten(s + 1 if s >= 0 else s, e + 1 if e >= 0 else e)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kh, kw = _int_field(name, "kernel_size", node.kernel_size, 2, 1)
        sh, sw = _int_field(name, "stride", node.stride, 2, 1)
        ph, pw = _int_field(name, "padding", node.padding, 2, 0)
        div = 1 if isinstance(node, nir.SumPool2d) else None
        return SeqAvgPool2d((kh, kw), (sh, sw), (ph, pw), divisor_override=div)
    if isinstance(node, nir.Scale):
        return Scale(torch.as_tensor(np.asarray(node.scale).copy()))
    if isinstance(node, nir.Threshold):
        return Threshold(_value("threshold", node.threshold, name))
    if isinstance(node, nir.Delay):
        if np.size(node.delay) == 0:
            raise ValueError(
                f"node {name!r}: delay must hold one or more delays, got an empty array"
            )
        steps = np.asarray(node.delay, dtype=np.float64) / dt
        whole = np.rint(steps)
        if (
            not np.allclose(steps, whole, rtol=_RTOL, atol=1e-9)
            or np.any(whole < 0)
            or np.any(whole >= 2**62)  # beyond int64 the step counts would wrap around
        ):
            raise ValueError(
                f"node {name!r}: delays must be non-negative whole multiples of dt ({dt:g}), "
                f"got {np.asarray(node.delay)!r:.80}"
            )
        first = int(whole.reshape(-1)[0])
        if np.all(whole == first):
            return Delay(first)
        return Delay(torch.as_tensor(whole.astype(np.int64)))
    if isinstance(node, nir.I):
        g = _gain(np.asarray(node.r, dtype=np.float64) * dt)
        return Integrator(1.0 if g is None else g)
    if isinstance(node, nir.IF):
        v_reset, thr = _reset_value(node, name)
        if_ = IF(threshold=thr, v_reset=v_reset, reset="zero")  # type: ignore[arg-type]
        return _with_gain(_gain(np.asarray(node.r, dtype=np.float64) * dt), if_)
    if isinstance(node, nir.LIF):
        v_reset, thr = _reset_value(node, name)
        _check_leak(node, v_reset, name)
        tau = _tau_steps("tau", node.tau, dt, name)
        decay, gain = _leaky(node.r, node.tau, dt)
        neuron = LIF(
            tau=tau,  # type: ignore[arg-type]
            threshold=thr,  # type: ignore[arg-type]
            v_reset=v_reset,
            reset="zero",
            decay_input=decay,
            dt=dt,
        )
        return _with_gain(gain, neuron)
    if isinstance(node, nir.LI):
        v_leak = _value("v_leak", node.v_leak, name, uniform=True)
        tau = _tau_steps("tau", node.tau, dt, name)
        decay, gain = _leaky(node.r, node.tau, dt)
        return _with_gain(gain, LI(tau=tau, v_leak=float(v_leak), decay_input=decay, dt=dt))
    if isinstance(node, nir.CubaLIF):
        v_reset, thr = _reset_value(node, name)
        _check_leak(node, v_reset, name)
        tau_mem = _tau_steps("tau_mem", node.tau_mem, dt, name)
        tau_syn = _tau_steps("tau_syn", node.tau_syn, dt, name)
        decay, r_gain = _leaky(node.r, node.tau_mem, dt)
        syn = np.asarray(node.w_in, dtype=np.float64) * dt / np.asarray(node.tau_syn, np.float64)
        total = syn * (1.0 if r_gain is None else np.asarray(node.r, dtype=np.float64))
        cuba = CuBaLIF(
            tau_mem=tau_mem,  # type: ignore[arg-type]
            tau_syn=tau_syn,  # type: ignore[arg-type]
            threshold=thr,  # type: ignore[arg-type]
            v_reset=v_reset,
            reset="zero",
            decay_input=decay,
            dt=dt,
        )
        return _with_gain(_gain(total), cuba)
    raise ValueError(
        f"node {name!r}: NIR node type {type(node).__name__} is not supported by from_nir"
    )


def _float_tensor(a: Any) -> Tensor:
    """A float32/float64 tensor copy of an array (other dtypes become float32)."""
    arr = np.asarray(a)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return torch.as_tensor(arr.copy())


def _bias_shape(node_name: str, bias: Any, out: int) -> None:
    if np.shape(bias) != (out,):
        raise ValueError(
            f"node {node_name!r}: bias must have shape [{out}] (one per output of the weight), "
            f"got shape {np.shape(bias)}"
        )


def _build(graph: Any, dt: float) -> NIRModule:
    nir = _nir()
    inputs: dict[str, tuple[int, ...] | None] = {}
    outputs: dict[str, tuple[int, ...] | None] = {}
    modules: dict[str, nn.Module] = {}
    check_type("graph.nodes", graph.nodes, dict)
    for name, node in graph.nodes.items():
        name = str(name)
        if isinstance(node, nir.Input):
            t = node.input_type.get("input")
            inputs[name] = None if t is None else _int_field(name, "input_type", t, np.size(t), 1)
        elif isinstance(node, nir.Output):
            t = node.output_type.get("output")
            outputs[name] = None if t is None else _int_field(name, "output_type", t, np.size(t), 1)
        else:
            modules[name] = _import_node(name, node, dt)
    if len(inputs) != 1:
        raise ValueError(f"the NIR graph must have exactly one Input node, got {sorted(inputs)}")
    if not outputs:
        raise ValueError("the NIR graph has no Output node")
    for edge in graph.edges:
        if isinstance(edge, (str, bytes)) or np.size(edge) != 2:
            raise TypeError(f"graph.edges must hold (source, target) pairs, got {edge!r:.80}")
    edges = [(str(a), str(b)) for a, b in graph.edges]
    for a, b in edges:
        if b in inputs:
            raise ValueError(f"edge ({a!r}, {b!r}) leads into the Input node")
    return NIRModule(modules, edges, inputs, outputs, dt)


def _metadata_dt(raw: Any) -> float:
    """``graph.metadata["dt"]`` as a float: one real number > 0 (a Python or numpy scalar, or a
    one-element array as ``nir.read`` may return)."""
    name = "graph.metadata['dt']"
    if isinstance(raw, (str, bytes, bool, np.bool_)):
        raise TypeError(
            f"{name} must be a real number (the step length), got {type(raw).__name__} "
            f"({raw!r:.80}); pass from_nir(graph, dt=...)"
        )
    arr = as_float_array(name, raw)  # anything else non-numeric: TypeError naming it
    if arr.size != 1:
        raise ValueError(
            f"{name} must be one number (the step length), got an array of shape {arr.shape}; "
            "pass from_nir(graph, dt=...)"
        )
    dt = float(arr.reshape(()))
    check_number(name, dt, gt=0)
    return dt


def from_nir(graph: Any, *, dt: float | None = None) -> NIRModule:
    """Build an executable :class:`NIRModule` from a NIR graph (or a path to a ``.nir`` file).

    Args:
        graph: a ``nir.NIRGraph`` (one ``Input`` node, one or more ``Output`` nodes, no
            recurrent edges; nested ``NIRGraph`` nodes run as inner modules), or a file path
            read with ``nir.read``.
        dt: the step length in the graph's time unit. NIR is continuous-time, so it must be
            chosen: default ``graph.metadata["dt"]`` (what :func:`to_nir` records), else
            a ValueError. Time constants become ``tau / dt`` steps.

    Returns:
        An ``nn.Module`` mapping ``[T, B, *input_shape]`` to the output ``[T, B, ...]``, made of
        this package's modules (``SeqLinear``, ``LIF``, ``CuBaLIF``, ``LI``, ``Delay``, ...;
        see the module docstring for the mapping and what is refused).

    Raises:
        ImportError: the ``nir`` extra is missing.
        ValueError: unsupported node types or parameters, cycles, or no ``dt``.
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        if not os.path.isfile(graph):
            why = "a directory" if os.path.isdir(graph) else "no such file"
            raise FileNotFoundError(
                f"graph must be a nir.NIRGraph or a path to an existing .nir file, got "
                f"{os.fspath(graph)!r} ({why})"
            )
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(
            f"graph must be a nir.NIRGraph or a path to a .nir file, got {type(graph).__name__}"
        )
    if dt is None:
        meta = graph.metadata if isinstance(graph.metadata, dict) else {}
        if "dt" not in meta:
            raise ValueError(
                "dt is required: NIR graphs are continuous-time and this graph does not record "
                "a step length (graph.metadata['dt']); pass from_nir(graph, dt=...)"
            )
        dt = _metadata_dt(meta["dt"])
    check_number("dt", dt, gt=0)
    if not math.isfinite(dt):  # pragma: no cover - check_number already refuses
        raise ValueError(f"dt must be finite, got {dt}")
    return _build(graph, float(dt))
