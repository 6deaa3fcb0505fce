"""Group-level importance criteria (SPA section "group-level importance estimation").

SPA lifts any per-parameter pruning criterion to coupled groups: each member of a group (a
producer's output rows, a consumer's input columns, normalization parameters) scores every
channel of the group from its own slice of weights, and a reduction (mean, sum or max) over the
members gives one score per channel. An importance object maps a
:class:`~neuronkit.pruning.graph.DependencyGraph` to ``{group index: scores [n]}`` for every
prunable group; lower scores are removed first.

Criteria: L1 / L2 magnitude, first-order Taylor (|sum w * dL/dw|), SNIP (sum |w * dL/dw|),
SynFlow (data-free synaptic flow |w * dR/dw| with R the output sum of the all-ones input
through |weights|), and, in :mod:`neuronkit.pruning.obspa`, the OBS saliency.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from neuronkit.common import (
    detached_input,
    grad_enabled,
    integer_dtype,
    named_input_dtypes,
    torch_rngs_forked,
)

from ._inputs import named_values
from .graph import DependencyGraph, Group, GroupMember
from .tracing import call_model, first_tensor, split_inputs

__all__ = [
    "GroupImportance",
    "MagnitudeImportance",
    "SNIPImportance",
    "SynFlowImportance",
    "TaylorImportance",
    "get_param",
    "member_channel_scores",
    "resolve_importance",
]

_REDUCTIONS = ("mean", "sum", "max")
_NORMALIZERS = (None, "mean", "max", "sum")


def get_param(model: nn.Module, module: str, name: str) -> torch.Tensor:
    """The parameter or buffer ``name`` (dotted, e.g. ``"out_proj.weight"``) of ``module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(module, str):
        raise TypeError(f"module: expected a submodule name (str), got {type(module).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a parameter name (str), got {type(name).__name__}")
    owner = model.get_submodule(module) if module else model
    prefix, _, leaf = name.rpartition(".")
    if prefix:
        owner = owner.get_submodule(prefix)
    value = getattr(owner, leaf)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{module}.{name} is not a tensor")
    return value


def _is_parametrized(model: nn.Module, module: str, name: str) -> bool:
    """Whether the tensor ``name`` (dotted) of ``module`` is computed by a parametrization
    (``weight_norm``, ``spectral_norm``, ...) rather than held as a parameter or buffer."""
    owner = model.get_submodule(module) if module else model
    prefix, _, leaf = name.rpartition(".")
    if prefix:
        owner = owner.get_submodule(prefix)
    return parametrize.is_parametrized(owner, leaf)


def _materialize_parametrizations(model: nn.Module) -> None:
    """Replace every parametrized tensor of ``model`` (a scoring copy) by a plain parameter
    (or buffer) holding its current value, the tensor the forward computes with: gradients
    (``w * dL/dw``) and SynFlow's ``|w|`` then apply to the weight itself, as for the same
    model without parametrizations, not to the parametrization's originals (``g``, ``v``).

    Not ``parametrize.remove_parametrizations``: it deletes the tensor's property from the
    module's ``Parametrized*`` class, which a deep copy shares with the caller's module."""
    for mod in list(model.modules()):
        if not parametrize.is_parametrized(mod):
            continue
        chains: Any = mod.parametrizations
        plain: dict[str, tuple[torch.Tensor, bool, bool]] = {}
        for name in list(chains.keys()):
            originals = chains[name]._parameters  # original / original0, original1, ...
            trainable = any(p is not None and p.requires_grad for p in originals.values())
            with torch.no_grad():
                plain[name] = (getattr(mod, name).detach(), bool(originals), trainable)
        mod.__class__ = parametrize.type_before_parametrizations(mod)  # this module only
        del mod._modules["parametrizations"]
        for name, (value, is_param, trainable) in plain.items():
            if is_param:
                mod.register_parameter(name, nn.Parameter(value, requires_grad=trainable))
            else:
                mod.register_buffer(name, value)


def member_channel_scores(member: GroupMember, values: torch.Tensor) -> torch.Tensor:
    """Sum a per-position score vector over the positions of each channel.

    Args:
        member: a group member (its ``positions`` list has one entry per channel).
        values: ``[size of member.dim]`` per-position scores.

    Returns:
        ``[n]`` per-channel scores of the group.
    """
    if not isinstance(member, GroupMember):
        raise TypeError(f"member: expected a GroupMember, got {type(member).__name__}")
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values: expected a tensor, got {type(values).__name__}")
    positions = member.positions
    n = len(positions)
    # position -> channel (n for positions of no channel), built without per-position Python
    index = np.full(values.shape[0], n, dtype=np.int64)
    index[positions.flat] = positions.owners
    out = torch.zeros(n + 1, dtype=values.dtype, device=values.device)
    out.index_add_(0, torch.from_numpy(index).to(values.device), values)
    return out[:n]


def _member_rows(members: list[GroupMember], values: list[torch.Tensor]) -> torch.Tensor:
    """``[len(members), n]``: :func:`member_channel_scores` of every member, stacked.

    One ``index_add_`` for all members (each output entry adds its positions in the same
    ascending order as the per-member call, so the sums are the same bit for bit), or one
    gather where every channel has one position; the per-member call is the fallback for
    layouts they do not cover.
    """
    n = len(members[0].positions)
    if any(len(m.positions) != n for m in members):  # ragged members: the per-member path
        return torch.stack([member_channel_scores(m, v) for m, v in zip(members, values)])
    source = torch.cat(values)
    if all(m.positions.one_each for m in members):
        ends = np.cumsum([v.shape[0] for v in values])
        index = np.concatenate(
            [m.positions.flat + end - v.shape[0] for m, v, end in zip(members, values, ends)]
        )
        if not index.size or bool((index < np.repeat(ends, n)).all()):  # (Positions are >= 0)
            return source[torch.from_numpy(index).to(source.device)].view(len(members), n)
    lengths = np.fromiter((v.shape[0] for v in values), dtype=np.int64, count=len(values))
    counts = np.concatenate([m.positions.counts for m in members])
    flat = np.concatenate([m.positions.flat for m in members])
    rows = np.arange(len(members), dtype=np.int64)
    owner = np.repeat(np.repeat(rows, n), counts)
    if flat.size and bool((flat >= lengths[owner]).any()):  # (Positions are >= 0)
        return torch.stack([member_channel_scores(m, v) for m, v in zip(members, values)])
    starts = np.zeros(len(members), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # position -> flat [member, channel] bin of an [M, n + 1] output (bin n: no channel)
    index = np.repeat(rows * (n + 1) + n, lengths)
    index[starts[owner] + flat] = owner * (n + 1) + np.repeat(
        np.tile(np.arange(n, dtype=np.int64), len(members)), counts
    )
    out = torch.zeros(len(members) * (n + 1), dtype=torch.float64, device=source.device)
    out.index_add_(0, torch.from_numpy(index).to(source.device), source)
    return out.view(len(members), n + 1)[:, :n].contiguous()


class GroupImportance:
    """Base class: per-member channel scores reduced over a group's members.

    Args:
        reduction: "mean", "sum" or "max" over members.
        normalize: None, or divide each group's scores by their "mean", "max" or "sum" (makes
            scores comparable across groups for global pruning).
        roles: the member roles that score ("out", "in", "norm", "embed").

    A subclass whose position scores are signed sets ``signed_positions``: a member's channel
    score is then the absolute value of the sum over the channel's positions (a channel that
    covers several positions, e.g. a conv channel seen by a Linear after a Flatten, sums
    before the absolute value).
    """

    signed_positions: bool = False

    def __init__(
        self,
        reduction: str = "mean",
        normalize: str | None = "mean",
        roles: tuple[str, ...] = ("out", "in", "norm", "embed"),
    ) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
        if normalize not in _NORMALIZERS:
            raise ValueError(f"normalize: expected one of {_NORMALIZERS}, got {normalize!r}")
        bad = set(roles) - {"out", "in", "norm", "embed"}
        if not roles or bad:
            raise ValueError(f"roles: expected a subset of out/in/norm/embed, got {roles!r}")
        self.reduction = reduction
        self.normalize = normalize
        self.roles = tuple(roles)

    def tensor(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor:
        """The tensor a member's scores are computed from (weights by default)."""
        owner = graph._modules.get(member.module)  # the module map of the trace: no path walk
        if owner is None:
            return get_param(graph.model, member.module, member.param)
        return get_param(owner, "", member.param)

    def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor | None:
        """Per-position scores along ``member.dim``; None skips the member."""
        raise NotImplementedError(
            f"{type(self).__name__}: implement position_scores(graph, member) (a 1-D tensor "
            "of one score per position along member.dim, or None to skip the member), or "
            "override group_scores or __call__"
        )

    def prepare(self, graph: DependencyGraph) -> None:
        """Hook run once per graph before scoring (e.g. to compute gradients)."""

    def group_scores(self, graph: DependencyGraph, group: Group) -> torch.Tensor:
        """``[group.size]`` float64 importance of each channel of ``group``, on the CPU (the
        scores are computed on the model's device and only the small result moves)."""
        members, values = [], []
        for m in group.members:
            if m.role not in self.roles or "running_" in m.param:
                continue
            v = self.position_scores(graph, m)
            if v is None:
                continue
            self._check_position_scores(graph, group, m, v)
            members.append(m)
            values.append(v.detach().double())
        if not members:
            return torch.zeros(group.size, dtype=torch.float64)
        stack = _member_rows(members, values)
        if self.signed_positions:
            stack = stack.abs()
        if self.reduction == "mean":
            scores = stack.mean(0)
        elif self.reduction == "sum":
            scores = stack.sum(0)
        else:
            scores = stack.max(0).values
        if self.normalize is not None:
            fns: dict[str, Any] = {"mean": scores.mean, "max": scores.max, "sum": scores.sum}
            denom = fns[self.normalize]()
            # only a zero (all-zero scores) is left alone: a floor such as 1e-12 would leave a
            # group of tiny scores (small weights, small gradients) tiny, so global pruning
            # would empty it although normalizing is meant to make groups comparable
            if bool(denom > 0):
                scores = scores / denom
        return scores.cpu()

    def _check_position_scores(
        self, graph: DependencyGraph, group: Group, member: GroupMember, scores: Any
    ) -> None:
        """Raise ``ValueError`` unless ``scores`` is a 1-D tensor of one score per position of
        ``member`` (its tensor's size along ``member.dim``): a shape check, nothing computed."""
        name = f"{member.module}.{member.param}" if member.module else member.param
        shape = graph._shapes.get(name)  # a parameter's shape when the graph was built
        size = (shape if shape is not None else self.tensor(graph, member).shape)[member.dim]
        if not isinstance(scores, torch.Tensor) or scores.shape != (size,):
            raise ValueError(
                f"{type(self).__name__}.position_scores: expected a 1-D tensor of {size} scores "
                f"for {member.module}.{member.param} (its size along dim {member.dim}) in group "
                f"{group.name!r}, got {_described(scores)}"
            )

    def __call__(self, graph: DependencyGraph) -> dict[int, torch.Tensor]:
        """Scores ``[n]`` for every prunable group, keyed by group index.

        ``prepare`` keeps per-graph state on the object, so calls run one at a time: one
        object may be shared by threads.

        Raises:
            ValueError: ``graph.model`` changed since the graph was built (pruned in place:
                build a new graph)."""
        if not isinstance(graph, DependencyGraph):
            raise TypeError(f"graph: expected a DependencyGraph, got {type(graph).__name__}")
        graph._check_unchanged()
        with _SCORING_LOCK:
            self.prepare(graph)
            return {g.index: self.group_scores(graph, g) for g in graph.prunable_groups()}


_SCORING_LOCK = threading.RLock()


def _described(value: Any) -> str:
    """``"shape (8, 6)"`` for a tensor, else the type name: for error messages."""
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__


_BLOCK = 1 << 16  # elements per block of _reduce_other_dims: the temporary stays in cache


def _reduce_other_dims(
    t: torch.Tensor, dim: int, op: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """``op(t)`` summed over every axis but ``dim`` -> ``[t.shape[dim]]`` float64.

    Accumulates in float64 without a float64 copy of ``t``, over blocks of ~64k entries along
    the leading axis on the CPU: ``op``'s temporary stays in cache (a whole-weight temporary
    cost page faults that made scoring a 37M-entry Linear ~10x slower). One block elsewhere.
    """
    t = t.detach()
    f = op if op is not None else _identity
    if t.ndim == 1:
        return f(t).double()
    n = t.shape[0]
    rows = max(1, _BLOCK // max(1, math.prod(t.shape[1:]))) if t.device.type == "cpu" else n
    other = [d for d in range(t.ndim) if d != dim]
    if rows >= n:  # one block
        return f(t).sum(other, dtype=torch.float64)
    out = torch.zeros(t.shape[dim], dtype=torch.float64, device=t.device)
    for start in range(0, n, rows):
        block = f(t[start : start + rows])
        if dim == 0:
            out[start : start + rows] = block.sum(other, dtype=torch.float64)
        else:
            out += block.sum(other, dtype=torch.float64)
    return out


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _square(t: torch.Tensor) -> torch.Tensor:
    return t * t


class MagnitudeImportance(GroupImportance):
    """Group Lp magnitude: ``sum |w|^p`` over each member's slice of the channel (p = 1 or 2)."""

    def __init__(self, p: int = 2, **kwargs: Any) -> None:
        if p not in (1, 2):
            raise ValueError(f"p: expected 1 or 2, got {p!r}")
        super().__init__(**kwargs)
        self.p = p

    def prepare(self, graph: DependencyGraph) -> None:
        _check_materialized(graph, type(self).__name__)

    def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor:
        return magnitude_position_scores(self.tensor(graph, member), member.dim, self.p)


def _check_materialized(graph: DependencyGraph, who: str) -> None:
    """Raise ``ValueError`` when a parameter that scores is on the meta device: it has a shape
    but no values (a model built under ``torch.device("meta")``), which scoring reads (and
    fails on deep inside torch)."""
    for group in graph.prunable_groups():
        for m in group.members:
            t = get_param(graph.model, m.module, m.param)
            if t.is_meta:
                name = f"{m.module}.{m.param}" if m.module else m.param
                raise ValueError(
                    f"model: {name} is on the meta device (a shape without values), which "
                    f"{who} cannot score; load the weights first (model.to_empty(device=...) "
                    "and load_state_dict) or plan from your own masks (plan_from_masks)"
                )


def magnitude_position_scores(t: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    """``sum |t|^p`` over every axis but ``dim``: ``[t.shape[dim]]`` float64 (p = 1 or 2).
    The scores of :class:`MagnitudeImportance` and of the ONNX route, the same bits."""
    # detached first: the same values without recording autograd nodes for the scores
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.double()  # float16 squares overflow above 256; bfloat16 loses digits
    # t * t: what torch.pow computes for the exponent 2 (same bits), minus overhead
    scores = _reduce_other_dims(t, dim, torch.abs if p == 1 else _square)
    # squares above ~1.8e19 overflow in float32; the float64 sum of finite scores cannot, so
    # it is finite exactly when every score is (one reduction instead of two)
    if p == 2 and t.dtype == torch.float32 and not math.isfinite(scores.sum().item()):
        scores = _reduce_other_dims(t.double(), dim, _square)
    return scores


class _GradientImportance(GroupImportance):
    """Scores from ``w * dL/dw``; gradients come from a loss or from existing ``.grad``.

    Args:
        inputs, targets: a batch for the loss (both or neither; neither: existing ``.grad``).
            ``inputs`` in the model's dtype (a float32 model refuses float64 inputs with a
            ``TypeError`` naming them); for the default loss, ``targets`` are class indices of
            any integer dtype (or class probabilities).
        loss_fn: ``loss_fn(outputs, targets)`` -> scalar loss, given the model's outputs as
            returned. Default: cross-entropy of the first output tensor (the logits of a
            tuple, dict or Hugging Face ``ModelOutput``).
    """

    def __init__(
        self,
        inputs: Any = None,
        targets: torch.Tensor | None = None,
        loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (inputs is None) != (targets is None):
            raise ValueError("inputs/targets: pass both (to compute gradients) or neither")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(
                "loss_fn: expected a callable (model outputs, targets) -> scalar loss, got "
                f"{type(loss_fn).__name__}"
            )
        if loss_fn is None and targets is not None and not isinstance(targets, torch.Tensor):
            raise TypeError(
                "targets: expected a tensor of class indices (or probabilities) for the default "
                f"cross-entropy loss, got {type(targets).__name__}"
            )
        self.inputs = inputs
        self.targets = targets
        self.loss_fn = loss_fn or nn.functional.cross_entropy
        self._default_loss = loss_fn is None  # fed the logits (the first output tensor)
        self._grads: dict[tuple[str, str], torch.Tensor] = {}

    def _model_with_grads(self, graph: DependencyGraph) -> nn.Module:
        """A copy of the model with the gradients of the loss on ``inputs``: every scored
        parameter gets one, also a frozen one (``requires_grad=False``), whatever the caller's
        grad mode; the caller's inputs and targets are left out of the graph. Random draws of
        the pass (dropout in training mode) follow torch's global RNG without advancing it."""
        if self.inputs is None:
            return graph.model
        with grad_enabled(type(self).__name__), torch_rngs_forked():
            model = copy.deepcopy(graph.model)
            _materialize_parametrizations(model)  # dL/dw of a parametrized w itself
            model.zero_grad(set_to_none=True)
            for g in graph.prunable_groups():
                for m in g.members:
                    t = get_param(model, m.module, m.param)
                    if isinstance(t, nn.Parameter):
                        t.requires_grad_(True)
            values, names = split_inputs(self.inputs)
            values = tuple(detached_input(v) for v in values)
            assert self.targets is not None
            targets = detached_input(self.targets)
            with named_input_dtypes(model, *named_values("inputs", values, names)):
                out = call_model(model, values, names)
            if self._default_loss:  # a tuple, dict or ModelOutput: the logits come first
                first = first_tensor(out)
                if first is None:
                    raise TypeError(f"model returns {type(out).__name__}; pass loss_fn")
                out = first
                _check_class_targets(out, targets)
                if integer_dtype(targets):  # int32 / uint8 ... class indices, as int64
                    targets = targets.long()
            try:
                loss = self.loss_fn(out, targets)
            except (TypeError, ValueError, IndexError, RuntimeError) as err:
                if not self._default_loss:
                    raise
                raise ValueError(
                    f"targets: the default loss, cross-entropy of the logits ({_described(out)}), "
                    f"rejects targets of {_described(targets)} and dtype {targets.dtype}: {err}"
                ) from err
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError(
                    f"loss_fn: expected a scalar loss tensor, got {_described(loss)} (reduce "
                    "it, e.g. reduction='mean')"
                )
            loss.backward()
        return model

    def prepare(self, graph: DependencyGraph) -> None:
        _check_materialized(graph, type(self).__name__)
        if self.inputs is None:
            computed = [
                f"{m.module}.{m.param}" if m.module else m.param
                for g in graph.prunable_groups()
                for m in g.members
                if _is_parametrized(graph.model, m.module, m.param)
            ]
            if computed:
                raise ValueError(
                    f"inputs: {sorted(set(computed))} are parametrized (computed from "
                    "parametrization originals, e.g. weight_norm's g and v), so backward leaves "
                    "no .grad on them to score; pass inputs and targets to compute the "
                    "gradients of the weights themselves"
                )
        model = self._model_with_grads(graph)
        self._grads = {}
        moved = False  # some gradient is not 0 (an empty batch leaves them all 0)
        for g in graph.prunable_groups():
            for m in g.members:
                t = get_param(model, m.module, m.param)
                if isinstance(t, nn.Parameter) and t.grad is not None:
                    # at least float32: float16 products of small w and dL/dw underflow to 0
                    wide = torch.promote_types(t.dtype, torch.float32)
                    self._grads[(m.module, m.param)] = t.detach().to(wide) * t.grad.to(wide)
                    moved = moved or bool(t.grad.any())
        if not self._grads:
            raise ValueError(
                "inputs: no gradients found: pass inputs and targets, or run backward on the "
                "model before scoring"
            )
        if not moved:
            got = (
                "from the existing .grad"
                if self.inputs is None
                else "on inputs of "
                + ", ".join(_described(v) for v in split_inputs(self.inputs)[0])
            )
            raise ValueError(
                f"inputs: every gradient of the scored parameters is 0 ({got}), so every "
                "score would be 0 and the channels removed arbitrary; pass a non-empty batch "
                "whose loss depends on the weights"
            )

    def _wg(self, member: GroupMember) -> torch.Tensor | None:
        return self._grads.get((member.module, member.param))


def _check_class_targets(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Raise unless integer ``targets`` index a class of ``logits`` (``[N, C, ...]``, or ``[C]``)
    or are cross-entropy's ``ignore_index`` (-100): out of range, the loss fails with an
    IndexError on the CPU and a device-side assert on a GPU."""
    if logits.ndim == 0 or targets.is_floating_point() or targets.is_complex():
        return
    n_classes = logits.shape[1] if logits.ndim >= 2 else logits.shape[0]
    labels = targets[targets != -100]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"targets: expected class indices in [0, {n_classes - 1}] (the model has "
            f"{n_classes} outputs) or -100 (ignored), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )


class TaylorImportance(_GradientImportance):
    """First-order Taylor: ``|sum_{slice} w * dL/dw|`` (Molchanov et al.), lifted to groups;
    the slice is all of a member's positions of the channel (signed position scores)."""

    signed_positions = True

    def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor | None:
        wg = self._wg(member)
        return None if wg is None else _reduce_other_dims(wg, member.dim)


class SNIPImportance(_GradientImportance):
    """SNIP connection sensitivity ``sum_{slice} |w * dL/dw|`` (Lee et al.), lifted to groups."""

    def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor | None:
        wg = self._wg(member)
        return None if wg is None else _reduce_other_dims(wg, member.dim, torch.abs)


class SynFlowImportance(GroupImportance):
    """SynFlow (Tanaka et al.): data-free ``|w * dR/dw|``, R = sum of f_|w|(1) in float64.

    The all-ones input has the example inputs' shapes: every sample is the same, so the raw
    scores are the one-sample scores times the batch size (the same once normalized), wherever
    the batch axis is (a time-major ``[T, B, ...]`` network sees all T steps)."""

    def prepare(self, graph: DependencyGraph) -> None:
        _check_materialized(graph, type(self).__name__)
        inputs = []
        for x in graph.example_inputs:
            if not torch.is_tensor(x) or not x.is_floating_point():
                raise ValueError("example_inputs: SynFlow needs floating-point model inputs")
            if x.numel() == 0:  # no path from an empty input: every score would be 0
                raise ValueError(
                    "example_inputs: SynFlow needs non-empty inputs (its all-ones input takes "
                    f"their shapes; an empty one makes every score 0), got {_described(x)}"
                )
            inputs.append(torch.ones_like(x, dtype=torch.float64))
        # every parameter scores, frozen ones too (as federated.synflow_scores), whatever the
        # caller's grad mode
        with grad_enabled(type(self).__name__):
            model = copy.deepcopy(graph.model)
            # a parametrized weight is linearised as the weight it computes, |w| (not as
            # |g| and |v| of weight_norm, or spectral_norm's |W| / sigma(|W|))
            _materialize_parametrizations(model)
            model = model.double().eval()
            with torch.no_grad():  # every float entry of the state, buffers (BN statistics)
                for t in model.state_dict().values():  # too, as the authors' linearize does
                    if t.is_floating_point():
                        t.abs_()
            model.requires_grad_(True)
            out = call_model(model, tuple(inputs), graph.input_names)
            first = first_tensor(out)  # logits of a tuple, dict or Hugging Face ModelOutput
            if first is None:
                raise TypeError(
                    f"model: SynFlow needs a tensor output (or a tuple, dict or ModelOutput "
                    f"whose first entry is one), got {type(out).__name__}"
                )
            first.sum().backward()
        self._scores: dict[tuple[str, str], torch.Tensor] = {}
        for name, p in model.named_parameters():
            if p.grad is not None:
                module, _, pname = name.rpartition(".")
                self._scores[(module, pname)] = (p * p.grad).detach().abs()

    def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor | None:
        module, param = member.module, member.param
        if "." in param:
            prefix, _, param = param.rpartition(".")
            module = f"{module}.{prefix}" if module else prefix
        s = self._scores.get((module, param))
        return None if s is None else _reduce_other_dims(s, member.dim)


def resolve_importance(importance: Any) -> GroupImportance:
    """A :class:`GroupImportance` from an instance or a name ("l1", "l2", "synflow")."""
    if isinstance(importance, GroupImportance):
        return importance
    names: dict[str, Callable[[], GroupImportance]] = {
        "l1": lambda: MagnitudeImportance(p=1),
        "l2": lambda: MagnitudeImportance(p=2),
        "synflow": SynFlowImportance,
    }
    if isinstance(importance, str) and importance in names:
        return names[importance]()
    raise ValueError(
        f"importance: expected a GroupImportance or one of {sorted(names)}, got {importance!r}"
    )
