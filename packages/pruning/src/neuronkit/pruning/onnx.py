"""The ONNX route of SPA: prune an ONNX model exported from any framework.

Wang et al. (2024), "Structurally Prune Anything": SPA builds its coupled-channel groups on the
standardized ONNX computational graph, so a model from PyTorch, TensorFlow, JAX or anything
else that exports ONNX can be pruned, and the pruned file runs in onnxruntime. This module reads
an ``onnx.ModelProto``, propagates channel labels over ONNX ops with the same rules as
:mod:`neuronkit.pruning.graph` (Conv / Gemm / MatMul producers and consumers, BatchNormalization,
LayerNormalization, elementwise and pooling ops, Softmax, Add/Mul/Where with per-channel
initializers, Concat, Split, Slice, Gather, Expand, Flatten, Reshape, Transpose, Unsqueeze /
Squeeze, DepthToSpace / SpaceToDepth, ReduceMean / ReduceSum: statistics over channels are then
taken over the kept ones, as a LayerNorm's), scores groups by L1/L2 magnitude of their
initializer slices, removes channels from the initializers (fixing depthwise ``group``
attributes, recurrent ``hidden_size`` attributes and Reshape targets) and returns a smaller
``ModelProto``. Ops it cannot map freeze the channels they touch.

Recurrent ops (``LSTM`` / ``GRU`` / ``RNN``): a hidden unit is one channel in both directions,
its row in every gate block of ``W``, ``R``, ``B`` (and an LSTM's peepholes) and its column of
``R``; weights an exporter assembles in the graph from per-gate parameters are folded into
initializers first, and an initial state must follow the units (a constant, a fill made from a
shape constant, or a tensor that carries them).

Attention (e.g. a ViT exported by ``torch.onnx.export``): the fused ``[B, N, 3*D]`` projection
is unflattened into ``(3, D)`` and split into q, k, v by index; a reshape that splits channels
into ``(heads, head_dim)`` (alone or merged with the batch axis, ``[N, B*H, hd]``) makes each
head one unit, and the batched products ``q @ k^T`` and ``attn @ v`` unify the heads of q, k and
v, so a group holds whole heads: their q, k, v rows (and biases) and the output projection's
input rows. Integer shape tensors are tracked element by element (``Shape`` / ``Gather`` /
``Slice`` / ``Concat`` / ``Unsqueeze`` subgraphs, constant folding of the rest), so every Reshape
target is either left as is (``-1``, a ``Shape`` of a tensor whose channels shrink alike) or has
its constant entry rewritten; a target the rules cannot map, or a shape of pruned channels used
in arithmetic, freezes the channels.

Dynamic axes (batch, sequence length) stay dynamic: shape arithmetic on static extents is
folded to constants first (as a static export has it), shapes are inferred on a copy whose
symbolic input dimensions are fixed, a ``batch * heads`` extent has its constant factor
rewritten, and a shape computation shared by several reshapes is cloned per reshape.

Needs the ``onnx`` extra: ``pip install neuronkit-pruning[onnx]``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .graph import (
    DependencyGraph,
    Group,
    _couple_blocks,
    _fixed_span,
    _head_split,
    _Label,
    _merged_heads,
    _RawMember,
    _reshape_channel_map,
    _reshaped_runs,
    _UnionFind,
    _unite_blocks,
)
from .importance import magnitude_position_scores
from .prune import _spare_every_output

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
    "IsNaN",
    "IsInf",
    "Not",
    "Mish",
    "Softsign",
    "Celu",
    "ThresholdedRelu",
    "Shrink",
    "Sign",
    "Reciprocal",
    "Log",
    "Sin",
    "Cos",
    "Floor",
    "Ceil",
    "Round",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
}
_POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
# broadcasting, elementwise (comparisons too: a spiking neuron's threshold test)
_BINARY = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "Pow",
    "Where",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Equal",
    "And",
    "Or",
    "PRelu",  # the slope broadcasts like a per-channel scale
}
# ops whose output is one value everywhere when every input is (see ``_fill``)
_FILL_KEEPING = {"Cast", "Identity", "Neg", "Abs", "Sqrt", "Exp", "Not"} | _BINARY
# integer shape arithmetic that is folded to constants when every input is known
_FOLDABLE = {
    "Abs",
    "Add",
    "And",
    "Cast",
    "Ceil",
    "Concat",
    "ConstantOfShape",
    "Div",
    "Equal",
    "Expand",
    "Floor",
    "Gather",
    "Greater",
    "Identity",
    "Less",
    "Max",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "Range",
    "ReduceProd",
    "Reshape",
    "Slice",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
}
# ops that move shape elements without computing on them (their provenance is kept)
_SHAPE_MOVES = {"Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Cast", "Identity"}
_FOLD_MAX = 4096  # largest constant (elements) folded
# the input holding the shape an op produces (its entries only size the output)
_SHAPE_INPUT = {"Reshape": 1, "Expand": 1, "ConstantOfShape": 0}
_INT_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}  # TensorProto integer element types
# recurrent ops -> gate blocks per hidden unit in W [D, G*H, I] and R [D, G*H, H]
_RECURRENT = {"LSTM": 4, "GRU": 3, "RNN": 1}
# ops an exporter uses to assemble a recurrent op's weights from per-gate parameters
_WEIGHT_MOVES = {
    *("Slice", "Concat", "Split", "Gather", "Unsqueeze", "Squeeze", "Transpose", "Reshape"),
    *("Identity", "Cast", "Constant"),
}
# ops that cut a layer's initial state from a stacked one (see ``_filled``)
_STATE_MOVES = {"Slice", "Squeeze", "Unsqueeze"}


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


def _get_attr(node: Any, name: str, default: Any = None) -> Any:
    onnx = _require_onnx()
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _Freeze(Exception):
    pass


@dataclass
class _Table:
    """Channels split over two axes (``[..., S*d, ...] -> [..., S, d, ...]``): ``rows[s][j]`` is
    the slot at index ``s`` of axis ``outer`` and ``j`` of axis ``inner``. Moves (Transpose,
    Unsqueeze, Squeeze) and a row selection (Gather on ``outer``, e.g. q/k/v of a fused
    projection) keep it; any other op collapses it into ``S`` units (each row whole: attention
    heads), as the torch route's head split does."""

    outer: int
    inner: int
    rows: list[list[int]]

    def moved(self, outer: int, inner: int) -> _Table:
        return _Table(outer, inner, self.rows)


# a shape element: ("c", value, (initializer, flat index) or None), ("d", tensor, axis, value,
# label of the tensor when its Shape was read) or ("m", value, (initializer, flat index), value
# of the dynamic factor): a dynamic extent times a shape constant (``batch * heads``)
_Elem = tuple[Any, ...]


def _elem_axes(e: _Elem) -> tuple[int, ...]:
    """The axes whose extents a ``d`` or ``x`` shape element reads."""
    return (e[2],) if e[0] == "d" else tuple(e[2])


def _axes_of(label: Any) -> tuple[int, ...]:
    if isinstance(label, _Label):
        return (label.axis,)
    if isinstance(label, _Table):
        return (label.outer, label.inner)
    return ()


def _slots_of(label: Any) -> list[int]:
    if isinstance(label, _Label):
        return list(label.slots)
    if isinstance(label, _Table):
        return [s for row in label.rows for s in row]
    return []


def _normalize(model: Any) -> tuple[Any, dict[str, str]]:
    """A copy where every initializer and every ``Constant`` node output feeds exactly one node
    input (exporters share identical tensors, e.g. equal biases or shape constants, through one
    initializer, Identity nodes or one Constant node), and ``{copy: initializer it copies}``
    (``prune_onnx`` merges the copies that stay equal again)."""
    onnx = _require_onnx()
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g = new.graph
    tensors = {t.name: t for t in g.initializer}  # copied under a new name where needed
    sources: dict[str, str] = {}  # copy -> the initializer it copies

    def renamed(name: str, fresh: str) -> Any:
        t = onnx.TensorProto()
        t.CopyFrom(tensors[name])
        t.name = fresh
        sources[fresh] = sources.get(name, name)
        return t

    keep_nodes = []
    for node in g.node:
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = renamed(node.input[0], node.output[0])
            g.initializer.append(tensors[node.output[0]])
        else:
            keep_nodes.append(node)
    constants = {
        n.output[0]: n
        for n in keep_nodes
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value"
    }
    outputs = {o.name for o in g.output}
    nodes: list[Any] = []
    copies: dict[str, int] = {}
    for node in keep_nodes:
        for k, name in enumerate(node.input):
            if name in constants:  # a Constant read twice: the second reader gets a copy
                copies[name] = copies.get(name, 0) + 1
                if copies[name] > 1 or name in outputs:
                    fresh = f"{name}__nk{copies[name]}"
                    dup = onnx.NodeProto()
                    dup.CopyFrom(constants[name])
                    dup.name = f"{dup.name}__nk{copies[name]}" if dup.name else ""
                    dup.output[0] = fresh
                    nodes.append(dup)
                    node.input[k] = fresh
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    used: dict[str, int] = {}
    for node in g.node:
        for k, name in enumerate(node.input):
            if name not in tensors:
                continue
            used[name] = used.get(name, 0) + 1
            if used[name] > 1:
                fresh = f"{name}__nk{used[name]}"
                g.initializer.append(renamed(name, fresh))
                node.input[k] = fresh
    return new, sources


def _evaluate(node: Any, inputs: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    """The outputs of one node on constant inputs (ONNX's reference evaluator); None when the
    reference cannot run it."""
    onnx = _require_onnx()
    from onnx.reference import ReferenceEvaluator

    h = onnx.helper
    graph = h.make_graph(
        [node],
        "fold",
        [h.make_empty_tensor_value_info(n) for n in inputs],
        [h.make_empty_tensor_value_info(o) for o in node.output],
    )
    try:
        outs = ReferenceEvaluator(graph, opsets={"": opset}).run(None, inputs)
    except Exception:
        return None
    return [np.asarray(o) for o in outs]


def _opset_of(model: Any) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def _infer_shapes(model: Any, dims: Mapping[str, int] | None = None) -> Any:
    """``model`` after ONNX shape inference, run on a copy without the data of its large
    floating-point initializers: each is a graph input of its type and shape there, all that
    inference reads of it (integer and small initializers, which data propagation may read,
    keep their values). Copying the weights was most of the inference time of large models.

    With ``dims``, every symbolic or unknown dimension of the graph inputs is fixed first
    (``dims[name]``, else 1) and intermediate and output shapes are left to inference.
    Channel extents never depend on these dimensions (batch, sequence length), so groups
    found with them hold for the model at any size."""
    onnx = _require_onnx()
    new = _without_initializers(model)
    g = new.graph
    inputs = {vi.name for vi in g.input}
    for t in model.graph.initializer:
        if t.data_type in _INT_TYPES or math.prod(t.dims) <= _FOLD_MAX:
            g.initializer.append(t)
        elif t.name not in inputs:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    if dims is not None:
        for vi in g.input:
            tt = vi.type.tensor_type
            for d in tt.shape.dim if tt.HasField("shape") else ():
                if not d.HasField("dim_value"):
                    d.dim_value = dims.get(d.dim_param, 1)
        del g.value_info[:]
        for vi in g.output:
            vi.type.tensor_type.ClearField("shape")
    try:  # data propagation resolves shapes computed from Shape
        return onnx.shape_inference.infer_shapes(new, data_prop=True)
    except Exception:
        return onnx.shape_inference.infer_shapes(new)


def _without_initializers(model: Any) -> Any:
    """A copy of ``model`` whose graph has no initializers (the weights: most of a copy's cost)."""
    new = _require_onnx().ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            _copy_field(new, field.name, value)
    for field, value in model.graph.ListFields():
        if field.name != "initializer":
            _copy_field(new.graph, field.name, value)
    return new


def _copy_field(message: Any, name: str, value: Any) -> None:
    """Set the protobuf field ``name`` of ``message`` to a copy of ``value``."""
    if hasattr(value, "extend"):  # repeated
        getattr(message, name).extend(value)
    elif hasattr(value, "CopyFrom"):  # a message
        getattr(message, name).CopyFrom(value)
    else:
        setattr(message, name, value)


def _fold_static_shapes(model: Any, inferred: Any) -> Any:
    """``model`` where every value computed from static extents only (``Shape`` of axes whose size
    is known, and the arithmetic on it) is a ``Constant``, as ``torch.onnx`` constant folding
    leaves a static export: in an export with dynamic axes (batch, sequence) only the shape
    arithmetic that depends on them stays, and a channel count read with ``Shape`` becomes a
    constant that pruning rewrites like any other (a copy when anything was folded).
    ``inferred``: ``model`` after ONNX shape inference."""
    onnx = _require_onnx()
    h, nph = onnx.helper, onnx.numpy_helper
    g = inferred.graph
    dims: dict[str, list[int | None]] = {}
    for vi in [*g.value_info, *g.input, *g.output]:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    values: dict[str, np.ndarray] = {}
    for t in model.graph.initializer:
        if t.data_type in _INT_TYPES and math.prod(t.dims) <= _FOLD_MAX:
            values[t.name] = nph.to_array(t)
    opset = _opset_of(model)
    # 1-D integer shape vectors with some entries known (a Shape of partly static axes)
    partial: dict[str, list[int | None]] = {}
    nodes: list[Any] = []
    for node in model.graph.node:
        outs: list[np.ndarray] | None = None
        op = node.op_type
        if op == "Constant":
            a = node.attribute[0] if len(node.attribute) == 1 else None
            if a is not None and a.name == "value" and math.prod(a.t.dims) <= _FOLD_MAX:
                values[node.output[0]] = nph.to_array(a.t)
        elif op == "Shape" and node.input[0] in dims:
            shape = dims[node.input[0]]
            nd = len(shape)
            start, end = (int(_get_attr(node, k, d)) for k, d in (("start", 0), ("end", nd)))
            partial[node.output[0]] = shape[slice(start, end)]
        elif op in ("Gather", "Slice", "Concat") and (
            node.input[0] in partial or (op == "Concat" and any(n in partial for n in node.input))
        ):
            picked = _move(node, lambda n: _known_entries(n, partial, values), values.get)
            if picked is not None:
                partial[node.output[0]] = picked
        elif op in _FOLDABLE and node.input and all(n in values for n in node.input if n):
            extents = dims.get(node.output[0]) or []
            if op == "ConstantOfShape":
                extents = values[node.input[0]].reshape(-1).tolist()
            if math.prod(e for e in extents if e is not None) <= _FOLD_MAX:
                outs = _evaluate(node, {n: values[n] for n in node.input if n}, opset)
            if outs is not None and any(o.size > _FOLD_MAX for o in outs):
                outs = None
        if node.output and None not in partial.get(node.output[0], [None]):
            outs = [np.array(partial[node.output[0]], dtype=np.int64)]
            if op == "Gather" and values[node.input[1]].ndim == 0:
                outs[0] = outs[0].reshape(())
        if outs is None:
            nodes.append(node)
            continue
        for name, arr in zip(node.output, outs, strict=False):
            values[name] = arr
            nodes.append(h.make_node("Constant", [], [name], value=nph.from_array(arr, name)))
    if len(nodes) == len(model.graph.node) and all(
        a is b for a, b in zip(nodes, model.graph.node, strict=True)
    ):
        return model
    return _with_nodes(model, nodes)


def _fold_recurrent_weights(model: Any) -> Any:
    """``model`` (a copy if anything changed) where the W, R, B and peephole inputs of every
    ``LSTM`` / ``GRU`` / ``RNN`` are initializers: torch's dynamo exporter assembles them from
    the per-gate parameters in the graph (Slice into gates, reorder, Concat the directions).
    Each such input computed from initializers by data movement alone becomes an initializer
    of that value under the same name; nodes and initializers nothing reads any more go."""
    onnx = _require_onnx()
    nph = onnx.numpy_helper
    g = model.graph
    init = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    targets = [
        name
        for node in g.node
        if node.op_type in _RECURRENT
        for k, name in enumerate(node.input)
        if k in (1, 2, 3, 7) and name and name not in init and name in producer
    ]
    if not targets:
        return model
    opset = _opset_of(model)
    values: dict[str, np.ndarray | None] = {}

    def value(name: str) -> np.ndarray | None:
        if name not in values:
            values[name] = None  # a cycle (never in a valid graph) folds nothing
            node = producer.get(name)
            if name in init:
                values[name] = nph.to_array(init[name])
            elif node is not None and node.op_type in _WEIGHT_MOVES:
                inputs = {n: value(n) for n in node.input if n}
                known = {n: v for n, v in inputs.items() if v is not None}
                outs = _evaluate(node, known, opset) if len(known) == len(inputs) else None
                for out, arr in zip(node.output, outs or (), strict=False):
                    values[out] = arr
        return values[name]

    folded = {name: arr for name in dict.fromkeys(targets) if (arr := value(name)) is not None}
    if not folded:
        return model
    new = _with_nodes(model, [n for n in g.node if not set(n.output) & set(folded)])
    new.graph.initializer.extend(nph.from_array(arr, name) for name, arr in folded.items())
    return new


def _identity_gathers(model: Any, inferred: Any) -> Any:
    """``model`` (a copy if anything changed) where each ``Gather`` that reads every element of
    a flattened tensor in order is ``Identity`` of that tensor: torch's dynamo exporter writes
    ``as_strided`` with a contiguous tensor's own sizes and strides (torchvision's ConvNeXt head)
    as ``Reshape(x, [-1])`` gathered at indices it computes from the batch size. The indices
    (read from the graph inputs through ``Shape`` only) are evaluated twice, with every
    symbolic input dimension 1 and then each at a size of its own (3, 4, ...), and must equal
    ``arange(x.size).reshape(x.shape)`` both times, ``x``'s shape being static or named by
    those dimensions; anything else keeps the ``Gather`` (which freezes the channels it
    selects). ``inferred``: ``model`` after ONNX shape inference."""
    onnx = _require_onnx()
    from onnx.reference import ReferenceEvaluator

    g, h = model.graph, onnx.helper
    producer = {o: n for n in g.node for o in n.output}
    init = {t.name: t for t in g.initializer}
    inputs = {vi.name: vi for vi in g.input if vi.name not in init}
    shapes: dict[str, list[int | str]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input]:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = [
                d.dim_value if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim
            ]

    def constant(name: str) -> np.ndarray | None:
        node = producer.get(name)
        if name in init:
            return onnx.numpy_helper.to_array(init[name])
        if node is not None and node.op_type == "Constant" and node.attribute[0].name == "value":
            return onnx.numpy_helper.to_array(node.attribute[0].t)
        return None

    order = {id(n): k for k, n in enumerate(g.node)}

    def closure(name: str) -> list[Any] | None:
        """The nodes computing ``name`` from initializers and input shapes (graph order)."""
        needed: set[int] = set()
        stack = [name]
        while stack:
            node = producer.get(stack.pop())
            if node is None or id(node) in needed:
                continue
            if node.op_type != "Shape" and node.op_type not in _FOLDABLE | {"Constant"}:
                return None
            needed.add(id(node))
            if len(needed) > 64:
                return None
            for n in node.input:
                if n and n not in init and (n not in inputs or node.op_type != "Shape"):
                    if n in inputs or n not in producer:
                        return None
                    stack.append(n)
        return sorted((n for n in g.node if id(n) in needed), key=lambda n: order[id(n)])

    symbolic = sorted(
        {d.dim_param for vi in inputs.values() for d in vi.type.tensor_type.shape.dim} - {""}
    )
    probes = [dict.fromkeys(symbolic, 1), {n: 3 + k for k, n in enumerate(symbolic)}]

    def index_values(name: str) -> Callable[[dict[str, int]], np.ndarray | None] | None:
        """The indices ``name`` for given sizes of the symbolic dimensions (None: unknown)."""
        fixed = constant(name)
        if fixed is not None:
            return lambda sizes: fixed
        nodes = closure(name)
        if nodes is None:
            return None
        read = [n for n in inputs if any(n in node.input for node in nodes)]
        graph = h.make_graph(
            nodes,
            "indices",
            [inputs[n] for n in read],
            [h.make_empty_tensor_value_info(name)],
            initializer=[init[n] for n in init if any(n in node.input for node in nodes)],
        )
        try:
            evaluator: Any = ReferenceEvaluator(graph, opsets={"": _opset_of(model)})
        except Exception:
            return None

        def run(sizes: dict[str, int]) -> np.ndarray | None:
            feeds = {}
            for n in read:
                tt = inputs[n].type.tensor_type
                dims = [d.dim_value or sizes.get(d.dim_param, 2) for d in tt.shape.dim]
                feeds[n] = np.zeros(dims, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
            try:
                return np.asarray(evaluator.run(None, feeds)[0])
            except Exception:
                return None

        return run

    def is_identity(gather: Any, x: str) -> bool:
        shape = shapes.get(x)
        if shape is None or not all(d in symbolic if isinstance(d, str) else d > 0 for d in shape):
            return False  # unknown, or an extent the probes do not set
        indices = index_values(gather.input[1])
        if indices is None:
            return False
        for sizes in probes:
            idx = indices(sizes)
            extents = tuple(sizes[d] if isinstance(d, str) else d for d in shape)
            if (
                idx is None
                or idx.shape != extents
                or not np.array_equal(idx.reshape(-1), np.arange(idx.size))
            ):
                return False
        return True

    nodes, changed = [], False
    for node in g.node:
        flat = producer.get(node.input[0]) if node.op_type == "Gather" else None
        if (
            flat is not None
            and flat.op_type == "Reshape"
            and int(_get_attr(node, "axis", 0)) == 0
            and (target := constant(flat.input[1])) is not None
            and target.reshape(-1).tolist() == [-1]
            and is_identity(node, flat.input[0])
        ):
            node = h.make_node("Identity", [flat.input[0]], list(node.output), name=node.name)
            changed = True
        nodes.append(node)
    return _with_nodes(model, nodes) if changed else model


def _private_shapes(model: Any) -> Any:
    """``model`` (a copy if anything changed) where each Reshape / Expand / ConstantOfShape
    target is computed for that node alone: exporters share one shape computation between
    nodes (e.g. the q, k and v views of every layer), while pruning may need to rewrite its
    constants differently per node. The shape arithmetic on the way to a shared target is
    cloned (``Shape`` of data tensors is read, not cloned)."""
    onnx = _require_onnx()
    g = model.graph
    producer = {o: node for node in g.node for o in node.output}
    reads: dict[str, int] = {}
    for node in g.node:
        for n in node.input:
            reads[n] = reads.get(n, 0) + 1

    def shared(name: str) -> bool:
        p = producer.get(name)
        if p is None or p.op_type == "Shape" or p.op_type not in _FOLDABLE | {"Constant"}:
            return False
        return reads.get(name, 0) > 1 or any(shared(n) for n in p.input if n)

    nodes: list[Any] = []
    copies: dict[str, str] = {}  # for the target being cloned: original -> copy

    def clone(name: str, tag: str) -> str:
        p = producer.get(name)
        if p is None or p.op_type == "Shape" or p.op_type not in _FOLDABLE | {"Constant"}:
            return name
        if name not in copies:
            copy = onnx.NodeProto()
            copy.CopyFrom(p)
            for k, n in enumerate(p.input):
                if n:
                    copy.input[k] = clone(n, tag)
            for k, o in enumerate(p.output):
                copy.output[k] = copies[o] = f"{o}__{tag}"
            copy.name = f"{p.name}__{tag}" if p.name else ""
            nodes.append(copy)
        return copies[name]

    for i, node in enumerate(g.node):
        k = _SHAPE_INPUT.get(node.op_type, -1)
        if 0 <= k < len(node.input) and node.input[k] and shared(node.input[k]):
            copies.clear()
            fresh = onnx.NodeProto()
            fresh.CopyFrom(node)
            fresh.input[k] = clone(node.input[k], f"nks{i}")
            node = fresh
        nodes.append(node)
    if len(nodes) == len(g.node):
        return model
    return _with_nodes(model, nodes)


def _with_nodes(model: Any, nodes: list[Any]) -> Any:
    """A copy of ``model`` whose graph holds the nodes of ``nodes`` that some output needs and
    the initializers they read."""
    onnx = _require_onnx()
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g = new.graph
    del g.node[:]
    g.node.extend(_live(nodes, {o.name for o in model.graph.output}))
    read = {n for node in g.node for n in _reads(node)} | {o.name for o in g.output}
    read |= {i.name for i in g.input}
    for t in [t for t in g.initializer if t.name not in read]:
        g.initializer.remove(t)
    return new


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """``nodes`` without those whose results nothing reads (e.g. a ``Shape`` folded away)."""
    read = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in read for o in node.output):
            keep.append(node)
            read.update(_reads(node))
    return keep[::-1]


def _reads(node: Any) -> set[str]:
    """Every name ``node`` reads, its subgraphs' outer-scope references included."""
    names = {n for n in node.input if n}
    for a in node.attribute:
        for sub in [a.g] if a.HasField("g") else list(a.graphs):
            for inner in sub.node:
                names |= _reads(inner)
    return names


def _known_entries(
    name: str, partial: dict[str, list[int | None]], values: dict[str, np.ndarray]
) -> list[int | None] | None:
    """A 1-D integer vector's entries, None where unknown (a partly known Shape)."""
    if name in partial:
        return partial[name]
    return values[name].tolist() if name in values and values[name].ndim == 1 else None


def _move(
    node: Any, vector: Callable[[str], list[Any] | None], const: Callable[[str], Any]
) -> list[Any] | None:
    """The entries of 1-D shape vectors moved by ``node``: Gather / Slice / Concat with
    constant indices, any other op (Unsqueeze, Cast, ...) keeps its first input's entries.
    ``vector(name)``: an input's entries; ``const(name)``: a constant array. None when an
    input is unknown."""
    op = node.op_type
    ins = [n for n in node.input if n]
    if op == "Concat":
        out: list[Any] = []
        for n in ins:
            part = vector(n)
            if part is None:
                return None
            out += part
        return out
    vec = vector(ins[0])
    if vec is None:
        return None
    if op == "Gather":
        idx = const(ins[1]) if len(ins) > 1 else None
        if idx is None or idx.ndim > 1 or not vec:
            return None
        return [vec[int(i) % len(vec)] for i in idx.reshape(-1)]
    if op != "Slice":
        return list(vec)
    if len(node.input) < 3:  # Slice before opset 10: attributes
        starts, ends, steps = _get_attr(node, "starts"), _get_attr(node, "ends"), [1]
    else:
        has_steps = len(node.input) > 4 and node.input[4]
        bounds = [const(n) for n in [*node.input[1:3], *([node.input[4]] if has_steps else [])]]
        if any(b is None for b in bounds):
            return None
        starts, ends = (b.reshape(-1).tolist() for b in bounds[:2])
        steps = bounds[2].reshape(-1).tolist() if has_steps else [1]
    if len(starts) != 1:
        return None
    big = 1 << 62
    return vec[slice(*(max(-big, min(big, int(v[0]))) for v in (starts, ends, steps)))]


def _check_dims(dims: Mapping[str, int] | None) -> dict[str, int]:
    if dims is None:
        return {}
    if not isinstance(dims, Mapping):
        raise TypeError(f"dims: expected a mapping of dimension names to sizes, got {dims!r}")
    for name, size in dims.items():
        if (
            not isinstance(name, str)
            or isinstance(size, bool)
            or not isinstance(size, numbers.Integral)
        ):
            raise TypeError(f"dims: expected str names and int sizes, got {name!r}: {size!r}")
        if size < 1:
            raise ValueError(f"dims: the size of {name!r} must be >= 1, got {size}")
    return {name: int(size) for name, size in dims.items()}


def _symbolic_dims(model: Any) -> set[str]:
    """The names of the graph inputs' dimensions without a fixed size ("" for unnamed ones)."""
    known = {t.name for t in model.graph.initializer}
    return {
        d.dim_param
        for vi in model.graph.input
        if vi.name not in known and vi.type.tensor_type.HasField("shape")
        for d in vi.type.tensor_type.shape.dim
        if not d.HasField("dim_value")
    }


class OnnxDependencyGraph:
    """Coupled channel groups of an ONNX model (SPA's ONNX graph).

    Args:
        model: an ``onnx.ModelProto`` or a path to an ``.onnx`` file (not modified).
        dims: sizes for the symbolic dimensions of the graph inputs (e.g. ``{"h": 32}``), used
            only to infer shapes; every dimension not named is taken as 1 (name a size where 1
            is not a valid input, e.g. an image pooled below one pixel). Exports with dynamic
            axes (batch, sequence, image size) prune like static ones and stay dynamic.

    Attributes:
        groups: list of :class:`~neuronkit.pruning.graph.Group`; member ``module`` fields hold
            initializer names and ``param`` is ``""``. An attention group's channels are whole
            heads (each channel's positions hold its q, k and v rows).
    """

    def __init__(self, model: Any, dims: Mapping[str, int] | None = None) -> None:
        onnx = _require_onnx()
        fixed = _check_dims(dims)
        if isinstance(model, (str, Path)):
            if not Path(model).is_file():
                raise FileNotFoundError(
                    "model must be an onnx.ModelProto or the path of an existing .onnx file, "
                    f"got {str(model)!r}"
                )
            model = onnx.load(str(model))
        if not isinstance(model, onnx.ModelProto):
            raise TypeError(
                f"model: expected an onnx.ModelProto or a path, got {type(model).__name__}"
            )
        model = _fold_recurrent_weights(model)
        inferred = _infer_shapes(model)
        model = _identity_gathers(_fold_static_shapes(model, inferred), inferred)
        model, self._copies = _normalize(_private_shapes(model))
        self.model = model
        self._opset = _opset_of(model)
        symbolic = _symbolic_dims(model)
        if set(fixed) - symbolic:
            raise ValueError(
                f"dims: {sorted(set(fixed) - symbolic)} are not symbolic dimensions of the "
                f"model's inputs (those are {sorted(symbolic - {''}) or 'none'})"
            )
        if symbolic:  # shapes on a copy with those dimensions fixed
            inferred = _infer_shapes(model, fixed)
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, int] = {}
        for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            tt = vi.type.tensor_type
            if tt.elem_type:
                self._dtypes[vi.name] = int(tt.elem_type)
            axes = tt.shape.dim
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in axes):
                self._shapes[vi.name] = tuple(int(d.dim_value) for d in axes)
        self.init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        for t in model.graph.initializer:
            self._shapes[t.name] = tuple(t.dims)
            self._dtypes[t.name] = int(t.data_type)
        # statically known values (integer initializers, Constant nodes, scalars, folded shape
        # arithmetic) and, for shape vectors, where each element comes from
        self._const: dict[str, np.ndarray] = {}
        self._sv: dict[str, list[_Elem]] = {}
        for name, arr in self.init.items():
            if arr.dtype.kind in "iub" or arr.size <= 1:
                self._set_const(name, arr, source=True)
        self._alias: dict[str, str] = {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name in ("value_int", "value_ints", "value_float", "value_floats"):
                        value = np.array(onnx.helper.get_attribute_value(a))
                        self._set_const(node.output[0], value)
                        self._shapes[node.output[0]] = tuple(value.shape)
                        self._dtypes[node.output[0]] = onnx.helper.np_dtype_to_tensor_dtype(
                            value.dtype
                        )
                    if a.name == "value":
                        arr = onnx.numpy_helper.to_array(a.t)
                        self.init[node.output[0]] = arr
                        self._dtypes[node.output[0]] = int(a.t.data_type)
                        self._shapes[node.output[0]] = tuple(arr.shape)
                        self._set_const(node.output[0], arr, source=True)
        self._uf = _UnionFind()
        self._frozen: dict[int, str] = {}
        self._kept: dict[int, str] = {}
        self._members: list[_RawMember] = []
        self._mha: list[tuple[str, list[int], int]] = []
        self._aligned: list[tuple[list[int], int]] = []
        self._segments: list[tuple[list[int], int]] = []  # no gqa="queries" here
        self._bare_norms: dict[str, list[int]] = {}
        self._size_slots: dict[tuple[str, str], list[int]] = {}  # no module attributes here
        self._count_ties: list[Any] = []  # nor counts read in forward
        self._count_ratios: list[Any] = []
        self._ratio_nodes: dict[Any, Any] = {}
        # reshape-target entries to rewrite: (initializer, flat index) -> (kind, slots / table,
        # divisor: the dynamic factor of a product element)
        self._rewrites: dict[tuple[str, int], tuple[str, Any, int]] = {}
        # (node name, input name): a slice's one-entry bound on the channel axis, rewritten
        self._cut_bounds: set[tuple[str, str]] = set()
        # (node index, input index) -> the one value of a fill operand, written as a scalar
        self._scalar_inputs: dict[tuple[int, int], np.ndarray] = {}
        self._producer = {o: n for n in model.graph.node for o in n.output}
        self._readers: dict[str, list[tuple[str, int]]] = {}  # value -> (op type, input index)
        for n in model.graph.node:
            for k, name in enumerate(n.input):
                self._readers.setdefault(name, []).append((n.op_type, k))
        # an initializer whose copies (one per reader, see _normalize) are all MatMul weights:
        # one weight read by several products (an RNN's recurrent weight, a shared layer)
        readers_of: dict[str, list[tuple[str, int]]] = {}
        for name, uses in self._readers.items():
            if name in self.init:
                readers_of.setdefault(self._copies.get(name, name), []).extend(uses)
        self._matmul_weights = {
            w for w, r in readers_of.items() if len(r) > 1 and set(r) == {("MatMul", 1)}
        }
        # Transpose outputs of a 2-D weight read only as MatMul weights (x @ W.T) -> the weight
        self._transposed_weights: dict[str, str] = {}
        self._shared_weights: dict[str, tuple[list[int], list[int]]] = {}  # W -> (in, out) slots
        self._weights_tied: set[str] = set()  # the initializers (or copies) given those slots
        self._fills: dict[str, np.ndarray | None] = {}
        self._pinned: set[tuple[str, int]] = set()  # shape constants also read by other ops
        self._tables: list[_Table] = []
        self._layernorms: list[tuple[int, str, list[int]]] = []
        # ReduceMean / ReduceSum over a channel axis: (node index, axis, rank, slots)
        self._reductions: list[tuple[int, int, int, list[int]]] = []
        self._depthwise: list[tuple[int, str]] = []
        self._recurrents: list[tuple[int, str]] = []  # (node index, R): hidden_size
        self._divisors: set[str] = set()  # per-channel divisors (soft oracle: removed -> 1)
        self._build()
        self.groups: list[Group] = DependencyGraph._make_groups(self)  # type: ignore[arg-type]

    # shape tensors -------------------------------------------------------------------------
    def _set_const(self, name: str, arr: np.ndarray, source: bool = False) -> None:
        self._const[name] = arr
        if arr.dtype.kind in "iu" and arr.ndim <= 1:
            flat = arr.reshape(-1).tolist()
            self._sv[name] = [
                ("c", int(v), (name, j) if source else None) for j, v in enumerate(flat)
            ]

    def _sensitive(self, elems: list[_Elem]) -> list[_Elem]:
        """Elements that read the extent of a channel axis (they change when pruned)."""
        return [
            e
            for e in elems
            if (e[0] == "d" and e[2] in _axes_of(e[4]))
            or (e[0] == "x" and set(e[2]) & set(_axes_of(e[4])))
        ]

    def _fold(self, node: Any) -> list[np.ndarray] | None:
        names = [n for n in node.input if n]
        if any(self._const[n].size > _FOLD_MAX for n in names):
            return None
        return _evaluate(node, {n: self._const[n] for n in names}, self._opset)

    def _infer(self, node: Any) -> None:
        """Output shapes ONNX shape inference left unknown (e.g. a Reshape whose target is
        computed from ``Shape``), inferred for this node from the known shapes and the folded
        values of its inputs."""
        onnx = _require_onnx()
        if all(o in self._shapes for o in node.output if o):
            return
        types, data = {}, {}
        for n in node.input:
            if not n:
                continue
            if n not in self._dtypes:
                return
            shape = self._shapes.get(n)
            types[n] = onnx.helper.make_tensor_type_proto(self._dtypes[n], shape)
            if n in self._const and self._const[n].size <= _FOLD_MAX:
                data[n] = onnx.numpy_helper.from_array(self._const[n], n)
        try:
            schema = onnx.defs.get_schema(node.op_type, self._opset, node.domain)
            outs = onnx.shape_inference.infer_node_outputs(
                schema, node, types, data, opset_imports=list(self.model.opset_import)
            )
        except Exception:  # an op ONNX cannot infer keeps unknown shapes
            return
        for name, tp in outs.items():
            tt = tp.tensor_type
            if tt.elem_type:
                self._dtypes.setdefault(name, int(tt.elem_type))
            dims = tt.shape.dim
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                self._shapes.setdefault(name, tuple(int(d.dim_value) for d in dims))

    def _shape_rule(self, node: Any, labels: dict[str, Any]) -> bool:
        """Shape, Constant and integer shape arithmetic; True when ``node`` was handled (its
        outputs carry no channels)."""
        op = node.op_type
        if op == "Constant":
            return True
        if op == "Shape":
            shape = self._shapes.get(node.input[0])
            if shape is None:
                return True
            nd = len(shape)
            start = int(self._attr(node, "start", 0))
            end = int(self._attr(node, "end", nd))
            start, end = (max(0, min(nd, v + nd if v < 0 else v)) for v in (start, end))
            lab = labels.get(node.input[0])
            if isinstance(lab, _Table) and start <= lab.inner < end:
                # the per-head width is read (e.g. the 1/sqrt(head_dim) scale of an attention
                # op): keep it by pruning whole heads only
                lab = labels[node.input[0]] = self._collapse(lab)
            elems = [("d", node.input[0], a, shape[a], lab) for a in range(start, end)]
            self._const[node.output[0]] = np.array([e[3] for e in elems], dtype=np.int64)
            self._shapes[node.output[0]] = (len(elems),)
            self._sv[node.output[0]] = elems
            return True
        names = [n for n in node.input if n]
        if op not in _FOLDABLE or not names or any(n not in self._const for n in names):
            return False
        if any(isinstance(labels.get(n), (_Label, _Table)) for n in names):
            return False
        if any(n in self.init and n not in self._sv for n in names):
            return False  # a float parameter (e.g. a one-element scale) is not shape arithmetic
        size = math.prod(self._shapes.get(node.output[0], (_FOLD_MAX + 1,)))
        if op == "ConstantOfShape":
            size = math.prod(self._const[node.input[0]].reshape(-1).tolist())
        if size > _FOLD_MAX:
            return False
        outs = self._fold(node)
        if outs is None:
            return False
        moved: list[_Elem] | None = None
        if op in _SHAPE_MOVES and outs[0].ndim <= 1 and node.input[0] in self._sv:
            moved = self._move_elems(node, outs[0])
        elif op == "Mul" and len(names) == 2 and outs[0].size == 1:
            moved = self._product(names, int(outs[0].reshape(-1)[0]))
        # inputs computed with (not moved): their sources are pinned, channel counts frozen; a
        # ConstantOfShape only takes its size from them (a fill's extent may be rewritten, and
        # one read off the channels follows them)
        computed = names if moved is None else [] if op in ("Concat", "Mul") else names[1:]
        if op == "ConstantOfShape":
            computed = []
        for name in computed:
            self._pin(name, node)
        for out, arr in zip(node.output, outs, strict=False):
            self._set_const(out, arr)
            self._shapes[out] = tuple(arr.shape)
        if moved is not None:
            self._sv[node.output[0]] = moved
        return True

    def _product(self, names: list[str], value: int) -> list[_Elem] | None:
        """``d * c`` of a dynamic extent (batch, sequence) and a shape constant, e.g. the
        ``B * heads`` axis that ``nn.MultiheadAttention`` exports: an element whose constant
        factor can be rewritten (``("m", value, source, d)``)."""
        pair = [self._sv.get(n, []) for n in names]
        if any(len(p) != 1 for p in pair):
            return None
        (a,), (b,) = pair
        merged = self._merged_extent(a, b, value)
        if merged is not None:
            return [merged]
        d, c = (a, b) if a[0] == "d" else (b, a)
        if d[0] != "d" or self._sensitive([d]) or c[0] != "c" or c[2] is None or d[3] < 1:
            return None
        return [("m", value, c[2], d[3])]

    def _merged_extent(self, a: _Elem, b: _Elem, value: int) -> _Elem | None:
        """``a * b`` of the extents of adjacent axes of one tensor (``d`` elements, or such
        products): ``("x", tensor, axes, value, label)``, the extent of those axes merged, as a
        Reshape that flattens them reads it (e.g. a bidirectional RNN's ``[T, B, 2, H]`` to
        ``[T, B, 2H]``); computed when the model runs, it follows a pruned channel axis."""
        if a[0] not in ("d", "x") or b[0] not in ("d", "x") or a[1] != b[1] or a[4] is not b[4]:
            return None
        axes = sorted((*_elem_axes(a), *_elem_axes(b)))
        if axes != list(range(axes[0], axes[-1] + 1)):
            return None
        return ("x", a[1], tuple(axes), value, a[4])

    def _pin(self, name: str, node: Any) -> None:
        """``name`` is used in arithmetic: its shape-constant sources must keep their values and
        the channel extents it reads must not change."""
        elems = self._sv.get(name, [])
        for e in elems:
            if e[0] in ("c", "m") and e[2] is not None:
                self._pinned.add(e[2])
        for e in self._sensitive(elems):
            self._freeze(e[4], f"{node.name or node.op_type}: computes with a channel count")

    def _move_elems(self, node: Any, value: np.ndarray) -> list[_Elem] | None:
        out = _move(node, self._sv.get, self._const.get)
        if out is None or len(out) != value.size:
            return None
        return [
            e if e[0] in ("d", "x") or e[1] == v else ("c", v, None)
            for e, v in zip(out, value.reshape(-1).tolist(), strict=True)
        ]

    # the rules -------------------------------------------------------------------------
    def _param(self, name: str) -> str | None:
        name = self._alias.get(name, name)
        return name if name in self.init else None

    def _fill(self, name: str) -> np.ndarray | None:
        """The single value (0-d array) of ``name`` when it holds one value everywhere: a
        constant of equal entries, a ``ConstantOfShape``, an ``Expand`` of such a value (e.g. a
        threshold or an initial state broadcast to the input's shape), or elementwise ops of
        those; else None."""
        if name in self._fills:
            return self._fills[name]
        self._fills[name] = None  # cycles hold no fill
        value = self.init.get(self._alias.get(name, name), self._const.get(name))
        node = self._producer.get(name)
        fill: np.ndarray | None = None
        if value is not None:
            flat = np.asarray(value).reshape(-1)
            if flat.size >= 1 and bool((flat == flat[0]).all()):
                fill = flat[:1].reshape(())
        elif node is not None and node.op_type == "ConstantOfShape":
            attr = next((a for a in node.attribute if a.name == "value"), None)
            onnx = _require_onnx()
            fill = (
                onnx.numpy_helper.to_array(attr.t).reshape(-1)[:1].reshape(())
                if attr is not None
                else np.zeros((), np.float32)
            )
        elif node is not None and node.op_type == "Expand":
            fill = self._fill(node.input[0])
        elif node is not None and node.op_type in _FILL_KEEPING:
            fills = {i: self._fill(i) for i in node.input if i}
            args = {i: v for i, v in fills.items() if v is not None}
            if args and len(args) == len(fills):
                outs = _evaluate(node, args, self._opset)
                fill = None if outs is None else np.asarray(outs[0]).reshape(-1)[:1].reshape(())
        self._fills[name] = fill
        return fill

    def _filled(self, name: str, labels: dict[str, Any]) -> _Label | None:
        """A tensor of one value made in the graph (an ``Expand`` of a scalar, a
        ``ConstantOfShape``: an RNN's zero initial state as exported) whose last extent is a
        constant of its shape, read by a weight product or as a recurrent op's initial state:
        channels of its own on that axis, whose constant is rewritten to the kept count (the
        torch route's rule for ``torch.zeros(B, self.hidden)``); None for anything else. A
        ``Slice``, ``Squeeze`` or ``Unsqueeze`` of such a fill on other axes (a layer's state
        cut from an ``[L, B, H]`` one) shares its channels when such ops alone read the fill."""
        producer = self._producer.get(name)
        op = getattr(producer, "op_type", None)
        if producer is not None and op in _STATE_MOVES:
            src, out = producer.input[0], self._shapes.get(name)
            nd = len((self._shapes.get(src) if op == "Squeeze" else out) or ())
            if op == "Slice":
                c = self._const.get(producer.input[3]) if len(producer.input) > 3 else None
                axes = None if c is None else c.reshape(-1).tolist()
            else:
                axes = self._axes_input(producer)
            if (
                out
                and nd
                and axes is not None
                and (nd - 1) not in {a % nd for a in axes}
                and all(r[0] in _STATE_MOVES and r[1] == 0 for r in self._readers.get(src, []))
            ):
                inner = labels.get(src) or self._filled(src, labels)
                if isinstance(inner, _Label) and len(inner.slots) == out[-1]:
                    labels[name] = _Label(len(out) - 1, inner.slots)
                    return labels[name]
            return None
        if producer is None or op not in ("Expand", "ConstantOfShape") or self._fill(name) is None:
            return None
        shape = self._sv.get(producer.input[_SHAPE_INPUT[op]])
        out, src = self._shapes.get(name), self._shapes.get(producer.input[0])
        if not shape or out is None or len(shape) != len(out):
            return None
        if op == "Expand" and (src is None or (src and src[-1] != 1)):
            return None  # the expanded value must broadcast along that axis
        e = shape[-1]
        if e[0] != "c" or e[2] is None or e[1] != out[-1] or e[1] <= 1:
            return None
        label = _Label(len(out) - 1, self._uf.new(e[1]))
        self._rewrite(producer, e, ("count", label.slots))
        labels[name] = label
        return label

    def _freeze(self, label: Any, reason: str) -> None:
        for s in _slots_of(label):
            self._frozen.setdefault(s, reason)

    def _collapse(self, table: _Table) -> _Label:
        for row in table.rows:
            self._uf.unite(row[:1] * (len(row) - 1), row[1:])
        return _Label(table.outer, [row[0] for row in table.rows])

    def _build(self) -> None:
        labels: dict[str, Any] = {}
        table_ops = {"Transpose", "Unsqueeze", "Squeeze", "Gather", "Shape"} | _ELEMENTWISE
        for i, node in enumerate(self.model.graph.node):
            if node.op_type == "Identity" and self._param(node.input[0]):
                self._alias[node.output[0]] = self._alias.get(node.input[0], node.input[0])
                continue
            self._infer(node)
            if node.op_type not in table_ops:
                for name in node.input:
                    if isinstance(labels.get(name), _Table):
                        labels[name] = self._collapse(labels[name])
            if self._shape_rule(node, labels):
                for name in node.output:
                    labels[name] = None
                continue
            try:
                outs = self._rule(node, labels, i)
            except _Freeze as fz:
                for name in node.input:
                    self._freeze(labels.get(name), str(fz))
                outs = [None] * len(node.output)
            k = _SHAPE_INPUT.get(node.op_type, -1)
            for name in (n for j, n in enumerate(node.input) if j != k):
                if name in self._sv and (node.name, name) not in self._cut_bounds:
                    self._pin(name, node)  # a shape read as data, indices or axes
            for name, lab in zip(node.output, outs, strict=False):
                labels[name] = lab
        for out in self.model.graph.output:
            self._freeze(labels.get(out.name), "model output")
        for key, (_, spec, _) in self._rewrites.items():
            if key in self._pinned:
                self._freeze(
                    spec if isinstance(spec, _Table) else _Label(0, spec),
                    "a reshape target constant is also used in arithmetic",
                )
        for t in self._tables:  # kept entries must form a (rows x columns) block
            roots = [self._uf.roots(row).tolist() for row in t.rows]
            if not (all(r == roots[0] for r in roots) or all(len(set(r)) == 1 for r in roots)):
                self._freeze(t, "reshape into two channel axes that are pruned unevenly")

    def _attr(self, node: Any, name: str, default: Any = None) -> Any:
        return _get_attr(node, name, default)

    def _member(self, init: str, dim: int, role: str, kind: str, slots: list[int]) -> None:
        self._members.append(_RawMember(init, "", dim, role, kind, list(slots)))

    def _data(self, name: str, labels: dict[str, Any]) -> Any:
        """The label of a data input; a float initializer read as data (a class token, a
        position embedding, an embedding table) produces fresh channels on its last axis."""
        lab = labels.get(name)
        if lab is not None or not name:
            return lab
        p = self._param(name)
        if p is None or p in self._sv or self.init[p].ndim == 0 or self.init[p].dtype.kind != "f":
            return None
        arr = self.init[p]
        lab = _Label(arr.ndim - 1, self._uf.new(arr.shape[-1]))
        self._member(p, arr.ndim - 1, "embed", "Initializer", lab.slots)
        labels[name] = lab
        return lab

    def _shared_weight_product(
        self, node: Any, x: Any, w: str, source: str, in_dim: int, nd: int
    ) -> _Label:
        """A MatMul by the 2-D weight ``w`` (read on its axis ``in_dim``) that other MatMuls
        read too, as ``source`` itself (through a ``Transpose``: ``x @ W.T``) or as copies of
        it (:func:`_normalize` gives each reader its own): every product reads the same input
        slots and writes the same output slots, so all of them prune the weight alike (and the
        copies, still equal, are merged again)."""
        slots = self._shared_weights.get(source)
        if slots is None:
            shape = self.init[w].shape
            n_in, n_out = shape[in_dim], shape[1 - in_dim]
            slots = self._shared_weights[source] = (self._uf.new(n_in), self._uf.new(n_out))
        if w not in self._weights_tied:
            self._weights_tied.add(w)
            self._member(w, in_dim, "in", "MatMul", slots[0])
            self._member(w, 1 - in_dim, "out", "MatMul", slots[1])
        in_shape = self._shapes.get(node.input[0])
        if (
            isinstance(x, _Label)
            and in_shape
            and x.axis == len(in_shape) - 1
            and len(x.slots) == len(slots[0])
        ):
            self._uf.unite(slots[0], x.slots)
        else:
            self._freeze(x, f"{node.name}: input features")
            self._freeze(_Label(0, slots[0]), f"{node.name}: input features")
        return _Label(nd - 1, slots[1])

    def _axes_input(self, node: Any) -> list[int] | None:
        axes = self._attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            c = self._const.get(node.input[1])
            axes = None if c is None else c.reshape(-1).tolist()
        return None if axes is None else [int(a) for a in axes]

    def _rule(self, node: Any, labels: dict[str, Any], i: int) -> list[Any]:
        op = node.op_type
        x = labels.get(node.input[0]) if node.input else None
        out_shape = self._shapes.get(node.output[0])
        if op in _POOLS and isinstance(x, _Label) and x.axis != 1:
            # ONNX pools act on the axes after 1: channels elsewhere would be pooled together
            raise _Freeze(f"{node.name or op}: pools over the channel axis")
        if op in _ELEMENTWISE:
            return [x] + [None] * (len(node.output) - 1)
        if op == "Conv":
            w = self._param(node.input[1])
            if w is None:
                raise _Freeze(f"{node.name or op}: weights are not an initializer")
            o, i_per = self.init[w].shape[:2]
            groups = int(self._attr(node, "group", 1))
            b = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            depthwise = groups > 1 and groups == o and i_per == 1
            if depthwise and x is not None and x.axis == 1 and len(x.slots) == o:
                self._member(w, 0, "out", op, x.slots)
                if b:
                    self._member(b, 0, "out", op, x.slots)
                self._depthwise.append((i, w))
                return [x]
            # grouped (as the torch route): local channel j of every group is one unit
            if x is not None:
                if x.axis == 1 and len(x.slots) == i_per * groups and not depthwise:
                    _couple_blocks(self._uf, x.slots, groups)
                    self._member(w, 1, "in", op, x.slots[:i_per])
                else:
                    self._freeze(x, f"{node.name}: input channels")
            out = _Label(1, self._uf.new(o))
            _couple_blocks(self._uf, out.slots, groups)
            if depthwise:  # its input channels are untracked: the output cannot follow them
                self._freeze(out, f"{node.name}: depthwise convolution of untracked channels")
            self._member(w, 0, "out", op, out.slots)
            if b:
                self._member(b, 0, "out", op, out.slots)
            return [out]
        w_t = self._transposed_weights.get(node.input[1]) if len(node.input) > 1 else None
        weight_input = len(node.input) > 1 and (w_t or self._param(node.input[1]))
        if op == "MatMul" and not weight_input:
            return [self._matmul(node, labels)]
        if op in ("Gemm", "MatMul") and x is None and weight_input:
            # a constant (a static export's zero state: channels of its own, pruned with the
            # weight's rows) or a fill made in the graph
            x = self._data(node.input[0], labels) or self._filled(node.input[0], labels)
        if op in ("Gemm", "MatMul"):
            w = w_t or (self._param(node.input[1]) if len(node.input) > 1 else None)
            if w is None or self.init[w].ndim != 2:
                raise _Freeze(f"{node.name or op}: weights are not a 2-D initializer")
            trans = bool(w_t) or (op == "Gemm" and int(self._attr(node, "transB", 0)) == 1)
            if op == "Gemm" and int(self._attr(node, "transA", 0)) == 1:
                raise _Freeze(f"{node.name}: transA")
            in_dim, out_dim = (1, 0) if trans else (0, 1)
            n_out = self.init[w].shape[out_dim]
            nd = len(out_shape) if out_shape else 2
            source = self._copies.get(w, w)
            if w_t or (op == "MatMul" and source in self._matmul_weights):
                return [self._shared_weight_product(node, x, w, source, in_dim, nd)]
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
            out = _Label(nd - 1, self._uf.new(n_out))
            self._member(w, out_dim, "out", op, out.slots)
            c = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if c is not None:
                if self.init[c].ndim >= 1 and self.init[c].shape[-1] == n_out:
                    self._member(c, self.init[c].ndim - 1, "out", op, out.slots)
                elif self.init[c].size != 1:
                    self._freeze(out, f"{node.name}: bias shape")
            return [out]
        if op == "ConvTranspose":
            w = self._param(node.input[1])
            groups = int(self._attr(node, "group", 1))
            c_in, c_out = self.init[w].shape[:2] if w is not None else (0, 0)
            b = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if w is not None and 1 < groups == c_in and c_out == 1:  # depthwise: [C, 1, ...]
                if x is None:  # its channels are untracked: the output cannot follow them
                    out = _Label(1, self._uf.new(c_in))
                    self._freeze(out, f"{node.name}: depthwise convolution of untracked channels")
                    return [out]
                if not isinstance(x, _Label) or x.axis != 1 or len(x.slots) != c_in:
                    raise _Freeze(f"{node.name or op}: input channels")
                self._member(w, 0, "out", op, x.slots)
                if b:
                    self._member(b, 0, "out", op, x.slots)
                self._depthwise.append((i, w))
                return [x]
            if w is None:
                raise _Freeze(f"{node.name or op}: weights are not an initializer")
            # grouped (as the torch route): local channel j of every group is one unit; the
            # weight [C_in, C_out / G, ...] holds every input row and the local output columns
            if x is not None:
                if x.axis == 1 and len(x.slots) == c_in:
                    _couple_blocks(self._uf, x.slots, groups)
                    self._member(w, 0, "in", op, x.slots)
                else:
                    self._freeze(x, f"{node.name}: input channels")
            out = _Label(1, self._uf.new(c_out * groups))
            _couple_blocks(self._uf, out.slots, groups)
            self._member(w, 1, "out", op, out.slots[:c_out])
            if b:
                self._member(b, 0, "out", op, out.slots)
            return [out]
        if op == "Resize":  # scales per axis (or per listed ``axes``), 1 on the channels
            name = node.input[2] if len(node.input) > 2 else ""
            scales = self._const.get(name, self.init.get(name))
            if len(node.input) > 3 and node.input[3]:
                raise _Freeze(f"{node.name}: resize to given sizes")
            if isinstance(x, _Label):
                axes = self._attr(node, "axes") or range(0 if scales is None else scales.size)
                scale = dict(zip(axes, [] if scales is None else scales.reshape(-1).tolist()))
                if scale.get(x.axis, 1 if scales is not None else None) != 1:
                    raise _Freeze(f"{node.name}: resizes the channel axis")
            return [x]
        if op in ("BatchNormalization", "InstanceNormalization"):
            if x is None:
                return [None]
            if not isinstance(x, _Label) or x.axis != 1:  # they normalize axis 1 only
                raise _Freeze(f"{node.name}: {op} over another axis than the channels")
            for name in node.input[1:5]:  # scale, bias (and batch norm's statistics)
                p = self._param(name)
                if p is None:
                    raise _Freeze(f"{node.name}: parameters are not initializers")
                self._member(p, 0, "norm", op, x.slots)
            return [x]
        if op == "LayerNormalization":
            return self._layernorm(node, x, i)
        if op in _BINARY:
            return [self._binary(node, labels, i)]
        if op in ("Flatten", "Reshape"):
            return [self._reshape(node, x, op)]
        if op == "Concat":
            return [self._concat(node, labels)]
        if op == "Split":
            return self._split(node, x)
        if op == "Transpose":
            weight = self._param(node.input[0])
            readers = self._readers.get(node.output[0], [])
            if (
                weight is not None
                and self.init[weight].ndim == 2
                and self.init[weight].dtype.kind == "f"
                and list(self._attr(node, "perm", [1, 0])) == [1, 0]
                and readers
                and all(r == ("MatMul", 1) for r in readers)
            ):  # x @ W.T of a weight W [out, in]: the MatMul rule reads W itself
                self._transposed_weights[node.output[0]] = weight
                return [None]
            x = self._data(node.input[0], labels)
            if x is None:
                return [None]
            perm_attr = self._attr(node, "perm")
            if perm_attr is None:  # ONNX's default: reverse the axes
                nd = len(self._shapes.get(node.input[0]) or ())
                if nd == 0:
                    raise _Freeze(f"{node.name}: transpose of unknown rank")
                perm_attr = list(range(nd - 1, -1, -1))
            perm = list(perm_attr)
            if isinstance(x, _Table):
                return [x.moved(perm.index(x.outer), perm.index(x.inner))]
            return [_Label(perm.index(x.axis), x.slots)]
        if op in ("Unsqueeze", "Squeeze"):
            return [self._unsqueeze(node, self._data(node.input[0], labels))]
        if op == "Slice":
            return [self._slice(node, x)]
        if op == "Pad":
            return [self._pad(node, x)]
        if op == "Gather":
            return [self._gather(node, self._data(node.input[0], labels))]
        if op == "GatherND":
            return [self._gather_nd(node, x)]
        if op == "Expand":
            return [self._expand(node, self._data(node.input[0], labels))]
        if op == "Softmax":
            if x is None:
                return [None]
            nd = len(self._shapes.get(node.input[0]) or ())
            axis = int(self._attr(node, "axis", -1 if self._opset >= 13 else 1)) % max(nd, 1)
            if x.axis == axis or (self._opset < 13 and x.axis > axis):
                raise _Freeze(f"{node.name}: softmax over channels")
            return [x]
        if op in ("ReduceMean", "ReduceSum"):
            if x is None:
                return [None]
            axes = self._attr(node, "axes")
            if axes is None and len(node.input) > 1:
                p = self._param(node.input[1])
                axes = None if p is None else self.init[p].tolist()
            keep = int(self._attr(node, "keepdims", 1))
            in_shape = self._shapes.get(node.input[0])
            if axes is None and (len(node.input) < 2 or not node.input[1]):
                axes = list(range(len(in_shape or ())))  # no axes: every axis
            if axes is None or in_shape is None:
                raise _Freeze(f"{node.name}: reduction over unknown axes")
            axes = [a % len(in_shape) for a in axes]
            if x.axis in axes:  # a statistic over the channels (e.g. a LayerNorm written out
                # in ops, as exports below opset 17 have it): over the kept ones once pruned
                self._reductions.append((i, x.axis, len(in_shape), list(x.slots)))
                return [None]
            return [_Label(x.axis - (0 if keep else sum(a < x.axis for a in axes)), x.slots)]
        if op == "CumSum":  # a running sum along one axis
            along = self._const.get(node.input[1])
            nd = len(self._shapes.get(node.input[0]) or ())
            if x is not None and (
                along is None or not nd or int(along.reshape(-1)[0]) % nd in _axes_of(x)
            ):
                raise _Freeze(f"{node.name or op}: cumulative sum over the channels")
            return [x]
        if op in ("DepthToSpace", "SpaceToDepth"):
            return [self._depth_space(node, x)]
        if op in _RECURRENT:
            return self._recurrent(node, labels, i)
        raise _Freeze(f"{node.name or op}: unsupported op {op}")

    def _depth_space(self, node: Any, x: Any) -> Any:
        """``DepthToSpace`` (``PixelShuffle``, block ``b``): output channel ``c`` is the ``b^2``
        input channels ``c b^2 + k`` (mode CRD) or ``k C + c`` (DCR), moved to space: one unit.
        ``SpaceToDepth``: input channel ``c`` becomes output channels ``k C + c``."""
        if x is None:
            return None
        if not isinstance(x, _Label) or x.axis != 1:
            raise _Freeze(f"{node.name or node.op_type}: channels not on axis 1")
        r2 = int(self._attr(node, "blocksize")) ** 2
        if node.op_type == "SpaceToDepth":
            return _Label(1, x.slots * r2)
        n = len(x.slots) // r2
        if self._attr(node, "mode", b"DCR") in (b"CRD", "CRD"):
            blocks = [x.slots[c * r2 : (c + 1) * r2] for c in range(n)]
        else:
            blocks = [x.slots[c::n] for c in range(n)]
        return _Label(1, _unite_blocks(self._uf, blocks))

    def _recurrent(self, node: Any, labels: dict[str, Any], i: int) -> list[Any]:
        """``LSTM`` / ``GRU`` / ``RNN``: hidden unit ``j`` is one channel in both directions
        (one ``hidden_size``, rewritten once pruned): its row in each of the G gate blocks of
        ``W [D, G*H, I]`` and ``R [D, G*H, H]``, in each of the 2G blocks of ``B [D, 2G*H]``
        and the 3 of the LSTM's peepholes ``P [D, 3H]``, its column of ``R``, and the last
        axis of the outputs ``Y [T, D, B, H]`` (layout 1: ``[B, T, D, H]``), ``Y_h`` and
        ``Y_c`` and of the initial states. The input features are ``W``'s columns. An initial
        state must follow the units: a constant (pruned with them), a fill made in the graph
        from a shape constant (see :meth:`_filled`) or a tensor whose last axis carries them;
        anything else freezes them (the torch route's rule for ``hx``)."""
        op, name = node.op_type, node.name or node.op_type
        gates = _RECURRENT[op]
        w, r = (self._param(n) for n in node.input[1:3])
        hidden = int(self._attr(node, "hidden_size", 0))
        if w is None or r is None or self.init[w].ndim != 3:
            raise _Freeze(f"{name}: weights are not initializers")
        d, rows, features = self.init[w].shape
        if hidden < 1 or rows != gates * hidden or self.init[r].shape != (d, rows, hidden):
            raise _Freeze(f"{name}: weight shapes do not match hidden_size")
        optional = {3: ("B", 2 * gates), 7: ("P", 3)}
        extra: list[tuple[str, int]] = []
        for k, (what, blocks) in optional.items():
            if len(node.input) <= k or not node.input[k]:
                continue
            p = self._param(node.input[k])
            if p is None or self.init[p].shape != (d, blocks * hidden):
                raise _Freeze(f"{name}: {what} is not an initializer of shape [D, {blocks}H]")
            extra.append((p, blocks))
        states = [  # initial_h, initial_c (these may raise _Freeze: before any member)
            (
                labels.get(n) or self._filled(n, labels) or self._data(n, labels),
                self._shapes.get(n),
            )
            for n in node.input[5:7]
            if n
        ]
        units = self._uf.new(hidden)
        self._member(w, 1, "out", op, units * gates)
        self._member(r, 1, "out", op, units * gates)
        self._member(r, 2, "in", op, units)
        for p, blocks in extra:
            self._member(p, 1, "out", op, units * blocks)
        x = labels.get(node.input[0])
        in_shape = self._shapes.get(node.input[0])
        if x is not None:
            if isinstance(x, _Label) and in_shape and x.axis == len(in_shape) - 1:
                if len(x.slots) == features:
                    self._member(w, 2, "in", op, x.slots)
                else:
                    self._freeze(x, f"{name}: input features")
            else:
                self._freeze(x, f"{name}: input features not on the last axis")
        for lab, shape in states:
            if not (
                isinstance(lab, _Label)
                and shape
                and lab.axis == len(shape) - 1
                and len(lab.slots) == hidden
            ):
                why = f"{name}: an initial state whose hidden units are untracked"
                self._freeze(lab, why)
                self._freeze(_Label(0, units), why)
            else:
                self._uf.unite(lab.slots, units)
        self._recurrents.append((i, r))
        return [_Label(nd - 1, units) for nd in (4, 3, 3)][: len(node.output)]

    def _layernorm(self, node: Any, x: Any, i: int) -> list[Any]:
        rest = [None] * (len(node.output) - 1)
        if x is None:
            return [None, *rest]
        in_shape = self._shapes.get(node.input[0])
        if in_shape is None:
            raise _Freeze(f"{node.name}: unknown shape")
        nd = len(in_shape)
        axis = int(self._attr(node, "axis", -1)) % nd
        if x.axis < axis:
            return [x, *([x] * len(rest))]  # channels are not normalized over
        if axis != nd - 1 or any(node.output[1:]):
            raise _Freeze(f"{node.name}: LayerNormalization over several axes with channels")
        scale = self._param(node.input[1])
        bias = self._param(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or (len(node.input) > 2 and node.input[2] and bias is None):
            raise _Freeze(f"{node.name}: scale or bias is not an initializer")
        self._member(scale, 0, "norm", "LayerNormalization", x.slots)
        if bias is not None:
            self._member(bias, 0, "norm", "LayerNormalization", x.slots)
        self._layernorms.append((i, scale, list(x.slots)))
        return [x, *rest]

    def _matmul(self, node: Any, labels: dict[str, Any]) -> Any:
        """``a @ b`` of two activations (attention ``q @ k^T``, ``attn @ v``): channels only on
        batch axes, which broadcast like an elementwise op and unify (the torch route's rule).
        An operand whose channels are all kept (Falcon-7B's one key/value head, picked out of
        the fused projection) is a constant to the others."""
        out = self._shapes.get(node.output[0])
        labs = [None if self._all_kept(labels.get(n)) else labels.get(n) for n in node.input[:2]]
        if not any(isinstance(lab, _Label) for lab in labs):
            return None
        if out is None or len(out) < 3:
            raise _Freeze(f"{node.name}: matrix product over channels")
        nd = len(out)
        result: _Label | None = None
        for name, lab in zip(node.input[:2], labs, strict=True):
            if not isinstance(lab, _Label):
                continue
            s = self._shapes.get(name)
            if s is None or lab.axis >= len(s) - 2:
                raise _Freeze(f"{node.name}: matrix product over channels")
            axis = lab.axis + nd - len(s)
            if result is None:
                result = _Label(axis, list(lab.slots))
                continue
            if axis != result.axis or len(lab.slots) != len(result.slots):
                raise _Freeze(f"{node.name}: channel axes differ")
            self._uf.unite(result.slots, lab.slots)
        assert result is not None
        for name, lab in zip(node.input[:2], labs, strict=True):
            if isinstance(lab, _Label):
                continue
            s = self._shapes.get(name)
            idx = result.axis - (nd - len(s)) if s is not None else 0
            if s is None or (idx >= 0 and s[idx] != 1):
                raise _Freeze(f"{node.name}: combines channels with an untracked tensor")
        return result

    def _all_kept(self, x: Any) -> bool:
        """Whether ``x`` is a label all of whose channels are kept (see :meth:`_gather_nd`)."""
        if not isinstance(x, _Label) or not self._kept:
            return False
        kept = {self._uf.find(s) for s in self._kept}
        return all(self._uf.find(s) in kept for s in x.slots)

    def _unsqueeze(self, node: Any, x: Any) -> Any:
        if x is None:
            return None
        src, out = self._shapes.get(node.input[0]), self._shapes.get(node.output[0])
        axes = self._axes_input(node)
        if src is None or out is None:
            raise _Freeze(f"{node.name}: unknown shapes")
        if node.op_type == "Unsqueeze":
            if axes is None:
                raise _Freeze(f"{node.name}: unknown axes")
            inserted = {a % len(out) for a in axes}
            kept = [a for a in range(len(out)) if a not in inserted]  # kept[i]: new place of i
        else:
            removed = (
                {a % len(src) for a in axes}
                if axes is not None
                else {a for a, n in enumerate(src) if n == 1}
            )
            if set(_axes_of(x)) & removed:
                raise _Freeze(f"{node.name}: squeezes a channel axis")
            kept = [-1] * len(src)
            for new, a in enumerate(a for a in range(len(src)) if a not in removed):
                kept[a] = new
        if isinstance(x, _Table):
            return x.moved(kept[x.outer], kept[x.inner])
        return _Label(kept[x.axis], x.slots)

    def _slice(self, node: Any, x: Any) -> Any:
        """Slicing other axes keeps the channels (e.g. the two halves of a head's dimensions
        that rotary embeddings swap). A slice of the channel axis at constant bounds (one piece
        of a fused projection, Phi-3's ``qkv[..., 32:48]``) keeps the channels between them,
        each bound that cuts the axis rewritten to the kept count of the channels before it;
        a constant bound counted from the end keeps the channels after it (Falcon-7B's
        ``qkv[..., :-2, :]``); a step or a computed bound freezes them."""
        if x is None:
            return None
        src = self._shapes.get(node.input[0])
        if src is None:
            raise _Freeze(f"{node.name}: unknown shape")
        if len(node.input) < 3:  # opset < 10: attributes
            axes = self._attr(node, "axes", list(range(len(self._attr(node, "starts", [])))))
        elif len(node.input) > 3 and node.input[3]:
            axes = self._const.get(node.input[3])
            if axes is None:
                raise _Freeze(f"{node.name}: unknown slice axes")
            axes = axes.reshape(-1).tolist()
        else:
            axes = list(range(self._const.get(node.input[1], np.zeros(0)).size))
        axes = [int(a) % len(src) for a in axes]
        if not isinstance(x, _Label) or x.axis not in axes:
            return x
        j = axes.index(x.axis)
        steps = self._const.get(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if len(node.input) < 3 or (steps is not None and int(steps.reshape(-1)[j]) != 1):
            raise _Freeze(f"{node.name}: selects channels")
        n, cut = len(x.slots), []
        for name, outside in ((node.input[1], 0), (node.input[2], n)):
            elems = self._sv.get(name)
            e = elems[j] if elems is not None and len(elems) == len(axes) else None
            if e is not None and e[0] == "c" and -n <= e[1] < 0:  # from the end: the tail stays
                bound = n + int(e[1])
                reason = f"{node.name}: slices channels counted from the end"
                fixed = _Label(x.axis, _fixed_span(x.slots, int(e[1])))
                DependencyGraph._keep(self, fixed, reason)  # type: ignore[arg-type]
                cut.append(bound)
                continue
            if e is None or e[0] != "c" or e[2] is None or e[1] < 0:
                raise _Freeze(f"{node.name}: selects channels (at a bound not a constant)")
            bound = min(int(e[1]), n)
            if bound != outside:
                self._rewrite(node, e, ("count", x.slots[:bound]))
                if len(axes) == 1:  # read as a position only (more entries stay pinned)
                    self._cut_bounds.add((node.name, name))
            cut.append(bound)
        return _Label(x.axis, x.slots[cut[0] : cut[1]])

    def _gather_nd(self, node: Any, x: Any) -> Any:
        """``GatherND`` picking entries of the first axis by constant indices ``[k, 1]``
        (torch's export of Falcon-7B's ``qkv[..., [-2], :]``, moved to the front): on the
        channel axis the picked channels stay, and so do those between each and the end it
        counts from, so the indices still pick them; on another axis the channels stay in
        place. Anything else freezes them."""
        if x is None:
            return None
        idx = self._const.get(node.input[1])
        if (
            not isinstance(x, _Label)
            or int(self._attr(node, "batch_dims", 0)) != 0
            or idx is None
            or idx.ndim != 2
            or idx.shape[1] != 1
        ):
            raise _Freeze(f"{node.name}: gathers channels")
        if x.axis > 0:
            return x
        n, picks = len(x.slots), [int(i) for i in idx.reshape(-1)]
        if not all(-n <= i < n for i in picks):
            raise _Freeze(f"{node.name}: gathers channels")
        for i in picks:
            fixed = _Label(0, _fixed_span(x.slots, i if i < 0 else i + 1))
            DependencyGraph._keep(self, fixed, f"{node.name}: picks channels")  # type: ignore[arg-type]
        return _Label(0, [x.slots[i] for i in picks])

    def _pad(self, node: Any, x: Any) -> Any:
        """Padding other axes keeps the channels (Swin pads channels-last maps with zero
        channel pads); padding the channel axis, or unknown pads, freezes them."""
        if x is None:
            return None
        src = self._shapes.get(node.input[0])
        if len(node.input) > 1:  # opset >= 11: pads (and, from 18, axes) are inputs
            pads = self._const.get(node.input[1])
            axes = self._const.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        else:
            pads, axes = np.asarray(self._attr(node, "pads", [])), None
        if src is None or pads is None or not isinstance(x, _Label):
            raise _Freeze(f"{node.name}: padding with unknown pads")
        nd = len(src)
        axes_list = list(range(nd)) if axes is None else [int(a) % nd for a in axes.reshape(-1)]
        amounts = np.asarray(pads).reshape(-1).tolist()
        k = len(axes_list)
        for j, a in enumerate(axes_list):
            if a == x.axis and (amounts[j], amounts[j + k]) != (0, 0):
                raise _Freeze(f"{node.name}: pads the channel axis")
        return x

    def _gather(self, node: Any, x: Any) -> Any:
        if x is None:
            return None
        src, idx_shape = self._shapes.get(node.input[0]), self._shapes.get(node.input[1])
        if src is None or idx_shape is None:
            raise _Freeze(f"{node.name}: unknown shapes")
        idx = self._const.get(node.input[1])
        axis = int(self._attr(node, "axis", 0)) % len(src)
        shift = len(idx_shape) - 1

        def move(a: int) -> int:
            return a if a < axis else a + shift

        if isinstance(x, _Table):
            if (
                axis == x.outer and idx is not None and idx.ndim == 0
            ):  # one row: q, k or v of a fused projection
                return _Label(x.inner - (x.inner > axis), x.rows[int(idx) % len(x.rows)])
            if axis in (x.outer, x.inner):
                x = self._collapse(x)
            else:
                return x.moved(move(x.outer), move(x.inner))
        if axis == x.axis:
            raise _Freeze(f"{node.name}: selects channels")
        return _Label(move(x.axis), x.slots)

    def _expand(self, node: Any, x: Any) -> Any:
        if x is None:
            return None
        src, out = self._shapes.get(node.input[0]), self._shapes.get(node.output[0])
        if src is None or out is None:
            raise _Freeze(f"{node.name}: unknown shapes")
        axis = x.axis + len(out) - len(src)
        if out[axis] != src[x.axis]:
            raise _Freeze(f"{node.name}: broadcasts channels")
        shape = self._sv.get(node.input[1])
        if shape is None:
            raise _Freeze(f"{node.name}: dynamic target shape")
        j = axis - (len(out) - len(shape))
        if j >= 0 and not (shape[j][0] == "c" and shape[j][1] == 1):
            e = shape[j]  # the channel count itself (e.g. repeat_kv of grouped-query attention)
            if e[0] != "c" or e[2] is None or e[1] != len(x.slots):
                raise _Freeze(f"{node.name}: the target shape names the channel count")
            self._rewrite(node, e, ("count", x.slots))
        return _Label(axis, x.slots)

    def _binary(self, node: Any, labels: dict[str, Any], i: int) -> Any:
        """A broadcasting elementwise op (node ``i``): the channels of its labelled operands
        are one; a per-channel operand must be an initializer, or a fill of one value."""
        out_shape = self._shapes.get(node.output[0])
        if out_shape is None:
            raise _Freeze(f"{node.name}: unknown shape")
        nd = len(out_shape)
        found, found_names = [], []
        for name in node.input:
            lab = labels.get(name)
            if isinstance(lab, _Label):
                s = self._shapes.get(name)
                if s is None:
                    raise _Freeze(f"{node.name}: unknown shape")
                found.append(_Label(lab.axis + nd - len(s), lab.slots))
                found_names.append(name)
        if not found:
            return None
        axis, result = found[0].axis, found[0]
        for lab in found[1:]:
            if lab.axis != axis or len(lab.slots) != len(result.slots):
                raise _Freeze(f"{node.name}: channel axes differ")
            self._uf.unite(result.slots, lab.slots)
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
            fill = self._fill(name) if p is None else None
            if fill is not None and out_shape == self._shapes.get(found_names[0]):
                # one value broadcast to the channels: written as that scalar, it follows them
                self._scalar_inputs[(i, list(node.input).index(name))] = fill
                continue
            if p is None:
                raise _Freeze(f"{node.name}: per-channel operand is not an initializer")
            if node.op_type == "Div" and name == node.input[1]:
                self._divisors.add(p)
            self._member(p, idx, "norm", node.op_type, result.slots)
        return result

    def _reshape(self, node: Any, x: Any, op: str) -> Any:
        if x is None:
            return None
        src, out = self._shapes.get(node.input[0]), self._shapes.get(node.output[0])
        if src is None or out is None:
            raise _Freeze(f"{node.name}: unknown shapes")
        result: Any = None
        chan: dict[int, tuple[str, Any]] = {}
        try:
            k, rep = _reshape_channel_map(src, out, x.axis)
            result = _Label(k, [s for s in x.slots for _ in range(rep)])
        except ValueError as err:
            split = _head_split(src, out, x.axis)  # [..., S*d, ...] -> [..., S, d, ...] only
            heads = (split[0], split[2]) if split is not None and split[1] == 1 else None
            if (
                heads is None
            ):  # the same split with unit axes around it ([N, 1, 3D] -> [N, 1, 3, D])
                seg = _reshaped_runs(src, out, x.axis)
                if seg is not None and seg[1] - seg[0] == 1 and seg[3] - seg[2] == 2:
                    heads = (seg[2], out[seg[2] + 1]) if min(out[seg[2] : seg[3]]) > 1 else None
            result = _merged_heads(src, out, x, self._uf, unite=False)
            if result is not None:
                pass
            elif heads is not None and op == "Reshape":
                # [..., S*d, ...] -> [..., S, d, ...]: a table of S rows (heads, or q/k/v)
                k, d = heads
                result = _Table(k, k + 1, [x.slots[h * d : (h + 1) * d] for h in range(out[k])])
                chan = {k: ("rows", result), k + 1: ("cols", result)}
                self._tables.append(result)
            else:
                result = _merged_heads(src, out, x, self._uf, unite=True)
                if result is None:
                    raise _Freeze(f"{node.name}: reshape {err}") from None
        if isinstance(result, _Label):
            chan = {result.axis: ("count", result.slots)}
        if op == "Reshape":
            self._reshape_target(node, x, chan)
        return result

    def _reshape_target(self, node: Any, x: _Label, chan: dict[int, tuple[str, Any]]) -> None:
        """Check every entry of the Reshape target and record the constants to rewrite."""
        target = self._sv.get(node.input[1])
        out = self._shapes.get(node.output[0])
        if target is None or out is None or len(target) != len(out):
            raise _Freeze(f"{node.name}: dynamic reshape target")
        allowzero = int(self._attr(node, "allowzero", 0)) == 1
        src = self._shapes.get(node.input[0]) or ()
        for j, e in enumerate(target):
            spec = chan.get(j)
            if spec is None:
                if e[0] in ("d", "x") and self._sensitive([e]):
                    raise _Freeze(f"{node.name}: target reads a channel count")
                if e[0] == "c" and e[1] == 0 and not allowzero and j == x.axis:
                    raise _Freeze(f"{node.name}: target copies the channel count")
                continue
            same = (
                spec[0] == "count"
                and (
                    (
                        e[0] == "d"
                        and isinstance(e[4], _Label)
                        and e[4].axis == e[2]
                        and e[4].slots == spec[1]
                    )
                    or (
                        e[0] == "c"
                        and e[1] == 0
                        and not allowzero
                        and j == x.axis
                        and x.slots == spec[1]
                    )
                    or (  # the extent of the input's axes that this output axis merges
                        e[0] == "x"
                        and e[1] == node.input[0]
                        and e[4] == x
                        and math.prod(src[: e[2][0]]) == math.prod(out[:j])
                        and math.prod(src[e[2][0] : e[2][-1] + 1]) == out[j]
                    )
                )
            )
            if same or (e[0] == "c" and e[1] == -1):
                continue  # follows the pruned channels by itself
            if e[0] not in ("c", "m") or e[2] is None or e[1] <= 0:
                raise _Freeze(f"{node.name}: reshape target is computed")
            self._rewrite(node, e, spec)

    def _rewrite(self, node: Any, e: _Elem, spec: tuple[str, Any]) -> None:
        """Record that the source constant of the shape element ``e`` becomes the extent of
        ``spec`` once pruned."""
        per = e[3] if e[0] == "m" else 1  # the constant is the extent per batch element
        old = self._rewrites.setdefault(e[2], (*spec, per))
        if (old[1] is not spec[1] and old[1] != spec[1]) or old[2] != per:
            raise _Freeze(f"{node.name}: reshape target shared with another reshape")

    def _concat(self, node: Any, labels: dict[str, Any]) -> Any:
        out = self._shapes.get(node.output[0])
        if out is None:
            raise _Freeze(f"{node.name}: unknown shape")
        axis_attr = int(self._attr(node, "axis")) % len(out)
        parts = [self._data(n, labels) for n in node.input]
        found = [p for p in parts if isinstance(p, _Label)]
        if not found:
            return None
        axis = found[0].axis
        if any(p.axis != axis for p in found):
            raise _Freeze(f"{node.name}: channel axes differ")
        if axis_attr != axis:
            for p in found[1:]:
                self._uf.unite(found[0].slots, p.slots)
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
        if self._attr(node, "split") is not None:  # opset < 13
            raise _Freeze(f"{node.name}: split sizes are an attribute (would need rewriting)")
        if len(set(sizes)) != 1:
            raise _Freeze(f"{node.name}: uneven split")
        outs, start = [], 0
        for s in sizes:
            outs.append(_Label(axis, x.slots[start : start + s]))
            start += s
        # the pruned Split still cuts into equal pieces: each must lose the same positions
        for piece in outs[1:]:
            self._uf.unite(outs[0].slots, piece.slots)
        return outs

    def prunable_groups(self) -> list[Group]:
        """The groups that may lose channels."""
        return [g for g in self.groups if g.prunable]


def _scores(graph: OnnxDependencyGraph, group: Group, p: int) -> np.ndarray:
    rows = []
    with warnings.catch_warnings():  # read-only buffers (numpy_helper), only read here
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        for m in group.members:
            arr = graph.init[m.module]
            if arr.dtype not in (np.float16, np.float32, np.float64):  # e.g. bfloat16
                arr = arr.astype(np.float64)
            per_pos = magnitude_position_scores(torch.from_numpy(arr), m.dim, p).numpy()
            owner, flat = m.positions.owners, m.positions.flat
            rows.append(np.bincount(owner, per_pos[flat], minlength=group.size))
    return np.mean(rows, 0) if rows else np.zeros(group.size)


def _equal_copies(graph: OnnxDependencyGraph, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """``{copy: initializer}`` for the copies ``_normalize`` made (one per extra reader of a
    shared initializer) that are still equal to what they copy after pruning: those readers
    share the initializer again, so a weight read by several nodes (an unrolled recurrence, a
    tied embedding) is stored once in the pruned file, as it was in the original."""
    merged = {}
    for copy, source in graph._copies.items():
        a, b = arrays[copy], arrays[source]
        unchanged = a is graph.init[copy] and b is graph.init[source]
        if unchanged or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)):
            merged[copy] = source
    return merged


def _new_extent(spec: tuple[str, Any], kept: Any) -> int:
    """The extent of a reshaped channel axis once the pruned slots are gone."""
    kind, data = spec
    if kind == "count":
        return sum(1 for s in data if kept(s))
    cells = [[kept(s) for s in row] for row in data.rows]
    if kind == "rows":
        return sum(1 for row in cells if any(row))
    return sum(1 for col in zip(*cells, strict=True) if any(col))


def _masked_statistics(
    graph: OnnxDependencyGraph, new: Any, arrays: dict[str, np.ndarray], kept: Any
) -> None:
    """The oracle's statistics over channels, taken over the kept channels only, as the pruned
    model takes them. LayerNormalization: removed channels output 0 (``Gather`` kept ->
    LayerNormalization -> ``MatMul`` with a 0/1 ``[C', C]`` placement matrix), as
    :class:`~neuronkit.pruning.prune.MaskedLayerNorm` in the torch route. ReduceMean /
    ReduceSum over a channel axis (a LayerNorm or RMSNorm written out in ops): the input times
    a 0/1 channel mask, a mean rescaled by ``C / C_kept``."""
    onnx = _require_onnx()
    h, nph = onnx.helper, onnx.numpy_helper
    replace: dict[int, list[Any]] = {}
    for i, axis, rank, slots in graph._reductions:
        keep = np.array([kept(s) for s in slots])
        if keep.all():
            continue
        node = new.graph.node[i]
        tag = f"{node.output[0]}__nkmask"
        dtype = onnx.helper.tensor_dtype_to_np_dtype(graph._dtypes[node.input[0]])
        mask = keep.astype(dtype).reshape([-1] + [1] * (rank - 1 - axis))
        new.graph.initializer.append(nph.from_array(mask, f"{tag}_mask"))
        reduce = onnx.NodeProto()
        reduce.CopyFrom(node)
        reduce.input[0] = f"{tag}_x"
        replace[i] = [h.make_node("Mul", [node.input[0], f"{tag}_mask"], [f"{tag}_x"]), reduce]
        if node.op_type == "ReduceMean":
            factor = np.array(len(keep) / keep.sum(), dtype=dtype)
            new.graph.initializer.append(nph.from_array(factor, f"{tag}_scale"))
            reduce.output[0] = f"{tag}_y"
            replace[i].append(h.make_node("Mul", [f"{tag}_y", f"{tag}_scale"], [node.output[0]]))
    for i, scale, slots in graph._layernorms:
        keep = np.array([kept(s) for s in slots])
        if keep.all():
            continue
        node = new.graph.node[i]
        idx = np.flatnonzero(keep).astype(np.int64)
        tag = f"{node.output[0]}__nkmask"
        place = np.zeros((len(idx), len(slots)), dtype=arrays[scale].dtype)
        place[np.arange(len(idx)), idx] = 1
        inits = {f"{tag}_idx": idx, f"{tag}_place": place}
        ln_inputs = [f"{tag}_x"]
        for k, name in enumerate(node.input[1:3]):
            if name:
                inits[f"{tag}_p{k}"] = arrays[name][idx]
                ln_inputs.append(f"{tag}_p{k}")
        for name, arr in inits.items():
            new.graph.initializer.append(nph.from_array(arr, name))
        ln = onnx.NodeProto()
        ln.CopyFrom(node)
        del ln.input[:]
        ln.input.extend(ln_inputs)
        ln.output[0] = f"{tag}_y"
        replace[i] = [
            h.make_node("Gather", [node.input[0], f"{tag}_idx"], [f"{tag}_x"], axis=-1),
            ln,
            h.make_node("MatMul", [f"{tag}_y", f"{tag}_place"], [node.output[0]]),
        ]
    if replace:
        nodes = [n for i, old in enumerate(new.graph.node) for n in replace.get(i, [old])]
        del new.graph.node[:]
        new.graph.node.extend(nodes)
        read = {name for n in nodes for name in n.input} | {i.name for i in new.graph.input}
        used = [t for t in new.graph.initializer if t.name in read]
        del new.graph.initializer[:]
        new.graph.initializer.extend(used)


def prune_onnx(
    model: Any,
    ratio: float,
    *,
    p: int = 2,
    ignored: Iterable[str] = (),
    output_path: str | Path | None = None,
    soft: bool = False,
    dims: Mapping[str, int] | None = None,
) -> Any:
    """Remove ``ratio`` of every prunable group's channels from an ONNX model.

    Args:
        model: ``onnx.ModelProto`` or path (not modified).
        ratio: fraction in [0, 1) removed from every group (lowest group Lp magnitude first);
            an attention group's channels are whole heads.
        p: 1 or 2, the magnitude norm.
        ignored: initializer names whose output channels are kept (validated).
        output_path: where to save the pruned model (optional).
        soft: the oracle instead: keep every channel but zero the removed ones' slices, with
            LayerNormalization statistics over the kept channels only.
        dims: sizes for symbolic input dimensions during shape inference (see
            :class:`OnnxDependencyGraph`); dynamic axes stay dynamic in the result.

    Returns:
        the pruned ``onnx.ModelProto`` (checked with ``onnx.checker``); runs in onnxruntime on
        inputs of the shapes the model accepts (dynamic axes included).
    """
    onnx = _require_onnx()
    from .prune import _check_ratio

    ratio = _check_ratio("ratio", ratio)
    if p not in (1, 2):
        raise ValueError(f"p: expected 1 or 2, got {p!r}")
    graph = OnnxDependencyGraph(model, dims)
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
        scores = _scores(graph, g, p)
        if not np.isfinite(scores).all():
            raise ValueError(
                f"the L{p} scores of the group of {sorted(g.producers)} must be finite to rank "
                "its channels, got NaN or inf (NaN or inf in those initializers?)"
            )
        order = _spare_every_output(g, np.argsort(scores, kind="stable")[:n], scores)
        pruned_roots.update(g.roots[j] for j in order.tolist())
        for m in g.members:
            removed.setdefault((m.module, m.dim), set()).update(m.positions.take(order).tolist())
    new = _without_initializers(graph.model)
    arrays = dict(graph.init)
    originals = dict(graph.init)
    for (name, dim), pos in removed.items():
        keep = np.ones(arrays[name].shape[dim], dtype=bool)
        keep[sorted(pos)] = False
        if soft:
            arr = arrays[name].copy()
            idx: list[Any] = [slice(None)] * arr.ndim
            idx[dim] = ~keep
            if name in graph._divisors:  # x / d of a removed channel: 0 / 1, not 0 / 0
                arr[tuple(idx)] = 1
            elif not (name.endswith("var") or "running_var" in name):
                arr[tuple(idx)] = 0
            arrays[name] = arr
        else:
            arrays[name] = np.compress(keep, arrays[name], axis=dim)
    find = graph._uf.find

    def kept(slot: int) -> bool:
        return find(slot) not in pruned_roots

    for (shape_name, j), spec in [] if soft else graph._rewrites.items():
        target = arrays[shape_name].copy()
        target.reshape(-1)[j] = _new_extent(spec[:2], kept) // spec[2]
        arrays[shape_name] = target
    merged = _equal_copies(graph, arrays)
    for t in graph.model.graph.initializer:  # the unchanged ones as they were
        if t.name in merged:
            continue
        changed = arrays[t.name] is not graph.init[t.name]
        new.graph.initializer.append(
            onnx.numpy_helper.from_array(arrays[t.name], t.name) if changed else t
        )
    for node in new.graph.node:
        for k, name in enumerate(node.input):
            if name in merged:
                node.input[k] = merged[name]
    for vi in new.graph.input:  # weights also listed as graph inputs (IR version < 4)
        if vi.name in arrays and arrays[vi.name] is not graph.init[vi.name]:
            shape = vi.type.tensor_type.shape
            del shape.dim[:]
            for n in arrays[vi.name].shape:
                shape.dim.add().dim_value = n
    for (i, j), value in graph._scalar_inputs.items():  # fills of one value, as scalars
        node = new.graph.node[i]
        scalar = f"{node.output[0]}_nk_scalar_{j}"
        new.graph.initializer.append(onnx.numpy_helper.from_array(value, scalar))
        node.input[j] = scalar
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
    for i, r in [] if soft else graph._recurrents:
        node = new.graph.node[i]
        for a in node.attribute:
            if a.name == "hidden_size":
                a.i = int(arrays[graph._alias.get(r, r)].shape[2])
    if soft:
        _masked_statistics(graph, new, originals, kept)
    del new.graph.value_info[:]
    onnx.checker.check_model(new)
    if output_path is not None:
        onnx.save(new, str(output_path))
    return new
