"""The ONNX route of SPA: prune an ONNX model exported from any framework.

Wang et al. (2024), "Structurally Prune Anything": SPA builds its coupled-channel groups on the
standardized ONNX computational graph, so a model from PyTorch, TensorFlow, JAX or anything
else that exports ONNX can be pruned, and the pruned file runs in onnxruntime. This module reads
an ``onnx.ModelProto``, propagates channel labels over ONNX ops with the same rules as
:mod:`neuronkit.pruning.graph` (Conv / Gemm / MatMul producers and consumers, BatchNormalization,
elementwise and pooling ops, Add/Mul with per-channel initializers, Concat, Split, Flatten,
Reshape, Transpose), scores groups by L1/L2 magnitude of their initializer slices, removes
channels from the initializers (fixing depthwise ``group`` attributes and Reshape targets) and
returns a smaller ``ModelProto``. Ops it cannot map freeze the channels they touch.

Needs the ``onnx`` extra: ``pip install neuronkit-pruning[onnx]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .graph import (
    DependencyGraph,
    Group,
    _Label,
    _RawMember,
    _reshape_channel_map,
    _UnionFind,
)

__all__ = ["OnnxDependencyGraph", "prune_onnx"]

_ELEMENTWISE = {
    "Relu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Dropout",
    "Identity",
    "Clip",
    "Cast",
    "Erf",
    "Sqrt",
    "Neg",
    "Abs",
    "Exp",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
}
_BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"}


def _require_onnx() -> Any:
    try:
        import onnx
        import onnx.numpy_helper
        import onnx.shape_inference
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "neuronkit.pruning.onnx needs the onnx extra: pip install 'neuronkit-pruning[onnx]'"
        ) from exc
    return onnx


class _Freeze(Exception):
    pass


def _normalize(model: Any) -> Any:
    """A copy where every initializer feeds exactly one node input (exporters share
    identical tensors, e.g. equal biases, through one initializer or Identity nodes)."""
    onnx = _require_onnx()
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g = new.graph
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    keep_nodes = []
    for node in g.node:
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
            g.initializer.append(
                onnx.numpy_helper.from_array(arrays[node.input[0]], node.output[0])
            )
        else:
            keep_nodes.append(node)
    del g.node[:]
    g.node.extend(keep_nodes)
    used: dict[str, int] = {}
    for node in g.node:
        for k, name in enumerate(node.input):
            if name not in arrays:
                continue
            used[name] = used.get(name, 0) + 1
            if used[name] > 1:
                fresh = f"{name}__nk{used[name]}"
                g.initializer.append(onnx.numpy_helper.from_array(arrays[name], fresh))
                node.input[k] = fresh
    return new


class OnnxDependencyGraph:
    """Coupled channel groups of an ONNX model (SPA's ONNX graph).

    Args:
        model: an ``onnx.ModelProto`` or a path to an ``.onnx`` file (not modified).

    Attributes:
        groups: list of :class:`~neuronkit.pruning.graph.Group`; member ``module`` fields hold
            initializer names and ``param`` is ``""``.
    """

    def __init__(self, model: Any) -> None:
        onnx = _require_onnx()
        if isinstance(model, (str, Path)):
            model = onnx.load(str(model))
        if not isinstance(model, onnx.ModelProto):
            raise TypeError(
                f"model: expected an onnx.ModelProto or a path, got {type(model).__name__}"
            )
        model = _normalize(model)
        self.model = model
        inferred = onnx.shape_inference.infer_shapes(model)
        self._shapes: dict[str, tuple[int, ...]] = {}
        for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self._shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
        self.init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        for name, arr in self.init.items():
            self._shapes[name] = tuple(arr.shape)
        self._alias: dict[str, str] = {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        self.init[node.output[0]] = onnx.numpy_helper.to_array(a.t)
        self._uf = _UnionFind()
        self._frozen: dict[int, str] = {}
        self._members: list[_RawMember] = []
        self._mha: list[tuple[str, list[int], int]] = []
        self._reshapes: list[tuple[str, int, int, list[int]]] = []
        self._depthwise: list[tuple[int, str]] = []
        self._build()
        self.groups: list[Group] = DependencyGraph._make_groups(self)  # type: ignore[arg-type]

    # the rules -------------------------------------------------------------------------
    def _param(self, name: str) -> str | None:
        name = self._alias.get(name, name)
        return name if name in self.init else None

    def _freeze(self, label: Any, reason: str) -> None:
        if isinstance(label, _Label):
            for s in label.slots:
                self._frozen.setdefault(s, reason)

    def _build(self) -> None:
        labels: dict[str, Any] = {}
        for i, node in enumerate(self.model.graph.node):
            if node.op_type == "Identity" and self._param(node.input[0]):
                self._alias[node.output[0]] = self._alias.get(node.input[0], node.input[0])
                continue
            try:
                outs = self._rule(node, labels, i)
            except _Freeze as fz:
                for name in node.input:
                    self._freeze(labels.get(name), str(fz))
                outs = [None] * len(node.output)
            for name, lab in zip(node.output, outs, strict=False):
                labels[name] = lab
        for out in self.model.graph.output:
            self._freeze(labels.get(out.name), "model output")

    def _attr(self, node: Any, name: str, default: Any = None) -> Any:
        onnx = _require_onnx()
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def _member(self, init: str, dim: int, role: str, kind: str, slots: list[int]) -> None:
        self._members.append(_RawMember(init, "", dim, role, kind, list(slots)))

    def _rule(self, node: Any, labels: dict[str, Any], i: int) -> list[Any]:
        op = node.op_type
        x = labels.get(node.input[0]) if node.input else None
        out_shape = self._shapes.get(node.output[0])
        if op in _ELEMENTWISE:
            return [x] + [None] * (len(node.output) - 1)
        if op == "Conv":
            w = self._param(node.input[1])
            if w is None:
                raise _Freeze(f"{node.name or op}: weights are not an initializer")
            o, i_per = self.init[w].shape[:2]
            groups = int(self._attr(node, "group", 1))
            b = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if groups > 1:
                if x is None or groups != o or i_per != 1 or len(x.slots) != o:
                    self._freeze(x, f"{node.name}: grouped convolution")
                    out = _Label(1, self._uf.new(o))
                    self._freeze(out, f"{node.name}: grouped convolution")
                    return [out]
                self._member(w, 0, "out", op, x.slots)
                if b:
                    self._member(b, 0, "out", op, x.slots)
                self._depthwise.append((i, w))
                return [x]
            if x is not None:
                if x.axis == 1 and len(x.slots) == i_per:
                    self._member(w, 1, "in", op, x.slots)
                else:
                    self._freeze(x, f"{node.name}: input channels")
            out = _Label(1, self._uf.new(o))
            self._member(w, 0, "out", op, out.slots)
            if b:
                self._member(b, 0, "out", op, out.slots)
            return [out]
        if op in ("Gemm", "MatMul"):
            w = self._param(node.input[1]) if len(node.input) > 1 else None
            if w is None or self.init[w].ndim != 2:
                raise _Freeze(f"{node.name or op}: weights are not a 2-D initializer")
            trans = op == "Gemm" and int(self._attr(node, "transB", 0)) == 1
            if op == "Gemm" and int(self._attr(node, "transA", 0)) == 1:
                raise _Freeze(f"{node.name}: transA")
            in_dim, out_dim = (1, 0) if trans else (0, 1)
            n_out = self.init[w].shape[out_dim]
            if x is not None:
                in_shape = self._shapes.get(node.input[0])
                if (
                    in_shape
                    and x.axis == len(in_shape) - 1
                    and len(x.slots) == self.init[w].shape[in_dim]
                ):
                    self._member(w, in_dim, "in", op, x.slots)
                else:
                    self._freeze(x, f"{node.name}: input features")
            nd = len(out_shape) if out_shape else 2
            out = _Label(nd - 1, self._uf.new(n_out))
            self._member(w, out_dim, "out", op, out.slots)
            c = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if c is not None:
                if self.init[c].ndim >= 1 and self.init[c].shape[-1] == n_out:
                    self._member(c, self.init[c].ndim - 1, "out", op, out.slots)
                elif self.init[c].size != 1:
                    self._freeze(out, f"{node.name}: bias shape")
            return [out]
        if op == "BatchNormalization":
            if x is None:
                return [None]
            for name in node.input[1:5]:
                p = self._param(name)
                if p is None:
                    raise _Freeze(f"{node.name}: statistics are not initializers")
                self._member(p, 0, "norm", op, x.slots)
            return [x]
        if op in _BINARY:
            return [self._binary(node, labels)]
        if op in ("Flatten", "Reshape"):
            return [self._reshape(node, x, op)]
        if op == "Concat":
            return [self._concat(node, labels)]
        if op == "Split":
            return self._split(node, x)
        if op == "Transpose":
            if x is None:
                return [None]
            perm = list(self._attr(node, "perm"))
            return [_Label(perm.index(x.axis), x.slots)]
        if op in ("ReduceMean", "ReduceSum"):
            if x is None:
                return [None]
            axes = self._attr(node, "axes")
            if axes is None and len(node.input) > 1:
                p = self._param(node.input[1])
                axes = None if p is None else self.init[p].tolist()
            keep = int(self._attr(node, "keepdims", 1))
            in_shape = self._shapes.get(node.input[0])
            if axes is None or in_shape is None:
                raise _Freeze(f"{node.name}: reduction over unknown axes")
            axes = [a % len(in_shape) for a in axes]
            if x.axis in axes:
                raise _Freeze(f"{node.name}: reduction over channels")
            return [_Label(x.axis - (0 if keep else sum(a < x.axis for a in axes)), x.slots)]
        if op in ("Shape", "Constant"):
            return [None]
        raise _Freeze(f"{node.name or op}: unsupported op {op}")

    def _binary(self, node: Any, labels: dict[str, Any]) -> Any:
        out_shape = self._shapes.get(node.output[0])
        if out_shape is None:
            raise _Freeze(f"{node.name}: unknown shape")
        nd = len(out_shape)
        found = []
        for name in node.input:
            lab = labels.get(name)
            if isinstance(lab, _Label):
                s = self._shapes.get(name)
                if s is None:
                    raise _Freeze(f"{node.name}: unknown shape")
                found.append(_Label(lab.axis + nd - len(s), lab.slots))
        if not found:
            return None
        axis, result = found[0].axis, found[0]
        for lab in found[1:]:
            if lab.axis != axis or len(lab.slots) != len(result.slots):
                raise _Freeze(f"{node.name}: channel axes differ")
            for a, b in zip(result.slots, lab.slots, strict=True):
                self._uf.union(a, b)
        for name in node.input:
            if isinstance(labels.get(name), _Label):
                continue
            s = self._shapes.get(name)
            if s is None:
                raise _Freeze(f"{node.name}: unknown operand shape")
            idx = axis - (nd - len(s))
            if idx < 0 or s[idx] == 1:
                continue
            p = self._param(name)
            if p is None:
                raise _Freeze(f"{node.name}: per-channel operand is not an initializer")
            self._member(p, idx, "norm", node.op_type, result.slots)
        return result

    def _reshape(self, node: Any, x: Any, op: str) -> Any:
        if x is None:
            return None
        src, out = self._shapes.get(node.input[0]), self._shapes.get(node.output[0])
        if src is None or out is None:
            raise _Freeze(f"{node.name}: unknown shapes")
        try:
            k, rep = _reshape_channel_map(src, out, x.axis)
        except ValueError as err:
            raise _Freeze(f"{node.name}: reshape {err}") from None
        if op == "Reshape":
            p = self._param(node.input[1])
            if p is None:
                raise _Freeze(f"{node.name}: dynamic reshape target")
            self._reshapes.append((p, k, rep, list(x.slots)))
        return _Label(k, [s for s in x.slots for _ in range(rep)])

    def _concat(self, node: Any, labels: dict[str, Any]) -> Any:
        out = self._shapes.get(node.output[0])
        if out is None:
            raise _Freeze(f"{node.name}: unknown shape")
        axis_attr = int(self._attr(node, "axis")) % len(out)
        parts = [labels.get(n) for n in node.input]
        found = [p for p in parts if isinstance(p, _Label)]
        if not found:
            return None
        axis = found[0].axis
        if any(p.axis != axis for p in found):
            raise _Freeze(f"{node.name}: channel axes differ")
        if axis_attr != axis:
            for p in found[1:]:
                for a, b in zip(found[0].slots, p.slots, strict=True):
                    self._uf.union(a, b)
            if len(found) != len(parts):
                raise _Freeze(f"{node.name}: untracked inputs")
            return found[0]
        slots: list[int] = []
        for n, part in zip(node.input, parts, strict=True):
            if isinstance(part, _Label):
                slots += part.slots
            else:
                s = self._shapes.get(n)
                if s is None:
                    raise _Freeze(f"{node.name}: unknown shape")
                fresh = _Label(axis, self._uf.new(s[axis]))
                self._freeze(fresh, f"{node.name}: untracked channels")
                slots += fresh.slots
        return _Label(axis, slots)

    def _split(self, node: Any, x: Any) -> list[Any]:
        if x is None:
            return [None] * len(node.output)
        axis = int(self._attr(node, "axis", 0))
        src = self._shapes.get(node.input[0])
        if src is None:
            raise _Freeze(f"{node.name}: unknown shape")
        axis %= len(src)
        if axis != x.axis:
            return [x] * len(node.output)
        sizes = [self._shapes[o][axis] for o in node.output if o in self._shapes]
        if len(sizes) != len(node.output):
            raise _Freeze(f"{node.name}: unknown split sizes")
        if len(node.input) > 1 and node.input[1]:
            raise _Freeze(f"{node.name}: split sizes are an input (would need rewriting)")
        if len(set(sizes)) != 1:
            raise _Freeze(f"{node.name}: uneven split")
        outs, start = [], 0
        for s in sizes:
            outs.append(_Label(axis, x.slots[start : start + s]))
            start += s
        return outs

    def prunable_groups(self) -> list[Group]:
        """The groups that may lose channels."""
        return [g for g in self.groups if g.prunable]


def _scores(graph: OnnxDependencyGraph, group: Group, p: int) -> np.ndarray:
    rows = []
    for m in group.members:
        arr = np.abs(graph.init[m.module].astype(np.float64)) ** p
        per_pos = np.moveaxis(arr, m.dim, 0).reshape(arr.shape[m.dim], -1).sum(1)
        rows.append(np.array([per_pos[pos].sum() for pos in m.positions]))
    return np.mean(rows, 0) if rows else np.zeros(group.size)


def prune_onnx(
    model: Any,
    ratio: float,
    *,
    p: int = 2,
    ignored: Iterable[str] = (),
    output_path: str | Path | None = None,
    soft: bool = False,
) -> Any:
    """Remove ``ratio`` of every prunable group's channels from an ONNX model.

    Args:
        model: ``onnx.ModelProto`` or path (not modified).
        ratio: fraction in [0, 1) removed from every group (lowest group Lp magnitude first).
        p: 1 or 2, the magnitude norm.
        ignored: initializer names whose output channels are kept (validated).
        output_path: where to save the pruned model (optional).
        soft: the oracle instead: keep every channel but zero the removed ones' slices.

    Returns:
        the pruned ``onnx.ModelProto`` (checked with ``onnx.checker``); runs in onnxruntime.
    """
    onnx = _require_onnx()
    from .prune import _check_ratio

    ratio = _check_ratio("ratio", ratio)
    if p not in (1, 2):
        raise ValueError(f"p: expected 1 or 2, got {p!r}")
    graph = OnnxDependencyGraph(model)
    ignored = list(ignored)
    for name in ignored:
        if name not in graph.init:
            raise ValueError(f"ignored: initializer {name!r} does not exist in the ONNX model")
    removed: dict[tuple[str, int], set[int]] = {}
    pruned_roots: set[int] = set()
    for g in graph.prunable_groups():
        if set(g.producers) & set(ignored):
            continue
        n = math.floor(ratio * g.size + 1e-9)
        if n <= 0:
            continue
        order = np.argsort(_scores(graph, g, p), kind="stable")[:n]
        for j in order:
            pruned_roots.add(g.roots[int(j)])
            for m in g.members:
                removed.setdefault((m.module, m.dim), set()).update(m.positions[int(j)])
    new = onnx.ModelProto()
    new.CopyFrom(graph.model)
    arrays = dict(graph.init)
    for (name, dim), pos in removed.items():
        keep = np.ones(arrays[name].shape[dim], dtype=bool)
        keep[sorted(pos)] = False
        if soft:
            arr = arrays[name].copy()
            idx: list[Any] = [slice(None)] * arr.ndim
            idx[dim] = ~keep
            if not (name.endswith("var") or "running_var" in name):
                arr[tuple(idx)] = 0
            arrays[name] = arr
        else:
            arrays[name] = np.compress(keep, arrays[name], axis=dim)
    find = graph._uf.find
    for shape_name, k, rep, slots in [] if soft else graph._reshapes:
        kept = sum(1 for s in slots if find(s) not in pruned_roots)
        target = arrays[shape_name].copy()
        if target[k] > 0:
            target[k] = kept * rep
        arrays[shape_name] = target
    for t in new.graph.initializer:
        if t.name in arrays:
            t.CopyFrom(onnx.numpy_helper.from_array(arrays[t.name], t.name))
    for node in new.graph.node:
        if node.op_type == "Constant" and node.output[0] in arrays:
            for a in node.attribute:
                if a.name == "value":
                    a.t.CopyFrom(onnx.numpy_helper.from_array(arrays[node.output[0]]))
    for i, w in [] if soft else graph._depthwise:
        node = new.graph.node[i]
        for a in node.attribute:
            if a.name == "group":
                a.i = int(arrays[graph._alias.get(w, w)].shape[0])
    del new.graph.value_info[:]
    onnx.checker.check_model(new)
    if output_path is not None:
        onnx.save(new, str(output_path))
    return new
