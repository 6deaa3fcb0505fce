"""Channel dependency graph: coupled channel groups traced from a PyTorch model.

Wang, Rachwan, Günnemann & Charpentier (2024), "Structurally Prune Anything: Any Architecture,
Any Framework, Any Time" (SPA). SPA builds a standardized computational graph, propagates the
channel "masks" of every prunable operator through it and groups the operators whose channels
must be removed together (coupled channels). This module does the same on a ``torch.fx`` trace:

* every producer of channels (Conv/Linear output rows, Embedding columns, parameters read in
  ``forward`` such as class tokens and position embeddings) creates fresh *channel slots*;
* every tensor carries a label ``(axis, slots)`` saying which slot each index along its channel
  axis belongs to; shape-aware rules move labels through elementwise ops, residual adds
  (slot-wise union), concatenation and split (index mapping), flatten / reshape (channel x
  spatial expansion), permute / transpose, pooling, depthwise convolution (output = input
  slots), grouped convolution (local channel ``j`` of every group is one unit), normalization
  layers (BN / LN parameters follow their channel, also through ``F.batch_norm`` /
  ``F.layer_norm`` / ``F.linear`` in a layer subclass's own ``forward``, as timm's), and
  ``nn.MultiheadAttention`` (input and output embedding channels coupled, heads kept whole);
* consumers (Conv/Linear input columns, normalization parameters) attach to the slots they read.
* a product with a 2-D parameter read in ``forward`` (``x @ W.T``, ``x.mm(W)``, ``W @ x``) is
  a linear layer: the parameter's contracted axis consumes, its other axis produces.
* state space layers written out (Mamba): a depthwise ``F.conv1d`` over a parameter with
  ``groups`` read off the input's shape, a parameter read through casts and elementwise ops
  placed by the channels it meets (``A = -exp(A_log)``, ``A[None, :, None, :]``), an outer
  product's first channel axis followed and its later one kept, a ``torch.zeros`` sized by a
  channel count read off a shape, and ``a @ b`` with channels on ``a``'s rows (``b``'s
  columns) and the other side untracked or its contracted channels kept.

A *group* is a set of coupled channels: the slots tied together by one producer or by a
residual union. Removing channel ``j`` of a group removes the matching slice of every member
parameter. Anything the rules cannot map (an unknown op, a channel-mixing reshape, a channel
size written as a constant in ``forward``, the model output) *freezes* the slots it touches, so
the pruner may be conservative but never silently wrong. A channel size that ``forward`` reads
from an integer module attribute, or a tuple attribute's entry, and uses for nothing else
(``view(b, t, self.num_heads, d)``, ``scale.view(self.shape)``) is not a constant:
:func:`~.prune.prune` rewrites the attribute (:attr:`size_attributes`).
Models ``torch.fx`` cannot trace raise :class:`UntraceableModelError` naming the operation.

Hugging Face transformer blocks (traced by :mod:`neuronkit.pruning.tracing`): HF ``Conv1D``
(``[in, out]`` weights) is a linear layer; a reshape that splits the channel axis into
``(heads, head_dim)`` makes each head's ``head_dim`` channels one unit and moves the label to
the head axis (a fused projection split into ``(3, heads, head_dim)``, timm's qkv, makes head
``h`` of q, k and v one unit; ``unbind`` keeps the label), and batched matrix products
(``q @ k^T``, ``attn @ v``) and ``F.scaled_dot_product_attention`` unify the head axes of their
operands, so the q/k/v head slices of a (fused) projection and the output projection's input
columns form one group of whole heads (with grouped-query attention, a key/value head together
with its query heads, through ``repeat_kv``'s expand-and-merge or SDPA's ``enable_gqa``; with
one key/value head broadcast to all, multi-query attention, each query head alone, the key /
value channels kept without freezing the rest of a fused projection);
RMSNorm weights follow their channel like LayerNorm; tied parameters (``lm_head.weight is
wte.weight``) are pruned once and stay tied; ``F.embedding`` inside an ``nn.Embedding``
subclass is the Embedding rule. With ``head_dims=True`` the split instead makes dimension ``j``
of every head one unit and moves the label to the head-dimension axis: ``q @ k^T`` (and SDPA
with an explicit ``scale``) unifies the query and key dimensions, which the product sums away,
``attn @ v`` passes the value dimensions to its output, and the merge back to
``[..., heads * d]`` repeats them once per head.
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings
from collections.abc import Collection, Container, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn.parameter import is_lazy
from torch.nn.utils import parametrize

from neuronkit.common import eval_mode

from .tracing import (
    UntraceableModelError,
    _global_forward_hooks,
    _graph_module,
    _has_forward_hooks,
    _reads_metadata,
    _SizeInt,
    _SizeSum,
    _trace_graph,
    is_hf_conv1d,
    is_last_axis_norm,
    leading_dims,
    split_inputs,
)

__all__ = [
    "DependencyGraph",
    "Group",
    "GroupMember",
    "Positions",
    "UntraceableModelError",
]


def _index_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-D int64 array of non-negative indices (a view when it already is one)."""
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        arr = values
    else:
        try:
            arr = np.asarray(values)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected a 1-D array of integer indices") from exc
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected a 1-D array of integer indices, got {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or (arr.size and int(arr.min()) < 0):
        raise ValueError(f"{name}: expected a 1-D array of non-negative indices")
    return arr


class Positions(Sequence[list[int]]):
    """For each of a group's ``n`` channels, the indices along a member's ``dim`` that hold it.

    A read-only sequence: ``positions[j]`` is channel ``j``'s indices (a list, ascending), and
    ``len(positions) == n``. Stored flat, so that building and reading them costs no Python
    object per channel: ``flat [total]`` (int64) holds the indices channel after channel and
    ``bounds [n + 1]`` the offsets of each channel's run (``None``: one index per channel).
    Equal to any sequence of the same lists.
    """

    __slots__ = ("_bounds", "flat")

    def __init__(self, flat: np.ndarray, bounds: np.ndarray | None = None) -> None:
        self.flat = _index_array("flat", flat)
        self._bounds = None if bounds is None else _index_array("bounds", bounds)
        b = self._bounds
        if b is not None and (
            len(b) == 0 or b[0] != 0 or b[-1] != len(self.flat) or bool((b[1:] < b[:-1]).any())
        ):
            raise ValueError(
                f"bounds: expected non-decreasing offsets from 0 to len(flat) = {len(self.flat)}"
            )

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[int]]) -> Positions:
        """From one sequence of indices per channel."""
        if isinstance(lists, Positions):
            return lists
        lists = [list(map(int, pos)) for pos in lists]
        counts = [len(pos) for pos in lists]
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=sum(counts))
        if all(c == 1 for c in counts):
            return cls(flat)
        bounds = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(counts, out=bounds[1:])
        return cls(flat, bounds)

    @property
    def one_each(self) -> bool:
        """Whether every channel has exactly one index (``flat[j]`` is channel ``j``'s)."""
        return self._bounds is None

    @property
    def counts(self) -> np.ndarray:
        """``[n]``: how many indices hold each channel."""
        if self._bounds is None:
            return np.ones(len(self.flat), dtype=np.int64)
        return np.diff(self._bounds)

    @property
    def owners(self) -> np.ndarray:
        """``[total]``: the channel that each index of ``flat`` holds."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.counts)

    def take(self, channels: np.ndarray) -> np.ndarray:
        """The indices of ``channels`` (``[k]`` int), channel after channel: ``[total]``."""
        if self._bounds is None:
            return self.flat[channels]
        start, stop = self._bounds[channels], self._bounds[np.asarray(channels) + 1]
        counts = stop - start
        offsets = np.repeat(start - np.cumsum(counts) + counts, counts)
        return self.flat[offsets + np.arange(int(counts.sum()))]

    def __len__(self) -> int:
        return len(self.flat) if self._bounds is None else len(self._bounds) - 1

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[j] for j in range(*index.indices(len(self)))]
        j = operator.index(index)
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(f"channel {index} out of range for {len(self)} channels")
        if self._bounds is None:
            return [int(self.flat[j])]
        return self.flat[self._bounds[j] : self._bounds[j + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        if self._bounds is None:
            return ([p] for p in self.flat.tolist())
        flat, bounds = self.flat.tolist(), self._bounds.tolist()
        return (flat[a:b] for a, b in itertools.pairwise(bounds))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(
            a == list(b) for a, b in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which do not hash

    def __repr__(self) -> str:
        return f"Positions({list(self)!r})"


@dataclass
class GroupMember:
    """One parameter slice set of a group.

    Attributes:
        module: qualified module name ("" for the root module).
        param: parameter or buffer name inside ``module``.
        dim: the tensor dimension indexed by channels.
        role: "out" (producer rows), "in" (consumer columns), "norm" (normalization
            parameters and statistics), "embed" (a parameter read in ``forward``) or
            "setting" (a per-channel setting of an elementwise module, e.g. a spiking
            neuron's threshold, or the ``keep`` mask of a soft-pruned model's
            :class:`~.prune.MaskedLayerNorm`; sliced, never scored).
        kind: the module class name ("Conv2d", "Linear", ...; "Parameter" for embeds).
        positions: for each channel of the group, the indices along ``dim`` that hold it
            (one index, or several after a flatten expanded channels over space); a
            :class:`Positions` (a sequence of lists; given as lists, it is converted).
    """

    module: str
    param: str
    dim: int
    role: str
    kind: str
    positions: Positions

    def __post_init__(self) -> None:
        self.positions = Positions.from_lists(self.positions)


@dataclass
class Group:
    """A set of coupled channels that must be removed together.

    Attributes:
        index: position in :attr:`DependencyGraph.groups`.
        size: number of channels ``n``.
        members: every parameter slice of the group (:class:`GroupMember`).
        producers: names of the modules (or parameters) whose output rows create the channels.
        prunable: False when an op the rules cannot map touches the channels.
        reason: why the group is frozen ("" when prunable).
        multiple: the number of removed channels must be a multiple of this (attention heads).
        attention: names of the ``nn.MultiheadAttention`` modules whose embedding is this group.
        segments: with ``gqa="queries"``, the query heads of grouped-query attention: ``[n]``
            the key/value head each channel (query head) reads; every key/value head must
            lose the same number of them (None otherwise).
        bare_norms: norms without parameters over some of these channels (a non-affine
            ``nn.LayerNorm`` or ``nn.GroupNorm``, OLMo's ``F.layer_norm(x,
            self.normalized_shape)``): module name -> ``[C]`` the group channel of each of its
            ``C`` channels; pruning rewrites its sizes, soft pruning takes a layer norm's
            statistics over the kept channels.
    """

    index: int
    size: int
    members: list[GroupMember]
    producers: list[str]
    prunable: bool = True
    reason: str = ""
    multiple: int = 1
    attention: list[str] = field(default_factory=list)
    segments: np.ndarray | None = field(default=None, repr=False, compare=False)
    bare_norms: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    roots: list[int] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        """A readable name: the first producer."""
        return self.producers[0] if self.producers else f"group{self.index}"


@dataclass
class _Label:
    axis: int
    slots: list[int]


@dataclass
class _RawMember:
    module: str
    param: str
    dim: int
    role: str
    kind: str
    slots: list[int]


_ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,  # also ReLU6
    nn.Mish,
    nn.Softplus,
    nn.SELU,
    nn.CELU,
    nn.RReLU,
    nn.Softsign,
    nn.LogSigmoid,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Threshold,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.Identity,
)
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.LPPool1d,
    nn.LPPool2d,
    *([nn.LPPool3d] if hasattr(nn, "LPPool3d") else []),
)
_F = torch.nn.functional
_PAD_MODULES = (
    nn.modules.padding._ConstantPadNd,  # also ZeroPad
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.modules.padding._CircularPadNd,
)
_GLOBAL_HOOKS = (
    "global forward hooks (torch.nn.modules.module.register_module_forward_hook / "
    "register_module_forward_pre_hook) run on every module, unseen by the trace"
)
_ELEMENTWISE_FUNCS: set[Any] = {
    torch.relu,
    _F.relu,
    torch.relu_,  # is _F.relu_
    _F.relu6,
    _F.gelu,
    _F.silu,
    _F.leaky_relu,
    _F.leaky_relu_,
    _F.elu,
    _F.elu_,
    _F.hardswish,
    _F.hardsigmoid,
    _F.hardtanh,
    _F.hardtanh_,
    _F.mish,
    _F.softplus,
    _F.selu,
    _F.celu,
    _F.rrelu,
    _F.softsign,
    _F.logsigmoid,
    _F.tanhshrink,
    _F.softshrink,
    _F.hardshrink,
    _F.threshold,
    _F.dropout,
    _F.dropout1d,
    _F.dropout2d,
    _F.dropout3d,
    _F.alpha_dropout,
    _F.feature_alpha_dropout,
    torch.sigmoid,
    torch.sigmoid_,
    torch.tanh,
    torch.tanh_,
    _F.sigmoid,
    _F.tanh,
    torch.abs,
    torch.abs_,
    torch.neg,
    torch.neg_,
    operator.neg,
    torch.sqrt,
    torch.square,
    torch.exp,
    torch.expm1,
    torch.log1p,
    torch.erf,
    torch.sign,
    torch.nan_to_num,
    # same-shape constants: their channel axis follows the input's
    torch.zeros_like,
    torch.ones_like,
    torch.full_like,
    torch.empty_like,
}
# same-shape functions of optional packages, matched by qualified name (no import needed)
_ELEMENTWISE_QUALNAMES = {
    "torchvision.ops.stochastic_depth.stochastic_depth",  # per-sample drop: channels kept
}
# functions registered with torch.fx.wrap that stay leaves (a rule reads them); the graph traces
# through the others (torchvision's shifted_window_attention), where the model allows
_WRAPPED_LEAVES = frozenset(_ELEMENTWISE_QUALNAMES)
_ELEMENTWISE_METHODS = {
    "relu",
    "sigmoid",
    "tanh",
    "contiguous",
    "clone",
    "float",
    "double",
    "half",
    "to",
    "type_as",
    "type",
    "abs",
    "neg",
    "sqrt",
    "square",
    "exp",
    "expm1",
    "log1p",
    "erf",
    "sign",
    "nan_to_num",
    "detach",
    "zero_",  # in place, channels where they were (Swin-V2 zeroes its keys' bias)
    "fill_",
}
# elementwise over several operands (numbers, or tensors that broadcast), by name (function
# and method): their operands' names, in order
_MULTI_OPERAND = {
    "clamp": ("input", "min", "max"),
    "clip": ("input", "min", "max"),
    "clamp_min": ("input", "min"),
    "clamp_max": ("input", "max"),
    "addcmul": ("input", "tensor1", "tensor2"),
    "addcdiv": ("input", "tensor1", "tensor2"),  # divides by tensor2
    "lerp": ("input", "end", "weight"),
}
_MULTI_OPERAND_FUNCS: set[Any] = {getattr(torch, name) for name in _MULTI_OPERAND}
# ops along given axes (function and method): (position, keyword) of their axes, the default
# axis (None: none, roll then acts on the flattened tensor) and whether they return (values,
# indices); each channel stays on its own unless they act along the channel axis
_ALONG_AXES_METHODS: dict[str, tuple[int, str, int | None, bool]] = {
    "roll": (2, "dims", None, False),
    "flip": (1, "dims", None, False),
    "cumsum": (1, "dim", None, False),
    "cumprod": (1, "dim", None, False),
    "logcumsumexp": (1, "dim", None, False),
    "cummax": (1, "dim", None, True),
    "cummin": (1, "dim", None, True),
    "sort": (1, "dim", -1, True),
    "argsort": (1, "dim", -1, False),
    "topk": (2, "dim", -1, True),  # (input, k, dim): k entries along the axis
    "normalize": (2, "dim", 1, False),  # F.normalize(input, p, dim): divides by a norm
}
_ALONG_AXES: dict[Any, str] = {
    getattr(torch, name): name for name in _ALONG_AXES_METHODS if hasattr(torch, name)
}
_ALONG_AXES[_F.normalize] = "normalize"
# reductions (function and method): positions of their axes and of keepdim (keywords "dim",
# "keepdim"); without axes they reduce over everything, channels too
_REDUCTIONS = {
    **dict.fromkeys(("mean", "sum", "nansum", "nanmean", "prod", "logsumexp"), (1, 2)),
    **dict.fromkeys(("amax", "amin", "argmax", "argmin"), (1, 2)),
    **dict.fromkeys(("std", "var"), (1, 3)),  # (input, dim, unbiased, keepdim)
    "norm": (2, 3),  # (input, p, dim, keepdim)
}
# reductions to (values, indices) when given an axis: positions of the axis and of keepdim, and
# the default axis (None: reduce over everything, one tensor); max / min of two tensors are
# elementwise
_PAIR_REDUCTIONS: dict[str, tuple[int, int, int | None]] = {
    **dict.fromkeys(("max", "min", "median", "nanmedian"), (1, 2, None)),
    "mode": (1, 2, -1),
    "kthvalue": (2, 3, -1),  # (input, k, dim, keepdim)
}
_CONV_FUNCS = {_F.conv1d, _F.conv2d, _F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d}
# constants of one value whose size may be a module attribute (a zero initial state)
_FILLED_FUNCS = {torch.zeros, torch.ones, torch.empty, torch.full}
_FILLED_METHODS = frozenset(("new_zeros", "new_ones", "new_empty", "new_full"))
_BY_FUNCTION = {getattr(torch, name): name for name in (*_REDUCTIONS, *_PAIR_REDUCTIONS)}
_BY_FUNCTION[torch.linalg.vector_norm] = "norm"  # (input, ord, dim, keepdim)
_BINARY_FUNCS: set[Any] = {
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.pow,
    operator.ipow,
    torch.pow,
    torch.add,
    torch.sub,
    torch.mul,
    torch.div,
    torch.subtract,  # the aliases (ConvBERT calls torch.multiply)
    torch.multiply,
    torch.divide,
    torch.true_divide,
    torch.maximum,
    torch.minimum,
    # comparisons: a mask keeps each channel where it was
    operator.gt,
    operator.ge,
    operator.lt,
    operator.le,
    operator.eq,
    operator.ne,
    torch.gt,
    torch.ge,
    torch.lt,
    torch.le,
    torch.eq,
    torch.ne,
    torch.masked_fill,  # masked_fill(x, mask, value): the mask broadcasts like an operand
}
_BINARY_METHODS = {
    "add", "sub", "mul", "div", "pow", "masked_fill", "gt", "ge", "lt", "le", "eq", "ne",
    "subtract", "multiply", "divide", "true_divide",
}  # fmt: skip
_DIVISION_METHODS = {"div", "divide", "true_divide"}
# the in-place method of each of these (``relu_``, ``add_``) is read as the method itself: the
# result is its input tensor, whose channels stay where they were
_INPLACE_METHODS = {
    f"{name}_": name for name in _ELEMENTWISE_METHODS | _BINARY_METHODS | _MULTI_OPERAND.keys()
}
# division functions (the methods by name, _DIVISION_METHODS): a parameter read as the divisor
# is set to 1, not 0, on removed channels by the soft-pruning oracle (0 / 0 would be NaN)
_DIVISIONS: set[Any] = {
    operator.truediv, operator.itruediv, torch.div, torch.divide, torch.true_divide
}  # fmt: skip
# unary ops followed back from a divisor to the parameter it reads (``x / gamma.abs()``): each
# maps 0 to 0 (a zeroed divisor would give 0 / 0) and 1 to a nonzero value (the oracle's 1)
_DIVISOR_UNARY_METHODS = {"abs", "neg", "sqrt", "square", "relu"}
_DIVISOR_UNARY_FUNCS: set[Any] = {
    torch.abs,
    torch.neg,
    operator.neg,
    torch.sqrt,
    torch.square,
    torch.relu,
    _F.relu,
}
_POWERS: set[Any] = {operator.pow, torch.pow, "pow"}
_POOL_FUNCS: set[Any] = {
    _F.adaptive_avg_pool1d,
    _F.adaptive_avg_pool2d,
    _F.adaptive_avg_pool3d,
    _F.max_pool1d,
    _F.max_pool2d,
    _F.max_pool3d,
    _F.avg_pool1d,
    _F.avg_pool2d,
    _F.avg_pool3d,
    _F.adaptive_max_pool1d,
    _F.adaptive_max_pool2d,
    _F.adaptive_max_pool3d,
    _F.lp_pool1d,
    _F.lp_pool2d,
    *([_F.lp_pool3d] if hasattr(_F, "lp_pool3d") else []),
}


def _check_not_wrapped(model: nn.Module) -> None:
    """Refuse wrappers whose ``forward`` is not the model's Python code, naming what to pass."""
    kind = type(model).__name__
    if kind == "OptimizedModule":
        raise TypeError(
            "model: a torch.compile'd module; pass the module it compiles (model._orig_mod) "
            "and compile the pruned model"
        )
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        raise TypeError(f"model: a {kind} wrapper; pass the module it wraps (model.module)")
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"model: a TorchScript module ({kind}); its Python code cannot be traced: pass the "
            "nn.Module it was scripted or traced from (or export to ONNX for prune_onnx)"
        )


def _check_parametrizations(name: str, mod: nn.Module) -> None:
    """Freeze a module whose tensors have parametrizations other than ``weight_norm`` (which
    ``prune`` re-derives from the sliced weight: the same function). ``spectral_norm``
    divides by the largest singular value, which removing rows or columns changes."""
    chains: Any = mod.parametrizations
    for tensor, chain in chains.items():
        other = [type(p).__name__ for p in chain if type(p).__name__ != "_WeightNorm"]
        if other:
            raise _Freeze(
                f"{name}: {tensor} is parametrized by {', '.join(other)}, which pruning would "
                "change (only weight_norm is supported; remove the parametrization first)"
            )


def _pooled_axes(name: str) -> int:
    """How many trailing axes a pooling op named ``name`` pools (``MaxPool3d``: 3)."""
    return int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else 2


def _shape(node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, fx.Node):
        return None
    shape = node.meta.get("nk_shape")
    return shape if isinstance(shape, tuple) else None


class _UnionFind:
    """Union-find over channel slots ``0..n-1``. :meth:`unite` merges whole slot lists (a
    layer's channels) in one loop with path halving, no call per channel. Every parent points
    to a smaller slot, so a component's root is its smallest slot."""

    def __init__(self, n: int = 0) -> None:
        self.parent: list[int] = list(range(n))

    def new(self, n: int) -> list[int]:
        """``n`` fresh slots, each its own component."""
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return list(range(start, start + n))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def roots(self, slots: Sequence[int]) -> np.ndarray:
        """``[len(slots)]`` the root of every slot in ``slots``."""
        return np.fromiter(map(self.find, slots), dtype=np.int64, count=len(slots))

    def unite(self, a: Sequence[int], b: Sequence[int]) -> None:
        """Merge the components of ``a[i]`` and ``b[i]`` for every ``i``."""
        p = self.parent
        for x, y in zip(a, b, strict=True):
            while p[x] != x:
                p[x] = p[p[x]]
                x = p[x]
            while p[y] != y:
                p[y] = p[p[y]]
                y = p[y]
            if x < y:
                p[y] = x
            elif y < x:
                p[x] = y


def _couple_blocks(uf: _UnionFind, slots: list[int], blocks: int) -> None:
    """Unite slot ``j`` of each of ``blocks`` equal consecutive blocks of ``slots`` (the
    channel groups of a grouped convolution, which must all keep the same local channels)."""
    d = len(slots) // blocks
    uf.unite(slots[:d] * (blocks - 1), slots[d:])


def _unite_blocks(uf: _UnionFind, blocks: list[list[int]]) -> list[int]:
    """Unite the slots within each block (one unit per block: a pixel shuffle's channels of
    one output channel, a GroupNorm's group); the blocks' first slots."""
    uf.unite([b[0] for b in blocks for _ in b[1:]], [s for b in blocks for s in b[1:]])
    return [b[0] for b in blocks]


def _roots(uf: _UnionFind) -> np.ndarray:
    """The root of every slot, all at once (pointer jumping in numpy)."""
    p = np.asarray(uf.parent, dtype=np.int64)
    while True:
        q = p[p]
        if np.array_equal(q, p):
            return p
        p = q


def _state_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter of ``model`` by qualified name (each name of a shared one;
    parametrized tensors by their originals, nothing computed; not the uninitialized ones of
    lazy modules, which have none). Buffers are left out: a pruned group always changes a
    parameter, while a buffer may legitimately change shape (a cache regrown for a longer
    input)."""
    shapes: dict[str, tuple[int, ...]] = {}
    # named_parameters(remove_duplicate=False)'s walk and order, without a generator per module
    # (this runs before every scoring and pruning call)
    stack = [("", model)]
    while stack:
        prefix, module = stack.pop()
        for key, t in module._parameters.items():
            if t is not None and not is_lazy(t):
                shapes[prefix + key] = tuple(t.shape)
        children = [(f"{prefix}{n}.", c) for n, c in module._modules.items() if c is not None]
        stack.extend(reversed(children))
    return shapes


def _split_target(target: str) -> tuple[str, str]:
    module, _, name = target.rpartition(".")
    return module, name


class DependencyGraph:
    """The channel dependency graph of a model (SPA's coupled-channel grouping).

    Args:
        model: the ``nn.Module`` to analyse; it is traced with ``torch.fx`` (Hugging Face
            models with the concrete tracer of :mod:`neuronkit.pruning.tracing`, e.g.
            ``input_ids: [B, T]``) and never modified.
        example_inputs: a tensor or a tuple of positional inputs the model accepts (e.g.
            ``x: [B, C, H, W]``), or a dict of keyword inputs (``model(**example_inputs)``,
            e.g. a tokenizer's output, or ``input_ids`` and ``decoder_input_ids`` of an
            encoder-decoder); used for shapes only. Prefer a batch of at least 2.
        head_dims: in attention written with tensor ops (Hugging Face, timm), remove
            dimensions within the heads (the same dimensions of every head; the head count
            stays) instead of whole heads. Query / key dimensions are kept whole where the
            attention scale follows the head size (``F.scaled_dot_product_attention`` without
            ``scale``) or a rotary embedding rotates them; ``nn.MultiheadAttention`` keeps
            whole heads.
        gqa: how grouped-query attention (a key/value head shared by several query heads,
            Hugging Face's ``repeat_kv`` or SDPA's ``enable_gqa``) is pruned: ``"groups"``
            removes whole key/value heads with their query heads; ``"queries"`` keeps every
            key/value head (and the key/value cache's size) and removes the same number of
            query heads from each group (:attr:`Group.segments`). Other attention prunes
            whole heads either way (``"queries"`` warns where it finds no grouped-query
            attention).

    Attributes:
        example_inputs: the inputs' values, in order (a tuple).
        input_names: their keywords when they were given as a dict, else None.
        groups: list of :class:`Group`, prunable and frozen.
        module_names: names of every submodule, for validating ignore lists.
        size_attributes: ``(module, attribute) -> (group indices, channel positions)`` of
            every entry of the channel axis that an integer module attribute, or an entry
            ``"name[i]"`` of a tuple attribute, sizes in a reshape (OPT's ``self.num_heads``,
            timm's ``Scale.shape``; -1 where an entry belongs to no group):
            :func:`~.prune.prune` sets the attribute to the number of entries kept.
        quotient_attributes: ``(module, den) -> (num, ratio)``: an attribute that ``forward``
            reads only as ``num // den`` (Falcon-40B's ``num_heads // num_kv_heads``), which
            :func:`~.prune.prune` sets to the kept ``num`` over ``ratio``.
        width_ties: sets of groups whose kept widths must stay equal, each ``{group index:
            width}`` (a group's kept width: kept channels times ``width``): a reshape sizes
            one group's channels with another group's count, as EVA's ``x.transpose(1,
            2).reshape(B, N, C)`` sizes the attention output (heads of 64 entries: width 64)
            with the residual width ``C`` read from the input (width 1). :func:`~.prune.
            plan_pruning` keeps them equal; a tie with a frozen group freezes the others.
        divisors: ``(module, parameter)`` of the parameters and buffers that ``forward``
            divides channels by (``x / self.gamma``, also through ``abs``, ``neg``, ``sqrt``,
            ``square``, ``relu`` or a positive power): :func:`~.prune.soft_prune` sets their
            removed channels to 1 instead of 0, which would make them 0 / 0.
        gm: the traced ``torch.fx.GraphModule`` (generated on first access).

    The graph describes ``model`` as it was built: :func:`~.prune.prune`,
    :func:`~.prune.soft_prune` and the importance scores raise ``ValueError``, before touching
    anything, once a parameter of ``model`` has another shape or is gone (``model`` pruned in
    place: build a new graph).

    Raises:
        UntraceableModelError: when ``torch.fx`` cannot trace the model (names the op).
        TypeError: when ``model`` is not an ``nn.Module``.
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: Any,
        *,
        head_dims: bool = False,
        gqa: str = "groups",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        _check_not_wrapped(model)
        if not isinstance(head_dims, bool):
            raise TypeError(f"head_dims: expected a bool, got {type(head_dims).__name__}")
        if gqa not in ("groups", "queries"):
            raise ValueError(f"gqa: expected 'groups' or 'queries', got {gqa!r}")
        if head_dims and gqa == "queries":
            raise ValueError(
                "gqa: 'queries' removes whole query heads, head_dims=True dimensions within "
                "every head; pass one of them"
            )
        self.head_dims, self.gqa = head_dims, gqa
        self.example_inputs, self.input_names = split_inputs(example_inputs)
        self.model = model
        self._modules = dict(model.named_modules())
        with torch.no_grad(), eval_mode(model):
            self._root, self._graph, sizes = _trace_graph(
                model, self.example_inputs, names=self.input_names, wrapped_leaves=_WRAPPED_LEAVES
            )
        self._escaped, self._quotients = set(sizes.escaped), dict(sizes.quotients)
        self._gm: fx.GraphModule | None = None
        self.module_names = set(self._modules)
        self._uf = _UnionFind()
        self._frozen: dict[int, str] = {}
        # channels that stay, without holding back the other channels of their group
        self._kept: dict[int, str] = {}
        # (op, size): a channel count read off a shape that the op uses as that count again
        # (a depthwise F.conv1d's groups, the size of a zeros tensor met by those channels)
        self._counted: set[tuple[fx.Node, fx.Node]] = set()
        self._members: list[_RawMember] = []
        self._read_tensors: dict[fx.Node, _RawMember] = {}  # get_attr node -> its member
        self._mha: list[tuple[str, list[int], int]] = []
        # (query head slots, key/value heads): grouped-query attention under gqa="queries"
        self._segments: list[tuple[list[int], int]] = []
        self._served = 0  # key/value operands kept for the query heads they serve
        # (slots, unit): channels of a grouped product, kept in whole units of 16 bytes
        self._aligned: list[tuple[list[int], int]] = []
        self._bare_norms: dict[str, list[int]] = {}  # norms without parameters: their slots
        # reshape sizes on the channel axis read from module attributes: (module, attribute)
        # -> [(slots of that axis, node)]; the rewritable ones end in _size_slots
        self._sized: dict[tuple[str, str], list[tuple[list[int], fx.Node]]] = {}
        # the same for an attribute plus a literal (Falcon-7B's self.num_heads + 2): (module,
        # attribute) -> [(slots, node, literal)], the literal's entries to be kept
        self._offset_sized: dict[tuple[str, str], list[tuple[list[int], fx.Node, int]]] = {}
        self._size_slots: dict[tuple[str, str], list[int]] = {}
        # ``bsz * self.num_heads`` sizing heads merged with the batch (XGLM's, TrOCR's
        # ``(bsz * num_heads, -1, head_dim)``): product -> the reshapes it sizes
        self._scaled: dict[fx.Node, list[fx.Node]] = {}
        self.quotient_attributes: dict[tuple[str, str], tuple[str, int]] = {}
        self.one_kv_head: set[str] = set()  # attention modules, see query_groups
        self._layernorms: set[str] = set()
        self._divisors: set[tuple[str, str]] = set()
        # (slots of the channels counted, slots of the axis sized with that count, the reshape)
        self._count_ties: list[tuple[list[int], list[int], fx.Node]] = []
        # ``C // self.num_heads`` of a rewritable attribute: node -> attribute; and (slots of
        # the channels counted, attribute, node), constant while they keep tied widths
        self._ratio_nodes: dict[fx.Node, tuple[str, str]] = {}
        self._count_ratios: list[tuple[list[int], tuple[str, str], fx.Node]] = []
        self._build()
        self.layernorms = frozenset(self._layernorms)
        self.divisors = frozenset(self._divisors)
        self.groups = self._make_groups()
        self._shapes = _state_shapes(model)
        if gqa == "queries" and not self._served:
            warnings.warn(
                f"gqa='queries': no grouped-query or multi-query attention in "
                f"{type(model).__name__} (a key/value head read by several query heads "
                "through repeat_kv or SDPA's enable_gqa); its attention heads prune whole",
                stacklevel=2,
            )

    def _check_unchanged(self) -> None:
        """Raise ``ValueError`` unless every parameter of ``self.model`` the graph was built on
        is still there with the same shape: the groups' positions index those shapes, so
        after the model was pruned in place they would slice the wrong channels."""
        now = _state_shapes(self.model)
        for name, then in self._shapes.items():
            shape = now.get(name)
            if shape != then:
                now_is = "is gone" if shape is None else f"has shape {shape}"
                raise ValueError(
                    f"graph: graph.model changed since this DependencyGraph was built (pruned "
                    f"in place?): {name} {now_is}, the graph was built on shape {then}; "
                    "build a new DependencyGraph on the model as it is now"
                )

    @property
    def gm(self) -> fx.GraphModule:
        """The traced ``torch.fx.GraphModule`` (generated on first access; the analysis itself
        reads only the graph)."""
        if self._gm is None:
            self._gm = _graph_module(self._root, self._graph, type(self.model).__name__)
        return self._gm

    # ------------------------------------------------------------------ tracing rules
    def _freeze(self, label: Any, reason: str) -> None:
        if isinstance(label, _Label):
            for s in label.slots:
                self._frozen.setdefault(s, reason)
        elif isinstance(label, (list, tuple)):
            for item in label:
                self._freeze(item, reason)

    def _keep(self, label: _Label, reason: str) -> None:
        """Keep ``label``'s channels, but not the rest of their group (which :meth:`_freeze`
        holds back whole): a group all of whose channels are kept is frozen for ``reason``."""
        for s in label.slots:
            self._kept.setdefault(s, reason)

    def _freeze_args(self, labels: dict[fx.Node, Any], node: fx.Node, reason: str) -> None:
        def visit(a: Any) -> Any:
            if isinstance(a, fx.Node):
                self._freeze(labels.get(a), reason)
            return a

        fx.node.map_aggregate(node.args, visit)
        fx.node.map_aggregate(node.kwargs, visit)

    def _fresh(self, n: int, axis: int) -> _Label:
        return _Label(axis, self._uf.new(n))

    def _member(
        self, module: str, param: str, dim: int, role: str, kind: str, slots: list[int]
    ) -> None:
        self._members.append(_RawMember(module, param, dim, role, kind, list(slots)))

    def _unify(self, a: _Label, b: _Label) -> bool:
        if len(a.slots) != len(b.slots):
            return False
        if a.slots != b.slots:
            self._uf.unite(a.slots, b.slots)
        return True

    def _build(self) -> None:
        labels: dict[fx.Node, Any] = {}
        for node in self._graph.nodes:
            try:
                labels[node] = self._rule(node, labels)
                if labels[node] is _CONTRACTED:  # its channels were summed over, legitimately
                    labels[node] = None
                    continue
                unused_item = node.target is operator.getitem and not node.users
                if (
                    labels[node] is None
                    and not _reads_shape_only(node)
                    and not unused_item
                    and not _used_for_shape_only(node)
                ):
                    # a rule that lost track of channels it was given (an input passed by a
                    # keyword it does not read): freeze them rather than let them vanish; an
                    # unused item of a tuple (``out, _ = attention(...)``) or a value whose
                    # shape alone is read carries nothing
                    self._freeze_args(labels, node, f"{_describe(node)}: untracked output")
            except _Freeze as fz:
                self._freeze_args(labels, node, fz.reason)
                labels[node] = None
        self._tie_shared_tensors()
        self._resolve_size_attributes(labels)
        self._check_channel_counts(labels)

    def _check_channel_counts(self, labels: dict[fx.Node, Any]) -> None:
        """A channel count read in ``forward`` (``B, N, C = x.shape``, ``x.size(1)``) changes
        with the pruning. It follows the pruning only where it sizes those channels again: as
        a view / reshape / expand size (alone, or times other sizes and constants, as
        ``C * H * W``) on an output axis that holds only channels of the same group.
        Where the reshape's channels are another group's, the two groups' kept widths are
        tied (:attr:`width_ties`), as are the channels counted and the heads in ``C //
        self.num_heads`` (see :meth:`_resolve_size_attributes`). A part ``C // g`` (``g`` a
        literal) may size the axis of a reshape into ``g`` parts of those channels, coupled
        position by position (ShuffleNet's ``view(b, 2, c // 2, h, w)``). Anything else (split
        sizes, a factory, a comparison) would compute with the new count where the traced code
        had the old one, so the channels it counts freeze."""
        counts: dict[fx.Node, _Label] = {}  # node -> the channels whose count it holds
        parts: dict[fx.Node, tuple[_Label, int, fx.Node]] = {}  # C // g -> (channels, g, C)
        fixed: set[fx.Node] = set()  # sizes that are no channel count (B, H, an untracked C)
        # size tuple -> (channel axis, rank, label); axis and label None: no count inside
        tuples: dict[fx.Node, tuple[int | None, int, _Label | None]] = {}
        for node in self._graph.nodes:
            if (node.op == "call_method" and node.target == "size") or (
                node.op == "call_function" and node.target is getattr and node.args[1] == "shape"
            ):
                label, shape = labels.get(node.args[0]), _shape(node.args[0])
                if shape is None:
                    continue
                if not isinstance(label, _Label):
                    label = None
                dim = node.args[1] if node.target == "size" and len(node.args) > 1 else None
                dim = node.kwargs.get("dim", dim)
                if dim is None:
                    tuples[node] = (None if label is None else label.axis, len(shape), label)
                elif label is not None and isinstance(dim, int) and dim % len(shape) == label.axis:
                    counts[node] = label
                else:
                    fixed.add(node)
            elif node.op == "call_function" and node.target is operator.getitem:
                held = tuples.get(node.args[0])
                if held is None:
                    continue
                axis, rank, label = held
                index = node.args[1]
                if isinstance(index, slice):
                    kept = range(rank)[index]
                    if label is not None and axis is not None and axis in kept:
                        tuples[node] = (kept.index(axis), len(kept), label)
                    else:
                        tuples[node] = (None, len(kept), None)
                elif isinstance(index, int) and label is not None and index % rank == axis:
                    counts[node] = label
                elif isinstance(index, int):
                    fixed.add(node)
            elif node in self._ratio_nodes:  # a head size while the tie holds (_tie_widths)
                fixed.add(node)
            elif node in self._scaled:  # follows its attribute (_resolve_size_attributes)
                continue
            elif (
                node.op == "call_function"
                and node.target is operator.floordiv
                and node.args[0] in counts
                and type(node.args[1]) is int
                and node.args[1] > 0
            ):  # C // 2: a part of the count (the head size of a literal head count)
                count = node.args[0]
                parts[node] = (counts[count], node.args[1], count)
            elif node.op == "call_function" and node.target is operator.mul:
                factors = [a for a in node.args if isinstance(a, fx.Node)]
                counted = [counts[a] for a in factors if a in counts]
                if len(counted) == 1:  # C * H * W: still this group's count, scaled
                    counts[node] = counted[0]
                elif factors and all(a in fixed for a in factors):  # H * W
                    fixed.add(node)
        self._freeze_output_counts(labels, tuples)
        for node, (label, g, count) in parts.items():
            # it sizes a reshape's axis of 1 / g of those channels, all g parts coupled
            for user, out, at in self._size_uses(node, labels, parts):
                roots = self._uf.roots
                if not (
                    isinstance(out, _Label)
                    and at == [out.axis]
                    and len(out.slots) * g == len(label.slots)
                    and set(roots(label.slots).tolist()) == set(roots(out.slots).tolist())
                ):
                    self._freeze(
                        label,
                        f"{_describe(user)} computes with the channel count "
                        f"{_describe(count)}; it would change with the pruning",
                    )
        for node, label in counts.items():
            for user, out, at in self._size_uses(node, labels, counts):
                if user in parts:
                    continue
                if user in self._ratio_nodes:
                    self._count_ratios.append((list(label.slots), self._ratio_nodes[user], user))
                    continue
                if (user, node) in self._counted:
                    continue
                if not user.users and _filled_sizes(user) is not None:  # a constant left unused
                    continue
                if isinstance(out, _Label) and at == [out.axis]:
                    roots = self._uf.roots
                    if set(roots(label.slots).tolist()) != set(roots(out.slots).tolist()):
                        self._count_ties.append((list(label.slots), list(out.slots), user))
                    continue
                self._freeze(
                    label,
                    f"{_describe(user)} computes with the channel count {_describe(node)}; it "
                    "would change with the pruning",
                )
        for node in fixed:  # as the channels' size: they could not follow the pruning
            for user, out, at in self._size_uses(node, labels, fixed):
                if isinstance(out, _Label) and out.axis in at:
                    self._freeze(
                        out,
                        f"{_describe(user)}: sizes its channels with {_describe(node)}, a size "
                        "that is no count of them (read from another axis or tensor); it would "
                        "not follow the pruning",
                    )

    def _freeze_output_counts(
        self,
        labels: dict[fx.Node, Any],
        tuples: dict[fx.Node, tuple[int | None, int, _Label | None]],
    ) -> None:
        """Freeze the channels whose count reaches the model output through values that carry
        no channels: a whole shape (``return y.shape``, ``{"size": y.size()}``), ``y.numel()``
        or a new tensor of that shape (``torch.zeros(y.shape)``). The output would change
        with the pruning; a single size read (``y.size(1)``) freezes where it is used."""
        held: list[tuple[fx.Node, _Label]] = [
            (node, label)
            for node, (axis, _, label) in tuples.items()
            if axis is not None and label is not None
        ]
        for node in self._graph.nodes:
            if node.op == "call_method" and node.target == "numel":
                label = labels.get(node.args[0])
                if isinstance(label, _Label):
                    held.append((node, label))
        for node, label in held:
            seen, todo = {node}, list(node.users)
            while todo:
                user = todo.pop()
                if user in seen or labels.get(user) is not None:
                    continue  # a value with channels of its own: its rules decide
                if user.target is operator.getitem and user.args[0] in tuples:
                    continue  # an entry or a slice of a shape: checked on its own
                seen.add(user)
                if user.op == "output":
                    self._freeze(
                        label,
                        f"model output: holds the channel count of {_describe(node)}, which "
                        "would change with the pruning",
                    )
                    break
                todo.extend(user.users)

    def _size_uses(
        self, node: fx.Node, labels: dict[fx.Node, Any], sizes: Container[fx.Node]
    ) -> Iterator[tuple[fx.Node, Any, list[int]]]:
        """``(user, its label, positions of node among its view / reshape / expand sizes)``
        for each use of the size ``node``; a product of sizes (in ``sizes``: its own uses are
        visited) and a size tuple holding ``node`` (``(-1,) + shape[1:] + (C,)``) are looked
        through."""
        uses = list(node.users)
        while uses:
            user = uses.pop()
            if user in sizes and user.target is operator.mul:
                continue
            if user.target is operator.add and _in_tuple(user, node):
                uses.extend(user.users)
                continue
            items = _reshape_sizes(user)
            yield user, labels.get(user), [i for i, v in enumerate(items or ()) if v is node]

    def _bind_size(
        self, size: _SizeInt | _SizeSum | None, label: _Label, node: fx.Node, divisor: int = 1
    ) -> _Label:
        """Record that ``node``'s size on ``label``'s axis is the module attribute ``size``
        (whose value is ``divisor`` times ``size``: CSPNet's ``split(self.expand_chs // 2)``
        binds all the channels it splits); a part of an attribute anywhere else freezes. A
        multiple ``m`` of the attribute (GPT-Neo's ``num_heads * head_dim``) binds units of ``m``
        consecutive channels (the heads, each ``head_dim`` wide), each made one unit. An
        attribute plus a literal ``c`` (Falcon-7B's ``self.num_heads + 2``) binds the entries
        that are not kept, where exactly ``c`` are (see :meth:`_resolve_size_attributes`)."""
        if isinstance(size, _SizeSum):
            (term,) = size.terms
            if term.divisor != 1 or term.multiplier != 1:
                raise _Freeze(
                    f"{_describe(node)}: size {size} on the channel axis is a part or multiple "
                    "of a module attribute plus a constant; it would not follow the pruning"
                )
            entry = (list(label.slots), node, size.offset)
            self._offset_sized.setdefault(term.key, []).append(entry)
        elif size is not None:
            if size.divisor != divisor:
                raise _Freeze(
                    f"{_describe(node)}: size {size} on the channel axis is the module "
                    f"attribute {'.'.join(p for p in size.key if p)} divided by "
                    f"{size.divisor}; it would not follow the pruning"
                )
            m = size.multiplier
            units = list(label.slots[::m])
            runs = [s for s in units for _ in range(m)]
            if label.slots != runs:  # Phi-3's qkv[..., : heads * head_dim]: heads of the linear
                self._uf.unite(runs, label.slots)
            self._sized.setdefault(size.key, []).append((units, node))
        return label

    def _bind_merged(self, node: fx.Node, label: _Label) -> _Label:
        """Bind the size the reshape ``node`` asks for on ``label``'s axis, where the channels
        were merged with other axes. A traced size times a module attribute (``bsz *
        self.num_heads``, the heads merged with the batch: ``label`` holds the heads' slots
        once per batch entry) binds the attribute to the heads like a size of its own
        (:meth:`_resolve_size_attributes`), the product following it; any other size as
        :meth:`_bind_size`."""
        sizes = _reshape_sizes(node)
        size = sizes[label.axis] if sizes is not None and len(sizes) > label.axis else None
        attr, slots = _scaled_attribute(size), label.slots
        n = int(attr) if attr is not None else 0
        if not (n and len(slots) % n == 0 and slots == slots[:n] * (len(slots) // n)):
            return self._bind_size(_requested_size(node, label.axis), label, node)
        assert isinstance(size, fx.Node)
        assert attr is not None
        self._sized.setdefault(attr.key, []).append((slots[:n], node))
        self._scaled.setdefault(size, []).append(node)
        return label

    def _scaled_reads(self, size: fx.Node, labels: dict[fx.Node, Any]) -> int:
        """The reads of its attribute that a product ``bsz * self.num_heads`` stands for: one
        per reshape it sizes (:meth:`_bind_merged`), none for a comparison with the size of
        the axis it sizes (``attn_weights.size() != (bsz * self.num_heads, tgt_len,
        src_len)``, which holds after pruning too), one more for any other use."""
        bound = self._scaled.get(size, [])
        for user in size.users:
            if user not in bound and not _compares_own_size(user, size, labels):
                return len(bound) + 1
        return len(bound)

    def _resolve_size_attributes(self, labels: dict[fx.Node, Any]) -> None:
        """An attribute that sizes the channel axis of reshapes (OPT's ``self.num_heads``) and
        is read nowhere else follows the pruning: its reshapes' channels are one set and
        :func:`~.prune.prune` rewrites it to the kept count. So does one that also divides a
        channel count (``C // self.num_heads``: a head size, constant where the channels
        counted keep a width tied to the heads', see :func:`_tie_widths`). Read elsewhere
        (arithmetic, a comparison, another op, a tensor factory), it is a constant and freezes
        them. An attribute plus a literal ``c`` sizes the entries of its axis that are not
        kept, where exactly ``c`` are (Falcon-7B's key and value heads, kept as they serve
        every query head)."""
        kept_roots = set(self._uf.roots(list(self._kept)).tolist()) if self._kept else set()
        for key, entries in self._offset_sized.items():
            for slots, node, c in entries:
                free = [s for s in slots if self._uf.find(s) not in kept_roots]
                if len(slots) - len(free) == c:
                    self._sized.setdefault(key, []).append((free, node))
                    continue
                reason = (
                    f"{_describe(node)}: size {len(slots)} on the channel axis is a module "
                    f"attribute plus {c}, and not exactly {c} of its entries are kept; it "
                    "would not follow the pruning"
                )
                for s in slots:
                    self._frozen.setdefault(s, reason)
        if not self._sized:
            return
        uses: dict[tuple[str, str], int] = {}
        ratios: dict[tuple[str, str], list[fx.Node]] = {}

        def count(a: Any) -> Any:
            for term in a.terms if isinstance(a, _SizeSum) else (a,):
                if isinstance(term, _SizeInt):
                    uses[term.key] = uses.get(term.key, 0) + 1
            return a

        for node in self._graph.nodes:
            a = node.args
            if (
                node.target is operator.floordiv
                and len(a) == 2
                and isinstance(a[0], fx.Node)
                and isinstance(a[1], _SizeInt)
                and a[1].divisor == 1
                and not node.kwargs
            ):
                ratios.setdefault(a[1].key, []).append(node)
                continue
            scaled = _scaled_attribute(node)
            if scaled is not None:  # bsz * self.num_heads: a read per reshape it sizes
                uses[scaled.key] = uses.get(scaled.key, 0) + self._scaled_reads(node, labels)
                continue
            fx.node.map_aggregate((node.args, node.kwargs), count)
        self._check_quotients(uses.keys() | ratios.keys())
        for key, binds in self._sized.items():
            width = len(binds[0][0])
            why = ""
            if key in self._escaped:
                why = "forward also computes with it"
            elif uses.get(key, 0) != len(binds):
                why = "other ops also read it"
            elif any(len(slots) != width for slots, _ in binds):
                why = "it sizes axes of different widths"
            if why:
                for slots, node in binds:
                    reason = (
                        f"{_describe(node)}: size {width} on the channel axis is the module "
                        f"attribute {'.'.join(p for p in key if p)}, and {why}; it would not "
                        "follow the pruning"
                    )
                    for sl in slots:
                        self._frozen.setdefault(sl, reason)
                continue
            first = binds[0][0]
            for slots, _ in binds[1:]:
                self._uf.unite(first, slots)
            self._size_slots[key] = first
            self._ratio_nodes.update((node, key) for node in ratios.get(key, ()))

    def _check_quotients(self, read: Collection[tuple[str, str]]) -> None:
        """A quotient ``num // den`` of two attributes read in ``forward`` (Falcon-40B's
        ``self.num_heads // self.num_kv_heads`` query heads per key/value head) stays as
        traced where ``den`` is read nowhere else (not ``read`` by the graph's ops, not
        escaped) and every reshape that ``num`` sizes holds runs of ``ratio`` entries that
        prune together (a key/value head's query heads): :func:`~.prune.prune` then sets
        ``den`` to the kept ``num`` over ``ratio`` (:attr:`quotient_attributes`). Otherwise
        both are constants of ``forward``."""
        for den, (num, ratio) in self._quotients.items():
            runs = [self._uf.roots(slots) for slots, _ in self._sized.get(num, [])]
            whole = bool(runs) and all(
                len(r) % ratio == 0 and (r.reshape(-1, ratio) == r[::ratio, None]).all()
                for r in runs
            )
            if not whole or den in read or den in self._escaped:
                self._escaped.update((num, den))
            else:
                self.quotient_attributes[den] = (num[1], ratio)

    def _tensor(self, module: str, name: str) -> torch.Tensor | None:
        owner: Any = self._modules.get(module)
        for part in name.split("."):
            owner = getattr(owner, part, None)
        return owner if isinstance(owner, torch.Tensor) else None

    def _tie_shared_tensors(self) -> None:
        """A module called more than once, or a tensor held by several modules (tied weights,
        ``lm_head.weight is wte.weight``), holds one set of channels along each dimension for
        all its uses: the slots of every use are unified (each use adds at most one member per
        tensor dimension). Where some use leaves a dimension unmapped (its input was a graph
        input, or a rule froze it), that dimension's channels are frozen in every use. The
        repeated members of a module called several times (one per call) collapse to one."""
        uses: dict[int, int] = {}
        for node in self._graph.nodes:
            if node.op == "call_module":
                mod = self._modules[str(node.target)]
                held = [*mod.parameters(), *mod.buffers()]
            elif node.op == "get_attr" and not _metadata_only(node):
                held = [self._tensor(*_split_target(str(node.target)))]
            else:
                continue
            for tensor_id in {id(t) for t in held if isinstance(t, torch.Tensor)}:
                uses[tensor_id] = uses.get(tensor_id, 0) + 1
        by_dim: dict[tuple[int, int], list[_RawMember]] = {}
        for m in self._members:
            t = self._tensor(m.module, m.param)
            if t is not None and uses.get(id(t), 0) > 1:
                by_dim.setdefault((id(t), m.dim), []).append(m)
        for (tid, dim), shared in by_dim.items():
            first = shared[0]
            if len(shared) < uses[tid] or any(len(m.slots) != len(first.slots) for m in shared):
                reason = f"{first.module}.{first.param}: shared by several uses, dim {dim} unmapped"
                for m in shared:
                    self._freeze(_Label(dim, m.slots), reason.lstrip("."))
                continue
            for m in shared[1:]:
                self._uf.unite(first.slots, m.slots)
        seen: set[tuple[str, str, int, str]] = set()
        kept = []
        for m in self._members:
            key = (m.module, m.param, m.dim, m.role)
            if key not in seen:
                seen.add(key)
                kept.append(m)
        self._members = kept

    def _rule(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        op = node.op
        if op == "placeholder":
            return None
        if op == "get_attr":
            shape = _shape(node)
            # a scalar (HGNetV2's learnable affine ``scale * x + bias``) scales every channel
            if shape is None or math.prod(shape) == 1 or _metadata_only(node):
                return None
            module, name = _split_target(str(node.target))
            if not self._is_state(module, name):
                # a constant of the trace (Swin's shifted-window mask, made in forward): no
                # channels of its own, as an input; an op that spans channels with it freezes
                return None
            # channels on the last non-singleton axis: a class token [1, 1, D] or a position
            # embedding [1, N, D] on D, a per-channel scale [C, 1, 1] (ConvNeXt) on C
            axis = max((i for i, n in enumerate(shape) if n != 1), default=len(shape) - 1)
            label = self._fresh(shape[axis], axis)
            tensor = self._tensor(module, name)
            if tensor is not None and not (tensor.is_floating_point() or tensor.is_complex()):
                self._freeze(label, f"{node.target}: an integer tensor (indices), not channels")
                return label
            self._member(module, name, axis, "embed", "Parameter", label.slots)
            self._read_tensors.setdefault(node, self._members[-1])
            return label
        if op == "output":
            self._freeze_args(labels, node, "model output")
            return None
        if op == "call_module":
            return self._module_rule(node, labels)
        if op == "call_function":
            return self._function_rule(node, labels, node.target)
        if op == "call_method":
            return self._method_rule(node, labels)
        raise _Freeze(f"unsupported node {op}")

    def _is_state(self, module: str, name: str) -> bool:
        owner = self._modules.get(module)
        return owner is not None and (name in owner._parameters or name in owner._buffers)

    def _in(self, node: fx.Node, labels: dict[fx.Node, Any], i: int = 0) -> Any:
        arg = node.args[i] if len(node.args) > i else None
        if arg is None and i == 0:  # torch.reshape(input=x, shape=...)
            arg = node.kwargs.get("input")
        return labels.get(arg) if isinstance(arg, fx.Node) else None

    def _passthrough(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        label = self._in(node, labels)
        if label is None:
            return None
        src, out = _shape(node.args[0]), _shape(node)
        if src is None or out is None or len(src) != len(out):
            raise _Freeze(f"{_describe(node)} changes the rank")
        if out[label.axis] != src[label.axis]:
            raise _Freeze(f"{_describe(node)} changes the channel axis")
        return label

    def _module_rule(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        name = str(node.target)
        mod = self._modules[name]
        kind = type(mod).__name__
        x = self._in(node, labels)
        out_shape = _shape(node)
        axis = 1 + leading_dims(mod)  # channels of conv / batch-norm layouts [B, C, ...]
        if _has_forward_hooks(mod):  # kept whole by the tracer; a hook may change its channels
            raise _Freeze(f"{name}: forward hooks, which the trace does not see")
        if parametrize.is_parametrized(mod):
            _check_parametrizations(name, mod)
        if hasattr(type(mod), "channel_local"):
            return self._channel_local(node, labels, name, mod)
        if isinstance(mod, _POOL_MODULES):
            return self._pool(node, labels, _pooled_axes(type(mod).__name__))
        if isinstance(mod, (nn.PixelShuffle, nn.PixelUnshuffle)):
            factor: Any = getattr(mod, "upscale_factor", None) or mod.downscale_factor
            return self._pixel_shuffle(
                name, int(factor), isinstance(mod, nn.PixelUnshuffle), x, node
            )
        if isinstance(mod, nn.GLU):
            return self._glu(name, x, mod.dim, node)
        if isinstance(mod, _PAD_MODULES):
            return self._pad(node, labels, mod.padding)
        if isinstance(mod, nn.ChannelShuffle):
            return self._channel_shuffle(x, mod.groups)
        if isinstance(mod, nn.Upsample):  # also UpsamplingNearest2d / UpsamplingBilinear2d
            in_shape = _shape(node.args[0]) if node.args else None
            return self._pool(node, labels, len(in_shape) - 2 if in_shape else 2)
        if isinstance(mod, _ELEMENTWISE_MODULES):
            return self._passthrough(node, labels)
        if isinstance(mod, nn.PReLU) and mod.num_parameters == 1:
            return self._passthrough(node, labels)
        if isinstance(mod, (nn.PReLU, nn.modules.instancenorm._InstanceNorm)):
            return self._per_channel(name, mod, x, axis)
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.modules.conv._ConvTransposeNd)):
            depthwise = mod.groups == mod.in_channels == mod.out_channels and mod.groups > 1
            if depthwise:  # weight [C, 1, ...], also transposed
                if x is None:
                    return None
                if x.axis != axis or len(x.slots) != mod.in_channels:
                    raise _Freeze(f"{name}: input channels not on axis {axis}")
                self._member(name, "weight", 0, "out", kind, x.slots)
                if mod.bias is not None:
                    self._member(name, "bias", 0, "out", kind, x.slots)
                return x
            if mod.groups > 1:
                return self._grouped_conv(name, mod, x, axis)
            transposed = isinstance(mod, nn.modules.conv._ConvTransposeNd)  # weight [in, out]
            return self._dense_conv(name, mod, x, axis, in_dim=0 if transposed else 1)
        if is_hf_conv1d(mod):
            return self._conv1d_rule(node, labels, name, mod)
        if isinstance(mod, nn.Linear):
            if out_shape is None:
                raise _Freeze(f"{name}: unknown shape")
            if x is not None:
                in_shape = _shape(node.args[0])
                if (
                    in_shape is not None
                    and x.axis == len(in_shape) - 1
                    and len(x.slots) == mod.in_features
                ):
                    self._member(name, "weight", 1, "in", kind, x.slots)
                elif in_shape is not None and len(out_shape) == len(in_shape) > x.axis:
                    # along another axis (MLP-Mixer's token mixing, [B, C, N] over N): each
                    # channel on its own, where it was; the weight spans no channels
                    return x
                else:
                    self._freeze(x, f"{name}: input features not on the last axis")
            return self._outputs(name, mod, kind, mod.out_features, len(out_shape) - 1)
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):  # SyncBatchNorm too
            if x is None:
                return None
            if x.axis != axis or len(x.slots) != mod.num_features:
                raise _Freeze(f"{name}: channels not on axis {axis}")
            for p in ("weight", "bias", "running_mean", "running_var"):
                if getattr(mod, p, None) is not None:
                    self._member(name, p, 0, "norm", kind, x.slots)
            return x
        if isinstance(mod, nn.LayerNorm):
            if x is None:
                return None
            in_shape = _shape(node.args[0])
            assert in_shape is not None
            nd = len(mod.normalized_shape)
            if x.axis < len(in_shape) - nd:
                return x  # channels not normalized over
            if nd != 1 or x.axis != len(in_shape) - 1:
                raise _Freeze(f"{name}: LayerNorm over several axes including channels")
            if getattr(mod, "weight", None) is None and getattr(mod, "bias", None) is None:
                self._masked_keep(name, mod, x)
                return self._bare_norm(name, x)  # DiT's adaLN: LayerNorm(affine=False)
            for p in ("weight", "bias"):
                if getattr(mod, p, None) is not None:
                    self._member(name, p, 0, "norm", kind, x.slots)
            self._masked_keep(name, mod, x)
            self._layernorms.add(name)
            return x
        if is_last_axis_norm(mod):
            if x is None:
                return None
            in_shape = _shape(node.args[0])
            weight = getattr(mod, "weight")  # noqa: B009
            if in_shape is not None and x.axis < len(in_shape) - 1:
                return x  # channels not normalized over (Qwen3's q_norm: heads, over head_dim)
            if in_shape is None or len(x.slots) != weight.numel():
                raise _Freeze(f"{name}: normalized channels not on the last axis")
            for p in ("weight", "bias"):
                if mod._parameters.get(p) is not None:
                    self._member(name, p, 0, "norm", kind, x.slots)
            self._layernorms.add(name)
            return x
        if isinstance(mod, nn.GroupNorm):
            if x is None:
                return None
            if x.axis != axis or len(x.slots) != mod.num_channels:
                raise _Freeze(f"{name}: GroupNorm channels not on axis {axis}")
            self._unite_norm_groups(x, mod.num_groups)
            if mod.num_groups == 1:
                self._layernorms.add(name)
                self._masked_keep(name, mod, x)
            if not mod.affine:
                return self._bare_norm(name, x)
            for p in ("weight", "bias"):
                self._member(name, p, 0, "norm", kind, x.slots)
            return x
        if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):  # a bag sums its rows' columns
            assert out_shape is not None
            if mod.max_norm is not None:
                raise _Freeze(f"{name}: max_norm renormalizes rows over the channels")
            out = self._fresh(mod.embedding_dim, len(out_shape) - 1)
            self._member(name, "weight", 1, "out", kind, out.slots)
            return out
        if isinstance(mod, nn.Flatten):
            return self._reshape(node, labels)
        if isinstance(mod, nn.Softmax):
            ndim = len(out_shape or (1,))
            # dim=None: torch's legacy implicit dim (0 for 0-, 1- and 3-d inputs, else 1)
            dim = mod.dim if mod.dim is not None else (0 if ndim in (0, 1, 3) else 1)
            if x is not None and dim % ndim == x.axis:
                raise _Freeze(f"{name}: softmax over channels")
            return x
        if isinstance(mod, nn.RNNBase):
            return self._rnn_rule(node, labels, name, mod)
        if isinstance(mod, nn.RNNCellBase):
            return self._rnn_cell_rule(node, labels, name, mod)
        if isinstance(mod, nn.Unfold):
            return self._unfold(node, labels, mod.kernel_size)
        if isinstance(mod, nn.Bilinear):  # x1 W x2 + b, W [out, in1, in2]: one Linear per side
            assert out_shape is not None
            for i, width in ((0, mod.in1_features), (1, mod.in2_features)):
                side = self._in(node, labels, i)
                if side is None:
                    continue
                if side.axis != len(out_shape) - 1 or len(side.slots) != width:
                    self._freeze(side, f"{name}: input features not on the last axis")
                else:
                    self._member(name, "weight", 1 + i, "in", kind, side.slots)
            return self._outputs(name, mod, kind, mod.out_features, len(out_shape) - 1)
        if isinstance(mod, nn.MultiheadAttention):
            return self._mha_rule(node, labels, name, mod)
        raise _Freeze(f"{name}: unsupported module {kind}")

    def _masked_keep(self, name: str, mod: nn.Module, x: _Label) -> None:
        """A LayerNorm (single-group GroupNorm) that is the ``inner`` layer of a soft-pruning
        oracle's :class:`~.prune.MaskedLayerNorm` (the trace calls it directly): the wrapper's
        ``keep`` mask ``[C]`` (statistics over the kept channels) follows the channels too
        (role ``"setting"``: sliced, never scored)."""
        from .prune import MaskedLayerNorm  # prune imports this module

        parent, _, leaf = name.rpartition(".")
        owner = self._modules.get(parent)
        if leaf == "inner" and isinstance(owner, MaskedLayerNorm) and owner.inner is mod:
            self._member(parent, "keep", 0, "setting", type(owner).__name__, x.slots)

    def _channel_local(
        self, node: fx.Node, labels: dict[fx.Node, Any], name: str, mod: nn.Module
    ) -> Any:
        """A module declaring ``channel_local`` (e.g. a spiking neuron over ``[T, B, C, ...]``):
        each output element depends only on the same input element, so channels pass through,
        unless it declares ``channel_local = False``. A parameter or buffer of more than one
        value is a setting per element (a per-neuron threshold), broadcast against the input:
        one that varies along the channel axis only (``[C]`` on ``[T, B, C]``, ``[C, 1, 1]`` on
        ``[T, B, C, H, W]``) is sliced with the channels (role ``"setting"``, not scored); any
        other keeps the channels."""
        if not mod.channel_local:
            raise _Freeze(f"{name}: {type(mod).__name__} is not channel-local")
        x = self._passthrough(node, labels)
        per_element = [
            (n, t)
            for n, t in itertools.chain(mod.named_parameters(), mod.named_buffers())
            if t.numel() != 1
        ]
        if x is None or not per_element:
            return x
        in_shape = _shape(node.args[0])
        assert in_shape is not None  # _passthrough read it
        from_end = len(in_shape) - x.axis  # the channel axis counted from the last one
        for n, t in per_element:
            dim = t.ndim - from_end
            if dim < 0 or t.shape[dim] != len(x.slots) or t.numel() != len(x.slots):
                raise _Freeze(f"{name}: per-element {n} {list(t.shape)} is not one per channel")
        for n, t in per_element:
            self._member(name, n, t.ndim - from_end, "setting", type(mod).__name__, x.slots)
        return x

    def _grouped_conv(
        self, name: str, mod: nn.modules.conv._ConvNd, x: _Label | None, axis: int
    ) -> _Label:
        """A grouped convolution (``groups = G``, not depthwise): every group must keep the
        same number of input and of output channels, so local channel ``j`` of each of the G
        blocks is one unit (removed from every block at once, as Torch-Pruning does); the
        weight ``[C_out, C_in / G, ...]`` loses local input column ``j``. Transposed, the
        weight is ``[C_in, C_out / G, ...]``: it loses local output column ``j``."""
        kind, g = type(mod).__name__, mod.groups
        in_dim, out_dim = (0, 1) if isinstance(mod, nn.modules.conv._ConvTransposeNd) else (1, 0)
        if x is not None:
            if x.axis != axis or len(x.slots) != mod.in_channels:
                self._freeze(x, f"{name}: input channels not on axis {axis}")
            else:
                _couple_blocks(self._uf, x.slots, g)
                local = x.slots[: len(x.slots) // g] if in_dim == 1 else x.slots
                self._member(name, "weight", in_dim, "in", kind, local)
        out = self._fresh(mod.out_channels, axis)
        _couple_blocks(self._uf, out.slots, g)
        local = out.slots if out_dim == 0 else out.slots[: len(out.slots) // g]
        self._member(name, "weight", out_dim, "out", kind, local)
        if mod.bias is not None:
            self._member(name, "bias", 0, "out", kind, out.slots)
        return out

    def _conv1d_rule(
        self, node: fx.Node, labels: dict[fx.Node, Any], name: str, mod: nn.Module
    ) -> Any:
        """HF ``Conv1D``: ``y = x @ weight + bias`` with ``weight: [in, out]``."""
        out_shape, in_shape = _shape(node), _shape(node.args[0])
        weight = getattr(mod, "weight", None)
        if out_shape is None or not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            raise _Freeze(f"{name}: unknown Conv1D layout")
        n_in, n_out = weight.shape
        x = self._in(node, labels)
        if x is not None:
            if in_shape is not None and x.axis == len(in_shape) - 1 and len(x.slots) == n_in:
                self._member(name, "weight", 0, "in", "Conv1D", x.slots)
            else:
                self._freeze(x, f"{name}: input features not on the last axis")
        out = self._fresh(int(n_out), len(out_shape) - 1)
        self._member(name, "weight", 1, "out", "Conv1D", out.slots)
        if getattr(mod, "bias", None) is not None:
            self._member(name, "bias", 0, "out", "Conv1D", out.slots)
        return out

    def _dense_conv(self, name: str, mod: Any, x: _Label | None, axis: int, in_dim: int) -> _Label:
        """An ungrouped (transposed) convolution: input channels on weight dim ``in_dim``,
        output channels on the other of dims 0 and 1 and on the bias."""
        kind = type(mod).__name__
        if x is not None:
            if x.axis == axis and len(x.slots) == mod.in_channels:
                self._member(name, "weight", in_dim, "in", kind, x.slots)
            else:
                self._freeze(x, f"{name}: input channels not on axis {axis}")
        return self._outputs(name, mod, kind, mod.out_channels, axis, 1 - in_dim)

    def _outputs(
        self, name: str, mod: nn.Module, kind: str, width: int, axis: int, weight_dim: int = 0
    ) -> _Label:
        """``width`` new channels on ``axis`` made by layer ``name``: its weight's slices
        along ``weight_dim`` and its bias."""
        out = self._fresh(width, axis)
        self._member(name, "weight", weight_dim, "out", kind, out.slots)
        if getattr(mod, "bias", None) is not None:
            self._member(name, "bias", 0, "out", kind, out.slots)
        return out

    def _pixel_shuffle(
        self, name: str, factor: int, unshuffle: bool, x: _Label | None, node: fx.Node
    ) -> Any:
        """``PixelShuffle(r)``: output channel ``c`` is input channels ``c r^2 .. c r^2 + r^2 - 1``
        moved to space, so those are one unit; ``PixelUnshuffle(r)``: input channel ``c`` becomes
        output channels ``c r^2 ..``, each of its positions there. Modules and functions."""
        if x is None:
            return None
        in_shape = _shape(node.args[0])
        if in_shape is None or x.axis != len(in_shape) - 3:  # [..., C, H, W]
            raise _Freeze(f"{name}: channels not on axis -3")
        r2 = factor**2
        if unshuffle:
            return _Label(x.axis, [s for s in x.slots for _ in range(r2)])
        blocks = [x.slots[c : c + r2] for c in range(0, len(x.slots), r2)]
        return _Label(x.axis, _unite_blocks(self._uf, blocks))

    def _pad(self, node: fx.Node, labels: dict[fx.Node, Any], pad: Sequence[int]) -> Any:
        """``F.pad`` and the padding layers: ``pad`` = (last axis before, after, next-to-last
        ...); padding other axes than the channels passes them."""
        label = self._in(node, labels)
        if label is not None:
            k = len(_shape(node) or ()) - 1 - label.axis
            if 2 * k < len(pad) and (pad[2 * k], pad[2 * k + 1]) != (0, 0):
                raise _Freeze(f"{_describe(node)} pads the channel axis")
        return self._passthrough(node, labels)

    def _channel_shuffle(self, x: _Label | None, groups: int) -> Any:
        """``ChannelShuffle(g)`` of ``[B, C, ...]``: output channel ``k g + i`` is input channel
        ``i C / g + k``. Shuffled again after pruning, each group must keep the same local
        channels (as a grouped convolution's)."""
        if x is None or x.axis != 1:
            return x
        per = len(x.slots) // groups
        _couple_blocks(self._uf, x.slots, groups)
        return _Label(1, [x.slots[i * per + k] for k in range(per) for i in range(groups)])

    def _glu(self, name: str, x: _Label | None, dim: int, node: fx.Node) -> Any:
        """``GLU(dim)``: ``a * sigmoid(b)`` of the two halves ``a``, ``b`` of axis ``dim``, so
        output channel ``j`` is input channels ``j`` and ``n / 2 + j``: one unit. Modules and
        functions."""
        in_shape = _shape(node.args[0]) if node.args else None
        if x is None or in_shape is None or x.axis != dim % len(in_shape):
            return x
        half = len(x.slots) // 2
        first = _Label(x.axis, x.slots[:half])
        self._unify(first, _Label(x.axis, x.slots[half:]))
        return first

    def _per_channel(self, name: str, mod: nn.Module, x: _Label | None, axis: int) -> Any:
        """A per-channel layer on axis ``axis`` (``PReLU`` with one slope per channel,
        ``InstanceNorm``: statistics per sample and channel): its parameters and running
        statistics follow the channels, and so does ``num_features`` (also without them)."""
        if x is None:
            return None
        count = mod.num_parameters if isinstance(mod, nn.PReLU) else mod.num_features
        if x.axis != axis or len(x.slots) != count:
            raise _Freeze(f"{name}: channels not on axis {axis}")
        for p in ("weight", "bias", "running_mean", "running_var"):
            if isinstance(getattr(mod, p, None), torch.Tensor):
                self._member(name, p, 0, "norm", type(mod).__name__, x.slots)
        if not isinstance(mod, nn.PReLU):
            self._size_slots[(name, "num_features")] = list(x.slots)
        return x

    def _rnn_rule(
        self, node: fx.Node, labels: dict[fx.Node, Any], name: str, mod: nn.RNNBase
    ) -> Any:
        """``nn.RNN`` / ``GRU`` / ``LSTM``: hidden unit ``j`` is one channel in every layer and
        direction (its row in each gate block of ``weight_ih`` / ``weight_hh`` and the biases,
        its column of ``weight_hh`` and of the next layer's ``weight_ih``; Torch-Pruning also
        prunes a unit in both directions at once); the input features are the first layer's
        ``weight_ih`` columns. Outputs: the sequence ``[..., D * H]`` (unit ``j`` at ``j`` and
        ``H + j``) and the final states ``[L * D, (B,) H]``. An initial state given (``hx``;
        ``(h0, c0)`` for an LSTM) holds the units on its last axis: made in ``forward`` by a
        factory sized by a module attribute (``torch.zeros(L, B, self.hidden)``, see
        :meth:`_filled`) they follow the pruning; a state from elsewhere (an input) freezes
        them."""
        x = self._in(node, labels)
        in_shape = _shape(node.args[0]) if node.args else None
        given = _named_args(node, ("input", "hx"))
        if mod.proj_size or in_shape is None or set(given) - {"input", "hx"}:
            raise _Freeze(f"{name}: projections or a packed sequence")
        axis = len(in_shape) - 1  # features last: [T, F], [T, B, F] or [B, T, F]
        kind = type(mod).__name__
        directions = ["", "_reverse"] if mod.bidirectional else [""]
        if x is not None:
            if x.axis != axis or len(x.slots) != mod.input_size:
                self._freeze(x, f"{name}: input features not on the last axis")
            else:
                for sfx in directions:
                    self._member(name, f"weight_ih_l0{sfx}", 1, "in", kind, x.slots)
        units = self._uf.new(mod.hidden_size)
        gates = units * (4 if isinstance(mod, nn.LSTM) else 3 if isinstance(mod, nn.GRU) else 1)
        for layer in range(mod.num_layers):
            for sfx in directions:
                for p in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if mod.bias else ()):
                    self._member(name, f"{p}_l{layer}{sfx}", 0, "out", kind, gates)
                self._member(name, f"weight_hh_l{layer}{sfx}", 1, "in", kind, units)
                if layer:
                    below = units * len(directions)
                    self._member(name, f"weight_ih_l{layer}{sfx}", 1, "in", kind, below)
        self._tie_states(name, given.get("hx"), labels, _Label(axis, units))
        state = _Label(axis, list(units))
        final = [state, state] if isinstance(mod, nn.LSTM) else state
        return [_Label(axis, units * len(directions)), final]

    def _tie_states(self, name: str, hx: Any, labels: dict[fx.Node, Any], units: _Label) -> None:
        """The states given to recurrent layer ``name`` as ``hx`` (none, a tensor, a tuple of
        them, or one node holding a tuple: an LSTM's ``(h, c)`` passed on whole) hold its
        ``units``. A state has its input's number of axes (``[B, H]`` for ``[B, F]``,
        ``[L * D, B, H]`` for ``[T, B, F]``), so they lie on the input's last axis,
        ``units.axis``; a state whose units are untracked freezes them."""
        for h in hx if isinstance(hx, (tuple, list)) else () if hx is None else (hx,):
            lab = labels.get(h) if isinstance(h, fx.Node) else None
            for state in lab if isinstance(lab, list) else [lab]:
                if not (
                    isinstance(state, _Label)
                    and state.axis == units.axis
                    and self._unify(state, units)
                ):
                    self._freeze(
                        [state, units],
                        f"{name}: an initial state whose hidden units are untracked (an "
                        "input, or a constant of forward)",
                    )

    def _rnn_cell_rule(
        self, node: fx.Node, labels: dict[fx.Node, Any], name: str, mod: nn.RNNCellBase
    ) -> Any:
        """``nn.RNNCell`` / ``GRUCell`` / ``LSTMCell`` (one step, ``x [(B,) F]`` ->
        ``h [(B,) H]``, an LSTM's ``(h, c)``): hidden unit ``j`` is its row in each gate block
        of ``weight_ih`` / ``weight_hh`` and the biases and its column of ``weight_hh``, as
        in :meth:`_rnn_rule`; the input features are ``weight_ih``'s columns. The state
        given (``hx``, ``(h, c)``) holds the units; untracked (an input), it freezes them.
        Called step after step, the cell is one module: its units are one set."""
        x = self._in(node, labels)
        given = _named_args(node, ("input", "hx"))
        in_shape = _shape(node.args[0]) if node.args else None
        if in_shape is None:
            raise _Freeze(f"{name}: input of unknown shape")
        axis = len(in_shape) - 1
        kind = type(mod).__name__
        if x is not None:
            if x.axis != axis or len(x.slots) != mod.input_size:
                self._freeze(x, f"{name}: input features not on the last axis")
            else:
                self._member(name, "weight_ih", 1, "in", kind, x.slots)
        units = self._uf.new(mod.hidden_size)
        gates = units * (mod.weight_ih.shape[0] // mod.hidden_size)
        for p in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if mod.bias else ()):
            self._member(name, p, 0, "out", kind, gates)
        self._member(name, "weight_hh", 1, "in", kind, units)
        self._tie_states(name, given.get("hx"), labels, _Label(axis, units))
        state = _Label(axis, list(units))
        return [state, _Label(axis, list(units))] if isinstance(mod, nn.LSTMCell) else state

    def _unfold(self, node: fx.Node, labels: dict[fx.Node, Any], kernel_size: Any) -> Any:
        """``nn.Unfold`` / ``F.unfold`` (T2T-ViT's soft split): ``[B, C, H, W]`` ->
        ``[B, C * k * k, L]``, channel-major: channel ``c`` is the run of ``k * k`` entries
        from ``c * k * k`` on axis 1 (a layer reading them keeps or drops the whole run)."""
        x = self._in(node, labels)
        src = _shape(node.args[0]) if node.args else None
        if x is None or src is None:
            return None
        if x.axis != len(src) - 3:
            raise _Freeze(f"{_describe(node)}: unfolds an axis other than the channels")
        sizes = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,) * 2
        if not all(isinstance(k, int) for k in sizes):
            raise _Freeze(f"{_describe(node)}: a kernel size it cannot read")
        window = math.prod(sizes)
        return _Label(x.axis, [s for s in x.slots for _ in range(window)])

    def _mha_rule(
        self, node: fx.Node, labels: dict[fx.Node, Any], name: str, mod: nn.MultiheadAttention
    ) -> Any:
        # query, key, value: positional or keyword (an input given by keyword is an input too)
        def operand(i: int, key: str) -> Any:
            if len(node.args) > i:
                return self._in(node, labels, i)
            given = node.kwargs.get(key)
            return labels.get(given) if isinstance(given, fx.Node) else None

        q, k, v = (operand(i, key) for i, key in enumerate(("query", "key", "value")))
        if q is None:
            self._freeze([k, v], f"{name}: attention query channels are fixed")
            return [None, None]
        if (
            not mod._qkv_same_embed_dim
            or mod.bias_k is not None
            or k is None
            or v is None
            or not self._unify(q, k)
            or not self._unify(q, v)
        ):
            self._freeze([q, k, v], f"{name}: attention with separate key/value dims")
            return [None, None]
        kind = type(mod).__name__
        self._member(name, "in_proj_weight", 1, "in", kind, q.slots)
        self._member(name, "out_proj.weight", 0, "out", "Linear", q.slots)
        if mod.out_proj.bias is not None:
            self._member(name, "out_proj.bias", 0, "out", "Linear", q.slots)
        self._mha.append((name, list(q.slots), mod.num_heads))
        return [_Label(q.axis, list(q.slots)), None]

    def _note_divisor(self, divisor: Any) -> None:
        """Record that the parameter (or buffer) read by ``divisor``, directly or through
        zero-keeping unary ops (``gamma.abs()``, ``gamma ** 2``), divides channels: the
        soft-pruning oracle sets its removed channels to 1, so that they stay 0 (not 0 / 0)."""
        while isinstance(divisor, fx.Node) and divisor not in self._read_tensors:
            target = divisor.target
            if divisor.op == "call_method" and target in _DIVISOR_UNARY_METHODS:
                divisor = divisor.args[0]
            elif divisor.op == "call_function" and target in _DIVISOR_UNARY_FUNCS:
                divisor = divisor.args[0] if divisor.args else divisor.kwargs.get("input")
            elif (
                divisor.op in ("call_method", "call_function")
                and target in _POWERS
                and len(divisor.args) == 2
                and isinstance(divisor.args[1], (int, float))
                and divisor.args[1] > 0
            ):
                divisor = divisor.args[0]
            else:
                break
        member = self._read_tensors.get(divisor) if isinstance(divisor, fx.Node) else None
        if member is not None:
            self._divisors.add((member.module, member.param))

    def _binary(self, node: fx.Node, labels: dict[fx.Node, Any], operands: Sequence[Any]) -> Any:
        out = _shape(node)
        if out is None:
            return None
        nd = len(out)
        labelled: list[tuple[_Label, int, fx.Node]] = []
        for a in operands:
            if isinstance(a, fx.Node) and isinstance(labels.get(a), _Label):
                s = _shape(a)
                assert s is not None
                lab = labels[a]
                axis = lab.axis + nd - len(s)
                if len(lab.slots) == 1 and out[axis] > 1:  # Qwen2-MoE's sigmoid(gate(x)) * y
                    self._freeze(lab, f"{_describe(node)} broadcasts a single channel")
                    continue
                labelled.append((lab, axis, a))
        if not labelled:
            return None
        # the channels of a computed operand place those of a parameter read here (a position
        # embedding [1, C, H, W] added to [B, C, H, W]: the get_attr rule guessed W; Mamba's
        # A = -exp(A_log.float()) [C, N], read as A[None, :, None, :])
        ref = next((i for i, (_, _, a) in enumerate(labelled) if _parameter_read(a) is None), 0)
        axis, size = labelled[ref][1], len(labelled[ref][0].slots)
        for i, (_lab, ax, a) in enumerate(labelled):
            if ax != axis and _parameter_read(a) is not None:
                moved = self._reread(a, axis - nd + len(_shape(a) or ()), size, labels)
                if moved is not None:
                    labelled[i] = (moved, axis, a)
        axes = sorted({ax for _, ax, _ in labelled})
        if len(axes) > 1 and _outer_product([(_shape(a), ax) for _, ax, a in labelled], nd):
            # [B, C, T, 1] * [B, 1, T, N] (Mamba's dt * B): channels on several axes of the
            # output; those of the first are followed, the others kept
            axis = axes[0]
            for lab, ax, _ in labelled:
                if ax != axis:
                    self._keep(lab, f"{_describe(node)}: an outer product's later channel axis")
            labelled = [t for t in labelled if t[1] == axis]
            ref = 0
        result = _Label(axis, list(labelled[ref][0].slots))
        for lab, ax, _ in labelled:
            if ax != axis or not self._unify(result, lab):
                raise _Freeze(f"{_describe(node)} mixes channel axes")
        for a in operands:
            if isinstance(a, fx.Node) and not isinstance(labels.get(a), _Label):
                s = _shape(a)
                if s is None:
                    continue
                idx = axis - (nd - len(s))
                if idx >= 0 and s[idx] != 1:
                    sizes = _filled_sizes(a)
                    at = sizes[idx] if sizes is not None and idx < len(sizes) else None
                    counted = self._channel_count(a, at, labels)
                    if counted is None or not self._unify(result, counted):
                        raise _Freeze(
                            f"{_describe(node)} combines channels with an untracked tensor"
                        )
        return result

    def _channel_count(self, user: fx.Node, size: Any, labels: dict[fx.Node, Any]) -> Any:
        """The channels whose count the traced size ``size`` reads (``t.shape[k]``, ``t.size(k)``,
        ``_, c, _ = t.shape`` with ``t``'s channels on axis ``k``), for ``user`` to count them
        with; None for any other size."""
        t: Any = None
        k: Any = None
        if isinstance(size, fx.Node) and size.target == "size" and len(size.args) == 2:
            t, k = size.args  # t.size(k)
        elif isinstance(size, fx.Node) and size.target is operator.getitem:
            src: Any = size.args[0]  # t.shape[k], t.size()[k]
            k = size.args[1]
            shaped = isinstance(src, fx.Node) and (
                (src.target is getattr and src.args[1] == "shape")
                or (src.target == "size" and len(src.args) == 1)
            )
            t = src.args[0] if shaped else None
        if not isinstance(t, fx.Node) or type(k) is not int:
            return None
        label, shape = labels.get(t), _shape(t)
        if not isinstance(label, _Label) or shape is None or k % len(shape) != label.axis:
            return None
        self._counted.add((user, size))
        return label

    def _index_add(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``x.index_add(dim, index, source)`` (also in place; Mixtral's eager experts add
        each expert's rows into the output): the rows of ``source`` added to ``x``'s rows at
        ``index`` along ``dim``, elementwise on the other axes. Adding along the channel axis
        freezes."""
        args = _named_args(node, ("input", "dim", "index", "source"))
        x, source, dim = args.get("input"), args.get("source"), args.get("dim")
        out = _shape(node)
        if out is None or not isinstance(dim, int):
            raise _Freeze(f"{_describe(node)}: unknown shapes")
        for t in (x, source):
            lab = labels.get(t) if isinstance(t, fx.Node) else None
            if isinstance(lab, _Label) and lab.axis == dim % len(out):
                raise _Freeze(f"{_describe(node)} adds along the channel axis")
        return self._binary(node, labels, (x, source))

    def _multi_operand(self, node: fx.Node, labels: dict[fx.Node, Any], name: str) -> Any:
        """An op of :data:`_MULTI_OPERAND` (``clamp(x, min, max)``, ``addcmul(x, t1, t2)``,
        ``lerp(x, end, weight)``...): elementwise over all its operands."""
        a, kw = node.args, node.kwargs
        operands = [a[i] if len(a) > i else kw.get(n) for i, n in enumerate(_MULTI_OPERAND[name])]
        if name == "addcdiv":
            self._note_divisor(operands[2])
        return self._binary(node, labels, operands)

    def _reshape(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        label = self._in(node, labels)
        if label is None:
            return None
        src, out = _shape(node.args[0]), _shape(node)
        if src is None or out is None:
            raise _Freeze(f"{_describe(node)}: unknown shapes")
        try:
            k, rep = _reshape_channel_map(src, out, label.axis)
        except ValueError as err:
            # the channels merged with other axes, whole or split (timm Swin's patch merging
            # [B, H/2, W/2, 2, 2, C] -> [B, H/2, W/2, 4 C], MobileViT's unfolding [B, C, H, W]
            # -> [B C n_h, p_h, n_w, p_w] and folding back, the merge back of head_dims mode)
            strided = _strided_channels(src, out, label.axis, label.slots)
            if strided is not None:
                k, slots = strided
                return self._bind_merged(node, _Label(k, slots))
            heads = _head_split(src, out, label.axis)
            if heads is None:
                # heads merged with another axis as they split off (fairseq-style attention's
                # [T, B, H d] -> [T, B H, d]): each head's d channels one unit
                merged = None if self.head_dims else _merged_heads(src, out, label, self._uf, True)
                if merged is None:
                    raise _Freeze(f"{_describe(node)} {err}") from None
                return self._bind_merged(node, merged)
            k, blocks, d = heads
            if self.head_dims or (_literal_size(node, k) and _merged_back(node)):
                # dimension j of every head (of every fused block) one unit, the label on d;
                # also where a literal number of parts is merged back into channels (the
                # channel shuffle's x.view(b, 2, c // 2, h, w) of ShuffleNet): the parts stay
                self._uf.unite([label.slots[i % d] for i in range(len(label.slots))], label.slots)
                size = _requested_size(node, k + 1)
                return self._bind_size(size, _Label(k + 1, label.slots[:d]), node)
            if blocks > 1 and _literal_size(node, k) and not _literal_size(node, k - 1):
                # [..., C, ...] -> [..., H, G, C/(G H), ...], the heads first (an attribute or
                # -1), each with G fused blocks (Falcon's and Persimmon's view(B, T,
                # self.num_heads, 3, self.head_dim)): the G d channels of a head one unit
                width = len(label.slots) // blocks
                units = [label.slots[i // width * width] for i in range(len(label.slots))]
                self._uf.unite(units, label.slots)
                size = _requested_size(node, k - 1)
                return self._bind_size(size, _Label(k - 1, label.slots[::width]), node)
            # [..., C, ...] -> [..., (G,) H, C/(G H), ...] (attention heads, G fused blocks such
            # as q / k / v): the d channels of a head become one unit, head h of every block
            # the same unit; the label moves to the head axis
            n_heads = len(label.slots) // (blocks * d)
            # slot i joins the first slot of its head (head h of every block: h % n_heads)
            units = [label.slots[(i // d) % n_heads * d] for i in range(len(label.slots))]
            self._uf.unite(units, label.slots)
            size = _requested_size(node, k)
            return self._bind_size(size, _Label(k, label.slots[: n_heads * d : d]), node)
        size = _requested_size(node, k)
        return self._bind_size(size, _Label(k, [s for s in label.slots for _ in range(rep)]), node)

    def _expand(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``x.expand(*sizes)``, ``torch.broadcast_to(x, shape)``: may add leading axes (a
        class token's batch); a size on the channel axis must follow the pruning."""
        label, src, out = self._in(node, labels), _shape(node.args[0]), _shape(node)
        if label is None:
            return None
        if src is None or out is None or len(out) < len(src):
            raise _Freeze(f"{_describe(node)} changes the rank")
        label = _Label(label.axis + len(out) - len(src), list(label.slots))
        return self._bind_size(_requested_size(node, label.axis), label, node)

    def _unflatten(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``x.unflatten(dim, sizes)``: a reshape that splits one axis (``[T*B, C, ...] ->
        [T, B, C, ...]``, or the channel axis into heads: transformers 5.25's Falcon,
        ``qkv.unflatten(-2, (self.num_heads, 3))``), read as the reshape it is."""
        return self._reshape(node, labels)

    def _matmul(
        self, node: fx.Node, labels: dict[fx.Node, Any], operands: Sequence[Any] | None = None
    ) -> Any:
        """``a @ b`` (``operands``, else the node's two arguments). With a 2-D parameter read in
        ``forward`` (or a transposed view of it) on one side, a linear layer
        (:meth:`_weight_product`). Otherwise channels only on batch axes (attention heads):
        batch axes broadcast like an elementwise op; channels on the two matrix axes are
        contracted or mixed."""
        if operands is None:
            operands = node.args if len(node.args) == 2 else (None, None)
        left, right = operands
        for weight_first, m, x in ((False, right, left), (True, left, right)):
            weight = self._parameter_matrix(m)
            if weight is not None and self._parameter_matrix(x) is None:
                p, transposed = weight
                # the contracted axis of the matrix: its rows on the right, its columns on the
                # left; of the parameter: the other one when the matrix is its transpose
                in_axis = int(weight_first) ^ int(transposed)
                src, out = _shape(x) if isinstance(x, fx.Node) else None, _shape(node)
                if not src or not out:
                    raise _Freeze(f"{_describe(node)}: a product of unknown shape")
                # W @ x with x [..., in, n] gives [..., out, n]; x @ W and W @ x[in] the last
                columns = int(weight_first and len(src) > 1)
                axes = (len(src) - 1 - columns, len(out) - 1 - columns)
                return self._weight_product(node, labels, x, p, in_axis, *axes)
        pairs = [(a, labels.get(a) if isinstance(a, fx.Node) else None) for a in (left, right)]
        if self.head_dims and self._on_matrix_axes(pairs):
            return self._matrix_axes(node, pairs)
        pairs = self._shared_key_value(node, pairs)  # q @ k^T, attn @ v of eager attention
        (la, lb), out = (lab for _, lab in pairs), _shape(node)
        na, nb = (len(_shape(t) or ()) if isinstance(t, fx.Node) else 0 for t in (left, right))
        if out is not None and min(na, nb) >= 2:
            # channels on the rows of a (the columns of b), the other side untracked or its
            # channels contracted, and kept (Mamba's state @ C): each output row (column) is
            # its own channel's
            for lab, at, other, contracted in ((la, na - 2, lb, nb - 2), (lb, nb - 1, la, na - 1)):
                if isinstance(lab, _Label) and lab.axis == at:
                    if isinstance(other, _Label) and other.axis != contracted:
                        break
                    if isinstance(other, _Label):
                        reason = "its channels contracted with untracked ones"
                        self._keep(other, f"{_describe(node)}: {reason}")
                    return _Label(len(out) - (2 if lab is la else 1), list(lab.slots))
        return self._batch_axes_only(node, pairs, "matrix product")

    def _addmm(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``torch.addmm(b, x, W.T)``: ``b + x @ W.T`` (scaled by ``beta`` / ``alpha``), the
        product's rule (:meth:`_matmul`, a linear layer when ``W`` is a parameter) and then
        the sum's, so a bias ``b`` follows the product's channels."""
        args = _named_args(node, ("input", "mat1", "mat2"))
        product = self._matmul(node, labels, (args.get("mat1"), args.get("mat2")))
        if product is None or product is _CONTRACTED:
            bias = args.get("input")
            if isinstance(bias, fx.Node) and isinstance(labels.get(bias), _Label):
                raise _Freeze(f"{_describe(node)} adds channels to an untracked product")
            return product
        labels[node] = product  # the product's channels, met by the added term's
        bias = args.get("input")
        try:
            return self._binary(node, labels, [node, bias])
        except _Freeze as fz:  # the sum's channels freeze, the product's input stays tracked
            self._freeze(
                [product, labels.get(bias) if isinstance(bias, fx.Node) else None], fz.reason
            )
            return product

    def _attention(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.scaled_dot_product_attention(q, k, v, attn_mask)`` (the default attention of
        Hugging Face models): heads on a batch axis, as ``softmax(q @ k^T + mask) @ v``; a
        per-head mask (T5's position bias) follows its heads. With ``enable_gqa`` query head
        ``h`` reads key/value head ``h // g`` (``g`` = query heads per key/value head), so a
        key/value head and its ``g`` query heads are one unit, as through ``repeat_kv``.
        Multi-query attention, ``gqa="queries"``: see :meth:`_shared_key_value`."""
        names = ("query", "key", "value", "attn_mask")
        args = _named_args(node, names)
        values = [args.get(n) for n in names]
        operands = [(v, labels.get(v) if isinstance(v, fx.Node) else None) for v in values]
        operands = self._shared_key_value(node, operands)
        q = operands[0][1]
        if node.kwargs.get("enable_gqa") and isinstance(q, _Label):
            for i in (1, 2):
                kv = operands[i][1]
                if isinstance(kv, _Label) and len(q.slots) % len(kv.slots) == 0:
                    g = len(q.slots) // len(kv.slots)
                    ranks = [len(_shape(values[j]) or ()) for j in (0, i)]
                    aligned = q.axis - ranks[0] == kv.axis - ranks[1]  # both on the heads
                    distinct = len(set(kv.slots)) == len(kv.slots)
                    if self.gqa == "queries" and g > 1 and aligned and distinct:
                        self._serve_query_groups(node, q, kv)
                        operands[i] = (operands[i][0], _SERVED)
                        continue
                    repeated = _Label(kv.axis, [s for s in kv.slots for _ in range(g)])
                    operands[i] = (operands[i][0], repeated)
        if self.head_dims and self._on_matrix_axes(operands[:3]):
            return self._attention_dims(node, operands, args.get("scale"))
        return self._batch_axes_only(node, operands, "attention")

    def _shared_key_value(
        self, node: fx.Node, operands: list[tuple[Any, Any]]
    ) -> list[tuple[Any, Any]]:
        """Multi-query attention (Gemma-2B, StarCoder): one key/value head, its channels on
        the matrix axes, serves every query head (its head axis holds one entry, or copies of
        one, as ``repeat_kv`` makes them for eager attention), or its channels are that one
        head (Falcon-7B's, picked out of a fused projection). Its channels are kept, without
        holding back the query heads, which prune one by one: ``operands`` (``(tensor,
        label)`` pairs, heads on a leading axis of the first labelled so) come back with
        :data:`_SERVED` instead of its label. With ``gqa="queries"``, grouped-query
        attention's key/value heads, each repeated for its query heads (``repeat_kv``), are
        served likewise (:meth:`_serve_query_groups`)."""
        first, q = operands[0]  # the queries (the attention weights of attn @ v)
        nq = len(_shape(first) or ()) if isinstance(first, fx.Node) else 0
        if not isinstance(q, _Label) or q.axis >= nq - 2:
            return operands
        out = list(operands)
        reason = "the one key/value head of multi-query attention serves every query head"
        for i, (a, lab) in enumerate(operands[1:], 1):
            shape = _shape(a) if isinstance(a, fx.Node) else None
            if not isinstance(lab, _Label) or shape is None:
                continue
            at = q.axis - nq + len(shape)  # the heads' axis, aligned from the end
            # the one head itself (or copies of it) on the heads' axis, or its channels on the
            # matrix axes with one entry (or copies of one) on the heads' axis
            one_head = lab.axis == at and len(set(lab.slots)) == 1 < len(q.slots)
            copies = lab.axis >= len(shape) - 2 or (one_head and shape[at] > 1)
            if (one_head and shape[at] == 1) or (
                at >= 0 and copies and self._copies_follow_heads(_copies_along(a, at))
            ):
                self._keep(lab, f"{_describe(node)}: {reason}")
                self._served += 1
                out[i] = (a, _SERVED)
            elif self.gqa == "queries" and lab.axis == at and len(lab.slots) == len(q.slots):
                heads = list(dict.fromkeys(lab.slots))
                g = len(lab.slots) // len(heads)
                runs = lab.slots == [s for s in heads for _ in range(g)]
                if g > 1 and runs and self._copies_follow_heads(_copies_along(a, at, True)):
                    self._serve_query_groups(node, q, _Label(lab.axis, heads))
                    out[i] = (a, _SERVED)
        return out

    def _serve_query_groups(self, node: fx.Node, queries: _Label, kv: _Label) -> None:
        """``gqa="queries"``: grouped-query attention's key/value heads ``kv`` (``n`` of them,
        each read by ``len(queries.slots) // n`` consecutive query heads) are kept, and the
        query heads prune in equal numbers from each key/value head's run (:attr:`Group.
        segments`, from ``self._segments``)."""
        self._keep(kv, f"{_describe(node)}: gqa='queries' keeps every key/value head")
        self._segments.append((list(queries.slots), len(kv.slots)))
        self._served += 1

    def _copies_follow_heads(self, copies: Any) -> bool:
        """Whether a key/value head broadcast ``copies`` times (:func:`_copies_along`) to the
        query heads still matches them after pruning: one entry, or Hugging Face's
        ``repeat_kv`` by ``num_key_value_groups``, which :func:`~.prune.prune` rewrites."""
        if type(copies) is int:
            return copies == 1
        if not isinstance(copies, _SizeInt) or copies.key[1] != "num_key_value_groups":
            return False
        name = copies.key[0]
        if query_groups(self._modules.get(name)) is not None:
            return True
        if query_groups(self._modules.get(name), one_kv_head=True) is None:
            return False
        self.one_kv_head.add(name)
        return True

    @staticmethod
    def _on_matrix_axes(operands: Sequence[tuple[Any, Any]]) -> bool:
        """Whether some operand has channels on one of its last two axes (and none on a
        leading axis: those are the head-axis rules' case)."""
        axes = [lab.axis - len(_shape(a) or ()) for a, lab in operands if isinstance(lab, _Label)]
        return bool(axes) and all(ax in (-1, -2) for ax in axes)

    def _matrix_axes(self, node: fx.Node, operands: Sequence[tuple[Any, Any]]) -> Any:
        """``head_dims`` mode, ``a @ b`` with channels on matrix axes: channels on the
        contracted axes (``a``'s last, ``b``'s second to last, as ``q @ k^T``) are unified and
        leave the product; channels on ``a``'s rows or ``b``'s columns (``attn @ v``) label
        the output's. Channels contracted against an untracked tensor, or on both outer axes,
        freeze."""
        (a, la), (b, lb) = operands
        na, nb, out = len(_shape(a) or ()), len(_shape(b) or ()), _shape(node)
        if out is None or na < 2 or nb < 2:
            raise _Freeze(f"{_describe(node)}: matrix product over channels of a vector")
        on_a = isinstance(la, _Label) and la.axis == na - 1
        on_b = isinstance(lb, _Label) and lb.axis == nb - 2
        if (on_a or on_b) and not (on_a and on_b and self._unify(la, lb)):
            raise _Freeze(f"{_describe(node)} contracts channels with an untracked tensor")
        rows = la if isinstance(la, _Label) and la.axis == na - 2 else None
        cols = lb if isinstance(lb, _Label) and lb.axis == nb - 1 else None
        if rows is not None and cols is not None:
            raise _Freeze(f"{_describe(node)}: channels on both axes of the product")
        if rows is not None:
            return _Label(len(out) - 2, list(rows.slots))
        if cols is not None:
            return _Label(len(out) - 1, list(cols.slots))
        return _CONTRACTED if on_a else None

    def _attention_dims(
        self, node: fx.Node, operands: Sequence[tuple[Any, Any]], scale: Any
    ) -> Any:
        """``head_dims`` mode, ``F.scaled_dot_product_attention`` with channels on the last
        axis of ``q`` / ``k`` (contracted: unified; only with an explicit ``scale``, since the
        default ``1 / sqrt(head_dim)`` would change) or of ``v`` (they label the output's)."""
        (q, lq), (k, lk), (v, lv), (_, lm) = operands
        for t, lab in ((q, lq), (k, lk), (v, lv)):
            if isinstance(lab, _Label) and lab.axis != len(_shape(t) or ()) - 1:
                raise _Freeze(f"{_describe(node)}: attention over channels on other axes")
        if lm is not None:  # a per-head bias (T5, Swin): heads stay whole in this mode
            self._freeze(lm, f"{_describe(node)}: a mask over heads (head_dims keeps them)")
        contracted = lq is not None or lk is not None
        if contracted and scale is None:  # v's channels stay prunable
            reason = "the default scale 1 / sqrt(head_dim) would change with the query / key"
            self._freeze([lq, lk], f"{_describe(node)}: {reason} dimensions")
        elif contracted and (lq is None or lk is None or not self._unify(lq, lk)):
            raise _Freeze(f"{_describe(node)} contracts channels with an untracked tensor")
        out = _shape(node)
        if lv is None or out is None:
            return _CONTRACTED if contracted else None
        return _Label(len(out) - 1, list(lv.slots))

    def _batch_axes_only(
        self, node: fx.Node, operands: Sequence[tuple[Any, Any]], what: str
    ) -> Any:
        """An op whose ``(operand, label)`` pairs have matrices on their last two axes and
        broadcast their leading axes: channels on the leading axes of every operand are
        unified; channels on a matrix axis, or an untracked operand spanning the channel axis,
        freeze them."""
        out = _shape(node)
        if out is None or len(out) < 3:
            raise _Freeze(f"{_describe(node)}: {what} over channels")
        nd = len(out)
        result: _Label | None = None
        for a, lab in operands:
            if not isinstance(lab, _Label):
                continue
            s = _shape(a)
            assert s is not None
            axis = lab.axis + nd - len(s)
            if lab.axis >= len(s) - 2 or axis < 0:
                raise _Freeze(f"{_describe(node)}: {what} over channels")
            if result is None:
                result = _Label(axis, list(lab.slots))
            elif axis != result.axis or not self._unify(result, lab):
                raise _Freeze(f"{_describe(node)} mixes channel axes")
        if result is None:
            return None
        for a, lab in operands:
            if isinstance(a, fx.Node) and not isinstance(lab, _Label) and lab is not _SERVED:
                s = _shape(a)
                idx = result.axis - (nd - len(s)) if s is not None else -1
                spans = s is not None and idx >= 0 and s[idx] != 1
                # eager multi-query attention's key: copies of one head, as many as the queries
                if spans and not self._copies_follow_heads(_copies_along(a, idx)):
                    raise _Freeze(f"{_describe(node)} combines channels with an untracked tensor")
        return result

    def _reduce(self, node: fx.Node, labels: dict[fx.Node, Any], dims: Any, keep: bool) -> Any:
        label = self._in(node, labels)
        if label is None:
            return None
        src = _shape(node.args[0])
        assert src is not None
        if dims is None:
            raise _Freeze(f"{_describe(node)} reduces over channels")
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = [d % len(src) for d in dims]
        if label.axis in dims:
            raise _Freeze(f"{_describe(node)} reduces over channels")
        shift = 0 if keep else sum(1 for d in dims if d < label.axis)
        return _Label(label.axis - shift, label.slots)

    def _reduction(self, node: fx.Node, labels: dict[fx.Node, Any], name: str) -> Any:
        """A reduction of :data:`_REDUCTIONS` or :data:`_PAIR_REDUCTIONS` (``x.std(2)``,
        ``torch.max(x, dim=-1)``): each channel on its own unless it reduces over channels.
        Those returning ``(values, indices)`` give both the channels."""
        a: Any = node.args
        kw = _kw(node)
        if name in _PAIR_REDUCTIONS:
            position, keep_at, default = _PAIR_REDUCTIONS[name]
            if len(a) > 1 and isinstance(a[1], fx.Node | torch.Tensor):  # torch.max(x, y)
                return self._binary(node, labels, a[:2])
            if "other" in kw:
                return self._binary(node, labels, (a[0], kw["other"]))
            dim = a[position] if len(a) > position else kw.get("dim", default)
            keep = bool(a[keep_at]) if len(a) > keep_at else bool(kw.get("keepdim", False))
            label = self._reduce(node, labels, dim, keep)
            return [label, label] if dim is not None and label is not None else label
        position, keep_at = _REDUCTIONS[name]
        dim = a[position] if len(a) > position else kw.get("dim")
        if name in ("std", "var") and isinstance(dim, bool):  # x.std(False): the unbiased flag
            dim = None
        keep = bool(a[keep_at]) if len(a) > keep_at else bool(kw.get("keepdim", False))
        return self._reduce(node, labels, dim, keep)

    def _along(self, node: fx.Node, labels: dict[fx.Node, Any], name: str) -> Any:
        """An op of :data:`_ALONG_AXES_METHODS` (``roll``, ``cumsum``, ``sort``, ``topk``,
        ``F.normalize``...): each channel on its own, where it was, unless the op acts along
        the channel axis. Those returning ``(values, indices)`` give both the channels."""
        label, src = self._in(node, labels), _shape(node.args[0])
        if label is None:
            return None
        assert src is not None
        a, kw = node.args, node.kwargs
        position, keyword, default, pair = _ALONG_AXES_METHODS[name]
        if name == "flip" and node.op == "call_method" and len(a) > 2:
            dims: Any = a[1:]  # x.flip(2, 3)
        else:
            dims = a[position] if len(a) > position else kw.get(keyword, default)
        if dims is None:  # roll without dims: over the flattened tensor
            raise _Freeze(f"{_describe(node)} acts along the flattened channels")
        dims = [dims] if isinstance(dims, int) else list(dims)
        if label.axis in [int(d) % len(src) for d in dims]:
            raise _Freeze(f"{_describe(node)} acts along the channel axis")
        return [label, label] if pair else label

    def _cat(
        self, node: fx.Node, labels: dict[fx.Node, Any], tensors: Any, dim: int, stack: bool = False
    ) -> Any:
        """``torch.cat(tensors, dim)`` or, with ``stack``, ``torch.stack(tensors, dim)`` (a new
        axis at ``dim``). Along the channel axis (cat) the channels are the parts' in order;
        along another one the parts hold one set of channels on the same axis."""
        out = _shape(node)
        assert out is not None
        dim = dim % len(out)
        verb = "stacks" if stack else "concatenates"
        if not isinstance(tensors, (list, tuple)):  # e.g. torch.cat(parts[1:]): one traced list
            raise _Freeze(f"{_describe(node)} {verb} a traced list")
        parts = [labels.get(t) if isinstance(t, fx.Node) else None for t in tensors]
        found = [p for p in parts if isinstance(p, _Label)]
        if not found:
            return None
        axis = found[0].axis
        if any(p.axis != axis for p in found):
            raise _Freeze(f"{_describe(node)} {verb} different channel axes")
        if dim == axis and not stack:
            slots: list[int] = []
            for t, p in zip(tensors, parts, strict=True):
                if isinstance(p, _Label):
                    slots.extend(p.slots)
                else:
                    s = _shape(t)
                    assert s is not None
                    fresh = self._fresh(s[axis], axis)
                    self._freeze(fresh, f"{_describe(node)}: untracked channels")
                    slots.extend(fresh.slots)
            return _Label(axis, slots)
        result = _Label(axis + (stack and dim <= axis), list(found[0].slots))
        for p in found[1:]:
            if not self._unify(result, p):
                raise _Freeze(f"{_describe(node)}: channel sizes differ")
        if len(found) != len(parts):
            raise _Freeze(f"{_describe(node)} {verb} untracked channels")
        return result

    def _split(
        self, node: fx.Node, labels: dict[fx.Node, Any], sizes: Any, dim: int, by_count: bool
    ) -> Any:
        """``split`` / ``chunk`` (``by_count``: a number of pieces, which follows the
        pruning). Sizes written in ``forward`` (``split(32, 1)``) do not follow it, so they
        freeze the channels; sizes that are module attributes (YOLOv8's ``split((self.c,
        self.c), 1)``) do: each piece is its own channels, and :func:`~.prune.prune` rewrites
        each attribute to its piece's kept count (one size for all pieces, or one attribute
        for several, couples them position by position). So does an exact part of one that
        sizes equal pieces (CSPNet's ``split(self.expand_chs // 2)``): the attribute counts
        all the channels split."""
        label = self._in(node, labels)
        if label is None:
            return None
        src = _shape(node.args[0])
        assert src is not None
        dim = dim % len(src)
        n = src[dim]
        written = [sizes] if isinstance(sizes, int) else sizes
        literal = [type(k) is int for k in written] if isinstance(written, (list, tuple)) else []
        # some sizes attributes, the others written in forward: those pieces' channels stay
        # (transformers 5.25's Falcon-7B: split([self.num_heads, 1, 1]), the key and value)
        mixed = not isinstance(sizes, int) and any(literal) and not all(literal)
        if dim == label.axis and not by_count and any(literal) and not mixed:
            raise _Freeze(
                f"{_describe(node)} splits channels at sizes written in forward; they would not "
                "follow the pruning"
            )
        one_size = isinstance(sizes, int)
        if one_size:
            sizes = [min(sizes, n - i) for i in range(0, n, sizes)]
        if not isinstance(sizes, (list, tuple)) or not all(isinstance(k, int) for k in sizes):
            raise _Freeze(f"{_describe(node)} splits at sizes computed in forward")
        if dim != label.axis:
            return [label for _ in sizes]
        outs, start = [], 0
        for s in sizes:
            outs.append(_Label(label.axis, label.slots[start : start + s]))
            start += s
        if by_count or one_size:
            # the pruned model still splits by count, or by one size: every piece must lose
            # the same positions, so the pieces are coupled position by position
            if len(set(sizes)) != 1:
                raise _Freeze(f"{_describe(node)} splits channels into unequal pieces")
            for piece in outs[1:]:
                self._unify(outs[0], piece)
        if one_size and isinstance(written[0], _SizeInt) and written[0].divisor == len(outs):
            self._bind_size(written[0], label, node, len(outs))  # all the channels split
        elif not by_count:  # attributes (and, mixed with them, sizes written in forward)
            for size, piece in zip(written if one_size else sizes, outs, strict=False):
                if type(size) is int:
                    self._keep(piece, f"{_describe(node)}: a piece of a size written in forward")
                else:
                    self._bind_size(size, piece, node)
        return outs

    def _getitem(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        src_node, idx = node.args[0], node.args[1]
        label = labels.get(src_node) if isinstance(src_node, fx.Node) else None
        if isinstance(label, list):  # a piece, or a slice of the pieces (still tracked)
            return label[idx] if isinstance(idx, (int, slice)) else None
        if label is None:
            return None
        src = _shape(src_node)
        if src is None:
            return None
        items = idx if isinstance(idx, tuple) else (idx,)
        advanced = [
            p
            for p, i in enumerate(items)
            if isinstance(i, fx.Node) or torch.is_tensor(i) or isinstance(i, list)
        ]
        if advanced:
            picked = self._picked_channels(node, label, items, len(src))
            if picked is not None:
                return picked
            if (
                isinstance(src_node, fx.Node)
                and src_node.op == "get_attr"
                and advanced == [label.axis]
            ):
                return self._gathered_table(node, src_node, label, items, src)
            return self._gather_rows(node, label, items, advanced)
        n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
        expanded: list[Any] = []
        for i in items:
            if i is Ellipsis:
                expanded.extend([slice(None)] * (len(src) - n_real))
            else:
                expanded.append(i)
        expanded.extend([slice(None)] * (len(src) - sum(1 for i in expanded if i is not None)))
        in_ax, out_ax = 0, 0
        for i in expanded:
            if i is None:
                out_ax += 1
                continue
            if in_ax == label.axis:
                if isinstance(i, int):
                    if _used_for_shape_only(node):
                        return None  # BART's embed_positions(inputs_embeds[:, :, -1])
                    raise _Freeze(f"{_describe(node)} selects a single channel")
                if isinstance(i.step, fx.Node):
                    raise _Freeze(f"{_describe(node)} slices channels at traced bounds")
                if isinstance(i.start, fx.Node) or isinstance(i.stop, fx.Node):
                    return _Label(out_ax, self._slice_fraction(node, src_node, label, i))
                return _Label(out_ax, self._slice_channels(node, label, i))
            if not isinstance(i, int):
                out_ax += 1
            in_ax += 1
        return label

    def _picked_channels(
        self, node: fx.Node, label: _Label, items: tuple[Any, ...], rank: int
    ) -> _Label | None:
        """``x[..., [i, j], :]``: channels picked by a literal list, full slices elsewhere
        (Falcon-7B's key head ``qkv[..., [-2], :]``). The picked channels stay, and so do
        those between each and the end it counts from (as for a fixed slice bound, see
        :meth:`_slice_channels`). None for any other index."""
        if any(i is None for i in items):
            return None
        expanded: list[Any] = []
        for i in items:
            expanded.extend([slice(None)] * (rank - len(items) + 1) if i is Ellipsis else [i])
        expanded.extend([slice(None)] * (rank - len(expanded)))
        picks, n = expanded[label.axis], len(label.slots)
        if (
            not isinstance(picks, list)
            or not picks
            or not all(type(i) is int and -n <= i < n for i in picks)
            or any(i != slice(None) for q, i in enumerate(expanded) if q != label.axis)
        ):
            return None
        for i in picks:
            fixed = _fixed_span(label.slots, i if i < 0 else i + 1)
            self._keep(_Label(label.axis, fixed), f"{_describe(node)} picks channels")
        return _Label(label.axis, [label.slots[i] for i in picks])

    def _slice_channels(self, node: fx.Node, label: _Label, index: slice) -> list[int]:
        """The slots ``label``'s channels keep under ``index``. A bound that is a module
        attribute (ReXNet's ``x[:, 0:self.in_channels]``, DPN's ``x[:, self.num_1x1_c:]``)
        follows the pruning: :func:`~.prune.prune` rewrites it to the kept count of the
        channels before it. A sum of attributes (Phi-3's fused ``qkv[..., q + k :]``) binds
        each to its own run of the channels before the bound, in order. A bound written in
        ``forward`` keeps the channels between it and the end it counts from."""
        slots, n = label.slots, len(label.slots)
        if index.step not in (None, 1):
            raise _Freeze(f"{_describe(node)} slices channels with a step")
        for bound in (index.start, index.stop):
            sums = isinstance(bound, _SizeSum) and not bound.offset  # of attributes alone
            if (isinstance(bound, _SizeInt) or sums) and 0 <= bound <= n:
                start = 0
                for term in bound.terms if isinstance(bound, _SizeSum) else (bound,):
                    end = start + int.__int__(term)
                    self._bind_size(term, _Label(label.axis, slots[start:end]), node)
                    start = end
            elif bound is not None and slots[bound:] and slots[:bound]:
                # a bound written in forward (Falcon-7B's qkv[..., :-2, :])
                fixed = _fixed_span(slots, bound)
                self._keep(_Label(label.axis, fixed), f"{_describe(node)} slices channels")
        return slots[index]

    def _slice_fraction(
        self, node: fx.Node, src_node: Any, label: _Label, index: slice
    ) -> list[int]:
        """A slice of a 1-D tensor's channels at fractions of its own count, as Swin-V2's
        ``qkv_bias[length : 2 * length]`` with ``length = qkv_bias.numel() // 3`` (the keys'
        bias): the axis is cut into equal parts (the fractions' common denominator), coupled
        position by position so that they keep equal widths and the bounds, computed again
        from the pruned count, still fall between the same parts. Any other traced bound
        freezes."""
        slots, n = label.slots, len(label.slots)
        start = Fraction(0) if index.start is None else _count_fraction(index.start, src_node)
        stop = Fraction(1) if index.stop is None else _count_fraction(index.stop, src_node)
        if start is None or stop is None or index.step not in (None, 1):
            raise _Freeze(f"{_describe(node)} slices channels at traced bounds")
        parts = math.lcm(start.denominator, stop.denominator)
        if _shape(src_node) != (n,) or n % parts or not 0 <= start <= stop <= 1:
            raise _Freeze(f"{_describe(node)} slices channels at traced bounds")
        width = n // parts
        first = _Label(label.axis, slots[:width])
        for p in range(1, parts):
            self._unify(first, _Label(label.axis, slots[p * width : (p + 1) * width]))
        return slots[int(start * n) : int(stop * n)]

    def _gathered_table(
        self,
        node: fx.Node,
        table: fx.Node,
        label: _Label,
        items: tuple[Any, ...],
        src: Sequence[int],
    ) -> _Label:
        """``table[:, index]``: a parameter gathered along the axis the get_attr rule took
        for its channels (its last non-singleton one), as LeViT's, TinyViT's and
        EfficientFormer's ``attention_biases[:, attention_bias_idxs]`` (a ``[heads, offsets]``
        table). The table's channels are then its one other non-singleton axis, which the
        index leaves in place (the heads); the gathered axis has no channels (frozen, if the
        table is read elsewhere too)."""
        p = label.axis
        others = [q for q, n in enumerate(src) if q != p and n != 1]
        index = items[p]
        index_shape = _shape(index) if isinstance(index, fx.Node) else None
        if (
            len(others) != 1
            or index_shape is None
            or any(i != slice(None) for q, i in enumerate(items) if q != p)
        ):
            raise _Freeze(f"{_describe(node)}: advanced indexing")
        (q,) = others
        channels = self._rehomed(table, q, src[q])
        if channels is None:  # read elsewhere too: a second member, on the heads axis
            self._freeze(label, f"{_describe(node)} gathers {table.target} along this axis")
            channels = self._fresh(src[q], q)
            module, name = _split_target(str(table.target))
            self._member(module, name, q, "embed", "Parameter", channels.slots)
        return _Label(q if q < p else q - 1 + len(index_shape), channels.slots)

    def _reread(
        self, node: fx.Node, axis: int, size: int, labels: dict[fx.Node, Any]
    ) -> _Label | None:
        """``node``, a parameter read in ``forward`` through ops that keep its values' places
        (:func:`_parameter_read`), with its channels on ``axis`` of ``size`` entries: the
        parameter's channels moved to the axis that lands there (their labels along the way
        rewritten); None where no axis does."""
        chain = _parameter_read(node)
        assert chain is not None
        table, shape = chain[0], _shape(chain[0])
        if shape is None or not chain[1:]:
            return self._rehomed(table, axis, size) if shape is not None else None
        member = self._read_tensors.get(table)
        if member is None:
            return None
        before = {n: labels.get(n) for n in chain}
        for p in (q for q, n in enumerate(shape) if n == size):
            labels[table] = self._fresh(size, p)
            try:
                for n in chain[1:]:
                    labels[n] = self._rule(n, labels)
            except _Freeze:
                continue
            got = labels[node]
            if isinstance(got, _Label) and got.axis == axis:
                member.dim, member.slots = p, list(labels[table].slots)
                return got
        labels.update(before)
        return None

    def _rehomed(self, table: fx.Node, axis: int, size: int) -> _Label | None:
        """Move the channels the get_attr rule gave a parameter (its last non-singleton axis,
        a guess) to ``axis`` of ``size`` entries, where the one op that reads it places them;
        None if the parameter is read by other ops too, or that axis does not fit."""
        member = self._read_tensors.get(table)
        shape = _shape(table)
        if (
            member is None
            or len(table.users) != 1
            or shape is None
            or not 0 <= axis < len(shape)
            or shape[axis] != size
        ):
            return None
        label = self._fresh(size, axis)
        member.dim, member.slots = axis, list(label.slots)
        return label

    def _gather_rows(
        self, node: fx.Node, label: _Label, items: tuple[Any, ...], advanced: list[int]
    ) -> _Label:
        """``x[index]`` with one index tensor on axes before the channels and full slices
        elsewhere (Swin's ``relative_position_bias_table[relative_position_index]``, a per-head
        table): the index's axes replace the indexed one; a boolean mask ``[d_p, ..., d_q]``
        replaces the axes it covers with one (BART's ``hidden[eos_mask, :]``: ``[B, T, C] ->
        [N, C]``). Other advanced indexing freezes."""
        p = advanced[0]
        index = items[p]
        if len(advanced) != 1 or any(i != slice(None) for q, i in enumerate(items) if q != p):
            raise _Freeze(f"{_describe(node)}: advanced indexing")
        if isinstance(index, fx.Node):
            index_shape, mask = _shape(index), index.meta.get("nk_dtype") is torch.bool
        elif torch.is_tensor(index) or all(isinstance(i, (int, bool)) for i in index):
            values = torch.as_tensor(index)
            index_shape, mask = tuple(values.shape), values.dtype is torch.bool
        else:  # a list holding traced values
            index_shape, mask = None, False
        if index_shape is None:
            raise _Freeze(f"{_describe(node)}: advanced indexing with an unknown index")
        covered = len(index_shape) if mask else 1  # input axes the index consumes
        if p > label.axis:  # the index's axes replace later ones (Falcon's qkv[:, :, :, [-2]])
            return label
        if p + covered > label.axis:
            raise _Freeze(f"{_describe(node)}: advanced indexing")
        return _Label(label.axis - covered + (1 if mask else len(index_shape)), label.slots)

    def _function_rule(self, node: fx.Node, labels: dict[fx.Node, Any], target: Any) -> Any:
        a: Any = node.args
        if target is operator.getitem:
            return self._getitem(node, labels)
        if target in _BINARY_FUNCS:
            if target in _DIVISIONS:
                self._note_divisor(a[1] if len(a) > 1 else node.kwargs.get("other"))
            return self._binary(node, labels, a[:2])
        if target is torch.where:  # where(condition, x, y): elementwise over three operands
            return self._binary(node, labels, a[:3])
        if target in _MULTI_OPERAND_FUNCS:
            return self._multi_operand(node, labels, target.__name__)
        if target is _F.pad:
            return self._pad(node, labels, a[1] if len(a) > 1 else _kw(node).get("pad"))
        if target in (torch.channel_shuffle, torch.native_channel_shuffle):  # F.channel_shuffle
            groups = a[1] if len(a) > 1 else _kw(node).get("groups")
            return self._channel_shuffle(self._in(node, labels), int(groups))
        if target is torch.broadcast_to:
            return self._expand(node, labels)
        if target in (torch.select, torch.narrow, torch.index_select):
            return self._select(node, labels, node.args[1] if len(node.args) > 1 else None)
        if target is torch.index_add:
            return self._index_add(node, labels)
        if target is _F.unfold:
            return self._unfold(
                node, labels, _named_args(node, ("input", "kernel_size"))["kernel_size"]
            )
        if target in (_F.interpolate, _F.upsample):
            in_shape = _shape(node.args[0]) if node.args else None
            return self._pool(node, labels, len(in_shape) - 2 if in_shape else 2)
        if target in _POOL_FUNCS:
            return self._pool(node, labels, _pooled_axes(target.__name__))
        if target in (_F.pixel_shuffle, _F.pixel_unshuffle):
            unshuffle = target is _F.pixel_unshuffle
            keyword = "downscale_factor" if unshuffle else "upscale_factor"
            factor = a[1] if len(a) > 1 else _kw(node).get(keyword)
            x = self._in(node, labels)
            return self._pixel_shuffle(_describe(node), int(factor), unshuffle, x, node)
        if target is _F.glu:
            dim = a[1] if len(a) > 1 else _kw(node).get("dim", -1)
            return self._glu(_describe(node), self._in(node, labels), int(dim), node)
        if target in _ELEMENTWISE_FUNCS or _qualname(target) in _ELEMENTWISE_QUALNAMES:
            return self._passthrough(node, labels)
        if target is _F.layer_norm:
            return self._layer_norm_call(node, labels)
        if target is _F.batch_norm:
            return self._batch_norm_call(node, labels)
        if target is _F.group_norm:
            return self._group_norm_call(node, labels)
        if target is _F.linear:
            return self._linear_call(node, labels)
        if target is _F.embedding:
            return self._embedding_call(node, labels)
        if target in _CONV_FUNCS:
            return self._depthwise_conv_call(node, labels)
        if target in (torch.matmul, operator.matmul, torch.mm, torch.bmm):
            return self._matmul(node, labels)
        if target is torch.addmm:
            return self._addmm(node, labels)
        if target in _GROUPED_MM:
            return self._grouped_mm(node, labels)
        if target is _F.scaled_dot_product_attention:
            return self._attention(node, labels)
        if target in (torch.flatten, torch.reshape, torch.unsqueeze, torch.squeeze):
            return self._reshape(node, labels)
        if target is torch.unflatten:
            return self._unflatten(node, labels)
        if target is torch.cat or target is torch.concat:
            dim = a[1] if len(a) > 1 else _kw(node).get("dim", 0)
            return self._cat(node, labels, a[0], int(dim))
        if target is torch.split or target is torch.chunk:
            dim = a[2] if len(a) > 2 else _kw(node).get("dim", 0)
            sizes = a[1]
            if target is torch.chunk:
                sizes = self._chunk_sizes(node, int(sizes), int(dim))
            return self._split(node, labels, sizes, int(dim), target is torch.chunk)
        if target is torch.tensor_split:
            return self._tensor_split(node, labels)
        if target is torch.unbind:
            return self._unbind(node, labels, a[1] if len(a) > 1 else _kw(node).get("dim", 0))
        if target in (torch.transpose, torch.swapaxes, torch.swapdims):
            return self._transpose(node, labels, a[1], a[2])
        if target is torch.einsum:
            return self._einsum(node, labels)
        if target is torch.permute:
            return self._permute(node, labels, a[1])
        if target in _BY_FUNCTION:
            return self._reduction(node, labels, _BY_FUNCTION[target])
        if target is torch.stack:
            dim = a[1] if len(a) > 1 else _kw(node).get("dim", 0)
            return self._cat(node, labels, a[0], int(dim), stack=True)
        if target is getattr and a[1] in ("values", "indices"):
            pair = labels.get(a[0])
            if isinstance(pair, list):  # x.max(dim).values
                return pair[a[1] == "indices"]
        if target in _ALONG_AXES:
            return self._along(node, labels, _ALONG_AXES[target])
        if target is _F.softmax or target is torch.softmax:
            x = self._in(node, labels)
            dim = a[1] if len(a) > 1 else _kw(node).get("dim")
            out = _shape(node)
            if x is not None and (dim is None or int(dim) % len(out or (1,)) == x.axis):
                raise _Freeze(f"{_describe(node)}: softmax over channels")
            return x
        if target is getattr and a[1] in ("mT", "mH"):  # the last two axes swapped
            return self._transpose(node, labels, -2, -1)
        if (target is getattr and a[1] in ("T", "H")) or target is torch.t:  # axes reversed
            return self._reversed(node, labels)
        if target in _FILLED_FUNCS:
            return self._filled(node)
        if _reads_shape_only(node):
            return None
        raise _Freeze(f"{_describe(node)}: unsupported function")

    def _filled(self, node: fx.Node) -> Any:
        """``torch.zeros(B, self.hidden)`` (ones, empty, full; ``x.new_zeros(...)``): a new
        tensor of one value whose size on one axis is a module attribute (a hand-written RNN's
        initial state) holds channels of its own there (the last such axis: ``[layers, B,
        hidden]``). They meet the channels they are added to or multiplied with, and the
        attribute follows their pruning (see :meth:`_bind_size`); the other sizes (literals,
        traced sizes, other attributes) stay constants."""
        size = _filled_sizes(node)
        if size is None:  # a traced size (``x.new_full(y.size(), v)``)
            return None
        attributes = [(i, v) for i, v in enumerate(size) if isinstance(v, _SizeInt)]
        if not attributes:
            return None
        axis, attribute = attributes[-1]  # channels last: [B, H], [layers, B, H]
        return self._bind_size(attribute, self._fresh(int.__int__(attribute), axis), node)

    def _depthwise_conv_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.conv1d(x, w, b, ..., groups=C)`` (2-d, 3-d) in a ``forward``, depthwise: the
        weight ``[C, 1, k...]`` a parameter read there (through casts and ``squeeze`` /
        ``unsqueeze``: Mamba's causal convolution), ``groups`` the count of ``x``'s channels
        read off its shape, so that it follows them. Each output channel is its input channel,
        with its weight row and bias entry. Other convolutions freeze the channels."""
        args = _named_args(node, ("input", "weight", "bias", "stride", "padding", "dilation"))
        x, w, b = args.get("input"), args.get("weight"), args.get("bias")
        groups = node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1)
        label = labels.get(x) if isinstance(x, fx.Node) else None
        shape = _shape(x) if isinstance(x, fx.Node) else None
        w_shape = _shape(w) if isinstance(w, fx.Node) else None
        counted = self._channel_count(node, groups, labels)
        if not isinstance(label, _Label) or shape is None or w_shape is None or label.axis != 1:
            raise _Freeze(f"{_describe(node)}: unsupported convolution")
        if counted is None or w_shape[0] != shape[1] or w_shape[1] != 1:
            raise _Freeze(f"{_describe(node)}: a convolution that is not depthwise over channels")
        rows = None
        if isinstance(w, fx.Node) and _parameter_read(w) is not None:
            rows = self._reread(w, 0, shape[1], labels)
        bias = labels.get(b) if isinstance(b, fx.Node) else None
        if rows is None or (b is not None and _parameter_read(b) is None):
            raise _Freeze(f"{_describe(node)}: a convolution whose weight is no parameter")
        kind = str(getattr(node.target, "__name__", "conv"))
        for tensor, lab in ((w, rows), (b, bias)):
            if tensor is None:
                continue
            chain = _parameter_read(tensor)
            assert chain is not None
            if not isinstance(lab, _Label) or not self._unify(label, lab):
                raise _Freeze(f"{_describe(node)}: weights not along the channels")
            self._recast(chain[0], "out", kind)
        if not self._unify(label, counted):
            raise _Freeze(f"{_describe(node)}: groups counts other channels")
        return _Label(1, list(label.slots))

    def _embedding_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.embedding(ids, weight)`` in a ``forward`` (an ``nn.Embedding`` subclass that
        shifts its ids, OPT's learned positions, or scales its rows, Gemma's): the table's
        columns are the output's channels, as in the Embedding rule. A table that is not a
        parameter, or ``max_norm`` (rows renormalized over all columns), freezes them."""
        names = ("input", "weight", "padding_idx", "max_norm")
        args = _named_args(node, names)
        table, out = args["weight"], _shape(node)
        lab = labels.get(table) if isinstance(table, fx.Node) else None
        if not isinstance(lab, _Label):
            return None
        if table.op != "get_attr" or lab.axis != 1 or out is None:
            raise _Freeze(f"{_describe(node)}: embedding table that is not a parameter")
        if args.get("max_norm") is not None:
            raise _Freeze(f"{_describe(node)}: max_norm renormalizes rows over the channels")
        module, _ = _split_target(str(table.target))
        self._recast(table, "out", type(self._modules[module]).__name__)
        return _Label(len(out) - 1, lab.slots)

    def _layer_norm_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.layer_norm(x, normalized_shape, weight, bias, eps)`` called in a ``forward``
        (e.g. torchvision's ``LayerNorm2d``, an ``nn.LayerNorm`` subclass that permutes
        around the call). Over the channel axis it is the LayerNorm rule, but only for an
        ``nn.LayerNorm`` subclass calling it from its own ``forward`` with its weight (or the
        weight plus a number: Nemotron's ``self.weight + 1.0``) and its own
        ``normalized_shape`` (which the pruner rewrites from the weight) and holding no other
        attribute equal to the width; its parameters become normalization members.
        Anything else over the channels freezes them."""
        names = ("input", "normalized_shape", "weight", "bias", "eps")
        args = _named_args(node, names)
        x = labels.get(args["input"]) if isinstance(args["input"], fx.Node) else None
        params = [
            _offset_parameter(p)
            for p in (args.get("weight"), args.get("bias"))
            if isinstance(p, fx.Node)
        ]
        plabels = [labels.get(p) for p in params]
        src = _shape(args["input"])
        nd = len(args["normalized_shape"]) if isinstance(args["normalized_shape"], Sequence) else 0
        if x is None or src is None or (nd and x.axis < len(src) - nd):
            if any(isinstance(lab, _Label) for lab in plabels):
                raise _Freeze(f"{_describe(node)}: parameters over untracked channels")
            return x  # no channels, or channels not normalized over
        shape = args["normalized_shape"]
        if (
            not params
            and args.get("weight") is None
            and args.get("bias") is None
            and nd == 1
            and x.axis == len(src) - 1
            and isinstance(shape[0], _SizeInt)
            and shape[0].key[1] == "normalized_shape[0]"
            and (shape[0].divisor, shape[0].multiplier) == (1, 1)
            and not _holds_size(self._modules[shape[0].key[0]], len(x.slots))
        ):  # OLMo's LayerNorm: F.layer_norm(x, self.normalized_shape, None, None, eps)
            return self._bare_norm(shape[0].key[0], x)
        owners = {_split_target(str(p.target))[0] for p in params if p.op == "get_attr"}
        owner_name = next(iter(owners)) if len(owners) == 1 else ""
        owner = self._modules.get(owner_name) if owner_name else None
        if (
            nd != 1
            or x.axis != len(src) - 1
            or not isinstance(owner, nn.LayerNorm)
            or type(owner).forward is nn.LayerNorm.forward  # called from outside the layer
            or args.get("weight") is None  # the pruner sizes normalized_shape by the weight
            or len(params) != sum(p.op == "get_attr" for p in params)
            or tuple(args["normalized_shape"]) != tuple(owner.normalized_shape)
            or _holds_size(owner, len(x.slots))
        ):
            raise _Freeze(
                f"{_describe(node)}: layer_norm over channels outside an affine nn.LayerNorm "
                "subclass's own normalized_shape (it could not follow the pruning)"
            )
        self._norm_members(node, x, params, plabels, type(owner).__name__)
        self._layernorms.add(owner_name)
        return x

    def _bare_norm(self, name: str, x: _Label) -> _Label:
        """A layer norm without parameters over the channels ``x`` (last axis), module
        ``name``: no tensor carries the channels, so the group records the module
        (:attr:`Group.bare_norms`). Called again (a shared module), its channels stay one set
        (one ``normalized_shape``)."""
        seen = self._bare_norms.setdefault(name, list(x.slots))
        if not self._unify(x, _Label(x.axis, seen)):
            self._freeze(x, f"{name}: a layer norm called on channels of different widths")
        return x

    def _unite_norm_groups(self, x: _Label, num_groups: int) -> None:
        """A GroupNorm's groups of channels ``x`` become units: removing whole groups leaves
        the statistics of the others as they were (Torch-Pruning removes channels inside every
        group and keeps ``num_groups``, which changes each group's mean and variance). A single
        group is a layer norm over ``[C, ...]``: its channels stay separate, and the oracle
        normalizes over the kept ones (:class:`~.prune.MaskedLayerNorm`)."""
        if num_groups == 1:
            return
        k = len(x.slots) // num_groups
        _unite_blocks(self._uf, [x.slots[g : g + k] for g in range(0, len(x.slots), k)])

    def _group_norm_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.group_norm(x, num_groups, weight, bias, eps)`` called in a ``forward`` (timm's
        ``GroupNorm1``, an ``nn.GroupNorm`` subclass with its own ``forward``): the GroupNorm
        rule, but only for such a subclass calling it with its own parameters and
        ``num_groups`` (which the pruner rewrites); anything else over channels freezes them."""
        names = ("input", "num_groups", "weight", "bias", "eps")
        args = _named_args(node, names)
        x = labels.get(args["input"]) if isinstance(args["input"], fx.Node) else None
        params = [p for p in (args.get("weight"), args.get("bias")) if isinstance(p, fx.Node)]
        plabels = [labels.get(p) for p in params]
        if x is None:
            if any(isinstance(lab, _Label) for lab in plabels):
                raise _Freeze(f"{_describe(node)}: parameters over untracked channels")
            return None
        owners = {_split_target(str(p.target))[0] for p in params if p.op == "get_attr"}
        owner = self._modules.get(next(iter(owners))) if len(owners) == 1 else None
        if (
            x.axis != 1
            or not isinstance(owner, nn.GroupNorm)
            or type(owner).forward is nn.GroupNorm.forward  # called from outside the layer
            or len(params) != 2
            or any(p.op != "get_attr" for p in params)
            or args["num_groups"] != owner.num_groups
            or len(x.slots) != owner.num_channels
        ):
            raise _Freeze(
                f"{_describe(node)}: group_norm over channels outside an affine nn.GroupNorm "
                "subclass's own groups (it could not follow the pruning)"
            )
        self._unite_norm_groups(x, owner.num_groups)
        self._norm_members(node, x, params, plabels, type(owner).__name__)
        if owner.num_groups == 1:
            self._layernorms.add(next(iter(owners)))
        return x

    def _batch_norm_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.batch_norm(x, running_mean, running_var, weight, bias, ...)`` called in a
        ``forward`` (timm's ``BatchNormAct2d``, a ``BatchNorm2d`` subclass with its own
        ``forward``): per channel on axis 1 like the BatchNorm rule, the statistics and affine
        parameters (parameters or buffers of the model) becoming normalization members."""
        names = ("input", "running_mean", "running_var", "weight", "bias")
        args = _named_args(node, names)
        x = labels.get(args["input"]) if isinstance(args["input"], fx.Node) else None
        params = [args[n] for n in names[1:] if isinstance(args.get(n), fx.Node)]
        plabels = [labels.get(p) for p in params]
        if x is None:
            if any(isinstance(lab, _Label) for lab in plabels):
                raise _Freeze(f"{_describe(node)}: parameters over untracked channels")
            return None
        if x.axis != 1 or any(p.op != "get_attr" for p in params):
            raise _Freeze(
                f"{_describe(node)}: batch_norm of channels not on axis 1 or with "
                "computed statistics"
            )
        owners = {_split_target(str(p.target))[0] for p in params}
        kind = (
            type(self._modules[next(iter(owners))]).__name__ if len(owners) == 1 else "batch_norm"
        )
        self._norm_members(node, x, params, plabels, kind)
        return x

    def _linear_call(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``F.linear(x, weight, bias)`` called in a ``forward`` (timm's ``Linear``, an
        ``nn.Linear`` subclass; EVA's attention with ``bias=torch.cat((q_bias, k_bias,
        v_bias))``): the Linear rule, with a weight that is a parameter of the model; the bias
        may be computed from parameters (its channels follow the output rows)."""
        args = _named_args(node, ("input", "weight", "bias"))
        matrix, bias = self._parameter_matrix(args["weight"]), args.get("bias")
        if matrix is None:
            raise _Freeze(f"{_describe(node)}: linear with a weight that is not a parameter")
        weight, transposed = matrix  # F.linear(x, W.T) with W [in, out] contracts W's rows
        x, src, out_shape = args["input"], _shape(args["input"]), _shape(node)
        if not src or not out_shape:
            raise _Freeze(f"{_describe(node)}: linear of unknown shape")
        axes = (len(src) - 1, len(out_shape) - 1)
        out = self._weight_product(node, labels, x, weight, int(not transposed), *axes)
        kind = type(self._modules[_split_target(str(weight.target))[0]]).__name__
        bl = labels.get(bias) if isinstance(bias, fx.Node) else None
        if isinstance(bl, _Label):
            if bl.axis != 0 or not self._unify(out, bl):
                raise _Freeze(f"{_describe(node)}: bias does not match the output features")
            if isinstance(bias, fx.Node):
                self._recast(bias, "out", kind)
        elif bias is not None:
            self._freeze(out, f"{_describe(node)}: bias of untracked channels")
        return out

    def _parameter_matrix(self, arg: Any) -> tuple[fx.Node, bool] | None:
        """``(get_attr node, transposed)`` when ``arg`` is a 2-D parameter (or buffer) of the
        model read in ``forward`` with channels (the get_attr rule made it a member), or a
        transposed view of one (``w.T``, ``w.t()``, ``w.transpose(0, 1)``...), either possibly
        cast (GLM-4-MoE's router reads ``self.weight.type(torch.float32)``), or one expert's
        matrix of a 3-D one (Mixtral's eager ``F.linear(x, self.gate_up_proj[expert])``: the
        3-D parameter is returned, see :meth:`_weight_product`); else None."""
        if not isinstance(arg, fx.Node):
            return None
        arg = _uncast(arg)
        transposed = _transposes_matrix(arg)
        p = _uncast(arg.args[0]) if transposed else arg
        expert = isinstance(p, fx.Node) and p.target is operator.getitem and _selects_one(p)
        if expert:
            p = p.args[0]
        if (
            isinstance(p, fx.Node)
            and p in self._read_tensors
            and len(_shape(p) or ()) == 2 + expert
        ):
            return p, transposed
        return None

    def _grouped_mm(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``torch._grouped_mm(x, W, offs=...)`` (Hugging Face's mixture-of-experts layers):
        the rows of ``x [S, K]`` in group ``g`` times ``W[g] [K, N]``, with ``W`` a 3-D
        parameter ``[experts, K, N]`` read in ``forward`` (or its last two axes transposed, as
        ``gate_up_proj.transpose(-2, -1)`` of ``[experts, N, K]``): a linear layer per expert.
        Channel ``j`` of every expert is one channel (the experts keep equal widths), so the
        expert axis is never pruned; see :meth:`_weight_product` for the widths' units."""
        args = _named_args(node, ("mat_a", "mat_b", "offs", "bias"))
        x, w = args.get("mat_a"), args.get("mat_b")
        src, out = _shape(x) if isinstance(x, fx.Node) else None, _shape(node)
        weight, transposed = w, False
        if isinstance(w, fx.Node) and _transposes_matrix(w):
            dims = [a for a in w.args[1:3] if isinstance(a, int)]
            last_two = {d % 3 for d in dims} == {1, 2} or w.args[1] in ("mT", "mH")
            if not last_two:
                raise _Freeze(f"{_describe(node)}: experts' weights transposed over experts")
            weight, transposed = w.args[0], True
        if not (
            args.get("bias") is None
            and isinstance(weight, fx.Node)
            and weight in self._read_tensors
            and len(_shape(weight) or ()) == 3
            and src is not None
            and len(src) == 2
            and out is not None
        ):
            raise _Freeze(f"{_describe(node)}: a grouped product of experts' weights it cannot map")
        return self._weight_product(node, labels, x, weight, int(transposed), 1, 1)

    def _weight_product(
        self,
        node: fx.Node,
        labels: dict[fx.Node, Any],
        x_node: Any,
        weight: fx.Node,
        in_axis: int,
        x_axis: int,
        o_axis: int,
    ) -> _Label:
        """A linear layer: ``x`` contracted on its axis ``x_axis`` with the 2-D parameter
        ``W`` read in ``forward`` on ``W``'s axis ``in_axis`` (1 for ``F.linear``'s and
        ``x @ W.T``'s ``[out, in]``, 0 for ``x @ W``'s ``[in, out]``), ``W``'s other axis
        becoming the output's axis ``o_axis``: that axis of ``W`` reads ``x``'s channels, the
        other produces the output's. A 3-D ``W`` (experts' matrices, see :meth:`_grouped_mm`)
        has its matrix axes last, ``in_axis`` counted among them; ``_grouped_mm`` needs rows
        of whole 16-byte units, so both widths keep multiples of ``16 / element size``
        channels (4 in float32) where their size allows, also when traced one expert at a
        time (a pruned model may be reloaded with the other experts' implementation)."""
        out_shape, w_shape = _shape(node), _shape(weight)
        if out_shape is None or w_shape is None:
            raise _Freeze(f"{_describe(node)}: a product of unknown shape")
        x = labels.get(x_node) if isinstance(x_node, fx.Node) else None
        wl = labels[weight]
        module, pname = _split_target(str(weight.target))
        kind = type(self._modules[module]).__name__
        lead = len(w_shape) - 2  # the experts' axis of a 3-D weight
        if wl.axis == lead + in_axis:  # the get_attr rule put the member on the contracted axis
            self._recast(weight, "in", kind)
            read, out = wl, self._fresh(out_shape[o_axis], o_axis)
            self._member(module, pname, lead + 1 - in_axis, "out", kind, out.slots)
        elif wl.axis == lead + 1 - in_axis:
            self._recast(weight, "out", kind)
            read = self._fresh(w_shape[lead + in_axis], lead + in_axis)
            out = _Label(o_axis, list(wl.slots))
            self._member(module, pname, lead + in_axis, "in", kind, read.slots)
        else:
            raise _Freeze(f"{_describe(node)}: channels of the weight on its experts' axis")
        tensor = self._tensor(module, pname)
        if lead and tensor is not None:
            unit = max(1, 16 // tensor.element_size())
            self._aligned.extend((list(lab.slots), unit) for lab in (read, out))
        if not (isinstance(x, _Label) and x.axis == x_axis and self._unify(x, read)):
            reason = f"{_describe(node)}: input features not on the contracted axis {x_axis}"
            self._freeze(read, reason)
            self._freeze(x, reason)
        return out

    def _norm_members(
        self, node: fx.Node, x: _Label, params: list[fx.Node], plabels: list[Any], kind: str
    ) -> None:
        """Tie the per-channel parameters ``params`` of a functional normalization to the
        channels ``x`` and make them normalization members (the get_attr rule registered them
        as embeddings)."""
        for p, lab in zip(params, plabels, strict=True):
            if not isinstance(lab, _Label) or not self._unify(x, lab):
                raise _Freeze(f"{_describe(node)}: parameters do not match the channels")
            self._recast(p, "norm", kind)

    def _recast(self, tensor: fx.Node, role: str, kind: str) -> None:
        """Give the member that the get_attr rule registered for the parameter read by
        ``tensor`` (an embedding by default) its role in the op that uses it."""
        member = self._read_tensors.get(tensor)
        if member is not None:
            member.role, member.kind = role, kind

    def _pool(self, node: fx.Node, labels: dict[fx.Node, Any], n_spatial: int) -> Any:
        """A pooling op over the last ``n_spatial`` axes: per channel only when the channel
        axis is not one of them (e.g. not after a permute to channels-last, nor a 1-d pool of a
        ``[B, features]`` output, which pools over the features)."""
        label = self._in(node, labels)
        out = _shape(node)
        if label is not None and out is not None and label.axis >= len(out) - n_spatial:
            raise _Freeze(f"{_describe(node)} pools over the channel axis")
        return self._passthrough(node, labels)

    def _chunk_sizes(self, node: fx.Node, chunks: int, dim: int) -> list[int]:
        src = _shape(node.args[0])
        assert src is not None
        n = src[dim % len(src)]
        step = -(-n // chunks)
        return [min(step, n - i) for i in range(0, n, step)]

    def _transpose(self, node: fx.Node, labels: dict[fx.Node, Any], d0: Any, d1: Any) -> Any:
        label = self._in(node, labels)
        if label is None:
            return None
        nd = len(_shape(node) or ())
        d0, d1 = int(d0) % nd, int(d1) % nd
        axis = d1 if label.axis == d0 else d0 if label.axis == d1 else label.axis
        return _Label(axis, label.slots)

    def _reversed(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``x.T`` / ``x.t()`` / ``torch.t(x)``: the axes in reverse order."""
        label = self._in(node, labels)
        if label is None:
            return None
        return _Label(len(_shape(node) or ()) - 1 - label.axis, label.slots)

    def _einsum(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``torch.einsum(equation, *operands)`` (MaxViT's attention, ``"BGHID,BGHJD->BGHIJ"``)
        with channels on an index the output keeps (heads): the operands holding it hold one
        set of channels there (unified), an untracked one only broadcasts (size 1); channels
        summed over, on an ellipsis, an implicit output or a repeated index freeze."""
        a: Any = node.args
        operands = list(a[1]) if len(a) == 2 and isinstance(a[1], (list, tuple)) else list(a[1:])
        found = [
            (i, labels[t]) for i, t in enumerate(operands) if isinstance(labels.get(t), _Label)
        ]
        if not found:
            return None
        equation = str(a[0]).replace(" ", "")
        if "." in equation or "->" not in equation:
            raise _Freeze(f"{_describe(node)}: einsum with an ellipsis or an implicit output")
        inputs, output = equation.split("->")
        subscripts = inputs.split(",")
        if len(operands) == 2 == len(subscripts):
            linear = self._einsum_linear(node, labels, operands, subscripts, output)
            if linear is not None:
                return linear
        if len(subscripts) != len(operands) or any(
            len(subscripts[i]) <= lab.axis for i, lab in found
        ):
            raise _Freeze(f"{_describe(node)}: einsum subscripts that do not match the operands")
        letters = {subscripts[i][lab.axis] for i, lab in found}
        if len(letters) != 1:
            raise _Freeze(f"{_describe(node)} mixes channel axes")
        (letter,) = letters
        if letter not in output:
            raise _Freeze(f"{_describe(node)}: einsum sums over channels")
        result = _Label(output.index(letter), list(found[0][1].slots))
        for i, t in enumerate(operands):
            if subscripts[i].count(letter) > 1:
                raise _Freeze(f"{_describe(node)}: einsum takes a diagonal of channels")
            lab = labels.get(t) if isinstance(t, fx.Node) else None
            if isinstance(lab, _Label):
                if not self._unify(result, lab):
                    raise _Freeze(f"{_describe(node)}: channel sizes differ")
            elif letter in subscripts[i]:
                s = _shape(t) if isinstance(t, fx.Node) else tuple(getattr(t, "shape", ()))
                if s is None or s[subscripts[i].index(letter)] != 1:
                    raise _Freeze(f"{_describe(node)} combines channels with an untracked tensor")
        return result

    def _einsum_linear(
        self,
        node: fx.Node,
        labels: dict[fx.Node, Any],
        operands: list[Any],
        subscripts: list[str],
        output: str,
    ) -> _Label | None:
        """``torch.einsum("bti,oi->bto", x, W)`` and the like: a 2-D parameter one of whose
        indices is summed with ``x`` and the other kept in the output is a linear layer
        (:meth:`_weight_product`); None for any other einsum."""
        for w in (1, 0):
            matrix, x = self._parameter_matrix(operands[w]), operands[1 - w]
            sw, sx = subscripts[w], subscripts[1 - w]
            if matrix is None or self._parameter_matrix(x) is not None or len(set(sw)) != 2:
                continue
            summed = [c for c in sw if c in sx and c not in output]
            kept = [c for c in sw if c in output and c not in sx]
            if len(summed) == 1 == len(kept) and len(sx) == len(set(sx)):
                p, transposed = matrix
                in_axis = sw.index(summed[0]) ^ int(transposed)
                axes = (sx.index(summed[0]), output.index(kept[0]))
                return self._weight_product(node, labels, x, p, in_axis, *axes)
        return None

    def _permute(self, node: fx.Node, labels: dict[fx.Node, Any], dims: Any) -> Any:
        label = self._in(node, labels)
        if label is None:
            return None
        nd = len(_shape(node) or ())
        dims = [int(d) % nd for d in dims]
        return _Label(dims.index(label.axis), label.slots)

    def _method_rule(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        name = str(node.target)
        a: Any = node.args
        if name in _FILLED_METHODS:
            return self._filled(node)
        if _reads_shape_only(node):
            return None
        name = _INPLACE_METHODS.get(name, name)
        if name in _ELEMENTWISE_METHODS:
            return self._passthrough(node, labels)
        if name in _MULTI_OPERAND:
            return self._multi_operand(node, labels, name)
        if name in _BINARY_METHODS:
            if name in _DIVISION_METHODS:
                self._note_divisor(a[1] if len(a) > 1 else node.kwargs.get("other"))
            return self._binary(node, labels, a[:2])
        if name in ("matmul", "mm", "bmm"):
            return self._matmul(node, labels)
        if name in ("index_add", "index_add_"):
            return self._index_add(node, labels)
        if name in ("view", "reshape", "flatten", "unsqueeze", "squeeze"):
            return self._reshape(node, labels)
        if name == "unflatten":
            return self._unflatten(node, labels)
        if name in ("expand", "expand_as"):
            label = self._expand(node, labels)
            return self._shaped_as(node, labels, label) if name == "expand_as" else label
        if name in ("repeat", "tile"):  # SigLIP's probe.repeat(batch, 1, 1): other axes only
            label, src, out = self._in(node, labels), _shape(node.args[0]), _shape(node)
            if label is None:
                return None
            if src is None or out is None or len(out) < len(src):
                raise _Freeze(f"{_describe(node)}: unknown shapes")
            axis = label.axis + len(out) - len(src)
            if out[axis] != src[label.axis]:
                raise _Freeze(f"{_describe(node)} repeats the channels")
            return _Label(axis, list(label.slots))
        if name == "reshape_as":
            label = self._reshape(node, labels)
            return None if label is None else self._shaped_as(node, labels, label)
        if name in ("transpose", "swapaxes", "swapdims"):
            return self._transpose(node, labels, a[1], a[2])
        if name == "t":
            return self._reversed(node, labels)
        if name == "permute":
            dims = a[1] if len(a) == 2 and isinstance(a[1], (tuple, list)) else a[1:]
            return self._permute(node, labels, dims)
        if name in _ALONG_AXES_METHODS:
            return self._along(node, labels, name)
        if name in _REDUCTIONS or name in _PAIR_REDUCTIONS:
            return self._reduction(node, labels, name)
        if name == "tensor_split":
            return self._tensor_split(node, labels)
        if name in ("split", "chunk"):
            dim = a[2] if len(a) > 2 else _kw(node).get("dim", 0)
            sizes = a[1]
            if name == "chunk":
                sizes = self._chunk_sizes(node, int(sizes), int(dim))
            return self._split(node, labels, sizes, int(dim), name == "chunk")
        if name == "softmax":
            x = self._in(node, labels)
            dim = a[1] if len(a) > 1 else _kw(node).get("dim")
            if x is not None and (dim is None or int(dim) % len(_shape(node) or (1,)) == x.axis):
                raise _Freeze(f"{_describe(node)}: softmax over channels")
            return x
        if name == "unbind":
            return self._unbind(node, labels, a[1] if len(a) > 1 else _kw(node).get("dim", 0))
        if name in ("select", "narrow", "index_select"):
            return self._select(node, labels, a[1] if len(a) > 1 else _kw(node).get("dim"))
        raise _Freeze(f"{_describe(node)}: unsupported method")

    def _shaped_as(self, node: fx.Node, labels: dict[fx.Node, Any], label: _Label) -> _Label:
        """``x.reshape_as(other)`` / ``x.expand_as(other)`` with channels ``label`` in the
        result: ``other`` sizes them, so it must hold the same channels on that axis (they
        are unified); a shape taken from a tensor without them would not follow the pruning."""
        other = node.args[1] if len(node.args) > 1 else _kw(node).get("other")
        lab = labels.get(other) if isinstance(other, fx.Node) else None
        if not (isinstance(lab, _Label) and lab.axis == label.axis and self._unify(label, lab)):
            raise _Freeze(
                f"{_describe(node)} takes the size of its channels from a tensor without them"
            )
        return label

    def _select(self, node: fx.Node, labels: dict[fx.Node, Any], dim: Any) -> Any:
        """``x.select(dim, i)`` (drops ``dim``), ``x.narrow(dim, start, n)`` or
        ``x.index_select(dim, index)`` of another axis than the channels' (an RNN's last time
        step, XGLM's rows of a position table): the channels pass; of theirs: frozen."""
        label, src = self._in(node, labels), _shape(node.args[0])
        if label is None:
            return None
        if src is None or not isinstance(dim, int):
            raise _Freeze(f"{_describe(node)} at an unknown axis")
        dim %= len(src)
        if dim == label.axis:
            raise _Freeze(f"{_describe(node)} takes part of the channel axis")
        drops = str(getattr(node.target, "__name__", node.target)) == "select"
        return _Label(label.axis - (drops and label.axis > dim), list(label.slots))

    def _tensor_split(self, node: fx.Node, labels: dict[fx.Node, Any]) -> Any:
        """``torch.tensor_split(x, indices_or_sections, dim)`` along another axis than the
        channels (Mamba's split of the sequence): every piece keeps them. Cutting the channel
        axis at positions written in ``forward`` freezes them."""
        args = _named_args(node, ("input", "indices_or_sections", "dim"))
        label, src = self._in(node, labels), _shape(args.get("input"))
        if label is None or src is None:
            return None
        cuts, dim = args.get("indices_or_sections"), args.get("dim", 0)
        if cuts is None:
            cuts = args.get("sections", args.get("indices"))
        if not isinstance(dim, int) or dim % len(src) == label.axis:
            raise _Freeze(f"{_describe(node)} cuts the channel axis")
        if isinstance(cuts, int):
            pieces = cuts
        elif isinstance(cuts, (list, tuple)):
            pieces = len(cuts) + 1
        else:
            raise _Freeze(f"{_describe(node)}: unknown pieces")
        return [_Label(label.axis, list(label.slots)) for _ in range(pieces)]

    def _unbind(self, node: fx.Node, labels: dict[fx.Node, Any], dim: Any) -> Any:
        """``x.unbind(dim)`` (timm's ``q, k, v = qkv.unbind(0)``): every slice keeps the
        channels when ``dim`` is another axis; slicing the channel axis freezes them."""
        label, src = self._in(node, labels), _shape(node.args[0])
        if label is None or src is None:
            return None
        dim = int(dim) % len(src)
        if dim == label.axis:
            raise _Freeze(f"{_describe(node)} unbinds the channel axis")
        axis = label.axis - (label.axis > dim)
        return [_Label(axis, list(label.slots)) for _ in range(src[dim])]

    # ------------------------------------------------------------------ groups
    def _make_groups(self) -> list[Group]:
        """Groups from the slot union-find, vectorized over slots (numpy); Python runs once per
        member and per group, never per channel slot (except to build the ``positions`` lists).

        A group is a connected set of producer roots (two roots are connected when one producer
        member holds both); groups and their channels are numbered in order of first appearance
        over the producer members' slots, members are attached in member order (within a
        member, in order of the first slot that hits each group).
        """
        root = _roots(self._uf)
        members = self._members
        n_mem = len(members)
        lengths = np.fromiter((len(m.slots) for m in members), dtype=np.int64, count=n_mem)
        starts = np.zeros(n_mem + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        flat = np.fromiter(
            itertools.chain.from_iterable(m.slots for m in members),
            dtype=np.int64,
            count=int(starts[-1]),
        )
        flat_root = root[flat]
        entry_member = np.repeat(np.arange(n_mem, dtype=np.int64), lengths)
        producer = np.fromiter(
            (m.role in ("out", "embed") for m in members), dtype=bool, count=n_mem
        )
        is_prod = producer[entry_member]
        p_root, p_member = flat_root[is_prod], entry_member[is_prod]
        # producer members sharing a root are linked; a root's component is its first member's
        uniq, first = np.unique(p_root, return_index=True)
        first_member = np.full(len(root), -1, dtype=np.int64)
        first_member[uniq] = p_member[first]
        link = _UnionFind(n_mem)
        other = first_member[p_root]
        diff = other != p_member
        codes = np.unique(p_member[diff] * n_mem + other[diff])  # each linked pair once
        link.unite((codes // n_mem).tolist(), (codes % n_mem).tolist())
        member_comp = _roots(link)
        # roots in order of first appearance; groups (components) likewise
        ordered = uniq[np.argsort(first, kind="stable")]
        comp = member_comp[first_member[ordered]]
        comps, comp_first = np.unique(comp, return_index=True)
        n_groups = len(comps)
        width = max(n_groups, 1)  # codes member * width + group identify (member, group) pairs
        comp_gid = np.full(max(n_mem, 1), -1, dtype=np.int64)
        comp_gid[comps[np.argsort(comp_first, kind="stable")]] = np.arange(n_groups)
        root_gid = comp_gid[comp]
        # kept channels leave their group, unless all of its channels are kept (then frozen)
        kept = np.zeros(len(root), dtype=bool)
        kept[root[np.fromiter(self._kept, dtype=np.int64, count=len(self._kept))]] = True
        all_kept = np.ones(n_groups, dtype=bool)
        all_kept[root_gid[~kept[ordered]]] = False
        stays = ~kept[ordered] | all_kept[root_gid]
        ordered, root_gid = ordered[stays], root_gid[stays]
        by_group = np.argsort(root_gid, kind="stable")
        g_roots, g_ids = ordered[by_group], root_gid[by_group]
        g_starts = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(g_ids, minlength=n_groups), out=g_starts[1:])
        slot_gid = np.full(len(root), -1, dtype=np.int64)
        slot_gid[g_roots] = g_ids
        slot_pos = np.full(len(root), -1, dtype=np.int64)
        slot_pos[g_roots] = np.arange(len(g_roots)) - g_starts[g_ids]
        # frozen: the reason of the last frozen slot of each root; a group takes the reason of
        # its first frozen root
        held = {**self._kept, **self._frozen}
        f_roots = root[np.fromiter(held, dtype=np.int64, count=len(held))]
        frozen = dict(zip(f_roots.tolist(), held.values(), strict=True))
        is_frozen = np.zeros(len(root), dtype=bool)
        is_frozen[f_roots] = True
        hit = np.flatnonzero(is_frozen[g_roots])
        hit_groups, hit_first = np.unique(g_ids[hit], return_index=True)
        reasons = {
            int(gi): frozen[int(r)]
            for gi, r in zip(hit_groups.tolist(), g_roots[hit[hit_first]].tolist(), strict=True)
        }
        producers: list[list[str]] = [[] for _ in range(n_groups)]
        for i in np.flatnonzero(producer & (lengths > 0)).tolist():
            m = members[i]
            label = m.module if m.role == "out" else f"{m.module}.{m.param}".strip(".")
            names = producers[int(comp_gid[member_comp[i]])]
            if label not in names:
                names.append(label)
        groups: list[Group] = []
        for gi in range(n_groups):
            reason = reasons.get(gi, "")
            roots = g_roots[g_starts[gi] : g_starts[gi + 1]].tolist()
            groups.append(
                Group(
                    index=gi,
                    size=len(roots),
                    members=[],
                    producers=producers[gi],
                    prunable=not reason,
                    reason=reason,
                    roots=roots,
                )
            )
        # members: every (member, group) pair, channels' positions along the member's dim
        e_gid = slot_gid[flat_root]
        hit = np.flatnonzero(e_gid >= 0)
        e_member, e_gid = entry_member[hit], e_gid[hit]
        e_chan, e_pos = slot_pos[flat_root[hit]], hit - starts[e_member]
        pairs, pair_first, pair_of = np.unique(
            e_member * width + e_gid, return_index=True, return_inverse=True
        )
        pair_order = np.argsort(pair_first, kind="stable")
        rank = np.empty(len(pairs), dtype=np.int64)
        rank[pair_order] = np.arange(len(pairs))
        e_rank = rank[pair_of.reshape(-1)]
        order = np.lexsort((e_chan, e_rank))  # stable: positions stay ascending per channel
        e_chan, e_pos = e_chan[order], e_pos[order]
        e_rank = e_rank[order]
        p_len = np.bincount(e_rank, minlength=len(pairs))
        p_starts = np.zeros(len(pairs) + 1, dtype=np.int64)
        np.cumsum(p_len, out=p_starts[1:])
        # a pair is "one position per channel" when it holds group.size entries, none repeated
        repeated = (e_rank[1:] == e_rank[:-1]) & (e_chan[1:] == e_chan[:-1])
        p_repeats = np.bincount(e_rank[1:][repeated], minlength=len(pairs))
        p_codes = pairs[pair_order]
        g_size = g_starts[1:] - g_starts[:-1]
        simple = (p_len == g_size[p_codes % width]) & (p_repeats == 0)
        e_pos.flags.writeable = False  # each member's positions are a view of it
        bounds = p_starts.tolist()
        for r, (code, one) in enumerate(zip(p_codes.tolist(), simple.tolist(), strict=True)):
            m = members[code // width]
            group = groups[code % width]
            a, b = bounds[r], bounds[r + 1]
            if one:
                positions = Positions(e_pos[a:b])
            else:
                cuts = np.zeros(group.size + 1, dtype=np.int64)
                np.cumsum(np.bincount(e_chan[a:b], minlength=group.size), out=cuts[1:])
                positions = Positions(e_pos[a:b], cuts)
            group.members.append(GroupMember(m.module, m.param, m.dim, m.role, m.kind, positions))
        for name, slots, heads in self._mha:
            hits = slot_gid[root[np.asarray(slots, dtype=np.int64)]]
            gis = set(hits[hits >= 0].tolist())
            for gi in gis:
                g = groups[gi]
                if len(gis) != 1 or g.size != len(slots):
                    g.prunable, g.reason = False, f"{name}: attention embedding spans groups"
                g.multiple = math.lcm(g.multiple, heads)
                g.attention.append(name)
        for name, slots in self._bare_norms.items():
            at = root[np.asarray(slots, dtype=np.int64)]
            gis = set(slot_gid[at][slot_gid[at] >= 0].tolist())
            if len(gis) == 1 and (slot_gid[at] >= 0).all():
                groups[gis.pop()].bare_norms[name] = slot_pos[at]
            for gi in gis:  # parts of several groups: one normalized_shape cannot follow them
                g = groups[gi]
                g.prunable, g.reason = (
                    False,
                    f"{name}: a layer norm over channels of several groups",
                )
        for slots, kv in self._segments:
            self._segment(groups, root[np.asarray(slots, dtype=np.int64)], kv, slot_gid, slot_pos)
        for slots, unit in self._aligned:
            hits = slot_gid[root[np.asarray(slots, dtype=np.int64)]]
            for gi in set(hits[hits >= 0].tolist()):
                if groups[gi].size % unit == 0:
                    groups[gi].multiple = math.lcm(groups[gi].multiple, unit)
        # hooks on the model itself (e.g. lottery masks' pre-hook) act on what the trace saw
        root_hooked = isinstance(self.model, nn.Module) and _has_forward_hooks(self.model)
        # and global ones (torch.nn.modules.module.register_module_forward_hook) on every module
        global_hooked = _global_forward_hooks()
        for g in groups:
            if g.prunable and g.size <= g.multiple:
                g.prunable, g.reason = False, "too few channels to remove whole units"
            if g.prunable and global_hooked:
                g.prunable, g.reason = False, _GLOBAL_HOOKS
            if g.prunable and root_hooked:
                g.prunable, g.reason = False, "forward hooks on the model, unseen by the trace"
        self.width_ties = _tie_widths(
            self._count_ties,
            self._count_ratios,
            self._ratio_nodes,
            self._size_slots,
            groups,
            root,
            slot_gid,
        )
        # each rewritable size attribute: (group, channel) of every entry of its axis
        self.size_attributes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for key, slots in self._size_slots.items():
            at = root[np.asarray(slots, dtype=np.int64)]
            self.size_attributes[key] = (slot_gid[at], slot_pos[at])
        return groups

    @staticmethod
    def _segment(
        groups: list[Group], heads: np.ndarray, kv: int, slot_gid: np.ndarray, slot_pos: np.ndarray
    ) -> None:
        """Set :attr:`Group.segments` of the group of query heads (roots ``heads``, the
        ``kv`` key/value heads' runs in order) under ``gqa="queries"``; freeze it where the
        heads are not exactly one group's channels, or another attention splits them otherwise."""
        hit = slot_gid[heads]
        gis = set(hit[hit >= 0].tolist())
        pos = slot_pos[heads]
        segments = np.arange(len(heads)) // (len(heads) // kv)
        g = groups[hit[0]] if len(gis) == 1 and (hit >= 0).all() else None
        if g is None or g.size != len(heads) or len(set(pos.tolist())) != len(heads):
            reason = "gqa='queries': query heads grouped with other channels"
        else:
            ordered = np.empty(g.size, dtype=np.int64)
            ordered[pos] = segments
            if g.segments is None or np.array_equal(g.segments, ordered):
                g.segments, g.multiple = ordered, math.lcm(g.multiple, kv)
                return
            reason = "gqa='queries': query heads read two sets of key/value heads"
        for gi in gis:
            groups[gi].prunable = False
            groups[gi].reason = groups[gi].reason or reason

    # ------------------------------------------------------------------ helpers
    def prunable_groups(self) -> list[Group]:
        """The groups that may lose channels."""
        return [g for g in self.groups if g.prunable]

    def layer_groups(self, name: str) -> list[Group]:
        """Groups whose producers include module (or parameter) ``name``."""
        return [g for g in self.groups if name in g.producers]

    def __repr__(self) -> str:
        n = len(self.prunable_groups())
        return (
            f"DependencyGraph({type(self.model).__name__}: {len(self.groups)} groups, {n} prunable)"
        )


def _tie_widths(
    count_ties: list[tuple[list[int], list[int], fx.Node]],
    count_ratios: list[tuple[list[int], tuple[str, str], fx.Node]],
    ratio_nodes: dict[fx.Node, tuple[str, str]],
    size_slots: dict[tuple[str, str], list[int]],
    groups: list[Group],
    root: np.ndarray,
    slot_gid: np.ndarray,
) -> list[dict[int, int]]:
    """The width ties of the reshapes that size one group's channels with another group's
    count (``count_ties``: the slots counted, the slots sized, the reshape; see
    :attr:`DependencyGraph.width_ties`), merged into sets where they share a group. A tie
    whose channels are not whole groups, each channel the same number of entries, freezes
    both sides, as does a set with no common width below the full one; a set holding a
    frozen group freezes the rest. ``count_ratios`` (the slots counted, the size attribute,
    the node) are the ``C // self.num_heads`` of attributes that size channels (``size_slots``):
    a constant where the channels counted and those the attribute sizes are in one tie, else
    both freeze; the channels of an attribute that divides another size (``ratio_nodes`` not
    in ``count_ratios``: ``N // self.num_heads``) freeze."""

    def freeze(slots: list[int], reason: str) -> None:
        for gi in set(slot_gid[root[np.asarray(slots, dtype=np.int64)]].tolist()):
            if gi >= 0 and groups[gi].prunable:
                groups[gi].prunable, groups[gi].reason = False, reason

    def side(slots: list[int]) -> tuple[int, int] | None:
        at = root[np.asarray(slots, dtype=np.int64)]
        gids = np.unique(slot_gid[at])
        if len(gids) != 1 or gids[0] < 0:
            return None
        hits = np.unique(at, return_counts=True)[1]
        if len(hits) != groups[int(gids[0])].size or hits.min() != hits.max():
            return None
        return int(gids[0]), int(hits[0])

    ties: list[dict[int, Fraction]] = []  # group -> width, up to a common factor
    contradicted: set[int] = set()
    for counted, sized, node in count_ties:
        a, b = side(counted), side(sized)
        scale, rest = divmod(len(sized), len(counted))
        if a is None or b is None or rest:
            reason = (
                f"{_describe(node)}: sizes channels with a count of channels that are not "
                "one whole group"
            )
            freeze(counted, reason)
            freeze(sized, reason)
            continue
        if a[0] == b[0]:  # one group sized by its own count: only equal widths fit
            if a[1] * scale != b[1]:
                contradicted.add(a[0])
            continue
        tie = {a[0]: Fraction(a[1] * scale), b[0]: Fraction(b[1])}
        for other in [t for t in ties if t.keys() & tie.keys()]:
            ties.remove(other)
            shared = min(other.keys() & tie.keys())
            factor = other[shared] / tie[shared]
            scaled = {k: v * factor for k, v in tie.items()}
            contradicted.update(k for k in scaled.keys() & other.keys() if scaled[k] != other[k])
            tie = {**other, **scaled}
        ties.append(tie)
    counted_nodes = {node for _, _, node in count_ratios}
    for node, key in ratio_nodes.items():
        if node not in counted_nodes:
            freeze(
                size_slots[key],
                f"{_describe(node)} divides a size that is no channel count by the module "
                f"attribute {'.'.join(p for p in key if p)}; it would change with the pruning",
            )
    tie_of = {gi: i for i, tie in enumerate(ties) for gi in tie}
    for counted, key, node in count_ratios:
        at = slot_gid[root[np.asarray(size_slots[key], dtype=np.int64)]]
        heads = set(at[at >= 0].tolist())
        r = side(counted)
        if r is None or r[0] not in tie_of or any(tie_of.get(g) != tie_of[r[0]] for g in heads):
            reason = (
                f"{_describe(node)} divides a channel count by the module attribute "
                f"{'.'.join(p for p in key if p)}, and their widths are not tied; it would "
                "change with the pruning"
            )
            freeze(counted, reason)
            freeze(size_slots[key], reason)
    out = []
    for tie in ties:
        scale = math.lcm(*(w.denominator for w in tie.values()))
        widths = {k: int(w * scale) for k, w in tie.items()}
        d = math.gcd(*widths.values())
        widths = {k: w // d for k, w in sorted(widths.items())}
        full = {groups[k].size * w for k, w in widths.items()}
        step = math.lcm(*(w * groups[k].multiple for k, w in widths.items()))
        frozen = [groups[k] for k in widths if not groups[k].prunable]
        why = ""
        if contradicted & widths.keys() or len(full) != 1:
            why = "reshapes tie its kept width to other groups' in contradicting ways"
        elif frozen:
            why = (
                f"a reshape ties its kept width to group {frozen[0].name!r}, which cannot "
                f"be pruned ({frozen[0].reason})"
            )
        elif step >= min(full):
            why = "a reshape ties its kept width to other groups', and no smaller width fits all"
        if not why:
            out.append(widths)
        for k in widths:
            if why and groups[k].prunable:
                groups[k].prunable, groups[k].reason = False, why
    for k in contradicted - {k for t in ties for k in t}:
        if groups[k].prunable:
            groups[k].prunable = False
            groups[k].reason = "a reshape sizes its channels with their own count at another width"
    return out


def _reshape_channel_map(src: Sequence[int], out: Sequence[int], axis: int) -> tuple[int, int]:
    """Where channel axis ``axis`` of a ``src``-shaped tensor lands after a reshape to ``out``,
    and how many consecutive output entries each channel becomes: ``[B, C, H, W] -> [B, C*H*W]``
    with ``axis=1`` gives ``(1, H*W)``. Shared by the fx and ONNX graphs.

    Raises:
        ValueError: the reshape splits the channel axis or mixes it with preceding axes.
    """
    ends = _prefix_ends(out, math.prod(src[:axis]))
    k = ends[-1] if ends and src[axis] != 1 else ends[0] if ends else len(out)
    if k >= len(out) or out[k] % src[axis] != 0:
        raise ValueError("splits the channel axis")
    size, prod_in, m = out[k], src[axis], axis + 1
    while prod_in < size and m < len(src):
        prod_in *= src[m]
        m += 1
    if prod_in != size:
        raise ValueError("mixes channels with other axes")
    return k, size // src[axis]


def _strided_channels(
    src: Sequence[int], out: Sequence[int], axis: int, slots: Sequence[Any]
) -> tuple[int, list[Any]] | None:
    """``(k, out_slots)`` when a reshape of a ``src``-shaped tensor whose axis ``axis`` holds
    channels ``slots`` puts, on every entry of one output axis ``k``, a single channel, the
    same for every index of the other output axes; None otherwise.

    In flat (row-major) order a channel holds runs of ``stride`` entries that repeat every
    ``span`` entries (``slots`` periodic: :func:`_periodic`). Output axis ``k`` holds one
    channel per entry when its entries, ``t = prod(out[k + 1:])`` flat entries each, tile
    the runs (``t`` divides ``stride``) and each row of it covers whole periods (``span``
    divides ``t * out[k]``). ``[B, C, H, W] -> [B C n_h, p_h, n_w, p_w]`` (``H = n_h p_h``):
    entry ``(b C + c) n_h + i`` of axis 0 is channel ``c``; ``[B, H, W, 4, C] ->
    [B, H, W, 4 C]``: entry ``j C + c`` of axis 3 is."""
    base, inner = _periodic(slots)
    stride = math.prod(src[axis + 1 :]) * inner
    span = stride * len(base)
    for k in range(len(out)):
        t = math.prod(out[k + 1 :])
        if stride % t == 0 and (t * out[k]) % span == 0:
            step = stride // t
            return k, [base[(j // step) % len(base)] for j in range(out[k])]
    return None


def _reshaped_runs(
    src: Sequence[int], out: Sequence[int], axis: int
) -> tuple[int, int, int, int] | None:
    """The smallest runs of axes ``src[a:b]`` (holding ``axis``) and ``out[c:d]`` that a reshape
    maps onto each other (equal element counts before and after), unit axes left out of
    ``out[c:d]``; None when the sizes differ."""
    ps, po = np.cumprod([1, *src]).tolist(), np.cumprod([1, *out]).tolist()
    if ps[-1] != po[-1]:
        return None
    common = set(ps) & set(po)
    a = max(i for i in range(axis + 1) if ps[i] in common)
    b = min(i for i in range(axis + 1, len(src) + 1) if ps[i] in common)
    c = max(j for j in range(len(po)) if po[j] == ps[a])
    d = min(j for j in range(len(po)) if po[j] == ps[b])
    return (a, b, c, d) if c < d else None


def _merged_heads(
    src: Sequence[int], out: Sequence[int], x: _Label, uf: _UnionFind, unite: bool
) -> _Label | None:
    """A reshape that moves channels next to other axes, e.g. ``[N, B, D] -> [N, B*H, hd]``
    (heads merged into the batch axis: ``nn.MultiheadAttention``'s export, fairseq-style
    attention's ``view(T, B * self.num_heads, self.head_dim)``) or back ``[B*H, N, hd] -> [B,
    H, N, hd]``: the label lands on the one output axis whose index alone determines the slot
    (with ``unite``: after uniting each head's ``hd`` channels in ``uf``)."""
    seg = _reshaped_runs(src, out, x.axis)
    if seg is None:
        return None
    a, b, c, d = seg
    seg_src, seg_out = src[a:b], out[c:d]
    n = len(x.slots)
    if math.prod(seg_src) > 1 << 20:
        return None
    index = np.arange(n).reshape([n if j == x.axis - a else 1 for j in range(len(seg_src))])
    grid = np.broadcast_to(index, seg_src).reshape(seg_out)
    slots = np.asarray(x.slots)
    units = sorted({e for e in seg_out if 1 < e < n and n % e == 0}) if unite else [1]
    for unit in units:
        ids = slots[grid] if unit == 1 else grid // unit
        for j, extent in enumerate(seg_out):
            flat = np.moveaxis(ids, j, 0).reshape(extent, -1)
            if not (flat == flat[:, :1]).all():
                continue
            if unit == 1:
                return _Label(c + j, flat[:, 0].tolist())
            uf.unite([x.slots[i // unit * unit] for i in range(n)], x.slots[:n])
            return _Label(c + j, [x.slots[int(u) * unit] for u in flat[:, 0]])
    return None


def _periodic(slots: Sequence[Any]) -> tuple[list[Any], int]:
    """``(base, inner)`` with ``slots[j] == base[(j // inner) % len(base)]`` for every ``j``
    and ``len(slots)`` a multiple of ``inner * len(base)``: the shortest such description,
    found from the first run of equal slots (``(slots, 1)`` when none fits)."""
    n, inner = len(slots), 1
    while inner < n and slots[inner] == slots[0]:
        inner += 1
    base = list(slots[::inner])
    for p in range(1, len(base) + 1):
        if n % (inner * p) == 0 and all(slots[j] == base[(j // inner) % p] for j in range(n)):
            return base[:p], inner
    return list(slots), 1


def _count_fraction(bound: Any, tensor: Any) -> Fraction | None:
    """``bound`` as a fraction of ``tensor``'s element count: ``k / d`` when it is traced as
    ``tensor.numel() // d`` times an integer ``k``, 0 for a literal 0; else None."""
    if type(bound) is int and bound == 0:
        return Fraction(0)
    k: Any = 1
    if isinstance(bound, fx.Node) and bound.target is operator.mul and len(bound.args) == 2:
        a, b = bound.args
        k, bound = (a, b) if type(a) is int else (b, a)
        if type(k) is not int:
            return None
    if not (
        isinstance(bound, fx.Node)
        and bound.target is operator.floordiv
        and len(bound.args) == 2
        and type(bound.args[1]) is int
        and bound.args[1] > 0
    ):
        return None
    count, d = bound.args[0], int(bound.args[1])
    if not (
        isinstance(count, fx.Node)
        and count.op == "call_method"
        and count.target == "numel"
        and count.args[0] is tensor
    ):
        return None
    return Fraction(k, d)


def _fixed_span(slots: Sequence[int], bound: int) -> list[int]:
    """The slots between a literal bound and the end it counts from (``slots[bound:]`` for a
    negative bound, ``slots[:bound]`` otherwise): kept, they leave the bound between the same
    channels once the others are pruned. Shared by the fx and ONNX graphs."""
    return list(slots[bound:] if bound < 0 else slots[:bound])


def _head_split(src: Sequence[int], out: Sequence[int], axis: int) -> tuple[int, int, int] | None:
    """``(k, blocks, d)`` when a reshape splits channel axis ``axis`` of ``src`` into the
    consecutive axes ``out[k], out[k + 1]`` (heads, channels per head ``d``; ``blocks`` 1), or
    ``out[k - 1], out[k], out[k + 1]`` (``blocks`` fused blocks of heads, timm's
    ``reshape(B, N, 3, self.num_heads, self.head_dim)``), and keeps every other axis's extent;
    None otherwise."""
    rest = math.prod(src[axis + 1 :])
    for k in _prefix_ends(out, math.prod(src[:axis])):
        splits = [(1, k)] + ([(out[k], k + 1)] if out[k] >= 2 else [])
        for blocks, first in splits:  # (heads, d), then (blocks, heads, d)
            last = first + 1
            if last >= len(out) or out[first] < 2 or blocks * out[first] * out[last] != src[axis]:
                continue
            if math.prod(out[last + 1 :]) == rest:
                return first, blocks, out[last]
    return None


def _prefix_ends(out: Sequence[int], pre: int) -> list[int]:
    """Every ``k < len(out)`` with ``prod(out[:k]) == pre``: where the axes that hold ``pre``
    entries before the channels can end in ``out``. Several when singletons follow them
    (``[B, 1, C] -> [B, 1, H, d]``, one query token: ``k`` 1 or 2)."""
    acc, k = 1, 0
    while k < len(out) and acc < pre:
        acc *= out[k]
        k += 1
    if acc != pre or k >= len(out):
        return []
    ends = [k]
    while ends[-1] < len(out) - 1 and out[ends[-1]] == 1:
        ends.append(ends[-1] + 1)
    return ends


# a rule's result for an op that sums its inputs' channels away (``q @ k^T`` in head_dims mode)
_CONTRACTED = object()
# in place of a key / value operand's label: kept channels of a key/value head that several
# query heads read, checked to follow their pruning (see ``DependencyGraph._shared_key_value``)
_SERVED = object()

_TRANSPOSES = (torch.transpose, torch.swapaxes, torch.swapdims)
# grouped matrix products (torch's private op and its public successor, where it exists)
_GROUPED_MM = tuple(
    f for f in (getattr(torch, "_grouped_mm", None), getattr(_F, "grouped_mm", None)) if f
)


# methods that only change a tensor's dtype or device
_CASTS = frozenset(("float", "double", "half", "bfloat16", "to", "type"))


def _uncast(node: Any) -> Any:
    """``node`` without the dtype or device casts applied to it (``w.float()``,
    ``w.to(torch.float32)``, ``w.type(torch.float32)``): the tensor they copy."""
    while (
        isinstance(node, fx.Node)
        and node.op == "call_method"
        and node.target in _CASTS
        and isinstance(node.args[0], fx.Node)
        and not any(isinstance(a, fx.Node) for a in (*node.args[1:], *node.kwargs.values()))
    ):
        node = node.args[0]
    return node


def _selects_one(node: fx.Node) -> bool:
    """Whether the getitem ``node`` picks one entry of its input's first axis (an expert's
    matrix, ``w[e]`` with ``e`` an ``int`` or a 0-d tensor)."""
    index = node.args[1]
    return isinstance(index, int) or (isinstance(index, fx.Node) and _shape(index) == ())


def _transposes_matrix(node: fx.Node) -> bool:
    """Whether ``node`` transposes a matrix (``m.T``, ``m.mT``, ``m.t()``, ``torch.t(m)``,
    ``m.transpose(0, 1)``, ``torch.swapaxes(m, -1, -2)``...; the conjugating ``H`` / ``mH``
    too: channels do not care)."""
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in ("T", "mT", "H", "mH")
    if node.op == "call_function" and node.target is torch.t:
        return True
    if node.op == "call_method" and node.target == "t":
        return True
    swaps = node.op == "call_method" and node.target in ("transpose", "swapaxes", "swapdims")
    if swaps or (node.op == "call_function" and node.target in _TRANSPOSES):
        d = [a for a in node.args[1:3] if isinstance(a, int)]  # of a matrix: (0, 1), (-2, -1)...
        return len(d) == 2 and (d[0] + d[1]) % 2 == 1
    return False


class _Freeze(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kw(node: fx.Node) -> Any:
    return node.kwargs


def _named_args(node: fx.Node, names: Sequence[str]) -> dict[str, Any]:
    """The node's arguments by parameter name (positional ones named by ``names``)."""
    return {**dict(zip(names, node.args, strict=False)), **node.kwargs}


def _compares_own_size(user: fx.Node, size: fx.Node, labels: dict[fx.Node, Any]) -> bool:
    """Whether ``user`` compares a tensor's ``size()`` with a tuple that holds ``size`` at
    the tensor's channel axis, and nowhere else (``attn_weights.size() != (bsz *
    self.num_heads, tgt_len, src_len)``)."""
    if user.target not in (operator.eq, operator.ne) or len(user.args) != 2:
        return False
    whole, items = user.args
    if isinstance(whole, tuple):
        whole, items = items, whole
    if not (isinstance(whole, fx.Node) and isinstance(items, tuple)):
        return False
    if (whole.op, whole.target, len(whole.args)) != ("call_method", "size", 1):
        return False
    source = whole.args[0]
    label = labels.get(source) if isinstance(source, fx.Node) else None
    return isinstance(label, _Label) and [i for i, v in enumerate(items) if v is size] == [
        label.axis
    ]


def _scaled_attribute(size: Any) -> _SizeInt | None:
    """The module attribute of a product ``traced size * attribute`` (``bsz *
    self.num_heads``), else None."""
    if not (isinstance(size, fx.Node) and size.target is operator.mul and not size.kwargs):
        return None
    attrs = [a for a in size.args if isinstance(a, _SizeInt)]
    others = [a for a in size.args if isinstance(a, fx.Node)]
    if len(attrs) != 1 or len(others) != 1 or len(size.args) != 2:
        return None
    attr = attrs[0]
    return attr if attr.divisor == attr.multiplier == 1 else None


def _requested_size(node: fx.Node, axis: int) -> _SizeInt | _SizeSum | None:
    """The size a view / reshape / expand asks for on the channel axis when it is a module
    attribute (``x.view(B, N, self.heads, self.head_dim)``: see
    :meth:`DependencyGraph._resolve_size_attributes`); None when it follows the input (``-1``,
    a traced size). Any other constant of the traced code (``token.expand(B, 1, 768)``, a size
    computed from attributes) freezes the channels: the pruned model runs that code again, so
    the constant would no longer match."""
    sizes = _reshape_sizes(node)  # None for flatten, expand_as: no sizes
    out = _shape(node)
    if sizes is None or out is None or len(sizes) != len(out):
        return None
    size = _constant_size(sizes[axis])
    if isinstance(size, _SizeInt) or (isinstance(size, _SizeSum) and len(size.terms) == 1):
        return size
    if size is not None and size != -1:
        raise _Freeze(
            f"{_describe(node)}: size {size} on the channel axis is a constant of forward "
            "(e.g. a module attribute); it would not follow the pruning"
        )
    return None


def _reshape_sizes(node: fx.Node) -> list[Any] | None:
    """The sizes a view / reshape / expand asks for, one per output axis as far as they can be
    read back (``view(*x.shape[:2], -1)`` and ``view(x.size()[:-1] + (C,))`` expanded); None
    for other ops."""
    if node.target in ("unflatten", torch.unflatten):  # the split axis's sizes, others traced
        src, args = _shape(node.args[0]), _named_args(node, ("input", "dim", "sizes"))
        if src is None or not isinstance(args.get("sizes"), (tuple, list)):
            return None
        dim = int(args["dim"]) % len(src)
        return [_TRACED] * dim + list(args["sizes"]) + [_TRACED] * (len(src) - dim - 1)
    if node.op == "call_method" and node.target in ("view", "reshape", "expand"):
        sizes: Any = node.args[1:] or (node.kwargs.get("size", node.kwargs.get("shape")),)
    elif node.op == "call_function" and node.target in (torch.reshape, torch.broadcast_to):
        sizes = node.args[1:2] or (node.kwargs.get("shape", node.kwargs.get("size")),)
    else:
        return None
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, fx.Node)):
        items = _size_items(sizes[0])
        return [sizes[0]] if items is None and isinstance(sizes[0], fx.Node) else items
    return list(sizes)


def _in_tuple(node: fx.Node, value: fx.Node) -> bool:
    """Whether ``node`` (an ``add``) builds a size tuple: ``value`` is an element of a literal
    tuple among its arguments, or it concatenates tuples rather than adding numbers."""
    literal = [a for a in node.args if isinstance(a, (tuple, list))]
    return any(any(v is value for v in a) for a in literal) or (
        bool(literal) and all(isinstance(a, (tuple, list, fx.Node)) for a in node.args)
    )


def _size_items(value: Any) -> list[Any] | None:
    """The entries of a traced size tuple: ``x.size()[:-2] + (self.all_head_size,)`` gives
    ``[<traced>, <traced>, 64]``; None when the tuple cannot be read back."""
    if isinstance(value, (tuple, list)):
        return list(value)
    if not isinstance(value, fx.Node):
        return None
    if value.op == "call_method" and value.target == "size" and len(value.args) == 1:
        src = _shape(value.args[0])
        return None if src is None else [_TRACED] * len(src)
    if value.op == "call_function" and value.target is getattr and value.args[1] == "shape":
        src = _shape(value.args[0])
        return None if src is None else [_TRACED] * len(src)
    if value.op == "call_function" and value.target is operator.add:
        parts = [_size_items(a) for a in value.args]
        return None if any(p is None for p in parts) else [i for p in parts for i in p or ()]
    if value.op == "call_function" and value.target is operator.getitem:
        items, idx = _size_items(value.args[0]), value.args[1]
        return items[idx] if items is not None and isinstance(idx, slice) else None
    return None


_TRACED = object()  # a size read from a traced tensor: it follows the pruning


def _literal_size(node: fx.Node, axis: int) -> bool:
    """Whether the view / reshape ``node`` asks for a literal size (a plain ``int`` written
    in ``forward``, not a module attribute) on output axis ``axis``."""
    sizes = _reshape_sizes(node)
    if sizes is None or not -len(sizes) <= axis < len(sizes):
        return False
    size = sizes[axis]
    return type(size) is int and size > 0


def _merged_back(node: fx.Node) -> bool:
    """Whether the output of the reshape ``node`` reaches, through axis moves only, a reshape
    back to its input's rank (the channel shuffle's transpose and view back); attention
    heads go on to a product instead."""
    rank, user = len(_shape(node.args[0]) or ()), node
    while len(user.users) == 1:
        (user,) = user.users
        name = user.target if user.op == "call_method" else getattr(user.target, "__name__", "")
        if name not in ("transpose", "permute", "contiguous"):
            return name in ("view", "reshape", "flatten") and len(_shape(user) or ()) == rank
    return False


def _constant_size(value: Any) -> int | None:
    """The Python int a size argument holds, also through indexing a traced size tuple
    (``view(*shape)`` unpacks ``shape[i]``); None for a traced or unknown size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, fx.Node)
        and value.op == "call_function"
        and value.target is operator.getitem
        and isinstance(value.args[1], int)
    ):
        items = _size_items(value.args[0])
        if items is not None and -len(items) <= value.args[1] < len(items):
            return _constant_size(items[value.args[1]])
    return None


def _metadata_only(node: fx.Node) -> bool:
    """A parameter read only for its dtype, device or shape (HF ViT's
    ``projection.weight.dtype``), or not at all: not a use of its channels."""
    return all(_reads_metadata(u) for u in node.users)


_SHAPE_ONLY_METHODS = frozenset(
    {"size", "dim", "numel", "new_zeros", "new_ones", "new_empty", "new_full"}
)


def _offset_parameter(node: fx.Node) -> fx.Node:
    """The parameter read by ``node`` when it is that parameter plus a number (Nemotron's
    ``self.weight + 1.0``: same channels); ``node`` itself otherwise."""
    a = node.args
    adds = node.target in (operator.add, torch.add) or (
        node.op == "call_method" and node.target == "add"
    )
    if (
        adds
        and len(a) == 2
        and isinstance(a[0], fx.Node)
        and a[0].op == "get_attr"
        and isinstance(a[1], (int, float))
        and not node.kwargs
    ):
        return a[0]
    return node


def _used_for_shape_only(node: fx.Node) -> bool:
    """Whether ``node``'s value is used, and only for its shape, rank, dtype or device."""
    return bool(node.users) and all(_reads_metadata(u) for u in node.users)


def _reads_shape_only(node: fx.Node) -> bool:
    """Nodes whose output carries no channels even when their inputs do: shapes, sizes,
    dtypes and devices, new constants of given sizes (``x.new_zeros((H, W))``: a size that is
    a channel count freezes where it is read), functions marked ``nk_shape_only`` (e.g. an
    attention-mask builder); placeholders and the output (which freezes its inputs itself)."""
    if node.op in ("placeholder", "get_attr", "output"):
        return True
    if node.op == "call_method":
        return node.target in _SHAPE_ONLY_METHODS
    target = node.target
    return target in (getattr, len) or bool(getattr(target, "nk_shape_only", False))


def _copies_along(node: fx.Node, axis: int, runs: bool = False) -> Any:
    """The count of copies when every entry of ``node`` along ``axis`` is a copy of one: 1 for
    an axis of one entry, else the size that an ``expand`` of such an axis asked for (an
    ``int``, or the module attribute it read), seen through transposes and the reshape that
    merges it with axes of one entry (``repeat_kv``: ``x[:, :, None].expand(b, 1, n, t,
    d).reshape(b, n, t, d)``); None otherwise. With ``runs``, the length of the runs of
    copies along ``axis`` (grouped-query ``repeat_kv``, its innermost merged axis expanded:
    ``x[:, :, None].expand(b, kv, n, t, d).reshape(b, kv * n, t, d)``)."""
    while True:
        shape = _shape(node)
        if shape is None or not 0 <= axis < len(shape):
            return None
        if shape[axis] == 1:
            return 1
        src = node.args[0] if node.args else None
        src_shape = _shape(src) if isinstance(src, fx.Node) else None
        if not isinstance(src, fx.Node) or src_shape is None:
            return None
        if node.op == "call_method" and node.target == "expand":
            sizes = _reshape_sizes(node)
            if sizes is None or len(src_shape) != len(shape) or src_shape[axis] != 1:
                return None
            return sizes[axis]
        if _transposes_matrix(node) or (
            node.op == "call_method" and node.target in ("transpose", "swapaxes", "swapdims")
        ):
            dims = [d % len(shape) for d in node.args[1:3] if isinstance(d, int)]
            if len(dims) != 2:
                return None
            axis = dims[1] if axis == dims[0] else dims[0] if axis == dims[1] else axis
            node = src
            continue
        if _reshape_sizes(node) is None:
            return None
        # the source axes that the reshape merges into ``axis``: copies along the one of
        # more than one entry
        before = math.prod(shape[:axis])
        ends = [k for k in range(len(src_shape) + 1) if math.prod(src_shape[:k]) == before]
        if not ends:
            return None
        first = last = ends[0]
        while last < len(src_shape) and math.prod(src_shape[first:last]) < shape[axis]:
            last += 1
        wide = [k for k in range(first, last) if src_shape[k] != 1]
        if math.prod(src_shape[first:last]) != shape[axis] or not wide:
            return None
        if len(wide) > 1 and not runs:
            return None
        node, axis, runs = src, wide[-1], False


def query_groups(attention: Any, one_kv_head: bool = False) -> int | None:
    """Query heads per key/value head of a Hugging Face attention module, from its kept
    widths (``q_proj`` over ``k_proj``; ``o_proj``'s inputs over half the rest of
    Phi-3's ``qkv_proj``; GPTBigCode's ``embed_dim`` over ``kv_dim``; with
    ``one_kv_head``, a module found to hold one key/value head (``num_kv_heads == 1``, in
    one fused projection: transformers 5.25's Falcon-7B), its ``num_heads``, which the graph
    rewrites where it sizes the query heads): the ``num_key_value_groups`` that ``repeat_kv``
    reads; None for other modules."""
    if type(getattr(attention, "num_key_value_groups", None)) is not int:
        return None
    q, k = getattr(attention, "q_proj", None), getattr(attention, "k_proj", None)
    qkv, o = getattr(attention, "qkv_proj", None), getattr(attention, "o_proj", None)
    queries: Any
    kv: Any
    if isinstance(q, nn.Linear) and isinstance(k, nn.Linear):
        queries, kv = q.out_features, k.out_features
    elif isinstance(qkv, nn.Linear) and isinstance(o, nn.Linear):  # Phi-3's fused projection
        queries = o.in_features
        kv = (qkv.out_features - queries) // 2
    elif one_kv_head and getattr(attention, "num_kv_heads", None) == 1:
        queries, kv = getattr(attention, "num_heads", None), 1
    else:
        queries, kv = getattr(attention, "embed_dim", None), getattr(attention, "kv_dim", None)
    if type(queries) is int and type(kv) is int and kv > 0 and queries % kv == 0:
        return queries // kv
    return None


def _outer_product(operands: Sequence[tuple[Any, int]], nd: int) -> bool:
    """Whether operands ``(shape, channel axis in the output)`` of a broadcasting op with
    ``nd`` output axes each hold one entry on the channel axes of those with other axes."""
    for shape, ax in operands:
        for _, other in operands:
            at = other - (nd - len(shape))
            if other != ax and 0 <= at < len(shape) and shape[at] != 1:
                return False
    return True


# methods that keep every value's place, up to axes of one entry
_KEEP_PLACES_METHODS = frozenset((*_CASTS, "squeeze", "unsqueeze", "contiguous"))


def _parameter_read(node: Any) -> list[fx.Node] | None:
    """``[get_attr, ..., node]`` when ``node`` is a parameter read in ``forward`` through
    ops, each the only reader of the one before, that keep every value's place up to axes of
    one entry: casts, elementwise functions, ``unsqueeze`` and indexing with ``None`` and full
    slices (Mamba's ``-torch.exp(self.A_log.float())[None, :, None, :]``); None otherwise."""

    def used(n: fx.Node) -> bool:  # its values reach the output (not only its shape)
        return n.op == "output" or (not _reads_shape_only(n) and any(map(used, n.users)))

    def only_reader(n: fx.Node) -> bool:  # of its values: shapes may be read, and dead code
        return sum(map(used, n.users)) == 1  # may too (transformers 5.25's Mamba's unused A)

    chain: list[fx.Node] = []
    while isinstance(node, fx.Node) and node.op != "get_attr":
        if chain and not only_reader(node):
            return None
        items = node.args[1] if node.target is operator.getitem and len(node.args) > 1 else ()
        items = items if isinstance(items, tuple) else (items,)
        keeps = (
            (node.op == "call_method" and node.target in _KEEP_PLACES_METHODS)
            or (node.op == "call_function" and node.target in _ELEMENTWISE_FUNCS)
            or (
                node.target is operator.getitem
                and all(i is None or i is Ellipsis or i == slice(None) for i in items)
            )
        )
        if not keeps or not node.args or not isinstance(node.args[0], fx.Node):
            return None
        if any(isinstance(a, fx.Node) for a in (*node.args[1:], *node.kwargs.values())):
            return None
        chain.append(node)
        node = node.args[0]
    if not isinstance(node, fx.Node) or (chain and not only_reader(node)):
        return None
    return [node, *reversed(chain)]


def _filled_sizes(node: fx.Node) -> list[Any] | None:
    """The sizes the one-value tensor ``node`` (``torch.zeros(b, c, n)``, ones, empty, full,
    ``x.new_zeros(...)``) was asked for; None for any other node, or a size tuple that is
    itself traced."""
    if node.op == "call_function" and node.target in _FILLED_FUNCS:
        args, full = node.args, node.target is torch.full
    elif node.op == "call_method" and node.target in _FILLED_METHODS:
        args, full = node.args[1:], node.target == "new_full"
    else:
        return None
    size: Any = node.kwargs.get("size")
    if size is None:
        size = args[0] if args and (full or isinstance(args[0], (tuple, list))) else args
    return list(size) if isinstance(size, (tuple, list)) else None


def _holds_size(module: nn.Module, size: int) -> bool:
    """Whether ``module`` keeps ``size`` in an attribute other than ``normalized_shape`` (a
    width its ``forward`` may pass to ``F.layer_norm`` instead, which the pruner cannot
    rewrite)."""
    for key, value in vars(module).items():
        if key == "normalized_shape" or key.startswith("_"):
            continue
        if value == size and isinstance(value, int) and not isinstance(value, bool):
            return True
        if isinstance(value, (tuple, list)) and size in value:
            return True
    return False


def _qualname(target: Any) -> str:
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"


def _describe(node: fx.Node) -> str:
    target = node.target
    tname = getattr(target, "__name__", str(target))
    return f"{node.op} {tname} ({node.name})"
